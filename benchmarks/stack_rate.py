"""Frames per second of the two image nodes side by side, as the launch file runs them.

    python benchmarks/stack_rate.py [--seconds 20] [--rate 30] [--threads 0 1]
                                    [--tracking on off] [--full-size DIR]

camera_embedder and scene_segmenter each run in their own process with config/vla.yaml (the
embedded models, fovea and target verification on), on this machine's cores and real DDS,
both allowed `--rate` inferences a second. This script is the camera: it publishes what the
simulator's camera saw in 5 closed-loop episodes (160x120, the demo camera's size; frames
taken at 10 Hz, so at 30 Hz the world moves 3x faster than it did) with each episode's
command, or `--input views`: 20 views of different scenes (every frame new). It counts what
comes back (image_embedding, target) and reads each node's worker time per frame from
/diagnostics. One round per `cpu_threads` value, in turns, so that both
see the same machine; 0 is torch's default (one thread per core in each process).
`--full-size DIR`: the nodes run random-weight CLIP ViT-B/32 and CLIPSeg rd64 instead (the
full-size architectures, written to DIR if missing; the verification CLIP too), on the
YAML's backend. `--tracking on off` runs each round with the segmenter's tracker and without
it (the baseline: a target per segmentation); masks count the segmentations. Prints a table
and writes JSON (--output).
"""

import argparse
import json
import os
from pathlib import Path
import random
import signal
import subprocess
import sys
import tempfile
import time

os.environ['ROS_DOMAIN_ID'] = os.environ.get('VLA_BENCH_DOMAIN_ID', str(random.randint(100, 200)))
os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')

from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from geometry_msgs.msg import PointStamped  # noqa: E402
import rclpy  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.qos import DurabilityPolicy, qos_profile_sensor_data, QoSProfile  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402
from std_msgs.msg import Float32MultiArray, String  # noqa: E402

from vla_ros.core import paths  # noqa: E402
from vla_ros.core.images import to_image_msg  # noqa: E402

NODES = ('camera_embedder', 'scene_segmenter')
COMMAND = 'go to the red ball'
BIN = Path(sys.executable).parent


def episode_stream(seeds=range(5)):
    """What the camera sees, frame after frame, in the oracle's closed-loop episodes (search
    turns and approaches; 160x120, the demo camera), each frame with its episode's command.
    """
    from vla_ros.evaluation.lockstep import OracleMode, run_episode, StackSettings
    from vla_ros.sim.scene import generate_scene
    stream = []
    for seed in seeds:
        scene = generate_scene(seed)
        episode = run_episode(scene, OracleMode(StackSettings.from_params_file(
            paths.default_params_file())), record_every=1)
        stream += [(rgb, scene.command) for rgb, _ in episode.frames]
    return stream


def independent_views(count=20):
    """Views of different scenes (every frame new to the nodes: nothing to continue)."""
    from vla_ros.sim.dataset import render_views
    stream = []
    for seed in range(count // 4):
        stream += [(sample.image, COMMAND)
                   for sample in render_views(900 + seed, 'train', 4, 160, 120)]
    return stream


def node_threads(threads: str) -> dict:
    """'1' -> both nodes 1; '1/2' -> camera_embedder 1, scene_segmenter 2."""
    values = [int(value) for value in threads.split('/')]
    return dict(zip(NODES, values * 2 if len(values) == 1 else values))


def start_nodes(threads: str, rate: float, folder: Path, models: dict, tracking: bool):
    # A second params file, read after the stack's: its per-node values replace the YAML's
    # (a plain -p does not, the YAML names the nodes).
    overrides = folder / 'overrides.yaml'
    overrides.write_text(''.join(
        f'/**/{name}:\n  ros__parameters:\n    max_rate_hz: {float(rate)}\n'
        f'    cpu_threads: {count}\n    device: cpu\n'
        + (f'    track_targets: {str(tracking).lower()}\n' if name == 'scene_segmenter' else '')
        + ''.join(f"    {key}: '{value}'\n" for key, value in models.get(name, {}).items())
        for name, count in node_threads(threads).items()))
    arguments = ['--ros-args', '--params-file', str(paths.default_params_file()),
                 '--params-file', str(overrides), '-r', '__ns:=/vla',
                 '-r', 'image:=/camera/image_raw']
    return [subprocess.Popen([str(BIN / name), *arguments], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True, start_new_session=True)
            for name in NODES]


def stop_nodes(processes):
    for process in processes:
        os.killpg(process.pid, signal.SIGINT)
    for process in processes:
        try:
            process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()


def run_round(node, executor, messages, threads, rate, seconds, folder, max_rate,
              models=None, tracking=True):
    counts = {'image_embedding': [], 'target': [], 'segmentation': []}
    latency = {}

    def on_diagnostics(array):
        for status in array.status:
            name = status.name.split(':')[0].rsplit('/', 1)[-1]
            values = {pair.key: pair.value for pair in status.values}
            if name in NODES and values.get('latency p50 (ms)', 'n/a') != 'n/a':
                latency[name] = float(values['latency p50 (ms)'])
    subscriptions = [
        node.create_subscription(Float32MultiArray, '/vla/image_embedding',
                                 lambda msg: counts['image_embedding'].append(time.monotonic()),
                                 10),
        node.create_subscription(PointStamped, '/vla/target',
                                 lambda msg: counts['target'].append(time.monotonic()), 10),
        # One mask per segmentation: targets in between are the tracker's.
        node.create_subscription(Image, '/vla/segmentation/mask', lambda msg: counts[
            'segmentation'].append(time.monotonic()), 10),
        node.create_subscription(DiagnosticArray, '/diagnostics', on_diagnostics, 10)]
    images = node.create_publisher(Image, '/camera/image_raw', qos_profile_sensor_data)
    # What the command embedder latches for the segmenter (it is not started here).
    commands = node.create_publisher(String, '/vla/instruction', QoSProfile(
        depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL))
    processes = start_nodes(threads, max_rate, folder, models or {}, tracking)
    try:
        print(f'[stack_rate] cpu_threads={threads}: loading the models ...', flush=True)
        sent, started = 0, time.monotonic()

        def publish_frame():
            nonlocal sent
            image, command = messages[sent % len(messages)]
            if sent == 0 or command.data != messages[(sent - 1) % len(messages)][1].data:
                commands.publish(command)
            image.header.stamp = node.get_clock().now().to_msg()
            images.publish(image)
            sent += 1
        # Warm up until both nodes answer (model loading takes seconds), then 2 s more.
        # Full-size models on OpenVINO convert at their first start: a minute or more.
        patience = 900 if models else 120
        while not (counts['image_embedding'] and counts['target']):
            if time.monotonic() - started > patience:
                raise RuntimeError(f'the nodes did not answer within {patience} s')
            sent = 0  # the first frame goes with its command
            publish_frame()
            executor.spin_once(timeout_sec=1.0 / rate)
        window_start = time.monotonic() + 2.0
        window_end = window_start + seconds
        next_frame, sent_in_window = time.monotonic(), 0
        while time.monotonic() < window_end:
            now = time.monotonic()
            if now >= next_frame:
                publish_frame()
                sent_in_window += window_start <= now
                # A late frame is not made up for with a burst: a camera never sends two at once.
                next_frame = max(next_frame + 1.0 / rate, now + 0.5 / rate)
            executor.spin_once(timeout_sec=max(0.0, min(next_frame, window_end) - now))
        latency.clear()  # the next reports cover the window's last second
        deadline = time.monotonic() + 3.0
        while len(latency) < len(NODES) and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.1)
    finally:
        stop_nodes(processes)
        for subscription in subscriptions:
            node.destroy_subscription(subscription)
        node.destroy_publisher(images)
        node.destroy_publisher(commands)
    result = {'cpu_threads': threads, 'max_rate_hz': max_rate, 'tracking': tracking,
              'camera_hz': sent_in_window / seconds}
    for topic, stamps in counts.items():
        inside = [stamp for stamp in stamps if window_start <= stamp < window_end]
        result[f'{topic}_hz'] = len(inside) / seconds
    for name in NODES:
        result[f'{name}_ms_p50'] = latency.get(name)
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--seconds', type=float, default=20.0)
    parser.add_argument('--rate', type=float, default=30.0, help='camera frames per second')
    parser.add_argument('--max-rate', type=float, default=0.0,
                        help="the nodes' max_rate_hz (default: --rate)")
    parser.add_argument('--threads', nargs='+', default=['0', '1'],
                        help="cpu_threads values to compare (0 = torch's default; "
                        "'1/2' = camera_embedder 1, scene_segmenter 2)")
    parser.add_argument('--rounds', type=int, default=2, help='turns through --threads')
    parser.add_argument('--tracking', nargs='+', choices=('on', 'off'), default=['on'],
                        help="the segmenter's track_targets in turn (off: a target per "
                        'segmentation, the baseline)')
    parser.add_argument('--input', choices=('episodes', 'views'), default='episodes',
                        help='episodes: the camera streams of 5 oracle episodes; views: 20 '
                        'views of different scenes, cycled (the worst case)')
    parser.add_argument('--full-size', type=Path, metavar='DIR',
                        help='run random-weight full-size CLIP and CLIPSeg (written to DIR '
                        'if missing) instead of the embedded models')
    parser.add_argument('--output', type=Path)
    args = parser.parse_args(argv)
    models = {}
    if args.full_size:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from perception_latency import build_full_size

        print(f'[stack_rate] full-size random models in {args.full_size} ...', flush=True)
        clip, clipseg = build_full_size(args.full_size)
        models = {'camera_embedder': {'model': clip},
                  'scene_segmenter': {'model': clipseg, 'verification_model': clip}}
    print(f'[stack_rate] rendering the camera stream ({args.input}) ...', flush=True)
    frames = episode_stream() if args.input == 'episodes' else independent_views()
    print(f'[stack_rate] {len(frames)} frames', flush=True)
    messages = [(to_image_msg(rgb), String(data=command)) for rgb, command in frames]
    rclpy.init()
    node = rclpy.create_node('stack_rate_camera')
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    results = []
    try:
        with tempfile.TemporaryDirectory() as folder:
            for _ in range(args.rounds):
                for threads in args.threads:
                    for tracking in args.tracking:
                        results.append(run_round(node, executor, messages, threads,
                                                 args.rate, args.seconds, Path(folder),
                                                 args.max_rate or args.rate, models,
                                                 tracking == 'on'))
                        print('  ' + json.dumps(results[-1]), flush=True)
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.shutdown()
    print(f'\n{os.cpu_count()} CPUs, camera at {args.rate:g} Hz ({args.input}, '
          f'{len(frames)} frames), {args.seconds:g} s per round')
    print('| cpu_threads | tracking | camera (Hz) | image_embedding (Hz) | segmentations (Hz) '
          '| target (Hz) | targets / segmentations | camera_embedder ms/frame '
          '| scene_segmenter ms/frame |')
    print('|---|---|---|---|---|---|---|---|---|')
    for result in results:
        threads = 'default' if result['cpu_threads'] == '0' else result['cpu_threads']
        ratio = result['target_hz'] / max(result['segmentation_hz'], 1e-9)
        print(f"| {threads} | {'on' if result['tracking'] else 'off'} | "
              f"{result['camera_hz']:.1f} | {result['image_embedding_hz']:.1f} | "
              f"{result['segmentation_hz']:.2f} | {result['target_hz']:.1f} | {ratio:.1f}x | "
              f"{result['camera_embedder_ms_p50']} | {result['scene_segmenter_ms_p50']} |")
    if args.output:
        args.output.write_text(json.dumps({
            'cpus': os.cpu_count(), 'input': args.input, 'frames': len(frames),
            'models': 'full-size random' if models else 'embedded',
            'seconds': args.seconds, 'results': results}, indent=2) + '\n')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
