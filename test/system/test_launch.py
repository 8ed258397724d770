"""Launch test: launch/vla.launch.py with the tiny test models, checked end to end.

Runs under `colcon test` on a machine with ROS 2 from apt (launch_testing installed). Where
launch_testing is not importable (the PyPI-wheel development machine) it is skipped; the same
checks run there against `vla-ros up` in test_runner.py.
"""

import os
import tempfile
import unittest

import pytest

pytest.importorskip(
    'launch_testing', reason='launch_testing is not installed (it comes with ROS 2 from apt); '
    'test_runner.py runs the same end-to-end checks against vla-ros up')

from ament_index_python.packages import get_package_share_directory  # noqa: E402
from launch import LaunchDescription  # noqa: E402
from launch.actions import IncludeLaunchDescription  # noqa: E402
from launch.launch_description_sources import PythonLaunchDescriptionSource  # noqa: E402
import launch_testing.actions  # noqa: E402
import launch_testing.asserts  # noqa: E402
import rclpy  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402

from vla_ros.fixtures import stack_checks  # noqa: E402
from vla_ros.fixtures.ros_graph import wait_until  # noqa: E402
from vla_ros.fixtures.tiny_models import build_tiny_clip, build_tiny_clipseg  # noqa: E402

MODELS = tempfile.mkdtemp(prefix='vla_ros_launch_test_')


@pytest.mark.launch_test
def generate_test_description():
    clip = build_tiny_clip(os.path.join(MODELS, 'tiny-clip'))
    clipseg = build_tiny_clipseg(os.path.join(MODELS, 'tiny-clipseg'))
    launch_file = os.path.join(get_package_share_directory('vla_ros'), 'launch',
                               'vla.launch.py')
    stack = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(launch_file),
        launch_arguments={
            'clip_model': str(clip), 'clipseg_model': str(clipseg), 'device': 'cpu',
            'image_topic': stack_checks.CAMERA_TOPIC,
            'cmd_vel_topic': stack_checks.CMD_VEL_TOPIC,
        }.items())
    return LaunchDescription([stack, launch_testing.actions.ReadyToTest()]), {
        'clip_name': os.path.basename(str(clip))}


class TestStackOutputs(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.context = rclpy.Context()
        rclpy.init(context=cls.context)
        cls.node = rclpy.create_node('launch_test_probe', context=cls.context)
        cls.executor = SingleThreadedExecutor(context=cls.context)
        cls.executor.add_node(cls.node)

    @classmethod
    def tearDownClass(cls):
        cls.executor.shutdown()
        cls.node.destroy_node()
        rclpy.try_shutdown(context=cls.context)

    def spin_until(self, predicate, timeout, period):
        def spun():
            self.executor.spin_once(timeout_sec=period)
            return predicate()
        return wait_until(spun, timeout, 0.0)

    def test_outputs_arrive_with_types_headers_and_overrides(self, clip_name):
        received = stack_checks.subscribe_all(self.node)
        stack_checks.feed(self.node, received, self.spin_until, timeout=120.0)
        # clip_model (a launch argument) beat the YAML's model, or the label would differ.
        stack_checks.check_outputs(received, clip_name)

    def test_diagnostics_are_aggregated_when_the_aggregator_is_installed(self):
        from ament_index_python.packages import PackageNotFoundError
        from diagnostic_msgs.msg import DiagnosticArray
        try:
            get_package_share_directory('diagnostic_aggregator')
        except PackageNotFoundError:
            self.skipTest('diagnostic_aggregator is not installed')
        names = set()
        self.node.create_subscription(DiagnosticArray, '/diagnostics_agg', lambda array: (
            names.update(status.name for status in array.status)), 10)
        wanted = {f'/vla_ros/{node}' for node in (
            'camera_embedder', 'command_embedder', 'scene_segmenter', 'action_policy')}
        self.assertTrue(self.spin_until(lambda: wanted <= names, 30.0, 0.1), names)


@launch_testing.post_shutdown_test()
class TestShutdown(unittest.TestCase):

    def test_every_process_exited_cleanly(self, proc_info):
        launch_testing.asserts.assertExitCodes(proc_info)
