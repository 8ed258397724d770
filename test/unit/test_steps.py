"""Commands of several steps (core.steps) through the grammar, the controller and perception:
each step is done in order and said in the status, a step that cannot be done refuses the
whole command before anything moves, a step that fails ends it, a new command empties it.
"""

import math

import numpy as np
import pytest

from vla_ros.core.control import Controller, ControlSettings
from vla_ros.core.odometry import Pose2D
from vla_ros.core.perception import Perception, source_label, step_of_source
from vla_ros.core.policy import (
    DEFAULT_INTENTS,
    IntentClassifier,
    Segmentation,
    ServoConfig,
    TargetView,
)
from vla_ros.core.status import is_final, is_success, own, split_step, step_status
from vla_ros.core.steps import command_steps, MAX_STEPS, step_objects
from vla_ros.core.text import clean_command

PERIOD = 0.05
NAMES = [intent.name for intent in DEFAULT_INTENTS]
# A stand-in text encoder: the intent a step's words name, one-hot (no model needed).
KEYWORDS = (('turn left', 'turn_left'), ('turn right', 'turn_right'), ('turn around', 'turn_left'),
            ('forward', 'move_forward'), ('back up', 'move_backward'), ('find', 'look_for'),
            ('stop', 'stop'), ('', 'go_to'))
NEAR = TargetView(x=0.0, y=0.5, confidence=0.9, area=0.2, bottom=0.8)  # arrived by its foot
NOTHING = TargetView(x=0.0, y=0.0, confidence=0.0, area=0.0)  # a segmentation that saw none


def encode_texts(texts):
    vectors = np.zeros((len(texts), len(NAMES)), np.float32)
    for row, text in enumerate(texts):
        name = next(name for words, name in KEYWORDS if words in text)
        vectors[row, NAMES.index(name)] = 1.0
    return vectors


def controller(encoder=encode_texts, **settings):
    classifier = IntentClassifier(DEFAULT_INTENTS, [encode_texts([name.replace('_', ' ')])
                                                    for name in NAMES], 0.5, 0.1)
    return Controller(classifier, ControlSettings(require_camera_for_motion=False,
                                                  servo=ServoConfig(confirm_s=0.0), **settings),
                      encoder)


def instruct(control, command, now=0.0):
    text = clean_command(command)[0]
    return control.instruct(encode_texts([text])[0], text, now)


def drive(control, seconds, sees=lambda thing: NOTHING, start=0.0, pose=None):
    """Tick at 20 Hz moving a unicycle as commanded, with odometry; `sees(thing)`: the target
    view of the thing the current step looks for. Returns (pose, statuses in order of change,
    the time the robot first moved or None).
    """
    pose, statuses, moved = pose or Pose2D(0.0, 0.0, 0.0), [], None
    for tick in range(int(seconds / PERIOD)):
        now = start + tick * PERIOD
        output = control.tick(now, sees(control.policy.state.object_phrase), 0.0, 0.0,
                              odom=pose, odom_age=0.0)
        if not statuses or statuses[-1] != output.status:
            statuses.append(output.status)
        if moved is None and (output.linear or output.angular):
            moved = now
        pose = Pose2D(pose.x + output.linear * PERIOD * math.cos(pose.yaw),
                      pose.y + output.linear * PERIOD * math.sin(pose.yaw),
                      pose.yaw + output.angular * PERIOD)
    return pose, statuses, moved


@pytest.mark.parametrize(('command', 'steps'), [
    ('go to the red ball, then the blue cube', ['go to the red ball', 'go to the blue cube']),
    ('go to the red ball and then to the blue cube',
     ['go to the red ball', 'go to the blue cube']),
    ('Go to the red ball. Then go to the blue cube!',
     ['Go to the red ball', 'go to the blue cube']),
    ('approach the red ball, then the blue cube', ['approach the red ball',
                                                   'approach the blue cube']),
    ('turn left and go to the door', ['turn left', 'go to the door']),
    ('go to the red ball and wait 5 seconds', ['go to the red ball', 'wait 5 seconds']),
    ('wait 2 seconds, then go to the red ball', ['wait 2 seconds', 'go to the red ball']),
    ('go to the red ball, after that find the blue cube',
     ['go to the red ball', 'find the blue cube']),
    ('go to the red ball, please go to the blue cube and then stop',
     ['go to the red ball', 'go to the blue cube']),
    ('go to the red ball and come back', ['go to the red ball', 'come back']),
    ('approach the red ball, then the blue cube and finally the green cone',
     ['approach the red ball', 'approach the blue cube', 'approach the green cone']),
    ('hey robot, go to the red ball, then the blue cube',
     ['hey robot, go to the red ball', 'go to the blue cube']),
])
def test_a_command_splits_into_its_steps(command, steps):
    assert [step.text for step in command_steps(clean_command(command)[0])] == steps


@pytest.mark.parametrize(('command', 'kinds'), [
    ('go to the red ball and come back', ['command', 'return']),
    ('go to the red ball, then return to where you started', ['command', 'return']),
    ('go forward 1 meter and back again', ['command', 'return']),
    ('turn left and go back 1 meter', ['command', 'command']),  # a motion, not coming back
    ('turn left, then drive back 50 cm', ['command', 'command']),
    ('go to the red ball, then return to your starting position', ['command', 'return']),
    ('go to the red ball, then go back to the blue cube', ['command', 'command']),
    ('go to the red ball and wait 2 seconds', ['command', 'wait']),
])
def test_each_step_is_a_command_a_wait_or_coming_back(command, kinds):
    assert [step.kind for step in command_steps(clean_command(command)[0])] == kinds




@pytest.mark.parametrize('command', [
    'go to the red ball',
    'find the red ball and go to it',  # the second part names the first's thing
    'go forward 2 meters and stop',  # the stop ends the motion
    'go to the red ball and stop there',
    'go to the red ball then stop',
    'please, go to the red ball',
    'go to the red ball, go!',  # the same command again
    'go to the black and white ball',  # one thing (the grammar does not know it)
    'stop and go to the ball',
    'go to the red ball next to the blue cube',  # a relation, not a step
    'go to the red ball finally',
])
def test_a_command_of_one_step_stays_whole(command):
    text = clean_command(command)[0]
    steps = command_steps(text)
    assert len(steps) == 1 and steps[0].text == text


def test_more_steps_than_max_steps_are_refused_whole():
    text = ', then '.join(f'go to the {colour} ball' for colour in (
        'red', 'blue', 'green', 'pink', 'white', 'black'))
    steps = command_steps(text)
    assert len(steps) == 1 and f'at most {MAX_STEPS}' in steps[0].parsed.problem
    assert step_objects(text) == ('',)


def test_step_statuses_read_like_the_step_s_own():
    status = step_status(2, 3, 'arrived')
    assert split_step(status) == (2, 3, 'arrived') and own(status) == 'arrived'
    assert is_final(status) and is_success(status)
    assert not is_final(step_status(1, 2, 'approaching red ball'))
    assert split_step('arrived') == (None, None, 'arrived')


def test_two_motions_are_made_one_after_the_other_and_said_step_by_step():
    control = controller()
    assert instruct(control, 'turn left 90 degrees and go forward 1 meter') == (
        'step 1/2: turn_left'), control.refusal
    pose, statuses, _ = drive(control, 30.0)
    assert statuses[-1] == 'step 2/2: moved 1.00 m', statuses
    # The next step begins in the tick the first ends: its end is not said on its own.
    assert not any(status.startswith('step 1/2: turned') for status in statuses)
    assert math.degrees(pose.yaw) == pytest.approx(90.0, abs=3.0)
    assert pose.y == pytest.approx(1.0, abs=0.05) and abs(pose.x) < 0.1


def test_each_thing_is_gone_to_in_order_and_the_last_arrival_ends_the_command():
    control = controller()
    looked_for = []

    def sees(thing):
        if not looked_for or looked_for[-1] != thing:
            looked_for.append(thing)
        return NEAR if thing else NOTHING

    statuses = [instruct(control, 'go to the red ball, then the blue cube')]
    statuses += drive(control, 10.0, sees)[1]
    assert looked_for == ['red ball', 'blue cube']
    assert statuses[-1] == 'step 2/2: arrived' and is_final(statuses[-1])
    steps = [split_step(status)[0] for status in statuses]
    assert steps == sorted(steps) and steps[0] == 1


def test_a_step_that_cannot_be_done_refuses_the_whole_command_before_anything_moves():
    control = controller()
    status = instruct(control, 'turn left 90 degrees, then wait 5 minutes')
    assert status.startswith('not understood: ') and 'step 2' in control.refusal
    assert drive(control, 2.0)[1:] == ([status], None)
    without_encoder = controller(encoder=None)
    assert instruct(without_encoder, 'turn left and go to the door').startswith(
        'not understood')
    assert 'text encoder' in without_encoder.refusal


@pytest.mark.parametrize('command', [
    "go to the red ball, then don't go to the blue cube",  # a negation is no join
    'turn left 90 degrees, don’t go forward 1 meter',
    'go forward 1 meter, then go forward 1 meter. STOP!',  # go, or stop?
    'go to the red ball, then go to the blue cube, halt!',
    'wait 59 minutes, then go forward 1 meter',  # a delay, not a wait
    'wait 99999999999999999999 minutes, then go forward 1 meter',
    'stop, then go forward 1 meter',
    'go forward 1 meter and come back slowly',  # a return at another speed: not supported
    'go to the red ball and come back to me',  # to the speaker, not where it began
])
def test_commands_of_several_steps_with_a_part_it_cannot_honour_never_move(command):
    control = controller()
    status = instruct(control, command)
    assert status == f'not understood: {clean_command(command)[0]}', control.refusal
    assert drive(control, 1.0)[2] is None


@pytest.mark.parametrize('command', ['go forward 1 meter and come back',
                                     'go forward 1 meter and back again'])
def test_coming_back_drives_to_where_the_command_began(command):
    control = controller()
    start = Pose2D(2.0, -1.0, 0.5)
    control.tick(0.0, NOTHING, 0.0, 0.0, odom=start, odom_age=0.0)  # odometry is live
    assert instruct(control, command, 0.05) == 'step 1/2: move_forward', control.refusal
    pose, statuses, _ = drive(control, 30.0, start=0.1, pose=start)
    assert 'step 2/2: coming back' in statuses
    assert statuses[-1].startswith('step 2/2: done: came back') and is_final(statuses[-1])
    assert math.hypot(pose.x - start.x, pose.y - start.y) <= 0.3


def test_coming_back_ends_for_good_once_done_or_its_odometry_is_lost():
    control = controller()
    instruct(control, 'go forward 1 meter and come back')
    pose, statuses, _ = drive(control, 30.0)
    assert statuses[-1].startswith('step 2/2: done: came back')
    pushed = Pose2D(pose.x + 0.5, pose.y, pose.yaw)  # someone pushes it away afterwards
    assert drive(control, 5.0, start=30.0, pose=pushed)[2] is None
    lost = controller(input_lost_s=2.0)
    instruct(lost, 'go forward 1 meter and come back')
    pose, _, _ = drive(lost, 7.0)  # there, and on its way back
    statuses = [lost.tick(7.0 + tick * PERIOD, NOTHING, 0.0, 0.0).status
                for tick in range(100)]  # no odometry for 5 s
    assert statuses[-1] == 'step 2/2: stopped: input lost'
    assert drive(lost, 5.0, start=12.0, pose=pose)[1:] == (['step 2/2: stopped: input lost'],
                                                          None)


def test_an_odometry_jump_forgets_where_the_command_began():
    control = controller()
    instruct(control, 'go forward 1 meter and come back')
    pose, _, _ = drive(control, 7.0)
    control.forget_places()  # as a jump of the odometry or a new frame makes it
    _, statuses, moved = drive(control, 5.0, start=7.0, pose=pose)
    assert statuses[-1] == ('step 2/2: not found: where the command began (its odometry was '
                            'lost or jumped)')
    assert moved is None or moved < 7.1


def test_without_odometry_when_the_command_began_coming_back_is_not_found():
    control = controller()
    instruct(control, 'wait 1 second and come back')
    statuses = [control.tick(tick * PERIOD, NOTHING, 0.0, 0.0).status for tick in range(40)]
    assert statuses[-1] == ('step 2/2: not found: where the command began (its odometry was '
                            'lost or jumped)')
    assert is_final(statuses[-1])


def test_an_invalid_embedding_holds_a_command_of_several_steps_as_one_of_one_step():
    control = controller()
    status = control.instruct(np.zeros(3), 'turn left 90 degrees, then go forward 1 meter',
                              0.0)
    assert status.startswith('stopped: invalid embedding') and is_final(status)
    assert drive(control, 1.0)[2] is None


def test_an_e_stop_during_a_wait_is_said_and_the_next_step_waits_for_its_release():
    control = controller()
    instruct(control, 'wait 1 second, then go forward 1 meter')
    statuses = [control.tick(tick * PERIOD, NOTHING, 0.0, 0.0, estop=True, odom=Pose2D(0, 0, 0),
                             odom_age=0.0).status for tick in range(60)]
    assert set(statuses) == {'step 1/2: stopped: e-stop'}
    _, statuses, moved = drive(control, 10.0, start=3.0)  # released
    assert statuses[0] == 'step 2/2: move_forward' and moved is not None


def test_a_step_that_fails_ends_the_command_with_its_reason():
    control = controller()
    instruct(control, 'go to the red ball, then the blue cube')
    _, statuses, _ = drive(control, 40.0)  # nothing is ever seen
    assert statuses[-1] == 'step 1/2: not found' and is_final(statuses[-1])
    assert not any(split_step(status)[0] == 2 for status in statuses)


def test_a_new_command_empties_the_steps():
    control = controller()
    instruct(control, 'go to the red ball, then the blue cube')
    drive(control, 1.0)
    assert instruct(control, 'stop', 1.0) == 'stop'
    assert drive(control, 2.0, lambda thing: NEAR, start=1.05)[1:] == (
        ['stopped: stop command'], None)


def test_a_wait_holds_still_for_its_time_then_the_next_step_begins():
    control = controller()
    instruct(control, 'wait 2 seconds, then go forward 1 meter')
    _, statuses, moved = drive(control, 15.0)
    assert statuses[0] == 'step 1/2: waiting (2 s)' and statuses[1].startswith('step 2/2: ')
    assert statuses[-1] == 'step 2/2: moved 1.00 m' and 2.0 <= moved <= 2.0 + 2 * PERIOD


def test_perception_looks_for_the_thing_of_the_step_the_status_names():
    class Segmenter:
        pass

    perception = Perception(Segmenter())
    perception.command('go to the red ball, then the blue cube')
    assert perception.prompts() == ('red ball',)
    perception.command_status('step 2/2: searching blue cube')
    assert perception.prompts() == ('blue cube',)
    perception.command_status('step 1/3: approaching the green cone')  # another command's
    assert perception.prompts() == ('blue cube',)
    perception.command_status('step 2/2: arrived')
    assert perception.prompts() == ()
    perception.command('go to the red ball')
    assert perception.prompts() == ('red ball',)
    assert perception.looking_for() == (('red ball',), None)


def test_a_target_is_tagged_with_the_step_it_was_looked_for_in():
    class Segmenter:
        pass

    perception = Perception(Segmenter())
    perception.command('go to the red ball, then the blue cube')
    assert perception.looking_for() == (('red ball',), (1, 2))
    perception.command_status('step 2/2: searching blue cube')
    assert perception.looking_for() == (('blue cube',), (2, 2))
    for tracked, step in ((True, (2, 3)), (False, (1, 2)), (True, None), (False, None)):
        label = source_label(tracked, step)
        assert label.startswith('tracked' if tracked else 'segmented')
        assert step_of_source(label) == step


def test_a_target_looked_for_in_another_step_is_not_acted_on():
    """Just after a step ends, the segmenter may not have heard of the next one yet: what it
    still sends of the thing before (tagged with its step) is no target of this step.
    """
    control = controller()
    instruct(control, 'go to the red ball, then the blue cube')

    def segmented(tick, step):  # each tick a segmentation of its own frame
        return Segmentation(0.0, tick * PERIOD, tick * PERIOD, tick * PERIOD, step=step)

    statuses = [control.tick(tick * PERIOD, NEAR, 0.0, 0.0,
                             segmentation=segmented(tick, (1, 2))).status
                for tick in range(40)]
    assert 'step 2/2: go_to' in statuses  # the red ball reached, the blue cube's step began
    assert statuses[-1] != 'step 2/2: arrived', statuses  # the red ball's, still coming
    statuses = [control.tick(tick * PERIOD, NEAR, 0.0, 0.0,
                             segmentation=segmented(tick, (2, 2))).status
                for tick in range(40, 60)]
    assert statuses[-1] == 'step 2/2: arrived', statuses
