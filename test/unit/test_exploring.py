"""core.control.Controller exploring for a go_to's target it cannot see from where it stands:
two rooms drawn on a floor plan (vla_ros.fixtures.floor_plan), a scan and a camera by
geometry, the base following what the controller sends.
"""

from dataclasses import replace
import math

import numpy as np
import pytest

from vla_ros.core.control import Controller, ControlSettings
from vla_ros.core.exploration import ExplorationConfig, tile_bearings
from vla_ros.core.mapping import GridConfig
from vla_ros.core.odometry import Pose2D
from vla_ros.core.policy import DEFAULT_INTENTS, ServoConfig
from vla_ros.core.status import is_final
from vla_ros.fixtures.floor_plan import CAMERA_MOUNT, two_rooms

GO_TO = next(intent for intent in DEFAULT_INTENTS if intent.behaviour == 'go_to')
TURN = next(intent for intent in DEFAULT_INTENTS if intent.name == 'turn_left')
LOOK_FOR = next(intent for intent in DEFAULT_INTENTS if intent.behaviour == 'look_for')
DT = 0.05
SCAN_EVERY = 2  # ticks: a 10 Hz scanner
START = Pose2D(-2.0, -2.0, math.pi / 2)  # in the left room, facing along it
BALL = (2.0, 2.0)  # in the right room: hidden from the start by the wall between


def controller(**exploration) -> Controller:
    return Controller(None, ControlSettings(
        servo=ServoConfig(confirm_s=0.0, search_speed_rps=0.8, search_timeout_s=10.0),
        exploration=ExplorationConfig(**exploration), grid=GridConfig(size_m=14.0),
        camera_mount=CAMERA_MOUNT))


def run(control, plan, pose, seconds, target=BALL, odom_age=lambda now: 0.0, start=0.0,
        estop=lambda now: False):
    """Tick for `seconds` (or to a final status); returns (statuses in order, final pose),
    checking that the robot never comes within 0.15 m of a wall.
    """
    statuses, now, tick = [], start, 0
    scan_points = None
    while now < start + seconds:
        age = odom_age(now)
        if tick % SCAN_EVERY == 0:
            scan = plan.scan(pose)
            scan_points = scan.points()
            control.observe_scan(scan, pose, age)
        view = plan.view(pose, target) if target is not None else plan.view(pose, (99, 99))
        out = control.tick(now, view, 0.0, 0.0, scan=scan_points, scan_age=0.0,
                           odom=pose, odom_age=age, estop=estop(now))
        if not statuses or statuses[-1] != out.status:
            statuses.append(out.status)
        if is_final(out.status):
            break
        yaw = pose.yaw + out.angular * DT
        pose = Pose2D(pose.x + out.linear * DT * math.cos(yaw),
                      pose.y + out.linear * DT * math.sin(yaw), yaw)
        assert plan.clearance(pose.x, pose.y, 0.15), f'touched a wall at {pose}'
        now, tick = now + DT, tick + 1
    return statuses, pose


def test_a_target_in_the_other_room_is_found_by_exploring_and_arrived_at():
    plan, control = two_rooms(), controller()
    control.follow(GO_TO, 'red ball', 0.0)
    statuses, pose = run(control, plan, START, 150.0)
    assert statuses[-1] == 'arrived', statuses
    assert any(status.startswith('exploring (') for status in statuses)
    assert math.hypot(pose.x - BALL[0], pose.y - BALL[1]) < 0.6
    # The search turned all round first, then explored; then the ball was seen and approached.
    first_explore = next(i for i, s in enumerate(statuses) if s.startswith('exploring'))
    assert statuses[first_explore - 1] == 'searching red ball'
    assert any(s.startswith('approaching red ball') for s in statuses[first_explore:])


def test_find_explores_too_and_ends_facing_what_it_found():
    """"find the red ball" (look_for) searches the house as a go_to does, and stops once
    the ball is ahead: it is shown, not driven up to, and where it is is remembered.
    """
    plan, control = two_rooms(), controller()
    control.follow(LOOK_FOR, 'red ball', 0.0)
    statuses, pose = run(control, plan, START, 150.0)
    assert statuses[-1] == 'found red ball', statuses
    assert any(status.startswith('exploring (') for status in statuses)
    view = plan.view(pose, BALL)
    assert view.confidence > 0.0 and abs(view.x) <= 0.15  # in view, ahead
    assert math.hypot(pose.x - BALL[0], pose.y - BALL[1]) > 1.0  # not driven up to
    seen = control.sightings.recall('red ball')  # kept, for a "go to the red ball" next
    assert seen is not None and math.hypot(seen.x - BALL[0], seen.y - BALL[1]) < 0.5
    control.follow(GO_TO, 'red ball', 200.0)  # asked from the first room: straight back
    statuses, _ = run(control, plan, START, 150.0, start=200.0)
    assert statuses[0] == 'going to where the red ball was seen', statuses
    assert statuses[-1] == 'arrived' and not any(s.startswith('exploring') for s in statuses)


def test_with_nothing_to_find_exploring_ends_not_found_with_what_it_covered():
    plan, control = two_rooms(), controller()
    control.follow(GO_TO, 'red ball', 0.0)
    statuses, pose = run(control, plan, START, 400.0, target=None)
    final = statuses[-1]
    assert final.startswith('not found: explored') and final.endswith(' s'), statuses
    area = float(final.split('explored ')[1].split(' m²')[0])
    assert 25.0 <= area <= 36.0  # the two rooms' floor, 6 x 6 m less the walls' margins
    assert pose.x > 0.0 or any('frontier' in s for s in statuses)


def test_explore_false_ends_not_found_after_the_turn_as_before():
    plan, control = two_rooms(), controller(enabled=False)
    control.follow(GO_TO, 'red ball', 0.0)
    statuses, pose = run(control, plan, START, 60.0)
    assert statuses[-1] == 'not found', statuses
    assert math.hypot(pose.x - START.x, pose.y - START.y) < 0.01  # it only turned


def test_without_odometry_there_is_no_map_and_no_exploring():
    plan, control = two_rooms(), controller()
    control.follow(GO_TO, 'red ball', 0.0)
    statuses, _ = run(control, plan, START, 60.0, odom_age=lambda now: math.inf)
    assert statuses[-1] == 'not found' and control.explorer.grid is None, statuses


def test_odometry_lost_while_exploring_holds_the_robot_and_then_gives_the_command_up():
    plan, control = two_rooms(), controller()
    control.follow(GO_TO, 'red ball', 0.0)
    explored_at = []

    def odom_age(now):  # fresh until exploring has begun, then silent
        if control.explorer.run.started is not None and not explored_at:
            explored_at.append(now)
        return 0.0 if not explored_at or now < explored_at[0] + 1.0 else now - explored_at[0]

    statuses, _ = run(control, plan, START, 60.0, odom_age=odom_age)
    assert 'stopped: stale odometry' in statuses
    assert statuses[-1] == 'stopped: input lost', statuses


def test_a_thing_seen_before_is_gone_back_to_first():
    plan, control = two_rooms(), controller()
    control.follow(GO_TO, 'red ball', 0.0)
    statuses, pose = run(control, plan, START, 150.0)
    assert statuses[-1] == 'arrived'
    seen = control.sightings.recall('red ball')
    assert seen is not None and math.hypot(seen.x - BALL[0], seen.y - BALL[1]) < 0.5
    # Back in the first room, facing away; asked again, it goes straight back.
    control.follow(GO_TO, 'red ball', 200.0)
    statuses, pose = run(control, plan, START, 150.0, start=200.0)
    assert statuses[0] == 'going to where the red ball was seen', statuses
    assert statuses[-1] == 'arrived'
    assert not any(status.startswith('exploring') for status in statuses)


def test_a_remembered_place_where_the_thing_is_no_longer_is_forgotten():
    plan, control = two_rooms(), controller()
    control.follow(GO_TO, 'red ball', 0.0)
    assert run(control, plan, START, 150.0)[0][-1] == 'arrived'
    control.follow(GO_TO, 'red ball', 200.0)  # the ball has been moved across its room
    elsewhere = (2.5, -2.5)
    statuses, _ = run(control, plan, START, 300.0, target=elsewhere, start=200.0)
    assert statuses[0] == 'going to where the red ball was seen'
    assert statuses[-1] == 'arrived', statuses
    seen = control.sightings.recall('red ball')
    assert math.hypot(seen.x - elsewhere[0], seen.y - elsewhere[1]) < 0.5


def test_the_grid_is_kept_across_commands_and_a_motion_never_explores():
    plan, control = two_rooms(), controller()
    control.follow(TURN, '', 0.0)
    statuses, _ = run(control, plan, START, 10.0)
    assert not any(status.startswith('exploring') for status in statuses)
    free = control.explorer.grid.free_area_m2()
    control.follow(GO_TO, 'red ball', 20.0)
    assert control.explorer.grid.free_area_m2() == free
    assert np.isfinite(free) and free > 5.0


def test_a_second_thing_is_looked_for_where_the_camera_has_not_looked_for_it():
    """The map is kept, what the camera looked at for the last command is not: a room the
    laser mapped through its doorway is still gone into for the next thing.
    """
    plan, control = two_rooms(), controller()
    control.follow(GO_TO, 'red ball', 0.0)
    statuses, pose = run(control, plan, START, 400.0, target=None)
    assert statuses[-1].startswith('not found: explored')
    box = (-2.6, 2.6) if pose.x > 0.0 else (2.6, -2.6)  # in the room it is not in now
    control.follow(GO_TO, 'blue box', 500.0)
    statuses, pose = run(control, plan, pose, 300.0, target=box, start=500.0)
    assert statuses[-1] == 'arrived', statuses
    assert math.hypot(pose.x - box[0], pose.y - box[1]) < 0.6


def test_time_held_by_the_e_stop_does_not_count_against_exploring():
    plan, control = two_rooms(), controller(max_time_s=40.0)
    control.follow(GO_TO, 'red ball', 0.0)
    # Pressed from 15 s to 75 s: longer than exploring may take.
    statuses, _ = run(control, plan, START, 300.0, estop=lambda now: 15.0 <= now < 75.0)
    assert 'stopped: e-stop' in statuses
    assert statuses[-1] == 'arrived', statuses


def test_odometry_that_jumps_forgets_the_map_and_the_places_remembered():
    plan, control = two_rooms(), controller()
    control.follow(GO_TO, 'red ball', 0.0)
    assert run(control, plan, START, 150.0)[0][-1] == 'arrived'
    assert control.sightings.recall('red ball') is not None
    control.tick(200.0, None, None, 0.0, odom=Pose2D(50.0, 0.0, 0.0), odom_age=0.0)
    control.tick(200.05, None, None, 0.0, odom=Pose2D(50.0, 0.0, 0.0), odom_age=0.0)
    assert control.sightings.recall('red ball') is None
    assert control.explorer.grid is None and control.odometry_jumped


def test_a_map_forgotten_while_exploring_is_drawn_again_and_the_search_goes_on():
    """The odometry changed its frame (the node calls forget_places) while exploring, on a
    tick with no new scan: the command does not end 'not found' for want of a map, and the
    time and distance it may still explore are not given back.
    """
    plan, control = two_rooms(), controller()
    control.follow(GO_TO, 'red ball', 0.0)
    statuses, pose = run(control, plan, START, 12.0)
    assert statuses[-1].startswith('exploring'), statuses
    started, travelled = control.explorer.run.started, control.explorer.run.travelled_m
    control.forget_places()
    assert (control.explorer.run.started, control.explorer.run.travelled_m) == (
        started, travelled)
    out = control.tick(12.0, plan.view(pose, BALL), 0.0, 0.0, scan=plan.scan(pose).points(),
                       scan_age=0.0, odom=pose, odom_age=0.0)
    assert not is_final(out.status) and out.linear == 0.0, out.status
    statuses, pose = run(control, plan, pose, 150.0, start=12.05)
    assert statuses[-1] == 'arrived', statuses


def test_the_value_map_paints_the_view_up_to_a_wall_surest_along_the_axis():
    plan, control = two_rooms(), controller()
    pose = Pose2D(-1.5, 0.0, 0.0)  # facing the wall between the rooms, the doorway ahead
    control.observe_scan(plan.scan(pose), pose, 0.0)
    values = control.explorer.values
    control.explorer.observe_view(pose, 0.3, math.radians(60.0))
    grid = control.explorer.grid
    ahead, side = grid.cell_of(-0.5, 0.0), grid.cell_of(-0.5, 0.5)
    assert values.value[ahead] == pytest.approx(0.3)
    assert values.confidence[ahead] > values.confidence[side] > 0.0
    assert values.value[grid.cell_of(0.8, 1.5)] != values.value[grid.cell_of(0.8, 1.5)]  # nan
    control.explorer.observe_view(pose, 0.1, math.radians(60.0))
    assert 0.1 < values.value[ahead] < 0.3  # views are averaged, not replaced


def test_crops_across_a_view_are_painted_each_along_its_own_bearing():
    """view_embeddings' rows are crops left to right (core.exploration.view_tiles): each
    row's match goes onto the floor its crop looked at, not the whole view's.
    """
    plan, control = two_rooms(), controller()
    pose = Pose2D(-1.5, 0.0, 0.0)
    control.observe_scan(plan.scan(pose), pose, 0.0)
    control.follow(GO_TO, 'red ball', 0.0, embedding=np.eye(8)[0])
    rows = np.stack([np.eye(8)[0], np.eye(8)[1], (np.eye(8)[0] + np.eye(8)[1]) / math.sqrt(2)])
    control.observe_view(rows.reshape(-1).tolist(), pose, 0.0)  # flat, as the message's data
    bearing = tile_bearings(3, math.radians(control.settings.camera_hfov_deg))[0][0]
    grid, values = control.explorer.grid, control.explorer.values

    def value_at(angle):
        return values.value[grid.cell_of(pose.x + 0.8 * math.cos(angle),
                                         pose.y + 0.8 * math.sin(angle))]
    assert value_at(bearing) == pytest.approx(1.0)  # the left crop: the match
    assert value_at(0.0) == pytest.approx(0.0)
    assert value_at(-bearing) == pytest.approx(1.0 / math.sqrt(2), abs=1e-6)
    control.observe_view(np.eye(8)[0].tolist(), pose, 0.0)  # the whole frame: one view
    assert value_at(0.0) > 0.0


def test_a_pose_far_off_the_grid_starts_a_new_grid_there():
    plan, control = two_rooms(), controller()
    control.observe_scan(plan.scan(START), START, 0.0)
    far = Pose2D(1e19, -1e19, 0.0)
    control.observe_scan(plan.scan(START), far, 0.0)
    assert control.explorer.grid.origin[0] > 1e18


def test_a_scan_of_very_many_beams_is_thinned_for_the_grid():
    plan, control = two_rooms(), controller()
    scan = plan.scan(START, beams=360)
    many = replace(scan, ranges=np.repeat(scan.ranges, 500), angle_increment=(
        scan.angle_increment / 500))
    control.observe_scan(many, START, 0.0)
    dense = control.explorer.grid.free_area_m2()
    assert dense > 5.0


def test_view_tiles_are_crops_across_the_frames_middle_left_to_right():
    from vla_ros.core.exploration import view_tiles

    rgb = np.random.default_rng(0).integers(0, 255, (120, 160, 3), dtype=np.uint8)
    tiles = view_tiles(rgb, 3)
    assert [tile.shape[:2] for tile in tiles] == [(53, 53), (53, 54), (53, 53)]
    assert np.array_equal(tiles[0], rgb[33:86, :53]) and np.array_equal(tiles[2],
                                                                        rgb[33:86, 107:])
    bearings, spans = tile_bearings(3, math.radians(90.0))  # a pinhole's: atan(x tan 45°)
    assert np.allclose(np.degrees(bearings), [33.69, 0.0, -33.69], atol=0.01)
    assert np.allclose(np.degrees(spans), [26.57, 36.87, 26.57], atol=0.01)
    assert np.degrees(spans).sum() == pytest.approx(90.0)
    assert np.array_equal(view_tiles(rgb, 1)[0], rgb)
    assert np.allclose(tile_bearings(1, 1.0), ([0.0], [1.0]))
