"""How much the camera_embedder's views say of a thing out of the segmenter's reach: in the
rooms world, whether views that show the target (by its size in the frame) score higher
against the command than views that do not, whole frame against view_tiles' crops.

    python benchmarks/view_signal.py [--seeds 0 30] [--views 40] [--tiles 3] [--output FILE]

For each rooms scene (`vla-ros eval --world rooms`'s), `--views` robot poses on free floor
(every other one facing the target, give or take 35°), the embedded CLIP as config/vla.yaml
loads it: the cosine of the command ("go to the <target>") with the whole frame's embedding,
and the best of the crops'. Per bin of the target's visible pixels (of 160x120), the AUC of
views that show it so big against views that do not show it (within each scene, then
averaged): 0.5 says nothing, 1.0 tells them apart every time. Writes JSON.
"""

import argparse
import json
import math
import os
from pathlib import Path

os.environ.setdefault('HF_HUB_OFFLINE', '1')
os.environ.setdefault('MUJOCO_GL', 'egl')

PIXEL_BINS = ((1, 20), (20, 100), (100, 400), (400, 10**6))


def auc(shown, not_shown) -> float:
    """P(a view that shows it scores higher than one that does not), ties half."""
    import numpy as np

    shown, not_shown = np.asarray(shown)[:, None], np.asarray(not_shown)[None, :]
    return float((shown > not_shown).mean() + 0.5 * (shown == not_shown).mean())


def free_pose(rng, scene):
    from vla_ros.sim.rooms import gap_to

    half = scene.arena_half - 0.3
    while True:
        x, y = rng.uniform(-half, half, 2)
        if all(math.hypot(x - thing.x, y - thing.y) >= 0.5 for thing in scene.objects) and all(
                gap_to(item, x, y) >= 0.3 for item in scene.obstacles):
            return x, y


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--seeds', type=int, nargs=2, default=(0, 30), metavar=('FIRST', 'END'))
    parser.add_argument('--views', type=int, default=40, help='poses a scene')
    parser.add_argument('--tiles', type=int, default=3)
    parser.add_argument('--output', default='benchmarks/results/view_signal.json')
    args = parser.parse_args(argv)

    import numpy as np
    from tqdm import tqdm

    from vla_ros.commands.eval import default_pipeline
    from vla_ros.core.backends import isa_flags
    from vla_ros.core.exploration import view_tiles
    from vla_ros.sim.rooms import generate_rooms_scene
    from vla_ros.sim.world import SimWorld

    encoder = default_pipeline()[0].encoder
    rng = np.random.default_rng(0)
    views = []
    for seed in tqdm(range(*args.seeds), desc='scenes', unit='scene'):
        scene = generate_rooms_scene(seed)
        target = scene.target
        command = encoder.encode_texts([f'go to the {target.name}'])[0]
        world = SimWorld(scene)
        try:
            for index in range(args.views):
                x, y = free_pose(rng, scene)
                yaw = (math.atan2(target.y - y, target.x - x) + rng.uniform(-0.6, 0.6)
                       if index % 2 == 0 else rng.uniform(-math.pi, math.pi))
                world.place_robot(x, y, yaw)
                rgb = world.render()
                whole = encoder.encode_images([rgb])[0]
                crops = encoder.encode_images(view_tiles(rgb, args.tiles), frames=False)
                views.append({'seed': seed, 'pixels': int(world.object_mask(
                    scene.target_index).sum()), 'whole': float(whole @ command),
                    'crops': float((crops @ command).max())})
        finally:
            world.close()
    rows = []
    for low, high in PIXEL_BINS:
        scores = {'whole': [], 'crops': []}
        for seed in range(*args.seeds):
            here = [view for view in views if view['seed'] == seed]
            shown = [view for view in here if low <= view['pixels'] < high]
            hidden = [view for view in here if view['pixels'] == 0]
            if shown and hidden:
                for kind in scores:
                    scores[kind].append(auc([v[kind] for v in shown], [v[kind] for v in hidden]))
        rows.append({'pixels': [low, high], 'scenes': len(scores['whole']),
                     'whole_auc': float(np.mean(scores['whole'])),
                     'crops_auc': float(np.mean(scores['crops']))})
    print(f'{len(views)} views of {args.seeds[1] - args.seeds[0]} rooms scenes, '
          f'{args.tiles} crops ({" ".join(sorted(isa_flags()))})')
    for row in rows:
        print(f"target {row['pixels'][0]}-{row['pixels'][1]} px ({row['scenes']} scenes): "
              f"AUC whole frame {row['whole_auc']:.3f}, best crop {row['crops_auc']:.3f}")
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps({'seeds': list(args.seeds), 'tiles': args.tiles,
                                             'rows': rows, 'views': views}, indent=1))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
