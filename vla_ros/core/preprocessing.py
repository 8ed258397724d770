"""A model's image preprocessing as torch operations, on the device the model runs on.

The Hugging Face image processors (CLIPImageProcessor, ViTImageProcessor) resize with PIL on
the CPU, image by image. On a GPU that is a good part of a small model's call; here the
frames go to the device as uint8 and are resized, cropped and normalised there, with PIL's
own filters (torch's antialiased bilinear and bicubic are PIL's) in PIL's two passes, each
rounded to whole grey levels. The result equals the processor's within one grey level
(test/unit/test_preprocessing.py); what this costs and saves is in benchmarks/README.md.
"""

import numpy as np
import torch
import torch.nn.functional as F

from vla_ros.core.config import PREPROCESSING  # noqa: F401 - the choices

# PIL's resampling filters, as the processors' `resample` numbers them.
_MODES = {2: 'bilinear', 3: 'bicubic'}


def use_torch_preprocessing(preprocessing: str, device: torch.device) -> bool:
    """auto: torch's operations on a CUDA device, the model's processor elsewhere."""
    if preprocessing not in PREPROCESSING:
        raise ValueError(f"preprocessing '{preprocessing}' is not one of "
                         f"{', '.join(PREPROCESSING)}")
    return preprocessing == 'torch' or (preprocessing == 'auto' and device.type == 'cuda')


def _size(config: dict, key: str):
    size = config.get(key) or {}
    if isinstance(size, int):
        return {'shortest_edge': size}
    return size


class TorchImageProcessor:
    """What `image_processor(images=..., return_tensors='pt')['pixel_values']` returns, for
    HxWx3 uint8 RGB arrays, computed with torch on `device`.
    """

    def __init__(self, image_processor, device: torch.device):
        config = image_processor.to_dict()
        unsupported = [name for name in ('do_pad', 'do_reduce_labels') if config.get(name)]
        if config.get('do_resize') and config.get('resample') not in _MODES:
            unsupported.append(f"resample {config.get('resample')}")
        # The sizes this class computes as transformers does; any other form is refused.
        if config.get('do_resize') and set(_size(config, 'size')) not in (
                {'shortest_edge'}, {'height', 'width'}):
            unsupported.append(f"size {config.get('size')}")
        if config.get('do_center_crop') and set(_size(config, 'crop_size')) != {'height',
                                                                               'width'}:
            unsupported.append(f"crop_size {config.get('crop_size')}")
        if unsupported:
            raise ValueError(f'{type(image_processor).__name__} with {", ".join(unsupported)} '
                             "has no torch equivalent here; set preprocessing to 'processor'")
        self.device = device
        self.resize = _size(config, 'size') if config.get('do_resize') else None
        self.mode = _MODES.get(config.get('resample'))
        self.crop = _size(config, 'crop_size') if config.get('do_center_crop') else None
        scale = config['rescale_factor'] if config.get('do_rescale') else 1.0
        mean = np.broadcast_to(np.asarray(
            config['image_mean'] if config.get('do_normalize') else 0.0, np.float64), (3,))
        std = np.broadcast_to(np.asarray(
            config['image_std'] if config.get('do_normalize') else 1.0, np.float64), (3,))
        # (x * scale - mean) / std as one multiply-add per channel.
        self._gain = torch.tensor(scale / std, dtype=torch.float32, device=device)[:, None, None]
        self._offset = torch.tensor(-mean / std, dtype=torch.float32,
                                    device=device)[:, None, None]

    def _output_size(self, height: int, width: int) -> tuple:
        if 'shortest_edge' in self.resize:
            # As transformers' get_resize_output_image_size: the short side to the size, the
            # long one in proportion, truncated.
            short, long = sorted((height, width))
            target = self.resize['shortest_edge']
            scaled = int(target * long / short)
            return (target, scaled) if height <= width else (scaled, target)
        return self.resize['height'], self.resize['width']

    def _one(self, image: np.ndarray) -> torch.Tensor:
        pixels = torch.from_numpy(np.ascontiguousarray(image)).to(self.device)
        # Double precision: in single, PIL's rounding is missed by two grey levels at times.
        pixels = pixels.permute(2, 0, 1).double()
        if self.resize is not None:
            height, width = self._output_size(*pixels.shape[1:])
            # PIL's order: across, then down, each pass rounded and clipped to whole grey
            # levels, halves up (bicubic overshoots; one float pass differs by up to 24 levels).
            for size in ((pixels.shape[1], width), (height, width)):
                if size != tuple(pixels.shape[1:]):
                    pixels = F.interpolate(pixels[None], size=size, mode=self.mode,
                                           align_corners=False, antialias=True)[0]
                    pixels = (pixels + 0.5).floor_().clamp_(0.0, 255.0)
        if self.crop is not None:
            height, width = pixels.shape[1:]
            crop_h, crop_w = self.crop['height'], self.crop['width']
            if crop_h > height or crop_w > width:
                raise ValueError(f'a {height}x{width} image is smaller than the crop '
                                 f'{crop_h}x{crop_w}')
            top, left = (height - crop_h) // 2, (width - crop_w) // 2
            pixels = pixels[:, top:top + crop_h, left:left + crop_w]
        return pixels.float() * self._gain + self._offset

    def __call__(self, images) -> torch.Tensor:
        """(N, 3, h, w) float32 pixel values on the device."""
        return torch.stack([self._one(image) for image in images])
