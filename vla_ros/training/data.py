"""The rendered dataset (`vla-ros dataset`) as training pairs, and the text the models learn.

Each view is named by its largest visible object: that is what the camera was pointed at and
what a person would call the picture. Captions vary in form ("a red ball", "go to the red
ball"); pairs that name the same colour x shape are positives of each other in the contrastive
loss, so repeated captions in a batch are not counted as wrong answers.
"""

from dataclasses import dataclass
import json
from pathlib import Path
import random

import numpy as np

from vla_ros.core import paths
from vla_ros.sim.dataset import MIN_VISIBLE_FRACTION
from vla_ros.sim.scene import COLOURS, SHAPES

COMBOS = tuple((colour, shape) for colour in COLOURS for shape in SHAPES)
CAPTION_FORMS = ('a {}', 'the {}', '{}', 'a photo of a {}', 'go to the {}', 'find the {}')
# The intent stage keeps only descriptions with the images: commands belong to the intents.
DESCRIPTION_FORMS = CAPTION_FORMS[:4]
ZERO_SHOT_FORM = 'a {}'


def combo_text(combo) -> str:
    return f'{combo[0]} {combo[1]}'


@dataclass
class Split:
    """One rendered split: uint8 images (N, H, W, 3), label images (N, H, W), records."""

    images: np.ndarray
    labels: np.ndarray
    records: list

    def __len__(self):
        return len(self.records)

    def visible(self, index: int):
        """[(object index, pixels)] of the objects large enough in view to be named."""
        size = self.labels[index].size
        return [(i, item['pixels']) for i, item in enumerate(self.records[index]['objects'])
                if item['pixels'] / size >= MIN_VISIBLE_FRACTION]

    def combo(self, index: int, obj: int):
        item = self.records[index]['objects'][obj]
        return item['colour'], item['shape']

    def main_object(self, index: int):
        """The largest visible object of view `index`, or None."""
        visible = self.visible(index)
        return max(visible, key=lambda pair: pair[1])[0] if visible else None


def load_split(folder, split: str) -> Split:
    folder = Path(folder)
    arrays = np.load(folder / f'{split}.npz')
    records = [json.loads(line) for line in (folder / f'{split}.jsonl').read_text().splitlines()]
    return Split(arrays['images'], arrays['labels'], records)


def concatenate(splits) -> Split:
    """One split of several rendered at the same image size."""
    splits = list(splits)
    if len(splits) == 1:
        return splits[0]
    return Split(np.concatenate([split.images for split in splits]),
                 np.concatenate([split.labels for split in splits]),
                 [record for split in splits for record in split.records])


def named_views(split: Split, combos=None):
    """[(view index, main object index, combo)] of the views whose main object is in combos."""
    pairs = []
    for index in range(len(split)):
        obj = split.main_object(index)
        if obj is None:
            continue
        combo = split.combo(index, obj)
        if combos is None or combo in combos:
            pairs.append((index, obj, combo))
    return pairs


# Command phrasings the text tower learns to group by intent (a supervised contrastive loss),
# so that intents can be told apart zero-shot as in the policy. Written for training; the
# held-out list in test/data/intent_paraphrases.yaml is removed from whatever these generate.
_STOP = ('stop', 'halt', 'freeze', 'stop moving', 'stand still', "don't move", 'do not move',
         'wait', 'wait here', 'hold on', 'hold it', 'stay', 'stay here', 'stay still',
         'be still', 'pause', 'brake', 'stop driving', 'stop everything', 'keep still',
         'remain still', 'stop the motors', 'quit moving', 'stop at once', 'that is enough',
         'abort', 'stop the car', 'no further', 'stop going')
_FORWARD = ('move forward', 'go forward', 'drive forward', 'go straight ahead', 'move ahead',
            'forward', 'drive ahead', 'go on ahead', 'continue forward', 'head forward',
            'move straight', 'straight ahead', 'drive straight ahead', 'proceed forward',
            'go to the front', 'move forwards a bit', 'onward')
_BACKWARD = ('move backward', 'go back', 'back up', 'reverse', 'drive backwards',
             'move backwards', 'go backward', 'drive in reverse', 'backwards', 'retreat',
             'back away', 'go in reverse', 'move to the back', 'reverse slowly', 'back up a bit')
_LEFT = ('turn left', 'rotate left', 'spin left', 'go left', 'left turn', 'turn to your left',
         'veer left', 'steer left', 'rotate counterclockwise', 'turn anticlockwise',
         'look left', 'swing left', 'pivot left', 'left')
_RIGHT = ('turn right', 'rotate right', 'spin right', 'go right', 'right turn',
          'turn to your right', 'veer right', 'steer right', 'rotate clockwise',
          'turn clockwise', 'look right', 'swing right', 'pivot right', 'right')
_GO_TO = ('go to the {}', 'drive to the {}', 'move to the {}', 'approach the {}',
          'head to the {}', 'head towards the {}', 'go towards the {}', 'drive towards the {}',
          'move towards the {}', 'go up to the {}', 'go over to the {}', 'get close to the {}',
          'come to the {}', 'travel to the {}', 'navigate to the {}', 'go near the {}',
          'bring me to the {}', 'take me to the {}', 'reach the {}', 'go to a {}')
_LOOK_FOR = ('look for the {}', 'find the {}', 'search for the {}', 'where is the {}',
             'locate the {}', 'look around for the {}', 'find a {}', 'seek the {}',
             'search for a {}', 'spot the {}', 'can you see the {}', 'try to find the {}',
             'look for a {}', 'is there a {}', 'scan for the {}', 'where is a {}')
_OBJECT_WORDS = ('object', 'thing', 'item', 'it', 'box', 'sphere', 'target', 'block')
_PREFIXES = ('', '', '', 'please ', 'robot, ', 'hey robot ', 'now ', 'can you ', 'could you ')
_SUFFIXES = ('', '', '', ' please', ' now', ' right now', ' for me', ' a little', ' slowly',
             ' quickly')


def intent_phrasings(rng: random.Random, excluded=frozenset()):
    """One (text, intent name) pair for each intent, freshly varied each call."""
    colours, shapes = list(COLOURS), list(SHAPES) + list(_OBJECT_WORDS)

    def varied(text):
        return (rng.choice(_PREFIXES) + text + rng.choice(_SUFFIXES)).strip()

    def with_object(forms):
        obj = rng.choice(shapes)
        if obj not in _OBJECT_WORDS or rng.random() < 0.5:
            obj = f'{rng.choice(colours)} {obj}'
        return rng.choice(forms).format(obj)

    pairs = [(varied(rng.choice(_STOP)), 'stop'), (varied(rng.choice(_FORWARD)), 'move_forward'),
             (varied(rng.choice(_BACKWARD)), 'move_backward'),
             (varied(rng.choice(_LEFT)), 'turn_left'), (varied(rng.choice(_RIGHT)), 'turn_right'),
             (varied(with_object(_GO_TO)), 'go_to'), (varied(with_object(_LOOK_FOR)), 'look_for')]
    return [(text, name) for text, name in pairs if text not in excluded]


HELD_OUT_PARAPHRASES = paths.SOURCE_ROOT / 'test' / 'data' / 'intent_paraphrases.yaml'
# The language lists `vla-ros eval --commands` measures with: never generated either.
HELD_OUT_COMMANDS = (paths.SOURCE_ROOT / 'test' / 'data' / 'go_to_phrasings.yaml',
                     paths.SOURCE_ROOT / 'test' / 'data' / 'refused_commands.yaml')


def excluded_phrases(path: str):
    """The held-out paraphrases at `path`, and the held-out command lists with {object}
    filled in every way the generator could fill it.
    """
    import yaml

    excluded = set()
    if path and Path(path).is_file():
        table = yaml.safe_load(Path(path).read_text())
        excluded.update(phrase for phrases in table.values() for phrase in phrases)
    names = [f'{colour} {shape}' for colour in COLOURS for shape in (*SHAPES, *_OBJECT_WORDS)]
    names += list(_OBJECT_WORDS)
    for held_out in HELD_OUT_COMMANDS:
        if held_out.is_file():
            for commands in yaml.safe_load(held_out.read_text()).values():
                for command in commands:
                    excluded.update(str(command).lower().replace('{object}', name)
                                    for name in names)
    return frozenset(excluded)


def phrasing_batch(tokenizer, groups: int, excluded, device):
    """Tokens and intent labels (indices into DEFAULT_INTENTS) of `groups` fresh phrasings
    of every intent.
    """
    import torch

    from vla_ros.core.policy import DEFAULT_INTENTS
    from vla_ros.training.architecture import CONTEXT_TOKENS

    names = [intent.name for intent in DEFAULT_INTENTS]
    phrasings = [pair for _ in range(groups) for pair in intent_phrasings(random, excluded)]
    tokens = tokenizer([text for text, _ in phrasings], padding=True, truncation=True,
                       max_length=CONTEXT_TOKENS, return_tensors='pt')
    return tokens.to(device), torch.tensor([names.index(name) for _, name in phrasings],
                                           device=device)
