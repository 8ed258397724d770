"""The collision monitor, the footprint geometry and the avoidance (core.collision_monitor,
core.footprint, core.avoidance), on scans built here.

The property tests check the monitor against a reference written independently of it: the
footprint moved or turned in small steps, and a point-in-polygon test by ray crossing.
"""

import math

import numpy as np
import pytest

from vla_ros.core.avoidance import Avoidance, AvoidanceConfig, free_headings, run_span
from vla_ros.core.collision_monitor import monitor, MonitorConfig, Scan
from vla_ros.core.control import Controller, ControlSettings
from vla_ros.core.footprint import Footprint, travel_distance, turn_blocked, zone_outline
from vla_ros.core.policy import DEFAULT_INTENTS, TargetView
from vla_ros.fixtures import property_examples

RECTANGLE = Footprint(polygon=((0.3, 0.2), (-0.3, 0.2), (-0.3, -0.2), (0.3, -0.2)))


def crossing_inside(point, corners) -> bool:
    """Point in polygon by counting edge crossings of a ray to +x (the reference)."""
    x, y = point
    inside = False
    for (x1, y1), (x2, y2) in zip(corners, corners[1:] + corners[:1]):
        if (y1 > y) != (y2 > y) and x < x1 + (y - y1) * (x2 - x1) / (y2 - y1):
            inside = not inside
    return inside


def outline(footprint: Footprint):
    if footprint.polygon:
        return [tuple(corner) for corner in footprint.polygon]
    return [(footprint.radius * math.cos(a), footprint.radius * math.sin(a))
            for a in np.linspace(0, 2 * math.pi, 90, endpoint=False)]


def in_swept_zone(point, footprint: Footprint, distance: float, sign: float) -> bool:
    """Whether the footprint, moved up to `distance` along x (sign: forward or back) in 2 mm
    steps, covers the point (the reference stop zone).
    """
    corners = outline(footprint)
    for step in np.arange(0.0, distance + 1e-9, 0.004):
        shifted = [(x + sign * step, y) for x, y in corners]
        if crossing_inside(point, shifted):
            return True
    return False


def random_footprint(rng) -> Footprint:
    if rng.random() < 0.4:
        return Footprint(radius=float(rng.uniform(0.1, 0.5)))
    while True:  # the hull of random points about the origin, the origin well inside
        angles = np.sort(rng.uniform(0, 2 * math.pi, int(rng.integers(3, 9))))
        radii = rng.uniform(0.15, 0.6, angles.size)
        corners = tuple((float(r * math.cos(a)), float(r * math.sin(a)))
                        for r, a in zip(radii, angles))
        try:
            footprint = Footprint(polygon=corners)
        except ValueError:
            continue
        if crossing_inside((0.0, 0.0), list(corners)):
            return footprint


def test_scan_points_read_beams_as_rep_117_says_and_apply_the_laser_pose():
    scan = Scan(ranges=np.array([1.0, np.inf, np.nan, 0.01, 20.0, 2.0, -np.inf, 0.0]),
                angle_min=0.0, angle_increment=math.pi / 2, range_min=0.05, range_max=10.0,
                laser_x=0.1, laser_yaw=math.pi / 2)
    points = scan.points()
    # 1 m at 90 deg (yawed laser); 0.01 m is too close to measure: at range_min, 360 deg;
    # 2 m at 180 deg; -inf and 0.0 (too close) at range_min, at 270 and 360 deg; inf, NaN
    # and beyond range_max: nothing.
    np.testing.assert_allclose(points, [[0.1, 1.0], [0.15, 0.0], [-1.9, 0.0], [0.1, -0.05],
                                        [0.15, 0.0]], atol=1e-9)
    assert scan.readable_fraction == 7 / 8


def test_a_polygon_touching_a_point_turns_away_from_it_not_into_it():
    inside = np.array([[0.06, -0.199]])  # 1 mm inside the right edge of RECTANGLE
    for point in (inside, np.array([[0.06, -0.2]]), np.array([[0.06, -0.205]])):
        assert turn_blocked(point, RECTANGLE, -0.3)  # right: the edge sweeps over it
        assert not turn_blocked(point, RECTANGLE, 0.3)  # left: away from it


def test_property_a_polygon_on_an_arc_never_runs_over_a_point():
    """2 000 arcs of random polygons near random points: when the monitor lets an arc
    through, the footprint moved along it for one control period covers no point it did not
    cover before (checked by the reference, 20 sub-steps).
    """
    rng = np.random.default_rng(11)
    checked = 0
    config_base = dict(stop_distance_m=0.1, slowdown_distance_m=0.5)
    while checked < 2_000:
        footprint = random_footprint(rng)
        if not footprint.polygon:
            continue
        config = MonitorConfig(footprint=footprint, **config_base)
        corners = outline(footprint)
        edge = int(rng.integers(len(corners)))
        (x1, y1), (x2, y2) = corners[edge], corners[(edge + 1) % len(corners)]
        t, out = float(rng.uniform(0, 1)), float(rng.uniform(1.02, 1.3))
        point = (out * (x1 + t * (x2 - x1)), out * (y1 + t * (y2 - y1)))
        linear = float(rng.uniform(-0.5, 0.5))
        angular = float(rng.uniform(-1.0, 1.0))
        result = monitor(linear, angular, np.array([point]), config)
        dt = 0.05
        for step in np.linspace(0, dt, 21)[1:]:
            turn = result.angular * step
            if abs(result.angular) > 1e-9:
                x = result.linear / result.angular * math.sin(turn)
                y = result.linear / result.angular * (1 - math.cos(turn))
            else:
                x, y = result.linear * step, 0.0
            c, s = math.cos(turn), math.sin(turn)
            moved = [(x + c * a - s * b, y + s * a + c * b) for a, b in corners]
            assert not crossing_inside(point, moved), (footprint, point, linear, angular,
                                                       result)
        checked += 1


@pytest.mark.parametrize('polygon, problem', [
    (((0, 0), (1, 0)), 'at least 3'),
    (((1, 1), (-1, 1), (0, 0.5), (-1, -1), (1, -1)), 'convex'),
    (((1, 1), (2, 1), (2, 2)), 'inside'),
])
def test_bad_footprints_are_refused_with_the_reason(polygon, problem):
    with pytest.raises(ValueError, match=problem):
        Footprint(polygon=polygon)


def test_free_travel_of_a_circle_and_a_rectangle():
    ahead = np.array([[1.0, 0.0], [1.0, 0.5], [-0.5, 0.0]])
    assert travel_distance(ahead, Footprint(radius=0.2)) == pytest.approx(0.8)
    assert travel_distance(ahead, Footprint(radius=0.2), forward=False) == pytest.approx(0.3)
    assert travel_distance(ahead, RECTANGLE) == pytest.approx(0.7)
    assert travel_distance(np.array([[0.0, 1.0]]), RECTANGLE) == math.inf  # beside it


def said(result):
    return result.linear, result.angular, result.state


def test_monitor_stops_slows_and_passes():
    config = MonitorConfig(footprint=Footprint(radius=0.2), stop_distance_m=0.1,
                           slowdown_distance_m=0.5, slowdown_min_ratio=0.3)
    near, mid, far = (np.array([[x, 0.0]]) for x in (0.25, 0.5, 2.0))
    assert said(monitor(0.4, 0.3, near, config)) == (0.0, 0.3, 'stop')
    slowed = monitor(0.4, 0.0, mid, config)
    assert slowed.state == 'slowdown' and 0.3 * 0.4 < slowed.linear < 0.4
    assert said(monitor(0.4, 0.0, far, config)) == (0.4, 0.0, 'clear')
    assert monitor(-0.2, 0.0, near, config).linear == -0.2  # backing away from it
    assert monitor(0.4, 0.0, None, config).state == 'no scan'


def test_turning_in_place_is_checked_for_a_polygon_only():
    corner_side = np.array([[0.33, 0.1]])  # just ahead of the front edge, left of centre
    assert turn_blocked(corner_side, RECTANGLE, -0.3)  # turning right, the left corner hits it
    assert not turn_blocked(corner_side, RECTANGLE, 0.3)  # turning left, it moves away
    assert not turn_blocked(np.array([[0.21, 0.0]]), Footprint(radius=0.2), 3.0)
    config = MonitorConfig(footprint=RECTANGLE)
    assert monitor(0.0, -0.5, corner_side, config).angular == 0.0
    assert monitor(0.0, 0.5, corner_side, config).angular == 0.5


def test_property_nothing_in_the_stop_zone_is_ever_driven_towards():
    """2 500 generated cases (times VLA_ROS_PROPERTY_SCALE): random footprints, zones,
    requests and clutter, with one point inside the stop zone in the direction of travel (by
    the reference): the output never moves towards it, and never goes faster or the other way
    than requested.
    """
    rng = np.random.default_rng(2026)
    checked = 0
    cases = property_examples(2_500)
    while checked < cases:
        footprint = random_footprint(rng)
        stop = float(rng.uniform(0.0, 0.4))
        config = MonitorConfig(footprint=footprint, stop_distance_m=stop,
                               slowdown_distance_m=stop + float(rng.uniform(0.0, 1.0)),
                               slowdown_min_ratio=float(rng.uniform(0.05, 1.0)))
        sign = 1.0 if rng.random() < 0.5 else -1.0
        corners = np.array(outline(footprint))
        lateral = float(rng.uniform(corners[:, 1].min(), corners[:, 1].max()))
        edge = footprint.front(np.array([lateral]), forward=sign > 0)[0]
        if not math.isfinite(edge):
            continue
        depth = float(rng.uniform(-0.05, stop))  # inside the footprint already, or ahead
        point = (edge + sign * depth, lateral)
        if not (point[0] * sign > 0 and in_swept_zone(point, footprint, stop, sign)):
            continue  # the reference does not put it in the zone ahead: not a case
        clutter = rng.uniform(-3, 3, (int(rng.integers(0, 50)), 2))
        points = np.vstack((clutter, [point]))
        rng.shuffle(points)
        linear = sign * float(rng.uniform(0.01, 2.0))
        angular = float(rng.uniform(-2.0, 2.0))
        result = monitor(linear, angular, points, config)
        assert result.linear * sign <= 0.0, (footprint, config, point, linear, result)
        assert abs(result.linear) <= abs(linear) and result.linear * linear >= 0.0
        assert abs(result.angular) <= abs(angular) and result.angular * angular >= 0.0
        checked += 1


def test_property_a_polygon_never_turns_into_a_point():
    """1 000 cases: a point just outside a polygon footprint that turning in place within
    stop_turn_rad would sweep (by the reference) stops the turn that way.
    """
    rng = np.random.default_rng(7)
    checked = 0
    while checked < 1_000:
        footprint = random_footprint(rng)
        if not footprint.polygon:
            continue
        config = MonitorConfig(footprint=footprint, stop_turn_rad=float(rng.uniform(0.05, 0.6)))
        direction = 1.0 if rng.random() < 0.5 else -1.0
        corners = outline(footprint)
        # a boundary point pushed out a little, then turned ahead of the sweep
        edge = int(rng.integers(len(corners)))
        (x1, y1), (x2, y2) = corners[edge], corners[(edge + 1) % len(corners)]
        t, out = float(rng.uniform(0, 1)), float(rng.uniform(1.001, 1.1))
        x, y = out * (x1 + t * (x2 - x1)), out * (y1 + t * (y2 - y1))
        turn = direction * float(rng.uniform(0.0, config.stop_turn_rad))
        c, s = math.cos(turn), math.sin(turn)
        point = (c * x - s * y, s * x + c * y)
        if crossing_inside(point, corners):
            continue  # already inside: no turn can be judged by sweeping
        swept = False
        for angle in np.linspace(0, direction * config.stop_turn_rad, 100)[1:]:
            c, s = math.cos(angle), math.sin(angle)
            if crossing_inside(point, [(c * x - s * y, s * x + c * y) for x, y in corners]):
                swept = True
                break
        if not swept:
            continue
        result = monitor(0.0, direction * float(rng.uniform(0.05, 2.0)),
                         np.array([point]), config)
        assert result.angular == 0.0, (footprint, point, direction)
        checked += 1


def test_zone_outlines_hold_the_footprint_moved_by_the_distance():
    zone = zone_outline(Footprint(radius=0.2), 0.5)
    assert zone[:, 0].max() == pytest.approx(0.7) and zone[:, 0].min() == pytest.approx(-0.2)
    back = zone_outline(RECTANGLE, 0.1, forward=False)
    assert back[:, 0].min() == pytest.approx(-0.4) and back[:, 0].max() == pytest.approx(0.3)


def test_free_headings_see_round_an_obstacle():
    wall = np.array([[1.0, y] for y in np.linspace(-0.3, 0.3, 13)])
    headings = np.radians([0.0, 45.0, -45.0, 90.0])
    free = free_headings(wall, 0.25, headings)
    assert free[0] == pytest.approx(0.75, abs=0.01)
    assert free[1] > 1.0 and free[2] > 1.0 and free[3] == math.inf


def test_the_detour_leaves_the_goal_line_and_keeps_its_side():
    avoidance = Avoidance(AvoidanceConfig(), Footprint(radius=0.2))
    wall = np.array([[0.8, y] for y in np.linspace(-0.4, 0.4, 17)])
    avoidance.see_goal(0.0, wall, floor_range=(2.0, 2.0))
    assert not avoidance.path_clear(wall)
    linear, angular, blocked = avoidance.steer(wall, now=0.0)
    assert not blocked and angular != 0.0
    side = avoidance.side
    for step in range(10):  # the same obstacle a moment later: still the same way round
        avoidance.steer(wall, now=0.1 * step)
        assert avoidance.side == side
    # the target's own return is not an obstacle
    target = np.array([[2.0, y] for y in np.linspace(-0.2, 0.2, 9)])
    assert avoidance.path_clear(target)


def test_the_goal_is_carried_by_the_commanded_motion():
    avoidance = Avoidance(AvoidanceConfig(), Footprint(radius=0.2))
    avoidance.see_goal(0.0, None, floor_range=(2.0, 2.0))
    avoidance.move(1.0, 0.0, 0.5)  # half a metre closer
    assert avoidance.goal == pytest.approx((1.5, 0.0))
    avoidance.move(0.0, math.pi / 2, 1.0)  # turned left 90 degrees: now on the right
    assert avoidance.goal == pytest.approx((0.0, -1.5), abs=1e-9)


# The controller: the same objects as the node and the evaluator ----------------------------
def go_to_controller(**changes):
    changes = {'camera_mount': (0.16, 0.28, math.radians(12.0)), 'camera_vfov_deg': 58.0,
               **changes}
    settings = ControlSettings(camera_hfov_deg=70.0, **changes)
    controller = Controller(None, settings)
    go_to = next(intent for intent in DEFAULT_INTENTS if intent.name == 'go_to')
    controller.follow(go_to, 'red ball', 0.0)
    return controller


FAR = TargetView(0.0, -0.1, 0.9, 0.02, 0.0)  # small, its bottom at mid-image: 1.5 m away


def drive(controller, points, seconds, view=FAR,
          start=0.0):
    outputs = []
    for tick in range(int(seconds * 20)):
        now = start + tick / 20
        outputs.append(controller.tick(now, view, 0.0, 0.0, scan=points,
                                       scan_age=None if points is None else 0.0))
    return outputs


def test_go_to_goes_round_an_obstacle_in_front():
    controller = go_to_controller()
    wall = np.array([[0.7, y] for y in np.linspace(-0.3, 0.3, 13)])
    outputs = drive(controller, wall, 2.0)
    assert any('going around an obstacle' in output.status for output in outputs)
    assert all(monitor(o.linear, 0.0, wall, controller.settings.monitor).linear == o.linear
               for o in outputs)  # nothing past the monitor


def test_a_required_scan_that_is_missing_or_stale_stops_motion():
    controller = go_to_controller(monitor=MonitorConfig(require_scan='true'))
    view = FAR
    for tick in range(40):
        output = controller.tick(tick / 20, view, 0.0, 0.0, scan=None, scan_age=None)
        assert (output.linear, output.angular) == (0.0, 0.0)
    assert output.status == 'stopped: stale scan'
    output = controller.tick(2.0, view, 0.0, 0.0, scan=np.zeros((0, 2)), scan_age=5.0)
    assert output.status == 'stopped: stale scan' and output.linear == 0.0


def test_an_optional_scan_that_went_stale_says_the_monitor_is_off():
    controller = go_to_controller(monitor=MonitorConfig(require_scan='false'))
    drive(controller, np.zeros((0, 2)), 1.0)
    output = controller.tick(1.0, FAR, 0.0, 0.0,
                             scan=np.zeros((0, 2)), scan_age=3.0)
    assert output.status.endswith('(scan stale: collision monitor off)')


def test_by_default_a_scan_is_required_once_one_has_come():
    """require_scan auto: a scanner that stops stops the robot; none at all: it drives."""
    controller = go_to_controller()
    assert drive(controller, None, 1.0)[-1].linear > 0.0  # no scanner: unmonitored
    drive(controller, np.zeros((0, 2)), 1.0, start=1.0)
    lost = controller.tick(2.0, FAR, 0.0, 0.0, scan=np.zeros((0, 2)), scan_age=3.0)
    assert (lost.linear, lost.angular, lost.status) == (0.0, 0.0, 'stopped: scan lost')


def test_walled_in_go_to_ends_blocked_and_stays_still():
    controller = go_to_controller(avoidance=AvoidanceConfig(blocked_timeout_s=3.0))
    ring = np.array([[0.3 * math.cos(a), 0.3 * math.sin(a)]
                     for a in np.linspace(0, 2 * math.pi, 120, endpoint=False)])
    outputs = drive(controller, ring, 5.0)
    assert outputs[-1].status == 'blocked'
    assert all(o.linear == 0.0 for o in outputs)
    later = drive(controller, np.zeros((0, 2)), 1.0, start=5.0)  # the way opens: still final
    assert all((o.linear, o.angular, o.status) == (0.0, 0.0, 'blocked') for o in later)


def test_the_target_in_the_stop_zone_is_an_arrival():
    controller = go_to_controller()
    # Near, but short of the camera's own arrival rules (bottom 0.7, area 0.5).
    view = TargetView(0.0, 0.3, 0.9, 0.2, 0.65)
    target = np.array([[0.28, y] for y in np.linspace(-0.1, 0.1, 5)])  # in the stop zone
    outputs = drive(controller, target, 1.0, view=view)
    assert outputs[-1].status == 'arrived'
    assert all(o.linear == 0.0 for o in outputs)
    # A far target (bottom above mid-image) behind that obstacle: no arrival.
    controller = go_to_controller()
    outputs = drive(controller, np.array([[0.28, 0.0]]), 1.0, view=TargetView(
        0.0, -0.3, 0.9, 0.01, -0.2))
    assert 'arrived' not in [o.status for o in outputs]


def test_a_blinded_scanner_is_an_obstacle_or_no_scan_never_open_space():
    config = MonitorConfig(footprint=Footprint(radius=0.2))
    too_close = Scan(ranges=np.full(8, -np.inf), angle_min=-math.pi,
                     angle_increment=math.pi / 4, range_min=0.1, range_max=8.0)
    assert monitor(0.3, 0.0, too_close.points(), config).linear == 0.0
    all_nan = Scan(ranges=np.full(8, np.nan), angle_min=-math.pi,
                   angle_increment=math.pi / 4, range_min=0.1, range_max=8.0)
    assert all_nan.readable_fraction == 0.0  # the node drops it: no scan


def image_row(distance: float, height: float = 0.0) -> float:
    """The image row (1 = bottom edge) at which go_to_controller's camera sees a point
    `distance` ahead of base_link and `height` above the floor.
    """
    below = math.atan((0.28 - height) / (distance - 0.16)) - math.radians(12.0)
    return math.tan(below) / math.tan(math.radians(29.0))


def arc(distance: float, half_width: float) -> np.ndarray:
    return np.array([[distance, y] for y in np.linspace(-half_width, half_width, 9)])


def test_a_mask_ending_above_the_targets_foot_does_not_make_it_an_obstacle():
    """A coarse or partial mask's lowest row lies above the object's: its floor distance is
    too long, and the target's own scan return, nearer, would be an obstacle in the way.
    """
    controller = go_to_controller(camera_bottom_tolerance=0.4)
    partial = TargetView(0.0, -0.2, 0.9, 0.03, image_row(1.0) - 0.2)
    assert controller._floor_range(partial)[1] > 1.3  # the camera alone: far beyond it
    outputs = drive(controller, arc(1.0, 0.06), 1.0, view=partial)
    assert not any('going around' in output.status for output in outputs)
    assert outputs[-1].linear > 0.0
    assert math.hypot(*controller.avoidance.goal) == pytest.approx(1.0, abs=0.1)


def test_a_box_right_in_front_of_a_large_target_is_no_arrival():
    """A large target whose foot the camera sees 1.3 m away; a low box 0.27 m ahead, under
    the camera's view, in its direction: the box is gone round, never an arrival.
    """
    controller = go_to_controller(camera_bottom_tolerance=0.4)
    large = TargetView(0.0, -0.3, 0.9, 0.2, image_row(1.3))
    outputs = drive(controller, np.vstack([arc(0.27, 0.2), arc(1.3, 0.3)]), 2.0, view=large)
    assert 'arrived' not in [output.status for output in outputs]
    assert math.hypot(*controller.avoidance.goal) == pytest.approx(1.3, abs=0.1)


@pytest.mark.parametrize('bearing_deg', [-30.0, -20.0, 0.0, 20.0, 30.0])
def test_an_off_centre_target_is_ranged_along_the_cameras_ray(bearing_deg):
    """The camera's floor range is a forward distance and its bearing is the camera's: the
    target's own return off to the side is found, and the goal is put on it.
    """
    controller = go_to_controller(camera_bottom_tolerance=0.4)
    camera_x, bearing = 0.16, math.radians(bearing_deg)
    ray = 0.75  # from the camera to the target's front
    target = np.array([camera_x + ray * math.cos(bearing), ray * math.sin(bearing)])
    image_x = -math.tan(bearing) / math.tan(math.radians(35.0))  # hfov 70
    view = TargetView(image_x, -0.2, 0.9, 0.03, image_row(target[0]) - 0.1)
    scan = target + np.array([[0.0, d] for d in np.linspace(-0.04, 0.04, 5)])
    assert controller._bearing(view) == pytest.approx(bearing)
    controller.avoidance.see_goal(bearing, scan, controller._floor_range(view), camera_x)
    assert controller.avoidance.goal == pytest.approx(tuple(target), abs=0.03)


def test_a_low_box_hiding_the_targets_foot_is_gone_around_not_taken_for_it():
    """The target 1.6 m away behind a 0.15 m box: its lowest visible row is the box's top
    edge, and the box's return is the nearest in its direction. Further away, the camera's
    floor range allows the box to be the target (camera_bottom_tolerance); from 0.6 m on it
    does not (the robot slows for the box meanwhile).
    """
    controller = go_to_controller(camera_bottom_tolerance=0.4)
    hidden = TargetView(0.0, -0.3, 0.9, 0.01, image_row(0.6, height=0.15))
    scan = np.vstack([arc(0.6, 0.2), arc(1.6, 0.06)])
    outputs = drive(controller, scan, 2.0, view=hidden)
    assert any('going around an obstacle' in output.status for output in outputs)
    assert 'arrived' not in [output.status for output in outputs]


def test_without_a_camera_mount_an_obstacle_on_the_way_is_no_arrival():
    """The goal's range then comes from the scan (the box in front of the target): being
    stopped by that box must not end the command as arrived.
    """
    controller = go_to_controller(camera_mount=())
    box = np.array([[0.6, y] for y in np.linspace(-0.15, 0.15, 7)])
    outputs = drive(controller, box, 10.0)
    assert 'arrived' not in [o.status for o in outputs]


@pytest.mark.parametrize('name, value, problem', [
    ('laser_pose', 'nan 0 0', 'NaN or infinity'),
    ('laser_pose', '0 0 400', 'degrees'),
    ('camera_mount', 'nan 0.28 12', 'NaN or infinity'),
    ('footprint', '[[0.3, 0.2], [-0.3, 0.2], [0.0, 0.0], [-0.3, -0.2], [0.3, -0.2]]', 'convex'),
])
def test_bad_obstacle_parameters_fail_with_what_to_fix(name, value, problem):
    from vla_ros.core import config

    values = config.check_values('action_policy', {name: value})
    with pytest.raises(config.ConfigError, match=problem):
        ControlSettings.from_values(values) if name != 'laser_pose' else config.laser_pose(
            values)


def test_a_footprint_written_closed_or_with_points_on_an_edge_is_taken():
    closed = Footprint(polygon=((0.3, 0.2), (0.3, 0.0), (0.3, -0.2), (-0.3, -0.2),
                                (-0.3, 0.2), (0.3, 0.2)))
    assert len(closed.corners) == 4
    assert travel_distance(np.array([[1.0, 0.0]]), closed) == pytest.approx(0.7)


def test_a_detour_longer_than_the_search_timeout_is_no_failed_search():
    from vla_ros.core.policy import ServoConfig

    controller = go_to_controller(servo=ServoConfig(search_timeout_s=1.0, lost_hold_s=0.2))
    wall = np.array([[0.7, y] for y in np.linspace(-0.3, 0.3, 13)])
    seen = drive(controller, wall, 0.6)  # tracked, then the wall is in the way
    unseen = drive(controller, wall, 4.0, view=TargetView(0.0, 0.0, 0.0, 0.0), start=0.6)
    statuses = [o.status for o in seen + unseen]
    assert any('going around an obstacle' in status for status in statuses)
    assert 'not found' not in statuses


UNSEEN = TargetView(0.0, 0.0, 0.0, 0.0)


def test_a_target_lost_on_the_way_is_faced_then_searched_for_not_stared_at():
    """Lost where the scan shows nothing near the goal: the robot turns to where the goal
    is, and then the policy's own search turns it round (seen in the simulator: the robot
    faced a far goal for the whole search timeout while its target stood beside it).
    """
    controller = go_to_controller()
    drive(controller, np.zeros((0, 2)), 1.0)
    controller.avoidance.goal = (1.0, 0.8)  # where the target went out of sight, to the left
    outputs = drive(controller, np.zeros((0, 2)), 6.0, view=UNSEEN, start=1.0)
    searching = [o for o in outputs if o.status.startswith('searching')]
    assert searching and all(o.linear == 0.0 for o in searching)
    turned = sum(o.angular for o in searching) / 20
    assert turned > math.radians(38.7) + 0.5  # past the goal's bearing: searching on
    assert outputs[-1].status.startswith('searching')


def test_a_target_lost_within_reach_where_the_scan_still_shows_it_is_an_arrival():
    """Close in, the camera loses its target (under or across the whole view). Where the
    scan shows something at the goal the camera ranged, inside the monitor's stop zone
    straight ahead: arrived. Nothing at the goal, something beside it, or the goal still
    beyond the stop zone: no arrival, the search goes on.
    """
    # Under the camera's own arrival rules (near_area, arrive_bottom).
    close = TargetView(0.0, 0.3, 0.9, 0.1, image_row(0.6))
    beside = np.array([[0.28, y] for y in np.linspace(0.25, 0.35, 5)])
    for driven, scan, expected in ((1.3, arc(0.28, 0.1), True),  # blind the last 0.32 m
                                   (1.3, np.zeros((0, 2)), False),
                                   (1.3, beside, False),
                                   (0.0, arc(0.6, 0.1), False)):  # lost 0.4 m short
        controller = go_to_controller()
        drive(controller, arc(0.6, 0.1), 0.4, view=close)
        controller.avoidance.move(0.25, 0.0, driven)  # the goal carried along
        outputs = drive(controller, scan, 4.0, view=UNSEEN, start=0.4)
        statuses = [o.status for o in outputs]
        assert ('arrived' in statuses) == expected, (driven, statuses[-1])
        if expected:
            assert all(o.linear == 0.0 for o in outputs[statuses.index('arrived'):])


def test_a_return_once_taken_for_the_target_is_not_kept_against_the_camera():
    """Each sighting ranges the target afresh. Keeping a return taken once (a box the
    camera's range allowed for one frame) made the robot drive to that box and call it an
    arrival, a metre short of its target (seen in the simulator: seed 1, cluttered).
    """
    avoidance = go_to_controller().avoidance
    box = arc(1.0, 0.2)
    avoidance.see_goal(0.0, box, floor_range=(0.95, 1.05))
    assert math.hypot(*avoidance.goal) == pytest.approx(1.0, abs=0.02)
    avoidance.see_goal(0.0, box, floor_range=(1.9, 1.9))  # the target is further
    assert math.hypot(*avoidance.goal) == pytest.approx(1.9, abs=0.02)


def face(distance: float, half_width: float) -> np.ndarray:
    """A flat face `distance` ahead, `half_width` either side, as a 1-degree scan from
    base_link sees it.
    """
    edge = math.degrees(math.atan(half_width / distance))
    angles = np.radians(np.arange(-math.floor(edge), math.floor(edge) + 1.0))
    return np.column_stack([np.full(angles.size, distance), distance * np.tan(angles)])


def seen_at(distance: float, half_width: float, bottom_distance: float, area=0.05):
    """go_to_controller's view of an object `half_width` wide either side, its front
    `distance` ahead, its mask ending where the floor is `bottom_distance` ahead.
    """
    half_angle = math.atan(half_width / (distance - 0.16))
    width = math.tan(half_angle) / math.tan(math.radians(35.0))
    return TargetView(0.0, -0.2, 0.9, area, image_row(bottom_distance), width=width)


def test_the_targets_run_of_returns_ranges_it_when_its_mask_ends_far_above_its_foot():
    """Seen in the simulator (seed 7): a close white capsule's mask ends mid-image, a metre
    beyond it on the floor. Its own returns span the bearings its mask spans: that is the
    target, not an obstacle to go round.
    """
    controller = go_to_controller()
    outputs = drive(controller, face(0.5, 0.08), 1.0, view=seen_at(0.5, 0.08, 1.6))
    assert not any('going around' in output.status for output in outputs)
    assert math.hypot(*controller.avoidance.goal) < 0.55


@pytest.mark.parametrize('box_half_width', [0.2, 0.02])
def test_a_box_in_front_wider_or_much_narrower_than_the_target_is_not_taken_for_it(
        box_half_width):
    """The target 0.7 m away, 0.15 m wide either side (its mask spans 31 degrees); a box
    0.4 m ahead in its direction hides the part of it behind: the box's run of returns
    does not span the target's mask, so the camera's range stands and the box is an
    obstacle. (A box whose bearings come within SPAN_TOLERANCE of the mask's would pass.)
    """
    controller = go_to_controller()
    box, target = face(0.4, box_half_width), face(0.7, 0.15)
    hidden = np.abs(target[:, 1] / target[:, 0]) <= box_half_width / 0.4  # from the laser
    view = seen_at(0.7, 0.15, 0.7)
    controller.avoidance.see_goal(0.0, np.vstack([box, target[~hidden]]),
                                  controller._floor_range(view), 0.16, controller._span(view))
    assert math.hypot(*controller.avoidance.goal) == pytest.approx(0.7, abs=0.03)
    assert not controller.avoidance.matched


def test_a_run_of_returns_is_not_cut_by_the_background_showing_between_its_own():
    """Seen from the camera, returns of a wall far behind fall between the target's own
    near its edges (the laser sees from elsewhere): they do not end its run.
    """
    target = np.radians(np.arange(-17.0, 15.0, 1.5))
    wall = np.radians(np.arange(-16.7, 15.0, 2.0))
    angles = np.concatenate([target, wall])
    ranges = np.concatenate([np.full(target.size, 0.3), np.full(wall.size, 3.0)])
    low, high, returns = run_span(angles, ranges, 5)
    assert (math.degrees(low), math.degrees(high)) == pytest.approx((-17.0, 14.5))
    assert returns == target.size


def test_a_goal_its_run_matched_stays_through_a_frame_whose_mask_does_not_match():
    """Frame to frame a close target's mask comes out wider, or cut: the goal its run of
    returns matched stays while the scan shows it on the ray (seen in the simulator, seed
    15: the goal jumped a metre behind the target, which became an obstacle). A goal
    matched once does not stay where the scan shows nothing any more.
    """
    controller = go_to_controller()
    avoidance, target = controller.avoidance, face(0.5, 0.08)
    view = seen_at(0.5, 0.08, 1.6)
    floor, span = controller._floor_range(view), controller._span(view)
    avoidance.see_goal(0.0, target, floor, 0.16, span)
    assert avoidance.matched and math.hypot(*avoidance.goal) < 0.55
    wider = (2 * span[0], 2 * span[1])
    avoidance.see_goal(0.0, target, floor, 0.16, wider)
    assert avoidance.matched and math.hypot(*avoidance.goal) < 0.55
    elsewhere = face(1.0, 0.1) + np.array([0.0, 0.8])  # the scan shows nothing at the goal
    avoidance.see_goal(0.0, elsewhere, floor, 0.16, wider)
    assert not avoidance.matched and math.hypot(*avoidance.goal) == pytest.approx(1.6, abs=0.05)
    avoidance.see_goal(0.0, target, floor, 0.16, span)  # kept for a while, not for ever
    for _ in range(40):
        avoidance.see_goal(0.0, target, floor, 0.16, wider)
    assert math.hypot(*avoidance.goal) == pytest.approx(1.6, abs=0.05)


@pytest.mark.parametrize('obstacle_half_width', [0.075, 0.015])
def test_a_far_targets_narrow_mask_is_not_matched_by_a_box_or_pole_in_front(
        obstacle_half_width):
    """A target 0.3 m wide, 1.6 m away: its mask spans 12 degrees, which a 0.15 m box at
    0.9 m spans too (found in review: the robot arrived at the box). So narrow masks are not
    matched: the camera's range stands.
    """
    controller = go_to_controller()
    view = seen_at(1.6, 0.15, 1.6)
    scan = np.vstack([face(0.9, obstacle_half_width), face(1.6, 0.15)])
    controller.avoidance.see_goal(0.0, scan, controller._floor_range(view), 0.16,
                                  controller._span(view))
    assert math.hypot(*controller.avoidance.goal) == pytest.approx(1.6, abs=0.06)
