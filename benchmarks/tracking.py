"""Which tracker follows the target between segmentations: accuracy and time a frame.

    python benchmarks/tracking.py [--episodes 10] [--every 25] [--output FILE]

What the camera saw in closed-loop episodes of the simulator (oracle control: search turns
and approaches, 160x120 at 10 Hz) with the target's true pixels on every frame. A track is
started from the true region every `--every` frames (25: a segmenter at 0.4 Hz on a 10 Hz
camera) and followed to the next start; each followed frame is scored against the truth
(box IoU, centroid error in normalised x). Three trackers from the plain opencv-python wheel
run on the same frames: pyramidal Lucas-Kanade on the region's features (core.tracking, what
the scene_segmenter runs), TrackerMIL and template matching. Baseline for the ratios: the
segmentation's target held still ("hold"), what the stack did before tracking.
"""

import argparse
import json
import os
from pathlib import Path
import time

os.environ.setdefault('MUJOCO_GL', 'egl')

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from vla_ros.core import paths  # noqa: E402
from vla_ros.core.segmentation import find_regions  # noqa: E402
from vla_ros.core.tracking import TargetTracker  # noqa: E402


def record(seeds):
    """[(rgb frames, true masks)] of oracle episodes, one frame each camera frame."""
    from vla_ros.evaluation.lockstep import (
        GroundTruthSegmenter,
        OracleMode,
        run_episode,
        StackSettings,
    )
    from vla_ros.sim.scene import generate_scene

    class Recording(GroundTruthSegmenter):
        def probabilities(self, rgb, fovea=None):
            mask = super().probabilities(rgb, fovea)
            seen.append((rgb.copy(), mask[0] > 0.5))
            return mask

    class RecordingOracle(OracleMode):
        def perception(self, world, scene):
            perception = super().perception(world, scene)
            perception.segmenter = Recording(world, scene)
            return perception

    settings = StackSettings.from_params_file(paths.default_params_file())
    episodes = []
    for seed in seeds:
        seen = []
        run_episode(generate_scene(seed), RecordingOracle(settings), record_every=1,
                    max_time_s=40.0)
        episodes.append(seen)
    return episodes


def box_of(mask):
    """(left, top, right, bottom) in pixels of the largest true region, or None."""
    regions = find_regions(mask.astype(np.float32), 0.5)
    if not regions:
        return None
    height, width = mask.shape
    region = regions[0]
    return ((region.left + 1) * width / 2, (region.top + 1) * height / 2,
            (region.left + 2 * region.width + 1) * width / 2, (region.bottom + 1) * height / 2)


def iou(a, b):
    if a is None or b is None:
        return 0.0
    width = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    height = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = width * height
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


class Hold:
    name = 'hold (no tracking)'

    def start(self, rgb, mask, box):
        self.box = box

    def step(self, rgb):
        return self.box


class LucasKanade:
    name = 'Lucas-Kanade (core.tracking)'

    def start(self, rgb, mask, box):
        self.tracker, self.stamp = TargetTracker(), 0.0
        self.tracker.frame(rgb, self.stamp)
        region = find_regions(mask.astype(np.float32), 0.5)[0]
        self.shape = mask.shape
        self.tracker.segmented(region, mask, self.stamp)

    def step(self, rgb):
        self.stamp += 0.1
        track = self.tracker.frame(rgb, self.stamp)
        if track is None or not track.target.visible:
            return None
        target, (height, width) = track.target, self.shape
        return ((target.left + 1) * width / 2, (target.top + 1) * height / 2,
                (target.left + 2 * target.width + 1) * width / 2,
                (target.bottom + 1) * height / 2)


class Mil:
    name = 'TrackerMIL'

    def start(self, rgb, mask, box):
        self.tracker = cv2.TrackerMIL.create()
        left, top, right, bottom = box
        self.tracker.init(rgb, (int(left), int(top), max(int(right - left), 2),
                                max(int(bottom - top), 2)))

    def step(self, rgb):
        ok, (left, top, width, height) = self.tracker.update(rgb)
        return (left, top, left + width, top + height) if ok else None


class Template:
    name = 'template matching'
    min_score = 0.6

    def start(self, rgb, mask, box):
        left, top, right, bottom = (int(round(v)) for v in box)
        self.patch = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)[top:max(bottom, top + 2),
                                                           left:max(right, left + 2)]
        self.box = box

    def step(self, rgb):
        grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        if self.box is None or self.patch.shape[0] > grey.shape[0] or \
                self.patch.shape[1] > grey.shape[1]:
            return None
        scores = cv2.matchTemplate(grey, self.patch, cv2.TM_CCOEFF_NORMED)
        _, best, _, (left, top) = cv2.minMaxLoc(scores)
        if best < self.min_score:
            self.box = None
            return None
        height, width = self.patch.shape
        self.box = (left, top, left + width, top + height)
        return self.box


def evaluate(trackers, episodes, every):
    results = {}
    for tracker in trackers:
        ious, errors, times, lost, followed = [], [], [], 0, 0
        bottoms, sizes = [], []  # signed bottom error (image units), area ratio to the truth
        for frames in episodes:
            for start in range(0, len(frames) - 1, every):
                rgb, mask = frames[start]
                box = box_of(mask)
                if box is None or mask.sum() < 12:
                    continue
                tracker.start(rgb, mask, box)
                for rgb, mask in frames[start + 1:start + every]:
                    truth = box_of(mask)
                    began = time.perf_counter()
                    guess = tracker.step(rgb)
                    times.append(time.perf_counter() - began)
                    if truth is None:
                        continue
                    followed += 1
                    if guess is None:
                        lost += 1
                        ious.append(0.0)
                        continue
                    ious.append(iou(guess, truth))
                    width = mask.shape[1]
                    errors.append(abs((guess[0] + guess[2]) - (truth[0] + truth[2])) / width)
                    bottoms.append(2.0 * (guess[3] - truth[3]) / mask.shape[0])
                    sizes.append((guess[2] - guess[0]) * (guess[3] - guess[1]) / max(
                        (truth[2] - truth[0]) * (truth[3] - truth[1]), 1e-9))
        results[tracker.name] = {
            'frames': followed, 'iou_mean': float(np.mean(ious)),
            'iou_over_0.5': float(np.mean(np.array(ious) > 0.5)),
            'x_error_p50': float(np.median(errors)) if errors else None,
            'x_error_p95': float(np.percentile(errors, 95)) if errors else None,
            'lost_fraction': lost / max(followed, 1),
            'bottom_error_mean': float(np.mean(bottoms)) if bottoms else None,
            'box_area_ratio_p50': float(np.median(sizes)) if sizes else None,
            'ms_p50': 1e3 * float(np.median(times)), 'ms_p95': 1e3 * float(
                np.percentile(times, 95))}
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--episodes', type=int, default=10)
    parser.add_argument('--every', type=int, default=25, help='frames between segmentations')
    parser.add_argument('--output', default='benchmarks/results/tracking.json')
    args = parser.parse_args()
    cv2.setNumThreads(1)
    print(f'[tracking] recording {args.episodes} oracle episodes ...', flush=True)
    episodes = record(range(args.episodes))
    results = evaluate([Hold(), LucasKanade(), Mil(), Template()], episodes, args.every)
    baseline = results['hold (no tracking)']['iou_mean']
    print('| tracker | frames | box IoU mean | IoU > 0.5 | x error p50 / p95 | lost | '
          'ms p50 / p95 | IoU vs hold |')
    print('|---|---|---|---|---|---|---|---|')
    for name, row in results.items():
        error = ('-' if row['x_error_p50'] is None
                 else f"{row['x_error_p50']:.3f} / {row['x_error_p95']:.3f}")
        print(f"| {name} | {row['frames']} | {row['iou_mean']:.2f} | "
              f"{row['iou_over_0.5']:.0%} | {error} | {row['lost_fraction']:.0%} | "
              f"{row['ms_p50']:.2f} / {row['ms_p95']:.2f} | "
              f"{row['iou_mean'] / max(baseline, 1e-9):.2f}x |")
    Path(args.output).write_text(json.dumps({'every': args.every, 'episodes': args.episodes,
                                             'results': results}, indent=2))
    print(f'[tracking] wrote {args.output}')


if __name__ == '__main__':
    main()
