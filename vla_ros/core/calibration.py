"""The frames int8 quantisation is calibrated on: simulator renders shipped in
models/calibration (written by `vla-ros dataset`, the command in its train.meta.json), never
downloaded. A robot's own frames calibrate better; these keep the build offline and repeatable.
"""

from functools import lru_cache
import json

import numpy as np

from vla_ros.core import paths


@lru_cache(maxsize=1)
def calibration_views() -> tuple:
    """(frames, prompts): HxWx3 uint8 renders and, for each, the object it was taken of
    (a view from anywhere: its scene's first object), as the segmenter is prompted.
    """
    folder = paths.share_dir() / 'models' / 'calibration'
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
