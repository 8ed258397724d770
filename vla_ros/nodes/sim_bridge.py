"""sim_bridge: the MuJoCo arena as a robot: cmd_vel in; camera, laser scan, odometry and /clock
out.

Physics advances in real time on a wall timer; /clock carries the simulated time, so the
stack can run with use_sim_time. Ground truth stays in the SimWorld object (for the demo and
the evaluator in the same process) and is never published.
"""

import math

from geometry_msgs.msg import Twist, TwistStamped
from nav_msgs.msg import Odometry
import numpy as np
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CameraInfo, Image, LaserScan

from vla_ros.core.images import to_image_msg
from vla_ros.nodes.parameters import descriptor
from vla_ros.nodes.process import run_node
from vla_ros.nodes.qos import RELIABLE_LATEST
from vla_ros.sim.rooms import build_scene, WORLDS
from vla_ros.sim.world import ScanSettings, SimWorld


def stamp_of(seconds: float):
    from builtin_interfaces.msg import Time
    # Whole nanoseconds first: rounding the fraction alone turned 2.9999999999 s into 2 s.
    sec, nanosec = divmod(round(seconds * 1e9), 1_000_000_000)
    return Time(sec=int(sec), nanosec=int(nanosec))


class SimBridge(Node):
    NODE_NAME = 'sim_bridge'

    def __init__(self, world: SimWorld = None, **kwargs):
        super().__init__(self.NODE_NAME, **kwargs)
        seed = self.declare_parameter('seed', 0, descriptor(
            'scene seed (ignored when a world is handed in)', read_only=True)).value
        width = self.declare_parameter('width', 320, descriptor(
            'camera image width (px)', read_only=True, int_range=(16, 1920))).value
        height = self.declare_parameter('height', 240, descriptor(
            'camera image height (px)', read_only=True, int_range=(16, 1080))).value
        self.camera_rate_hz = self.declare_parameter('camera_rate_hz', 10.0, descriptor(
            'camera frames per simulated second', read_only=True,
            float_range=(0.5, 60.0))).value
        self.step_s = self.declare_parameter('physics_step_s', 0.02, descriptor(
            'simulated time per timer tick (real time: one tick per step_s)', read_only=True,
            float_range=(0.001, 0.1))).value
        self.cmd_timeout_s = self.declare_parameter('cmd_timeout_s', 0.5, descriptor(
            'the base stops when no cmd_vel came for this long', float_range=(0.05, 10.0))).value
        use_stamped = self.declare_parameter('use_stamped', False, descriptor(
            'cmd_vel is TwistStamped', read_only=True)).value
        clutter = self.declare_parameter('clutter', 0, descriptor(
            'boxes and walls in the scene, most across the way to the target (as `vla-ros eval '
            '--clutter`)', read_only=True, int_range=(0, 20))).value
        world_kind = self.declare_parameter('world', 'arena', descriptor(
            'the kind of scene: arena (one open room) or rooms (rooms with doorways and '
            'furniture; no clutter), as `vla-ros eval --world` (ignored when a SimWorld is '
            'handed in)', read_only=True,
            additional_constraints='|'.join(WORLDS))).value
        default = ScanSettings()
        self.scan_settings = ScanSettings(
            rate_hz=self.declare_parameter('scan_rate_hz', default.rate_hz, descriptor(
                'laser scans per simulated second (0: no scan)', read_only=True,
                float_range=(0.0, 100.0))).value,
            beams=self.declare_parameter('scan_beams', default.beams, descriptor(
                'beams of a scan', read_only=True, int_range=(2, 8192))).value,
            fov_deg=self.declare_parameter('scan_fov_deg', default.fov_deg, descriptor(
                'field of view of a scan, centred ahead', read_only=True,
                float_range=(1.0, 360.0))).value,
            range_max=self.declare_parameter('scan_range_max', default.range_max, descriptor(
                'farthest return (m); further beams are inf', read_only=True,
                float_range=(0.1, 100.0))).value,
            noise_m=self.declare_parameter('scan_noise_m', default.noise_m, descriptor(
                'standard deviation of the range noise (m)', read_only=True,
                float_range=(0.0, 1.0))).value)
        self._owns_world = world is None
        self.world = world or SimWorld(build_scene(world_kind, seed, clutter), width, height)
        self.next_scan_time = 0.0
        self.scan_rng = np.random.default_rng(self.world.scene.seed)
        self.command = (0.0, 0.0)
        self.last_command_time = None
        self.next_frame_time = 0.0
        self.clock_pub = self.create_publisher(Clock, '/clock', RELIABLE_LATEST)
        self.image_pub = self.create_publisher(Image, 'camera/image_raw', RELIABLE_LATEST)
        self.info_pub = self.create_publisher(CameraInfo, 'camera/camera_info',
                                              RELIABLE_LATEST)
        self.odom_pub = self.create_publisher(Odometry, 'odom', 5)
        self.scan_pub = self.create_publisher(LaserScan, 'scan', qos_profile_sensor_data)
        self.create_subscription(TwistStamped if use_stamped else Twist, 'cmd_vel',
                                 self.on_cmd_vel, 10)
        self.last_frame = None  # the newest rendered RGB array, for the demo's pictures
        self.timer = self.create_timer(self.step_s, self.tick)
        self.get_logger().info(
            f'ready: {self.world.scene.world} scene seed {self.world.scene.seed} '
            f'("{self.world.scene.command}"), '
            f'camera {self.world.width}x{self.world.height} at {self.camera_rate_hz:g} Hz, '
            f'scan {self.scan_settings.beams} beams at {self.scan_settings.rate_hz:g} Hz, '
            f'{len(self.world.scene.obstacles)} obstacles')

    def on_cmd_vel(self, msg):
        twist = msg.twist if isinstance(msg, TwistStamped) else msg
        linear, angular = twist.linear.x, twist.angular.z
        if math.isfinite(linear) and math.isfinite(angular):
            self.command = (linear, angular)
            self.last_command_time = self.world.time

    def tick(self):
        stale = self.last_command_time is None or \
            self.world.time - self.last_command_time > self.cmd_timeout_s
        linear, angular = (0.0, 0.0) if stale else self.command
        self.world.step(linear, angular, self.step_s)
        now = stamp_of(self.world.time)
        self.clock_pub.publish(Clock(clock=now))
        self.publish_odometry(now)
        if self.world.time + 1e-9 >= self.next_frame_time:
            self.next_frame_time += 1.0 / self.camera_rate_hz
            self.publish_camera(now)
        if self.scan_settings.rate_hz and self.world.time + 1e-9 >= self.next_scan_time:
            self.next_scan_time += 1.0 / self.scan_settings.rate_hz
            self.publish_scan(now)

    def publish_scan(self, stamp):
        settings = self.scan_settings
        scan = settings.message(self.world.scan(**settings.ray_cast(), rng=self.scan_rng))
        msg = LaserScan(angle_min=scan.angle_min, angle_increment=scan.angle_increment,
                        range_min=scan.range_min, range_max=scan.range_max,
                        scan_time=1.0 / settings.rate_hz, time_increment=0.0)
        msg.angle_max = scan.angle_min + scan.angle_increment * (settings.beams - 1)
        msg.ranges = scan.ranges.astype(np.float32).tolist()
        # The scanner sits at base_link's origin (no TF is published: rviz's fixed frame is
        # base_link, and the policy's laser_pose is zero).
        msg.header.stamp, msg.header.frame_id = stamp, 'base_link'
        self.scan_pub.publish(msg)

    def publish_odometry(self, stamp):
        pose, (linear, angular) = self.world.pose(), self.world.velocity()
        odom = Odometry()
        odom.header.stamp, odom.header.frame_id, odom.child_frame_id = stamp, 'odom', 'base_link'
        odom.pose.pose.position.x, odom.pose.pose.position.y = pose.x, pose.y
        odom.pose.pose.orientation.z = math.sin(pose.yaw / 2)
        odom.pose.pose.orientation.w = math.cos(pose.yaw / 2)
        odom.twist.twist.linear.x, odom.twist.twist.angular.z = linear, angular
        self.odom_pub.publish(odom)

    def camera_info(self, stamp) -> CameraInfo:
        width, height = self.world.width, self.world.height
        focal = (height / 2) / math.tan(math.radians(self.world.vertical_fov_deg) / 2)
        info = CameraInfo(width=width, height=height, distortion_model='plumb_bob')
        info.header.stamp, info.header.frame_id = stamp, 'camera_optical'
        info.d = [0.0] * 5
        info.k = [focal, 0.0, width / 2, 0.0, focal, height / 2, 0.0, 0.0, 1.0]
        info.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
        info.p = [focal, 0.0, width / 2, 0.0, 0.0, focal, height / 2, 0.0, 0.0, 0.0, 1.0, 0.0]
        return info

    def publish_camera(self, stamp):
        self.last_frame = self.world.render()
        image = to_image_msg(self.last_frame)
        image.header.stamp, image.header.frame_id = stamp, 'camera_optical'
        self.image_pub.publish(image)
        self.info_pub.publish(self.camera_info(stamp))

    def shutdown(self):
        self.timer.cancel()
        if self._owns_world:
            self.world.close()


def main(args=None):
    return run_node(SimBridge, args)


if __name__ == '__main__':
    raise SystemExit(main())
