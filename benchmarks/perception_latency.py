"""Per-node latency of the perception nodes, against the bare model call in the same run.

    python benchmarks/perception_latency.py [--sizes tiny full] [--frames 30]

For each model size it writes random-weight checkpoints (tiny: the test models; full: the
CLIP ViT-B/32 and CLIPSeg rd64 architectures, 352 px input as CIDAS/clipseg-rd64-refined),
then measures on 640x480 rgb8 frames:
  model   the encoder/segmenter call alone on a decoded RGB array (the baseline),
  node    the node's worker time per frame (conversion + model + message building),
  e2e     publish -> output received over DDS in one process (adds transport and hand-over).
Random weights time the same as trained ones. Prints a table and writes JSON (--output).
"""

import argparse
import json
import os
from pathlib import Path
import sys
import tempfile
import threading
import time

os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
os.environ.setdefault('HF_HUB_OFFLINE', '1')

import numpy as np  # noqa: E402
import torch  # noqa: E402

FRAME_SHAPE = (480, 640, 3)
COMMAND = 'go to the red ball'


def build_full_size(folder: Path):
    """Random-weight CLIP ViT-B/32 and CLIPSeg rd64 (ViT-B/16, 352 px) model folders."""
    from transformers import (
        CLIPConfig,
        CLIPImageProcessorPil,
        CLIPModel,
        CLIPProcessor,
        CLIPSegConfig,
        CLIPSegForImageSegmentation,
        CLIPSegProcessor,
        ViTImageProcessorPil,
    )

    from vla_ros.fixtures.tiny_models import tiny_tokenizer

    tokenizer = tiny_tokenizer()  # character-level: longer sequences than BPE, so pessimistic
    tokenizer.model_max_length = 77
    text = dict(vocab_size=49408, bos_token_id=tokenizer.bos_token_id,
                eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    clip_dir, clipseg_dir = folder / 'clip-vit-b32', folder / 'clipseg-rd64'
    if not (clip_dir / 'config.json').exists():
        CLIPModel(CLIPConfig(text_config=text)).save_pretrained(clip_dir)  # defaults: ViT-B/32
        CLIPProcessor(image_processor=CLIPImageProcessorPil(), tokenizer=tokenizer) \
            .save_pretrained(clip_dir)
    if not (clipseg_dir / 'config.json').exists():
        config = CLIPSegConfig(text_config=text, vision_config=dict(patch_size=16),
                               reduce_dim=64, extract_layers=[3, 6, 9])
        CLIPSegForImageSegmentation(config).save_pretrained(clipseg_dir)
        image_processor = ViTImageProcessorPil(size={'height': 352, 'width': 352},
                                               image_mean=[0.485, 0.456, 0.406],
                                               image_std=[0.229, 0.224, 0.225])
        CLIPSegProcessor(image_processor=image_processor, tokenizer=tokenizer) \
            .save_pretrained(clipseg_dir)
    return clip_dir, clipseg_dir


def build_tiny(folder: Path):
    from vla_ros.fixtures.tiny_models import build_tiny_clip, build_tiny_clipseg
    return build_tiny_clip(folder / 'tiny-clip'), build_tiny_clipseg(folder / 'tiny-clipseg')


def percentiles(samples):
    return {'p50_ms': 1e3 * float(np.percentile(samples, 50)),
            'p95_ms': 1e3 * float(np.percentile(samples, 95)), 'n': len(samples)}


def time_calls(call, count, warmup=2):
    for _ in range(warmup):
        call()
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        call()
        samples.append(time.perf_counter() - started)
    return percentiles(samples)


def bare_model_times(clip_dir, clipseg_dir, frames):
    from vla_ros.core.encoders import ClipEncoder, ClipSegSegmenter
    from vla_ros.core.models import load_model

    rgb = np.random.default_rng(0).integers(0, 256, FRAME_SHAPE, dtype=np.uint8)
    clip = ClipEncoder(load_model('clip', str(clip_dir), 'cpu'))
    segmenter = ClipSegSegmenter(load_model('clipseg', str(clipseg_dir), 'cpu'))
    segmenter.set_prompts(['red ball'])
    return {
        'camera_embedder': time_calls(lambda: clip.encode_images([rgb]), frames),
        'command_embedder': time_calls(lambda: clip.encode_texts([COMMAND]), frames),
        'scene_segmenter': time_calls(lambda: segmenter.segment(rgb), frames),
    }


def node_times(node_class, model_dir, frames):
    """Drive one node closed-loop (next input once the previous output arrived)."""
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    from rclpy.parameter import Parameter
    from rclpy.qos import DurabilityPolicy, QoSProfile
    from sensor_msgs.msg import Image
    from std_msgs.msg import String

    from vla_ros.core.images import to_image_msg

    context = rclpy.Context()
    rclpy.init(context=context)
    node = node_class(context=context, parameter_overrides=[
        Parameter('model', value=str(model_dir)), Parameter('device', value='cpu'),
        Parameter('max_rate_hz', value=120.0)])
    probe = Node('bench_probe', context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    executor.add_node(probe)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    arrived = threading.Event()
    output = {'CameraEmbedder': 'image_embedding', 'CommandEmbedder': 'text_embedding',
              'SceneSegmenter': 'target'}[node_class.__name__]
    from geometry_msgs.msg import PointStamped
    from std_msgs.msg import Float32MultiArray
    message_type = PointStamped if output == 'target' else Float32MultiArray
    qos = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL) \
        if output == 'text_embedding' else QoSProfile(depth=1)
    probe.create_subscription(message_type, output, lambda msg: arrived.set(), qos)
    commands = probe.create_publisher(String, 'command', 10)
    # The segmenter reads the command embedder's latched instruction.
    instructions = probe.create_publisher(String, 'instruction', QoSProfile(
        depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL))
    images = probe.create_publisher(Image, 'image', 1)
    frame = to_image_msg(np.random.default_rng(1).integers(0, 256, FRAME_SHAPE, np.uint8))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and (images.get_subscription_count() == 0
                                           and commands.get_subscription_count() == 0):
        time.sleep(0.05)
    if node_class.__name__ == 'SceneSegmenter':
        instructions.publish(String(data=COMMAND))
        while not node.perception.prompts():
            if time.monotonic() > deadline:
                raise RuntimeError('the segmenter never read the instruction')
            time.sleep(0.01)
    samples = []
    for index in range(frames + 2):
        arrived.clear()
        started = time.perf_counter()
        if node_class.__name__ == 'CommandEmbedder':
            commands.publish(String(data=f'{COMMAND} {index}'))  # distinct: no cache hits
        else:
            images.publish(frame)
        if not arrived.wait(30):
            raise RuntimeError(f'{node_class.__name__} produced no output')
        if index >= 2:  # warm-up
            samples.append(time.perf_counter() - started)
    stats = node.worker.stats()
    node.shutdown()
    executor.shutdown(timeout_sec=5)
    spinner.join(timeout=5)
    node.destroy_node()
    probe.destroy_node()
    rclpy.try_shutdown(context=context)
    return {'node_p50_ms': 1e3 * stats.latency_p50, 'node_p95_ms': 1e3 * stats.latency_p95,
            'e2e': percentiles(samples)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--sizes', nargs='+', default=['tiny', 'full'],
                        choices=['tiny', 'full'])
    parser.add_argument('--frames', type=int, default=30)
    parser.add_argument('--models-dir', default=os.path.join(tempfile.gettempdir(),
                                                             'vla_ros_bench_models'))
    parser.add_argument('--output', default='runs/bench/perception_latency.json')
    args = parser.parse_args(argv)

    from vla_ros.nodes.camera_embedder import CameraEmbedder
    from vla_ros.nodes.command_embedder import CommandEmbedder
    from vla_ros.nodes.scene_segmenter import SceneSegmenter

    torch.set_num_threads(os.cpu_count() or 1)
    results = {'machine': {'cpus': os.cpu_count(), 'torch': torch.__version__,
                           'threads': torch.get_num_threads(), 'frame': '640x480 rgb8'}}
    for size in args.sizes:
        folder = Path(args.models_dir) / size
        print(f'[bench] {size}: writing random-weight models to {folder} ...', flush=True)
        clip_dir, clipseg_dir = (build_full_size if size == 'full' else build_tiny)(folder)
        print(f'[bench] {size}: timing the bare models ({args.frames} calls each) ...',
              flush=True)
        bare = bare_model_times(clip_dir, clipseg_dir, args.frames)
        results[size] = {}
        for node_class, model_dir in ((CameraEmbedder, clip_dir), (CommandEmbedder, clip_dir),
                                      (SceneSegmenter, clipseg_dir)):
            print(f'[bench] {size}: {node_class.NODE_NAME} node ...', flush=True)
            timing = node_times(node_class, model_dir, args.frames)
            timing['model'] = bare[node_class.NODE_NAME]
            timing['node_over_model'] = timing['node_p50_ms'] / timing['model']['p50_ms']
            results[size][node_class.NODE_NAME] = timing

    print(f"\n{'size':5} {'node':17} {'model p50':>10} {'node p50':>9} {'node p95':>9} "
          f"{'e2e p50':>8} {'e2e p95':>8} {'node/model':>10}")
    for size in args.sizes:
        for name, timing in results[size].items():
            print(f"{size:5} {name:17} {timing['model']['p50_ms']:8.1f}ms "
                  f"{timing['node_p50_ms']:7.1f}ms {timing['node_p95_ms']:7.1f}ms "
                  f"{timing['e2e']['p50_ms']:6.1f}ms {timing['e2e']['p95_ms']:6.1f}ms "
                  f"{timing['node_over_model']:9.2f}x")
    if {'tiny', 'full'} <= set(args.sizes):
        for name in results['full']:
            ratio = results['full'][name]['e2e']['p50_ms'] / results['tiny'][name]['e2e']['p50_ms']
            print(f'full / tiny e2e p50, {name}: {ratio:.1f}x')
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(results, indent=2))
    print(f'[bench] results: {output}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
