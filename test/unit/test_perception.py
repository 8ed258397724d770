"""core.perception.Perception on a tiny CLIPSeg: command -> prompt, frame -> target."""

import numpy as np
import pytest

from vla_ros.core.encoders import ClipEncoder, ClipSegSegmenter
from vla_ros.core.models import load_model
from vla_ros.core.perception import Perception, PerceptionSettings, target_view
from vla_ros.core.verification import TargetVerifier, VerifierConfig


@pytest.fixture(scope='module')
def segmenter(tiny_clipseg_dir):
    return ClipSegSegmenter(load_model('clipseg', str(tiny_clipseg_dir), device='cpu'))


FRAME = np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8)


def test_nothing_is_seen_before_a_command(segmenter):
    assert Perception(segmenter, PerceptionSettings(fovea=None)).see(FRAME) is None


def test_the_command_is_cleaned_and_its_object_becomes_the_prompt(segmenter):
    perception = Perception(segmenter, PerceptionSettings(fovea=None))
    assert perception.command('  Please go to the\u200b RED ball!  ') == 'red ball'
    sight = perception.see(FRAME)
    assert sight.prompts == ('red ball',)
    assert sight.probabilities.shape[0] == 1
    assert 0.0 <= sight.probabilities.min() and sight.probabilities.max() <= 1.0
    assert perception.previous == sight.target
    view = target_view(sight.target)
    assert (view.x, view.area, view.bottom) == (sight.target.x, sight.target.area,
                                                sight.target.bottom)


def test_fixed_prompts_win_over_the_command(segmenter):
    perception = Perception(segmenter, PerceptionSettings(prompts=('cup', 'table'),
                                                          fovea=None))
    perception.command('go to the red ball')
    assert perception.see(FRAME).prompts == ('cup', 'table')


def test_a_new_prompt_forgets_the_last_target_and_tells_the_verifier(segmenter,
                                                                      tiny_clip_dir):
    encoder = ClipEncoder(load_model('clip', str(tiny_clip_dir), device='cpu'))
    verifier = TargetVerifier(encoder, VerifierConfig(contrasts=('blue cube',)))
    # Threshold 0: the whole frame is one region, so the verifier is asked about it.
    perception = Perception(segmenter, PerceptionSettings(mask_threshold=0.0, fovea=None),
                            verifier)
    perception.command('go to the red ball')
    perception.see(FRAME)
    assert verifier.prompt == 'red ball' and perception.regions_checked >= 1
    perception.command('go to the green cube')
    perception.see(FRAME)
    assert verifier.prompt == 'green cube'


def test_no_model_time_once_the_policy_has_ended_the_command(segmenter):
    perception = Perception(segmenter, PerceptionSettings(fovea=None))
    perception.command('go to the red ball')
    perception.command_status('approaching red ball')
    assert perception.see(FRAME) is not None
    perception.command_status('arrived')
    assert perception.prompts() == () and perception.see(FRAME) is None
    perception.command_status('go_to')  # the policy took a new command first
    assert perception.prompts() == ('red ball',)
    perception.command_status('not found')
    perception.command('go to the blue cube')  # a new command
    assert perception.prompts() == ('blue cube',)
    fixed = Perception(segmenter, PerceptionSettings(prompts=('cup',), fovea=None))
    fixed.command_status('arrived')
    assert fixed.prompts() == ('cup',)  # fixed prompts are always segmented
