"""The GPU path on the CPU: preprocessing with torch on the model's device and the compiled
mode give what the processor and eager torch give, through the real model load.
"""

import threading
import time

import numpy as np
import pytest

from vla_ros.core.encoders import ClipEncoder, ClipSegSegmenter
from vla_ros.core.models import load_model, ModelLoadError
from vla_ros.core.segmentation import Fovea


def frames(count=4, seed=3):
    """Camera-like frames (gradients and discs) at a few sizes; noise would be the worst
    case for a one-grey-level difference, not what a camera gives.
    """
    rng = np.random.default_rng(seed)
    shapes = ((120, 160), (61, 47), (120, 160), (200, 150))
    images = []
    for index in range(count):
        height, width = shapes[index % 4]
        ys, xs = np.mgrid[0:height, 0:width]
        image = np.stack([xs * 255 // width, ys * 255 // height,
                          np.full_like(xs, rng.integers(0, 256))], -1).astype(np.uint8)
        for _ in range(3):
            cy, cx, r = rng.integers(0, height), rng.integers(0, width), rng.integers(4, 30)
            image[(ys - cy) ** 2 + (xs - cx) ** 2 < r * r] = rng.integers(0, 256, 3)
        images.append(image)
    return images


def test_torch_preprocessing_gives_the_processors_embeddings_and_masks(tiny_clip_dir,
                                                                        tiny_clipseg_dir):
    clip = {way: ClipEncoder(load_model('clip', str(tiny_clip_dir), 'cpu', backend='torch',
                                        preprocessing=way)) for way in ('processor', 'torch')}
    assert clip['torch'].loaded.runtime == 'torch cpu float32, preprocessing with torch on cpu'
    assert clip['processor'].loaded.runtime == 'torch cpu float32'
    embeddings = {way: encoder.encode_images(frames()) for way, encoder in clip.items()}
    assert np.min(np.sum(embeddings['torch'] * embeddings['processor'], axis=1)) > 0.999
    masks = {}
    for way in ('processor', 'torch'):
        segmenter = ClipSegSegmenter(load_model('clipseg', str(tiny_clipseg_dir), 'cpu',
                                                backend='torch', preprocessing=way))
        segmenter.set_prompts(['red ball'])
        masks[way] = segmenter.probabilities(frames(1)[0], Fovea())
    assert np.abs(masks['torch'] - masks['processor']).max() < 0.02
    torch_mask, processor_mask = masks['torch'] >= 0.5, masks['processor'] >= 0.5
    assert (torch_mask & processor_mask).sum() >= 0.95 * (torch_mask | processor_mask).sum()


def test_the_compiled_mode_embeds_a_frame_as_eager_torch_does(tiny_clip_dir):
    """Frames, one a call, run compiled in the first thread that sends one; crops (the
    verifier's, even one) and any other thread run eager, with the same numbers.
    """
    from torch._dynamo.utils import counters

    eager = ClipEncoder(load_model('clip', str(tiny_clip_dir), 'cpu', backend='torch'))
    compiled = ClipEncoder(load_model('clip', str(tiny_clip_dir), 'cpu', backend='torch',
                                      compile_mode='default'))
    assert compiled.loaded.runtime == 'torch cpu float32, compiled (default)'
    frame_path = compiled.engine._frame
    crop = frames(1)[0]
    assert np.allclose(compiled.encode_images([crop], frames=False),
                       eager.encode_images([crop]), atol=1e-5)
    assert frame_path.thread is None  # crops never compile
    captured = counters['stats']['unique_graphs']
    started = time.perf_counter()
    for frame in frames():
        got, expected = compiled.encode_images([frame]), eager.encode_images([frame])
        assert float(np.sum(got * expected)) > 0.99999
    print(f'compiled on the first frame, 4 frames in {time.perf_counter() - started:.1f} s')
    assert counters['stats']['unique_graphs'] > captured  # dynamo did compile it
    assert frame_path.thread == threading.get_ident()
    results = {}
    other = threading.Thread(target=lambda: results.update(
        embedding=compiled.encode_images([crop])))
    other.start()
    other.join()
    assert np.allclose(results['embedding'], eager.encode_images([crop]), atol=1e-5)
    batch = frames(3)  # several a call: eager
    assert np.allclose(compiled.encode_images(batch), eager.encode_images(batch), atol=1e-5)


def test_the_compiled_mode_segments_as_eager_torch_does(tiny_clipseg_dir):
    eager, compiled = (ClipSegSegmenter(load_model('clipseg', str(tiny_clipseg_dir), 'cpu',
                                                   backend='torch', compile_mode=mode))
                       for mode in ('none', 'default'))
    for segmenter in (eager, compiled):
        segmenter.set_prompts(['red ball'])
    frame = frames(1)[0]
    assert np.abs(compiled.probabilities(frame, Fovea())
                  - eager.probabilities(frame, Fovea())).max() < 1e-4


@pytest.mark.parametrize(('options', 'message'), [
    ({'backend': 'openvino', 'compile_mode': 'default'}, "set backend to 'torch'"),
    ({'backend': 'torch', 'compile_mode': 'max'}, 'not one of none, default, reduce-overhead'),
    ({'backend': 'torch', 'preprocessing': 'gpu'}, 'not one of auto, processor, torch'),
])
def test_impossible_gpu_path_settings_say_what_to_set(tiny_clip_dir, options, message):
    with pytest.raises(ModelLoadError, match=message):
        load_model('clip', str(tiny_clip_dir), 'cpu', **options)
