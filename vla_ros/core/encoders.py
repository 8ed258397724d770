"""CLIP embeddings and CLIPSeg masks from RGB arrays and text, on a loaded model.

Inputs are HxWx3 uint8 RGB arrays of any size; the model's own processor resizes and
normalises them, so a robot camera and a training render are treated alike. Outputs are numpy
arrays: L2-normalised float32 embeddings, and per-prompt probability masks at the input's size.
The model runs on the loaded model's engine (torch or OpenVINO, vla_ros.core.backends); the
classes here do not know which.
"""

import numpy as np
import torch
import torch.nn.functional as F

from vla_ros.core.models import LoadedModel


def _check_rgb(images):
    for image in images:
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(
                f'expected HxWx3 uint8 RGB, got shape {image.shape} dtype {image.dtype}')


def _clean_texts(texts):
    if isinstance(texts, str):
        raise TypeError('pass a list of strings, not a single string')
    if not texts:
        raise ValueError('no texts to encode')
    return [str(text) for text in texts]


class ClipEncoder:
    """Image and text embeddings in CLIP's joint space, L2-normalised."""

    def __init__(self, loaded: LoadedModel):
        if loaded.kind != 'clip':
            raise ValueError(f'ClipEncoder needs a clip model, got {loaded.kind}')
        self.loaded = loaded
        self.model = loaded.model
        self.engine = loaded.engine
        self.processor = loaded.processor
        self.dim = int(self.model.config.projection_dim)
        self.max_text_tokens = int(self.model.config.text_config.max_position_embeddings)

    @property
    def name(self) -> str:
        return self.loaded.name

    @staticmethod
    def _normalised(features: torch.Tensor) -> np.ndarray:
        return F.normalize(features.float(), dim=-1).cpu().numpy()

    def encode_images(self, images, frames: bool = True) -> np.ndarray:
        """(N, dim) embeddings of N RGB uint8 arrays. `frames`: camera frames (a compiled
        engine runs one a call compiled); crops pass False.
        """
        _check_rgb(images)
        return self._normalised(self.engine.image_features(self.loaded.pixel_values(images),
                                                           frames))

    def tokenize(self, texts):
        """Token ids and mask, truncated to the model's context length."""
        return self.processor.tokenizer(
            _clean_texts(texts), padding=True, truncation=True,
            max_length=self.max_text_tokens, return_tensors='pt')

    def count_tokens(self, text: str) -> int:
        """Tokens the text needs without truncation (start and end tokens included)."""
        return len(self.processor.tokenizer(str(text), verbose=False)['input_ids'])

    def encode_texts(self, texts) -> np.ndarray:
        """(N, dim) embeddings of N strings (truncated to the model's context length)."""
        batch = self.tokenize(texts)
        return self._normalised(self.engine.text_features(batch['input_ids'],
                                                          batch['attention_mask']))


    def label_probabilities(self, image_embeddings: np.ndarray,
                            label_embeddings: np.ndarray) -> np.ndarray:
        """Zero-shot (N, L) probabilities: softmax over the model's scaled cosine similarities."""
        scale = float(self.model.logit_scale.detach().float().exp())
        logits = scale * np.asarray(image_embeddings) @ np.asarray(label_embeddings).T
        logits -= logits.max(axis=-1, keepdims=True)
        exponentials = np.exp(logits)
        return exponentials / exponentials.sum(axis=-1, keepdims=True)


class PatchwiseConvTranspose2d(torch.nn.ConvTranspose2d):
    """A transposed convolution whose kernel equals its stride, computed as one matmul.

    Without overlap each input pixel paints its own kernel-sized block of the output: a
    per-pixel linear map and a reshape. CLIPSeg's decoder ends in such layers; PyTorch's CPU
    kernel took 0.8 ms for the embedded model's (2 images, 64 channels, 12x12 -> 96x96), this
    0.06 ms, with the same weights and the same numbers.
    """

    @staticmethod
    def fits(module) -> bool:
        return (type(module) is torch.nn.ConvTranspose2d and module.groups == 1
                and module.kernel_size == module.stride and module.padding == (0, 0)
                and module.output_padding == (0, 0) and module.dilation == (1, 1))

    def forward(self, input, output_size=None):
        batch, channels, height, width = input.shape
        _, out_channels, kernel_h, kernel_w = self.weight.shape
        blocks = input.permute(0, 2, 3, 1).reshape(-1, channels) @ self.weight.reshape(
            channels, out_channels * kernel_h * kernel_w)
        output = blocks.reshape(batch, height, width, out_channels, kernel_h, kernel_w).permute(
            0, 3, 1, 4, 2, 5).reshape(batch, out_channels, height * kernel_h, width * kernel_w)
        return output if self.bias is None else output + self.bias.view(1, -1, 1, 1)


class ClipSegSegmenter:
    """Text-prompted masks: prompts are encoded once, each frame runs the vision tower once."""

    def __init__(self, loaded: LoadedModel):
        if loaded.kind != 'clipseg':
            raise ValueError(f'ClipSegSegmenter needs a clipseg model, got {loaded.kind}')
        self.loaded = loaded
        self.model = loaded.model
        self.engine = loaded.engine
        for module in self.model.decoder.modules():
            if PatchwiseConvTranspose2d.fits(module):
                # Same parameters and state dict keys; only the forward changes.
                module.__class__ = PatchwiseConvTranspose2d
        self.processor = loaded.processor
        self.max_text_tokens = int(self.model.config.text_config.max_position_embeddings)
        self.prompts = ()
        self._conditionals = None

    @property
    def name(self) -> str:
        return self.loaded.name

    def set_prompts(self, prompts) -> bool:
        """Encode the prompts (only when they changed); whether they changed."""
        prompts = tuple(_clean_texts(prompts))
        if prompts == self.prompts:
            return False
        tokens = self.processor.tokenizer(
            list(prompts), padding=True, truncation=True, max_length=self.max_text_tokens,
            return_tensors='pt')
        conditionals = self.engine.conditionals(tokens['input_ids'], tokens['attention_mask'])
        self.prompts, self._conditionals = prompts, conditionals
        return True

    def probabilities(self, image: np.ndarray, fovea=None) -> np.ndarray:
        """(P, h, w) float32 probabilities in [0, 1] at the model's own output resolution;
        with a `segmentation.Fovea`, (P, 2h, 2w) with its window looked at twice as closely.
        """
        if fovea is None:
            return self._probabilities([image])[0]
        return fovea.merge(*self._probabilities([image, fovea.crop(image)]))

    def _probabilities(self, images) -> np.ndarray:
        """(N, P, h, w) for N images, in one batch."""
        if self._conditionals is None:
            raise RuntimeError('set_prompts() must be called before segmenting')
        _check_rgb(images)
        return self.engine.probabilities(self.loaded.pixel_values(images), self._conditionals)

    def segment(self, image: np.ndarray, fovea=None) -> np.ndarray:
        """(P, H, W) float32 probabilities in [0, 1], one mask per prompt at the image's size."""
        native = torch.from_numpy(self.probabilities(image, fovea))[:, None]
        resized = F.interpolate(native, size=image.shape[:2], mode='bilinear',
                                align_corners=False)
        return resized[:, 0].numpy()
