"""The accuracy gates of the OpenVINO backend on the shipped models and rendered scenes:
embeddings within cosine 0.995 of torch fp32, CLIPSeg masks within IoU 0.95 at the threshold,
for the floating-point precisions; int8 (quantised on the shipped calibration renders, here
on any CPU): image embeddings within cosine 0.99, masks of the object in view within IoU 0.9.
They skip, with the reason, without openvino or the models.
"""

import numpy as np
import pytest

from vla_ros.core import paths
from vla_ros.core.backends import openvino_installed, PRECISIONS
from vla_ros.core.encoders import ClipEncoder, ClipSegSegmenter
from vla_ros.core.models import load_model
from vla_ros.core.segmentation import Fovea
from vla_ros.sim.dataset import render_views
from vla_ros.sim.scene import COLOURS, SHAPES

pytestmark = [
    pytest.mark.skipif(not openvino_installed(), reason='openvino is not installed'),
    pytest.mark.skipif(not all((paths.default_model_dir(kind) / 'config.json').is_file()
                               for kind in ('clip', 'clipseg')),
                       reason='models/clip and models/clipseg are not there'),
]
SEEDS = range(300_000, 300_005)  # scenes the models were not trained on
THRESHOLD = 0.5  # scene_segmenter's mask_threshold


@pytest.fixture(scope='module')
def views():
    return [view for seed in SEEDS for view in render_views(seed, 'train', 2, 160, 120)]


@pytest.fixture(scope='module')
def torch_clip():
    return ClipEncoder(load_model('clip', '', 'cpu', backend='torch'))


@pytest.fixture(scope='module')
def torch_clipseg():
    return ClipSegSegmenter(load_model('clipseg', '', 'cpu', backend='torch'))


def crops(view):
    """Each visible object's box with some surroundings: what the verifier's CLIP sees."""
    result = []
    for index in view.visible():
        ys, xs = np.nonzero(view.labels == index + 1)
        pad = max(np.ptp(ys), np.ptp(xs)) // 5 + 1
        result.append(view.image[max(ys.min() - pad, 0):ys.max() + pad + 1,
                                 max(xs.min() - pad, 0):xs.max() + pad + 1])
    return result


def cosines(a, b):
    return (a * b).sum(axis=1)  # both L2-normalised


FLOATS = tuple(precision for precision in PRECISIONS if precision != 'int8')


@pytest.mark.parametrize('precision', FLOATS)
def test_clip_embeddings_stay_within_cosine_0_995(views, torch_clip, precision):
    reference = torch_clip
    encoder = ClipEncoder(load_model('clip', '', 'cpu', backend='openvino',
                                     precision=precision))
    frames = [view.image for view in views]
    pieces = [crop for view in views for crop in crops(view)]
    assert len(pieces) >= 8
    labels = [f'a {colour} {shape}' for colour in COLOURS for shape in SHAPES]
    commands = ['go to the red ball', 'find the blue cube', 'stop', 'turn left please']
    for expected, got in (
            (reference.encode_images(frames), encoder.encode_images(frames)),
            (reference.encode_images(pieces), encoder.encode_images(pieces)),
            (reference.encode_images(pieces[:3]), encoder.encode_images(pieces[:3])),
            (reference.encode_texts(labels), encoder.encode_texts(labels)),
            (reference.encode_texts(commands), encoder.encode_texts(commands))):
        assert cosines(expected, got).min() >= 0.995
    # Zero-shot labels of the frames: the same answer from both.
    scores = [encoder.label_probabilities(e, reference.encode_texts(labels)).argmax(1)
              for e in (reference.encode_images(frames), encoder.encode_images(frames))]
    assert np.mean(scores[0] == scores[1]) >= 0.9


@pytest.mark.parametrize('precision', FLOATS)
def test_clipseg_masks_stay_within_iou_0_95(views, torch_clipseg, precision):
    reference = torch_clipseg
    segmenter = ClipSegSegmenter(load_model('clipseg', '', 'cpu', backend='openvino',
                                            precision=precision))
    fovea = Fovea()
    intersection = union = masks = 0
    for view in views:
        item = view.objects[view.visible()[0]] if view.visible() else view.objects[0]
        prompts = [f'{item.colour} {item.shape}', 'red ball']
        reference.set_prompts(prompts)
        segmenter.set_prompts(prompts)
        expected = reference.probabilities(view.image, fovea) >= THRESHOLD
        got = segmenter.probabilities(view.image, fovea) >= THRESHOLD
        for truth, mask in zip(expected, got):
            if truth.any() or mask.any():
                assert (truth & mask).sum() >= 0.95 * (truth | mask).sum()
                masks += 1
            intersection += (truth & mask).sum()
            union += (truth | mask).sum()
    assert masks >= len(views)  # the gate was tested on masks, not on empty images
    assert intersection >= 0.98 * union


@pytest.fixture(scope='module')
def int8_cache(tmp_path_factory):
    """A cache of its own: the int8 parts are quantised here, as at a robot's first start."""
    import os

    folder = tmp_path_factory.mktemp('int8-cache')
    before = os.environ.get('VLA_ROS_CACHE_DIR')
    os.environ['VLA_ROS_CACHE_DIR'] = str(folder)
    yield folder
    if before is None:
        del os.environ['VLA_ROS_CACHE_DIR']
    else:
        os.environ['VLA_ROS_CACHE_DIR'] = before


def quantisers(cache) -> int:
    """FakeQuantize operations in the int8 IR of the cache."""
    import openvino

    core = openvino.Core()
    return sum(op.get_type_name() == 'FakeQuantize'
               for xml in cache.glob('openvino/*-int8-*/model.xml')
               for op in core.read_model(xml).get_ops())


def test_int8_image_embeddings_stay_within_cosine_0_99(views, torch_clip, int8_cache):
    pytest.importorskip('nncf', reason='precision int8 needs nncf (requirements.txt)')
    loaded = load_model('clip', '', 'cpu', backend='openvino', precision='int8',
                        int8_on_any_cpu=True)
    assert loaded.engine.converted == ['clip-image', 'clip-image (int8)', 'clip-text']
    assert quantisers(int8_cache) > 0  # really quantised, not the f32 IR under a new name
    encoder = ClipEncoder(loaded)
    frames = [view.image for view in views]
    pieces = [crop for view in views for crop in crops(view)]
    for images in (frames, pieces):
        assert cosines(torch_clip.encode_images(images), encoder.encode_images(images)).min() \
            >= 0.99
    again = load_model('clip', '', 'cpu', backend='openvino', precision='int8',
                       int8_on_any_cpu=True)
    assert again.engine.converted == []  # quantised once, then found in the cache


def test_int8_masks_of_the_object_in_view_stay_within_iou_0_9(views, torch_clipseg,
                                                              int8_cache):
    pytest.importorskip('nncf', reason='precision int8 needs nncf (requirements.txt)')
    segmenter = ClipSegSegmenter(load_model('clipseg', '', 'cpu', backend='openvino',
                                            precision='int8', int8_on_any_cpu=True))
    fovea = Fovea()
    intersection = union = masks = 0
    for view in views:
        for index in view.visible():
            item = view.objects[index]
            for model in (torch_clipseg, segmenter):
                model.set_prompts([f'{item.colour} {item.shape}'])
            expected = torch_clipseg.probabilities(view.image, fovea)[0] >= THRESHOLD
            got = segmenter.probabilities(view.image, fovea)[0] >= THRESHOLD
            if expected.any():
                masks += 1
            intersection += (expected & got).sum()
            union += (expected | got).sum()
    assert masks >= len(views) // 2
    assert intersection >= 0.9 * union
