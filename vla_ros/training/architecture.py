"""The embedded models' shapes: small enough for real time on 2 CPU cores.

CLIP: a ViT on 96 x 96 inputs with 8 px patches (144 tokens, so CLIPSeg on top of it still has
a 12 x 12 grid to localise with), a 3-layer text transformer over CLIP's BPE cut to 8000 merges
(8514 tokens). CLIPSeg uses the same towers (initialised from the trained CLIP) and a decoder
reading three of the four vision layers, conditioned on the prompt before its last layer.
"""

IMAGE_SIZE = 96
PATCH_SIZE = 8
CONTEXT_TOKENS = 32
BPE_MERGES = 8000
# CLIP's own normalisation: the processor of openai/clip-* uses these, and so do we.
CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]

VISION = dict(hidden_size=128, intermediate_size=512, num_hidden_layers=4,
              num_attention_heads=4, image_size=IMAGE_SIZE, patch_size=PATCH_SIZE)
TEXT = dict(hidden_size=128, intermediate_size=512, num_hidden_layers=3, num_attention_heads=4,
            max_position_embeddings=CONTEXT_TOKENS)
PROJECTION_DIM = 128


def text_config(tokenizer, **overrides):
    return dict(TEXT, vocab_size=len(tokenizer), bos_token_id=tokenizer.bos_token_id,
                eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
                **overrides)


def image_processor(kind: str, image_size: int = IMAGE_SIZE):
    """Resize the whole frame to the model's square (no centre crop: the edges of a robot's
    view matter), CLIP's mean and std. The same processor serves training and the nodes.
    """
    from transformers import CLIPImageProcessorPil, ViTImageProcessorPil

    size = {'height': image_size, 'width': image_size}
    if kind == 'clip':
        return CLIPImageProcessorPil(size=size, do_center_crop=False, image_mean=CLIP_MEAN,
                                     image_std=CLIP_STD)
    return ViTImageProcessorPil(size=size, image_mean=CLIP_MEAN, image_std=CLIP_STD)


def new_clip(tokenizer, seed: int, vision=None, text=None, projection_dim=PROJECTION_DIM):
    import torch
    from transformers import CLIPConfig, CLIPModel

    config = CLIPConfig(text_config=text_config(tokenizer, **(text or {})),
                        vision_config=dict(VISION, **(vision or {})),
                        projection_dim=projection_dim)
    torch.manual_seed(seed)
    return CLIPModel(config)


def clipseg_from_clip(clip, seed: int, image_size: int | None = None, reduce_dim: int = 64):
    """A CLIPSeg whose CLIP towers are copied from `clip`; the decoder is new. With
    `image_size` other than the CLIP's, the vision tower's position embeddings are resized
    (bicubic, as ViTs are usually fine-tuned at a new resolution) to the new patch grid.
    """
    import torch
    from transformers import CLIPSegConfig, CLIPSegForImageSegmentation

    layers = clip.config.vision_config.num_hidden_layers
    extract_layers = list(range(max(layers - 3, 0), layers))
    vision = clip.config.vision_config.to_dict()
    state = clip.state_dict()
    if image_size and image_size != vision['image_size']:
        key = 'vision_model.embeddings.position_embedding.weight'
        state[key] = _resized_positions(state[key], image_size // vision['patch_size'])
        state.pop('vision_model.embeddings.position_ids', None)
        vision['image_size'] = image_size
    config = CLIPSegConfig(
        text_config=clip.config.text_config.to_dict(),
        vision_config=vision,
        projection_dim=clip.config.projection_dim,
        extract_layers=extract_layers, reduce_dim=reduce_dim,
        decoder_num_attention_heads=4, decoder_intermediate_size=4 * reduce_dim,
        # FiLM by the prompt just before the last decoder layer: at layer 0 (CLIPSeg's
        # default) the post-norm layers after it starved it of gradient in this small decoder,
        # and the model learnt to segment every object whatever the prompt (measured).
        conditional_layer=len(extract_layers) - 1)
    torch.manual_seed(seed)
    model = CLIPSegForImageSegmentation(config)
    missing = model.clip.load_state_dict(state, strict=False)
    if missing.missing_keys:
        raise RuntimeError(f'CLIP weights did not fit CLIPSeg: {missing.missing_keys[:5]}')
    return model


def _resized_positions(weight, grid: int):
    """(1 + n * n, width) position embeddings (class token first) to a grid x grid patch grid."""
    import torch
    import torch.nn.functional as F

    old = round((weight.shape[0] - 1) ** 0.5)
    patches = weight[1:].reshape(1, old, old, -1).permute(0, 3, 1, 2)
    patches = F.interpolate(patches, size=(grid, grid), mode='bicubic', align_corners=False)
    return torch.cat([weight[:1], patches.permute(0, 2, 3, 1).reshape(grid * grid, -1)])
