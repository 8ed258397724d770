"""What action_policy listens to. The callbacks only store the newest message of each input
with its arrival (steady clock); at each control tick `read` converts, checks and pairs them
(core.inputs). A message that cannot be used is dropped with a clear, throttled warning and
counted for /diagnostics; the last good one then ages.
"""

from dataclasses import dataclass
import math
import time

from geometry_msgs.msg import PointStamped, Vector3Stamped
from nav_msgs.msg import Odometry
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import LaserScan, TimeReference
from std_msgs.msg import Float32MultiArray, String

from vla_ros.core.control import EXTENT_RANGES, range_problem, stamp_problem, TARGET_RANGES
from vla_ros.core.inputs import CommandPairing, LatestOdometry, LatestScan, TargetPairing
from vla_ros.core.odometry import Pose2D
from vla_ros.core.perception import alike_of_source, step_of_source
from vla_ros.core.policy import Segmentation, TargetView
from vla_ros.nodes import conversions as convert
from vla_ros.nodes.lifecycle import THROTTLE_S
from vla_ros.nodes.qos import LATCHED

TEXT_WAIT_S = 0.5  # an embedding waits this long for its command's text (steady clock)
FRAME_SWITCH_S = 1.0  # the odometry's frame silent this long, another one is taken


@dataclass(frozen=True)
class TickInputs:
    """What one control tick reads; ages in seconds, None where nothing came yet."""

    target: TargetView | None
    target_age: float | None
    segmentation: Segmentation | None
    camera_age: float | None
    scan: object  # (N, 2) obstacle points in base_link, or None
    scan_age: float | None
    scan_blind_ahead: bool
    odom: Pose2D | None
    odom_age: float | None
    new_scan: object = None  # a good core Scan that came since the last tick, or None
    new_view: list | None = None  # an image embedding that came since the last tick
    odom_frame_changed: bool = False  # the odometry came in another frame than before


class PolicyInputs:
    def __init__(self, node, laser_pose: tuple):
        self.node, self.laser_pose = node, laser_pose
        self.commands, self.targets = CommandPairing(TEXT_WAIT_S), TargetPairing()
        self.scans, self.odometry = LatestScan(), LatestOdometry()
        self.dropped = {}  # topic -> messages dropped as unusable, since start
        self._warned = {}  # topic -> when its last drop was said (steady clock)
        self.clear()

    def clear(self) -> None:
        """Forget every input (at activation): what was latched before now is not followed."""
        self.started_ns = time.time_ns()  # DDS source timestamps are on this clock
        self.camera_time = self.target_time = None
        self.scan = self.odom = self.scan_read = self.odom_read = None
        self.view = self.view_read = None  # the newest view_embeddings message
        self.odom_frame = 'odom'  # the newest good odometry's frame (the map's)
        self._odom_frame_read, self._odom_frame_changed = None, False
        self.odom_frames = {}  # frame: when odometry in it last came
        for held in (self.commands, self.targets, self.scans, self.odometry):
            held.clear()

    def subscribe(self) -> None:
        for message_type, topic, callback, qos in (
                (LaserScan, 'scan', self.on_scan, qos_profile_sensor_data),
                (Odometry, 'odom', self.on_odom, qos_profile_sensor_data),
                (Float32MultiArray, 'text_embedding', self.on_text_embedding, LATCHED),
                (Float32MultiArray, 'image_embedding', self.on_camera_alive, 1),
                (Float32MultiArray, 'view_embeddings', self.on_views, 1),
                (PointStamped, 'target', self.on_target, 5),
                (Vector3Stamped, 'target_extent', self.on_target_extent, 5),
                (TimeReference, 'target_source', self.on_target_source, 5),
                (String, 'instruction', self.on_instruction, LATCHED)):
            self.node.input(message_type, topic, callback, qos)

    # Callbacks --------------------------------------------------------------------------
    def on_text_embedding(self, msg, info):
        label, ours = convert.embedding_model_name(msg), self.node.encoder.name
        if label != ours:
            self.node.get_logger().warning(
                f"ignored a text embedding from model '{label}'; this policy compares with "
                f"'{ours}' (set the same model on both nodes)", throttle_duration_sec=THROTTLE_S)
        elif self._before_start(info):
            # A restarted policy must not drive off on an instruction given to its predecessor.
            self.node.get_logger().warning(
                'holding still: the latched instruction was given before this node was '
                'activated; send a new command (or set resume_instruction true to follow it)')
        else:
            self.commands.embedding(list(msg.data), convert.embedding_text(msg), self.now())

    def on_instruction(self, msg, info):
        if not self._before_start(info):  # else its embedding is not followed either
            self.commands.instruction(msg.data, self.now())

    def _before_start(self, info) -> bool:
        return (info['source_timestamp'] < self.started_ns
                and not self.node.values['resume_instruction'])

    def on_camera_alive(self, msg):
        """The camera works."""
        self.camera_time = self.now()

    def on_views(self, msg):
        """Embeddings of crops across a frame (or of the whole frame): onto exploration's
        value map when they are of the model the commands are compared with (else they mean
        nothing there).
        """
        label, ours = convert.embedding_model_name(msg), self.node.encoder.name
        rows = convert.embedding_rows(msg)
        if label == ours and rows is not None:
            self.view = msg
        elif label == ours:
            self.node.get_logger().warning(
                'dropped view_embeddings whose layout does not fit its data (rows x length, '
                f'at most {convert.MAX_VIEW_TILES} rows)', throttle_duration_sec=THROTTLE_S)
        else:
            self.node.get_logger().warning(
                f"image embeddings from model '{label}' are not compared with commands "
                f"embedded by '{ours}' (exploration's value map; set the same model on both "
                'nodes)', throttle_duration_sec=THROTTLE_S)

    def on_scan(self, msg):
        self.scan = (msg, self.now())

    def on_odom(self, msg):
        self.odom = (msg, self.now())
        self.odom_frames[msg.header.frame_id or 'odom'] = self.odom[1]  # last arrival each

    def on_target(self, msg):
        point = msg.point
        if self._usable(msg, 'target', (point.x, point.y, point.z), TARGET_RANGES):
            self.targets.add(convert.stamp_key(msg.header), 0, msg, self.now())
            self.camera_time = self.now()

    def on_target_extent(self, msg):
        vector = msg.vector
        if self._usable(msg, 'target_extent', (vector.x, vector.y, vector.z), EXTENT_RANGES):
            self.targets.add(convert.stamp_key(msg.header), 1, msg, self.now())

    def on_target_source(self, msg):
        lead = convert.segmentation_lead(msg)
        if lead < 0.0:
            self.drop('target_source', 'its segmentation (time_ref) is stamped '
                      f'{-lead:.3f} s after its own frame')
        elif self._usable(msg, 'target_source', (lead,)):
            self.targets.add(convert.stamp_key(msg.header), 2, msg, self.now())

    def _usable(self, msg, topic: str, numbers, ranges=None) -> bool:
        problem = stamp_problem(convert.seconds(msg.header.stamp),
                                self.node.get_clock().now().nanoseconds * 1e-9,
                                self.node.values['future_stamp_tolerance_s'])
        if not problem and not all(math.isfinite(value) for value in numbers):
            problem = f'it holds NaN or infinity {tuple(numbers)}'
        if not problem and ranges is not None:
            problem = range_problem(numbers, ranges)
        if problem:
            self.drop(topic, problem)
        return not problem

    def drop(self, topic: str, problem: str) -> None:
        """Count it; say it at most once per THROTTLE_S per topic (rclpy's own throttle is
        per call site: a flood on one topic would silence another's first warning).
        """
        self.dropped[topic] = self.dropped.get(topic, 0) + 1
        now = self.now()
        if now - self._warned.get(topic, -math.inf) >= THROTTLE_S:
            self._warned[topic] = now
            self.node.get_logger().warning(f'dropped a {topic} message: {problem}')

    def now(self) -> float:
        return self.node.now()

    # At a tick --------------------------------------------------------------------------
    def command(self, now: float):
        """(embedding, its text or None) of a command to decide now, or None."""
        return self.commands.take(now)

    def read(self, now: float) -> TickInputs:
        target = target_age = segmentation = None
        newest = self.targets.newest()
        if newest is not None:
            (point, extent, source), self.target_time = newest
            target, target_age = convert.target_view(point, extent), now - self.target_time
            segmentation = Segmentation(
                age=target_age + convert.segmentation_lead(source),
                frame_stamp=convert.seconds(source.header.stamp),
                segmented_stamp=convert.seconds(source.time_ref), received=self.target_time,
                step=step_of_source(source.source), alike=alike_of_source(source.source))
        self._read_scan()
        self._read_odom()
        new_scan, self.scans.unmapped = self.scans.unmapped, None
        new_view = None
        if self.view is not None and self.view is not self.view_read:
            self.view_read = self.view
            new_view = list(self.view.data)
        frame_changed, self._odom_frame_changed = self._odom_frame_changed, False
        return TickInputs(target, target_age, segmentation,
                          None if self.camera_time is None else now - self.camera_time,
                          *self.scans.points(now), self.scans.blind_ahead,
                          *self.odometry.pose(now), new_scan, new_view, frame_changed)

    def _read_scan(self):
        if self.scan is not None and self.scan[0] is not self.scan_read:
            self.scan_read, arrived = self.scan
            problem = self.scans.take(*convert.scan_of(self.scan_read, self.laser_pose),
                                      arrived)
            if problem:
                self.drop('scan', problem)

    def _read_odom(self):
        """Odometry stamped no later than the last is no news (a frozen driver, an old
        message): not dropped, but not fresh either.
        """
        if self.odom is None or self.odom[0] is self.odom_read:
            return
        self.odom_read, arrived = self.odom
        pose, problem = convert.pose_of(self.odom_read)
        if problem:
            self.drop('odom', problem)
            return
        # Poses in another frame (odom, then map): where anything was seen is unknown. A
        # frame is changed to once the one in use has not come for FRAME_SWITCH_S: two
        # publishers in two frames would otherwise start the map afresh at every message.
        frame = self.odom_read.header.frame_id or 'odom'
        current = self._odom_frame_read
        if current not in (None, frame) and (
                arrived - self.odom_frames.get(current, -math.inf) < FRAME_SWITCH_S):
            self.drop('odom', f"in frame '{frame}' while '{current}' still comes: taken once "
                      f"'{current}' has stopped for {FRAME_SWITCH_S:g} s (a second publisher?)")
            return
        if not self.odometry.take(pose, convert.stamp_key(self.odom_read.header), arrived):
            self.node.get_logger().warning(
                'odom stamped no later than the last: not counted as fresh (a frozen driver, '
                'or a second publisher?)', throttle_duration_sec=THROTTLE_S)
            return
        self._odom_frame_changed |= current not in (None, frame)
        self.odom_frame = self._odom_frame_read = frame
