"""Commands as users and adversaries type them, through real rclpy and DDS: the command
embedder and the policy together, fed by a volatile publisher as `ros2 topic pub` is.
"""

import math
import time

import pytest
from rclpy.parameter import Parameter
from std_msgs.msg import String
from test_action_policy import (  # noqa: I100 - the sibling test module's helpers
    collect_status,
    CONTROL_HZ,
    data,
    Instructor,
    make_policy,
    SimulatedRobot,
)

from vla_ros.core.models import ModelCache
from vla_ros.fixtures.ros_graph import wait_until
from vla_ros.nodes.command_embedder import CommandEmbedder


@pytest.fixture(scope='module')
def models():
    return ModelCache()


def command_stack(ros, tiny_clip_dir, models):
    """command_embedder + action_policy, a robot, the statuses and a `command` publisher
    with `ros2 topic pub`'s QoS (reliable, volatile).
    """
    ros.add(CommandEmbedder(context=ros.context, model_cache=models, parameter_overrides=[
        Parameter('model', value=str(tiny_clip_dir)), Parameter('device', value='cpu')]))
    node = make_policy(ros, tiny_clip_dir, models, require_camera_for_motion=False,
                       **{'intent.move_forward.duration_s': 0.0})
    robot = SimulatedRobot(ros, heading=math.pi)
    statuses = collect_status(ros)
    commands = ros.publisher(String, 'command')
    assert ros.wait_for_subscribers(commands)
    return node, robot, statuses, commands


def test_nonsense_stops_a_moving_robot_with_one_line(ros, tiny_clip_dir, models, capfd):
    _, robot, statuses, commands = command_stack(ros, tiny_clip_dir, models)
    commands.publish(String(data='move forward'))
    assert wait_until(lambda: robot.command[0] > 0.1, 10)
    capfd.readouterr()
    for text in ('asdfghjkl', 'turn on the lights', "don't move forward", '🚀🚀🚀'):
        commands.publish(String(data=text))
        assert wait_until(lambda text=text: data(statuses)[-1] == f'not understood: {text}', 5)
        assert wait_until(lambda: robot.command == (0.0, 0.0), 1)
        commands.publish(String(data='move forward'))
        assert wait_until(lambda: robot.command[0] > 0.1, 5)
    logged = capfd.readouterr().err
    assert logged.count('not understood: asdfghjkl (unknown word') == 1, logged
    assert "not understood: turn on the lights ('turn' needs a direction" in logged


def test_garbage_at_50_hz_never_moves_the_robot(ros, tiny_clip_dir, models):
    _, robot, statuses, commands = command_stack(ros, tiny_clip_dir, models)
    garbage = ['qwerty', '!!!', 'what time is it', 'do not turn left', 'x' * 2000, '']
    for index in range(100):
        commands.publish(String(data=garbage[index % len(garbage)]))
        time.sleep(0.02)
    time.sleep(1.0)
    assert robot.commands and all(command == (0.0, 0.0) for command in robot.commands)
    assert data(statuses)[-1].startswith('not understood: ')


def test_an_embedding_waits_for_its_own_text(ros, tiny_clip_dir, models):
    """The text may arrive after its embedding (two topics): the policy must not pair the
    new embedding with the previous command's text.
    """
    node = make_policy(ros, tiny_clip_dir, models, require_camera_for_motion=False)
    robot = SimulatedRobot(ros, heading=math.pi)
    statuses = collect_status(ros)
    instructor = Instructor(ros, node)
    instructor.say('stop')
    assert wait_until(lambda: data(statuses)[-1:] == ['stopped: stop command'], 5)
    # "move forward"'s embedding, then a text that negates it: a stale pairing ('stop' text
    # with this embedding) would drive.
    from vla_ros.nodes.conversions import embedding_msg
    vector = instructor.encoder.encode_texts(['move forward'])[0]
    instructor.embeddings.publish(embedding_msg(vector, instructor.encoder.name))
    time.sleep(0.15)
    instructor.instructions.publish(String(data="don't move forward"))
    assert wait_until(lambda: data(statuses)[-1] == "not understood: don't move forward", 5)
    time.sleep(0.5)
    assert all(command == (0.0, 0.0) for command in robot.commands)
    assert len(robot.commands) >= CONTROL_HZ / 2
