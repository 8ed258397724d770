"""sim_bridge in-process: cmd_vel drives the base; camera, camera_info, odom and /clock agree."""

import math

from geometry_msgs.msg import Twist
from nav_msgs.msg import Odometry
from rclpy.parameter import Parameter
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CameraInfo, Image

from vla_ros.fixtures.ros_graph import wait_until
from vla_ros.nodes.sim_bridge import SimBridge, stamp_of


def seconds(stamp):
    return stamp.sec + stamp.nanosec * 1e-9


def test_bridge_moves_the_base_and_publishes_consistent_stamps(ros):
    bridge = ros.add(SimBridge(context=ros.context, parameter_overrides=[
        Parameter('seed', value=3), Parameter('width', value=64), Parameter('height', value=48)]))
    images = ros.collect(Image, 'camera/image_raw')
    infos = ros.collect(CameraInfo, 'camera/camera_info')
    odometry = ros.collect(Odometry, 'odom')
    clocks = ros.collect(Clock, '/clock')
    commands = ros.publisher(Twist, 'cmd_vel')
    assert ros.wait_for_subscribers(commands)
    start = bridge.world.pose()
    drive = Twist()
    drive.linear.x = 0.4
    began = bridge.world.time

    def driven_one_second():
        commands.publish(drive)
        return bridge.world.time - began >= 1.0
    assert wait_until(driven_one_second, 20, 0.05)
    moved = math.hypot(bridge.world.pose().x - start.x, bridge.world.pose().y - start.y)
    assert 0.3 <= moved <= 0.5  # 0.4 m/s for about a second of simulated time
    assert wait_until(lambda: images and infos and odometry and clocks)
    image, info = images[-1], infos[-1]
    assert (image.encoding, image.width, image.height) == ('rgb8', 64, 48)
    assert info.header.stamp == image.header.stamp and info.width == 64 and info.k[8] == 1.0
    clock_times = [seconds(clock.clock) for clock in clocks]
    assert clock_times == sorted(clock_times)
    assert seconds(image.header.stamp) <= clock_times[-1]
    assert any(abs(seconds(image.header.stamp) - t) < 1e-6 for t in clock_times)
    assert odometry[-1].twist.twist.linear.x > 0.3 or moved > 0.3
    # No more cmd_vel: the base stops by itself after cmd_timeout_s.
    stop_at = bridge.world.time
    assert wait_until(lambda: bridge.world.time - stop_at > 1.0, 20)
    assert bridge.world.velocity()[0] == 0.0 or abs(bridge.world.velocity()[0]) < 1e-3


def test_clock_stamps_never_go_back():
    """Physics time summed in 0.02 s steps lands just under whole seconds (2.9999999999998):
    the stamp must still say 3 s, not 2 s (a 1 s jump back on /clock every few seconds).
    """
    seconds, previous = 0.0, -1.0
    for _ in range(50_000):
        seconds += 0.02
        stamp = stamp_of(seconds)
        value = stamp.sec + stamp.nanosec * 1e-9
        assert previous < value and abs(value - seconds) < 1e-6, (seconds, stamp)
        previous = value


def test_bridge_publishes_a_laser_scan_that_matches_the_world(ros):
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import LaserScan

    bridge = ros.add(SimBridge(context=ros.context, parameter_overrides=[
        Parameter('seed', value=5), Parameter('clutter', value=4),
        Parameter('width', value=32), Parameter('height', value=24),
        Parameter('scan_noise_m', value=0.0), Parameter('scan_beams', value=180)]))
    scans = ros.collect(LaserScan, 'scan', qos_profile_sensor_data)  # as a lidar driver
    assert wait_until(lambda: len(scans) >= 2, 20)
    scan = scans[-1]
    assert scan.header.frame_id == 'base_link' and len(scan.ranges) == 180
    assert math.isclose(scan.angle_min + 179 * scan.angle_increment, scan.angle_max,
                        abs_tol=1e-4)  # float32 fields
    assert len(bridge.world.scene.obstacles) == 4
    # The robot stands still: the scan is the world's, beam for beam.
    expected = bridge.world.scan(beams=180, noise_m=0.0)
    assert all(math.isclose(a, b, abs_tol=1e-4) or (math.isinf(a) and math.isinf(b))
               for a, b in zip(scan.ranges, expected))
    assert min(scan.ranges) > 0.15  # nothing inside the base


def test_bridge_builds_a_rooms_scene_from_its_world_parameter(ros):
    """`ros2 launch vla_ros sim.launch.py world:=rooms`: the seed's rooms scene, set at start."""
    from vla_ros.sim.rooms import generate_rooms_scene

    bridge = ros.add(SimBridge(context=ros.context, parameter_overrides=[
        Parameter('seed', value=4), Parameter('world', value='rooms'),
        Parameter('width', value=32), Parameter('height', value=24)]))
    assert bridge.world.scene == generate_rooms_scene(4)
    assert bridge.world.scene.wall_height >= 0.6
    result = bridge.set_parameters([Parameter('world', value='arena')])[0]
    assert not result.successful  # read-only
