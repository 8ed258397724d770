"""Stage 1: a contrastive CLIP on rendered views, with intent phrasings in its text batches."""

from pathlib import Path
import random

from vla_ros.training.data import excluded_phrases, phrasing_batch
from vla_ros.training.loop import (
    pixel_values,
    run_loop,
    save,
)
from vla_ros.training.losses import (
    supervised_contrastive,
    symmetric_contrastive,
)


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
    pixels = pixel_values(processor.image_processor, data.images).to(args.device)
    combo_index = {combo: i for i, combo in enumerate(COMBOS)}
    captions = [form.format(combo_text(combo)) for combo in COMBOS for form in CAPTION_FORMS]
    # Padded to the longest caption (not the context length): the text tower's cost follows.
    caption_tokens = tokenizer(captions, padding=True, truncation=True,
                               max_length=architecture.CONTEXT_TOKENS,
                               return_tensors='pt').to(args.device)
    excluded = excluded_phrases(args.exclude_phrases)
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
        tokens, labels = phrasing_batch(tokenizer, args.intent_groups, excluded, args.device)
        intent_output = model.get_text_features(**tokens).pooler_output
        # similarities in float32: the scale is ~100
        with torch.autocast(args.device.type, enabled=False):
            image_features = F.normalize(image_output.float(), dim=-1)
            text_features = F.normalize(text_output.float(), dim=-1)
            scale = model.logit_scale.exp().clamp(max=100)
            contrastive = symmetric_contrastive(scale * image_features @ text_features.T,
                                                 combos)
            intents = supervised_contrastive(
                F.normalize(intent_output.float(), dim=-1), labels, 0.1)
        loss = contrastive + args.intent_weight * intents
        return loss, {'clip': contrastive.item(), 'intent': intents.item()}

    record = run_loop(args, model, model.parameters(), step_loss, output,
                   {'views': len(pairs), 'data': str(args.data),
                    'parameters': sum(p.numel() for p in model.parameters())})
    return save(model, processor, output, record)
