"""The OpenVINO engine against torch on the tiny models: same numbers on varied inputs, the
dynamic dimensions (batch, text length) really dynamic, the cache found again, bad settings
refused with what to do.
"""

import copy
import json
import shutil
import threading

import numpy as np
import pytest
import torch

from vla_ros.core import backends, models
from vla_ros.core.encoders import ClipEncoder, ClipSegSegmenter
from vla_ros.core.models import load_model, ModelCache, ModelLoadError, resolve_backend
from vla_ros.core.segmentation import Fovea

pytestmark = pytest.mark.skipif(not backends.openvino_installed(),
                                reason='openvino is not installed')

TEXTS = ['go to the red ball', 'a', 'find the big blue cylinder behind the green cube and '
         'stop in front of it', 'cube']


def varied_images(seed=0):
    """Noise, smooth gradients and flat shapes on a background, at several sizes and aspect
    ratios: what a camera, a crop and a render look like to the processor.
    """
    rng = np.random.default_rng(seed)
    images = []
    for height, width in ((120, 160), (48, 64), (37, 91), (240, 180)):
        noise = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        ys, xs = np.mgrid[0:height, 0:width]
        gradient = np.stack([xs * 255 // width, ys * 255 // height,
                             (xs + ys) * 255 // (width + height)], -1).astype(np.uint8)
        shapes = np.full((height, width, 3), rng.integers(0, 256, 3), np.uint8)
        for _ in range(3):
            cy, cx, r = rng.integers(0, height), rng.integers(0, width), rng.integers(4, 30)
            shapes[(ys - cy) ** 2 + (xs - cx) ** 2 < r * r] = rng.integers(0, 256, 3)
        images += [noise, gradient, shapes]
    return images


@pytest.fixture(scope='module')
def clips(tiny_clip_dir):
    return {name: ClipEncoder(load_model('clip', str(tiny_clip_dir), 'cpu', backend=backend,
                                         precision=precision))
            for name, backend, precision in (('torch', 'torch', 'default'),
                                             ('openvino', 'openvino', 'default'),
                                             ('openvino f32', 'openvino', 'f32'))}


@pytest.fixture(scope='module')
def segmenters(tiny_clipseg_dir):
    return {name: ClipSegSegmenter(load_model('clipseg', str(tiny_clipseg_dir), 'cpu',
                                              backend=backend, precision=precision))
            for name, backend, precision in (('torch', 'torch', 'default'),
                                             ('openvino', 'openvino', 'default'),
                                             ('openvino f32', 'openvino', 'f32'))}


def cosines(a, b):
    return (a * b).sum(axis=1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


@pytest.mark.parametrize('engine', ['openvino', 'openvino f32'])
def test_image_embeddings_match_torch_one_by_one_and_in_batches(clips, engine):
    images = varied_images()
    expected = clips['torch'].encode_images(images)
    batched = clips[engine].encode_images(images)
    single = np.concatenate([clips[engine].encode_images([image]) for image in images])
    assert cosines(batched, expected).min() >= 0.995
    assert cosines(single, expected).min() >= 0.995
    # The gate is not met by any embedding: the images really differ from one another.
    assert cosines(expected[:-1], expected[1:]).min() < 0.99


@pytest.mark.parametrize('engine', ['openvino', 'openvino f32'])
def test_text_embeddings_match_torch_at_any_length_and_count(clips, engine):
    expected = clips['torch'].encode_texts(TEXTS)
    for count in (1, 2, len(TEXTS)):  # the padded length changes with the longest text
        assert cosines(clips[engine].encode_texts(TEXTS[:count]), expected[:count]).min() \
            >= 0.995
    for text, row in zip(TEXTS, expected):
        assert cosines(clips[engine].encode_texts([text]), row[None])[0] >= 0.995


@pytest.mark.parametrize('prompts', [['red ball'], ['red ball', 'blue cube', 'a green '
                                                    'cylinder standing on the floor']])
@pytest.mark.parametrize('fovea', [None, Fovea()])
@pytest.mark.parametrize('engine', ['openvino', 'openvino f32'])
def test_clipseg_masks_match_torch(segmenters, prompts, fovea, engine):
    """At f32 the probabilities agree; at the default precision (bf16 on a CPU with AVX-512
    BF16 or AMX) the masks do.
    """
    for segmenter in segmenters.values():
        segmenter.set_prompts(prompts)
    for image in varied_images(seed=1)[::2]:
        expected = segmenters['torch'].probabilities(image, fovea)
        got = segmenters[engine].probabilities(image, fovea)
        assert got.shape == expected.shape == (len(prompts), *expected.shape[1:])
        if engine == 'openvino f32':
            assert np.abs(got - expected).max() < 0.02
        for threshold in (0.5, float(np.median(expected))):  # also where half the pixels are
            truth, mask = expected >= threshold, got >= threshold
            assert (mask & truth).sum() >= 0.95 * (mask | truth).sum()


def test_clipseg_fed_larger_images_than_configured(tiny_clipseg_dir, tmp_path):
    """CIDAS/clipseg-rd64-refined is configured at 224 px and its processor feeds 352 (the
    position embeddings are interpolated): the converted model takes the processor's size.
    """
    folder = tmp_path / 'clipseg-larger'
    shutil.copytree(tiny_clipseg_dir, folder)
    config = json.loads((folder / 'processor_config.json').read_text())
    size = config['image_processor']['size']
    configured = json.loads((folder / 'config.json').read_text())['vision_config']
    size['height'] = size['width'] = 2 * configured['image_size']
    (folder / 'processor_config.json').write_text(json.dumps(config))
    torch_segmenter, openvino_segmenter = (
        ClipSegSegmenter(load_model('clipseg', str(folder), 'cpu', backend=backend,
                                    precision='f32'))
        for backend in ('torch', 'openvino'))
    for segmenter in (torch_segmenter, openvino_segmenter):
        segmenter.set_prompts(['red ball', 'blue cube'])
    image = varied_images()[2]
    expected = torch_segmenter.probabilities(image, Fovea())
    assert np.abs(openvino_segmenter.probabilities(image, Fovea()) - expected).max() < 0.02


def test_engines_serve_several_threads_at_once(clips):
    """Nodes in one process share a model: each thread gets its own infer request."""
    images = varied_images()
    encoder = clips['openvino']
    expected = encoder.encode_images(images)
    results, errors = {}, []

    def work(index):
        try:
            results[index] = [encoder.encode_images([image])[0] for image in images]
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(index,)) for index in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    for rows in results.values():
        assert cosines(np.array(rows), expected).min() >= 0.9999


def test_openvino_workers_are_not_pinned_to_cores(clips, segmenters):
    """Several nodes share a few cores: a worker pinned to a busy one would wait for it."""
    engines = [clips['openvino'].loaded.engine, segmenters['openvino'].loaded.engine]
    parts = [part.compiled for engine in engines for part in vars(engine).values()
             if hasattr(part, 'compiled')]
    assert len(parts) >= 4  # CLIP's image and text towers, CLIPSeg's conditionals and masks
    assert [part.get_property('ENABLE_CPU_PINNING') for part in parts] == [False] * len(parts)


def test_the_cache_is_found_again_and_keyed_by_the_weights(clips, openvino_cache):
    model = clips['torch'].model
    first = clips['openvino'].engine
    image_shape = backends.processed_shape(clips['torch'].processor)
    again = backends.OpenVinoClip(model, image_shape)  # the clips fixture converted it here
    assert again.converted == []
    pixels = torch.rand(2, *image_shape)
    assert torch.equal(first.image_features(pixels), again.image_features(pixels))
    # One weight changed, same architecture: converted anew, never served the old IR.
    other = copy.deepcopy(model)
    with torch.no_grad():
        other.visual_projection.weight[0] *= 2.0
    assert backends.weights_digest(other) != backends.weights_digest(model)
    runtime = backends.OpenVinoRuntime(other)
    changed = runtime.compile('clip-image', backends._ClipImage(other),
                              (torch.zeros(1, *image_shape),), [(-1, *image_shape)])
    assert runtime.converted == ['clip-image']
    assert len(list(openvino_cache.glob('clip-image-*'))) >= 2
    assert not np.allclose(changed(pixels.numpy()), first.image_features(pixels).numpy())


def test_cache_location_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv('VLA_ROS_CACHE_DIR', raising=False)
    monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path))
    assert backends.cache_dir() == tmp_path / 'vla_ros' / 'openvino'
    monkeypatch.setenv('VLA_ROS_CACHE_DIR', str(tmp_path / 'mine'))
    assert backends.cache_dir() == tmp_path / 'mine' / 'openvino'


def test_auto_is_openvino_on_a_cpu_and_torch_on_cuda():
    cpu, cuda = torch.device('cpu'), torch.device('cuda')
    assert resolve_backend('auto', cpu) == 'openvino'
    assert resolve_backend('auto', cuda) == 'torch'
    assert resolve_backend('auto', cpu, 'bfloat16') == 'torch'  # asked for torch's kernels
    assert resolve_backend('torch', cpu) == 'torch'


@pytest.mark.parametrize(('backend', 'device', 'dtype', 'message'), [
    ('onnx', 'cpu', 'float32', 'not one of auto, torch, openvino'),
    ('openvino', 'cuda', 'float32', "runs on the CPU, but device is 'cuda'"),
    ('openvino', 'cpu', 'bfloat16', 'choose the precision parameter'),
])
def test_impossible_backends_say_what_to_set(backend, device, dtype, message):
    with pytest.raises(ModelLoadError, match=message):
        resolve_backend(backend, torch.device(device), dtype)


def test_openvino_missing_is_one_clear_error(monkeypatch, tiny_clip_dir):
    monkeypatch.setattr(models, 'openvino_installed', lambda: False)
    assert resolve_backend('auto', torch.device('cpu')) == 'torch'
    with pytest.raises(ModelLoadError, match='openvino package is not installed'):
        load_model('clip', str(tiny_clip_dir), 'cpu', backend='openvino')


def test_bad_precision_is_refused(tiny_clip_dir):
    with pytest.raises(ModelLoadError, match='not one of default, f32'):
        load_model('clip', str(tiny_clip_dir), 'cpu', backend='openvino', precision='int4')


def test_the_model_cache_keeps_backends_apart(tiny_clip_dir):
    cache = ModelCache()
    on_torch = cache.get('clip', str(tiny_clip_dir), 'cpu', backend='torch')
    on_openvino = cache.get('clip', str(tiny_clip_dir), 'cpu', backend='auto')
    assert on_torch is not on_openvino
    assert (on_torch.backend, on_openvino.backend) == ('torch', 'openvino')
    assert on_openvino.runtime.startswith('openvino') and 'CPU' in on_openvino.runtime
    assert on_torch.runtime == 'torch cpu float32'
    # Same backend and options: shared, as the runner shares one CLIP between nodes.
    assert cache.get('clip', str(tiny_clip_dir), 'cpu', backend='openvino') is on_openvino


def quantisers(cache, pattern) -> int:
    """FakeQuantize operations in the IR of the cache folders matching `pattern`."""
    import openvino

    folders = list(cache.glob(pattern))
    assert folders, f'no {pattern} in {cache}'
    core = openvino.Core()
    return sum(op.get_type_name() == 'FakeQuantize' for folder in folders
               for op in core.read_model(folder / 'model.xml').get_ops())


def test_the_cpus_speed_flags_are_read_from_cpuinfo():
    cpuinfo = ('processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_vnni amx_tile '
               'amx_int8\nbogomips\t: 1\n')
    assert backends.isa_flags(cpuinfo) == ('avx2', 'avx512f', 'avx512_vnni', 'amx_int8')
    assert backends.isa_flags('processor\t: 0\n') == ()


@pytest.mark.parametrize('flags, refused', [
    (('avx2',), True), ((), True), (('avx2', 'avx512f'), True),
    (('avx2', 'avx_vnni'), False), (('avx512f', 'avx512_vnni'), False), (('amx_int8',), False),
])
def test_int8_is_refused_where_it_would_be_slower(monkeypatch, tiny_clip_dir, flags, refused):
    monkeypatch.setattr(backends, 'isa_flags', lambda: flags)
    assert bool(backends.int8_problem()) == refused
    if refused:
        with pytest.raises(ModelLoadError, match="no VNNI or AMX.*set precision to 'default'"):
            load_model('clip', str(tiny_clip_dir), 'cpu', backend='openvino', precision='int8')


def test_int8_with_torch_says_to_use_openvino(tiny_clip_dir):
    with pytest.raises(ModelLoadError, match="int8' is OpenVINO's.*set backend to 'openvino'"):
        load_model('clip', str(tiny_clip_dir), 'cpu', backend='torch', precision='int8')


def test_int8_is_quantised_once_and_cached_apart_from_f32(tiny_clip_dir, tiny_clipseg_dir,
                                                          openvino_cache):
    first = load_model('clipseg', str(tiny_clipseg_dir), 'cpu', backend='openvino',
                       precision='int8', int8_on_any_cpu=True)
    assert 'clipseg-masks (int8)' in first.engine.converted
    assert quantisers(openvino_cache, 'clipseg-masks-*-int8-*') > 0
    assert quantisers(openvino_cache, 'clipseg-text-*') == 0  # the text part stays float
    segmenter = ClipSegSegmenter(first)
    segmenter.set_prompts(['red ball'])
    assert segmenter.probabilities(varied_images()[0]).shape == (1, 32, 32)
    again = load_model('clipseg', str(tiny_clipseg_dir), 'cpu', backend='openvino',
                       precision='int8', int8_on_any_cpu=True)
    assert again.engine.converted == []


def test_new_calibration_frames_make_a_new_int8_model(tiny_clip_dir, openvino_cache,
                                                      monkeypatch):
    from vla_ros.core import calibration

    load_model('clip', str(tiny_clip_dir), 'cpu', backend='openvino', precision='int8',
               int8_on_any_cpu=True)
    monkeypatch.setattr(calibration, 'calibration_digest', lambda: 'other frames')
    again = load_model('clip', str(tiny_clip_dir), 'cpu', backend='openvino', precision='int8',
                       int8_on_any_cpu=True)
    assert again.engine.converted == ['clip-image (int8)']  # the f32 IR is reused


def test_another_image_processor_makes_a_new_int8_model(tiny_clip_dir, openvino_cache,
                                                        tmp_path):
    """The calibration's pixels depend on the processor's normalisation: a folder with the
    same weights and another mean is quantised afresh.
    """
    load_model('clip', str(tiny_clip_dir), 'cpu', backend='openvino', precision='int8',
               int8_on_any_cpu=True)
    other = tmp_path / 'other-mean'
    shutil.copytree(tiny_clip_dir, other)
    config_file = other / 'preprocessor_config.json'
    if not config_file.exists():
        config_file = other / 'processor_config.json'
    config = json.loads(config_file.read_text())
    processor = config.get('image_processor', config)
    processor['image_mean'] = [0.5, 0.5, 0.5]
    config_file.write_text(json.dumps(config))
    again = load_model('clip', str(other), 'cpu', backend='openvino', precision='int8',
                       int8_on_any_cpu=True)
    assert again.engine.converted == ['clip-image (int8)']


def test_a_model_is_compiled_by_one_process_at_a_time(tiny_clip_dir, openvino_cache):
    """Nodes starting together share the cache; OpenVINO writes its compiled blob in place.
    While another process holds a model's folder (here: this test), a load waits for it.
    """
    import contextlib

    load_model('clip', str(tiny_clip_dir), 'cpu', backend='openvino')  # in the cache now
    folders = [path.parent for path in openvino_cache.glob('clip-*/model.xml')]
    assert folders
    done = threading.Event()
    loading = threading.Thread(target=lambda: (
        load_model('clip', str(tiny_clip_dir), 'cpu', backend='openvino'), done.set()))
    with contextlib.ExitStack() as held:
        for folder in folders:
            held.enter_context(backends.folder_lock(folder))
        loading.start()
        assert not done.wait(1.0)  # held: it waits
    loading.join(60)
    assert done.is_set()  # released: it went on
