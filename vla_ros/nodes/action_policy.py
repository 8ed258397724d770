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
from geometry_msgs.msg import PointStamped, Twist, TwistStamped, Vector3Stamped
from nav_msgs.msg import Odometry
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
from vla_ros.core.diagnostics import control_report, Report, WARN
from vla_ros.core.encoders import ClipEncoder
from vla_ros.core.inputs import LatestOdometry, LatestScan, TargetPairing
from vla_ros.core.models import ModelCache
from vla_ros.core.policy import Segmentation
from vla_ros.core.safety import EstopSources
from vla_ros.core.text import clean_command
from vla_ros.nodes import conversions as convert
from vla_ros.nodes.common import (
    Autostart,
    DIAGNOSTICS_PERIOD_S,
    publish_report,
    run_node,
    THROTTLE_S,
)
from vla_ros.nodes.markers import target_marker, zone_markers
from vla_ros.nodes.parameters import check_change, declare
from vla_ros.nodes.qos import LATCHED, RELIABLE_LATEST

TEXT_WAIT_S = 0.5  # an embedding waits this long for its command's text (steady clock)
# An e-stop must engage from a publisher of any QoS: one subscription per kind of publisher it
# could match (latched state, reliable stream, best-effort stream); each press is idempotent.
ESTOP_QOS = (LATCHED, QoSProfile(depth=10),
             QoSProfile(depth=10, reliability=ReliabilityPolicy.BEST_EFFORT))


ZONES_EVERY = 5  # control ticks between two collision_zones messages (rviz needs few)
NO_SCAN_WARNING_S = 3.0  # after activation: no scan yet (require_scan auto) is said once
REQUIRE_SCAN_SAID = {'true': 'required', 'false': 'optional',
                     'auto': 'required once a scan has come'}


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
        self.targets = TargetPairing()  # PointStamped, Vector3Stamped, TimeReference
        self.last_status = None
        self.marker_shown = False
        self.last_command = (0.0, 0.0)
        self.last_target_time = None
        self.last_segmentation_age = None  # at the last tick
        # The newest LaserScan and Odometry with their arrival (the callbacks' hand-over),
        # the last ones read at a tick, and what the core keeps of the good ones.
        self.scan = self.odom = self.scan_read = self.odom_read = None
        self.scans, self.odometry = LatestScan(), LatestOdometry()
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
        self.pending, self.instruction = None, None
        self.last_camera_time = self.last_target_time = None
        self.scan = self.odom = self.scan_read = self.odom_read = None
        self.targets.clear(), self.scans.clear(), self.odometry.clear()
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
        label = convert.embedding_model_name(msg)
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
        self.pending = (list(msg.data), convert.embedding_text(msg), self.now())

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

    def read_sensors(self, now: float):
        """(scan points, scan age, odometry pose, odometry age) for this tick, reading the
        newest LaserScan and Odometry if not read yet. One that cannot be used is dropped
        with a throttled warning and counted; the last good one then ages. Odometry stamped
        no later than the last is no news (a frozen driver, an old message).
        """
        if self.scan is not None and self.scan[0] is not self.scan_read:
            msg, arrived = self.scan
            self.scan_read = msg
            problem = self.scans.take(*convert.scan_of(msg, self.laser_pose), arrived)
            if problem:
                self.count_dropped('scan')
                self.get_logger().warning(f'dropped a scan message: {problem}',
                                          throttle_duration_sec=THROTTLE_S)
        if self.odom is not None and self.odom[0] is not self.odom_read:
            msg, arrived = self.odom
            self.odom_read = msg
            pose, problem = convert.pose_of(msg)
            if problem:
                self.count_dropped('odom')
                self.get_logger().warning(f'dropped an odom message: {problem}',
                                          throttle_duration_sec=THROTTLE_S)
            elif not self.odometry.take(pose, convert.stamp_key(msg.header), arrived):
                self.get_logger().warning(
                    'odom stamped no later than the last: not counted as fresh (a frozen '
                    'driver, or a second publisher?)', throttle_duration_sec=THROTTLE_S)
        return (*self.scans.points(now), *self.odometry.pose(now))

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
            self.targets.add(convert.stamp_key(msg.header), 0, msg, self.now())
            self.last_camera_time = self.now()

    def on_target_extent(self, msg):
        vector = msg.vector
        if self._usable(msg, 'target_extent', (vector.x, vector.y, vector.z), EXTENT_RANGES):
            self.targets.add(convert.stamp_key(msg.header), 1, msg, self.now())

    def on_target_source(self, msg):
        lead = convert.segmentation_lead(msg)
        if lead < 0.0:
            self.count_dropped('target_source')
            self.get_logger().warning(
                'dropped a target_source message: its segmentation (time_ref) is stamped '
                f'{-lead:.3f} s after its own frame', throttle_duration_sec=THROTTLE_S)
        elif self._usable(msg, 'target_source', (lead,)):
            self.targets.add(convert.stamp_key(msg.header), 2, msg, self.now())

    def _estop_publishers(self) -> dict:
        """GUID -> node name of every publisher on estop now."""
        return {bytes(info.endpoint_gid): f'{info.node_namespace.rstrip("/")}/{info.node_name}'
                for info in self.get_publishers_info_by_topic(self.estop_topic)}

    def on_estop(self, msg, info):
        source, order = convert.publisher_of(info)
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
        target = target_time = target_age = segmentation = None
        newest = self.targets.newest()
        if newest is not None:
            (point, extent, source), target_time = newest
            target, target_age = convert.target_view(point, extent), now - target_time
            segmentation = Segmentation(
                age=target_age + convert.segmentation_lead(source),
                frame_stamp=convert.seconds(source.header.stamp),
                segmented_stamp=convert.seconds(source.time_ref), received=target_time)
        points, scan_age, odom, odom_age = self.read_sensors(now)
        output = self.controller.tick(
            policy_now, target, target_age,
            None if self.last_camera_time is None else now - self.last_camera_time,
            estop=self.estop.engaged, enabled=self.enabled,
            clock_age=self._clock_age(now, policy_now), scan=points, scan_age=scan_age,
            segmentation=segmentation, scan_blind_ahead=self.scans.blind_ahead, odom=odom,
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
            'odom age (s)': age(self.odometry.arrived),
            'odometry': 'stuck: shows no motion the commands made'
            if self.controller.odometry_stuck else 'ok',
            'free travel (m)': 'n/a' if not self.last_output else f'{self.last_output.free_m:.2f}',
            'scan required': str(self.values['require_scan']),
            'scan problem': self.scans.problem or 'none',
            'inputs dropped as unusable': ', '.join(
                f'{topic} {count}' for topic, count in sorted(self.dropped_inputs.items()))
            or 'none',
        }
        publish_report(self.diagnostics_pub, self, 'control', self.encoder.name, control_report(
            self.last_status, values, self.scan is not None,
            self.last_output.obstacle if self.last_output else None))
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
        """The target's arrow for rviz; deleted once when it is lost."""
        visible = target is not None and target.visible
        if visible or self.marker_shown:
            self.marker_pub.publish(target_marker(target, self.frame_id,
                                                  self.get_clock().now().to_msg(),
                                                  self.values['camera_hfov_deg']))
        self.marker_shown = visible

    def publish_zones(self, output):
        self.zones_pub.publish(zone_markers(
            self.controller.settings.monitor, output.obstacle, output.linear >= 0.0,
            self.frame_id, self.get_clock().now().to_msg()))

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
