"""TargetVerifier's rules on a tiny CLIP (its judgement itself: test_embedded_models.py)."""

import numpy as np
import pytest

from vla_ros.core.encoders import ClipEncoder
from vla_ros.core.models import load_model
from vla_ros.core.segmentation import find_regions
from vla_ros.core.verification import default_contrasts, TargetVerifier, VerifierConfig


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
    assert len(default_contrasts()) == 50


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
    checked = []
    scores = verifier.scores
    verifier.scores = lambda crops: checked.append(len(crops)) or scores(crops)
    verdicts = verifier.accept(rgb, regions)
    assert checked == [1] and len(verdicts) == 2 and verdicts[1] is False
    assert verifier.accept(rgb, regions[1:]) == [False] and checked == [1]
