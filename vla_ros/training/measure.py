"""`vla-ros eval-models`: what the embedded models can do, measured on rendered views.

Models are loaded with the nodes' own loader and used through the nodes' own encoder classes,
so the numbers describe what runs on the robot. Seen = new scenes of the training
combinations; held-out = views centred on the colour x shape combinations never trained on.
"""

from functools import partial
from pathlib import Path
import random
import time

import numpy as np

from vla_ros.core import paths

PARAPHRASES = paths.SOURCE_ROOT / 'test' / 'data' / 'intent_paraphrases.yaml'


def _load(prefix: str):
    from vla_ros.training.data import load_split

    path = Path(prefix)
    return load_split(path.parent, path.name)


def _image_embeddings(encoder, images, chunk: int = 256):
    return np.concatenate([encoder.encode_images(list(images[start:start + chunk]))
                           for start in range(0, len(images), chunk)])


def clip_metrics(encoder, split, label: str) -> dict:
    """Zero-shot colour x shape accuracy over all 50 combinations, and retrieval R@1 between
    the views and their captions (a caption naming the same colour x shape counts as a match).
    """
    from vla_ros.sim.dataset import HELD_OUT
    from vla_ros.training.data import combo_text, COMBOS, named_views, ZERO_SHOT_FORM

    combos = None if label == 'seen' else HELD_OUT
    named = named_views(split, combos)
    if not named:
        return {'views': 0}
    images = _image_embeddings(encoder, split.images[[view for view, _, _ in named]])
    texts = encoder.encode_texts([ZERO_SHOT_FORM.format(combo_text(c)) for c in COMBOS])
    truth = np.array([COMBOS.index(combo) for _, _, combo in named])
    predicted = (images @ texts.T).argmax(1)
    caption_texts = texts[truth]  # each view's own caption
    similarity = images @ caption_texts.T
    image_to_text = truth[similarity.argmax(1)] == truth
    text_to_image = truth[similarity.argmax(0)] == truth
    return {
        'views': len(named),
        'zero_shot_accuracy': float((predicted == truth).mean()),
        'colour_accuracy': float(np.mean([COMBOS[p][0] == COMBOS[t][0]
                                          for p, t in zip(predicted, truth)])),
        'shape_accuracy': float(np.mean([COMBOS[p][1] == COMBOS[t][1]
                                         for p, t in zip(predicted, truth)])),
        'image_to_text_r1': float(image_to_text.mean()),
        'text_to_image_r1': float(text_to_image.mean()),
    }


def intent_metrics(encoder, table_path: Path) -> dict:
    import yaml

    from vla_ros.core.policy import DEFAULT_INTENTS, IntentClassifier

    table = yaml.safe_load(table_path.read_text())
    cases = [(name, phrase) for name, phrases in table.items() for phrase in phrases]
    embeddings = encoder.encode_texts([phrase for _, phrase in cases])
    nearest = IntentClassifier.from_encoder(DEFAULT_INTENTS, encoder.encode_texts, 0.0, 0.0)
    deployed = IntentClassifier.from_encoder(DEFAULT_INTENTS, encoder.encode_texts, 0.5, 0.02)
    wrong, refused, correct_deployed = [], 0, 0
    for (name, phrase), embedding in zip(cases, embeddings):
        match = nearest.classify(embedding)
        if match.intent.name != name:
            wrong.append(f'{phrase!r} -> {match.intent.name} (want {name})')
        strict = deployed.classify(embedding)
        refused += strict.intent is None
        correct_deployed += strict.intent is not None and strict.intent.name == name
    return {'phrases': len(cases), 'accuracy': 1 - len(wrong) / len(cases),
            'accuracy_with_deployed_thresholds': correct_deployed / len(cases),
            'refused_with_deployed_thresholds': refused / len(cases), 'errors': wrong}


def segmentation_metrics(segmenter, split, label: str, seed: int = 0) -> dict:
    """IoU of the main object's mask (prompt '<colour> <shape>', threshold 0.5, at the image's
    size) and the false-positive rate of prompts naming nothing in the scene: the share of
    them for which the policy would see a target (any pixel above the threshold).
    """
    from vla_ros.core.segmentation import find_target
    from vla_ros.sim.dataset import HELD_OUT
    from vla_ros.training.data import combo_text, named_views
    from vla_ros.training.stages.clipseg import absent_prompt

    rng = random.Random(seed)
    combos = None if label == 'seen' else HELD_OUT
    ious, false_hits, false_area = [], [], []
    for view, obj, combo in named_views(split, combos):
        image = split.images[view]
        segmenter.set_prompts([combo_text(combo), absent_prompt(split, view, rng)])
        probabilities = segmenter.segment(image)
        truth = split.labels[view] == obj + 1
        mask = probabilities[0] >= 0.5
        ious.append((mask & truth).sum() / max((mask | truth).sum(), 1))
        false_hits.append(find_target(probabilities[1], 0.5).area > 0)
        false_area.append(float((probabilities[1] >= 0.5).mean()))
    return {'views': len(ious), 'miou': float(np.mean(ious)),
            'iou_over_0_5': float(np.mean(np.array(ious) > 0.5)),
            'absent_false_positive_rate': float(np.mean(false_hits)),
            'absent_mean_false_area': float(np.mean(false_area))}


def verification_metrics(verifier, segmenter, split, label: str, seed: int = 0) -> dict:
    """What the target verifier changes, with and without it, per view's main object: the
    target (find_target) of its own prompt lies on it; a look-alike prompt (its colour, a
    shape absent from the scene) or a prompt naming nothing in the scene yields a target.
    """
    from vla_ros.core.segmentation import find_target, pixel_at
    from vla_ros.sim.dataset import HELD_OUT
    from vla_ros.sim.scene import SHAPES
    from vla_ros.training.data import combo_text, named_views
    from vla_ros.training.stages.clipseg import absent_prompt

    rng = random.Random(seed)
    keys = ('on_object', 'look_alike_target', 'absent_target')
    counts, asked = {key: [0, 0] for key in keys}, dict.fromkeys(keys, 0)
    for view, obj, combo in named_views(split, None if label == 'seen' else HELD_OUT):
        image, labels = split.images[view], split.labels[view]
        present = {(o['colour'], o['shape']) for o in split.records[view]['objects']}
        look_alikes = [(combo[0], shape) for shape in SHAPES if (combo[0], shape) not in present]
        prompts = {'on_object': combo_text(combo),
                   'absent_target': absent_prompt(split, view, rng)}
        if look_alikes:
            prompts['look_alike_target'] = combo_text(rng.choice(look_alikes))
        segmenter.set_prompts(list(prompts.values()))
        probabilities = segmenter.segment(image)
        for (key, prompt), probability in zip(prompts.items(), probabilities):
            asked[key] += 1
            verifier.set_prompt(prompt)
            for column, accept in enumerate([None, partial(verifier.accept, image)]):
                target = find_target(probability, 0.5, accept=accept)
                if key == 'on_object':
                    on = labels[pixel_at(target.x, target.y, *labels.shape)]
                    counts[key][column] += target.visible and on == obj + 1
                else:
                    counts[key][column] += target.visible
    rates = {f'{key}_rate': {'without': without / max(asked[key], 1),
                             'with': with_ / max(asked[key], 1)}
             for key, (without, with_) in counts.items()}
    return {'views': asked['on_object'], **rates}


def pipeline_speed(encoder, segmenter, verifier, images, foveas, frames: int = 100) -> list:
    """Per frame: the camera embedding, the segmenter's masks and the verified target, in
    sequence on this machine's CPU (what the two image nodes do for every frame), over
    `frames` frames cycling through `images` (the cost of verification depends on what is in
    view); one result per entry of `foveas` (None: the whole frame only), measured in turns,
    frame by frame, so that a busy machine slows every variant alike.
    """
    from vla_ros.core.segmentation import find_target

    segmenter.set_prompts(['red ball'])
    verifier.set_prompt('red ball')

    def target(frame, fovea):
        # At the model's resolution, as the scene segmenter node does.
        return find_target(segmenter.probabilities(frame, fovea)[0], 0.5,
                           accept=partial(verifier.accept, frame))
    for fovea in foveas:
        for frame in images[:5]:
            encoder.encode_images([frame])
            target(frame, fovea)
    times = [{'camera_embedding': [], 'segmentation': []} for _ in foveas]
    for index in range(frames):
        frame = images[index % len(images)]
        for fovea, variant in zip(foveas, times):
            started = time.perf_counter()
            encoder.encode_images([frame])
            middle = time.perf_counter()
            target(frame, fovea)
            done = time.perf_counter()
            variant['camera_embedding'].append(middle - started)
            variant['segmentation'].append(done - middle)
    results = []
    for variant in times:
        total = np.array(variant['camera_embedding']) + np.array(variant['segmentation'])
        result = {f'{key}_ms_p50': 1e3 * float(np.median(value))
                  for key, value in variant.items()}
        result.update(frame=f'{images[0].shape[1]}x{images[0].shape[0]}', total_ms_p50=1e3 * float(
            np.median(total)), pipeline_hz=float(1.0 / np.median(total)))
        results.append(result)
    return results
