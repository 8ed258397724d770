"""action_policy's collision monitor through real rclpy and DDS: scans from publishers of
either reliability, a scan that stops coming, a malformed scan, and the zones shown to rviz;
the exploration's grid built from scans and odometry.
"""

import math
import re

from nav_msgs.msg import OccupancyGrid, Odometry
import numpy as np
import pytest
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import LaserScan
from std_msgs.msg import Float32MultiArray
from test_action_policy import (  # noqa: I100 - the sibling test module's helpers
    collect_status,
    data,
    Instructor,
    make_policy,
    SimulatedRobot,
)
from test_policy_safety import held_still
from visualization_msgs.msg import Marker, MarkerArray

from vla_ros.core.models import ModelCache
from vla_ros.fixtures.ros_graph import wait_until
from vla_ros.nodes.conversions import embeddings_msg
from vla_ros.nodes.lifecycle import THROTTLE_S
from vla_ros.nodes.qos import LATCHED

BEAMS = 360


@pytest.fixture(scope='module')
def models():
    return ModelCache()


def scan_message(wall_m=None, increment=2 * math.pi / BEAMS):
    """A full-circle scan, empty or with a wall `wall_m` ahead of the base."""
    msg = LaserScan(angle_min=-math.pi, angle_increment=increment, range_min=0.05,
                    range_max=8.0)
    msg.angle_max = msg.angle_min + increment * (BEAMS - 1)
    msg.header.frame_id = 'base_link'
    ranges = []
    for beam in range(BEAMS):
        angle = msg.angle_min + beam * increment
        ahead = math.cos(angle)
        hit = wall_m / ahead if wall_m is not None and ahead > 0.2 else math.inf
        ranges.append(hit if hit <= 8.0 else math.inf)
    msg.ranges = ranges
    return msg


class Scanner:
    """A laser driver: publishes `self.message` at 10 Hz while `on`."""

    def __init__(self, ros, reliability=ReliabilityPolicy.BEST_EFFORT):
        self.message, self.on = scan_message(), True
        self.clock = ros.probe.get_clock()
        self.publisher = ros.publisher(LaserScan, 'scan',
                                       QoSProfile(depth=1, reliability=reliability))
        ros.probe.create_timer(0.1, self.publish)

    def publish(self):
        if self.on:
            self.message.header.stamp = self.clock.now().to_msg()
            self.publisher.publish(self.message)


def moving_forward(ros, tiny_clip_dir, models, **parameters):
    node = make_policy(ros, tiny_clip_dir, models, require_camera_for_motion=False,
                       **{'intent.move_forward.duration_s': 0.0}, **parameters)
    robot = SimulatedRobot(ros, heading=math.pi)
    statuses = collect_status(ros)
    Instructor(ros, node).say('move forward')
    return node, robot, statuses


def test_a_wall_ahead_stops_forward_motion_from_a_scan_of_either_qos(ros, tiny_clip_dir,
                                                                      models):
    node, robot, statuses = moving_forward(ros, tiny_clip_dir, models)
    assert wait_until(lambda: robot.command[0] > 0.1, 10)
    # A best-effort driver (most lidars) and a reliable one (a bag replay) at once.
    best_effort, reliable = Scanner(ros), Scanner(ros, ReliabilityPolicy.RELIABLE)
    reliable.on = False
    best_effort.message = scan_message(wall_m=0.25)  # 5 cm from the 0.2 m footprint
    assert wait_until(lambda: any('stopped by an obstacle' in s for s in data(statuses)), 5)
    assert wait_until(lambda: robot.command == (0.0, 0.0), 2)
    assert held_still(robot, 0.5)
    best_effort.on, reliable.on = False, True
    reliable.message = scan_message(wall_m=0.5)  # in the slowdown zone now
    assert wait_until(lambda: 0.0 < robot.command[0] < 0.2, 5), robot.command
    reliable.message = scan_message()  # the way is clear
    assert wait_until(lambda: robot.command[0] >= 0.19, 5), robot.command


def test_a_required_scan_that_stops_coming_stops_the_robot(ros, tiny_clip_dir, models):
    node, robot, statuses = moving_forward(ros, tiny_clip_dir, models, require_scan='true')
    assert wait_until(lambda: 'stopped: stale scan' in data(statuses), 5), data(statuses)
    assert held_still(robot, 0.5)
    scanner = Scanner(ros)
    assert wait_until(lambda: robot.command[0] > 0.1, 5)
    scanner.on = False  # the lidar's cable came loose
    assert wait_until(lambda: robot.command == (0.0, 0.0), 1.5)
    assert data(statuses)[-1] == 'stopped: stale scan'


def test_a_malformed_scan_is_dropped_with_a_warning(ros, tiny_clip_dir, models, capfd):
    """Read from the node's own log on stderr: /rosout in a process that has held other
    nodes of the same name does not carry every node's lines.
    """
    node, robot, statuses = moving_forward(ros, tiny_clip_dir, models, require_scan='true')
    scanner = Scanner(ros)
    scanner.message = scan_message(increment=math.nan)
    assert wait_until(lambda: node.inputs.dropped.get('scan', 0) >= 1, 5)
    assert held_still(robot, 1.0)
    assert data(statuses)[-1] == 'stopped: stale scan'
    # Warned, and throttled: warnings at least THROTTLE_S apart by their own stamps (not by
    # how long the test took, which a loaded machine stretches).
    warning = r'\[WARN\] \[([0-9.]+)\] \[action_policy\]: dropped a scan message'
    stamps = [float(stamp) for stamp in re.findall(warning, capfd.readouterr().err)]
    assert stamps, 'no warning for the dropped scans'
    assert all(later - earlier >= 0.9 * THROTTLE_S for earlier, later in zip(stamps, stamps[1:]))


def test_a_flood_of_bad_scans_does_not_silence_a_bad_targets_warning(ros, tiny_clip_dir,
                                                                    models, capfd):
    """Each input's drops are said once per THROTTLE_S on their own: a scanner sending garbage
    at 10 Hz must not hide, for 2 s at a time, that the targets are garbage too.
    """
    from vla_ros.fixtures.targets import TargetPublisher

    node, _, _ = moving_forward(ros, tiny_clip_dir, models, require_scan='true')
    scanner = Scanner(ros)
    scanner.message = scan_message(increment=math.nan)
    assert wait_until(lambda: node.inputs.dropped.get('scan', 0) >= 3, 5)
    targets = TargetPublisher(ros.probe)
    targets.publish(ros.probe.get_clock().now().to_msg(), x=math.nan, confidence=0.8,
                    area=0.02)
    assert wait_until(lambda: node.inputs.dropped.get('target', 0) >= 1, 5)
    logged = capfd.readouterr().err
    assert 'dropped a scan message' in logged and 'dropped a target message' in logged


def test_collision_zones_are_shown_in_the_base_frame(ros, tiny_clip_dir, models):
    zones = ros.collect(MarkerArray, 'collision_zones')
    node, robot, statuses = moving_forward(ros, tiny_clip_dir, models,
                                           footprint='[[0.3, 0.2], [0.3, -0.2], '
                                                     '[-0.3, -0.2], [-0.3, 0.2]]')
    scanner = Scanner(ros)
    scanner.message = scan_message(wall_m=0.35)
    assert wait_until(lambda: any(m.markers and m.markers[1].color.r == 1.0 for m in zones), 5)
    shown = zones[-1].markers
    assert [m.ns for m in shown] == ['vla_footprint', 'vla_stop', 'vla_slowdown']
    assert all(m.header.frame_id == 'base_link' for m in shown)
    front = max(p.x for p in shown[1].points)
    assert math.isclose(front, 0.3 + node.values['stop_distance_m'], abs_tol=1e-6)


def test_an_optional_monitor_says_when_its_scans_turn_malformed(ros, tiny_clip_dir, models):
    from diagnostic_msgs.msg import DiagnosticArray

    diagnostics = ros.collect(DiagnosticArray, '/diagnostics')
    node, robot, statuses = moving_forward(ros, tiny_clip_dir, models, require_scan='false')
    scanner = Scanner(ros)
    scanner.message = scan_message(wall_m=0.5)
    assert wait_until(lambda: any('slowing for an obstacle' in s for s in data(statuses)), 5)
    scanner.message = scan_message(increment=math.nan)  # the driver starts sending garbage
    assert wait_until(lambda: data(statuses)[-1].endswith(
        '(scan stale: collision monitor off)'), 5), data(statuses)

    def warned():
        return any(status.name.endswith('action_policy: control') and status.level == b'\x01'
                   and 'collision monitor off' in status.message
                   for message in diagnostics for status in message.status)
    assert wait_until(warned, 5)


def mostly_invalid_scan(near_m=0.25):
    """360 beams: the 144 ahead read `near_m` (something close), the other 216 are NaN."""
    msg = scan_message()
    msg.ranges = [near_m if abs(msg.angle_min + beam * msg.angle_increment) < math.radians(72)
                  else math.nan for beam in range(BEAMS)]
    return msg


def test_valid_beams_are_used_however_many_others_are_nan(ros, tiny_clip_dir, models):
    """216 of 360 beams NaN once dropped the whole scan, and the robot drove on at 0.25 m/s
    with the monitor off, towards what the other 144 saw 0.25 m ahead.
    """
    node, robot, statuses = moving_forward(ros, tiny_clip_dir, models)
    scanner = Scanner(ros)
    assert wait_until(lambda: robot.command[0] > 0.1, 10)
    scanner.message = mostly_invalid_scan()
    assert wait_until(lambda: any('stopped by an obstacle' in s for s in data(statuses)), 5)
    assert held_still(robot, 0.5)
    scanner.message = mostly_invalid_scan(near_m=math.nan)  # all NaN: no scan at all
    assert wait_until(lambda: data(statuses)[-1] == 'stopped: scan lost', 5), data(statuses)
    assert held_still(robot, 0.5)
    # Blind ahead, clear behind: NaN is not free space, no forward motion.
    blind = scan_message()
    blind.ranges = [math.nan if math.cos(blind.angle_min + beam * blind.angle_increment) > 0
                    else 3.0 for beam in range(BEAMS)]
    scanner.message = blind
    assert wait_until(lambda: data(statuses)[-1] == 'stopped: scan unreadable ahead', 5), (
        data(statuses))
    assert held_still(robot, 0.5)
    scanner.message = scan_message()  # it reads again
    assert wait_until(lambda: robot.command[0] > 0.1, 5)


def test_by_default_a_scanner_that_stops_stops_the_robot(ros, tiny_clip_dir, models):
    """require_scan auto: required once a scan has come (the monitor was silently off)."""
    node, robot, statuses = moving_forward(ros, tiny_clip_dir, models)
    assert node.values['require_scan'] == 'auto'
    scanner = Scanner(ros)
    assert wait_until(lambda: robot.command[0] > 0.1, 10)
    scanner.on = False
    assert wait_until(lambda: robot.command == (0.0, 0.0), 1.5)
    assert data(statuses)[-1] == 'stopped: scan lost'
    scanner.on = True
    assert wait_until(lambda: robot.command[0] > 0.1, 5)


def test_by_default_a_robot_without_a_scanner_drives_and_is_told_once(ros, tiny_clip_dir,
                                                                      models, capfd):
    node, robot, statuses = moving_forward(ros, tiny_clip_dir, models)
    assert wait_until(lambda: robot.command[0] > 0.1, 10)
    assert wait_until(lambda: 'the collision monitor has no source' in capfd.readouterr().err,
                      5)
    wait_until(lambda: False, 3.5)
    assert 'the collision monitor has no source' not in capfd.readouterr().err  # once
    assert robot.command[0] > 0.1


def test_require_scan_written_as_a_yaml_bool_fails_at_start_and_says_to_quote_it(
        ros, tiny_clip_dir, models):
    with pytest.raises(ValueError, match="quote 'true' and 'false'"):
        make_policy(ros, tiny_clip_dir, models, require_scan=True)


def test_the_exploration_map_is_latched_in_the_odometry_frame(ros, tiny_clip_dir, models):
    """Scans at the odometry's pose build the grid; rviz, started later, still gets it."""
    node = make_policy(ros, tiny_clip_dir, models, map_publish_period_s=0.2, map_size_m=10.0)
    SimulatedRobot(ros, odometry=True, heading=0.0)
    scanner = Scanner(ros)
    scanner.message = scan_message(wall_m=2.0)
    assert wait_until(lambda: node.controller.explorer.grid is not None, 10)
    late = []  # a subscriber that comes after the grid was published, as rviz would
    assert wait_until(lambda: node.controller.explorer.grid.occupied().any(), 10)
    ros.probe.create_subscription(OccupancyGrid, 'exploration_map', late.append, LATCHED)
    assert wait_until(lambda: late, 10)
    grid = late[-1]
    assert grid.header.frame_id == 'odom'
    assert (grid.info.width, grid.info.height, round(grid.info.resolution, 3)) == (100, 100, 0.1)
    # The wall 2 m ahead of the robot at the odom origin, the floor before it, unknown behind.
    cells = np.array(grid.data, np.int8).reshape(100, 100)
    row = int((0.0 - grid.info.origin.position.y) / 0.1)
    at = [int((x - grid.info.origin.position.x) / 0.1) for x in (1.0, 2.0, 3.0)]
    assert cells[row, at[0]] < 50 and cells[row, at[0]] != -1
    assert cells[row, at[1]] > 50 and cells[row, at[2]] == -1
    markers = []
    ros.probe.create_subscription(MarkerArray, 'exploration_markers', markers.append, LATCHED)
    assert wait_until(lambda: markers, 10)
    assert markers[-1].markers[0].action == Marker.DELETEALL  # no sightings yet


def mapping_policy(ros, tiny_clip_dir, models):
    """(policy node, robot with odometry) once a wall 2 m ahead is on the policy's map."""
    node = make_policy(ros, tiny_clip_dir, models, map_publish_period_s=0.2, map_size_m=10.0)
    robot = SimulatedRobot(ros, odometry=True, heading=0.0)
    scanner = Scanner(ros)
    scanner.message = scan_message(wall_m=2.0)
    assert wait_until(lambda: node.controller.explorer.grid is not None
                      and node.controller.explorer.grid.occupied().any(), 10)
    return node, robot



def test_views_of_the_commands_model_go_onto_the_value_map_others_do_not(
        ros, tiny_clip_dir, models, capfd):
    """view_embeddings (camera_embedder's crops across a frame) are matched with the
    command's embedding on the map; those of another model mean nothing there: dropped, said.
    """
    node, robot = mapping_policy(ros, tiny_clip_dir, models)
    instructor = Instructor(ros, node)
    instructor.say('go to the object')
    assert wait_until(lambda: node.controller.wants_views, 10)
    views = ros.probe.create_publisher(Float32MultiArray, 'view_embeddings', 1)
    dim = instructor.encoder.encode_texts(['object']).shape[1]
    rows = np.random.default_rng(0).normal(size=(3, dim))

    def painted():
        return np.isfinite(node.controller.explorer.values.value).sum()
    views.publish(embeddings_msg(rows, 'some-other-clip'))
    assert wait_until(lambda: 'are not compared with commands' in capfd.readouterr().err, 10)
    short = embeddings_msg(rows, node.encoder.name)
    short.data = short.data[:-1]  # its layout says more than it holds
    views.publish(short)
    assert wait_until(lambda: 'does not fit its data' in capfd.readouterr().err, 10)
    assert painted() == 0
    views.publish(embeddings_msg(rows, node.encoder.name))
    assert wait_until(lambda: painted() > 0, 10)

def test_odometry_in_another_frame_starts_the_map_afresh_in_that_frame(
        ros, tiny_clip_dir, models, capfd):
    """A robot whose odometry changes frame (odom, then map from a localiser): the grid and
    the places remembered are in the old frame, so they are forgotten, and it is said.
    """
    node, robot = mapping_policy(ros, tiny_clip_dir, models)
    before, grids = node.controller.explorer.grid, []
    ros.probe.create_subscription(OccupancyGrid, 'exploration_map', grids.append, LATCHED)
    assert wait_until(lambda: grids, 10) and grids[-1].header.frame_id == 'odom'
    robot.odom_frame = 'map'
    assert wait_until(lambda: 'map and memory reset' in capfd.readouterr().err, 10)
    assert wait_until(lambda: grids[-1].header.frame_id == 'map', 10)
    after = node.controller.explorer.grid
    assert after is not None and after is not before  # drawn again, in the map frame
    # Once: the map frame's messages keep the new grid (the warning alone is throttled).
    assert not wait_until(lambda: node.controller.explorer.grid is not after, 1.0)


def test_a_second_odometry_publisher_in_another_frame_does_not_start_the_map_afresh(
        ros, tiny_clip_dir, models, capfd):
    """Two publishers on odom in two frames (a driver and a forgotten EKF): the frame in
    use is kept, the other's messages are dropped and said; the map is not reset at every
    message.
    """
    node, robot = mapping_policy(ros, tiny_clip_dir, models)
    before = node.controller.explorer.grid
    other = ros.publisher(Odometry, 'odom', 10)

    def publish_other():
        msg = Odometry()
        msg.header.stamp, msg.header.frame_id = robot.clock.now().to_msg(), 'wheel_odom'
        msg.child_frame_id, msg.pose.pose.orientation.w = 'base_link', 1.0
        other.publish(msg)

    ros.probe.create_timer(0.05, publish_other)
    assert wait_until(lambda: "in frame 'wheel_odom' while 'odom' still comes" in
                      capfd.readouterr().err, 10)
    assert not wait_until(lambda: node.controller.explorer.grid is not before, 2.0)
    assert node.inputs.odom_frame == 'odom'


def test_without_odometry_no_map_is_built(ros, tiny_clip_dir, models):
    node = make_policy(ros, tiny_clip_dir, models, map_publish_period_s=0.2)
    Scanner(ros)
    assert wait_until(lambda: node.inputs.scans.seen, 10)
    assert not wait_until(lambda: node.controller.explorer.grid is not None, 1.0)
