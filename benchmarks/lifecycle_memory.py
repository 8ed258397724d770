"""Memory a model node frees on `ros2 lifecycle set <node> deactivate`, in one process.

    python benchmarks/lifecycle_memory.py [--folder /tmp/vla_full_models]

Starts the scene_segmenter and the camera_embedder (full-size random CLIPSeg rd64 and CLIP
ViT-B/32, as benchmarks/perception_latency.py builds them) with autostart, feeds each a frame,
then deactivates and re-activates each through its ChangeState service, reading the process's
resident memory (VmRSS) after each step. Writes results/lifecycle_memory.json.
"""

import argparse
import json
import os
from pathlib import Path
import sys
import tempfile
import time

os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
os.environ.setdefault('HF_HUB_OFFLINE', '1')
sys.path.insert(0, str(Path(__file__).parent))

import numpy as np  # noqa: E402


def rss_mb() -> float:
    for line in Path('/proc/self/status').read_text().splitlines():
        if line.startswith('VmRSS:'):
            return int(line.split()[1]) / 1024.0
    return float('nan')


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--folder', default=str(Path(tempfile.gettempdir()) /
                                               'vla_full_models'))
    parser.add_argument('--output', default=str(Path(__file__).parent / 'results' /
                                                 'lifecycle_memory.json'))
    args = parser.parse_args()

    from lifecycle_msgs.msg import Transition
    from lifecycle_msgs.srv import ChangeState
    from perception_latency import build_full_size
    from rclpy.parameter import Parameter
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image
    from std_msgs.msg import String

    from vla_ros.core.images import to_image_msg
    from vla_ros.core.models import ModelCache
    from vla_ros.fixtures.ros_graph import RosGraph, wait_until
    from vla_ros.nodes.camera_embedder import CameraEmbedder
    from vla_ros.nodes.qos import LATCHED
    from vla_ros.nodes.scene_segmenter import SceneSegmenter

    clip_dir, clipseg_dir = build_full_size(Path(args.folder))
    ros = RosGraph()
    results = {'start_mb': rss_mb()}
    try:
        nodes = {}
        for node_class, model in ((SceneSegmenter, clipseg_dir), (CameraEmbedder, clip_dir)):
            overrides = [Parameter('model', value=str(model)), Parameter('device', value='cpu'),
                         Parameter('cpu_threads', value=2)]
            if node_class is SceneSegmenter:
                overrides.append(Parameter('verify_targets', value=False))
            nodes[node_class.NODE_NAME] = ros.add(node_class(
                context=ros.context, model_cache=ModelCache(), parameter_overrides=overrides))
        ros.publisher(String, 'instruction', LATCHED).publish(String(data='go to the red ball'))
        images = ros.publisher(Image, 'image', qos_profile_sensor_data)
        frame = to_image_msg(np.random.default_rng(0).integers(0, 256, (480, 640, 3), np.uint8))
        for _ in range(20):
            images.publish(frame)
            time.sleep(0.2)
        results['both_active_mb'] = rss_mb()

        def change(name, transition):
            client = ros.probe.create_client(ChangeState, f'{name}/change_state')
            client.wait_for_service(timeout_sec=10)
            request = ChangeState.Request()
            request.transition.id = transition
            future = client.call_async(request)
            wait_until(future.done, 60)
            time.sleep(1.0)
            return future.result().success

        for name in nodes:
            assert change(name, Transition.TRANSITION_DEACTIVATE)
            results[f'{name}_deactivated_mb'] = rss_mb()
            print(f'[lifecycle_memory] {name} deactivated: {rss_mb():.0f} MB', flush=True)
        for name in nodes:
            assert change(name, Transition.TRANSITION_ACTIVATE)
            results[f'{name}_reactivated_mb'] = rss_mb()
    finally:
        ros.close()
    results['freed_by_both_mb'] = (results['both_active_mb']
                                   - results['camera_embedder_deactivated_mb'])
    for key, value in results.items():
        print(f'{key}: {value:.0f} MB')
    Path(args.output).write_text(json.dumps(results, indent=2))
    print(f'wrote {args.output}')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
