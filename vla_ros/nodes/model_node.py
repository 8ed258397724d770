"""A managed node that runs one model on a newest-wins worker thread: the camera embedder,
the command embedder and the scene segmenter.
"""

import gc
import time

from rclpy.event_handler import SubscriptionEventCallbacks
from sensor_msgs.msg import CompressedImage, Image
import torch

from vla_ros.core.config import node_table
from vla_ros.core.diagnostics import inference_report, OK, Report, WARN
from vla_ros.core.inference import LatestWorker
from vla_ros.core.models import ModelCache, runtime_options
from vla_ros.nodes.lifecycle import ManagedNode, THROTTLE_S
from vla_ros.nodes.qos import OVERRIDABLE, SENSOR_DATA


class ModelNode(ManagedNode):
    """activate loads the model (or shares it from the cache), calls load(), starts the worker
    and subscribe()s; deactivate drops the inputs, stops the worker, calls unload_model()
    and releases the model.

    Subclasses implement make_outputs() (with self.output), load() (model objects from
    self.loaded), subscribe() (with self.input; callbacks only call
    `self.worker.submit(item)`; returns what it listens to), unload_model(), process(item) ->
    result or None (worker thread) and publish_result(result).
    """

    def __init__(self, node_name: str, model_kind: str, model_cache: ModelCache = None,
                 **node_kwargs):
        super().__init__(node_name, node_table(node_name), **node_kwargs)
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
        self._last_report = (None, time.monotonic())

    def activate(self) -> str:
        self.loaded = self.get_model(self._model_kind, self.model_source)
        self.load()
        self.worker = LatestWorker(
            self.process, self.publish_result, self.max_rate_hz,
            name=f'{self.get_name()}_worker', on_error=self._report_error,
            rejected_errors=(ValueError,), on_start=self._set_cpu_threads).start()
        self._last_report = (None, time.monotonic())
        inputs = self.subscribe()
        return (f'model {self.loaded.name} ({self.loaded.source}) on {self.loaded.runtime}, '
                f'at most {self.max_rate_hz:g} Hz, {self.cpu_threads or "default"} CPU '
                f'threads, input {inputs}')

    def get_model(self, kind: str, source: str):
        """A model from the cache on this node's device, dtype and backend (release() it)."""
        return self._model_cache.get(kind, source, **runtime_options(self.values, kind))

    def unload(self) -> None:
        """Stop the worker (joins it) and free the model; safe to repeat."""
        if self.worker is not None and not self.worker.stop(timeout=5.0):
            self.get_logger().warning('worker thread did not stop within 5 s')
        self.worker = None
        if self.loaded is not None:
            self.unload_model()
            self._model_cache.release(self.loaded)
            self.loaded = None
            gc.collect()
            if torch.cuda.is_available():
                torch.cuda.empty_cache()

    def load(self) -> None:
        raise NotImplementedError

    def subscribe(self) -> str:
        raise NotImplementedError

    def unload_model(self) -> None:
        raise NotImplementedError

    def _set_cpu_threads(self):
        # Per thread: nodes sharing a process (vla-ros up) each keep their own count.
        if self.cpu_threads > 0:
            torch.set_num_threads(self.cpu_threads)
        self.threads_in_use = torch.get_num_threads()

    # Camera input -----------------------------------------------------------------------
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

    # Parameters and diagnostics ---------------------------------------------------------
    def apply_parameter(self, parameter) -> None:
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
            self.report_idle('inference', self._model_kind, 'inferring')
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
        self.report('inference', self.loaded.name, report)

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
