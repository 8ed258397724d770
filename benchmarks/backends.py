"""Each backend and precision side by side: per-frame latency of each model node's work and
the accuracy gates, in turns in one run.

    python benchmarks/backends.py [--sizes full embedded] [--frames 20] [--threads 0]
                                  [--device cpu|cuda]

Sizes: `full` = random-weight CLIP ViT-B/32 and CLIPSeg rd64 (ViT-B/16 at 352 px), the
architectures of openai/clip-vit-base-patch32 and CIDAS/clipseg-rd64-refined, on 640x480
frames; `embedded` = the models in models/ on 160x120 frames, as `vla-ros eval-models` times
them. Frames are simulator renders of scenes no model was trained on.

Work timed per frame (what each node does for one input):
  camera_embedder   encode_images([frame]): the image processor and the image tower;
  command_embedder  encode_texts([command]);
  scene_segmenter   full: CLIPSeg masks with one prompt and the fovea (two images a call);
                    embedded: masks + target + CLIP verification of the regions (every
                    region checked), after the camera embedding: the sequential pipeline
                    of `vla-ros eval-models` (`pipeline`).
Variants (`variants`): torch fp32 eager with the model's processor (the baseline), torch
with the preprocessing on the device (core.preprocessing), torch compiled (`compile_mode`:
default on a CPU, with the processor; reduce-overhead = CUDA graphs on a GPU, with the
preprocessing there, also in fp16), and on a CPU OpenVINO with its default precision and
with f32, and int8 (quantised on models/calibration; on a CPU without VNNI or AMX the node
refuses it, the benchmark measures it anyway). They run in turns, frame by frame, so
that a busy machine slows each alike; ratios are to torch fp32 eager in the same run.
Accuracy: cosine of each embedding to torch fp32's; IoU of CLIPSeg masks at the 0.5
threshold (and at torch's median probability, where random weights put half the pixels), on
8 frames (full) or all of them (embedded). Load times: the first start (conversion, into an
empty cache) and the second (from the cache). Writes JSON (--output) and prints a Markdown
table, under the CPU's speed flags (AVX2, AVX-512, VNNI, bf16, AMX), which decide these
figures.
"""

import argparse
from functools import partial
import json
import os
from pathlib import Path
import sys
import tempfile
import time

os.environ.setdefault('HF_HUB_OFFLINE', '1')
os.environ.setdefault('MUJOCO_GL', 'egl')

import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from perception_latency import build_full_size  # noqa: E402

COMMAND = 'go to the red ball'
PROMPT = 'red ball'
BASELINE = 'torch fp32 eager'


def variants(device: str) -> dict:
    """Label -> load_model's options, the baseline first."""
    torch_preprocessing = {'backend': 'torch', 'preprocessing': 'torch'}
    if device == 'cuda':
        graphs = {**torch_preprocessing, 'compile_mode': 'reduce-overhead'}
        return {BASELINE: {'backend': 'torch', 'preprocessing': 'processor'},
                'torch fp32, torch preprocessing': torch_preprocessing,
                'torch fp32 compiled (CUDA graphs)': graphs,
                'torch fp16 compiled (CUDA graphs)': {**graphs, 'dtype': 'float16'}}
    return {BASELINE: {'backend': 'torch', 'preprocessing': 'processor'},
            'torch fp32, torch preprocessing': torch_preprocessing,
            # The processor's preprocessing: the ratio is the compiler's alone.
            'torch fp32 compiled': {'backend': 'torch', 'preprocessing': 'processor',
                                    'compile_mode': 'default'},
            'openvino default': {'backend': 'openvino', 'precision': 'default'},
            'openvino f32': {'backend': 'openvino', 'precision': 'f32'},
            # Measured on any CPU (the node refuses int8 without VNNI or AMX: slower there).
            'openvino int8': {'backend': 'openvino', 'precision': 'int8',
                              'int8_on_any_cpu': True}}


def frames_of(size: str, count: int):
    """Rendered views: 640x480 for the full models, 160x120 for the embedded ones."""
    from vla_ros.sim.dataset import render_views

    width, height = (640, 480) if size == 'full' else (160, 120)
    views = []
    seed = 400_000
    while len(views) < count:
        views += [view.image for view in render_views(seed, 'train', 2, width, height)]
        seed += 1
    return views[:count]


def load(size_dirs, options, threads, cache, device):
    from vla_ros.core.encoders import ClipEncoder, ClipSegSegmenter
    from vla_ros.core.models import load_model

    os.environ['VLA_ROS_CACHE_DIR'] = str(cache)
    times = {}
    started = time.perf_counter()
    clip = load_model('clip', size_dirs[0], device, threads=threads, **options)
    times['clip_load_s'] = time.perf_counter() - started
    started = time.perf_counter()
    clipseg = load_model('clipseg', size_dirs[1], device, threads=threads, **options)
    times['clipseg_load_s'] = time.perf_counter() - started
    return ClipEncoder(clip), ClipSegSegmenter(clipseg), times


def percentiles(samples):
    return {'p50_ms': 1e3 * float(np.percentile(samples, 50)),
            'p95_ms': 1e3 * float(np.percentile(samples, 95)), 'n': len(samples)}


def mask_iou(expected, got, threshold):
    truth, mask = expected >= threshold, got >= threshold
    union = (truth | mask).sum()
    return float((truth & mask).sum() / union) if union else None


def run_size(size, size_dirs, frames, rounds, threads, cache_root, progress, device):
    from vla_ros.core.segmentation import find_target, Fovea
    from vla_ros.core.verification import TargetVerifier, VerifierConfig
    from vla_ros.sim.scene import object_names

    images = frames_of(size, max(8, min(frames, 20)))
    progress(f'{size}: {len(images)} rendered frames of {images[0].shape[1]}x'
             f'{images[0].shape[0]}')
    loaded, loads = {}, {}
    variant_options = variants(device)
    for variant, options in variant_options.items():
        cache = cache_root / size  # one cache per size: the f32 variant reuses the IR
        progress(f'{size}: loading on {variant} ...')
        encoder, segmenter, times = load(size_dirs, options, threads, cache, device)
        if options['backend'] == 'openvino':
            # The second start, from the cache the first one filled.
            again = load(size_dirs, options, threads, cache, device)[2]
            times.update({f'{key.replace("_load_s", "")}_cached_load_s': value
                          for key, value in again.items()})
        loads[variant] = times
        progress(f'{size}: {variant} ({encoder.loaded.runtime}) loaded: '
                 + ', '.join(f'{key} {value:.1f}' for key, value in times.items()))
        segmenter.set_prompts([PROMPT])
        verifier = TargetVerifier(encoder, VerifierConfig(contrasts=object_names(),
                                                          recheck_frames=0))
        verifier.set_prompt(PROMPT)
        loaded[variant] = (encoder, segmenter, verifier)

    fovea = Fovea()

    def work(variant):
        encoder, segmenter, verifier = loaded[variant]
        calls = {'camera_embedder': lambda frame: encoder.encode_images([frame]),
                 'command_embedder': lambda frame: encoder.encode_texts([COMMAND]),
                 'scene_segmenter': lambda frame: segmenter.probabilities(frame, fovea)}
        if size == 'embedded':
            def pipeline(frame):
                encoder.encode_images([frame])
                find_target(segmenter.probabilities(frame, fovea)[0], 0.5,
                            accept=partial(verifier.accept, frame))
            calls['pipeline'] = pipeline
        return calls

    calls = {variant: work(variant) for variant in variant_options}
    samples = {variant: {name: [] for name in calls[variant]} for variant in variant_options}
    for variant in variant_options:  # warm-up: first calls allocate and pick kernels
        for call in calls[variant].values():
            for frame in images[:2]:
                call(frame)
    for index in range(frames * rounds):
        frame = images[index % len(images)]
        for variant in variant_options:
            for name, call in calls[variant].items():
                started = time.perf_counter()
                call(frame)
                samples[variant][name].append(time.perf_counter() - started)
        if (index + 1) % max(1, frames // 4) == 0:
            progress(f'{size}: frame {index + 1}/{frames * rounds}: ' + ', '.join(
                f'{v} {1e3 * np.median(samples[v]["camera_embedder"]):.1f} / '
                f'{1e3 * np.median(samples[v]["scene_segmenter"]):.0f} ms'
                for v in variant_options))

    progress(f'{size}: accuracy against torch fp32 ...')
    images = images[:8] if size == 'full' else images  # a full CLIPSeg call is ~1 s on torch
    reference_encoder, reference_segmenter, _ = loaded[BASELINE]
    expected_images = reference_encoder.encode_images(images)
    expected_text = reference_encoder.encode_texts([COMMAND, 'stop', 'find the blue cube'])
    expected_masks = [reference_segmenter.probabilities(frame, fovea) for frame in images]
    results = {'frame': f'{images[0].shape[1]}x{images[0].shape[0]}', 'loads': loads,
               'variants': {}}
    torch_p50 = {name: np.median(values) for name, values in samples[BASELINE].items()}
    for variant in variant_options:
        encoder, segmenter, _ = loaded[variant]
        masks = [segmenter.probabilities(frame, fovea) for frame in images]
        ious_05 = [mask_iou(e, g, 0.5) for e, g in zip(expected_masks, masks)]
        ious_median = [mask_iou(e, g, float(np.median(e))) for e, g in zip(expected_masks,
                                                                              masks)]
        entry = {'engine': encoder.loaded.runtime, 'latency': {}, 'accuracy': {
            'image_cosine_min': float((encoder.encode_images(images) * expected_images)
                                      .sum(1).min()),
            'text_cosine_min': float((encoder.encode_texts(
                [COMMAND, 'stop', 'find the blue cube']) * expected_text).sum(1).min()),
            'mask_iou_at_0.5_min': min((v for v in ious_05 if v is not None), default=None),
            'masks_empty_at_0.5': sum(v is None for v in ious_05),
            'mask_iou_at_median_min': min(v for v in ious_median if v is not None),
            'mask_probability_max_abs_diff': float(max(np.abs(e - g).max() for e, g in zip(
                expected_masks, masks))),
        }}
        for name, values in samples[variant].items():
            stats = percentiles(values)
            stats['speedup_vs_torch'] = float(torch_p50[name] / np.median(values))
            entry['latency'][name] = stats
        results['variants'][variant] = entry
    return results


def table(results) -> str:
    lines = ['| size | variant | work | p50 | p95 | x torch | image cos | mask IoU@0.5 |',
             '|---|---|---|---|---|---|---|---|']
    for size, result in results['sizes'].items():
        for name, entry in result['variants'].items():
            accuracy = entry['accuracy']
            iou = accuracy['mask_iou_at_0.5_min']
            for work, stats in entry['latency'].items():
                lines.append(
                    f"| {size} | {name} | {work} | {stats['p50_ms']:.1f} ms | "
                    f"{stats['p95_ms']:.1f} ms | {stats['speedup_vs_torch']:.2f}x | "
                    f"{accuracy['image_cosine_min']:.5f} | "
                    f"{'-' if iou is None else f'{iou:.4f}'} |")
    return '\n'.join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--sizes', nargs='+', default=['full', 'embedded'],
                        choices=['full', 'embedded'])
    parser.add_argument('--frames', type=int, default=20, help='timed frames per round')
    parser.add_argument('--rounds', type=int, default=1)
    parser.add_argument('--threads', type=int, default=0,
                        help="threads for torch and OpenVINO (0: the runtime's default)")
    parser.add_argument('--device', default='cpu', choices=['cpu', 'cuda'],
                        help='cuda: the torch variants only (OpenVINO runs on the CPU)')
    parser.add_argument('--models-dir', default='',
                        help='where the full-size random models are written (kept)')
    parser.add_argument('--output', default=str(Path(__file__).resolve().parent / 'results'
                                                / 'backends.json'))
    args = parser.parse_args(argv)

    import openvino

    from vla_ros.core import paths

    if args.threads:
        torch.set_num_threads(args.threads)
    started = time.perf_counter()

    def progress(line):
        print(f'[{time.perf_counter() - started:6.0f} s] {line}', flush=True)

    from vla_ros.core.backends import isa_flags

    progress(f"CPU flags: {' '.join(isa_flags()) or 'none of AVX2/AVX-512/VNNI/AMX'}; "
             f'{os.cpu_count()} cores')
    results = {'torch': torch.__version__, 'openvino': openvino.__version__,
               'cpu_flags': list(isa_flags()),
               'torch_threads': torch.get_num_threads(), 'threads': args.threads,
               'cpu_count': os.cpu_count(), 'device': args.device, 'gpu': (
                   torch.cuda.get_device_name() if args.device == 'cuda' else None),
               'sizes': {}}
    with tempfile.TemporaryDirectory() as scratch:
        cache_root = Path(scratch) / 'cache'  # empty: the first load converts
        models_dir = Path(args.models_dir or Path(scratch) / 'models')
        for size in args.sizes:
            if size == 'full':
                progress('writing the full-size random models ...')
                dirs = tuple(str(folder) for folder in build_full_size(models_dir))
            else:
                dirs = (str(paths.default_model_dir('clip')),
                        str(paths.default_model_dir('clipseg')))
            results['sizes'][size] = run_size(size, dirs, args.frames, args.rounds,
                                              args.threads, cache_root, progress, args.device)
    text = table(results)
    print(f"CPU flags: {' '.join(results['cpu_flags']) or 'none'}, {os.cpu_count()} cores\n")
    print(text)
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(results, indent=1) + '\n')
    progress(f'wrote {args.output}')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
