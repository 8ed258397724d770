"""Measured motions and manners (core.motion) through the controller: "go forward 2 meters"
ends when the odometry says so, never on a guess; "slowly" and "quickly" stay in the limits.
"""

import math

import numpy as np
import pytest

from vla_ros.core.control import Controller, ControlSettings
from vla_ros.core.odometry import Pose2D
from vla_ros.core.policy import DEFAULT_INTENTS, IntentClassifier, TargetView
from vla_ros.core.status import is_final
from vla_ros.core.text import clean_command

PERIOD = 0.05
NAMES = [intent.name for intent in DEFAULT_INTENTS]


def embedding_of(intent_name):
    vector = np.zeros(len(DEFAULT_INTENTS), np.float32)
    vector[NAMES.index(intent_name)] = 1.0
    return vector


def controller(**settings):
    """The default intents, recognised from one-hot embeddings: the grammar and the motion
    without a model.
    """
    classifier = IntentClassifier(DEFAULT_INTENTS, [embedding_of(name)[None] for name in NAMES],
                                  0.5, 0.1)
    return Controller(classifier, ControlSettings(require_camera_for_motion=False, **settings))


def instruct(control, command, intent_name, now=0.0):
    return control.instruct(embedding_of(intent_name), clean_command(command)[0], now)


def drive(control, seconds, pose=None, start=0.0, odometry=lambda now: True, slip=1.0):
    """Tick at 20 Hz, moving a unicycle as commanded (times `slip`); `odometry(now)`: whether
    odometry is published then. Returns (final pose, outputs).
    """
    pose, outputs = pose or Pose2D(0.0, 0.0, 0.0), []
    published = (pose, start)  # the newest odometry: it ages while none comes
    for tick in range(int(seconds / PERIOD)):
        now = start + tick * PERIOD
        if odometry(now):
            published = (pose, now)
        output = control.tick(now, None, None, 0.0, odom=published[0],
                              odom_age=now - published[1])
        outputs.append(output)
        linear, angular = output.linear * slip, output.angular * slip
        pose = Pose2D(pose.x + linear * PERIOD * math.cos(pose.yaw),
                      pose.y + linear * PERIOD * math.sin(pose.yaw), pose.yaw + angular * PERIOD)
    return pose, outputs


@pytest.mark.parametrize(('command', 'intent', 'metres', 'degrees'), [
    ('go forward 2 meters', 'move_forward', 2.0, 0.0),
    ('back up 50 cm', 'move_backward', -0.5, 0.0),
    ('move forward a little', 'move_forward', 0.25, 0.0),
    ('go forward 1 metre at full speed', 'move_forward', 1.0, 0.0),
    ('turn left 90 degrees', 'turn_left', 0.0, 90.0),
    ('turn right a quarter turn', 'turn_right', 0.0, -90.0),
    ('turn around', 'turn_left', 0.0, 180.0),
    ('slowly turn right 45 degrees', 'turn_right', 0.0, -45.0),
])
def test_a_measured_motion_ends_when_the_odometry_shows_it_done(command, intent, metres,
                                                                degrees):
    control = controller()
    assert instruct(control, command, intent) == intent, control.refusal
    pose, outputs = drive(control, 40.0)
    status = outputs[-1].status
    assert is_final(status) and status.startswith('moved' if metres else 'turned'), status
    assert pose.x == pytest.approx(metres, abs=0.02 + 0.02 * abs(metres))
    assert math.degrees(pose.yaw) == pytest.approx(degrees, abs=2.0)
    assert (outputs[-1].linear, outputs[-1].angular) == (0.0, 0.0)


def test_manners_scale_a_motion_and_never_pass_the_limits():
    speeds = {}
    for command in ('go forward 1 meter', 'go forward 1 meter slowly',
                    'go forward 1 meter quickly'):
        control = controller()
        instruct(control, command, 'move_forward')
        _, outputs = drive(control, 5.0)
        speeds[command] = max(output.linear for output in outputs)
        limit = control.settings.limits.max_linear_mps
        assert all(abs(output.linear) <= limit + 1e-9 for output in outputs)
    assert speeds['go forward 1 meter slowly'] == pytest.approx(
        0.5 * speeds['go forward 1 meter'])
    assert speeds['go forward 1 meter quickly'] == pytest.approx(
        controller().settings.limits.max_linear_mps)
    control = controller()
    instruct(control, 'go forward 1 meter quickly', 'move_forward')
    assert 'quickly: at most 0.5 m/s' in drive(control, 1.0)[1][-1].status


def test_slowly_halves_a_go_to_and_quickly_says_the_limit_that_applies():
    linear = {}
    for command in ('go to the red ball', 'go slowly to the red ball',
                    'go to the red ball quickly'):
        control = controller()
        instruct(control, command, 'go_to')
        view = TargetView(0.0, 0.0, 0.9, 0.05, 0.6)
        for tick in range(40):
            output = control.tick(tick * PERIOD, view, 0.0, 0.0)
        linear[command] = output.linear
        if 'quickly' in command:
            assert output.status == ('approaching red ball (quickly: at most 0.25 m/s, '
                                     'approach_speed_mps)')
    assert linear['go slowly to the red ball'] == pytest.approx(
        0.5 * linear['go to the red ball'])
    assert linear['go to the red ball quickly'] == pytest.approx(linear['go to the red ball'])


def test_without_odometry_a_measured_motion_holds_and_goes_on_when_it_is_back():
    control = controller()
    instruct(control, 'go forward 1 meter', 'move_forward')
    pose, outputs = drive(control, 2.0, odometry=lambda now: now < 0.5 or now >= 1.5)
    held = outputs[21:29]  # input_timeout_s after the last odometry
    assert all(output.linear == 0.0 for output in held), [o.linear for o in outputs]
    assert held[-1].status == 'stopped: stale odometry'
    assert outputs[-1].linear > 0.0 and not is_final(outputs[-1].status)
    pose, outputs = drive(control, 30.0, pose, start=2.0)
    # What it moved while the odometry was silent counts once it is back.
    assert outputs[-1].status.startswith('moved') and pose.x == pytest.approx(1.0, abs=0.02)


def test_a_motion_held_by_an_obstacle_ends_short_and_says_how_far_it_got():
    control = controller()
    instruct(control, 'go forward 1 meter', 'move_forward')
    wall = np.array([[0.28, y] for y in np.linspace(-0.3, 0.3, 13)])  # ahead, moving with it
    outputs = [control.tick(tick * PERIOD, None, None, 0.0, scan=wall, scan_age=0.0,
                            odom=Pose2D(0.0, 0.0, 0.0), odom_age=0.0) for tick in range(400)]
    assert all(output.linear == 0.0 for output in outputs)
    status = outputs[-1].status
    assert status == ('stopped short: move_forward made 0.00 of 1.00 m in the time allowed')
    assert is_final(status)


def test_a_base_that_does_not_move_as_commanded_ends_the_motion_without_claiming_it():
    control = controller()
    instruct(control, 'go forward 1 meter', 'move_forward')
    pose, outputs = drive(control, 30.0, slip=0.1)  # wheels slipping: the odometry shows little
    assert is_final(outputs[-1].status) and not outputs[-1].status.startswith('moved')
    assert (outputs[-1].linear, outputs[-1].angular) == (0.0, 0.0) and pose.x < 0.5


@pytest.mark.parametrize(('command', 'intent', 'why'), [
    ('go forward 20 meters', 'move_forward', 'beyond max_motion_distance_m (5 m)'),
    ('turn left 3 turns', 'turn_left', "'3' what?"),
    ('turn left 1000 degrees', 'turn_left', 'beyond max_motion_angle_deg (720°)'),
    ('go forward for 5 minutes', 'move_forward', 'longer than max_motion_duration_s'),
    ('turn left 2 meters', 'turn_left', 'a turn takes degrees'),
    ('go forward 90 degrees', 'move_forward', 'a move takes meters'),
    ('go 2 meters to the red ball', 'go_to', 'with a thing to go to'),
    ('stop for 3 seconds', 'stop', 'a stop lasts until the next command'),
    ('go forward for 60 seconds at full speed', 'move_forward', 'is 30 m, beyond'),
    ('turn back around', 'move_backward', 'no motion of this policy makes'),  # not a reverse
    ('turn back', 'move_backward', "'turn' turns; move_backward does not"),
    ('back up to the red ball', 'go_to', 'reversing to a thing is not supported'),
    ('go to the red ball left', 'go_to', "'left' with a thing"),
])
def test_amounts_it_cannot_do_are_refused_and_it_holds_still(command, intent, why):
    control = controller()
    status = instruct(control, command, intent)
    assert status.startswith('not understood') and why in control.refusal, control.refusal
    _, outputs = drive(control, 1.0)
    assert all((output.linear, output.angular) == (0.0, 0.0) for output in outputs)


@pytest.mark.parametrize('command', ['turn left 90 degrees quickly',
                                     'go forward 2 meters quickly'])
def test_a_fast_motion_whose_odometry_pauses_ends_where_it_was_asked(command):
    """At the limits the base does 0.25 m or 0.5 rad in the half second before the silence
    is declared stale: it counts once the odometry is back, as one message's motion.
    """
    control = controller()
    instruct(control, command, 'turn_left' if 'turn' in command else 'move_forward')
    pose, outputs = drive(control, 30.0, odometry=lambda now: not 1.0 <= now < 2.5)
    assert is_final(outputs[-1].status), outputs[-1].status
    if 'turn' in command:
        assert math.degrees(pose.yaw) == pytest.approx(90.0, abs=3.0)
    else:
        assert pose.x == pytest.approx(2.0, abs=0.05)


def test_odometry_at_a_low_rate_is_measured_message_by_message():
    control = controller()
    instruct(control, 'go forward 2 meters quickly', 'move_forward')
    pose, outputs = drive(control, 30.0, odometry=lambda now: round(now / PERIOD) % 8 == 0)
    assert outputs[-1].status.startswith('moved') and pose.x == pytest.approx(2.0, abs=0.1)


def test_odometry_at_a_low_rate_at_full_speed_is_not_taken_for_jumps():
    """2.5 Hz odometry of a base at 1 m/s moves 0.4 m a message: a motion since the last
    message, not since the last tick (a jump would forget the map and the goal).
    """
    control = controller()
    instruct(control, 'go forward 2 meters quickly', 'move_forward')
    drive(control, 30.0, odometry=lambda now: round(now / PERIOD) % 8 == 0)
    assert not control.odometry_jumped


def test_a_stop_after_a_measured_motion_ends_it_there():
    control = controller()
    assert instruct(control, 'go forward 1 meter and then stop', 'move_forward') == (
        'move_forward')
    pose, outputs = drive(control, 20.0)
    assert outputs[-1].status.startswith('moved') and pose.x == pytest.approx(1.0, abs=0.03)


def test_motion_made_before_the_command_does_not_count_towards_it():
    """At 2.5 Hz an odometry message may predate the command by 0.4 s: measuring from it
    would count what the base did on the command before.
    """
    control = controller()
    instruct(control, 'turn left quickly', 'turn_left')
    pose, published, start_yaw = Pose2D(0.0, 0.0, 0.0), None, None
    for tick in range(600):
        now = tick * PERIOD
        if tick % 8 == 0:
            published = (pose, now)
        if tick == 27:  # 0.15 s after a message, the base turning at 1 rad/s
            instruct(control, 'turn left 30 degrees', 'turn_left', now)
            start_yaw = pose.yaw
        output = control.tick(now, None, None, 0.0, odom=published[0],
                              odom_age=now - published[1])
        pose = Pose2D(pose.x, pose.y, pose.yaw + output.angular * PERIOD)
    assert output.status.startswith('turned'), output.status
    assert math.degrees(pose.yaw - start_yaw) == pytest.approx(30.0, abs=3.0)
