"""action_policy: instruction + target -> cmd_vel at a fixed rate, behind the safety layer.

A translation around core.control.Controller: messages in, one Controller.tick per control
period, Twist and status out.

Clocks: the control timer and every input's age run on the steady clock, which neither jumps
nor stalls, so a /clock that jumps back or stops cannot keep stale input looking fresh or stop
cmd_vel. The policy's own timing (searches, motions) runs on ROS time under use_sim_time and
on the steady clock otherwise; simulated time that stops stops the robot.
"""

import gc
import math
import time

from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import Point, PointStamped, Twist, TwistStamped, Vector3Stamped
from nav_msgs.msg import Odometry
import numpy as np
from rcl_interfaces.msg import SetParametersResult
from rclpy.clock import Clock, ClockType
from rclpy.duration import Duration
from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.lifecycle import LifecycleNode, TransitionCallbackReturn
from rclpy.qos import qos_profile_sensor_data, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import LaserScan, TimeReference
from std_msgs.msg import Bool, Float32MultiArray, String
from std_srvs.srv import SetBool, Trigger
from visualization_msgs.msg import Marker, MarkerArray

from vla_ros.core.config import build_intents, intent_params, laser_pose, NODE_TABLES
from vla_ros.core.control import (
    Controller,
    ControlSettings,
    EXTENT_RANGES,
    range_problem,
    stamp_problem,
    TARGET_RANGES,
)
from vla_ros.core.diagnostics import OK, Report, WARN
from vla_ros.core.encoders import ClipEncoder
from vla_ros.core.models import ModelCache
from vla_ros.core.obstacles import Scan, zone_outline
from vla_ros.core.odometry import Pose2D
from vla_ros.core.policy import Segmentation, TargetView
from vla_ros.core.safety import EstopSources
from vla_ros.core.text import clean_command
from vla_ros.nodes.common import (
    Autostart,
    DIAGNOSTICS_PERIOD_S,
    embedding_model_name,
    embedding_text,
    publish_report,
    run_node,
    THROTTLE_S,
)
from vla_ros.nodes.parameters import check_change, declare
from vla_ros.nodes.qos import LATCHED, RELIABLE_LATEST

# An e-stop must engage from a publisher of any QoS: one subscription per kind of publisher it
# could match (latched state, reliable stream, best-effort stream); each press is idempotent.
TEXT_WAIT_S = 0.5  # an embedding waits this long for its command's text (steady clock)
ESTOP_QOS = (LATCHED, QoSProfile(depth=10),
             QoSProfile(depth=10, reliability=ReliabilityPolicy.BEST_EFFORT))


ZONES_EVERY = 5  # control ticks between two collision_zones messages (rviz needs few)
NO_SCAN_WARNING_S = 3.0  # after activation: no scan yet (require_scan auto) is said once
MIN_READABLE_AHEAD = 0.5  # fewer of the beams ahead reading (NaN): no forward motion


def scan_problem(msg) -> str:
    """Why a LaserScan cannot be used ('' when it can)."""
    numbers = (msg.angle_min, msg.angle_increment, msg.range_min, msg.range_max)
    if not all(math.isfinite(value) for value in numbers):
        return f'its angles or range limits hold NaN or infinity {numbers}'
    if len(msg.ranges) == 0:
        return 'it has no ranges'
    if len(msg.ranges) > 1 and msg.angle_increment == 0.0:
        return 'angle_increment is 0 with more than one range'
    if not 0.0 <= msg.range_min < msg.range_max:
        return f'range_min {msg.range_min:g} and range_max {msg.range_max:g} are not a range'
    return ''


REQUIRE_SCAN_SAID = {'true': 'required', 'false': 'optional',
                     'auto': 'required once a scan has come'}


def seconds(stamp) -> float:
    return stamp.sec + stamp.nanosec * 1e-9


def segmentation_lead(source: TimeReference) -> float:
    """How much older the segmentation behind a target is than the target's own frame
    (seconds; < 0: a time_ref after the frame, malformed). Both stamps come from the camera's
    clock, so the difference holds whatever this node's clock says.
    """
    frame, segmented = source.header.stamp, source.time_ref
    return (frame.sec - segmented.sec) + (frame.nanosec - segmented.nanosec) * 1e-9


MAX_TILT = 0.2  # |qx|, |qy| of an odometry pose: more is not a yaw about z (a planar base)


def odometry_problem(msg) -> str:
    """Why an Odometry's pose cannot be read as a planar base's ('' when it can)."""
    position, orientation = msg.pose.pose.position, msg.pose.pose.orientation
    values = (position.x, position.y, orientation.x, orientation.y, orientation.z,
              orientation.w)
    if not all(math.isfinite(value) for value in values):
        return f'its pose holds NaN or infinity {values}'
    if (orientation.z, orientation.w) == (0.0, 0.0):
        return 'its orientation has no rotation about z (z and w are 0)'
    if max(abs(orientation.x), abs(orientation.y)) > MAX_TILT:
        return (f'its orientation is tilted (x {orientation.x:.3f}, y {orientation.y:.3f}): '
                'not a yaw about z of a planar base (odometry in another frame?)')
    return ''


def _source_of(info) -> tuple:
    """(a publisher's identity: its DDS writer GUID, an order key of its messages) from a
    message's info; (b'', None) where the middleware gives no GUID.
    """
    gid = bytes((info.get('publisher_gid') or {}).get('data', b''))
    if not gid:
        return gid, None
    sequence = info.get('publication_sequence_number')
    return gid, sequence if sequence is not None else info.get('source_timestamp')


class ActionPolicyNode(Autostart, LifecycleNode):
    """A managed node: configure creates the outputs, activate loads the CLIP (the intents'
    phrasings) and starts listening and the control timer, deactivate sends a zero Twist,
    stops and frees the model. With `autostart` it configures and activates itself.
    """

    NODE_NAME = 'action_policy'

    def __init__(self, model_cache: ModelCache = None, **kwargs):
        super().__init__(self.NODE_NAME, **kwargs)
        # `intents` first: it names the intent.<name>.* parameters to declare next.
        self.params = dict(NODE_TABLES[self.NODE_NAME])
        self.values = declare(self, self.params)
        intent_table = {param.name: param for name in self.values['intents']
                        for param in intent_params(name)}
        self.values.update(declare(self, intent_table))
        self.params.update(intent_table)
        self.intents = build_intents(self.values)
        self.settings = ControlSettings.from_values(self.values)  # checked before any load
        self.control_rate_hz = self.values['control_rate_hz']
        self.use_stamped, self.frame_id = self.values['use_stamped'], self.values['frame_id']
        self.started_ns = time.time_ns()  # DDS source timestamps are on this clock
        self.sim_time = self.get_parameter('use_sim_time').value
        self.steady = Clock(clock_type=ClockType.STEADY_TIME)
        self.policy_clock = self.get_clock() if self.sim_time else self.steady
        self.clock_seen = (None, None)  # (ROS time, steady time when it last moved)
        self._model_cache = model_cache if model_cache is not None else ModelCache()
        self.encoder = self.controller = self.timer = None  # while active
        self.cmd_pub = self.status_pub = self.marker_pub = self.zones_pub = None  # configured
        self.estop_topic = self.resolve_topic_name('estop')
        self._inputs, self._outputs = [], []

        self.estop = EstopSources()
        self.enabled = True
        # A text embedding carries its text (command_embedder); one that does not is paired
        # with an `instruction` that arrived within TEXT_WAIT_S of it, or refused.
        self.instruction = None  # (text, arrival time), until used
        self.pending = None  # (embedding, its text or None, arrival time)
        self.last_refused = ''
        self.last_camera_time = None  # arrival times are on the steady clock
        # stamp -> [PointStamped, Vector3Stamped, TimeReference, arrival time]: the three
        # halves of one target (scene_segmenter publishes them together)
        self.targets = {}
        self.last_status = None
        self.marker_shown = False
        self.last_command = (0.0, 0.0)
        self.last_target_time = None
        self.last_segmentation_age = None  # at the last tick
        self.scan = None  # (the newest LaserScan, arrival time)
        self.scan_checked = None  # the newest LaserScan looked at
        self.scan_points = None  # ((N, 2) points in base_link, arrival) of the newest good one
        self.scan_problem = ''  # why the newest scan was dropped ('' when it was not)
        self.scan_blind_ahead = False  # the newest good scan's beams ahead mostly NaN
        self.odom = None  # (the newest Odometry, arrival time)
        self.odom_checked = None  # the newest Odometry looked at
        self.odom_pose = None  # (Pose2D, arrival) of the newest good one
        self.laser_pose = laser_pose(self.values)
        self.last_output = None
        self.ticks = 0
        self.no_scan_timer = None
        self.dropped_inputs = {}  # topic -> messages dropped as unusable, since start

        self.create_service(SetBool, '~/enable', self.on_enable)
        self.create_service(Trigger, '~/clear_estop', self.on_clear_estop)
        self.add_on_set_parameters_callback(self.on_set_parameters)
        self.diagnostics_pub = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        self.create_timer(DIAGNOSTICS_PERIOD_S, self.publish_diagnostics)
        self.start()

    # Lifecycle --------------------------------------------------------------------------
    def on_configure(self, state):
        self.cmd_pub = self._output(TwistStamped if self.use_stamped else Twist, 'cmd_vel',
                                    RELIABLE_LATEST)
        self.status_pub = self._output(String, 'status', LATCHED)
        self.marker_pub = self._output(Marker, 'target_marker', RELIABLE_LATEST)
        self.zones_pub = self._output(MarkerArray, 'collision_zones', RELIABLE_LATEST)
        return TransitionCallbackReturn.SUCCESS

    def _output(self, message_type, topic, qos):
        publisher = self.create_lifecycle_publisher(message_type, topic, qos)
        self._outputs.append(publisher)
        return publisher

    def on_activate(self, state):
        loaded = None
        try:
            loaded = self._model_cache.get('clip', self.values['model'], self.values['device'],
                                           self.values['dtype'])
            self.encoder = ClipEncoder(loaded)
            self.controller = Controller.from_encoder(self.intents, self.encoder.encode_texts,
                                                      self.settings)
        except Exception as error:  # noqa: BLE001 - any failure: stay inactive, nothing held
            if loaded is not None:
                self._model_cache.release(loaded)
            self.encoder = self.controller = None
            return self.failed('activate', error)
        self.started_ns = time.time_ns()  # what was latched before now is not followed
        self.pending, self.instruction, self.targets = None, None, {}
        self.last_camera_time = self.last_target_time = None
        self.scan = self.scan_points = self.scan_checked = None
        self.odom = self.odom_checked = self.odom_pose = None
        self.scan_blind_ahead = False
        inputs = [
            (LaserScan, 'scan', self.on_scan, qos_profile_sensor_data),
            (Odometry, 'odom', self.on_odom, qos_profile_sensor_data),
            (Float32MultiArray, 'text_embedding', self.on_text_embedding, LATCHED),
            (Float32MultiArray, 'image_embedding', self.on_camera_alive, 1),
            (PointStamped, 'target', self.on_target, 5),
            (Vector3Stamped, 'target_extent', self.on_target_extent, 5),
            (TimeReference, 'target_source', self.on_target_source, 5),
            (String, 'instruction', self.on_instruction, LATCHED)]
        self._inputs = [self.create_subscription(*entry) for entry in inputs]
        quiet = SubscriptionEventCallbacks(incompatible_qos=lambda event: None)
        for qos in ESTOP_QOS:  # a publisher matches at least the last one
            self._inputs.append(self.create_subscription(Bool, 'estop', self.on_estop, qos,
                                                         event_callbacks=quiet))
        self.timer = self.create_timer(1.0 / self.control_rate_hz, self.on_control,
                                       clock=self.steady)
        result = super().on_activate(state)
        self.last_status = None
        self.publish_status('idle')
        self.get_logger().info(
            f'ready: intents from {self.encoder.name} on {self.encoder.loaded.device}, '
            f'{len(self.intents)} intents, cmd_vel '
            f'{"TwistStamped" if self.use_stamped else "Twist"} at {self.control_rate_hz:g} '
            f'Hz, limits {self.values["max_linear_mps"]:g} m/s '
            f'{self.values["max_angular_rps"]:g} rad/s (ceilings '
            f'{self.values["hard_max_linear_mps"]:g} m/s {self.values["hard_max_angular_rps"]:g}'
            f' rad/s), input timeout {self.values["input_timeout_s"]:g} s, collision monitor on '
            f'{self.resolve_topic_name("scan")} '
            f'({REQUIRE_SCAN_SAID[self.values["require_scan"]]})')
        if self.values['require_scan'] == 'auto':
            self.no_scan_timer = self.create_timer(NO_SCAN_WARNING_S, self.warn_if_no_scan,
                                                   clock=self.steady)
        return result

    def warn_if_no_scan(self):
        """Once after activation: a robot without a scanner is told its monitor is off."""
        self.destroy_timer(self.no_scan_timer)
        self.no_scan_timer = None
        if self.scan is None:
            self.get_logger().warning(
                f'no scan on {self.resolve_topic_name("scan")} since activation: the '
                'collision monitor has no source and motion is unmonitored (require_scan '
                'auto: from the first scan on, one is required and a scanner that stops '
                "stops the robot; set require_scan 'true' to need one from the start)")

    def on_deactivate(self, state):
        if self.no_scan_timer is not None:
            self.destroy_timer(self.no_scan_timer)
            self.no_scan_timer = None
        self._stop_driving('stopped: inactive')
        self._release()
        self.get_logger().info('inactive: zero sent, inputs dropped, model released')
        return super().on_deactivate(state)

    def on_cleanup(self, state):
        for publisher in self._outputs:
            self.destroy_lifecycle_publisher(publisher)
        self._outputs, self.cmd_pub = [], None
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state):
        self.shutdown()
        return self.on_cleanup(state)

    def on_error(self, state):
        """A transition raised: stop, release everything, back to unconfigured."""
        return self.on_shutdown(state)

    def _release(self):
        for subscription in self._inputs:
            self.destroy_subscription(subscription)
        self._inputs = []
        if self.encoder is not None:
            self._model_cache.release(self.encoder.loaded)
            self.encoder = self.controller = None
            gc.collect()

    # Parameters -------------------------------------------------------------------------
    def on_set_parameters(self, parameters):
        values = dict(self.values)
        for parameter in parameters:
            value, reason = check_change(self.params, parameter)
            if reason:
                return SetParametersResult(successful=False, reason=reason)
            values[parameter.name] = value
        try:
            settings = ControlSettings.from_values(values)
        except ValueError as error:
            return SetParametersResult(successful=False, reason=str(error))
        # Callbacks, timer and this run in one callback group, so no lock is needed.
        self.values, self.settings = values, settings
        self.frame_id = values['frame_id']
        if self.controller is not None:
            self.controller.configure(settings)
        return SetParametersResult(successful=True)

    # Inputs: callbacks only store --------------------------------------------------------
    def now(self) -> float:
        """Arrival times and ages: the steady clock."""
        return self.steady.now().nanoseconds * 1e-9

    def on_text_embedding(self, msg, info):
        label = embedding_model_name(msg)
        if label != self.encoder.name:
            self.get_logger().warning(
                f"ignored a text embedding from model '{label}'; this policy compares with "
                f"'{self.encoder.name}' (set the same model on both nodes)",
                throttle_duration_sec=THROTTLE_S)
            return
        if info['source_timestamp'] < self.started_ns and not self.values['resume_instruction']:
            # A restarted policy must not drive off on an instruction given to its predecessor.
            self.get_logger().warning(
                'holding still: the latched instruction was given before this node was '
                'activated; send a new command (or set resume_instruction true to follow it)')
            return
        self.pending = (list(msg.data), embedding_text(msg), self.now())

    def on_instruction(self, msg, info):
        if info['source_timestamp'] < self.started_ns and not self.values['resume_instruction']:
            return  # its embedding is not followed either (on_text_embedding)
        self.instruction = (msg.data, self.now())

    def _command_text(self, now: float):
        """(the pending embedding's command text or None, whether to decide now)."""
        _, text, arrived = self.pending
        if text is not None:
            return text, True
        if self.instruction is not None and abs(self.instruction[1] - arrived) <= TEXT_WAIT_S:
            return self.instruction[0], True
        return None, now - arrived > TEXT_WAIT_S  # refused once it has waited long enough

    def on_camera_alive(self, msg):
        self.last_camera_time = self.now()

    def on_scan(self, msg):
        self.scan = (msg, self.now())

    def on_odom(self, msg):
        self.odom = (msg, self.now())

    def latest_odom(self, now: float):
        """(pose in the odom frame, age) of the newest good odometry; (None, None) when none
        came. One whose pose is not a finite planar one (NaN, no rotation, tilted: not a
        yaw about z) is dropped with a throttled warning and counted; one whose stamp is not
        after the last one's is no news (a frozen driver, an old message), and the odometry
        ages.
        """
        if self.odom is not None and self.odom[0] is not self.odom_checked:
            msg, arrived = self.odom
            self.odom_checked = msg
            problem = odometry_problem(msg)
            stamp = (msg.header.stamp.sec, msg.header.stamp.nanosec)
            if problem:
                self.count_dropped('odom')
                self.get_logger().warning(f'dropped an odom message: {problem}',
                                          throttle_duration_sec=THROTTLE_S)
            elif stamp != (0, 0) and self.odom_pose is not None and stamp <= self.odom_pose[2]:
                self.get_logger().warning(
                    'odom stamped no later than the last: not counted as fresh (a frozen '
                    'driver, or a second publisher?)', throttle_duration_sec=THROTTLE_S)
            else:
                position, orientation = msg.pose.pose.position, msg.pose.pose.orientation
                self.odom_pose = (Pose2D.from_quaternion(position.x, position.y, orientation.z,
                                                         orientation.w), arrived, stamp)
        if self.odom_pose is None:
            return None, None
        return self.odom_pose[0], now - self.odom_pose[1]

    def latest_scan(self, now: float):
        """(obstacle points in base_link, age) of the newest good scan; (None, None) when no
        scan came, (no points, inf) when only malformed ones did. A malformed scan is dropped
        with a throttled warning; the last good one then ages into staleness.
        """
        if self.scan is not None and self.scan[0] is not self.scan_checked:
            msg, arrived = self.scan
            self.scan_checked = msg
            problem = scan_problem(msg)
            if not problem:
                scan = Scan(ranges=msg.ranges, angle_min=msg.angle_min,
                            angle_increment=msg.angle_increment, range_min=msg.range_min,
                            range_max=msg.range_max, laser_x=self.laser_pose[0],
                            laser_y=self.laser_pose[1], laser_yaw=self.laser_pose[2])
                # Every beam that reads is used, however many others do not (REP 117: NaN
                # is an erroneous reading); a scan without one says nothing.
                if scan.readable_fraction == 0.0:
                    problem = 'none of its beams read (all NaN: erroneous)'
            self.scan_problem = problem
            if problem:
                self.count_dropped('scan')
                self.get_logger().warning(f'dropped a scan message: {problem}',
                                          throttle_duration_sec=THROTTLE_S)
            else:
                self.scan_points = (scan.points(), arrived)
                self.scan_blind_ahead = scan.readable_fraction_ahead() < MIN_READABLE_AHEAD
        if self.scan_points is not None:
            return self.scan_points[0], now - self.scan_points[1]
        if self.scan is not None:
            return np.zeros((0, 2)), math.inf
        return None, None

    def _target_entry(self, header, half: int):
        key = (header.stamp.sec, header.stamp.nanosec)
        if key in self.targets and self.targets[key][half] is not None:
            del self.targets[key]  # a stamp used again (a camera that repeats them): new set
        if key not in self.targets:
            if len(self.targets) >= 8:  # bounded: forget the oldest unmatched halves
                del self.targets[min(self.targets, key=lambda key: self.targets[key][3])]
            self.targets[key] = [None, None, None, self.now()]
        return self.targets[key]

    def _usable(self, msg, topic: str, numbers, ranges=None) -> bool:
        """Whether a target half can be used; a clear, throttled warning and a count when
        not.
        """
        stamp = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
        problem = stamp_problem(stamp, self.get_clock().now().nanoseconds * 1e-9,
                                self.values['future_stamp_tolerance_s'])
        if not problem and not all(math.isfinite(value) for value in numbers):
            problem = f'it holds NaN or infinity {tuple(numbers)}'
        if not problem and ranges is not None:
            problem = range_problem(numbers, ranges)
        if problem:
            self.count_dropped(topic)
            self.get_logger().warning(f'dropped a {topic} message: {problem}',
                                      throttle_duration_sec=THROTTLE_S)
        return not problem

    def count_dropped(self, topic: str) -> None:
        self.dropped_inputs[topic] = self.dropped_inputs.get(topic, 0) + 1

    def on_target(self, msg):
        point = msg.point
        if self._usable(msg, 'target', (point.x, point.y, point.z), TARGET_RANGES):
            self._target_entry(msg.header, 0)[0] = msg
            self.last_camera_time = self.now()

    def on_target_extent(self, msg):
        vector = msg.vector
        if self._usable(msg, 'target_extent', (vector.x, vector.y, vector.z), EXTENT_RANGES):
            self._target_entry(msg.header, 1)[1] = msg

    def on_target_source(self, msg):
        lead = segmentation_lead(msg)
        if lead < 0.0:
            self.count_dropped('target_source')
            self.get_logger().warning(
                'dropped a target_source message: its segmentation (time_ref) is stamped '
                f'{-lead:.3f} s after its own frame', throttle_duration_sec=THROTTLE_S)
        elif self._usable(msg, 'target_source', (lead,)):
            self._target_entry(msg.header, 2)[2] = msg

    def _estop_publishers(self) -> dict:
        """GUID -> node name of every publisher on estop now."""
        return {bytes(info.endpoint_gid): f'{info.node_namespace.rstrip("/")}/{info.node_name}'
                for info in self.get_publishers_info_by_topic(self.estop_topic)}

    def on_estop(self, msg, info):
        source, order = _source_of(info)
        if not self.estop.update(source, bool(msg.data), order):
            return
        if self.estop.engaged:
            who = self._estop_publishers().get(source, 'a publisher that has left')
            self.get_logger().warning(
                f'e-stop ENGAGED by {who}: zero until every source that pressed it publishes '
                'false', throttle_duration_sec=THROTTLE_S)
        else:
            self.get_logger().info('e-stop released by every source',
                                   throttle_duration_sec=THROTTLE_S)

    def on_clear_estop(self, request, response):
        publishers = self._estop_publishers()
        cleared, live = self.estop.clear_dead(publishers)
        response.success = live == 0
        response.message = f'forgot {cleared} press(es) of publishers that have left'
        if live:
            names = sorted(publishers[source] for source in self.estop.pressed)
            response.message += (f'; {live} live publisher(s) still press it ({", ".join(names)}):'
                                 ' they must publish false')
        self.get_logger().warning(f'e-stop clear asked: {response.message}')
        return response

    def on_enable(self, request, response):
        self.enabled = bool(request.data)
        response.success = True
        response.message = 'enabled' if self.enabled else 'disabled: publishing zero'
        self.get_logger().info(response.message)
        return response

    # Control ----------------------------------------------------------------------------
    def latest_target(self):
        """(TargetView, arrival time, its target_source) of the last target to arrive whose
        other two halves have too.

        By arrival, not by stamp: stamps from a restarted or re-clocked source may go back.
        """
        complete = [(entry[3], key) for key, entry in self.targets.items()
                    if None not in entry[:3]]
        if not complete:
            return None, None, None
        newest_arrival, newest = max(complete)
        point, extent, source, arrived = self.targets[newest]
        for key in [key for key, entry in self.targets.items() if entry[3] < newest_arrival]:
            del self.targets[key]
        view = TargetView(x=point.point.x, y=point.point.y, confidence=point.point.z,
                          area=extent.vector.x, bottom=extent.vector.z, width=extent.vector.y)
        return view, arrived, source

    def _clock_age(self, now: float, policy_now: float):
        """Steady seconds since simulated time last moved (None without use_sim_time)."""
        if not self.sim_time:
            return None
        if policy_now != self.clock_seen[0]:
            self.clock_seen = (policy_now, now)
        return now - self.clock_seen[1]

    def on_control(self):
        if self.controller is None:  # a tick queued before deactivation
            return
        now, policy_now = self.now(), self.policy_clock.now().nanoseconds * 1e-9
        text, decide = self._command_text(now) if self.pending is not None else (None, False)
        if decide:
            status = self.controller.instruct(
                self.pending[0], None if text is None else clean_command(text)[0], policy_now)
            self.pending = self.instruction = None
            refused = status.startswith('not understood')
            if refused:
                if status != self.last_refused:  # one line a command, not one a repeat
                    self.get_logger().warning(
                        f'{status} ({self.controller.refusal}); holding still')
            elif status.startswith(('stopped: invalid', 'stopped: zero')):
                self.get_logger().warning(f'instruction refused, holding still: {status}',
                                          throttle_duration_sec=THROTTLE_S)
            else:
                self.get_logger().info(f'instruction: {status}')
            self.last_refused = status if refused else ''
        target, target_time, source = self.latest_target()
        points, scan_age = self.latest_scan(now)
        odom, odom_age = self.latest_odom(now)
        target_age = None if target_time is None else now - target_time
        segmentation = None if source is None else Segmentation(
            age=target_age + segmentation_lead(source), frame_stamp=seconds(source.header.stamp),
            segmented_stamp=seconds(source.time_ref), received=target_time)
        output = self.controller.tick(
            policy_now, target, target_age,
            None if self.last_camera_time is None else now - self.last_camera_time,
            estop=self.estop.engaged, enabled=self.enabled,
            clock_age=self._clock_age(now, policy_now), scan=points, scan_age=scan_age,
            segmentation=segmentation, scan_blind_ahead=self.scan_blind_ahead, odom=odom,
            odom_age=odom_age)
        self.last_output, self.ticks = output, self.ticks + 1
        if self.controller.odometry_stuck:
            self.get_logger().warning(
                'odom shows no motion while the base was sent to move: not used until it '
                'shows that motion again or a new command comes (a frozen driver, odometry of '
                'another frame, or a base held downstream)',
                throttle_duration_sec=THROTTLE_S)
        if self.ticks % ZONES_EVERY == 0:
            self.publish_zones(output)
        if output.clock_jump_s:
            self.get_logger().warning(
                f'ROS time jumped {"back" if output.clock_jump_s < 0 else "ahead"} '
                f"{abs(output.clock_jump_s):.3f} s: not counted by the policy's timers "
                '(input ages are on the steady clock)', throttle_duration_sec=THROTTLE_S)
        self.publish_marker(output.target)
        self.last_command, self.last_target_time = (output.linear, output.angular), target_time
        self.last_segmentation_age = None if segmentation is None else segmentation.age
        self.publish_velocity(output.linear, output.angular)
        self.publish_status(output.status)

    def publish_diagnostics(self):
        if self.controller is None:
            state = self._state_machine.current_state[1]
            publish_report(self.diagnostics_pub, self, 'control', 'clip', Report(
                WARN, f'{state}: not driving (lifecycle)', {'lifecycle state': state}))
            return
        now = self.now()

        def age(stamp):
            return 'never' if stamp is None else f'{now - stamp:.2f}'

        intent = self.controller.intent
        values = {
            'status': self.last_status, 'intent': intent.name if intent else 'none',
            'e-stop': str(self.estop.engaged), 'e-stop sources pressed': len(self.estop.pressed),
            'enabled': str(self.enabled),
            'target age (s)': age(self.last_target_time),
            'segmentation age (s)': 'never' if self.last_segmentation_age is None
            else f'{self.last_segmentation_age:.2f}',
            'camera age (s)': age(self.last_camera_time),
            'cmd_vel linear.x': f'{self.last_command[0]:+.3f}',
            'cmd_vel angular.z': f'{self.last_command[1]:+.3f}',
            'limits': f'{self.values["max_linear_mps"]:g} m/s, '
                      f'{self.values["max_angular_rps"]:g} rad/s',
            'collision monitor': self.last_output.obstacle if self.last_output else 'no scan',
            'scan age (s)': age(None if self.scan is None else self.scan[1]),
            'odom age (s)': age(None if self.odom_pose is None else self.odom_pose[1]),
            'odometry': 'stuck: shows no motion the commands made'
            if self.controller.odometry_stuck else 'ok',
            'free travel (m)': 'n/a' if not self.last_output else f'{self.last_output.free_m:.2f}',
            'scan required': str(self.values['require_scan']),
            'scan problem': self.scan_problem or 'none',
            'inputs dropped as unusable': ', '.join(
                f'{topic} {count}' for topic, count in sorted(self.dropped_inputs.items()))
            or 'none',
        }
        held = self.last_status or ''
        scan_off = self.scan is not None and (
            self.last_output is None or self.last_output.obstacle == 'no scan')
        level = WARN if held.startswith(('stopped: e-stop', 'stopped: disabled',
                                         'stopped: stale input', 'stopped: stale scan',
                                         'stopped: stale segmentation', 'stopped: scan lost',
                                         'stopped: scan unreadable ahead')) \
            or scan_off else OK
        if scan_off and level == WARN and not held.startswith('stopped'):
            held = f'{held}; scan stale or malformed: collision monitor off'
        publish_report(self.diagnostics_pub, self, 'control', self.encoder.name,
                       Report(level, held, values))
        # Also unchanged, once a second: a tool that subscribes later (rqt_topic, a volatile
        # echo) sees it without waiting for the next change.
        self.status_pub.publish(String(data=self.last_status))

    def publish_velocity(self, linear: float, angular: float):
        twist = Twist()
        twist.linear.x = float(linear) if math.isfinite(linear) else 0.0
        twist.angular.z = float(angular) if math.isfinite(angular) else 0.0
        if self.use_stamped:
            stamped = TwistStamped(twist=twist)
            stamped.header.stamp = self.get_clock().now().to_msg()
            stamped.header.frame_id = self.frame_id
            self.cmd_pub.publish(stamped)
        else:
            self.cmd_pub.publish(twist)

    def publish_marker(self, target):
        """An arrow in frame_id towards the target's bearing, for rviz; removed when lost."""
        visible = target is not None and target.visible
        if not visible and not self.marker_shown:
            return
        marker = Marker(ns='vla_target', id=0, type=Marker.ARROW)
        marker.header.frame_id = self.frame_id
        marker.header.stamp = self.get_clock().now().to_msg()
        self.marker_shown = visible
        if not visible:
            marker.action = Marker.DELETE
            self.marker_pub.publish(marker)
            return
        half_fov = math.radians(self.values['camera_hfov_deg']) / 2.0
        bearing = -math.atan(target.x * math.tan(half_fov))  # image right = clockwise
        marker.action = Marker.ADD
        marker.pose.orientation.z = math.sin(bearing / 2.0)
        marker.pose.orientation.w = math.cos(bearing / 2.0)
        marker.scale.x = 0.3 + 0.7 * (1.0 - min(target.area, 1.0))  # shorter when closer
        marker.scale.y = marker.scale.z = 0.05
        marker.color.g = marker.color.a = 1.0
        marker.color.r = 1.0 - target.confidence
        self.marker_pub.publish(marker)

    def publish_zones(self, output):
        """The footprint and the stop and slowdown zones in the direction of travel, in
        frame_id, for rviz: red when the monitor stops the robot, orange when it slows it.
        """
        monitor = self.controller.settings.monitor
        forward = output.linear >= 0.0
        stamp = self.get_clock().now().to_msg()
        zones = MarkerArray()
        for index, (name, distance, colour) in enumerate((
                ('footprint', 0.0, (0.2, 0.6, 1.0)),
                ('stop', monitor.stop_distance_m,
                 (1.0, 0.1, 0.1) if output.obstacle == 'stop' else (0.6, 0.3, 0.3)),
                ('slowdown', monitor.slowdown_distance_m,
                 (1.0, 0.6, 0.0) if output.obstacle == 'slowdown' else (0.6, 0.5, 0.3)))):
            marker = Marker(ns=f'vla_{name}', id=index, type=Marker.LINE_STRIP,
                            action=Marker.ADD)
            marker.header.frame_id, marker.header.stamp = self.frame_id, stamp
            marker.pose.orientation.w = 1.0
            marker.scale.x = 0.01
            marker.color.r, marker.color.g, marker.color.b = colour
            marker.color.a = 1.0
            outline = zone_outline(monitor.footprint, distance, forward)
            marker.points = [Point(x=float(x), y=float(y)) for x, y in
                             (*outline, outline[0])]
            zones.markers.append(marker)
        self.zones_pub.publish(zones)

    def publish_status(self, status: str):
        if status != self.last_status:
            self.last_status = status
            self.status_pub.publish(String(data=status))

    def _stop_driving(self, status: str):
        """Cancel the control timer and send zero (and `status`), waiting for delivery."""
        if self.timer is not None:
            self.destroy_timer(self.timer)
            self.timer = None
            self.controller.stop()
            self.publish_velocity(0.0, 0.0)
            self.publish_status(status)
            self.cmd_pub.wait_for_all_acked(Duration(seconds=1.0))  # reliable: wait for delivery

    def shutdown(self):
        """Stop the robot: cancel the timer and send zero before the node goes away."""
        self._stop_driving('stopped: shutdown')
        self._release()


def main(args=None):
    return run_node(ActionPolicyNode, args)


if __name__ == '__main__':
    raise SystemExit(main())
