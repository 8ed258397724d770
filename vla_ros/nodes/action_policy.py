"""action_policy: instruction + target -> cmd_vel at a fixed rate, behind the safety layer.

A translation around core.control.Controller: messages in, one Controller.tick per control
period, Twist and status out.

Clocks: the control timer and every input's age run on the steady clock, which neither jumps
nor stalls, so a /clock that jumps back or stops cannot keep stale input looking fresh or stop
cmd_vel. The policy's own timing (searches, motions) runs on ROS time under use_sim_time and
on the steady clock otherwise; simulated time that stops stops the robot.
"""

import math

from geometry_msgs.msg import Twist, TwistStamped
from rclpy.clock import Clock, ClockType
from rclpy.duration import Duration
from std_msgs.msg import String
from visualization_msgs.msg import Marker, MarkerArray

from vla_ros.core.config import build_intents, intent_params, laser_pose, NODE_TABLES
from vla_ros.core.control import Controller, ControlSettings
from vla_ros.core.diagnostics import control_report
from vla_ros.core.encoders import ClipEncoder
from vla_ros.core.models import ModelCache
from vla_ros.core.status import is_invalid_embedding, is_refusal
from vla_ros.core.text import clean_command
from vla_ros.nodes import markers
from vla_ros.nodes.estop import EstopInput
from vla_ros.nodes.lifecycle import ManagedNode, THROTTLE_S
from vla_ros.nodes.policy_inputs import PolicyInputs
from vla_ros.nodes.process import run_node
from vla_ros.nodes.qos import LATCHED, RELIABLE_LATEST

ZONES_EVERY = 5  # control ticks between two collision_zones messages (rviz needs few)
NO_SCAN_WARNING_S = 3.0  # after activation: no scan yet (require_scan auto) is said once
REQUIRE_SCAN_SAID = {'true': 'required', 'false': 'optional',
                     'auto': 'required once a scan has come'}


class ActionPolicyNode(ManagedNode):
    """activate loads the CLIP (the intents' phrasings) and starts listening and the control
    timer; deactivate sends a zero Twist, stops and frees the model.
    """

    NODE_NAME = 'action_policy'

    def __init__(self, model_cache: ModelCache = None, **kwargs):
        super().__init__(self.NODE_NAME, NODE_TABLES[self.NODE_NAME], **kwargs)
        # `intents` names the intent.<name>.* parameters to declare next.
        self.declare_more({param.name: param for name in self.values['intents']
                           for param in intent_params(name)})
        self.intents = build_intents(self.values)
        self.settings = ControlSettings.from_values(self.values)  # checked before any load
        self.use_stamped = self.values['use_stamped']
        self.sim_time = self.get_parameter('use_sim_time').value
        self.steady = Clock(clock_type=ClockType.STEADY_TIME)
        self.policy_clock = self.get_clock() if self.sim_time else self.steady
        self.clock_seen = (None, None)  # (ROS time, steady time when it last moved)
        self._model_cache = model_cache if model_cache is not None else ModelCache()
        self.encoder = self.controller = self.timer = self.no_scan_timer = None  # while active
        self.cmd_pub = None  # configured
        self.estop, self.inputs = EstopInput(self), PolicyInputs(self, laser_pose(self.values))
        self.last_segmentation_age = self.last_output = self.last_status = None
        self.last_refused, self.marker_shown, self.ticks = '', False, 0
        self.last_command = (0.0, 0.0)
        self.start()

    # Lifecycle --------------------------------------------------------------------------
    def make_outputs(self):
        self.cmd_pub = self.output(TwistStamped if self.use_stamped else Twist, 'cmd_vel',
                                   RELIABLE_LATEST)
        self.status_pub = self.output(String, 'status', LATCHED)
        self.marker_pub = self.output(Marker, 'target_marker', RELIABLE_LATEST)
        self.zones_pub = self.output(MarkerArray, 'collision_zones', RELIABLE_LATEST)
        self.exploration_display = markers.ExplorationDisplay(
            self, self.values['map_publish_period_s'])

    def activate(self) -> str:
        self.encoder = ClipEncoder(self._model_cache.get(
            'clip', self.values['model'], self.values['device'], self.values['dtype']))
        self.controller = Controller.from_encoder(self.intents, self.encoder.encode_texts,
                                                  self.settings)
        self.inputs.clear()
        self.inputs.subscribe()
        self.estop.subscribe()
        self.timer = self.create_timer(1.0 / self.values['control_rate_hz'], self.on_control,
                                       clock=self.steady)
        if self.values['require_scan'] == 'auto':
            self.no_scan_timer = self.create_timer(NO_SCAN_WARNING_S, self.warn_if_no_scan,
                                                   clock=self.steady)
        values = self.values
        return (f'intents from {self.encoder.name} on {self.encoder.loaded.device}, '
                f'{len(self.intents)} intents, cmd_vel '
                f'{"TwistStamped" if self.use_stamped else "Twist"} at '
                f'{values["control_rate_hz"]:g} Hz, limits {values["max_linear_mps"]:g} m/s '
                f'{values["max_angular_rps"]:g} rad/s (ceilings '
                f'{values["hard_max_linear_mps"]:g} m/s {values["hard_max_angular_rps"]:g} '
                f'rad/s), input timeout {values["input_timeout_s"]:g} s, collision monitor on '
                f'{self.resolve_topic_name("scan")} ({REQUIRE_SCAN_SAID[values["require_scan"]]})')

    def activated(self):
        self.last_status = None
        self.publish_status('idle')

    def warn_if_no_scan(self):
        """Once after activation: a robot without a scanner is told its monitor is off."""
        self.destroy_timer(self.no_scan_timer)
        self.no_scan_timer = None
        if self.inputs.scan is None:
            self.get_logger().warning(
                f'no scan on {self.resolve_topic_name("scan")} since activation: the '
                'collision monitor has no source and motion is unmonitored (require_scan '
                'auto: from the first scan on, one is required and a scanner that stops '
                "stops the robot; set require_scan 'true' to need one from the start)")

    def stop(self, reason: str):
        """Cancel the timers and send zero (and 'stopped: <reason>'), waiting for delivery."""
        if self.no_scan_timer is not None:
            self.destroy_timer(self.no_scan_timer)
            self.no_scan_timer = None
        if self.timer is not None:
            self.destroy_timer(self.timer)
            self.timer = None
            self.controller.stop()
            self.publish_velocity(0.0, 0.0)
            self.publish_status(f'stopped: {reason}')
            self.cmd_pub.wait_for_all_acked(Duration(seconds=1.0))  # reliable: wait for delivery

    def unload(self):
        if self.encoder is not None:
            self._model_cache.release(self.encoder.loaded)
            self.encoder = self.controller = None

    # Parameters -------------------------------------------------------------------------
    def validate_values(self, values: dict) -> str:
        try:
            ControlSettings.from_values(values)
        except ValueError as error:
            return str(error)
        return ''

    def values_changed(self):
        # Callbacks, timer and this run in one callback group: the tick sees all or none.
        self.settings = ControlSettings.from_values(self.values)
        if self.controller is not None:
            self.controller.configure(self.settings)

    def now(self) -> float:
        """Arrival times and ages: the steady clock."""
        return self.steady.now().nanoseconds * 1e-9

    # Control ----------------------------------------------------------------------------
    def instruct(self, policy_now: float):
        """Hand a decided command to the controller; one log line says what became of it."""
        decided = self.inputs.command(self.now())
        if decided is None:
            return
        vector, text = decided
        status = self.controller.instruct(
            vector, None if text is None else clean_command(text)[0], policy_now)
        refused = is_refusal(status)
        if refused:
            if status != self.last_refused:  # one line a command, not one a repeat
                self.get_logger().warning(f'{status} ({self.controller.refusal}); holding still')
        elif is_invalid_embedding(status):
            self.get_logger().warning(f'instruction refused, holding still: {status}',
                                      throttle_duration_sec=THROTTLE_S)
        else:
            self.get_logger().info(f'instruction: {status}')
        self.last_refused = status if refused else ''

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
        self.instruct(policy_now)
        read = self.inputs.read(now)
        if read.odom_frame_changed:
            self.controller.forget_places()
        if read.new_scan is not None:
            self.controller.observe_scan(read.new_scan, read.odom, read.odom_age)
        if read.new_view is not None:
            self.controller.observe_view(read.new_view, read.odom, read.odom_age)
        output = self.controller.tick(
            policy_now, read.target, read.target_age, read.camera_age,
            estop=self.estop.engaged, enabled=self.estop.enabled,
            clock_age=self._clock_age(now, policy_now), scan=read.scan, scan_age=read.scan_age,
            segmentation=read.segmentation, scan_blind_ahead=read.scan_blind_ahead,
            odom=read.odom, odom_age=read.odom_age)
        self.last_output, self.ticks = output, self.ticks + 1
        if self.controller.odometry_jumped:
            self.controller.odometry_jumped = False
            self.get_logger().warning('odom jumped or changed its frame: map and memory reset',
                                      throttle_duration_sec=THROTTLE_S)
        if self.controller.odometry_stuck:
            self.get_logger().warning(
                'odom shows no motion while the base was sent to move: not used until it '
                'shows that motion again or a new command comes (a frozen driver, odometry of '
                'another frame, or a base held downstream)', throttle_duration_sec=THROTTLE_S)
        if output.clock_jump_s:
            self.get_logger().warning(
                f'ROS time jumped {"back" if output.clock_jump_s < 0 else "ahead"} '
                f"{abs(output.clock_jump_s):.3f} s: not counted by the policy's timers "
                '(input ages are on the steady clock)', throttle_duration_sec=THROTTLE_S)
        stamp, frame = self.get_clock().now().to_msg(), self.values['frame_id']
        if self.ticks % ZONES_EVERY == 0:
            self.zones_pub.publish(markers.zone_markers(
                self.settings.monitor, output.obstacle, output.linear >= 0.0, frame, stamp))
        visible = output.target is not None and output.target.visible
        if visible or self.marker_shown:  # a lost target's arrow is deleted once
            self.marker_pub.publish(markers.target_marker(
                output.target, frame, stamp, self.values['camera_hfov_deg']))
        self.marker_shown = visible
        self.last_command = (output.linear, output.angular)
        self.last_segmentation_age = None if read.segmentation is None else (
            read.segmentation.age)
        self.publish_velocity(output.linear, output.angular)
        self.publish_status(output.status)
        self.exploration_display.publish(self.controller, self.inputs.odom_frame, now, stamp)

    # Outputs ----------------------------------------------------------------------------
    def publish_diagnostics(self):
        if self.controller is None:
            self.report_idle('control', 'clip', 'driving')
            return
        now = self.now()

        def age(stamp):
            return 'never' if stamp is None else f'{now - stamp:.2f}'

        intent, output, inputs = self.controller.intent, self.last_output, self.inputs
        values = {
            'status': self.last_status, 'intent': intent.name if intent else 'none',
            **self.estop.diagnostic_values(),
            'target age (s)': age(inputs.target_time),
            'segmentation age (s)': 'never' if self.last_segmentation_age is None
            else f'{self.last_segmentation_age:.2f}',
            'camera age (s)': age(inputs.camera_time),
            'cmd_vel linear.x': f'{self.last_command[0]:+.3f}',
            'cmd_vel angular.z': f'{self.last_command[1]:+.3f}',
            'limits': f'{self.values["max_linear_mps"]:g} m/s, '
                      f'{self.values["max_angular_rps"]:g} rad/s',
            'collision monitor': output.obstacle if output else 'no scan',
            'scan age (s)': age(None if inputs.scan is None else inputs.scan[1]),
            'odom age (s)': age(inputs.odometry.arrived),
            'odometry': 'stuck: shows no motion the commands made'
            if self.controller.odometry_stuck else 'ok',
            'free travel (m)': 'n/a' if not output else f'{output.free_m:.2f}',
            'scan required': str(self.values['require_scan']),
            'scan problem': inputs.scans.problem or 'none',
            'inputs dropped as unusable': ', '.join(
                f'{topic} {count}' for topic, count in sorted(inputs.dropped.items())) or 'none',
        }
        self.report('control', self.encoder.name, control_report(
            self.last_status, values, inputs.scan is not None,
            output.obstacle if output else None))
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
            stamped.header.frame_id = self.values['frame_id']
            self.cmd_pub.publish(stamped)
        else:
            self.cmd_pub.publish(twist)

    def publish_status(self, status: str):
        if status != self.last_status:
            self.last_status = status
            self.status_pub.publish(String(data=status))


def main(args=None):
    return run_node(ActionPolicyNode, args)


if __name__ == '__main__':
    raise SystemExit(main())
