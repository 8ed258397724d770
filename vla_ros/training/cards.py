"""Model cards (README.md in each model folder) from training.json and eval-models' numbers."""

import json
from pathlib import Path

from vla_ros.sim.dataset import HELD_OUT

LIMITS = """## Limits
- Trained on simulator renders only (MuJoCo, flat-coloured primitives on a checker floor):
  it knows 10 colours and 5 shapes, not the real world. On a real robot, point the YAML at
  `openai/clip-vit-base-patch32` / `CIDAS/clipseg-rd64-refined` instead.
- Input is resized to 96 x 96 without cropping: far-away objects (under ~1 % of the frame)
  are not recognised.
- The tokenizer is CLIP's own BPE cut to its first 8000 merges; any text tokenizes, but words
  it never saw in training carry no meaning for it.
"""


def _size_mb(folder: Path) -> float:
    return sum(path.stat().st_size for path in folder.glob('*.safetensors')) / 1e6


def _percent(value) -> str:
    return f'{100 * value:.1f} %'


def _rows(seen: dict, held: dict, rows) -> str:
    """Markdown table rows: (title, key, format) for seen and held-out side by side."""
    return '\n'.join(f'| {title} | {fmt(seen[key])} | {fmt(held[key])} |'
                     for title, key, fmt in rows)


def clip_card(folder: Path, results: dict) -> str:
    # Its stages, first to last: contrastive training, the text tower tuned to the policy's
    # intents, the vision tower tuned on object crops; each records the one before.
    stages, stage = [], json.loads((folder / 'training.json').read_text())
    while stage:
        stages.insert(0, stage)
        stage = stage.get('previous_stage')
    training = stages[0]
    crops = next((stage for stage in stages if stage['kind'] == 'crops'), None)
    commands = '\n'.join(stage['command'] for stage in stages)
    minutes = sum(stage['training_seconds'] for stage in stages) / 60
    seen, held = results['clip_seen'], results['clip_held_out']
    intents = results['intents']
    held_out = ', '.join(f'{c} {s}' for c, s in sorted(HELD_OUT))
    table = _rows(seen, held, (
        ('views', 'views', str),
        ('zero-shot colour x shape (50 classes)', 'zero_shot_accuracy', _percent),
        ('colour right', 'colour_accuracy', _percent),
        ('shape right', 'shape_accuracy', _percent),
        ('image -> text R@1', 'image_to_text_r1', _percent),
        ('text -> image R@1', 'text_to_image_r1', _percent)))
    intent_accuracy = _percent(intents['accuracy'])
    return f"""# vla_ros embedded CLIP

A small `CLIPModel` ({training['parameters'] / 1e6:.2f} M parameters, {_size_mb(folder):.1f} MB)
trained contrastively by this project on onboard-camera renders of the vla_ros simulator. It
is the camera and command embedder's default when no model is configured.

- Vision: ViT, 96 x 96 input, 8 px patches, 4 layers x 128. Text: 3 layers x 128, 32 tokens.
  Joint space: {results.get('dim', 128)} dimensions.
- Tokenizer: CLIP's byte-level BPE (the vocabulary OpenAI published, from the open-clip-torch
  wheel) cut to its first 8000 merges, so common words keep openai/clip-*'s token ids and any
  text still tokenizes; the end token has the highest id (where the text tower pools).
- Data: {training['views']} rendered views (`{training['data']}`), each named by its largest
  visible object in six caption forms ("a red ball", "go to the red ball", ...). Pairs naming
  the same colour x shape are positives of each other. Held-out combinations never seen in
  training: {held_out}.
- Intents: during contrastive training a supervised contrastive loss groups generated command
  phrasings (stop, move forward/backward, turn left/right, go to, look for) by intent. A
  second stage (`vla-ros train intents`, vision tower frozen) tunes the text tower to the
  policy's own rule: the nearest intent by its best prototype phrasing (DEFAULT_INTENTS),
  above the policy's similarity threshold of 0.5, while descriptions stay with their images.
  The held-out paraphrases of test/data/intent_paraphrases.yaml are removed from everything
  it generates.
{_crops_bullet(crops)}
## Reproduce
```
vla-ros dataset --split train --scenes 1000 --views 10 --output runs/dataset
{commands}
```
Seed {training['seed']}; {' + '.join(f"{stage['steps']} steps of batch {stage['batch']}"
                                   for stage in stages)}; AdamW, learning rates
{' / '.join(str(stage['lr']) for stage in stages)}, bfloat16 autocast; {minutes:.0f} min in all
on {training['torch_threads']} CPU threads.

## Measured (`vla-ros eval-models`, new scenes)
| | seen combinations | held-out combinations |
|---|---|---|
{table}

Retrieval: among all views of the set and their captions "a <colour> <shape>"; a caption
naming the same colour x shape counts as a match.
Intent of {intents['phrases']} held-out paraphrases (nearest intent): {intent_accuracy};
with the policy's thresholds (similarity 0.5, margin 0.02):
{_percent(intents['accuracy_with_deployed_thresholds'])} right,
{_percent(intents['refused_with_deployed_thresholds'])} refused as low confidence.
{_verification_table(results)}
{LIMITS}"""


def _crops_bullet(crops) -> str:
    if crops is None:
        return ''
    return (f"- Crops: a third stage (`vla-ros train crops`, text tower frozen) tunes the "
            f"vision tower\n  on {crops['crops']} crops of single objects, cut out as the scene "
            f"segmenter's target verifier\n  cuts out a region, alongside the {crops['views']} "
            'whole views, towards their "a <colour>\n  <shape>" captions.\n')


VERIFICATION_ROWS = (
    ("the named object's prompt gives a target on it", 'on_object_rate'),
    ('a look-alike prompt (its colour, a shape not in the scene) gives a target',
     'look_alike_target_rate'),
    ('a prompt naming nothing in the scene gives a target', 'absent_target_rate'))


def _verification_table(results: dict) -> str:
    """The target verifier with this CLIP on the CLIPSeg's regions, if it was measured."""
    if 'verification_seen' not in results:
        return ''
    seen, held = results['verification_seen'], results['verification_held_out']

    def cell(rates):
        return f"{_percent(rates['without'])} -> {_percent(rates['with'])}"
    rows = '\n'.join(f'| {title} | {cell(seen[key])} | {cell(held[key])} |'
                     for title, key in VERIFICATION_ROWS)
    return ("\n## As the scene segmenter's target verifier (unverified -> verified)\n"
            '| | seen combinations | held-out combinations |\n|---|---|---|\n' + rows + '\n')


def _dataset_command(folder) -> str:
    """The command that rendered a dataset folder's train split, if it recorded it."""
    meta = Path(folder) / 'train.meta.json'
    return json.loads(meta.read_text())['command'] + '\n' if meta.is_file() else ''


def _without_fovea(results: dict) -> str:
    speed = results.get('speed_without_fovea')
    return '' if speed is None else (
        f" ({speed['total_ms_p50']:.1f} ms, {speed['pipeline_hz']:.0f} frames/s without it)")


def clipseg_card(folder: Path, results: dict) -> str:
    training = json.loads((folder / 'training.json').read_text())
    seen, held = results['clipseg_seen'], results['clipseg_held_out']
    speed = results['speed']
    towers = ('frozen, as in CLIPSeg; only the decoder is trained' if training.get(
        'frozen_clip', True) else 'then fine-tuned at a lower learning rate')
    resumed = (f" Resumed from its checkpoint at step {training['resumed_at_step']} (the "
               "first steps ran with an earlier command's arguments; the top-level README "
               'lists both).' if training.get('resumed_at_step') else '')
    extra = training.get('extra_data', [])
    data = ', '.join(f'`{folder}`' for folder in [training['data'], *extra])
    if extra:
        data += ('; the extra folders hold views from anywhere in the arena, facing any way '
                 '(walls, close-ups), as the robot sees while it searches')
    hard = (f"; {_percent(training['hard_negative_fraction'])} of those share the colour or "
            'the shape of something in view' if training.get('hard_negative_fraction') else '')
    rendered = ''.join(_dataset_command(folder) for folder in [training['data'], *extra])
    table = _rows(seen, held, (
        ('views', 'views', str), ('mIoU of the named object', 'miou', '{:.3f}'.format),
        ('views with IoU > 0.5', 'iou_over_0_5', _percent),
        ('absent prompt seen as a target', 'absent_false_positive_rate', _percent)))
    return f"""# vla_ros embedded CLIPSeg

A small `CLIPSegForImageSegmentation` ({training['parameters'] / 1e6:.2f} M parameters,
{_size_mb(folder):.1f} MB): the embedded CLIP's towers (copied from `{training['clip']}`,
{towers}) and a CLIPSeg decoder reading vision layers 1-3, FiLM-conditioned on the prompt
before its last layer. It is the scene segmenter's default when no model is configured.

- Data: {training['views']} rendered views ({data}) with exact masks from the
  simulator's segmentation buffer. Prompts: "<colour> <shape>", "the <colour> <shape>", and
  the colour or shape alone when nothing else in view shares it;
  {_percent(training.get('absent_fraction', 0.3))} of prompts name something absent from the
  scene, with an empty mask as the answer{hard}.
- Loss: binary cross-entropy + Dice (on prompts whose object is in view).

## Reproduce
```
{rendered}{training['command']}
```
Seed {training['seed']}, {training['steps']} steps of batch {training['batch']},
{training['training_seconds'] / 60:.0f} min on {training['torch_threads']} CPU threads.{resumed}

## Measured (`vla-ros eval-models`, new scenes, threshold 0.5, at the camera's 160 x 120)
| | seen combinations | held-out combinations |
|---|---|---|
{table}

Speed on this machine ({results['torch_threads']} threads, {speed['frame']} frame): camera
embedding {speed['camera_embedding_ms_p50']:.1f} ms + masks (with the fovea, the scene
segmenter's default) and the verified target {speed['segmentation_ms_p50']:.1f} ms =
{speed['total_ms_p50']:.1f} ms p50, i.e. {speed['pipeline_hz']:.0f} frames/s for the whole
perception pipeline{_without_fovea(results)}.

{LIMITS}"""


def write_cards(clip_folder, clipseg_folder, results: dict):
    for folder, card in ((Path(clip_folder), clip_card), (Path(clipseg_folder), clipseg_card)):
        (folder / 'README.md').write_text(card(folder, results))
        print(f'[eval-models] wrote {folder / "README.md"}')
