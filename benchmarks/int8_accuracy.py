"""precision int8 against torch fp32 on the shipped models: how close its image embeddings
and masks stay, on renders neither calibrated nor trained on.

    python benchmarks/int8_accuracy.py [--scenes 20] [--output FILE]

Image embeddings: cosine of each frame's (160x120 renders, 2 a scene). Masks: CLIPSeg with
the fovea, prompted with each object in view, at probability 0.5: IoU pooled over all masks,
and per mask where fp32's is not empty. int8 is built here on any CPU (a node refuses it
without VNNI or AMX), into a fresh cache. Prints the figures and writes JSON.
"""

import argparse
import json
import os
from pathlib import Path
import tempfile

os.environ.setdefault('HF_HUB_OFFLINE', '1')
os.environ.setdefault('MUJOCO_GL', 'egl')


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--scenes', type=int, default=20)
    parser.add_argument('--output', default='benchmarks/results/int8_accuracy.json')
    args = parser.parse_args(argv)
    os.environ['VLA_ROS_CACHE_DIR'] = tempfile.mkdtemp(prefix='int8-')

    import numpy as np

    from vla_ros.core.backends import isa_flags
    from vla_ros.core.encoders import ClipEncoder, ClipSegSegmenter
    from vla_ros.core.models import load_model
    from vla_ros.core.segmentation import Fovea
    from vla_ros.sim.dataset import render_views

    views = [view for seed in range(300_000, 300_000 + args.scenes)
             for view in render_views(seed, 'train', 2, 160, 120)]
    frames = [view.image for view in views]
    reference = ClipEncoder(load_model('clip', '', 'cpu', backend='torch'))
    int8 = ClipEncoder(load_model('clip', '', 'cpu', backend='openvino', precision='int8',
                                  int8_on_any_cpu=True))
    cosines = (reference.encode_images(frames) * int8.encode_images(frames)).sum(1)
    reference_masks = ClipSegSegmenter(load_model('clipseg', '', 'cpu', backend='torch'))
    int8_masks = ClipSegSegmenter(load_model('clipseg', '', 'cpu', backend='openvino',
                                             precision='int8', int8_on_any_cpu=True))
    fovea, intersection, union, per_mask = Fovea(), 0, 0, []
    for view in views:
        for index in view.visible():
            for segmenter in (reference_masks, int8_masks):
                segmenter.set_prompts([view.objects[index].name])
            expected = reference_masks.probabilities(view.image, fovea)[0] >= 0.5
            got = int8_masks.probabilities(view.image, fovea)[0] >= 0.5
            intersection += int((expected & got).sum())
            union += int((expected | got).sum())
            if expected.any():
                per_mask.append(float((expected & got).sum() / (expected | got).sum()))
    result = {'cpu_flags': list(isa_flags()), 'frames': len(frames),
              'image_cosine_min': float(cosines.min()),
              'image_cosine_mean': float(cosines.mean()),
              'masks': len(per_mask), 'mask_iou_pooled': intersection / max(union, 1),
              'mask_iou_mean': float(np.mean(per_mask)), 'mask_iou_min': float(min(per_mask))}
    for key, value in result.items():
        print(f'{key}: {value:.4f}' if isinstance(value, float) else f'{key}: {value}')
    Path(args.output).write_text(json.dumps(result, indent=2) + '\n')


if __name__ == '__main__':
    main()
