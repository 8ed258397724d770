"""Training the embedded models: the tokenizer, the losses, and a smoke-sized run end to end
(render -> train CLIP -> resume -> train CLIPSeg on it -> load through the nodes' loader ->
eval-models). Real training never runs here: it takes tens of minutes.
"""

import json
import random

import numpy as np
import pytest
import torch
import yaml

from vla_ros.commands.main import main
from vla_ros.core.encoders import ClipEncoder, ClipSegSegmenter
from vla_ros.core.models import load_model
from vla_ros.sim.dataset import HELD_OUT
from vla_ros.training import bpe
from vla_ros.training.data import HELD_OUT_PARAPHRASES, intent_phrasings, load_split, named_views
from vla_ros.training.losses import soft_targets, supervised_contrastive
from vla_ros.training.stages.clipseg import absent_prompt, target_mask


def test_bpe_keeps_clips_token_ids_and_pools_at_the_highest_id():
    tokenizer = bpe.clip_bpe_tokenizer(8000, 32)
    assert len(tokenizer) == 512 + 8000 + 2
    assert tokenizer.eos_token_id == len(tokenizer) - 1 == tokenizer.pad_token_id
    # Ids of openai/clip-vit-base-patch32's tokenizer for these words.
    assert tokenizer('a photo of the')['input_ids'][1:-1] == [320, 1125, 539, 518]
    # Rare words split into known pieces rather than becoming unknown.
    assert tokenizer.tokenize('capsule') == ['cap', 'su', 'le</w>']
    ids = tokenizer('zyxwv qqq ünïcode')['input_ids']
    assert tokenizer.unk_token_id not in ids[:-1]  # (unk is the end token, as in CLIP)


def test_soft_targets_treat_same_captions_as_positives():
    targets = soft_targets(torch.tensor([3, 5, 3]))
    assert torch.allclose(targets[0], torch.tensor([0.5, 0.0, 0.5]))
    assert torch.allclose(targets[1], torch.tensor([0.0, 1.0, 0.0]))


def test_supervised_contrastive_loss_prefers_grouped_embeddings():
    labels = torch.tensor([0, 0, 1, 1])
    grouped = torch.nn.functional.normalize(torch.tensor(
        [[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]]), dim=-1)
    mixed = grouped[[0, 2, 1, 3]]
    assert supervised_contrastive(grouped, labels, 0.1) < supervised_contrastive(
        mixed, labels, 0.1)


def test_intent_phrasings_cover_every_intent_and_never_a_held_out_one():
    table = yaml.safe_load(HELD_OUT_PARAPHRASES.read_text())
    held_out = frozenset(p for phrases in table.values() for p in phrases)
    rng = random.Random(0)
    generated = [pair for _ in range(3000) for pair in intent_phrasings(rng, held_out)]
    assert {name for _, name in generated} == set(table)
    assert not {text for text, _ in generated} & held_out
    # Without the exclusion some held-out sentences would come up: the filter is needed.
    rng = random.Random(0)
    assert {t for _ in range(3000) for t, _ in intent_phrasings(rng)} & held_out


def test_target_mask_is_the_objects_area_at_model_resolution():
    labels = np.zeros((120, 160), np.uint8)
    labels[:60, :80] = 2  # object index 1 fills the top-left quarter
    mask = target_mask(labels, 1, 96)
    assert mask.shape == (96, 96) and mask.mean() == pytest.approx(0.25, abs=0.01)
    assert target_mask(labels, 0, 96).max() == 0


@pytest.fixture(scope='module')
def dataset(tmp_path_factory):
    folder = tmp_path_factory.mktemp('dataset')
    for split, scenes in (('train', 3), ('heldout', 2)):
        assert main(['dataset', '--split', split, '--scenes', str(scenes), '--views', '3',
                     '--width', '64', '--height', '48', '--output', str(folder)]) == 0
    return folder


def test_object_crops_are_squares_around_each_object_in_view(dataset):
    from vla_ros.training.stages.crops import CROP_MIN_FRACTION, object_crops

    split = load_split(dataset, 'train')
    crops = object_crops(split, random.Random(0))
    expected = [(o['colour'], o['shape']) for record in split.records
                for o in record['objects'] if o['pixels'] / (48 * 64) >= CROP_MIN_FRACTION]
    assert [combo for _, combo in crops] == expected and crops
    assert all(crop.shape[0] == crop.shape[1] >= 16 for crop, _ in crops)


def test_absent_prompts_name_nothing_in_the_scene(dataset):
    split = load_split(dataset, 'train')
    rng = random.Random(1)
    for index in range(len(split)):
        present = {f"{o['colour']} {o['shape']}" for o in split.records[index]['objects']}
        for _ in range(20):
            assert absent_prompt(split, index, rng).removeprefix('the ') not in present
            hard = absent_prompt(split, index, rng, hard_fraction=1.0).removeprefix('the ')
            assert hard not in present
            if split.visible(index):  # a hard one shares a word with something in view
                in_view = {word for i, _ in split.visible(index)
                           for word in split.combo(index, i)}
                assert set(hard.split()) & in_view


def test_smoke_training_resumes_and_loads_like_a_real_model(dataset, tmp_path, capsys):
    clip_dir, clipseg_dir = tmp_path / 'clip', tmp_path / 'clipseg'
    common = ['--data', str(dataset), '--batch', '6', '--checkpoint-every', '2']
    assert main(['train', 'clip', '--output', str(clip_dir), '--steps', '2'] + common) == 0
    first = json.loads((clip_dir / 'training.json').read_text())
    assert main(['train', 'clip', '--output', str(clip_dir), '--steps', '3'] + common) == 0
    assert 'resumed from' in capsys.readouterr().out
    assert json.loads((clip_dir / 'training.json').read_text())['steps'] == 3
    assert first['steps'] == 2
    tuned_dir = tmp_path / 'clip-intents'
    assert main(['train', 'intents', '--clip', str(clip_dir), '--output', str(tuned_dir),
                 '--steps', '2'] + common) == 0
    assert json.loads((tuned_dir / 'training.json').read_text())['previous_stage']['steps'] == 3
    crops_dir = tmp_path / 'clip-crops'
    assert main(['train', 'crops', '--clip', str(tuned_dir), '--output', str(crops_dir),
                 '--steps', '2'] + common) == 0
    record = json.loads((crops_dir / 'training.json').read_text())
    assert record['crops'] > 0 and record['previous_stage']['kind'] == 'intents'
    assert record['trained_parameters'] < record['parameters']  # the text tower is frozen
    assert main(['train', 'clipseg', '--clip', str(clip_dir), '--output', str(clipseg_dir),
                 '--steps', '2', '--backbone-lr-factor', '0',
                 '--extra-data', str(dataset)] + common) == 0
    record = json.loads((clipseg_dir / 'training.json').read_text())
    assert record['views'] == 2 * len(load_split(dataset, 'train')) and record['frozen_clip']
    # Fine-tuned towers at another input size: the position embeddings follow the new grid.
    resized_dir = tmp_path / 'clipseg-64'
    assert main(['train', 'clipseg', '--clip', str(clip_dir), '--output', str(resized_dir),
                 '--steps', '1', '--backbone-lr-factor', '0.1', '--image-size', '64',
                 '--device', 'cpu'] + common) == 0
    record = json.loads((resized_dir / 'training.json').read_text())
    assert record['image_size'] == 64 and not record['frozen_clip']
    assert record['device'] == 'cpu'

    # The nodes' loader and encoders take them like any Hugging Face folder.
    encoder = ClipEncoder(load_model('clip', str(tuned_dir), device='cpu'))
    image = load_split(dataset, 'train').images[0]
    assert encoder.encode_images([image]).shape == (1, 128)
    segmenter = ClipSegSegmenter(load_model('clipseg', str(clipseg_dir), device='cpu'))
    segmenter.set_prompts(['red ball'])
    assert segmenter.segment(image).shape == (1, 48, 64)
    resized = ClipSegSegmenter(load_model('clipseg', str(resized_dir), device='cpu'))
    resized.set_prompts(['red ball'])
    assert resized.segment(image).shape == (1, 48, 64)
    assert resized.model.config.vision_config.image_size == 64
    # CLIPSeg is built on the CLIP: the same tokenizer reads the command in both nodes.
    assert segmenter.processor.tokenizer('red ball')['input_ids'] == \
        encoder.processor.tokenizer('red ball')['input_ids']

    results = tmp_path / 'models.json'
    assert main(['eval-models', '--clip', str(tuned_dir), '--clipseg', str(clipseg_dir),
                 '--seen', str(dataset / 'train'), '--heldout', str(dataset / 'heldout'),
                 '--output', str(results), '--write-cards']) == 0
    measured = json.loads(results.read_text())
    assert measured['clip_held_out']['views'] == len(
        named_views(load_split(dataset, 'heldout'), HELD_OUT))
    assert 0.0 <= measured['clipseg_seen']['miou'] <= 1.0
    assert measured['intents']['phrases'] >= 60 and measured['speed']['pipeline_hz'] > 0
    verification = measured['verification_seen']
    assert verification['views'] > 0
    assert set(verification['on_object_rate']) == {'without', 'with'}
    card = (tuned_dir / 'README.md').read_text()
    assert 'simulator renders only' in card and 'train intents' in card
    assert 'mIoU' in (clipseg_dir / 'README.md').read_text()


def test_resized_position_embeddings_keep_the_class_token_and_the_grid():
    import torch

    from vla_ros.training.architecture import _resized_positions

    weight = torch.randn(1 + 12 * 12, 16)
    assert torch.allclose(_resized_positions(weight, 12), weight, atol=1e-5)
    bigger = _resized_positions(weight, 16)
    assert bigger.shape == (1 + 16 * 16, 16) and torch.equal(bigger[0], weight[0])


def test_training_without_data_says_how_to_make_it(tmp_path, capsys):
    assert main(['train', 'clip', '--data', str(tmp_path / 'none'),
                 '--output', str(tmp_path / 'out')]) == 2
    assert 'vla-ros dataset' in capsys.readouterr().err
