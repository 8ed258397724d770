"""`vla-ros dataset`: render a seeded split of training views to DIR/<split>.npz + .jsonl."""

import json
from pathlib import Path
import sys


def run_dataset(args) -> int:
    import numpy as np
    from tqdm import tqdm

    from vla_ros.sim.dataset import HELD_OUT, render_views

    if not 0.0 <= args.anywhere_fraction <= 1.0:
        print(f'[dataset] --anywhere-fraction must be in [0, 1], got {args.anywhere_fraction}',
              file=sys.stderr)
        return 2
    output = Path(args.output)
    try:
        output.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        print(f'[dataset] cannot write {output}: {error}', file=sys.stderr)
        return 2
    images, labels, records = [], [], []
    for seed in tqdm(range(args.seed, args.seed + args.scenes), desc=f'render {args.split}',
                     unit='scene'):
        for view, sample in enumerate(render_views(seed, args.split, args.views, args.width,
                                                   args.height, args.anywhere_fraction)):
            images.append(sample.image)
            labels.append(sample.labels)
            records.append({
                'scene_seed': seed, 'view': view, 'focus': sample.focus,
                'visible': sample.visible(),
                'objects': [{'colour': item.colour, 'shape': item.shape, 'pixels': count}
                            for item, count in zip(sample.objects, sample.pixels)]})
    np.savez_compressed(output / f'{args.split}.npz', images=np.stack(images),
                        labels=np.stack(labels))
    with open(output / f'{args.split}.jsonl', 'w') as handle:
        handle.writelines(json.dumps(record) + '\n' for record in records)
    (output / 'held_out.json').write_text(json.dumps(sorted(HELD_OUT)))
    # How this split was made, for the model cards of what is trained on it.
    (output / f'{args.split}.meta.json').write_text(json.dumps(
        {'command': ' '.join(['vla-ros'] + sys.argv[1:]), 'views': len(records)}))
    seen = sum(len(record['visible']) for record in records)
    print(f'[dataset] {len(records)} views, {seen} named objects in view -> '
          f'{output / (args.split + ".npz")}')
    return 0


def add_arguments(parser):
    parser.add_argument('--split', choices=('train', 'heldout'), default='train')
    parser.add_argument('--scenes', type=int, default=200)
    parser.add_argument('--views', type=int, default=8, help='camera poses per scene')
    parser.add_argument('--seed', type=int, default=0, help='first scene seed')
    # The simulated robot camera's size by default, so training sees what the robot sees.
    parser.add_argument('--width', type=int, default=160, help='image width (px)')
    parser.add_argument('--height', type=int, default=120, help='image height (px)')
    parser.add_argument('--anywhere-fraction', type=float, default=0.0,
                        help='share of views from anywhere in the arena, facing any way '
                        '(walls and close-ups, as the robot sees while searching), instead '
                        'of towards an object')
    parser.add_argument('--output', default='runs/dataset')
