"""The backend parameter on the model nodes: chosen at start, reported, refused when wrong."""

from diagnostic_msgs.msg import DiagnosticArray
import numpy as np
import pytest
from rclpy.parameter import Parameter
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image
from std_msgs.msg import Float32MultiArray

from vla_ros.core.backends import openvino_installed
from vla_ros.core.config import ConfigError
from vla_ros.core.encoders import ClipEncoder
from vla_ros.core.images import to_image_msg
from vla_ros.core.models import load_model, ModelCache, ModelLoadError
from vla_ros.fixtures.ros_graph import wait_until
from vla_ros.nodes.camera_embedder import CameraEmbedder
from vla_ros.nodes.scene_segmenter import SceneSegmenter


def make_node(ros, node_class, model_dir, **parameters):
    overrides = [Parameter('model', value=str(model_dir)), Parameter('device', value='cpu')]
    overrides += [Parameter(name, value=value) for name, value in parameters.items()]
    return ros.add(node_class(context=ros.context, parameter_overrides=overrides,
                              model_cache=ModelCache()))


def inference_values(arrays):
    statuses = [status for array in arrays for status in array.status
                if status.name.endswith('inference')]
    return {pair.key: pair.value for pair in statuses[-1].values} if statuses else None


@pytest.mark.skipif(not openvino_installed(), reason='openvino is not installed')
def test_camera_embedder_on_openvino_publishes_torch_s_embedding(ros, tiny_clip_dir):
    node = make_node(ros, CameraEmbedder, tiny_clip_dir, backend='openvino', precision='f32')
    assert node.loaded.backend == 'openvino'
    received = ros.collect(Float32MultiArray, 'image_embedding')
    arrays = ros.collect(DiagnosticArray, '/diagnostics')
    images = ros.publisher(Image, 'image', qos_profile_sensor_data)
    rgb = np.random.default_rng(5).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    assert wait_until(lambda: received or images.publish(to_image_msg(rgb)), 10, 0.1)
    expected = ClipEncoder(load_model('clip', str(tiny_clip_dir), 'cpu')).encode_images([rgb])
    assert float(np.dot(received[0].data, expected[0])) >= 0.995
    assert wait_until(lambda: inference_values(arrays), 5)
    values = inference_values(arrays)
    assert values['backend'] == 'openvino'
    assert values['device'].startswith('openvino') and '(precision f32)' in values['device']


def test_segmenter_on_torch_verifies_on_torch_too(ros, tiny_clipseg_dir, tiny_clip_dir):
    node = make_node(ros, SceneSegmenter, tiny_clipseg_dir, backend='torch',
                     verification_model=str(tiny_clip_dir),
                     verification_contrasts=['a blue cube'])
    assert node.loaded.backend == node._verifier_model.backend == 'torch'
    arrays = ros.collect(DiagnosticArray, '/diagnostics')
    assert wait_until(lambda: inference_values(arrays), 5)
    assert inference_values(arrays)['backend'] == 'torch'
    assert inference_values(arrays)['device'] == 'torch cpu float32'


@pytest.mark.parametrize(('name', 'value', 'message'), [
    ('backend', 'onnxruntime', 'backend: .* is not one of auto, torch, openvino'),
    ('precision', 'int4', 'precision: .* is not one of default, f32, int8'),
])
def test_bad_backend_settings_fail_at_start(ros, tiny_clip_dir, name, value, message):
    with pytest.raises(ConfigError, match=message):
        make_node(ros, CameraEmbedder, tiny_clip_dir, **{name: value})


def test_int8_on_a_cpu_without_vnni_fails_at_start_with_what_to_set(ros, tiny_clip_dir,
                                                                   monkeypatch):
    from vla_ros.core import backends

    monkeypatch.setattr(backends, 'isa_flags', lambda: ('avx2',))
    with pytest.raises(ModelLoadError, match="no VNNI or AMX .*set precision to 'default'"):
        make_node(ros, CameraEmbedder, tiny_clip_dir, backend='openvino', precision='int8')


def test_backend_is_read_only(ros, tiny_clip_dir):
    node = make_node(ros, CameraEmbedder, tiny_clip_dir, backend='torch')
    assert not node.set_parameters([Parameter('backend', value='openvino')])[0].successful
