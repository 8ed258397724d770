"""Training views: deterministic, exact masks, held-out combinations kept out of training."""

import json
import subprocess
import sys

import numpy as np
import pytest

from vla_ros.sim.dataset import HELD_OUT, render_views, scene_for_split
from vla_ros.sim.scene import COLOURS, SHAPES


@pytest.fixture(scope='module')
def train_views():
    return [view for seed in range(12) for view in render_views(seed, 'train', 4, 64, 64)]


def test_views_are_a_pure_function_of_seed_and_split():
    first, again = render_views(3, 'train', 2, 48, 48), render_views(3, 'train', 2, 48, 48)
    assert all(np.array_equal(a.image, b.image) and np.array_equal(a.labels, b.labels)
               for a, b in zip(first, again))
    other = render_views(3, 'heldout', 2, 48, 48)
    assert not np.array_equal(first[0].image, other[0].image)


def test_held_out_combinations_never_appear_in_training(train_views):
    combos = {(item.colour, item.shape) for view in train_views for item in view.objects}
    assert not combos & HELD_OUT
    # ...while every colour and every shape on its own still does, given enough scenes.
    many = [scene_for_split(seed, 'train')[0] for seed in range(200)]
    assert not {(o.colour, o.shape) for scene in many for o in scene.objects} & HELD_OUT
    assert {item.shape for scene in many for item in scene.objects} == set(SHAPES)
    assert {item.colour for scene in many for item in scene.objects} == set(COLOURS)
    assert {c for c, _ in HELD_OUT} <= set(COLOURS) and {s for _, s in HELD_OUT} <= set(SHAPES)


def test_heldout_split_focuses_on_a_held_out_combination():
    for seed in range(6):
        for view in render_views(seed, 'heldout', 2, 64, 64):
            focus = view.objects[view.focus]
            assert (focus.colour, focus.shape) in HELD_OUT


def test_labels_pixels_and_names_agree(train_views):
    in_view = 0
    for view in train_views:
        assert view.image.shape == (64, 64, 3) and view.labels.shape == (64, 64)
        assert int((view.labels > 0).sum()) == sum(view.pixels)
        assert view.labels.max() <= len(view.objects)
        for index in view.visible():
            in_view += 1
            item = view.objects[index]
            assert f'go to the {item.colour} {item.shape}' in view.captions(index)
            prompts = view.prompts(index)
            assert prompts[0] == f'{item.colour} {item.shape}'
            for other in view.visible():
                if other != index and view.objects[other].colour == item.colour:
                    assert item.colour not in prompts  # ambiguous alone
    assert in_view >= len(train_views)  # the camera was pointed at something each time


def test_views_from_anywhere_keep_clear_and_see_walls_and_close_ups():
    views = [view for seed in range(6) for view in render_views(seed, 'train', 4, 64, 64,
                                                                anywhere_fraction=1.0)]
    assert all(view.focus == -1 for view in views)
    # Facing anywhere, some views hold no object at all (a wall, the floor) ...
    assert any(not view.visible() for view in views)
    # ... and fraction 0 renders exactly the object-facing views of earlier datasets.
    plain = render_views(3, 'train', 2, 48, 48)
    same = render_views(3, 'train', 2, 48, 48, anywhere_fraction=0.0)
    assert all(np.array_equal(a.image, b.image) for a, b in zip(plain, same))


def test_poses_from_anywhere_are_inside_the_arena_and_clear_of_objects():
    from vla_ros.sim.dataset import camera_pose_anywhere
    from vla_ros.sim.scene import ROBOT_RADIUS

    scene, rng = scene_for_split(5, 'train')
    for _ in range(200):
        x, y, _ = camera_pose_anywhere(scene.objects, rng, scene.arena_half)
        assert max(abs(x), abs(y)) < scene.arena_half - ROBOT_RADIUS
        assert all(np.hypot(x - item.x, y - item.y) > item.size + ROBOT_RADIUS
                   for item in scene.objects)


def test_dataset_command_writes_arrays_and_records(tmp_path):
    result = subprocess.run(
        [sys.executable, '-m', 'vla_ros', 'dataset', '--scenes', '2', '--views', '3',
         '--width', '48', '--height', '36', '--output', str(tmp_path)],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    arrays = np.load(tmp_path / 'train.npz')
    assert arrays['images'].shape == (6, 36, 48, 3) and arrays['labels'].shape == (6, 36, 48)
    records = [json.loads(line) for line in (tmp_path / 'train.jsonl').read_text().splitlines()]
    assert len(records) == 6 and {'scene_seed', 'view', 'focus', 'visible'} <= set(records[0])
    assert sorted(map(tuple, json.loads((tmp_path / 'held_out.json').read_text()))) == \
        sorted(HELD_OUT)
    meta = json.loads((tmp_path / 'train.meta.json').read_text())
    assert meta['views'] == 6 and '--scenes 2 --views 3' in meta['command']
