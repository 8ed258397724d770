"""CLIPSeg at smaller input sizes (scene_segmenter's `input_size`): time a segmentation and
the masks' agreement, against the model's own size in the same run.

    python benchmarks/input_size.py [--embedded 96 80 64 48] [--full 352 288 224]
                                    [--views 40] [--rounds 3] [--output FILE]

embedded: the trained CLIPSeg in models/ (its processor: 96 px) on 160x120 simulator views of
scenes it was not trained on, each prompted with the object the camera looks at ("red
ball"). Per size: the time of `probabilities` (the node's model call, with the fovea, on the
YAML's backend), the IoU of its mask (probability 0.5, resized to the frame) with the
native size's, and with the object's true pixels (the simulator's labels). full: random-
weight CLIPSeg rd64 (ViT-B/16, processor 352 px) on 640x480 views: time only (random
weights make no masks worth comparing). Sizes run in turns, frame by frame, so a busy
machine slows each alike; ratios are to the first size. Prints a Markdown table.
"""

import argparse
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
import torch.nn.functional as F  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from perception_latency import build_full_size  # noqa: E402


def cpu_flags() -> str:
    """The ISA extensions a speed figure depends on."""
    from vla_ros.core.backends import isa_flags

    return ' '.join(isa_flags()) or 'none of AVX2/AVX-512/VNNI/AMX'


def views(count: int, width: int, height: int):
    """(frame, prompt, true mask) of simulator views pointed at an object in view."""
    from vla_ros.sim.dataset import render_views

    found, seed = [], 500_000
    while len(found) < count:
        for sample in render_views(seed, 'train', 4, width, height):
            if sample.focus >= 0 and sample.focus in sample.visible():
                found.append((sample.image, sample.objects[sample.focus].name,
                              sample.labels == sample.focus + 1))
        seed += 1
    return found[:count]


def mask_at(probabilities: np.ndarray, shape) -> np.ndarray:
    """The first prompt's mask at probability 0.5, resized to the frame."""
    native = torch.from_numpy(probabilities[:1])[:, None]
    return F.interpolate(native, size=shape, mode='bilinear',
                         align_corners=False)[0, 0].numpy() >= 0.5


def iou(a: np.ndarray, b: np.ndarray):
    union = (a | b).sum()
    return float((a & b).sum() / union) if union else None


def measure(label, source, sizes, frames, rounds, backend, compare, progress):
    from vla_ros.core.encoders import ClipSegSegmenter
    from vla_ros.core.models import load_model
    from vla_ros.core.segmentation import Fovea

    segmenters = {}
    for size in sizes:
        loaded = load_model('clipseg', source, 'cpu', backend=backend, threads=0,
                            input_size=size)
        segmenters[size] = ClipSegSegmenter(loaded)
        progress(f'{label} {size} px: {loaded.runtime}')
    fovea = Fovea()
    times = {size: [] for size in sizes}
    masks = {size: [] for size in sizes}
    for index, (frame, prompt, _) in enumerate(frames):
        for size in sizes:  # in turns: a busy machine slows each alike
            segmenter = segmenters[size]
            segmenter.set_prompts([prompt])
            segmenter.probabilities(frame, fovea)  # a new prompt's first call is not timed
            for _ in range(rounds):
                started = time.perf_counter()
                probabilities = segmenter.probabilities(frame, fovea)
                times[size].append(time.perf_counter() - started)
            masks[size].append(mask_at(probabilities, frame.shape[:2]))
        progress(f'{label}: view {index + 1}/{len(frames)}')
    base = sizes[0]
    rows = []
    for size in sizes:
        p50 = float(np.median(times[size]))
        row = {'model': label, 'input_size': size, 'p50_ms': 1e3 * p50,
               'speedup': float(np.median(times[base])) / p50}
        if compare:
            against_base = [iou(a, b) for a, b in zip(masks[base], masks[size])]
            against_truth = [iou(truth, mask) for (_, _, truth), mask in zip(frames,
                                                                              masks[size])]
            row['iou_vs_native'] = float(np.mean([v for v in against_base if v is not None]))
            row['iou_vs_truth'] = float(np.mean([v for v in against_truth if v is not None]))
        rows.append(row)
    return rows


def table(rows) -> str:
    lines = ['| model | input px | p50 ms | speed-up | mask IoU vs native | IoU vs truth |',
             '|---|---|---|---|---|---|']
    for row in rows:
        lines.append(f"| {row['model']} | {row['input_size']} | {row['p50_ms']:.1f} | "
                     f"{row['speedup']:.2f}x | {row.get('iou_vs_native', float('nan')):.3f} | "
                     f"{row.get('iou_vs_truth', float('nan')):.3f} |")
    return '\n'.join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--embedded', type=int, nargs='*', default=[96, 80, 64, 48],
                        help='input sizes of the embedded model, its own first')
    parser.add_argument('--full', type=int, nargs='*', default=[352, 288, 224],
                        help='input sizes of the full-size CLIPSeg, its own first')
    parser.add_argument('--views', type=int, default=40)
    parser.add_argument('--full-views', type=int, default=8)
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--backend', default='auto', help="the models' runtime (the YAML's)")
    parser.add_argument('--output', default='benchmarks/results/input_size.json')
    args = parser.parse_args(argv)

    def progress(line):
        print(f'[input_size] {line}', flush=True)

    from vla_ros.core import paths

    progress(f'CPU flags: {cpu_flags()}; {os.cpu_count()} cores')
    rows = []
    if args.embedded:
        rows += measure('embedded', str(paths.default_model_dir('clipseg')), args.embedded,
                        views(args.views, 160, 120), args.rounds, args.backend, True, progress)
    if args.full:
        with tempfile.TemporaryDirectory() as folder:
            clipseg_dir = build_full_size(Path(folder))[1]
            rows += measure('full (random weights)', str(clipseg_dir), args.full,
                            views(args.full_views, 640, 480), args.rounds, args.backend,
                            False, progress)
    print(table(rows))
    Path(args.output).write_text(json.dumps({'cpu_flags': cpu_flags(),
                                             'cores': os.cpu_count(), 'backend': args.backend,
                                             'rows': rows}, indent=2))
    progress(f'wrote {args.output}')


if __name__ == '__main__':
    main()
