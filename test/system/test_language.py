"""Language with the embedded CLIP, through the pipeline the nodes and the evaluator share
(core.control.Controller with the YAML's intents and thresholds): held-out phrasings of
"go to the X" are followed, nonsense never moves the robot. test/data holds the lists;
training never sees them. Closed-loop figures: `vla-ros eval --commands` (benchmarks/README.md).
"""

from pathlib import Path

import pytest
import yaml

from vla_ros.core import paths
from vla_ros.core.control import Controller
from vla_ros.core.encoders import ClipEncoder
from vla_ros.core.models import load_model
from vla_ros.core.policy import TargetView
from vla_ros.core.text import clean_command
from vla_ros.evaluation.lockstep import StackSettings

DATA = Path(__file__).parents[1] / 'data'
TARGET = TargetView(x=0.4, y=0.2, confidence=0.9, area=0.05)  # in view, off to the right


@pytest.fixture(scope='module')
def language():
    """(encoder, a fresh Controller each call) as `vla-ros eval --mode real` builds them."""
    if not (paths.default_model_dir('clip') / 'config.json').is_file():
        pytest.skip('no embedded CLIP in models/')
    settings = StackSettings.from_params_file(paths.SOURCE_ROOT / 'config' / 'vla.yaml')
    encoder = ClipEncoder(load_model('clip', settings.policy['model'], device='cpu'))
    shared = Controller.from_encoder(settings.intents, encoder.encode_texts, settings.control)
    return encoder, lambda: Controller(shared.policy.classifier, settings.control,
                                       encoder.encode_texts)


def instruct(language, command):
    encoder, new_controller = language
    controller = new_controller()
    text = clean_command(command)[0]
    embedding = encoder.encode_texts([text])[0] if text else []
    return controller, controller.instruct(embedding, text, 0.0)


def drive(controller, seconds=4.0, rate_hz=20.0):
    """Velocities over `seconds` with a fresh target and camera in every tick."""
    ticks = [controller.tick(index / rate_hz, TARGET, 0.0, 0.0)
             for index in range(int(seconds * rate_hz))]
    return [(tick.linear, tick.angular) for tick in ticks]


def test_held_out_go_to_phrasings_are_followed(language):
    templates = yaml.safe_load((DATA / 'go_to_phrasings.yaml').read_text())['go_to']
    followed, missed = 0, []
    for template in templates:
        controller, status = instruct(language, template.format(object='purple cylinder'))
        if status == 'go_to' and controller.policy.state.object_phrase == 'purple cylinder':
            followed += 1
        else:
            missed.append(f'{template}: {status} ({controller.refusal})')
    assert followed / len(templates) >= 0.95, missed


def test_held_out_nonsense_never_moves_the_robot(language):
    commands = yaml.safe_load((DATA / 'refused_commands.yaml').read_text())['not_understood']
    said_not_understood, moved = 0, []
    for command in commands:
        controller, status = instruct(language, command)
        said_not_understood += status.startswith('not understood: ')
        if any(velocity != (0.0, 0.0) for velocity in drive(controller)):
            moved.append(f'{command}: {status}')
    assert moved == []
    assert said_not_understood / len(commands) >= 0.98


def test_commands_with_a_part_it_cannot_honour_are_refused_whole(language):
    """Conditions, times, repetitions, routes, amounts without a unit or past the bounds:
    refused, saying what could not be honoured, and the robot never moves.
    """
    commands = yaml.safe_load((DATA / 'unsupported_commands.yaml').read_text())['not_understood']
    assert len(commands) >= 30
    wrong = []
    for command in commands:
        controller, status = instruct(language, command)
        moved = any(velocity != (0.0, 0.0) for velocity in drive(controller, seconds=1.0))
        if moved or status != f'not understood: {command}' or not controller.refusal:
            wrong.append(f'{command}: {status} ({controller.refusal}){" MOVED" if moved else ""}')
    assert wrong == []


@pytest.mark.parametrize(('command', 'intent', 'status'), [
    ('turn left 90 degrees', 'turn_left', 'turn_left 90°'),
    ('go forward 1.5 meters', 'move_forward', 'move_forward 1.50 m'),
    ('back up 30 cm', 'move_backward', 'move_backward 0.30 m'),
    ('turn around', None, '180°'),
    ('go slowly to the red ball', 'go_to', 'searching red ball (slowly: speeds x0.5)'),
])
def test_measured_motions_and_manners_with_the_embedded_model(language, command, intent,
                                                              status):
    controller, chosen = instruct(language, command)
    assert intent is None or chosen == intent, controller.refusal
    assert status in controller.policy.step(0.1, None, odometry_motion=(0.0, 0.0)).status


def test_held_out_intent_paraphrases_through_the_whole_decision(language):
    table = yaml.safe_load((DATA / 'intent_paraphrases.yaml').read_text())
    cases = [(name, phrase) for name, phrases in table.items() for phrase in phrases]
    wrong = [f'{phrase}: {status}' for name, phrase in cases
             if (status := instruct(language, phrase)[1]) != name]
    assert len(wrong) <= 0.05 * len(cases), wrong


@pytest.mark.parametrize('command', [
    # a stop verb before a go verb is a stop; a bare stop after a command makes it unclear
    'stop going to the red ball', 'halt driving to the red ball', 'stop looking for the red ball',
    'go to the red ball. stop.', 'go to the red ball!!! STOP!!!',
    # cancels after the command, words that point away or leave out
    'go to the red ball, cancel that', 'go to the red ball, just kidding',
    'go away from the red ball', 'keep off the red ball', 'get out of the room',
    'go anywhere but the red ball', 'go to anything except the red ball', 'go to nowhere',
    # questions and reports are no commands
    'did you go to the red ball', 'you went to the red ball', 'how do i go to the red ball',
    # a motion needs its direction, and no contradicting one
    'turn', 'go', 'run', 'advance', 'visit', 'turn right left', 'move forward backward',
    'go to the one on the left', 'go there',
    # too long for the text encoder to see whole: the end could negate the start
    'go to the red ball' + ', please' * 40 + ", actually don't",
])
def test_commands_found_by_a_hostile_review_never_move_the_robot(language, command):
    controller, status = instruct(language, command)
    assert all(velocity == (0.0, 0.0) for velocity in drive(controller)), status


@pytest.mark.parametrize(('command', 'status'), [
    ('turn right and go to the blue cube', 'step 1/2: turn_right'),
    ('turn left 90 degrees and go forward', 'step 1/2: turn_left'),
    ('go to the red ball, then the blue cube', 'step 1/2: go_to'),
    ('go to the red ball and wait 5 seconds', 'step 1/2: go_to'),
    ('wait 3 seconds, then find the green cylinder', 'step 1/2: waiting (3 s)'),
])
def test_commands_of_several_steps_with_the_embedded_model(language, command, status):
    """Each step's own text through the embedded CLIP picks its intent (core.steps)."""
    controller, said = instruct(language, command)
    assert said == status, controller.refusal
