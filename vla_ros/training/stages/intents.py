"""Stage 2: the CLIP's text tower tuned to the policy's intents."""

from pathlib import Path

from vla_ros.training.data import excluded_phrases, phrasing_batch
from vla_ros.training.loop import (
    pixel_values,
    run_loop,
    save,
    training_record,
)
from vla_ros.training.losses import (
    intent_decision_loss,
    symmetric_contrastive,
)


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
    pixels = pixel_values(processor.image_processor,
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
    excluded = excluded_phrases(args.exclude_phrases)
    trainable = [p for p in model.parameters() if p.requires_grad]

    def step_loss():
        chosen = torch.randint(len(pairs), (args.batch,)).to(args.device)
        combos = image_combos[chosen]
        forms = torch.randint(len(DESCRIPTION_FORMS), (args.batch,)).to(args.device)
        rows = combos * len(DESCRIPTION_FORMS) + forms
        caption_output = model.get_text_features(
            input_ids=caption_tokens['input_ids'][rows],
            attention_mask=caption_tokens['attention_mask'][rows]).pooler_output
        tokens, labels = phrasing_batch(tokenizer, args.intent_groups, excluded, args.device)
        phrase_output = model.get_text_features(**tokens).pooler_output
        prototype_output = model.get_text_features(**prototype_tokens).pooler_output
        with torch.autocast(args.device.type, enabled=False):
            texts = F.normalize(caption_output.float(), dim=-1)
            logits = model.logit_scale.exp().clamp(max=100) * image_features[chosen] @ texts.T
            contrastive = symmetric_contrastive(logits, combos)
            intents = intent_decision_loss(
                F.normalize(phrase_output.float(), dim=-1), labels,
                F.normalize(prototype_output.float(), dim=-1), prototype_intents,
                args.min_intent_similarity)
        loss = contrastive + args.intent_weight * intents
        return loss, {'clip': contrastive.item(), 'intent': intents.item()}

    record = run_loop(args, model, trainable, step_loss, output,
                   {'views': len(pairs), 'data': str(args.data), 'clip': str(args.clip),
                    'parameters': sum(p.numel() for p in model.parameters()),
                    'trained_parameters': sum(p.numel() for p in trainable)})
    record['previous_stage'] = training_record(args.clip)
    return save(model, processor, output, record)
