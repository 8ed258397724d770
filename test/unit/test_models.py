"""Model loading and inference on tiny checkpoints written in Hugging Face format."""

import shutil

import numpy as np
import pytest
import torch

from vla_ros.core import models, paths
from vla_ros.core.encoders import ClipEncoder, ClipSegSegmenter, PatchwiseConvTranspose2d
from vla_ros.core.models import load_model, ModelCache, ModelLoadError
from vla_ros.core.segmentation import Fovea


@pytest.fixture(scope='module')
def clip(tiny_clip_dir):
    return ClipEncoder(load_model('clip', str(tiny_clip_dir), device='cpu'))


@pytest.fixture(scope='module')
def clipseg(tiny_clipseg_dir):
    return ClipSegSegmenter(load_model('clipseg', str(tiny_clipseg_dir), device='cpu'))


def random_rgb(height, width, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def test_loads_from_a_folder_in_eval_mode(tiny_clip_dir):
    loaded = load_model('clip', str(tiny_clip_dir), device='auto')
    assert loaded.kind == 'clip'
    assert loaded.name == tiny_clip_dir.name
    assert not loaded.model.training
    assert loaded.device.type == ('cuda' if torch.cuda.is_available() else 'cpu')
    assert next(loaded.model.parameters()).dtype == torch.float32


def test_missing_folder_is_one_clear_error(tmp_path):
    missing = tmp_path / 'no-such-model'
    with pytest.raises(ModelLoadError, match='does not exist') as caught:
        load_model('clip', str(missing))
    assert str(missing) in str(caught.value)
    assert '\n' not in str(caught.value)


def test_folder_without_config_is_refused(tmp_path):
    with pytest.raises(ModelLoadError, match='no config.json'):
        load_model('clip', str(tmp_path))


def test_wrong_kind_of_model_is_refused(tiny_clipseg_dir):
    with pytest.raises(ModelLoadError, match="is a 'clipseg' model"):
        load_model('clip', str(tiny_clipseg_dir))


def test_corrupt_weights_name_the_folder(tiny_clip_dir, tmp_path):
    broken = tmp_path / 'broken'
    shutil.copytree(tiny_clip_dir, broken)
    weights = broken / 'model.safetensors'
    weights.write_bytes(weights.read_bytes()[:200])
    with pytest.raises(ModelLoadError) as caught:
        load_model('clip', str(broken))
    message = str(caught.value)
    assert str(broken) in message and 'save_pretrained' in message


def test_hub_id_while_offline_says_what_to_do():
    with pytest.raises(ModelLoadError, match='offline') as caught:
        load_model('clip', 'example-org/not-downloaded-clip')
    assert 'example-org/not-downloaded-clip' in str(caught.value)


def test_missing_embedded_default_is_explained(monkeypatch, tmp_path):
    monkeypatch.setattr(paths, 'default_model_dir', lambda kind: tmp_path / kind)
    with pytest.raises(ModelLoadError, match='embedded default'):
        load_model('clip', '')


def test_empty_source_uses_the_embedded_default(monkeypatch, tiny_clip_dir):
    monkeypatch.setattr(paths, 'default_model_dir', lambda kind: tiny_clip_dir)
    assert load_model('clip', '').source == str(tiny_clip_dir)


@pytest.mark.parametrize(('device', 'dtype', 'message'), [
    ('tpu', 'float32', 'not one of auto, cpu, cuda'),
    ('cpu', 'float64', 'not one of float32'),
    ('cpu', 'float16', 'needs a CUDA device'),
])
def test_bad_device_or_dtype_fails_before_loading(tiny_clip_dir, device, dtype, message):
    with pytest.raises(ModelLoadError, match=message):
        load_model('clip', str(tiny_clip_dir), device=device, dtype=dtype)


@pytest.mark.skipif(torch.cuda.is_available(), reason='this machine has a GPU')
def test_cuda_requested_without_gpu_is_refused(tiny_clip_dir):
    with pytest.raises(ModelLoadError, match='no usable CUDA'):
        load_model('clip', str(tiny_clip_dir), device='cuda')


def test_bfloat16_on_cpu_runs(tiny_clip_dir):
    encoder = ClipEncoder(load_model('clip', str(tiny_clip_dir), device='cpu', dtype='bfloat16'))
    embedding = encoder.encode_images([random_rgb(20, 30)])
    assert embedding.dtype == np.float32
    assert np.allclose(np.linalg.norm(embedding, axis=1), 1.0, atol=1e-5)


def test_model_cache_loads_once(tiny_clip_dir):
    cache = ModelCache()
    first = cache.get('clip', str(tiny_clip_dir), 'cpu')
    again = cache.get('clip', str(tiny_clip_dir) + '/', 'cpu')
    assert first is again
    assert cache.get('clip', str(tiny_clip_dir), 'cpu', 'bfloat16') is not first


def test_image_embeddings_are_unit_length_and_deterministic(clip, tiny_clip_dir):
    images = [random_rgb(48, 64, seed) for seed in range(3)] + [random_rgb(7, 500)]
    first = clip.encode_images(images)
    assert first.shape == (4, clip.dim) and first.dtype == np.float32
    assert np.allclose(np.linalg.norm(first, axis=1), 1.0, atol=1e-5)
    reloaded = ClipEncoder(load_model('clip', str(tiny_clip_dir), device='cpu'))
    assert np.array_equal(first, reloaded.encode_images(images))
    assert not np.allclose(first[0], first[1])


def test_embeddings_match_clip_forward(clip):
    """The encoder's normalised features equal what CLIPModel.forward itself returns."""
    images = [random_rgb(40, 40, 1), random_rgb(64, 32, 2)]
    texts = ['go to the red ball', 'stop']
    batch = clip.processor(images=images, text=texts, return_tensors='pt', padding=True)
    with torch.inference_mode():
        reference = clip.model(**batch)
    assert np.allclose(clip.encode_images(images), reference.image_embeds.numpy(), atol=1e-5)
    assert np.allclose(clip.encode_texts(texts), reference.text_embeds.numpy(), atol=1e-5)


def test_text_embeddings_truncate_long_text(clip):
    long_text = 'go to the red ball ' * 50
    assert clip.count_tokens(long_text) > clip.max_text_tokens
    embedding = clip.encode_texts([long_text, 'x'])
    assert embedding.shape == (2, clip.dim)
    assert np.allclose(np.linalg.norm(embedding, axis=1), 1.0, atol=1e-5)


def test_text_input_must_be_a_list(clip):
    with pytest.raises(TypeError):
        clip.encode_texts('stop')
    with pytest.raises(ValueError):
        clip.encode_texts([])


def test_preprocessing_is_clip_normalisation_of_rgb(clip):
    """A uniform red frame becomes (1 - mean) / std in channel 0 and -mean / std elsewhere."""
    red = np.zeros((50, 70, 3), np.uint8)
    red[..., 0] = 255
    pixels = clip.processor(images=[red], return_tensors='pt')['pixel_values'][0]
    mean = np.array(clip.processor.image_processor.image_mean)
    std = np.array(clip.processor.image_processor.image_std)
    expected = (np.array([1.0, 0.0, 0.0]) - mean) / std
    assert pixels.shape == (3, 32, 32)
    assert np.allclose(pixels.mean(dim=(1, 2)).numpy(), expected, atol=1e-3)


def test_encoder_refuses_non_rgb_arrays(clip):
    with pytest.raises(ValueError, match='HxWx3 uint8'):
        clip.encode_images([np.zeros((10, 10), np.uint8)])
    with pytest.raises(ValueError, match='HxWx3 uint8'):
        clip.encode_images([np.zeros((10, 10, 3), np.float32)])


def test_segmenter_masks_match_the_model_forward(clipseg, tiny_clipseg_dir):
    image = random_rgb(45, 80, 3)
    prompts = ['red ball', 'blue cube', 'a green cylinder']
    clipseg.set_prompts(prompts)
    masks = clipseg.segment(image)
    assert masks.shape == (3, 45, 80) and masks.dtype == np.float32
    assert masks.min() >= 0.0 and masks.max() <= 1.0
    # Reference: the stock model's own forward pass, one image copy per prompt, at model size.
    batch = clipseg.processor(text=prompts, images=[image] * 3, return_tensors='pt',
                              padding=True)
    stock = load_model('clipseg', str(tiny_clipseg_dir), device='cpu').model
    with torch.inference_mode():
        logits = stock(**batch).logits
    ours = clipseg.segment(np.asarray(image))
    assert np.allclose(clipseg.probabilities(image), torch.sigmoid(logits).numpy(), atol=1e-5)
    reference = torch.nn.functional.interpolate(
        torch.sigmoid(logits)[:, None], size=image.shape[:2], mode='bilinear',
        align_corners=False)[:, 0]
    assert np.allclose(ours, reference.numpy(), atol=1e-5)


def test_fovea_adds_the_window_segmented_in_the_same_batch(clipseg):
    image = random_rgb(60, 80, 3)
    clipseg.set_prompts(['red ball', 'blue cube'])
    fovea = Fovea(top=0.25)
    # The batched pass gives each image what it gets alone, and the window is merged in.
    expected = fovea.merge(clipseg.probabilities(image), clipseg.probabilities(fovea.crop(image)))
    merged = clipseg.probabilities(image, fovea)
    assert merged.shape == expected.shape and np.allclose(merged, expected, atol=1e-5)
    assert clipseg.segment(image, fovea).shape == (2, 60, 80)


@pytest.mark.parametrize('channels, out_channels, kernel, bias', [
    (16, 1, 8, True), (16, 8, 4, True), (6, 3, (2, 3), False)])
def test_patchwise_transposed_convolution_equals_torch(channels, out_channels, kernel, bias):
    torch.manual_seed(0)
    stock = torch.nn.ConvTranspose2d(channels, out_channels, kernel, stride=kernel, bias=bias)
    patchwise = torch.nn.ConvTranspose2d(channels, out_channels, kernel, stride=kernel, bias=bias)
    patchwise.load_state_dict(stock.state_dict())
    assert PatchwiseConvTranspose2d.fits(patchwise)
    patchwise.__class__ = PatchwiseConvTranspose2d
    inputs = torch.randn(3, channels, 5, 7)
    assert torch.allclose(patchwise(inputs), stock(inputs), atol=1e-5)


def test_overlapping_transposed_convolutions_keep_torchs_kernel():
    assert not PatchwiseConvTranspose2d.fits(torch.nn.ConvTranspose2d(4, 1, 4, stride=2))
    assert not PatchwiseConvTranspose2d.fits(torch.nn.ConvTranspose2d(4, 1, 4, 4, padding=1))
    assert not PatchwiseConvTranspose2d.fits(torch.nn.Conv2d(4, 1, 4, stride=4))


def test_segmenter_upsamples_patchwise_with_the_checkpoints_weights(clipseg, tiny_clipseg_dir):
    upsampling = clipseg.model.decoder.transposed_convolution
    assert type(upsampling) is PatchwiseConvTranspose2d
    stock = load_model('clipseg', str(tiny_clipseg_dir), device='cpu').model
    assert type(stock.decoder.transposed_convolution) is torch.nn.ConvTranspose2d
    assert clipseg.model.state_dict().keys() == stock.state_dict().keys()


def test_segmenter_encodes_prompts_only_when_they_change(clipseg):
    clipseg.set_prompts(['red ball'])
    encoded = clipseg._conditionals
    clipseg.set_prompts(['red ball'])
    assert clipseg._conditionals is encoded
    clipseg.set_prompts(['blue cube'])
    assert clipseg._conditionals is not encoded
    assert clipseg.segment(random_rgb(30, 30)).shape == (1, 30, 30)


def test_segmenter_needs_prompts(tiny_clipseg_dir):
    fresh = ClipSegSegmenter(load_model('clipseg', str(tiny_clipseg_dir), device='cpu'))
    with pytest.raises(RuntimeError, match='set_prompts'):
        fresh.segment(random_rgb(10, 10))


def test_kinds_are_checked():
    with pytest.raises(ValueError, match='unknown model kind'):
        models.resolve_source('owlvit', '')


@pytest.mark.parametrize('backend', ['torch', 'openvino'])
def test_a_clipseg_input_size_segments_at_that_size_as_the_model_does(tiny_clipseg_dir,
                                                                      backend):
    """input_size 16 on a model whose processor uses 32: masks of 16 px, equal to the stock
    model's forward on pixels its processor resized to 16.
    """
    loaded = load_model('clipseg', str(tiny_clipseg_dir), device='cpu', backend=backend,
                        input_size=16, precision='f32')  # bf16 where the CPU has it
    segmenter = ClipSegSegmenter(loaded)
    segmenter.set_prompts(['red ball'])
    image = random_rgb(45, 80, 4)
    probabilities = segmenter.probabilities(image)
    assert probabilities.shape == (1, 16, 16)
    stock = load_model('clipseg', str(tiny_clipseg_dir), device='cpu')
    batch = stock.processor(text=['red ball'], images=[image], return_tensors='pt',
                            size={'height': 16, 'width': 16})
    assert batch['pixel_values'].shape[-1] == 16
    with torch.inference_mode():
        logits = stock.model(**batch).logits
    assert np.allclose(probabilities[0], torch.sigmoid(logits).numpy().reshape(16, 16),
                       atol=1e-4)


@pytest.mark.parametrize('kind, size, message', [
    ('clipseg', 20, "multiple of the model's patch size 8"),
    ('clipseg', 8, 'at least 16'),
    ('clipseg', 72, 'more than twice'),
    ('clip', 16, 'only a CLIPSeg model'),
])
def test_an_input_size_a_model_cannot_take_is_refused_with_what_to_set(
        tiny_clip_dir, tiny_clipseg_dir, kind, size, message):
    folder = tiny_clipseg_dir if kind == 'clipseg' else tiny_clip_dir
    with pytest.raises(ModelLoadError, match=message):
        load_model(kind, str(folder), device='cpu', input_size=size)


def test_the_model_cache_keeps_input_sizes_apart(tiny_clipseg_dir):
    cache = ModelCache()
    native = cache.get('clipseg', str(tiny_clipseg_dir), 'cpu')
    small = cache.get('clipseg', str(tiny_clipseg_dir), 'cpu', input_size=16)
    assert small is not native
    assert cache.get('clipseg', str(tiny_clipseg_dir), 'cpu', input_size=16) is small
