"""The managed (lifecycle) node every vla_ros node is, with its parameters and /diagnostics.

unconfigured -> configure: the outputs are created (parameters are declared and checked at
construction) -> inactive -> activate: models loaded, inputs subscribed -> active ->
deactivate: the node stops its own work (the policy sends zero), inputs are dropped and
what activate loaded is freed -> inactive -> cleanup: outputs destroyed. With `autostart`
(the default) a node configures and activates itself at start; else a lifecycle manager
(`ros2 lifecycle set`, nav2_lifecycle_manager) drives it.
"""

import threading

from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import SetParametersResult
from rclpy.lifecycle import LifecycleNode, TransitionCallbackReturn

from vla_ros.core.diagnostics import Report, WARN
from vla_ros.core.errors import ModelLoadError
from vla_ros.nodes.conversions import diagnostic_array
from vla_ros.nodes.parameters import check_change, declare

THROTTLE_S = 2.0  # one line per this many seconds for a warning that repeats
DIAGNOSTICS_PERIOD_S = 1.0

SUCCESS, FAILURE = TransitionCallbackReturn.SUCCESS, TransitionCallbackReturn.FAILURE


class ManagedNode(LifecycleNode):
    """A subclass gives its parameter table and implements, as it needs:
    make_outputs() (with self.output), activate() -> the 'ready' line (loads, subscribes
    with self.input; may raise: what it took is released), activated() (outputs are live
    now), stop(reason) (its own work ends: before the inputs go), unload() (frees what
    activate loaded; safe to repeat), publish_diagnostics(); and for live parameter
    changes validate_parameter, validate_values, apply_parameter and values_changed. It ends
    its __init__ with self.start().
    """

    NODE_NAME = ''

    def __init__(self, node_name: str, params: dict, **node_kwargs):
        super().__init__(node_name, **node_kwargs)
        self.params = dict(params)
        self.values = declare(self, self.params)  # a snapshot; changed under the lock
        self.parameter_lock = threading.Lock()
        self.lifecycle_state = 'unconfigured'  # as `ros2 lifecycle get` names it
        self._inputs, self._outputs = [], []
        self._transition_error = None
        self.diagnostics_pub = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        self.create_timer(DIAGNOSTICS_PERIOD_S, self.publish_diagnostics)

    def declare_more(self, params: dict) -> None:
        """Declare parameters whose names depend on others (the policy's intents)."""
        self.params.update(params)
        self.values.update(declare(self, params))

    def start(self) -> None:
        """Take live parameter changes from now on (declarations are done); configure and
        activate with `autostart` (a failure raises what went wrong), else wait for a
        lifecycle manager.
        """
        self.add_on_set_parameters_callback(self._on_set_parameters)
        if not self.values['autostart']:
            self.get_logger().info(
                f'unconfigured (autostart false): `ros2 lifecycle set '
                f'{self.get_fully_qualified_name()} configure`, then `activate`')
            return
        for trigger in (self.trigger_configure, self.trigger_activate):
            if trigger() != SUCCESS:
                raise self._transition_error or RuntimeError('lifecycle transition failed')

    def output(self, message_type, topic, qos, **kwargs):
        """A publisher that sends only while the node is active."""
        publisher = self.create_lifecycle_publisher(message_type, topic, qos, **kwargs)
        self._outputs.append(publisher)
        return publisher

    def input(self, message_type, topic, callback, qos, **kwargs):
        """A subscription that lives while the node is active."""
        subscription = self.create_subscription(message_type, topic, callback, qos, **kwargs)
        self._inputs.append(subscription)
        return subscription

    # Transitions ------------------------------------------------------------------------
    def on_configure(self, state) -> TransitionCallbackReturn:
        try:
            self.make_outputs()
        except Exception as error:  # noqa: BLE001 - any failure: back to unconfigured, clean
            self._destroy_outputs()
            return self._failed('configure', error)
        self.lifecycle_state = 'inactive'
        return SUCCESS

    def on_activate(self, state) -> TransitionCallbackReturn:
        try:
            ready = self.activate()
        except Exception as error:  # noqa: BLE001 - any failure: stay inactive, nothing held
            self.release()
            return self._failed('activate', error)
        result = super().on_activate(state)
        self.lifecycle_state = 'active'
        self.activated()
        self.get_logger().info(f'ready: {ready}')
        return result

    def on_deactivate(self, state) -> TransitionCallbackReturn:
        self.stop('inactive')
        self.release()
        self.get_logger().info('inactive: inputs dropped, model released')
        self.lifecycle_state = 'inactive'
        return super().on_deactivate(state)

    def on_cleanup(self, state) -> TransitionCallbackReturn:
        self._destroy_outputs()
        self.lifecycle_state = 'unconfigured'
        return SUCCESS

    def on_shutdown(self, state) -> TransitionCallbackReturn:
        self.shutdown()
        self._destroy_outputs()
        self.lifecycle_state = 'finalized'
        return SUCCESS

    def on_error(self, state) -> TransitionCallbackReturn:
        """A transition raised: stop, release everything, back to unconfigured."""
        self.shutdown()
        self._destroy_outputs()
        self.lifecycle_state = 'unconfigured'
        return SUCCESS

    def shutdown(self) -> None:
        """Stop the node's work and free what it holds before it goes away; safe to repeat."""
        self.stop('shutdown')
        self.release()

    def release(self) -> None:
        for subscription in self._inputs:
            self.destroy_subscription(subscription)
        self._inputs = []
        self.unload()

    def _destroy_outputs(self) -> None:
        for publisher in self._outputs:
            self.destroy_lifecycle_publisher(publisher)
        self._outputs = []

    def _failed(self, transition: str, error: Exception) -> TransitionCallbackReturn:
        """One log line for a failed transition; start() raises the error."""
        self._transition_error = error
        kind = '' if isinstance(error, (ModelLoadError, ValueError, OSError)) else \
            f'{type(error).__name__}: '
        self.get_logger().error(f'cannot {transition}: {kind}{error}')
        return FAILURE

    # Hooks ------------------------------------------------------------------------------
    def make_outputs(self) -> None:
        pass

    def activate(self) -> str:
        return 'active'

    def activated(self) -> None:
        pass

    def stop(self, reason: str) -> None:
        pass

    def unload(self) -> None:
        pass

    def publish_diagnostics(self) -> None:
        pass

    def report(self, task: str, hardware_id: str, report: Report) -> None:
        """One core Report on /diagnostics."""
        self.diagnostics_pub.publish(diagnostic_array(
            report, f'{self.get_fully_qualified_name()}: {task}', hardware_id,
            self.get_clock().now().to_msg()))

    def report_idle(self, task: str, hardware_id: str, doing: str) -> None:
        """While not active: WARN that the node is not doing its job, and why."""
        state = self.lifecycle_state
        self.report(task, hardware_id, Report(WARN, f'{state}: not {doing} (lifecycle)',
                                              {'lifecycle state': state}))

    # Parameters -------------------------------------------------------------------------
    def validate_parameter(self, parameter) -> str:
        """Why a new value is refused, or '' to accept it."""
        return ''

    def validate_values(self, values: dict) -> str:
        """Why a set of new values is refused together, or ''."""
        return ''

    def apply_parameter(self, parameter) -> None:
        """Take an accepted value into use (called under the parameter lock)."""

    def values_changed(self) -> None:
        """After a change was applied (under the parameter lock)."""

    def _on_set_parameters(self, parameters):
        values, checked = dict(self.values), []
        for parameter in parameters:
            value, reason = check_change(self.params, parameter)
            reason = reason or self.validate_parameter(parameter)
            if reason:
                return SetParametersResult(successful=False, reason=reason)
            values[parameter.name] = value
            checked.append(parameter)
        reason = self.validate_values(values)
        if reason:
            return SetParametersResult(successful=False, reason=reason)
        with self.parameter_lock:
            self.values.update(values)
            for parameter in checked:
                self.apply_parameter(parameter)
            self.values_changed()
        return SetParametersResult(successful=True)
