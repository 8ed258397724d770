"""Cluttered scenes: boxes and walls in the way, the simulated laser, and the closed loop
going round them (oracle perception, the robot's own control and collision monitor).
"""

from dataclasses import replace
import math

import numpy as np
import pytest

from vla_ros.core import paths
from vla_ros.evaluation.lockstep import OracleMode, run_episode, StackSettings
from vla_ros.sim.scene import distance_to_segment, generate_scene, has_way, Obstacle
from vla_ros.sim.world import SimWorld


@pytest.mark.parametrize('seed', range(0, 60, 6))
def test_clutter_adds_obstacles_in_the_way_and_keeps_a_way_round(seed):
    plain, cluttered = generate_scene(seed), generate_scene(seed, clutter=4)
    assert replace(cluttered, obstacles=()) == plain  # the seed's scene, plus obstacles
    assert cluttered == generate_scene(seed, clutter=4)
    start, target = (plain.robot_x, plain.robot_y), plain.target
    in_way = [item for item in cluttered.obstacles
              if distance_to_segment(item.x, item.y, *start, target.x, target.y) < 0.5]
    assert len(cluttered.obstacles) == 4 and len(in_way) >= 3
    assert has_way(cluttered, cluttered.obstacles)
    for item in cluttered.obstacles:
        assert math.hypot(item.x - target.x, item.y - target.y) > target.size + item.radius


def walled_in(scene):
    """Four walls round the robot's start."""
    x, y = scene.robot_x, scene.robot_y
    grey = (0.5, 0.5, 0.5)
    return (Obstacle('wall', x + 0.45, y, math.pi / 2, 0.5, 0.03, 0.2, grey),
            Obstacle('wall', x - 0.45, y, math.pi / 2, 0.5, 0.03, 0.2, grey),
            Obstacle('wall', x, y + 0.45, 0.0, 0.5, 0.03, 0.2, grey),
            Obstacle('wall', x, y - 0.45, 0.0, 0.5, 0.03, 0.2, grey))


def test_the_grid_check_finds_no_way_out_of_a_closed_box():
    scene = generate_scene(3)
    assert has_way(scene, ())
    assert not has_way(scene, walled_in(scene))


def test_the_simulated_laser_measures_a_wall_at_its_distance():
    scene = generate_scene(3)
    wall = Obstacle('wall', scene.robot_x + 1.0, scene.robot_y, math.pi / 2, 2.0, 0.03, 0.2,
                    (0.5, 0.5, 0.5))
    world = SimWorld(replace(scene, obstacles=(wall,)), 32, 24)
    world.place_robot(scene.robot_x, scene.robot_y, 0.0)
    ranges = world.scan(beams=360, noise_m=0.0)  # beam 180 looks straight ahead (+x)
    assert ranges[180] == pytest.approx(1.0 - 0.03, abs=1e-3)
    assert ranges[180 + 30] == pytest.approx(0.97 / math.cos(math.radians(30)), abs=2e-3)
    world.close()


def oracle():
    return OracleMode(StackSettings.from_params_file(paths.default_params_file()))


def test_the_robot_goes_round_obstacles_to_its_target():
    result = run_episode(generate_scene(3, clutter=4), oracle(), max_time_s=40.0)
    assert result.outcome == 'success', result.summary()
    assert any('going around an obstacle' in status for status in result.statuses)
    assert not result.collided_with


def test_a_walled_in_robot_says_blocked_and_touches_nothing():
    scene = generate_scene(3)
    result = run_episode(replace(scene, obstacles=walled_in(scene)), oracle(),
                         max_time_s=40.0)
    assert result.outcome == 'blocked' and result.cause == 'blocked', result.summary()
    assert not result.collided_with
    assert np.hypot(result.trajectory[-1][0] - scene.robot_x,
                    result.trajectory[-1][1] - scene.robot_y) < 0.3
