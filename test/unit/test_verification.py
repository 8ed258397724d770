"""TargetVerifier's rules on a tiny CLIP (its judgement itself: test_embedded_models.py)."""

import numpy as np
import pytest

from vla_ros.core.encoders import ClipEncoder
from vla_ros.core.models import load_model
from vla_ros.core.segmentation import find_regions, Target
from vla_ros.core.verification import TargetVerifier, VerifierConfig


@pytest.fixture(scope='module')
def encoder(tiny_clip_dir):
    return ClipEncoder(load_model('clip', str(tiny_clip_dir), device='cpu'))


def test_contrasts_are_needed_and_the_prompt_is_not_its_own_contrast(encoder):
    with pytest.raises(ValueError, match='contrast'):
        TargetVerifier(encoder, VerifierConfig(contrasts=()))
    verifier = TargetVerifier(encoder, VerifierConfig(contrasts=('red ball', 'blue cube')))
    with pytest.raises(RuntimeError, match='set_prompt'):
        verifier.scores([np.zeros((8, 8, 3), np.uint8)])
    verifier.set_prompt('  Red   Ball ')
    assert verifier.prompt == 'red ball' and verifier._texts.shape[0] == 2  # prompt + 1


def test_only_the_largest_regions_are_checked(encoder):
    probability = np.zeros((40, 60), np.float32)
    for column in range(0, 60, 12):  # five separate regions
        probability[5:20, column:column + 5] = 0.9
    regions = find_regions(probability, 0.5)
    rgb = np.random.default_rng(0).integers(0, 256, (40, 60, 3), dtype=np.uint8)
    verifier = TargetVerifier(encoder, VerifierConfig(contrasts=('blue cube',), max_regions=2))
    verifier.set_prompt('red ball')
    verdicts = verifier.accept(rgb, regions)
    assert len(verdicts) == 5 and verdicts[2:] == [False, False, False]
    assert verifier.accept(rgb, []) == []


def test_specks_are_refused_without_a_check(encoder):
    probability = np.zeros((40, 60), np.float32)
    probability[5:20, 0:10] = 0.9  # 6 % of the image
    probability[30:32, 40:42] = 0.9  # 4 pixels: 0.17 %
    regions = find_regions(probability, 0.5)
    rgb = np.random.default_rng(0).integers(0, 256, (40, 60, 3), dtype=np.uint8)
    verifier = TargetVerifier(encoder, VerifierConfig(contrasts=('blue cube',), min_area=0.01))
    verifier.set_prompt('red ball')
    checked = counting(verifier)
    verdicts = verifier.accept(rgb, regions)
    assert checked == [1] and len(verdicts) == 2 and verdicts[1] is False
    assert verifier.accept(rgb, regions[1:]) == [False] and checked == [1]


def counting(verifier):
    """The crops the verifier's CLIP looks at, per call."""
    checked, scores = [], verifier.scores
    verifier.scores = lambda crops: checked.append(len(crops)) or scores(crops)
    return checked


def box(x, width, area, y=0.0):
    """A region centred at (x, y), `width` wide and tall (normalised), of `area`."""
    return Target(x, y, 0.9, area, width / 2, y + width / 2, x - width / 2, y - width / 2)


def refusing_verifier(encoder, rgb, region, **config):
    """A verifier whose tiny CLIP refuses `region` (its likings are random: looked for)."""
    for prompt in ('red ball', 'blue cube', 'green cylinder', 'white capsule', 'black cone'):
        verifier = TargetVerifier(encoder, VerifierConfig(
            contrasts=('yellow pyramid', 'pink ball', 'purple cube', 'grey cylinder'),
            **config))
        verifier.set_prompt(prompt)
        if verifier.accept(rgb, [region]) == [False]:
            return verifier
    pytest.skip('the tiny CLIP accepted every prompt')


def test_a_refused_region_still_in_view_is_checked_one_frame_in_n(encoder):
    rgb = np.random.default_rng(0).integers(0, 256, (40, 60, 3), dtype=np.uint8)
    region = box(0.0, 0.4, 0.04)
    verifier = refusing_verifier(encoder, rgb, region, recheck_frames=3)
    checked = counting(verifier)
    moved = box(0.1, 0.4, 0.04)  # one frame on: holds the last one's centroid
    assert verifier.accept(rgb, [moved]) == [False] and checked == []
    assert verifier.accept(rgb, [moved]) == [False] and checked == []
    verifier.accept(rgb, [moved])  # the third frame since the check: checked again
    assert checked == [1]
    verifier.accept(rgb, [moved, box(-0.8, 0.1, 0.005)])  # a new region elsewhere is checked
    assert checked == [1, 1]


def test_a_refused_region_is_checked_again_when_it_grows_or_the_prompt_changes(encoder):
    rgb = np.random.default_rng(0).integers(0, 256, (40, 60, 3), dtype=np.uint8)
    region = box(0.0, 0.4, 0.04)
    verifier = refusing_verifier(encoder, rgb, region)
    checked = counting(verifier)
    verifier.accept(rgb, [box(0.0, 0.6, 0.079)])  # not yet twice the area: not checked
    assert checked == []
    verifier.accept(rgb, [box(0.0, 0.6, 0.08)])  # twice: the robot came closer
    assert checked == [1]
    verifier.accept(rgb, [])  # nothing in view: nothing carries over
    verifier.accept(rgb, [box(0.0, 0.6, 0.08)])
    assert checked == [1, 1]
    verifier.set_prompt('something else')
    verifier.accept(rgb, [box(0.0, 0.6, 0.08)])
    assert checked == [1, 1, 1]


def test_without_recheck_frames_every_frame_is_checked(encoder):
    rgb = np.random.default_rng(0).integers(0, 256, (40, 60, 3), dtype=np.uint8)
    region = box(0.0, 0.4, 0.04)
    verifier = refusing_verifier(encoder, rgb, region, recheck_frames=0)
    checked = counting(verifier)
    for _ in range(3):
        verifier.accept(rgb, [region])
    assert checked == [1, 1, 1]


def test_a_refusal_is_carried_over_only_between_frames_close_in_time(encoder):
    """A segmenter at 0.4 Hz: 5 frames were 12.5 s of a target refused unseen."""
    rgb = np.random.default_rng(0).integers(0, 256, (40, 60, 3), dtype=np.uint8)
    region = box(0.0, 0.4, 0.04)
    verifier = refusing_verifier(encoder, rgb, region, recheck_frames=5)
    verifier.accept(rgb, [region], now=10.0)
    checked = counting(verifier)
    verifier.accept(rgb, [region], now=10.1)  # 10 Hz: carried over
    assert checked == []
    verifier.accept(rgb, [region], now=12.6)  # 2.5 s later: a new view, checked
    assert checked == [1]
    verifier.accept(rgb, [region], now=5.0)  # time went back: checked
    assert checked == [1, 1]
