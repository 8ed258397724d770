"""What every model node shares: parameters with descriptors, model loading, the worker, main()."""

import gc
import signal
import sys
import threading
import time

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import SetParametersResult
import rclpy
from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.lifecycle import LifecycleNode, TransitionCallbackReturn
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.signals import SignalHandlerOptions
from sensor_msgs.msg import CompressedImage, Image
import torch

from vla_ros.core.config import node_table
from vla_ros.core.diagnostics import inference_report, OK, Report, WARN
from vla_ros.core.inference import LatestWorker
from vla_ros.core.models import ModelCache, ModelLoadError, runtime_options
from vla_ros.nodes.parameters import check_change, declare
from vla_ros.nodes.qos import OVERRIDABLE, SENSOR_DATA

THROTTLE_S = 2.0
DIAGNOSTICS_PERIOD_S = 1.0


def publish_report(publisher, node: Node, task: str, hardware_id: str, report) -> None:
    """One core Report as a DiagnosticArray on /diagnostics."""
    status = DiagnosticStatus(level=bytes([report.level]), message=report.message,
                              name=f'{node.get_fully_qualified_name()}: {task}',
                              hardware_id=hardware_id)
    status.values = [KeyValue(key=key, value=str(value)) for key, value in report.values.items()]
    array = DiagnosticArray(status=[status])
    array.header.stamp = node.get_clock().now().to_msg()
    publisher.publish(array)


class Autostart:
    """For a lifecycle node with checked `values`: start() configures and activates it with
    `autostart` (a failure raises what went wrong), else leaves it to a lifecycle manager;
    failed() logs a failed transition in one line and keeps the error for start().
    """

    _transition_error = None

    def start(self) -> None:
        """Call at the end of __init__."""
        if not self.values['autostart']:
            self.get_logger().info(
                f'unconfigured (autostart false): `ros2 lifecycle set '
                f'{self.get_fully_qualified_name()} configure`, then `activate`')
            return
        for trigger in (self.trigger_configure, self.trigger_activate):
            if trigger() != TransitionCallbackReturn.SUCCESS:
                raise self._transition_error or RuntimeError('lifecycle transition failed')

    def failed(self, transition: str, error: Exception) -> TransitionCallbackReturn:
        self._transition_error = error
        kind = '' if isinstance(error, (ModelLoadError, ValueError, OSError)) else \
            f'{type(error).__name__}: '
        self.get_logger().error(f'cannot {transition}: {kind}{error}')
        return TransitionCallbackReturn.FAILURE


class ModelNode(Autostart, LifecycleNode):
    """A managed (lifecycle) node that runs one model on a newest-wins worker thread.

    unconfigured -> configure: the outputs are created (parameters are declared and checked
    at construction) -> inactive -> activate: the model is loaded (or shared), the inputs
    subscribed, the worker started -> active -> deactivate: inputs dropped, worker stopped,
    the model released and its memory freed -> inactive -> cleanup: outputs destroyed. With
    `autostart` (the default) the node configures and activates itself at start.

    Subclasses declare their own checks in __init__ and end it with `self.start()`; they
    implement make_outputs() (with self.output), load() (model objects from self.loaded),
    subscribe() (with self.input; callbacks only call `self.worker.submit(item)`, returns what
    it listens to), unload(), process(item) -> result or None (worker thread) and
    publish_result(result).
    """

    def __init__(self, node_name: str, model_kind: str, model_cache: ModelCache = None,
                 **node_kwargs):
        super().__init__(node_name, **node_kwargs)
        self._parameter_lock = threading.Lock()
        self.params = node_table(node_name)
        self.values = declare(self, self.params)  # a snapshot; changes under the lock
        self.model_source = self.values['model']
        self.max_rate_hz = self.values['max_rate_hz']
        self.stale_input_s = self.values.get('diagnostics_stale_input_s')  # None: occasional
        self.max_drop_fraction = self.values['diagnostics_max_drop_fraction']
        self.cpu_threads = self.values['cpu_threads']
        self.runtime_options = runtime_options(self.values, model_kind)
        self._model_kind = model_kind
        self._model_cache = model_cache if model_cache is not None else ModelCache()
        self.loaded = None
        self.threads_in_use = None
        self.worker = None  # while active
        self._inputs, self._outputs = [], []
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.diagnostics_pub = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        self._last_report = (None, time.monotonic())
        self.create_timer(DIAGNOSTICS_PERIOD_S, self.publish_diagnostics)

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

    # Lifecycle --------------------------------------------------------------------------
    def on_configure(self, state) -> TransitionCallbackReturn:
        try:
            self.make_outputs()
        except Exception as error:  # noqa: BLE001 - any failure: back to unconfigured, clean
            return self._failed('configure', error)
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state) -> TransitionCallbackReturn:
        try:
            self.loaded = self.get_model(self._model_kind, self.model_source)
            self.load()
            self.worker = LatestWorker(
                self.process, self.publish_result, self.max_rate_hz,
                name=f'{self.get_name()}_worker', on_error=self._report_error,
                rejected_errors=(ValueError,), on_start=self._set_cpu_threads).start()
            self._last_report = (None, time.monotonic())
            inputs = self.subscribe()
        except Exception as error:  # noqa: BLE001 - any failure: stay inactive, nothing held
            return self._failed('activate', error)
        self.get_logger().info(
            f'ready: model {self.loaded.name} ({self.loaded.source}) on {self.loaded.runtime}'
            f', at most {self.max_rate_hz:g} Hz, '
            f'{self.cpu_threads or "default"} CPU threads, input {inputs}')
        return super().on_activate(state)

    def get_model(self, kind: str, source: str):
        """A model from the cache on this node's device, dtype and backend (release() it)."""
        return self._model_cache.get(kind, source, **runtime_options(self.values, kind))

    def _failed(self, transition: str, error: Exception) -> TransitionCallbackReturn:
        self._release()
        if transition == 'configure':
            self._destroy_outputs()
        return self.failed(transition, error)

    def on_error(self, state) -> TransitionCallbackReturn:
        """A transition raised: release everything and go back to unconfigured."""
        return self.on_shutdown(state)

    def on_deactivate(self, state) -> TransitionCallbackReturn:
        self._release()
        self.get_logger().info('inactive: inputs dropped, model released')
        return super().on_deactivate(state)

    def on_cleanup(self, state) -> TransitionCallbackReturn:
        self._destroy_outputs()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state) -> TransitionCallbackReturn:
        self._release()
        self._destroy_outputs()
        return TransitionCallbackReturn.SUCCESS

    def _release(self) -> None:
        """Drop the inputs, stop the worker (joins it), free the model; safe to repeat."""
        for subscription in self._inputs:
            self.destroy_subscription(subscription)
        self._inputs = []
        if self.worker is not None and not self.worker.stop(timeout=5.0):
            self.get_logger().warning('worker thread did not stop within 5 s')
        self.worker = None
        if self.loaded is not None:
            self.unload()
            self._model_cache.release(self.loaded)
            self.loaded = None
            gc.collect()
            if torch.cuda.is_available():
                torch.cuda.empty_cache()

    def _destroy_outputs(self) -> None:
        for publisher in self._outputs:
            self.destroy_lifecycle_publisher(publisher)
        self._outputs = []

    def make_outputs(self) -> None:
        raise NotImplementedError

    def load(self) -> None:
        raise NotImplementedError

    def subscribe(self) -> str:
        raise NotImplementedError

    def unload(self) -> None:
        raise NotImplementedError

    def _set_cpu_threads(self):
        # Per thread: nodes sharing a process (vla-ros up) each keep their own count.
        if self.cpu_threads > 0:
            torch.set_num_threads(self.cpu_threads)
        self.threads_in_use = torch.get_num_threads()

    def image_input(self):
        """(topic, message type) of nodes that read camera frames."""
        self.max_image_pixels = self.values['max_image_pixels']
        self.frames_lost = 0  # by the middleware, before they reached this node
        if self.values['use_compressed']:
            return 'image/compressed', CompressedImage
        return 'image', Image

    def camera_input(self, callback):
        """The camera subscription: sensor-data QoS (overridable), and a count of the frames
        the middleware lost on the way, with a throttled warning: over best effort, frames
        too large to send in one piece (measured here with Fast DDS's defaults: 480x360 rgb8
        arrived, 640x480 never did) are lost whole, and the node would never know.
        """
        topic, message_type = self.image_topic, self.image_type
        return self.input(message_type, topic, callback, SENSOR_DATA,
                          qos_overriding_options=OVERRIDABLE,
                          event_callbacks=SubscriptionEventCallbacks(
                              message_lost=self._on_frames_lost))

    def _on_frames_lost(self, event):
        self.frames_lost += event.total_count_change
        self.get_logger().warning(
            f'{self.frames_lost} camera frame(s) lost by the middleware before reaching this '
            'node: frames too large for best effort in one piece are lost whole (here: over '
            'about 0.5 MB, 640x480 rgb8). Make the camera publisher and this subscription '
            'reliable (qos_overrides.<image topic>.subscription.reliability: reliable), or '
            'send smaller or compressed frames', throttle_duration_sec=THROTTLE_S)

    # Parameters -------------------------------------------------------------------------
    def validate_parameter(self, parameter: Parameter) -> str:
        """Return why a new value is refused, or '' to accept it (subclasses extend)."""
        return ''

    def apply_parameter(self, parameter: Parameter) -> None:
        """Take an accepted value into use (called under the parameter lock)."""
        if parameter.name == 'max_rate_hz':
            self.max_rate_hz = parameter.value
            if self.worker is not None:
                self.worker.set_max_rate(parameter.value)
        elif parameter.name == 'diagnostics_stale_input_s':
            self.stale_input_s = parameter.value
        elif parameter.name == 'diagnostics_max_drop_fraction':
            self.max_drop_fraction = parameter.value

    def publish_diagnostics(self) -> None:
        if self.worker is None or self.loaded is None:
            state = self._state_machine.current_state[1]
            publish_report(self.diagnostics_pub, self, 'inference', self._model_kind, Report(
                WARN, f'{state}: not inferring (lifecycle)', {'lifecycle state': state}))
            return
        previous, then = self._last_report
        stats, now = self.worker.stats(), time.monotonic()
        report = inference_report(
            stats, previous, now - then, now, model=self.loaded.source,
            device=self.loaded.runtime,
            stale_input_s=self.stale_input_s, max_drop_fraction=self.max_drop_fraction)
        self._last_report = (stats, now)
        report.values['backend'] = self.loaded.backend
        if hasattr(self, 'frames_lost'):
            report.values['frames lost by the middleware'] = self.frames_lost
        report.values['cpu_threads'] = self.threads_in_use
        report.values.update(self.diagnostic_values())
        problem = self.diagnostic_problem(now)
        if problem and report.level == OK:
            report = Report(WARN, problem, report.values)
        publish_report(self.diagnostics_pub, self, 'inference', self.loaded.name, report)

    def _on_set_parameters(self, parameters):
        checked = []
        for parameter in parameters:
            value, reason = check_change(self.params, parameter)
            reason = reason or self.validate_parameter(parameter)
            if reason:
                return SetParametersResult(successful=False, reason=reason)
            checked.append((parameter, value))
        with self._parameter_lock:
            for parameter, value in checked:
                self.values[parameter.name] = value
                self.apply_parameter(parameter)
        return SetParametersResult(successful=True)

    def diagnostic_values(self) -> dict:
        """A subclass's own key/values for its /diagnostics status."""
        return {}

    def diagnostic_problem(self, now: float) -> str:
        """A subclass's own reason to WARN ('' for none); `now` on time.monotonic()."""
        return ''

    # Worker -----------------------------------------------------------------------------
    def process(self, item):
        raise NotImplementedError

    def publish_result(self, result) -> None:
        raise NotImplementedError

    def _report_error(self, error, item) -> None:
        if isinstance(error, ValueError):
            self.get_logger().warning(f'dropped an input: {error}',
                                      throttle_duration_sec=THROTTLE_S)
        else:
            self.get_logger().error(f'inference failed: {type(error).__name__}: {error}',
                                    throttle_duration_sec=THROTTLE_S)

    def shutdown(self) -> None:
        """Stop inferring and free the model (joins the worker); safe to call twice."""
        self._release()


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _raise_keyboard_interrupt(signum, frame):
    hold_stop_signals()  # the next one comes during cleanup: take it, do not interrupt
    raise KeyboardInterrupt


def _take_stop_signal(signum, frame):
    """A stop signal while stopping: nothing to do, the stop is under way."""


def install_stop_signals() -> None:
    """The first SIGINT or SIGTERM arrives as KeyboardInterrupt from now on. SIGINT explicitly
    too: a process started from a background job inherits it ignored, and Python then
    installs no KeyboardInterrupt handler (the node would never stop).
    """
    _set_stop_handlers(_raise_keyboard_interrupt)


def hold_stop_signals() -> None:
    """Stop signals are taken and dropped from now on, for a process that is stopping. A Ctrl-C
    in a terminal reaches a launched node twice (from the terminal, and forwarded by launch),
    and launch may escalate to SIGTERM: neither may cut short the zero Twist, the worker's
    stop or the node's destruction. A Python handler, not SIG_IGN: one still pending when the
    handlers change would otherwise end in "Signal ignored due to race condition". The
    cleanup is bounded; SIGKILL still ends it.
    """
    _set_stop_handlers(_take_stop_signal)


def ignore_stop_signals() -> None:
    """For the interpreter's exit, once the cleanup is done: it puts default handlers back in
    place of Python ones (a SIGTERM would then kill it mid-exit) but keeps an ignored signal
    ignored.
    """
    _set_stop_handlers(signal.SIG_IGN)


def _set_stop_handlers(handler) -> None:
    if threading.current_thread() is threading.main_thread():
        for stop_signal in STOP_SIGNALS:
            signal.signal(stop_signal, handler)


def spin_until_stopped(executor, context=None) -> None:
    """Spin until SIGINT, SIGTERM or the context's end; the waits are bounded because Python
    runs signal handlers only between them.
    """
    install_stop_signals()
    while rclpy.ok(context=context):
        executor.spin_once(timeout_sec=0.2)


def wants_help(argv) -> bool:
    """Whether the command line asks for help (before any --ros-args)."""
    own = argv[1:argv.index('--ros-args')] if '--ros-args' in argv else argv[1:]
    return any(arg in ('-h', '--help') for arg in own)


def print_help(node_class) -> None:
    """What `ros2 run vla_ros <node> --help` prints: usage, what it does, its parameters."""
    import inspect

    from vla_ros.core.config import NODE_TABLES

    name = node_class.NODE_NAME
    summary = (inspect.getmodule(node_class).__doc__ or '').strip().splitlines()[0]
    print(f'usage: ros2 run vla_ros {name} [--ros-args -p NAME:=VALUE ... '
          f'--params-file FILE -r FROM:=TO]\n\n{summary}\n')
    table = NODE_TABLES.get(name)
    if table:
        print('parameters (config/vla.yaml; read-only ones are set at start):')
        for param in table.values():
            flags = ', read-only' if param.read_only else ''
            print(f'  {param.name} = {param.default!r}{flags}\n      {param.description}')


def run_node(node_class, args=None) -> int:
    """main() of a node executable: spin until Ctrl-C, SIGTERM or shutdown, then clean up.

    rclpy's own SIGINT handler would shut the context down before `finally:` runs, and a
    zero Twist published there would never arrive; so SIGINT and SIGTERM become
    KeyboardInterrupt while spinning and the node's shutdown() still has a working context.
    One executor thread: callbacks only hand over (and rclpy's MultiThreadedExecutor delays
    back-to-back messages, ros2/rclpy#1452).
    """
    if wants_help(sys.argv if args is None else args):
        print_help(node_class)
        return 0
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    install_stop_signals()  # before the model loads: a Ctrl-C then stops it too
    node = None
    try:
        node = node_class()
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        spin_until_stopped(executor)
    except (ModelLoadError, rclpy.exceptions.ParameterException, ValueError) as error:
        # Bad configuration: one line that says what to fix, not a traceback.
        rclpy.logging.get_logger(node_class.NODE_NAME).fatal(f'cannot start: {error}')
        return 1
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        hold_stop_signals()
        if node is not None:
            node.shutdown()
            node.destroy_node()
        rclpy.try_shutdown()
        ignore_stop_signals()
    return 0
