"""action_policy: instruction + target -> cmd_vel at a fixed rate, behind the safety layer."""

import math

from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PointStamped, Twist, TwistStamped, Vector3Stamped
from rcl_interfaces.msg import SetParametersResult
from rclpy.duration import Duration
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from std_msgs.msg import Bool, Float32MultiArray, String
from std_srvs.srv import SetBool
from visualization_msgs.msg import Marker

from vla_ros.core.diagnostics import OK, Report, WARN
from vla_ros.core.encoders import ClipEncoder
from vla_ros.core.models import ModelCache
from vla_ros.core.policy import (
    ActionPolicy,
    DEFAULT_INTENTS,
    Intent,
    IntentClassifier,
    ServoConfig,
    TargetView,
)
from vla_ros.core.safety import SafetyLayer, SafetyLimits
from vla_ros.core.text import clean_command, DEFAULT_COMMAND_PREFIXES, object_phrase
from vla_ros.nodes.common import (
    declare_model_parameters,
    descriptor,
    DIAGNOSTICS_PERIOD_S,
    embedding_model_name,
    publish_report,
    run_node,
    THROTTLE_S,
)

LATCHED = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                     durability=DurabilityPolicy.TRANSIENT_LOCAL)

SAFETY_PARAMETERS = {
    'max_linear_mps': (0.5, (0.01, 5.0), 'largest |linear.x| ever sent (m/s)'),
    'max_angular_rps': (1.0, (0.01, 10.0), 'largest |angular.z| ever sent (rad/s)'),
    'max_linear_accel': (0.5, (0.01, 20.0), 'speed-up limit (m/s^2); braking is not limited'),
    'max_angular_accel': (2.0, (0.01, 50.0), 'turn speed-up limit (rad/s^2)'),
}
SERVO_PARAMETERS = {
    'turn_gain': (1.2, (0.0, 10.0), 'rad/s per unit of normalised horizontal target offset'),
    'max_turn_rps': (0.8, (0.0, 10.0), 'largest turn rate while servoing (rad/s)'),
    'centred_tolerance': (0.3, (0.0, 1.0), '|x| under which the robot also drives forward'),
    'approach_speed_mps': (0.25, (0.0, 5.0), 'forward speed while the target is small'),
    'slow_area_fraction': (0.04, (0.0, 1.0), 'target area from which to slow down'),
    'arrive_area_fraction': (0.5, (0.0, 1.0), 'target area at which the robot has arrived'),
    'arrive_bottom': (0.7, (-1.0, 1.0), "or: the target's lowest row at which it has "
                      'arrived (1 = image bottom; a distance cue for things on the floor)'),
    'arrive_confidence': (0.5, (0.0, 1.0), 'confidence the bottom-edge rule needs'),
    'arrive_min_area': (0.01, (0.0, 1.0), 'target area the bottom-edge rule needs (a '
                        'speck at the bottom edge is the floor, not a near object)'),
    'near_area': (0.15, (0.0, 1.0), 'or: once the tracked target was this large, it has '
                  'arrived when it vanishes or shrinks under near_shrink of that in one frame '
                  '(too close to be seen whole; an approached object only grows)'),
    'near_shrink': (0.33, (0.0, 1.0), 'the sudden shrink near_area means'),
    'min_approach_fraction': (0.25, (0.0, 1.0), 'slowest approach as a fraction of the speed'),
    'search_speed_rps': (0.4, (0.0, 5.0), 'turn rate while searching (rad/s)'),
    'search_timeout_s': (20.0, (0.0, 3600.0), 'search this long, then stop: "not found"'),
    'found_tolerance': (0.15, (0.0, 1.0), 'look_for: |x| at which the target is found'),
    'min_target_area': (0.0005, (0.0, 1.0), 'smaller target regions (image fraction) are '
                        'ignored as noise'),
    'confirm_s': (0.25, (0.0, 10.0), 'a target must be seen this long without a gap before '
                  'the robot steers at it (rejects flickering false detections)'),
    'lost_hold_s': (1.0, (0.0, 10.0), 'a tracked target out of sight this long is lost; '
                    'until then the robot turns to where it was, without driving'),
}
SEARCH_DIRECTIONS = {'left': 1.0, 'right': -1.0}


class ActionPolicyNode(Node):
    NODE_NAME = 'action_policy'

    def __init__(self, model_cache: ModelCache = None, **kwargs):
        super().__init__(self.NODE_NAME, **kwargs)
        model, device, dtype = declare_model_parameters(self, 'clip')
        self.control_rate_hz = self._float('control_rate_hz', 20.0, (1.0, 200.0),
                                           'cmd_vel publishing rate (Hz)', read_only=True)
        self.use_stamped = self.declare_parameter(
            'use_stamped', False, descriptor(
                'publish geometry_msgs/TwistStamped (Nav2 Kilted, ros2_control) instead of '
                'Twist', read_only=True)).value
        self.frame_id = self.declare_parameter(
            'frame_id', 'base_link', descriptor('frame_id of TwistStamped')).value
        self.input_timeout_s = self._float(
            'input_timeout_s', 1.0, (0.01, 60.0),
            'zero output when the inputs the current intent needs are older than this')
        self.camera_hfov_deg = self._float(
            'camera_hfov_deg', 90.0, (1.0, 179.0),
            'camera horizontal field of view; turns image x into a bearing for target_marker')
        self.require_camera_for_motion = self.declare_parameter(
            'require_camera_for_motion', True, descriptor(
                'plain motions ("move forward") also need a live camera stream')).value
        self.min_intent_similarity = self._float(
            'min_intent_similarity', 0.5, (-1.0, 1.0),
            'cosine similarity an instruction needs to its nearest intent', read_only=True)
        self.intent_margin = self._float(
            'intent_margin', 0.02, (0.0, 2.0),
            'lead the nearest intent needs over the runner-up', read_only=True)
        self.search_direction = self.declare_parameter(
            'search_direction', 'left', descriptor(
                'which way to turn while searching', additional_constraints='left|right')).value
        if self.search_direction not in SEARCH_DIRECTIONS:
            raise ValueError(f"search_direction must be left or right, got "
                             f"'{self.search_direction}'")
        self.command_prefixes = list(self.declare_parameter(
            'command_prefixes', list(DEFAULT_COMMAND_PREFIXES), descriptor(
                'leading phrases stripped from a command to name its object in status')).value)
        self.settings = {name: self._float(name, default, limits, text)
                         for name, (default, limits, text)
                         in {**SAFETY_PARAMETERS, **SERVO_PARAMETERS}.items()}
        intents = self._declare_intents()

        cache = model_cache if model_cache is not None else ModelCache()
        self.encoder = ClipEncoder(cache.get('clip', model, device, dtype))
        classifier = IntentClassifier.from_encoder(
            intents, self.encoder.encode_texts, self.min_intent_similarity, self.intent_margin)
        self.policy = ActionPolicy(classifier, self._servo_config())
        self.safety = SafetyLayer(self._limits(), 1.0 / self.control_rate_hz)

        self.estop = False
        self.enabled = True
        self.object_phrase = ''
        self.pending_embedding = None
        self.last_camera_time = None
        self.targets = {}  # stamp -> [PointStamped, Vector3Stamped, arrival time]
        self.last_status = None
        self.last_tick = None

        self.cmd_pub = self.create_publisher(TwistStamped if self.use_stamped else Twist,
                                             'cmd_vel', QoSProfile(depth=1))
        self.status_pub = self.create_publisher(String, 'status', LATCHED)
        self.marker_pub = self.create_publisher(Marker, 'target_marker', QoSProfile(depth=1))
        self.marker_shown = False
        self.create_subscription(Float32MultiArray, 'text_embedding', self.on_text_embedding,
                                 LATCHED)
        self.create_subscription(Float32MultiArray, 'image_embedding', self.on_camera_alive, 1)
        self.create_subscription(PointStamped, 'target', self.on_target, 5)
        self.create_subscription(Vector3Stamped, 'target_extent', self.on_target_extent, 5)
        self.create_subscription(String, 'command', self.on_command, 10)
        self.create_subscription(Bool, 'estop', self.on_estop, LATCHED)
        self.create_service(SetBool, '~/enable', self.on_enable)
        self.add_on_set_parameters_callback(self.on_set_parameters)
        self.timer = self.create_timer(1.0 / self.control_rate_hz, self.on_control)
        self.diagnostics_pub = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        self.last_command = (0.0, 0.0)
        self.last_target_time = None
        self.create_timer(DIAGNOSTICS_PERIOD_S, self.publish_diagnostics)
        self.publish_status('idle')
        self.get_logger().info(
            f'ready: intents from {self.encoder.name} on {self.encoder.loaded.device}, '
            f'{len(intents)} intents, cmd_vel {"TwistStamped" if self.use_stamped else "Twist"}'
            f' at {self.control_rate_hz:g} Hz, limits {self.settings["max_linear_mps"]:g} m/s '
            f'{self.settings["max_angular_rps"]:g} rad/s')

    # Parameters -------------------------------------------------------------------------
    def _float(self, name, default, limits, text, read_only=False):
        return self.declare_parameter(name, float(default), descriptor(
            text, read_only=read_only, float_range=limits)).value

    def _declare_intents(self):
        defaults = {intent.name: intent for intent in DEFAULT_INTENTS}
        names = self.declare_parameter(
            'intents', [intent.name for intent in DEFAULT_INTENTS], descriptor(
                'intent names; each has intent.<name>.behaviour (stop|motion|go_to|look_for), '
                '.phrases, .linear_mps, .angular_rps, .duration_s', read_only=True)).value
        intents = []
        for name in names:
            default = defaults.get(name)

            def declared(key, fallback, name=name, default=default):
                """intent.<name>.<key>: the built-in value, else `fallback` (a type = unset)."""
                initial = getattr(default, key) if default is not None else fallback
                initial = list(initial) if isinstance(initial, tuple) else initial
                return self.declare_parameter(f'intent.{name}.{key}', initial, descriptor(
                    f'intent {name}: {key}', read_only=True)).value

            behaviour = declared('behaviour', Parameter.Type.STRING)
            phrases = declared('phrases', Parameter.Type.STRING_ARRAY)
            if behaviour is None or not phrases:
                raise ValueError(f"intent '{name}' needs intent.{name}.behaviour "
                                 f'(stop|motion|go_to|look_for) and intent.{name}.phrases')
            intents.append(Intent(
                name=name, behaviour=behaviour, phrases=tuple(phrases),
                linear_mps=declared('linear_mps', 0.0), angular_rps=declared('angular_rps', 0.0),
                duration_s=declared('duration_s', 0.0)))
        return intents

    def _limits(self):
        return SafetyLimits(**{name: self.settings[name] for name in SAFETY_PARAMETERS})

    def _servo_config(self):
        return ServoConfig(search_direction=SEARCH_DIRECTIONS[self.search_direction],
                           **{name: self.settings[name] for name in SERVO_PARAMETERS})

    def on_set_parameters(self, parameters):
        for parameter in parameters:
            if parameter.name == 'search_direction' and parameter.value not in SEARCH_DIRECTIONS:
                return SetParametersResult(successful=False,
                                           reason='search_direction must be left or right')
        # Callbacks, timer and this run in one callback group, so no lock is needed.
        for parameter in parameters:
            if parameter.name in self.settings:
                self.settings[parameter.name] = parameter.value
            elif parameter.name in ('input_timeout_s', 'require_camera_for_motion',
                                    'camera_hfov_deg', 'search_direction', 'frame_id',
                                    'command_prefixes'):
                setattr(self, parameter.name, parameter.value)
        self.safety.limits = self._limits()
        self.policy.servo_config = self._servo_config()
        return SetParametersResult(successful=True)

    # Inputs: callbacks only store --------------------------------------------------------
    def now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def on_text_embedding(self, msg):
        label = embedding_model_name(msg)
        if label != self.encoder.name:
            self.get_logger().warning(
                f"ignored a text embedding from model '{label}'; this policy compares with "
                f"'{self.encoder.name}' (set the same model on both nodes)",
                throttle_duration_sec=THROTTLE_S)
            return
        self.pending_embedding = list(msg.data)

    def on_command(self, msg):
        self.object_phrase = object_phrase(clean_command(msg.data)[0], self.command_prefixes)

    def on_camera_alive(self, msg):
        self.last_camera_time = self.now()

    def _target_entry(self, header):
        key = (header.stamp.sec, header.stamp.nanosec)
        if key not in self.targets:
            if len(self.targets) >= 8:  # bounded: forget the oldest unmatched halves
                self.targets.pop(min(self.targets))
            self.targets[key] = [None, None, self.now()]
        return self.targets[key]

    def on_target(self, msg):
        self._target_entry(msg.header)[0] = msg
        self.last_camera_time = self.now()

    def on_target_extent(self, msg):
        self._target_entry(msg.header)[1] = msg

    def on_estop(self, msg):
        if msg.data and not self.estop:
            self.get_logger().warning('e-stop ENGAGED: publishing zero until it is released')
        elif self.estop and not msg.data:
            self.get_logger().info('e-stop released')
        self.estop = msg.data

    def on_enable(self, request, response):
        self.enabled = bool(request.data)
        response.success = True
        response.message = 'enabled' if self.enabled else 'disabled: publishing zero'
        self.get_logger().info(response.message)
        return response

    # Control ----------------------------------------------------------------------------
    def latest_target(self):
        """(TargetView, arrival time) of the newest target whose extent has arrived too."""
        complete = [key for key, (point, extent, _) in self.targets.items()
                    if point is not None and extent is not None]
        if not complete:
            return None, None
        newest = max(complete)
        point, extent, arrived = self.targets[newest]
        for key in [key for key in self.targets if key < newest]:
            del self.targets[key]
        view = TargetView(x=point.point.x, y=point.point.y, confidence=point.point.z,
                          area=extent.vector.x, bottom=extent.vector.z)
        return view, arrived

    def on_control(self):
        now = self.now()
        if self.pending_embedding is not None:
            status = self.policy.set_instruction(self.pending_embedding, self.object_phrase,
                                                 now)
            self.pending_embedding = None
            self.get_logger().info(f'instruction: {status}')
        target, target_time = self.latest_target()
        timeout = self.input_timeout_s
        target_fresh = target_time is not None and now - target_time <= timeout
        camera_fresh = self.last_camera_time is not None and \
            now - self.last_camera_time <= timeout
        self.publish_marker(target if target_fresh else None)
        wanted = self.policy.step(now, target if target_fresh else None)
        fresh = (not wanted.needs_target or target_fresh) and (
            not wanted.needs_camera or not self.require_camera_for_motion or camera_fresh)
        dt = None if self.last_tick is None else now - self.last_tick
        self.last_tick = now
        command = self.safety.filter(wanted.linear, wanted.angular, estop=self.estop,
                                     enabled=self.enabled, inputs_fresh=fresh, dt=dt)
        self.last_command, self.last_target_time = (command.linear, command.angular), target_time
        self.publish_velocity(command.linear, command.angular)
        reason = command.stop_reason
        self.publish_status(f'stopped: {reason}' if reason else wanted.status)

    def publish_diagnostics(self):
        now = self.now()

        def age(stamp):
            return 'never' if stamp is None else f'{now - stamp:.2f}'

        intent = self.policy.state.intent
        values = {
            'status': self.last_status, 'intent': intent.name if intent else 'none',
            'e-stop': str(self.estop), 'enabled': str(self.enabled),
            'target age (s)': age(self.last_target_time),
            'camera age (s)': age(self.last_camera_time),
            'cmd_vel linear.x': f'{self.last_command[0]:+.3f}',
            'cmd_vel angular.z': f'{self.last_command[1]:+.3f}',
            'limits': f'{self.safety.limits.max_linear_mps:g} m/s, '
                      f'{self.safety.limits.max_angular_rps:g} rad/s',
        }
        held = self.last_status or ''
        level = WARN if held.startswith(('stopped: e-stop', 'stopped: disabled',
                                         'stopped: stale input')) else OK
        publish_report(self.diagnostics_pub, self, 'control', self.encoder.name,
                       Report(level, held, values))

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
        half_fov = math.radians(self.camera_hfov_deg) / 2.0
        bearing = -math.atan(target.x * math.tan(half_fov))  # image right = clockwise
        marker.action = Marker.ADD
        marker.pose.orientation.z = math.sin(bearing / 2.0)
        marker.pose.orientation.w = math.cos(bearing / 2.0)
        marker.scale.x = 0.3 + 0.7 * (1.0 - min(target.area, 1.0))  # shorter when closer
        marker.scale.y = marker.scale.z = 0.05
        marker.color.g = marker.color.a = 1.0
        marker.color.r = 1.0 - target.confidence
        self.marker_pub.publish(marker)

    def publish_status(self, status: str):
        if status != self.last_status:
            self.last_status = status
            self.status_pub.publish(String(data=status))

    def shutdown(self):
        """Stop the robot: cancel the timer and send zero before the node goes away."""
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
            self.safety.reset()
            self.publish_velocity(0.0, 0.0)
            self.publish_status('stopped: shutdown')
            self.cmd_pub.wait_for_all_acked(Duration(seconds=1.0))  # reliable: wait for delivery


def main(args=None):
    return run_node(ActionPolicyNode, args)


if __name__ == '__main__':
    raise SystemExit(main())
