"""Rooms scenes (sim/rooms.py): walls with doorways, furniture, the target mostly out of sight;
the ground truth they are scored against (evaluation/ground_truth.py); arena scenes untouched.
"""

from dataclasses import replace
import hashlib
import math

import pytest

from vla_ros.core.status import ARRIVED
from vla_ros.evaluation.ground_truth import geodesic_distance, target_visible_from_start
from vla_ros.evaluation.scoring import classify_outcome, SUCCESS_DISTANCE_M
from vla_ros.sim.rooms import (
    build_scene,
    DOORWAY_KEEPOUT,
    every_room_reachable,
    gap_to,
    generate_rooms_scene,
    rooms_layout,
)
from vla_ros.sim.scene import generate_scene, has_way, Obstacle, ROBOT_RADIUS
from vla_ros.sim.world import BASE_HEIGHT, CAMERA_Z, scene_xml, SimWorld

SEEDS = range(40)
GREY = (0.5, 0.5, 0.5)
# sha256 of scene_xml of arena scenes (seed, clutter) before rooms existed: they must not move.
ARENA_XML = {
    (0, 0): '137c69e108b1c4842840744e3412842575e9bafd0d2493bd1f90b4df981a4baa',
    (3, 0): '8524a790c401698961805b8b8fbbf089750a0ef614fd492e4e6dfd1c8eed7a83',
    (7, 4): '0de7f3a5ab332ab345b90ea6792daecca79dbaf691262effcd2285224ff318e3',
    (42, 0): '2a31a22effcedfb118e2075218b1c7cb75ecf28d97dd72fe4e4c8117f2ca3042',
}


@pytest.fixture(scope='module')
def scenes():
    return {seed: (generate_rooms_scene(seed), rooms_layout(seed)) for seed in SEEDS}


def test_arena_scenes_are_as_they_were():
    for (seed, clutter), digest in ARENA_XML.items():
        scene = generate_scene(seed, clutter=clutter)
        assert scene.world == 'arena' and scene.wall_height == 0.3
        assert hashlib.sha256(scene_xml(scene).encode()).hexdigest() == digest, seed
        assert build_scene('arena', seed, clutter) == scene


def test_a_rooms_scene_is_a_pure_function_of_the_seed():
    assert generate_rooms_scene(5) == generate_rooms_scene(5)
    assert generate_rooms_scene(5) != generate_rooms_scene(6)
    assert build_scene('rooms', 5) == generate_rooms_scene(5)


def test_rooms_refuse_clutter_and_unknown_worlds_are_named():
    with pytest.raises(ValueError, match='clutter'):
        build_scene('rooms', 1, clutter=3)
    with pytest.raises(ValueError, match='arena, rooms'):
        build_scene('castle', 1)


def test_rooms_have_tall_walls_doorways_and_furniture(scenes):
    camera = BASE_HEIGHT + CAMERA_Z
    for seed, (scene, layout) in scenes.items():
        assert scene.world == 'rooms' and 3.8 <= scene.arena_half <= 4.2
        assert 2 <= len(layout.rooms) <= 4 and len(layout.doorways) == len(layout.rooms) - 1
        walls = [item for item in scene.obstacles if item.kind == 'wall']
        assert walls and set(walls) == set(layout.walls)
        assert scene.wall_height >= 0.6 and all(wall.height >= 0.6 for wall in walls)
        assert all(wall.height > camera for wall in walls)
        for door in layout.doorways:
            assert 0.8 <= door.width <= 1.0
            assert door.width > 2 * (ROBOT_RADIUS + 0.2)  # comfortably
            for item in scene.obstacles:  # nothing in the doorway, nothing in front of it
                keep = door.width / 2 if item.kind == 'wall' else door.width / 2 + (
                    DOORWAY_KEEPOUT)
                assert gap_to(item, door.x, door.y) >= keep - 1e-6, (seed, door, item)
            for item in scene.objects:
                assert math.hypot(item.x - door.x, item.y - door.y) >= door.width / 2 + (
                    DOORWAY_KEEPOUT)


def test_rooms_scenes_name_one_target_the_robot_can_reach_through_every_doorway(scenes):
    for seed, (scene, layout) in scenes.items():
        assert 1 <= len(scene.objects) <= 6
        target = scene.target
        assert [(o.colour, o.shape) for o in scene.objects].count(
            (target.colour, target.shape)) == 1
        assert all(layout.room_of(o.x, o.y) >= 0 for o in scene.objects)
        assert layout.room_of(scene.robot_x, scene.robot_y) >= 0
        assert has_way(scene, scene.obstacles), seed
        assert every_room_reachable(scene, layout), seed


def test_the_target_is_in_another_room_than_the_start_in_most_seeds(scenes):
    apart = [layout.room_of(scene.robot_x, scene.robot_y)
             != layout.room_of(scene.target.x, scene.target.y)
             for scene, layout in scenes.values()]
    assert sum(apart) >= 0.7 * len(apart)


def test_a_closed_doorway_is_caught():
    scene, layout = generate_rooms_scene(2), rooms_layout(2)
    door = layout.doorways[0]
    plank = Obstacle('wall', door.x, door.y, 0.0 if door.along_x else math.pi / 2,
                     door.width / 2 + 0.1, 0.05, 1.0, GREY)
    assert not every_room_reachable(replace(scene, obstacles=scene.obstacles + (plank,)),
                                    layout)


def test_a_tall_wall_hides_an_object_behind_it():
    """The camera sees over a low wall (clutter) but not over a house's."""
    scene = generate_scene(3)
    target = scene.target
    heading = math.atan2(target.y - scene.robot_y, target.x - scene.robot_x)
    gap = math.hypot(target.x - scene.robot_x, target.y - scene.robot_y)
    middle = (scene.robot_x + 0.5 * gap * math.cos(heading),
              scene.robot_y + 0.5 * gap * math.sin(heading))

    def target_pixels(height):
        wall = Obstacle('wall', *middle, heading + math.pi / 2, 1.0, 0.05, height, GREY)
        world = SimWorld(replace(scene, obstacles=(wall,)), 160, 120)
        try:
            world.place_robot(scene.robot_x, scene.robot_y, heading)
            return int(world.object_mask(scene.target_index).sum())
        finally:
            world.close()

    assert target_pixels(0.15) > 0  # as high as clutter's walls
    assert target_pixels(0.6) == 0
    assert target_pixels(generate_rooms_scene(0).wall_height) == 0


def test_the_geodesic_distance_is_the_straight_gap_in_the_open():
    for seed in range(5):
        scene = generate_scene(seed)  # the way to the target is kept clear
        target = scene.target
        straight = math.hypot(target.x - scene.robot_x, target.y - scene.robot_y) - (
            target.size + ROBOT_RADIUS + SUCCESS_DISTANCE_M)
        assert geodesic_distance(scene) == pytest.approx(max(straight, 0.0), abs=0.02)


def test_the_geodesic_distance_goes_round_a_wall():
    """A wall across the straight way, open above: round its end, corner to corner."""
    scene = generate_scene(3)
    objects = (replace(scene.target, x=2.0, y=0.0),)
    wall = Obstacle('wall', 0.0, -1.0, math.pi / 2, 2.0, 0.05, 1.0, GREY)  # y from -3 to 1
    walled = replace(scene, objects=objects, target_index=0, robot_x=-2.0, robot_y=0.0,
                     obstacles=(wall,))
    corner = (0.0, 1.0 + ROBOT_RADIUS)
    reach = objects[0].size + ROBOT_RADIUS + SUCCESS_DISTANCE_M
    round_the_end = 2 * math.hypot(2.0, corner[1]) - reach
    assert geodesic_distance(walled) == pytest.approx(round_the_end, abs=0.1)
    assert geodesic_distance(replace(walled, obstacles=())) == pytest.approx(4.0 - reach,
                                                                             abs=0.02)
    closed = Obstacle('wall', 0.0, 0.0, math.pi / 2, 3.0, 0.05, 1.0, GREY)
    assert geodesic_distance(replace(walled, obstacles=(closed,))) == math.inf


def test_visibility_from_the_start_sees_an_open_arena_and_not_through_walls():
    scene = generate_scene(3)
    assert target_visible_from_start(scene)
    x, y = scene.robot_x, scene.robot_y
    box = tuple(Obstacle('wall', x + dx, y + dy, yaw, 0.5, 0.03, 1.0, GREY)
                for dx, dy, yaw in ((0.45, 0, math.pi / 2), (-0.45, 0, math.pi / 2),
                                    (0, 0.45, 0.0), (0, -0.45, 0.0)))
    assert not target_visible_from_start(replace(scene, obstacles=box))


def test_a_target_just_behind_a_wall_is_neither_reached_nor_scored_through_it():
    """Seed 203's target is 0.75 m past the wall from the start: the way is round by the
    doorway, and a robot stopped against the wall's other side has not arrived.
    """
    scene = generate_rooms_scene(203)
    target = scene.target
    straight = math.hypot(scene.robot_x - target.x, scene.robot_y - target.y)
    assert geodesic_distance(scene) > straight + 0.5
    wall = min((item for item in scene.obstacles if item.kind == 'wall'),
               key=lambda item: gap_to(item, target.x, target.y))
    across = -(target.x - wall.x) * math.sin(wall.yaw) + (target.y - wall.y) * math.cos(
        wall.yaw)  # the target's signed offset from the wall's line
    beyond = -math.copysign(wall.half_width + ROBOT_RADIUS + 0.01, across)
    x = target.x + (across - beyond) * math.sin(wall.yaw)
    y = target.y - (across - beyond) * math.cos(wall.yaw)
    world = SimWorld(scene, 32, 24)
    try:
        world.place_robot(x, y, 0.0)
        world.step(0.0, 0.0, 0.05)
        assert world.collided_with is None
        assert world.distance_to(scene.target_index) <= SUCCESS_DISTANCE_M
        assert classify_outcome(world, scene, ARRIVED, False)[0] != 'success'
    finally:
        world.close()
