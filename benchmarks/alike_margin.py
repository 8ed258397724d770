"""The verifier's margin for things alike (core.relations.ALIKE_MARGIN): of the regions
CLIPSeg finds for the thing a relations scene names, how many on one of the things alike
and how many elsewhere each margin keeps.

    python benchmarks/alike_margin.py [--seeds 0 80] [--output FILE]

On each scene's first frame (`vla-ros eval --task relations`'s scenes, the embedded models
as `vla-ros eval --mode real` loads them from config/vla.yaml): the regions of the noun's
mask (at least the verifier's min area, the five largest), each crop's score (the prompt's
CLIP similarity less the best contrast's), and whether the region's centroid lies on one of
the things alike. Prints a row per margin, and how many of the regions kept at the margin
used are smaller than MIN_ALIKE_AREA, and writes JSON.
"""

import argparse
import json
import os
from pathlib import Path

os.environ.setdefault('HF_HUB_OFFLINE', '1')
os.environ.setdefault('MUJOCO_GL', 'egl')

MARGINS = (0.0, 0.02, 0.04, 0.06, 0.08, 0.1)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--seeds', type=int, nargs=2, default=(0, 80), metavar=('FIRST', 'END'))
    parser.add_argument('--output', default='benchmarks/results/alike_margin.json')
    args = parser.parse_args(argv)

    import numpy as np
    from tqdm import tqdm

    from vla_ros.commands.eval import default_pipeline
    from vla_ros.core.backends import isa_flags
    from vla_ros.core.segmentation import crop_region, find_regions, pixel_at
    from vla_ros.evaluation.relations_task import relations_scene
    from vla_ros.sim.world import SimWorld

    pipeline, settings = default_pipeline()
    from vla_ros.core.relations import ALIKE_MARGIN, MIN_ALIKE_AREA

    scores = {'alike': [], 'elsewhere': []}
    areas = {'alike': [], 'elsewhere': []}
    for seed in tqdm(range(*args.seeds), desc='scenes', unit='scene'):
        scene, _, _ = relations_scene(seed)
        world = SimWorld(scene)
        try:
            perception = pipeline.perception(world, scene)
            name = scene.target.name
            rgb = world.render()
            pipeline.segmenter.set_prompts((name,))
            probability = pipeline.segmenter.probabilities(rgb, settings.perception.fovea)[0]
            regions = [region for region in find_regions(probability, 0.5)
                       if region.area >= perception.verifier.config.min_area][:5]
            if not regions:
                continue
            perception.verifier.set_prompt(name)
            crops = [crop_region(rgb, region, perception.verifier.config.padding)
                     for region in regions]
            labels = world.label_image()
            for region, score in zip(regions, perception.verifier.scores(crops)):
                on = labels[pixel_at(region.x, region.y, *labels.shape)]
                alike = on > 0 and scene.objects[on - 1].name == name
                scores['alike' if alike else 'elsewhere'].append(float(score))
                areas['alike' if alike else 'elsewhere'].append(float(region.area))
        finally:
            world.close()
    alike, elsewhere = np.array(scores['alike']), np.array(scores['elsewhere'])
    rows = [{'margin': margin, 'alike_kept': float((alike > -margin).mean()),
             'elsewhere_kept': int((elsewhere > -margin).sum())} for margin in MARGINS]
    print(f'{len(alike)} regions on things alike, {len(elsewhere)} elsewhere '
          f'({" ".join(sorted(isa_flags()))})')
    for row in rows:
        print(f"margin {row['margin']:.2f}: keeps {row['alike_kept']:.1%} of those on things "
              f"alike, {row['elsewhere_kept']} of the {len(elsewhere)} elsewhere")
    for kind in ('alike', 'elsewhere'):
        kept = np.array(areas[kind])[np.array(scores[kind]) > -ALIKE_MARGIN]
        print(f'{kind}: {int((kept < MIN_ALIKE_AREA).sum())} of the {len(kept)} regions kept at '
              f'margin {ALIKE_MARGIN} are under MIN_ALIKE_AREA ({MIN_ALIKE_AREA})')
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps({'seeds': list(args.seeds), 'rows': rows,
                                             'scores': scores, 'areas': areas}, indent=1))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
