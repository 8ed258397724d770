"""What every model node shares: parameters with descriptors, model loading, the worker, main()."""

import signal
import threading
import time

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import (
    FloatingPointRange,
    IntegerRange,
    ParameterDescriptor,
    SetParametersResult,
)
import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.signals import SignalHandlerOptions
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Float32MultiArray, MultiArrayDimension
import torch

from vla_ros.core.diagnostics import inference_report
from vla_ros.core.images import DEFAULT_MAX_PIXELS
from vla_ros.core.inference import LatestWorker
from vla_ros.core.models import DEVICES, DTYPES, ModelCache, ModelLoadError

THROTTLE_S = 2.0
DIAGNOSTICS_PERIOD_S = 1.0
MAX_RATE_RANGE = (0.1, 120.0)


def descriptor(description, read_only=False, float_range=None, int_range=None,
               additional_constraints=''):
    result = ParameterDescriptor(description=description, read_only=read_only,
                                 additional_constraints=additional_constraints)
    if float_range is not None:
        result.floating_point_range = [
            FloatingPointRange(from_value=float(float_range[0]), to_value=float(float_range[1]))]
    if int_range is not None:
        result.integer_range = [
            IntegerRange(from_value=int(int_range[0]), to_value=int(int_range[1]), step=1)]
    return result


def embedding_msg(vector, model_name: str) -> Float32MultiArray:
    """One embedding; the dimension's label names the model so consumers can refuse others."""
    msg = Float32MultiArray()
    msg.layout.dim = [MultiArrayDimension(label=model_name, size=len(vector),
                                          stride=len(vector))]
    msg.data = [float(value) for value in vector] if len(vector) else []
    return msg


def embedding_model_name(msg: Float32MultiArray) -> str:
    return msg.layout.dim[0].label if msg.layout.dim else ''


def publish_report(publisher, node: Node, task: str, hardware_id: str, report) -> None:
    """One core Report as a DiagnosticArray on /diagnostics."""
    status = DiagnosticStatus(level=bytes([report.level]), message=report.message,
                              name=f'{node.get_fully_qualified_name()}: {task}',
                              hardware_id=hardware_id)
    status.values = [KeyValue(key=key, value=str(value)) for key, value in report.values.items()]
    array = DiagnosticArray(status=[status])
    array.header.stamp = node.get_clock().now().to_msg()
    publisher.publish(array)


def declare_model_parameters(node: Node, model_kind: str):
    """The read-only `model`, `device` and `dtype` parameters every model user declares."""
    model = node.declare_parameter(
        'model', '', descriptor(
            f'{model_kind} model: a Hugging Face id or a local folder written by '
            'save_pretrained(); empty = the embedded default in share/vla_ros/models',
            read_only=True)).value
    device = node.declare_parameter(
        'device', 'auto', descriptor('inference device', read_only=True,
                                     additional_constraints='|'.join(DEVICES))).value
    dtype = node.declare_parameter(
        'dtype', 'float32', descriptor('weight dtype (float16 needs CUDA)', read_only=True,
                                       additional_constraints='|'.join(DTYPES))).value
    return model, device, dtype


class ModelNode(Node):
    """A node that loads one model at start and runs it on a newest-wins worker thread.

    Subclasses declare their own parameters, call `load_model()`, create their endpoints
    (callbacks only call `self.worker.submit(item)`), then `start()`. They implement
    `process(item) -> result or None` (worker thread) and `publish_result(result)`.
    """

    def __init__(self, node_name: str, model_kind: str, default_rate_hz: float,
                 model_cache: ModelCache = None, expects_stream: bool = False, **node_kwargs):
        super().__init__(node_name, **node_kwargs)
        self._parameter_lock = threading.Lock()
        self.model_source, self.device, self.dtype = declare_model_parameters(self, model_kind)
        self.max_rate_hz = self.declare_parameter(
            'max_rate_hz', float(default_rate_hz), descriptor(
                'most inferences per second; newer inputs replace waiting ones',
                float_range=MAX_RATE_RANGE)).value
        self.stale_input_s = None  # occasional input (commands) is never stale
        if expects_stream:
            self.stale_input_s = self.declare_parameter(
                'diagnostics_stale_input_s', 5.0, descriptor(
                    '/diagnostics warns when no input came for this long',
                    float_range=(0.1, 3600.0))).value
        self.max_drop_fraction = self.declare_parameter(
            'diagnostics_max_drop_fraction', 0.95, descriptor(
                '/diagnostics warns when more of the input than this is dropped to keep up',
                float_range=(0.0, 1.0))).value
        self.cpu_threads = self.declare_parameter(
            'cpu_threads', 0, descriptor(
                "torch's CPU threads for this node's inference; 0 = torch's default (one per "
                'core). Model nodes run side by side: on a small CPU give each its share',
                read_only=True, int_range=(0, 1024))).value
        self._model_kind = model_kind
        self._model_cache = model_cache if model_cache is not None else ModelCache()
        self.loaded = None
        self.threads_in_use = None
        self.worker = LatestWorker(
            self.process, self.publish_result, self.max_rate_hz, name=f'{node_name}_worker',
            on_error=self._report_error, rejected_errors=(ValueError,),
            on_start=self._set_cpu_threads)

    def _set_cpu_threads(self):
        # Per thread: nodes sharing a process (vla-ros up) each keep their own count.
        if self.cpu_threads > 0:
            torch.set_num_threads(self.cpu_threads)
        self.threads_in_use = torch.get_num_threads()

    def declare_image_input(self):
        """Parameters of nodes that read camera frames; returns (topic, message type)."""
        self.max_image_pixels = self.declare_parameter(
            'max_image_pixels', DEFAULT_MAX_PIXELS, descriptor(
                'frames with more pixels are dropped with a warning', read_only=True,
                int_range=(1, 2**31 - 1))).value
        use_compressed = self.declare_parameter(
            'use_compressed', False, descriptor(
                'subscribe image/compressed (sensor_msgs/CompressedImage) instead of image',
                read_only=True)).value
        return ('image/compressed', CompressedImage) if use_compressed else ('image', Image)

    def load_model(self):
        """Load (or share) the model; call once every parameter has been checked."""
        self.loaded = self._model_cache.get(self._model_kind, self.model_source, self.device,
                                            self.dtype)
        return self.loaded

    def start(self, inputs: str):
        """Start the worker and accept parameter changes; call at the end of __init__."""
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.worker.start()
        self.diagnostics_pub = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        self._last_report = (None, time.monotonic())
        self.create_timer(DIAGNOSTICS_PERIOD_S, self.publish_diagnostics)
        self.get_logger().info(
            f'ready: model {self.loaded.name} ({self.loaded.source}) on {self.loaded.device} '
            f'{str(self.loaded.dtype).replace("torch.", "")}, at most {self.max_rate_hz:g} Hz, '
            f'{self.cpu_threads or "default"} CPU threads, input {inputs}')

    # Parameters -------------------------------------------------------------------------
    def validate_parameter(self, parameter: Parameter) -> str:
        """Return why a new value is refused, or '' to accept it (subclasses extend)."""
        return ''

    def apply_parameter(self, parameter: Parameter) -> None:
        """Take an accepted value into use (called under the parameter lock)."""
        if parameter.name == 'max_rate_hz':
            self.max_rate_hz = parameter.value
            self.worker.set_max_rate(parameter.value)
        elif parameter.name == 'diagnostics_stale_input_s':
            self.stale_input_s = parameter.value
        elif parameter.name == 'diagnostics_max_drop_fraction':
            self.max_drop_fraction = parameter.value

    def publish_diagnostics(self) -> None:
        previous, then = self._last_report
        stats, now = self.worker.stats(), time.monotonic()
        report = inference_report(
            stats, previous, now - then, now, model=self.loaded.source,
            device=f'{self.loaded.device} {str(self.loaded.dtype).replace("torch.", "")}',
            stale_input_s=self.stale_input_s, max_drop_fraction=self.max_drop_fraction)
        self._last_report = (stats, now)
        report.values['cpu_threads'] = self.threads_in_use
        report.values.update(self.diagnostic_values())
        publish_report(self.diagnostics_pub, self, 'inference', self.loaded.name, report)

    def _on_set_parameters(self, parameters):
        for parameter in parameters:
            reason = self.validate_parameter(parameter)
            if reason:
                return SetParametersResult(successful=False, reason=reason)
        with self._parameter_lock:
            for parameter in parameters:
                self.apply_parameter(parameter)
        return SetParametersResult(successful=True)

    def diagnostic_values(self) -> dict:
        """A subclass's own key/values for its /diagnostics status."""
        return {}

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
        """Stop the worker thread (joins it); safe to call twice."""
        if not self.worker.stop(timeout=5.0):
            self.get_logger().warning('worker thread did not stop within 5 s')


def _raise_keyboard_interrupt(signum, frame):
    raise KeyboardInterrupt


def run_node(node_class, args=None) -> int:
    """main() of a node executable: spin until Ctrl-C, SIGTERM or shutdown, then clean up.

    rclpy's own SIGINT handler would shut the context down before `finally:` runs, and a
    zero Twist published there would never arrive; so SIGINT and SIGTERM become
    KeyboardInterrupt while spinning and the node's shutdown() still has a working context.
    One executor thread: callbacks only hand over (and rclpy's MultiThreadedExecutor delays
    back-to-back messages, ros2/rclpy#1452).
    """
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    # SIGINT too, explicitly: a process started from a background job inherits SIGINT
    # ignored, and Python then installs no KeyboardInterrupt handler (the node never stopped).
    for stop_signal in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop_signal, _raise_keyboard_interrupt)
    node = None
    try:
        node = node_class()
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        while rclpy.ok():
            # A bounded wait: Python runs signal handlers only between waits.
            executor.spin_once(timeout_sec=0.2)
    except (ModelLoadError, rclpy.exceptions.ParameterException, ValueError) as error:
        # Bad configuration: one line that says what to fix, not a traceback.
        rclpy.logging.get_logger(node_class.NODE_NAME).fatal(f'cannot start: {error}')
        return 1
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            node.shutdown()
            node.destroy_node()
        rclpy.try_shutdown()
    return 0
