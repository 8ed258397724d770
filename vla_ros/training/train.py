"""`vla-ros train clip|clipseg`: train the embedded models on rendered views, resumably.

Progress is a tqdm bar with the running loss; a checkpoint (weights, optimiser, schedule,
random state) is written every `--checkpoint-every` steps to OUTPUT/checkpoint.pt and picked
up again by the same command. The finished model is a Hugging Face folder (config,
safetensors, tokenizer, processor) plus training.json, which the model card is written from.
"""

import json
import math
import os
from pathlib import Path
import random
import sys
import time

import numpy as np

from vla_ros.core import paths

HELD_OUT_PARAPHRASES = paths.SOURCE_ROOT / 'test' / 'data' / 'intent_paraphrases.yaml'


def _excluded_phrases(path: str):
    import yaml

    if not path or not Path(path).is_file():
        return frozenset()
    table = yaml.safe_load(Path(path).read_text())
    return frozenset(phrase for phrases in table.values() for phrase in phrases)


def _pixels(processor, images, chunk: int = 512):
    """All images through the model's own processor once (the same resize and normalisation
    as the nodes), kept as one float tensor.
    """
    import torch
    from tqdm import tqdm

    parts = [processor(images=list(images[start:start + chunk]), return_tensors='pt')
             ['pixel_values'] for start in tqdm(range(0, len(images), chunk),
                                                desc='preprocess', unit='chunk')]
    return torch.cat(parts)


def _schedule(optimizer, warmup: int, total: int):
    import torch

    def factor(step):
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(total - warmup, 1)
        return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


class Checkpointer:
    """Save and restore everything a resumed run needs to continue the same run."""

    def __init__(self, output: Path, every: int):
        self.path, self.every = output / 'checkpoint.pt', every

    def restore(self, model, optimizer, scheduler):
        import torch

        if not self.path.is_file():
            return 0, 0.0
        state = torch.load(self.path, weights_only=False, map_location='cpu')
        model.load_state_dict(state['model'])
        optimizer.load_state_dict(state['optimizer'])
        scheduler.load_state_dict(state['scheduler'])
        random.setstate(state['python_rng'])
        torch.set_rng_state(state['torch_rng'])
        print(f'[train] resumed from {self.path} at step {state["step"]}', flush=True)
        return state['step'], state['seconds']

    def maybe_save(self, step, seconds, model, optimizer, scheduler, force=False):
        import torch

        if not force and step % self.every:
            return
        temporary = self.path.with_suffix('.tmp')
        torch.save({'model': model.state_dict(), 'optimizer': optimizer.state_dict(),
                    'scheduler': scheduler.state_dict(), 'step': step, 'seconds': seconds,
                    'python_rng': random.getstate(), 'torch_rng': torch.get_rng_state()},
                   temporary)
        os.replace(temporary, self.path)  # a cut-off never leaves half a checkpoint


def _device_name(device) -> str:
    import torch

    return torch.cuda.get_device_name(device) if device.type == 'cuda' else 'cpu'


def _soft_targets(combo_ids):
    """Row i: uniform over the batch entries naming the same colour x shape as entry i."""
    same = (combo_ids[:, None] == combo_ids[None, :]).float()
    return same / same.sum(dim=1, keepdim=True)


def _symmetric_contrastive(logits, combo_ids):
    """CLIP's loss both ways, with same colour x shape pairs as shared positives."""
    import torch.nn.functional as F

    targets = _soft_targets(combo_ids)
    return (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets)) / 2


def _phrasing_batch(tokenizer, groups: int, excluded, device):
    """Tokens and intent labels (indices into DEFAULT_INTENTS) of `groups` fresh phrasings
    of every intent.
    """
    import torch

    from vla_ros.core.policy import DEFAULT_INTENTS
    from vla_ros.training.architecture import CONTEXT_TOKENS
    from vla_ros.training.data import intent_phrasings

    names = [intent.name for intent in DEFAULT_INTENTS]
    phrasings = [pair for _ in range(groups) for pair in intent_phrasings(random, excluded)]
    tokens = tokenizer([text for text, _ in phrasings], padding=True, truncation=True,
                       max_length=CONTEXT_TOKENS, return_tensors='pt')
    return tokens.to(device), torch.tensor([names.index(name) for _, name in phrasings],
                                           device=device)


def _supervised_contrastive(embeddings, labels, temperature: float):
    """Pull texts of the same intent together, push the others away (Khosla et al. 2020)."""
    import torch

    logits = embeddings @ embeddings.T / temperature
    eye = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    logits = logits.masked_fill(eye, -1e9)
    positives = (labels[:, None] == labels[None, :]) & ~eye
    log_probability = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    per_row = (log_probability * positives).sum(1) / positives.sum(1).clamp(min=1)
    return -per_row.mean()


def _loop(args, model, parameters, step_loss, output: Path, describe):
    """The shared loop: AdamW, warm-up + cosine, checkpoints, tqdm, training.json."""
    import torch
    from tqdm import tqdm

    optimizer = torch.optim.AdamW(parameters, weight_decay=args.weight_decay)
    scheduler = _schedule(optimizer, min(200, args.steps // 10 + 1), args.steps)
    checkpoints = Checkpointer(output, args.checkpoint_every)
    step, seconds = checkpoints.restore(model, optimizer, scheduler) if args.resume else (0, 0.)
    resumed_at = step  # > 0: an earlier run (perhaps with other arguments) did the first steps
    model.train()
    history, running = [], None
    bar = tqdm(total=args.steps, initial=step, desc=f'train {args.kind}', unit='step')
    started = time.monotonic() - seconds
    while step < args.steps:
        # bfloat16 matmuls (fp32 weights and optimiser): ~20 % faster on CPUs with bf16 units.
        with torch.autocast(args.device.type, dtype=torch.bfloat16, enabled=args.bf16):
            loss, parts = step_loss()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        step += 1
        value = loss.item()
        running = value if running is None else 0.98 * running + 0.02 * value
        bar.update(1)
        bar.set_postfix(loss=f'{running:.3f}', **{k: f'{v:.3f}' for k, v in parts.items()})
        if step % 50 == 0:
            history.append({'step': step, 'loss': running, **parts})
        checkpoints.maybe_save(step, time.monotonic() - started, model, optimizer, scheduler,
                               force=step == args.steps)
    bar.close()
    model.eval()
    seconds = time.monotonic() - started
    record = {'kind': args.kind, 'command': ' '.join(['vla-ros'] + sys.argv[1:]),
              'seed': args.seed, 'steps': args.steps, 'batch': args.batch, 'lr': args.lr,
              'training_seconds': round(seconds, 1), 'torch_threads': torch.get_num_threads(),
              'device': _device_name(args.device),
              'bf16_autocast': args.bf16, 'resumed_at_step': resumed_at,
              'final_loss': running, 'history': history, **describe}
    return record


def _training_record(folder):
    """The training.json of the model a stage starts from (None if it has none)."""
    path = Path(folder) / 'training.json'
    return json.loads(path.read_text()) if path.is_file() else None


def _save(model, processor, output: Path, record: dict) -> int:
    """The finished model as a Hugging Face folder, with its training record."""
    model.cpu()
    for parameter in model.parameters():  # save_pretrained wants contiguous tensors
        parameter.data = parameter.data.contiguous()
    model.save_pretrained(output)
    processor.save_pretrained(output)
    (output / 'training.json').write_text(json.dumps(record, indent=1))
    print(f'[train] saved {output} after {record["training_seconds"]:.0f} s', flush=True)
    return 0


def train_clip(args) -> int:
    import torch
    import torch.nn.functional as F
    from transformers import CLIPProcessor

    from vla_ros.training import architecture, bpe
    from vla_ros.training.data import (
        CAPTION_FORMS,
        combo_text,
        COMBOS,
        load_split,
        named_views,
    )

    output = Path(args.output)
    tokenizer = bpe.clip_bpe_tokenizer(architecture.BPE_MERGES, architecture.CONTEXT_TOKENS,
                                       args.bpe_vocab)
    processor = CLIPProcessor(image_processor=architecture.image_processor('clip'),
                              tokenizer=tokenizer)
    model = architecture.new_clip(tokenizer, args.seed).to(args.device)
    data = load_split(args.data, 'train')
    pairs = named_views(data)
    pixels = _pixels(processor.image_processor, data.images).to(args.device)
    combo_index = {combo: i for i, combo in enumerate(COMBOS)}
    captions = [form.format(combo_text(combo)) for combo in COMBOS for form in CAPTION_FORMS]
    # Padded to the longest caption (not the context length): the text tower's cost follows.
    caption_tokens = tokenizer(captions, padding=True, truncation=True,
                               max_length=architecture.CONTEXT_TOKENS,
                               return_tensors='pt').to(args.device)
    excluded = _excluded_phrases(args.exclude_phrases)
    print(f'[train] clip: {sum(p.numel() for p in model.parameters()) / 1e6:.2f} M parameters, '
          f'{len(pairs)} named views, {len(excluded)} held-out phrasings excluded', flush=True)

    def step_loss():
        chosen = random.sample(pairs, min(args.batch, len(pairs)))
        views = torch.tensor([view for view, _, _ in chosen], device=args.device)
        combos = torch.tensor([combo_index[combo] for _, _, combo in chosen], device=args.device)
        forms = torch.randint(len(CAPTION_FORMS), (len(chosen),)).to(args.device)
        rows = combos * len(CAPTION_FORMS) + forms
        images = pixels[views]
        # mirror images keep colour and shape
        flip = (torch.rand(len(chosen)) < 0.5).to(args.device)
        images = torch.where(flip[:, None, None, None], images.flip(-1), images)
        image_output = model.get_image_features(pixel_values=images).pooler_output
        text_output = model.get_text_features(
            input_ids=caption_tokens['input_ids'][rows],
            attention_mask=caption_tokens['attention_mask'][rows]).pooler_output
        tokens, labels = _phrasing_batch(tokenizer, args.intent_groups, excluded, args.device)
        intent_output = model.get_text_features(**tokens).pooler_output
        # similarities in float32: the scale is ~100
        with torch.autocast(args.device.type, enabled=False):
            image_features = F.normalize(image_output.float(), dim=-1)
            text_features = F.normalize(text_output.float(), dim=-1)
            scale = model.logit_scale.exp().clamp(max=100)
            contrastive = _symmetric_contrastive(scale * image_features @ text_features.T,
                                                 combos)
            intents = _supervised_contrastive(
                F.normalize(intent_output.float(), dim=-1), labels, 0.1)
        loss = contrastive + args.intent_weight * intents
        return loss, {'clip': contrastive.item(), 'intent': intents.item()}

    record = _loop(args, model, model.parameters(), step_loss, output,
                   {'views': len(pairs), 'data': str(args.data),
                    'parameters': sum(p.numel() for p in model.parameters())})
    return _save(model, processor, output, record)


def _intent_decision_loss(phrase_features, labels, prototype_features, prototype_intents,
                          min_similarity: float, temperature: float = 0.05):
    """Train the policy's own rule: a command's intent is the one whose best prototype
    phrasing is most similar, and that similarity must clear the policy's threshold.
    Cross-entropy over the per-intent best similarities, plus a hinge on the right intent's.
    """
    import torch
    import torch.nn.functional as F

    similarity = phrase_features @ prototype_features.T  # (N, P)
    intents = int(prototype_intents.max()) + 1
    best = torch.stack([similarity[:, prototype_intents == i].max(1).values
                        for i in range(intents)], dim=1)  # (N, intents)
    ranking = F.cross_entropy(best / temperature, labels)
    right = best.gather(1, labels[:, None])[:, 0]
    threshold = F.relu(min_similarity + 0.1 - right).mean()
    return ranking + threshold


def train_intents(args) -> int:
    """Second stage of the CLIP: tune the text tower so commands land on the policy's intents
    (its prototype phrasings, its similarity threshold) while captions stay with their images.
    The vision tower is frozen, so the image embeddings are computed once.
    """
    import torch
    import torch.nn.functional as F
    from transformers import CLIPModel, CLIPProcessor

    from vla_ros.core.policy import DEFAULT_INTENTS
    from vla_ros.training.data import (
        combo_text,
        COMBOS,
        DESCRIPTION_FORMS,
        load_split,
        named_views,
    )

    output = Path(args.output)
    model = CLIPModel.from_pretrained(args.clip).to(args.device)
    processor = CLIPProcessor.from_pretrained(args.clip)
    tokenizer = processor.tokenizer
    for parameter in model.vision_model.parameters():
        parameter.requires_grad = False
    model.visual_projection.requires_grad_(False)
    data = load_split(args.data, 'train')
    pairs = named_views(data)
    pixels = _pixels(processor.image_processor,
                     data.images[[view for view, _, _ in pairs]]).to(args.device)
    model.eval()
    with torch.inference_mode():
        image_features = torch.cat([
            F.normalize(model.get_image_features(pixel_values=pixels[start:start + 256])
                        .pooler_output, dim=-1) for start in range(0, len(pixels), 256)])
    image_combos = torch.tensor([COMBOS.index(combo) for _, _, combo in pairs],
                                device=args.device)
    captions = [form.format(combo_text(combo)) for combo in COMBOS for form in DESCRIPTION_FORMS]
    caption_tokens = tokenizer(captions, padding=True, return_tensors='pt').to(args.device)
    prototypes = [phrase for intent in DEFAULT_INTENTS for phrase in intent.phrases]
    prototype_intents = torch.tensor([index for index, intent in enumerate(DEFAULT_INTENTS)
                                      for _ in intent.phrases], device=args.device)
    prototype_tokens = tokenizer(prototypes, padding=True, return_tensors='pt').to(args.device)
    excluded = _excluded_phrases(args.exclude_phrases)
    trainable = [p for p in model.parameters() if p.requires_grad]

    def step_loss():
        chosen = torch.randint(len(pairs), (args.batch,)).to(args.device)
        combos = image_combos[chosen]
        forms = torch.randint(len(DESCRIPTION_FORMS), (args.batch,)).to(args.device)
        rows = combos * len(DESCRIPTION_FORMS) + forms
        caption_output = model.get_text_features(
            input_ids=caption_tokens['input_ids'][rows],
            attention_mask=caption_tokens['attention_mask'][rows]).pooler_output
        tokens, labels = _phrasing_batch(tokenizer, args.intent_groups, excluded, args.device)
        phrase_output = model.get_text_features(**tokens).pooler_output
        prototype_output = model.get_text_features(**prototype_tokens).pooler_output
        with torch.autocast(args.device.type, enabled=False):
            texts = F.normalize(caption_output.float(), dim=-1)
            logits = model.logit_scale.exp().clamp(max=100) * image_features[chosen] @ texts.T
            contrastive = _symmetric_contrastive(logits, combos)
            intents = _intent_decision_loss(
                F.normalize(phrase_output.float(), dim=-1), labels,
                F.normalize(prototype_output.float(), dim=-1), prototype_intents,
                args.min_intent_similarity)
        loss = contrastive + args.intent_weight * intents
        return loss, {'clip': contrastive.item(), 'intent': intents.item()}

    record = _loop(args, model, trainable, step_loss, output,
                   {'views': len(pairs), 'data': str(args.data), 'clip': str(args.clip),
                    'parameters': sum(p.numel() for p in model.parameters()),
                    'trained_parameters': sum(p.numel() for p in trainable)})
    record['previous_stage'] = _training_record(args.clip)
    return _save(model, processor, output, record)


CROP_MIN_FRACTION = 0.003  # objects this small in view still get a crop: far targets


def object_crops(data, rng: random.Random, paddings=(0.1, 0.4)):
    """[(crop, combo)]: each object of at least CROP_MIN_FRACTION of a view, cut out the way
    the target verifier cuts out a region (crop_region), at a random padding in `paddings`.
    """
    from vla_ros.core.segmentation import crop_region, find_regions

    crops = []
    for index in range(len(data)):
        size = data.labels[index].size
        for obj, item in enumerate(data.records[index]['objects']):
            if item['pixels'] / size < CROP_MIN_FRACTION:
                continue
            mask = (data.labels[index] == obj + 1).astype(np.float32)
            region = find_regions(mask, 0.5)[0]
            crops.append((crop_region(data.images[index], region, rng.uniform(*paddings)),
                          (item['colour'], item['shape'])))
    return crops


def train_crops(args) -> int:
    """Third stage of the CLIP: tune the vision tower so that crops of single objects (what
    the target verifier asks about) and whole views both land on their "a <colour> <shape>"
    caption. The text tower is frozen, so captions and intents keep their embeddings.
    """
    import torch
    import torch.nn.functional as F
    from transformers import CLIPModel, CLIPProcessor

    from vla_ros.training.data import combo_text, COMBOS, load_split, named_views, ZERO_SHOT_FORM

    output = Path(args.output)
    model = CLIPModel.from_pretrained(args.clip).to(args.device)
    processor = CLIPProcessor.from_pretrained(args.clip)
    model.text_model.requires_grad_(False)
    model.text_projection.requires_grad_(False)
    model.logit_scale.requires_grad_(False)
    data = load_split(args.data, 'train')
    crops = object_crops(data, random.Random(args.seed))
    views = named_views(data)
    seen = sorted({combo for _, combo in crops} | {combo for _, _, combo in views})
    crop_pixels = _pixels(processor.image_processor, [crop for crop, _ in crops])
    view_pixels = _pixels(processor.image_processor, data.images[[v for v, _, _ in views]])
    pixels = torch.cat([crop_pixels, view_pixels]).to(args.device)
    classes = torch.tensor([seen.index(combo) for _, combo in crops]
                           + [seen.index(combo) for _, _, combo in views], device=args.device)
    is_crop = torch.arange(len(pixels), device=args.device) < len(crops)
    model.eval()
    with torch.no_grad():  # only the combinations seen in training are classes
        texts = F.normalize(model.get_text_features(**processor.tokenizer(
            [ZERO_SHOT_FORM.format(combo_text(combo)) for combo in seen], padding=True,
            return_tensors='pt').to(args.device)).pooler_output.float(), dim=-1)
    trainable = [p for p in model.parameters() if p.requires_grad]
    print(f'[train] crops: {len(crops)} object crops + {len(views)} views, {len(seen)} of '
          f'{len(COMBOS)} combinations', flush=True)

    def step_loss():
        # Half crops, half whole views, so the camera embedder's use is kept.
        half = args.batch // 2
        chosen = torch.cat([
            torch.randint(len(crops), (half,)),
            len(crops) + torch.randint(len(views), (args.batch - half,))]).to(args.device)
        images = pixels[chosen]
        flip = (torch.rand(len(chosen)) < 0.5).to(args.device)
        images = torch.where(flip[:, None, None, None], images.flip(-1), images)
        features = model.get_image_features(pixel_values=images).pooler_output
        with torch.autocast(args.device.type, enabled=False):
            logits = model.logit_scale.exp().clamp(max=100) * F.normalize(
                features.float(), dim=-1) @ texts.T
            losses = F.cross_entropy(logits, classes[chosen], reduction='none')
            crop_loss, view_loss = losses[is_crop[chosen]].mean(), losses[~is_crop[chosen]].mean()
        return (crop_loss + view_loss) / 2, {'crop': crop_loss.item(), 'view': view_loss.item()}

    record = _loop(args, model, trainable, step_loss, output,
                   {'crops': len(crops), 'views': len(views), 'data': str(args.data),
                    'clip': str(args.clip), 'classes': len(seen),
                    'parameters': sum(p.numel() for p in model.parameters()),
                    'trained_parameters': sum(p.numel() for p in trainable)})
    record['previous_stage'] = _training_record(args.clip)
    return _save(model, processor, output, record)


def _sample_for(data, index):
    """A core `Sample` view of a stored record, so prompts follow the generator's rules."""
    from types import SimpleNamespace

    from vla_ros.sim.dataset import Sample

    record = data.records[index]
    objects = tuple(SimpleNamespace(colour=o['colour'], shape=o['shape'])
                    for o in record['objects'])
    return Sample(image=data.images[index], labels=data.labels[index], objects=objects,
                  pixels=tuple(o['pixels'] for o in record['objects']), focus=record['focus'])


def absent_prompt(data, index, rng: random.Random, hard_fraction: float = 0.0):
    """A prompt naming nothing in the scene (not even partly in view). With probability
    `hard_fraction` it shares the colour or the shape of an object in view (meant to teach
    the decoder to read both words); otherwise it mostly differs in colour from everything in
    the scene. With hard_fraction 0 the draws are those the shipped model was trained with.
    """
    from vla_ros.sim.scene import COLOURS, SHAPES

    objects = data.records[index]['objects']
    present = {(o['colour'], o['shape']) for o in objects}
    colours = {colour for colour, _ in present}
    in_view = [(objects[i]['colour'], objects[i]['shape']) for i, _ in data.visible(index)]
    hard = hard_fraction > 0 and bool(in_view) and rng.random() < hard_fraction
    for _ in range(1000):
        colour, shape = rng.choice(list(COLOURS)), rng.choice(list(SHAPES))
        if hard:
            near = rng.choice(in_view)
            colour, shape = (near[0], shape) if rng.random() < 0.5 else (colour, near[1])
        elif colour in colours and rng.random() < 0.7:
            continue  # mostly prompts that differ in colour as well; some share only it
        if (colour, shape) not in present:
            return rng.choice([f'{colour} {shape}', f'the {colour} {shape}'])
    raise ValueError(f'view {index}: no colour x shape left that the scene lacks')


def target_mask(labels: np.ndarray, obj: int, size: int) -> np.ndarray:
    """Object `obj`'s mask at the model's resolution (area-averaged, so edges are soft)."""
    import cv2

    mask = (labels == obj + 1).astype(np.float32)
    return cv2.resize(mask, (size, size), interpolation=cv2.INTER_AREA)


def _vision_activations(model, pixels, layers, chunk: int = 256):
    """(N, len(layers), tokens, width) bfloat16: the frozen vision tower's layers, once."""
    import torch
    from tqdm import tqdm

    parts = []
    with torch.inference_mode():
        for start in tqdm(range(0, len(pixels), chunk), desc='vision features', unit='chunk'):
            hidden = model.clip.get_image_features(pixel_values=pixels[start:start + chunk],
                                                   output_hidden_states=True).hidden_states
            parts.append(torch.stack([hidden[i + 1] for i in layers], 1).bfloat16())
    return torch.cat(parts)


def train_clipseg(args) -> int:
    import torch
    import torch.nn.functional as F
    from transformers import CLIPModel, CLIPProcessor, CLIPSegProcessor

    from vla_ros.training import architecture
    from vla_ros.training.data import concatenate, load_split

    output = Path(args.output)
    clip = CLIPModel.from_pretrained(args.clip)
    tokenizer = CLIPProcessor.from_pretrained(args.clip).tokenizer
    model = architecture.clipseg_from_clip(clip, args.seed, args.image_size).to(args.device)
    size = model.config.vision_config.image_size
    processor = CLIPSegProcessor(image_processor=architecture.image_processor('clipseg', size),
                                 tokenizer=tokenizer)
    data = concatenate([load_split(folder, 'train') for folder in [args.data, *args.extra_data]])
    samples = [_sample_for(data, index) for index in range(len(data))]
    pixels = _pixels(processor.image_processor, data.images).to(args.device)
    layers = model.extract_layers
    frozen = args.backbone_lr_factor == 0
    if frozen:  # CLIPSeg's own recipe: the CLIP stays as trained, the decoder learns
        model.clip.requires_grad_(False)
        frozen_activations = _vision_activations(model, pixels, layers)
        cache = {}

        def conditional(prompt):
            if prompt not in cache:
                with torch.no_grad():
                    cache[prompt] = model.clip.get_text_features(
                        **tokenizer([prompt], return_tensors='pt').to(args.device)
                    ).pooler_output[0]
            return cache[prompt]
    decoder_size = sum(p.numel() for p in model.decoder.parameters())
    print(f'[train] clipseg on {args.clip}: decoder {decoder_size / 1e6:.2f} M parameters, '
          f'{len(samples)} views', flush=True)

    def step_loss():
        views, prompts, masks = [], [], []
        for index in random.choices(range(len(samples)), k=args.batch):
            visible = samples[index].visible()
            if visible and random.random() > args.absent_fraction:
                obj = random.choice(visible)
                prompts.append(random.choice(samples[index].prompts(obj)))
                masks.append(target_mask(data.labels[index], obj, size))
            else:
                prompts.append(absent_prompt(data, index, random, args.hard_negative_fraction))
                masks.append(np.zeros((size, size), np.float32))
            views.append(index)
        targets = torch.from_numpy(np.stack(masks)).to(args.device)
        tokens = tokenizer(prompts, padding=True, truncation=True,
                           max_length=architecture.CONTEXT_TOKENS,
                           return_tensors='pt').to(args.device)
        views = torch.tensor(views, device=args.device)
        if frozen:  # the towers' outputs were computed once; only the decoder learns
            activations = [frozen_activations[views, k].float()
                           for k in range(len(layers))]
            conditionals = torch.stack([conditional(prompt) for prompt in prompts])
        else:
            # The same computation as ClipSegSegmenter, with gradients into the CLIP towers
            # (CLIPSeg's own forward freezes them).
            images = pixels[views]
            flip = (torch.rand(len(views)) < 0.5).to(args.device)
            images = torch.where(flip[:, None, None, None], images.flip(-1), images)
            targets = torch.where(flip[:, None, None], targets.flip(-1), targets)
            vision = model.clip.get_image_features(pixel_values=images,
                                                   output_hidden_states=True)
            activations = [vision.hidden_states[index + 1] for index in layers]
            conditionals = model.clip.get_text_features(**tokens).pooler_output
        logits = model.decoder(activations, conditionals).logits.reshape(targets.shape).float()
        bce = F.binary_cross_entropy_with_logits(logits, targets)
        probability = torch.sigmoid(logits)
        has_target = targets.flatten(1).sum(1) > 0
        overlap = (probability * targets).flatten(1).sum(1)
        total = (probability + targets).flatten(1).sum(1)
        dice = (1 - (2 * overlap + 1) / (total + 1))[has_target].mean()
        return bce + dice, {'bce': bce.item(), 'dice': dice.item()}

    groups = [{'params': model.decoder.parameters(), 'lr': args.lr}]
    if not frozen:
        groups.append({'params': model.clip.parameters(),
                       'lr': args.lr * args.backbone_lr_factor})
    record = _loop(args, model, groups, step_loss, output,
                   {'views': len(samples), 'data': str(args.data), 'clip': str(args.clip),
                    'extra_data': [str(folder) for folder in args.extra_data],
                    'frozen_clip': frozen, 'image_size': model.config.vision_config.image_size,
                    'absent_fraction': args.absent_fraction,
                    'hard_negative_fraction': args.hard_negative_fraction,
                    'parameters': sum(p.numel() for p in model.parameters())})
    return _save(model, processor, output, record)
