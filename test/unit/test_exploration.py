"""The occupancy grid (core.mapping) and exploration (core.exploration), on a floor plan drawn
(vla_ros.fixtures.floor_plan) and scanned by ray marching: no simulator, no ROS.
"""

import math

import numpy as np
import pytest

from vla_ros.core.collision_monitor import Scan
from vla_ros.core.exploration import (
    ExplorationConfig,
    Explorer,
    find_frontiers,
    Frontier,
    path_distances,
    rank,
    traversable,
)
from vla_ros.core.mapping import GridConfig, OccupancyGrid, UNKNOWN
from vla_ros.core.odometry import Pose2D
from vla_ros.fixtures.floor_plan import FloorPlan, two_rooms


def test_a_scan_marks_the_floor_it_crossed_free_and_its_return_occupied():
    plan = FloorPlan(half=3.0)
    grid = OccupancyGrid(GridConfig(size_m=8.0), 0.0, 0.0)
    grid.integrate(Pose2D(-1.0, 0.0, 0.0), plan.scan(Pose2D(-1.0, 0.0, 0.0)))
    occupancy = grid.occupancy()
    rows, columns = grid.cell_of(np.array([2.0, 2.97, 3.5]), np.array([0.0, 0.0, 0.0]))
    assert occupancy[rows[0], columns[0]] == 0 or occupancy[rows[0], columns[0]] < 50  # floor
    assert occupancy[rows[1], columns[1]] > 50  # the wall
    assert occupancy[rows[2], columns[2]] == UNKNOWN  # behind it
    # Free only up to max_free_range_m (4 m) along a beam; the wall at 3.97 m is still seen.
    assert grid.free()[grid.cell_of(-1.0 + 3.5, 0.0)]
    assert grid.free_area_m2() > 20.0


def test_unreadable_beams_mark_nothing_and_no_return_marks_floor_to_the_limit():
    grid = OccupancyGrid(GridConfig(size_m=12.0, max_free_range_m=3.0), 0.0, 0.0)
    ranges = np.full(8, np.inf)
    ranges[1::2] = np.nan  # the diagonals
    grid.integrate(Pose2D(0.0, 0.0, 0.0), Scan(ranges, 0.0, math.pi / 4, 0.05, 8.0))
    assert not grid.occupied().any()
    assert grid.free()[grid.cell_of(2.8, 0.0)] and not grid.free()[grid.cell_of(3.3, 0.0)]
    assert grid.free()[grid.cell_of(0.0, 2.0)] and not grid.free()[grid.cell_of(1.4, 1.4)]


def test_a_scan_moves_each_cell_once_however_many_beams_cross_or_end_in_it():
    grid = OccupancyGrid(GridConfig(size_m=8.0), 0.0, 0.0)
    config = grid.config
    ranges = np.full(720, 1.0)  # 720 returns on a circle of 1 m: several in each cell
    grid.integrate(Pose2D(0.0, 0.0, 0.0), Scan(ranges, -math.pi, math.pi / 360, 0.05, 8.0))
    assert grid.log_odds.max() == pytest.approx(config.hit_log_odds)
    assert grid.log_odds.min() == pytest.approx(-config.miss_log_odds)


def test_paths_keep_clear_of_walls_and_frontiers_lie_where_the_unknown_begins():
    plan = two_rooms()
    pose = Pose2D(-1.5, 0.0, 0.0)
    grid = OccupancyGrid(GridConfig(size_m=14.0, max_free_range_m=2.5), pose.x, pose.y)
    grid.integrate(pose, plan.scan(pose), 0.17)
    passable, clearance = traversable(grid, 0.22)
    start = tuple(int(v) for v in grid.cell_of(pose.x, pose.y))
    distances, _ = path_distances(passable, clearance, start, 0.1, 0.22)
    frontiers = find_frontiers(grid, distances, 0.3, 0.37)
    assert frontiers
    goals = np.array([grid.centre_of(*f.goal) for f in frontiers])
    # One frontier through the doorway (beyond x = 0), others where the 2.5 m beams ended.
    assert (goals[:, 0] > 0.0).any()
    assert all(plan.clearance(x, y, 0.2) for x, y in goals)


def test_the_value_map_puts_the_better_matching_frontier_first_at_equal_distance():
    near, far = Frontier((0, 0), 2.0, 1.0, 0.20), Frontier((1, 1), 2.0, 1.0, 0.30)
    assert rank([near, far], 0.5)[0] is far
    assert rank([near, far], 0.0)[0] is near  # no weight: the first of equals
    # A much shorter path still wins over a slightly better view.
    assert rank([Frontier((0, 0), 1.0, 1.0, 0.2), Frontier((1, 1), 4.0, 1.0, 0.3)],
                0.5)[0].distance_m == 1.0
    # No views yet: by distance alone.
    assert rank([Frontier((0, 0), 3.0, 1.0, math.nan), Frontier((1, 1), 1.0, 1.0, math.nan)],
                0.5)[0].distance_m == 1.0


def drive(plan: FloorPlan, explorer: Explorer, pose: Pose2D, seconds: float,
          dt: float = 0.1, stop_at=None):
    """Follow the explorer's commands (a perfect base, a scan every tick); returns the final
    step and pose, checking that the robot never touches a wall.
    """
    step, now = None, 0.0
    while now < seconds:
        explorer.observe_scan(pose, plan.scan(pose))
        step = explorer.step(pose, now)
        if step.done or (stop_at is not None and stop_at(pose)):
            break
        yaw = pose.yaw + step.angular * dt
        pose = Pose2D(pose.x + step.linear * dt * math.cos(yaw),
                      pose.y + step.linear * dt * math.sin(yaw), yaw)
        assert plan.clearance(pose.x, pose.y, 0.15), f'touched a wall at {pose}'
        now += dt
    return step, pose


def test_exploration_goes_through_the_doorway_and_ends_when_all_is_seen():
    plan = two_rooms()
    explorer = Explorer(ExplorationConfig(), GridConfig(size_m=14.0, max_free_range_m=2.5))
    step, pose = drive(plan, explorer, Pose2D(-2.0, -2.0, 1.0), 120.0,
                       stop_at=lambda pose: pose.x > 1.0)
    assert pose.x > 1.0, step  # in the other room
    explorer.new_command()
    step, pose = drive(plan, explorer, pose, 300.0)
    assert step.done.startswith('not found: explored'), step
    # Nearly all of the 34 m² of floor the robot's centre can see.
    assert explorer.grid.free_area_m2() > 28.0


def test_exploration_stops_at_its_time_and_distance_bounds():
    plan = two_rooms()
    explorer = Explorer(ExplorationConfig(max_distance_m=1.0),
                        GridConfig(size_m=14.0, max_free_range_m=2.5))
    step, pose = drive(plan, explorer, Pose2D(-2.0, -2.0, 1.0), 60.0)
    assert step.done.startswith('not found: explored')
    assert math.hypot(pose.x + 2.0, pose.y + 2.0) <= 1.2
    explorer = Explorer(ExplorationConfig(max_time_s=2.0),
                        GridConfig(size_m=14.0, max_free_range_m=2.5))
    step, _ = drive(plan, explorer, Pose2D(-2.0, -2.0, 1.0), 60.0)
    assert step.done.endswith('in 2 s')


def test_bad_exploration_settings_say_what_to_fix():
    with pytest.raises(ValueError, match='value_weight'):
        ExplorationConfig(value_weight=2.0)
    with pytest.raises(ValueError, match='speed_mps'):
        ExplorationConfig(speed_mps=0.0)
    with pytest.raises(ValueError, match='resolution_m'):
        GridConfig(resolution_m=0.0)
    # A grid too large to plan on within a control tick is refused at start.
    with pytest.raises(ValueError, match='map_size_m / map_resolution_m is 2500 cells across'):
        GridConfig(size_m=50.0, resolution_m=0.02)
    assert ExplorationConfig(margin_m=0.0).margin_m == 0.0
