"""The `vla-ros` command (also `python -m vla_ros`)."""

import argparse
import os
from pathlib import Path
import sys
import time

SMOKE_COMMAND = 'go to the red ball'


def _ensure_models(cache_dir: Path):
    """The embedded default models, or tiny random stand-ins while models/ ships none."""
    from vla_ros.core import paths, tiny_models

    sources = {}
    for kind, build in (('clip', tiny_models.build_tiny_clip),
                        ('clipseg', tiny_models.build_tiny_clipseg)):
        embedded = paths.default_model_dir(kind)
        if (embedded / 'config.json').is_file():
            sources[kind] = str(embedded)
            continue
        stand_in = cache_dir / f'tiny-random-{kind}'
        if not (stand_in / 'config.json').is_file():
            build(stand_in)
        print(f'[smoke] no embedded {kind} model in {embedded.parent}; using a tiny RANDOM '
              f'{kind} at {stand_in} (the plumbing runs, the outputs mean nothing)')
        sources[kind] = str(stand_in)
    return sources


def synthetic_frame(height=240, width=320):
    """A floor, a red ball right of centre and a blue box on the left, as a camera sees them."""
    import cv2
    import numpy as np

    frame = np.empty((height, width, 3), np.uint8)
    frame[:] = (150, 150, 140)
    frame[: height // 3] = (200, 210, 225)  # wall
    cv2.circle(frame, (int(width * 0.7), int(height * 0.6)), height // 8, (220, 30, 30), -1)
    cv2.rectangle(frame, (int(width * 0.1), int(height * 0.5)),
                  (int(width * 0.3), int(height * 0.75)), (30, 40, 210), -1)
    return frame


def run_smoke(args) -> int:
    import numpy as np

    from vla_ros.core.encoders import ClipEncoder, ClipSegSegmenter
    from vla_ros.core.models import load_model, ModelLoadError

    sources = _ensure_models(Path(args.cache_dir))
    try:
        started = time.monotonic()
        print(f"[smoke] loading clip from {sources['clip']} ...", flush=True)
        clip = ClipEncoder(load_model('clip', sources['clip'], args.device))
        print(f"[smoke] loading clipseg from {sources['clipseg']} ...", flush=True)
        segmenter = ClipSegSegmenter(load_model('clipseg', sources['clipseg'], args.device))
        print(f'[smoke] models loaded in {time.monotonic() - started:.1f} s '
              f'on {clip.loaded.device}', flush=True)
    except ModelLoadError as err:
        print(f'[smoke] error: {err}', file=sys.stderr)
        return 2
    frame = synthetic_frame()
    image_embedding = clip.encode_images([frame])[0]
    text_embedding = clip.encode_texts([args.command])[0]
    segmenter.set_prompts([args.prompt])
    mask = segmenter.segment(frame)[0]
    rows, cols = np.nonzero(mask >= 0.5)
    print(f'[smoke] frame {frame.shape[1]}x{frame.shape[0]} rgb8, command {args.command!r}')
    print(f'[smoke] image_embedding: dim {image_embedding.size}, '
          f'norm {np.linalg.norm(image_embedding):.4f}, first {np.round(image_embedding[:4], 4)}')
    print(f'[smoke] text_embedding: dim {text_embedding.size}, '
          f'norm {np.linalg.norm(text_embedding):.4f}, '
          f'cosine to image {float(image_embedding @ text_embedding):+.4f}')
    print(f'[smoke] mask for {args.prompt!r}: {mask.shape[1]}x{mask.shape[0]}, '
          f'max {mask.max():.3f}, {rows.size} px >= 0.5')
    return 0


def build_parser():
    parser = argparse.ArgumentParser(prog='vla-ros', description=__doc__)
    commands = parser.add_subparsers(dest='command', required=True)
    smoke = commands.add_parser(
        'smoke', help='run the perception pipeline once on a generated frame and a command')
    smoke.add_argument('--command', default=SMOKE_COMMAND, help='the instruction to encode')
    smoke.add_argument('--prompt', default='red ball', help='the segmentation prompt')
    smoke.add_argument('--device', default='auto', choices=('auto', 'cpu', 'cuda'))
    smoke.add_argument(
        '--cache-dir', default=os.path.join(os.path.expanduser('~'), '.cache', 'vla_ros'),
        help='where stand-in models are written when models/ has none')
    smoke.set_defaults(run=run_smoke)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == '__main__':
    sys.exit(main())
