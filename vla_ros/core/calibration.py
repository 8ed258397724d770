"""The frames int8 quantisation is calibrated on: simulator renders shipped in
models/calibration (written by `vla-ros dataset`, the command in its train.meta.json), never
downloaded. A robot's own frames calibrate better; these keep the build offline and repeatable.
"""

from functools import lru_cache
import hashlib
import json

import numpy as np

from vla_ros.core import paths

FILES = ('train.npz', 'train.jsonl')


def calibration_folder():
    return paths.share_dir() / 'models' / 'calibration'


@lru_cache(maxsize=1)
def calibration_digest() -> str:
    """A hash of the calibration files: quantised models are cached under it."""
    digest = hashlib.blake2b(digest_size=8)
    for name in FILES:
        digest.update((calibration_folder() / name).read_bytes())
    return digest.hexdigest()


@lru_cache(maxsize=1)
def calibration_views() -> tuple:
    """(frames, prompts): HxWx3 uint8 renders and, for each, the object it was taken of
    (a view from anywhere: its scene's first object), as the segmenter is prompted.
    """
    folder = calibration_folder()
    with np.load(folder / 'train.npz') as data:
        frames = list(data['images'])
    prompts = []
    for line in (folder / 'train.jsonl').read_text().splitlines():
        record = json.loads(line)
        item = record['objects'][max(record['focus'], 0)]
        prompts.append(f"{item['colour']} {item['shape']}")
    if len(prompts) != len(frames):
        raise ValueError(f'{folder}: {len(frames)} frames but {len(prompts)} records')
    return tuple(frames), tuple(prompts)
