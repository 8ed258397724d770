"""core.preprocessing against the models' own image processors, on the CPU."""

import numpy as np
import pytest
import torch

from vla_ros.core import paths
from vla_ros.core.preprocessing import TorchImageProcessor, use_torch_preprocessing

SHAPES = [(120, 160), (480, 640), (37, 53), (96, 96), (300, 200), (20, 20)]


def processors():
    from transformers import AutoProcessor, CLIPImageProcessorPil, ViTImageProcessorPil

    def embedded(kind):
        return AutoProcessor.from_pretrained(paths.default_model_dir(kind)).image_processor

    return {
        'embedded clip': embedded('clip'),
        'embedded clipseg': embedded('clipseg'),
        # openai/clip-vit-base-patch32's and CIDAS/clipseg-rd64-refined's settings.
        'full clip': CLIPImageProcessorPil(size={'shortest_edge': 224},
                                           crop_size={'height': 224, 'width': 224}),
        'full clipseg': ViTImageProcessorPil(size={'height': 352, 'width': 352}, resample=2),
    }


def images(rng, shape):
    noise = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)  # bicubic overshoots here
    walk = np.cumsum(rng.integers(-8, 9, (*shape, 3)), axis=1) + 128
    return noise, np.clip(walk, 0, 255).astype(np.uint8)


@pytest.mark.parametrize('name', ['embedded clip', 'embedded clipseg', 'full clip',
                                  'full clipseg'])
def test_torch_preprocessing_equals_the_processor_within_one_grey_level(name):
    processor = processors()[name]
    ours = TorchImageProcessor(processor, torch.device('cpu'))
    std = torch.tensor(processor.image_std)[:, None, None]
    rng = np.random.default_rng(7)
    for shape in SHAPES:
        for image in images(rng, shape):
            expected = processor(images=[image], return_tensors='pt',
                                 input_data_format='channels_last')['pixel_values']
            got = ours([image])
            assert got.shape == expected.shape and got.dtype == torch.float32
            grey_levels = ((got - expected).abs() * std * 255.0).max().item()
            assert grey_levels <= 1.0 + 1e-3, (shape, grey_levels)


def test_auto_preprocessing_is_torch_on_cuda_only_and_bad_values_are_refused():
    assert use_torch_preprocessing('auto', torch.device('cuda'))
    assert not use_torch_preprocessing('auto', torch.device('cpu'))
    assert use_torch_preprocessing('torch', torch.device('cpu'))
    with pytest.raises(ValueError, match='not one of'):
        use_torch_preprocessing('pil', torch.device('cpu'))


def test_a_processor_without_a_torch_equivalent_is_refused_with_what_to_set():
    from transformers import CLIPImageProcessorPil

    lanczos = CLIPImageProcessorPil(resample=1)
    with pytest.raises(ValueError, match="preprocessing to 'processor'"):
        TorchImageProcessor(lanczos, torch.device('cpu'))
