"""Managed (lifecycle) nodes driven as `ros2 lifecycle set` drives them: the ChangeState
service of each node, over DDS. Outputs stop, the model is freed, the policy stops the robot.
"""

import gc
import math
import weakref

from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PointStamped, Twist
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState, GetState
import numpy as np
import pytest
from rclpy.parameter import Parameter
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image
from std_msgs.msg import String
from test_action_policy import (  # noqa: I100 - the sibling test module's helpers
    collect_status,
    data,
    Instructor,
    make_policy,
    SimulatedRobot,
)

from vla_ros.core.images import to_image_msg
from vla_ros.core.models import ModelCache
from vla_ros.fixtures.ros_graph import wait_until
from vla_ros.nodes.qos import LATCHED
from vla_ros.nodes.scene_segmenter import SceneSegmenter

TRANSITIONS = {'configure': Transition.TRANSITION_CONFIGURE,
               'activate': Transition.TRANSITION_ACTIVATE,
               'deactivate': Transition.TRANSITION_DEACTIVATE,
               'cleanup': Transition.TRANSITION_CLEANUP}


def lifecycle_set(ros, node_name, transition) -> bool:
    """What `ros2 lifecycle set <node> <transition>` does: one ChangeState call."""
    client = ros.probe.create_client(ChangeState, f'{node_name}/change_state')
    assert client.wait_for_service(timeout_sec=10)
    request = ChangeState.Request()
    request.transition.id = TRANSITIONS[transition]
    future = client.call_async(request)
    assert wait_until(future.done, 30)
    ros.probe.destroy_client(client)
    return future.result().success


def lifecycle_get(ros, node_name) -> str:
    client = ros.probe.create_client(GetState, f'{node_name}/get_state')
    assert client.wait_for_service(timeout_sec=10)
    future = client.call_async(GetState.Request())
    assert wait_until(future.done, 10)
    ros.probe.destroy_client(client)
    return future.result().current_state.label


def managed_segmenter(ros, tiny_clipseg_dir, cache, autostart=False):
    return ros.add(SceneSegmenter(context=ros.context, model_cache=cache, parameter_overrides=[
        Parameter('model', value=str(tiny_clipseg_dir)), Parameter('device', value='cpu'),
        Parameter('verify_targets', value=False), Parameter('fovea', value=False),
        Parameter('autostart', value=autostart)]))


def test_segmenter_deactivates_stops_inferring_frees_its_model_and_comes_back(
        ros, tiny_clipseg_dir):
    cache = ModelCache()
    node = managed_segmenter(ros, tiny_clipseg_dir, cache)
    targets = ros.collect(PointStamped, 'target')
    diagnostics = ros.collect(DiagnosticArray, '/diagnostics')
    images = ros.publisher(Image, 'image', qos_profile_sensor_data)
    ros.publisher(String, 'instruction', LATCHED).publish(String(data='go to the red ball'))
    frame = to_image_msg(np.random.default_rng(0).integers(0, 256, (48, 64, 3), np.uint8))

    def fed_and_answered(count):
        frame.header.stamp.sec += 1  # a camera's next frame (the same one again is dropped)
        images.publish(frame)
        return len(targets) >= count

    assert lifecycle_get(ros, 'scene_segmenter') == 'unconfigured'
    assert images.get_subscription_count() == 0 and node.loaded is None
    assert wait_until(lambda: any('unconfigured: not inferring' in status.message
                                  for array in diagnostics for status in array.status), 5)
    assert lifecycle_set(ros, 'scene_segmenter', 'configure')
    assert lifecycle_set(ros, 'scene_segmenter', 'activate')
    assert lifecycle_get(ros, 'scene_segmenter') == 'active'
    # The latched instruction reached the newly subscribed segmenter: it looks for it.
    assert wait_until(lambda: fed_and_answered(3), 20, 0.1)
    model = weakref.ref(node.loaded.model)

    assert lifecycle_set(ros, 'scene_segmenter', 'deactivate')
    assert lifecycle_get(ros, 'scene_segmenter') == 'inactive'
    assert wait_until(lambda: images.get_subscription_count() == 0, 5)
    gc.collect()
    assert model() is None  # nothing holds the model: its memory is free
    count = len(targets)
    for _ in range(10):
        fed_and_answered(count + 1)
    assert len(targets) == count  # nothing inferred, nothing published

    assert lifecycle_set(ros, 'scene_segmenter', 'activate')
    assert wait_until(lambda: fed_and_answered(count + 3), 20, 0.1)
    assert lifecycle_set(ros, 'scene_segmenter', 'deactivate')
    assert lifecycle_set(ros, 'scene_segmenter', 'cleanup')
    assert lifecycle_get(ros, 'scene_segmenter') == 'unconfigured'


def test_a_model_shared_in_one_process_stays_while_another_node_uses_it(
        ros, tiny_clipseg_dir):
    cache = ModelCache()
    first = managed_segmenter(ros, tiny_clipseg_dir, cache, autostart=True)
    # A second user on the same device and backend (torch or OpenVINO: separate models).
    loaded = cache.get('clipseg', str(tiny_clipseg_dir), **first.runtime_options)
    assert loaded is first.loaded
    assert lifecycle_set(ros, 'scene_segmenter', 'deactivate')
    assert cache.get('clipseg', str(tiny_clipseg_dir),
                     **first.runtime_options) is loaded  # still cached


def test_every_node_starts_bare_with_a_model_and_nothing_else(
        ros, tiny_clip_dir, tiny_clipseg_dir, capfd):
    """As `ros2 run vla_ros <node> --ros-args -p model:=<folder>` starts it: no YAML. The
    segmenter, with no contrast list, runs without verification and says so once.
    """
    from vla_ros.nodes.action_policy import ActionPolicyNode
    from vla_ros.nodes.camera_embedder import CameraEmbedder
    from vla_ros.nodes.command_embedder import CommandEmbedder

    cache = ModelCache()
    for node_class, model in ((CameraEmbedder, tiny_clip_dir), (CommandEmbedder, tiny_clip_dir),
                              (SceneSegmenter, tiny_clipseg_dir),
                              (ActionPolicyNode, tiny_clip_dir)):
        node = ros.add(node_class(context=ros.context, model_cache=cache,
                                  parameter_overrides=[Parameter('model', value=str(model))]))
        assert lifecycle_get(ros, node.get_name()) == 'active', node.get_name()
        if node_class is SceneSegmenter:
            assert node.verifier_config is None
    logged = capfd.readouterr().err
    assert logged.count('targets are not verified: verification_contrasts lists nothing') == 1


def test_activation_with_a_missing_model_fails_and_says_why(ros, tmp_path, capfd):
    node = ros.add(SceneSegmenter(context=ros.context, model_cache=ModelCache(),
                                  parameter_overrides=[
                                      Parameter('model', value=str(tmp_path / 'missing')),
                                      Parameter('verify_targets', value=False),
                                      Parameter('autostart', value=False)]))
    assert lifecycle_set(ros, 'scene_segmenter', 'configure')
    assert not lifecycle_set(ros, 'scene_segmenter', 'activate')
    assert lifecycle_get(ros, 'scene_segmenter') == 'inactive' and node.worker is None
    assert 'cannot activate' in capfd.readouterr().err


def test_autostart_false_with_a_missing_model_starts_unconfigured(ros, tmp_path):
    """A lifecycle manager decides when to load: construction does not touch the model."""
    node = ros.add(SceneSegmenter(context=ros.context, model_cache=ModelCache(),
                                  parameter_overrides=[
                                      Parameter('model', value=str(tmp_path / 'missing')),
                                      Parameter('verify_targets', value=False),
                                      Parameter('autostart', value=False)]))
    assert node.loaded is None


def test_autostart_with_a_missing_model_fails_at_start(ros, tmp_path):
    with pytest.raises(Exception, match='missing'):
        SceneSegmenter(context=ros.context, model_cache=ModelCache(), parameter_overrides=[
            Parameter('model', value=str(tmp_path / 'missing')),
            Parameter('verify_targets', value=False)])


def test_policy_sends_zero_on_deactivate_and_stays_quiet(ros, tiny_clip_dir):
    node = make_policy(ros, tiny_clip_dir, ModelCache(), require_camera_for_motion=False,
                       **{'intent.move_forward.duration_s': 0.0})
    robot = SimulatedRobot(ros, heading=math.pi)
    statuses = collect_status(ros)
    twists = ros.collect(Twist, 'cmd_vel')
    Instructor(ros, node).say('move forward')
    assert wait_until(lambda: robot.command[0] > 0.1, 10)

    assert lifecycle_set(ros, 'action_policy', 'deactivate')
    assert wait_until(lambda: twists and twists[-1].linear.x == 0.0, 2)
    assert 'stopped: inactive' in data(statuses)
    count = len(twists)
    assert not wait_until(lambda: len(twists) > count, 1.0)  # no cmd_vel while inactive
    assert node.encoder is None and node.controller is None

    assert lifecycle_set(ros, 'action_policy', 'activate')
    assert wait_until(lambda: data(statuses)[-1:] == ['idle'], 5)
    # The latched instruction from before the activation is not followed: a new one is.
    assert not wait_until(lambda: robot.command[0] > 0.05, 1.0)
    Instructor(ros, node).say('move forward')
    assert wait_until(lambda: robot.command[0] > 0.1, 10)


class FailingSegmenter(SceneSegmenter):
    """A segmenter whose model objects cannot be built (an unexpected error, not a bad path)."""

    def load(self):
        raise RuntimeError('out of device memory')


def test_an_unexpected_failure_in_activation_holds_nothing(ros, tiny_clipseg_dir, capfd):
    cache = ModelCache()
    node = ros.add(FailingSegmenter(context=ros.context, model_cache=cache, parameter_overrides=[
        Parameter('model', value=str(tiny_clipseg_dir)), Parameter('device', value='cpu'),
        Parameter('verify_targets', value=False), Parameter('autostart', value=False)]))
    assert lifecycle_set(ros, 'scene_segmenter', 'configure')
    assert not lifecycle_set(ros, 'scene_segmenter', 'activate')
    assert 'cannot activate: RuntimeError: out of device memory' in capfd.readouterr().err
    assert node.loaded is None and node.worker is None and node._inputs == []
    assert cache._models == {}  # the failed activation's reference was released
