"""Stage 3: the vision tower tuned on crops of single objects too, for the target verifier."""

from pathlib import Path
import random

import numpy as np

from vla_ros.training.loop import (
    pixel_values,
    run_loop,
    save,
    training_record,
)

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
    crop_pixels = pixel_values(processor.image_processor, [crop for crop, _ in crops])
    view_pixels = pixel_values(processor.image_processor, data.images[[v for v, _, _ in views]])
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

    record = run_loop(args, model, trainable, step_loss, output,
                   {'crops': len(crops), 'views': len(views), 'data': str(args.data),
                    'clip': str(args.clip), 'classes': len(seen),
                    'parameters': sum(p.numel() for p in model.parameters()),
                    'trained_parameters': sum(p.numel() for p in trainable)})
    record['previous_stage'] = training_record(args.clip)
    return save(model, processor, output, record)
