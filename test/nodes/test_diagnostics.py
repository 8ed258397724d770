"""Diagnostics: report levels in the core, and what the nodes put on /diagnostics."""

from diagnostic_msgs.msg import DiagnosticArray
import numpy as np
import pytest
from rclpy.parameter import Parameter
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image

from vla_ros.core.diagnostics import ERROR, inference_report, OK, WARN
from vla_ros.core.images import to_image_msg
from vla_ros.core.inference import WorkerStats
from vla_ros.core.models import ModelCache
from vla_ros.fixtures.ros_graph import wait_until
from vla_ros.nodes.action_policy import ActionPolicyNode
from vla_ros.nodes.camera_embedder import CameraEmbedder


def stats(received=10, processed=10, dropped=0, rejected=0, failed=0, received_at=100.0,
          error=''):
    return WorkerStats(received, processed, dropped, rejected, failed, 0.01, 0.01, 0.02, error,
                       received_at)


def report(now_stats, before=None, now=100.5, stale=2.0, max_drop=0.5):
    return inference_report(now_stats, before, 1.0, now, model='m', device='cpu',
                            stale_input_s=stale, max_drop_fraction=max_drop)


@pytest.mark.parametrize(('current', 'before', 'now', 'level', 'message'), [
    (stats(), stats(0, 0), 100.5, OK, 'running'),
    (stats(), stats(), 110.0, WARN, 'no input for 10.0 s'),
    (stats(received_at=None, received=0, processed=0), None, 100.0, WARN, 'no input yet'),
    (stats(rejected=1, error='ImageConversionError: bad'), stats(), 100.5, WARN,
     'dropping bad input'),
    (stats(received=30, dropped=18), stats(), 100.5, WARN, 'dropping 90%'),
    (stats(failed=2, error='RuntimeError: boom'), stats(failed=1), 100.5, ERROR,
     'inference failing: RuntimeError: boom'),
])
def test_report_levels(current, before, now, level, message):
    result = report(current, before, now)
    assert result.level == level and message in result.message
    assert result.values['model'] == 'm' and 'latency p95 (ms)' in result.values


def test_occasional_input_is_never_stale():
    assert inference_report(stats(), stats(), 1.0, 1000.0, model='m', device='cpu',
                            stale_input_s=None, max_drop_fraction=0.5).level == OK


def statuses(arrays, task):
    return [status for array in arrays for status in array.status if status.name.endswith(task)]


def test_camera_embedder_reports_stale_then_running(ros, tiny_clip_dir):
    ros.add(CameraEmbedder(context=ros.context, model_cache=ModelCache(), parameter_overrides=[
        Parameter('model', value=str(tiny_clip_dir)), Parameter('cpu_threads', value=3),
        Parameter('diagnostics_stale_input_s', value=0.5)]))
    arrays = ros.collect(DiagnosticArray, '/diagnostics')
    assert wait_until(lambda: statuses(arrays, 'inference'), 5)
    first = statuses(arrays, 'inference')[0]
    assert first.name == '/camera_embedder: inference' and first.hardware_id == 'tiny-clip'
    assert first.level == bytes([WARN]) and 'no input' in first.message
    images = ros.publisher(Image, 'image', qos_profile_sensor_data)
    frame = to_image_msg(np.zeros((20, 20, 3), np.uint8))

    def running():
        images.publish(frame)
        latest = statuses(arrays, 'inference')[-1]
        return latest.level == bytes([OK]) and latest.message == 'running'
    assert wait_until(running, 10, 0.1)
    values = {pair.key: pair.value for pair in statuses(arrays, 'inference')[-1].values}
    assert float(values['input rate (Hz)']) > 0 and int(values['processed']) > 0
    # Set on the worker thread, where the model runs (3: neither this machine's default nor
    # the one thread of a test worker).
    assert values['cpu_threads'] == '3'


def test_policy_reports_its_state(ros, tiny_clip_dir):
    ros.add(ActionPolicyNode(context=ros.context, model_cache=ModelCache(),
                             parameter_overrides=[Parameter('model', value=str(tiny_clip_dir))]))
    arrays = ros.collect(DiagnosticArray, '/diagnostics')
    assert wait_until(lambda: statuses(arrays, 'control'), 5)
    status = statuses(arrays, 'control')[-1]
    values = {pair.key: pair.value for pair in status.values}
    assert status.level == bytes([OK]) and values['status'] == 'idle'
    assert values['e-stop'] == 'False' and values['cmd_vel linear.x'] == '+0.000'
