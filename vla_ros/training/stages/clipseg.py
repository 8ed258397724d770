"""CLIPSeg on a trained CLIP: masks of named objects, and empty ones for absent things."""

from pathlib import Path
import random

import numpy as np

from vla_ros.training.loop import (
    pixel_values,
    run_loop,
    save,
)


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
    pixels = pixel_values(processor.image_processor, data.images).to(args.device)
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
    record = run_loop(args, model, groups, step_loss, output,
                   {'views': len(samples), 'data': str(args.data), 'clip': str(args.clip),
                    'extra_data': [str(folder) for folder in args.extra_data],
                    'frozen_clip': frozen, 'image_size': model.config.vision_config.image_size,
                    'absent_fraction': args.absent_fraction,
                    'hard_negative_fraction': args.hard_negative_fraction,
                    'parameters': sum(p.numel() for p in model.parameters())})
    return save(model, processor, output, record)
