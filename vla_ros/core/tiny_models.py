"""Tiny random CLIP and CLIPSeg checkpoints in Hugging Face format, for tests and smoke runs.

They are written with ``save_pretrained`` (config.json, model.safetensors, tokenizer and
processor files) and loaded back through the same ``from_pretrained`` path as real models, so
tests exercise real loading code without weights from the internet. Their outputs carry no
meaning: the weights are random.
"""

from pathlib import Path

import torch

IMAGE_SIZE = 32
CONTEXT_TOKENS = 32


def _byte_symbols():
    """The 256 printable stand-ins byte-level BPE uses for the bytes 0..255 (GPT-2/CLIP)."""
    printable = set(range(ord('!'), ord('~') + 1)) | set(range(ord('\xa1'), ord('\xac') + 1))
    printable |= set(range(ord('\xae'), ord('\xff') + 1))
    symbols, shifted = [], 0
    for byte in range(256):
        if byte in printable:
            symbols.append(chr(byte))
        else:
            symbols.append(chr(256 + shifted))
            shifted += 1
    return symbols


def tiny_tokenizer():
    """A character-level CLIP BPE tokenizer; its end token has the highest id, where CLIP pools."""
    from transformers import CLIPTokenizer

    symbols = _byte_symbols()
    vocab = {symbol: index for index, symbol in enumerate(symbols)}
    vocab.update({symbol + '</w>': 256 + index for index, symbol in enumerate(symbols)})
    vocab['<|startoftext|>'] = len(vocab)
    vocab['<|endoftext|>'] = len(vocab)
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=CONTEXT_TOKENS)


def _text_config(tokenizer):
    return dict(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=2, max_position_embeddings=CONTEXT_TOKENS,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id)


VISION_CONFIG = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                     num_attention_heads=2, image_size=IMAGE_SIZE, patch_size=8)


def build_tiny_clip(folder, seed: int = 0) -> Path:
    """Write a random ~100k-parameter CLIPModel with tokenizer and processor into `folder`."""
    from transformers import CLIPConfig, CLIPImageProcessorPil, CLIPModel, CLIPProcessor

    tokenizer = tiny_tokenizer()
    config = CLIPConfig(text_config=_text_config(tokenizer), vision_config=VISION_CONFIG,
                        projection_dim=16)
    torch.manual_seed(seed)
    model = CLIPModel(config).eval()
    image_processor = CLIPImageProcessorPil(
        size={'shortest_edge': IMAGE_SIZE}, crop_size={'height': IMAGE_SIZE, 'width': IMAGE_SIZE})
    folder = Path(folder)
    model.save_pretrained(folder)
    CLIPProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(folder)
    return folder


def build_tiny_clipseg(folder, seed: int = 0) -> Path:
    """Write a random CLIPSegForImageSegmentation with tokenizer and processor into `folder`."""
    from transformers import (
        CLIPSegConfig,
        CLIPSegForImageSegmentation,
        CLIPSegProcessor,
        ViTImageProcessorPil,
    )

    tokenizer = tiny_tokenizer()
    config = CLIPSegConfig(
        text_config=_text_config(tokenizer), vision_config=VISION_CONFIG, projection_dim=16,
        extract_layers=[0, 1], reduce_dim=16, decoder_num_attention_heads=2,
        decoder_intermediate_size=32, conditional_layer=0)
    torch.manual_seed(seed)
    model = CLIPSegForImageSegmentation(config).eval()
    image_processor = ViTImageProcessorPil(size={'height': IMAGE_SIZE, 'width': IMAGE_SIZE})
    folder = Path(folder)
    model.save_pretrained(folder)
    CLIPSegProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(folder)
    return folder
