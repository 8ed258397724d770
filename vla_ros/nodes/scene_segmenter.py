"""scene_segmenter: frames + the command's object phrase -> CLIPSeg mask, overlay and target.

Two loops: CLIPSeg (with the verifier) on the model worker at max_rate_hz, on the newest
frame; with track_targets, the tracker on every camera frame on its own worker, so targets
come at the camera's rate, each saying how old the segmentation behind it is.
"""

from dataclasses import replace

from builtin_interfaces.msg import Time
from geometry_msgs.msg import PointStamped, Vector3Stamped
import numpy as np
from sensor_msgs.msg import Image, TimeReference
from std_msgs.msg import String

from vla_ros.core import config
from vla_ros.core.diagnostics import RefusalWatch
from vla_ros.core.encoders import ClipEncoder, ClipSegSegmenter
from vla_ros.core.images import camera_frame, to_image_msg
from vla_ros.core.inference import LatestWorker
from vla_ros.core.perception import (
    Perception,
    PerceptionSettings,
    source_label,
    TrackedPerception,
)
from vla_ros.core.segmentation import mask_image, render_overlay, resize_mask
from vla_ros.core.tracking import TargetTracker, Track
from vla_ros.core.verification import TargetVerifier
from vla_ros.nodes.lifecycle import THROTTLE_S
from vla_ros.nodes.model_node import ModelNode
from vla_ros.nodes.process import run_node
from vla_ros.nodes.qos import LATCHED, OVERRIDABLE, RELIABLE_LATEST

MAX_PROMPTS = 254  # the mono8 label image numbers them 1..254
MAX_TRACKING_HZ = 120.0  # the tracker keeps up with the camera, up to this
FUTURE_NS = 1_000_000_000  # a frame stamped further ahead of this node's clock is restamped
FROZEN_AFTER_NS = 1_000_000_000  # the same message again for this long: a frozen driver
RETRACK = object()  # the tracking worker's item: publish a delivered segmentation now
HEADERS_KEPT = 8


def stamp_ns(header) -> int:
    """A header's stamp as integer nanoseconds: exact, for telling frames apart."""
    return header.stamp.sec * 1_000_000_000 + header.stamp.nanosec


def stamp_msg(nanoseconds: int) -> Time:
    return Time(sec=nanoseconds // 1_000_000_000, nanosec=nanoseconds % 1_000_000_000)


class SceneSegmenter(ModelNode):
    NODE_NAME = 'scene_segmenter'

    def __init__(self, **kwargs):
        super().__init__(self.NODE_NAME, 'clipseg', **kwargs)
        if len(self.values['prompts']) > MAX_PROMPTS:
            raise ValueError(f'prompts: at most {MAX_PROMPTS} (the mono8 label image numbers '
                             'them)')
        self.verifier_config = config.verifier_config(self.values)
        if self.values['verify_targets'] and self.verifier_config is None:
            self.get_logger().info(
                f'targets are not verified: {config.verification_off_reason(self.values)}')
        self.mask_encoding = self.values['mask_encoding']
        self.image_topic, self.image_type = self.image_input()
        self.perception = None  # while active (a TrackedPerception)
        self.tracking_worker = None  # while active, with track_targets
        self._headers = {}  # stamp -> header of the newest frames (tracking thread)
        self._published = None  # the stamp of the newest frame a target was published for
        self._newest_image = None  # the newest camera message (the callback's hand-over)
        self._newest_stamp = 0  # its stamp (ns), as given to the workers
        self._newest_camera_stamp = None  # ... the camera's own, when that was replaced
        self.frames_repeated = 0  # the same message again (a frozen driver): dropped
        self._repeated_since = None  # ... since when (ns, this node's clock)
        self._tracked = None  # (message, rgb) the tracking worker last followed
        self._verifier_model = None
        self.refusals = RefusalWatch()
        self.start()

    def make_outputs(self):
        self.mask_pub = self.output(Image, 'segmentation/mask', RELIABLE_LATEST,
                                    qos_overriding_options=OVERRIDABLE)
        self.overlay_pub = self.output(Image, 'segmentation/overlay', RELIABLE_LATEST)
        self.target_pub = self.output(PointStamped, 'target', RELIABLE_LATEST,
                                      qos_overriding_options=OVERRIDABLE)
        # PointStamped has no room for size, nor for where the target came from: the policy
        # pairs these two with `target` by stamp.
        self.extent_pub = self.output(Vector3Stamped, 'target_extent', RELIABLE_LATEST)
        self.source_pub = self.output(TimeReference, 'target_source', RELIABLE_LATEST)

    def load(self):
        verifier = None
        if self.verifier_config is not None:
            self._verifier_model = self.get_model('clip', self.values['verification_model'])
            verifier = TargetVerifier(ClipEncoder(self._verifier_model), self.verifier_config)
        with self.parameter_lock:
            settings = PerceptionSettings.from_values(self.values)
        tracker = (TargetTracker(stamps_per_second=1e9) if self.values['track_targets']
                   else None)
        self._newest_image, self._newest_stamp, self._newest_camera_stamp = None, 0, None
        self._repeated_since, self._tracked = None, None
        self._headers, self._published = {}, None
        self.perception = TrackedPerception(
            Perception(ClipSegSegmenter(self.loaded), settings, verifier), tracker)
        if tracker is not None:
            self.tracking_worker = LatestWorker(
                self.track, self.publish_track, MAX_TRACKING_HZ,
                name=f'{self.get_name()}_tracker', on_error=self._report_error,
                rejected_errors=(ValueError,)).start()

    def subscribe(self):
        image = self.camera_input(self.on_image)
        # The command embedder's latched `instruction`: a restarted (or re-activated)
        # segmenter learns the current command at once (`command` itself is volatile, as
        # `ros2 topic pub` sends it).
        instruction = self.input(String, 'instruction', self.on_instruction, LATCHED)
        # The policy's status: no segmenting once it has ended the command (arrived ...).
        self.input(String, 'status', self.on_status, LATCHED)
        return f'{image.topic_name} and {instruction.topic_name}'

    def on_image(self, msg):
        if not self._ordered(msg):
            return
        self._newest_image = msg
        self.worker.submit(msg)
        if self.tracking_worker is not None:
            self.tracking_worker.submit(msg)

    def _ordered(self, msg) -> bool:
        """Give frames stamps that order them (the tracker and the policy tell frames and
        segmentations apart by stamp). A frame stamped after the last one, and not ahead of
        this node's clock, keeps its stamp. Any other is stamped on arrival, with a
        throttled warning: a driver that repeats stamps (or never sets them), was restarted,
        a bag played again, a clock far ahead. The same message again (the same stamp and
        pixels) for over FROZEN_AFTER_NS is a frozen driver: dropped, so that its target
        goes stale. Pixels are compared only for a stamp that did not move on.
        """
        stamp, now = stamp_ns(msg.header), self.get_clock().now().nanoseconds
        last = self._newest_image
        if (last is None or stamp > self._newest_stamp) and stamp <= now + FUTURE_NS:
            self._newest_stamp = self._newest_camera_stamp = stamp
            self._repeated_since = None
            return True
        same = last is not None and stamp == self._newest_camera_stamp and np.array_equal(
            np.frombuffer(msg.data, np.uint8), np.frombuffer(last.data, np.uint8))
        if same:
            self._repeated_since = self._repeated_since or now
            if now - self._repeated_since > FROZEN_AFTER_NS:
                self.frames_repeated += 1
                return False
        else:
            self._repeated_since = None
        self._newest_camera_stamp = stamp
        msg.header.stamp = stamp_msg(now)
        self._newest_stamp = now
        self.get_logger().warning(
            "camera frames stamped ahead of this node's clock, or whose stamps repeat or go "
            'back (a driver that does not stamp, was restarted, a bag played again): stamped '
            'on arrival', throttle_duration_sec=THROTTLE_S)
        return True

    def unload_model(self):
        if self.tracking_worker is not None and not self.tracking_worker.stop(timeout=5.0):
            self.get_logger().warning('tracking thread did not stop within 5 s')
        self.tracking_worker = None
        self.perception = None
        if self._verifier_model is not None:
            self._model_cache.release(self._verifier_model)
            self._verifier_model = None

    def on_instruction(self, msg):
        perception = self.perception
        if perception is not None:
            perception.perception.command(msg.data)

    def on_status(self, msg):
        perception = self.perception
        if perception is not None:
            perception.perception.command_status(msg.data)

    def validate_parameter(self, parameter):
        if parameter.name == 'prompts' and len(parameter.value or []) > MAX_PROMPTS:
            return f'at most {MAX_PROMPTS} prompts (the mono8 label image numbers them)'
        return ''

    def apply_parameter(self, parameter):
        super().apply_parameter(parameter)
        self.mask_encoding = self.values['mask_encoding']
        if self.perception is not None:
            perception = self.perception.perception
            perception.configure(replace(PerceptionSettings.from_values(self.values),
                                         fovea=perception.settings.fovea))

    def process(self, msg):
        # Local references: a worker still busy when the node deactivates (a join that timed
        # out) finishes on the objects it started with, not on None or a newer activation's.
        perception, tracking_worker = self.perception, self.tracking_worker
        with self.parameter_lock:
            encoding = self.mask_encoding
        if perception is None or not perception.prompts():
            return None  # no command yet: nothing to look for (and no frame to convert)
        rgb = camera_frame(msg, self.max_image_pixels)
        # Target and masks at the model's resolution (352 px for CLIPSeg rd64; twice that
        # with the fovea), not the camera's: the target is in normalised coordinates, and it
        # is several times cheaper.
        epoch = perception.epoch
        sight = perception.segment(rgb, stamp_ns(msg.header) * 1e-9)
        if sight is None:
            return None
        if perception.tracking:  # the tracker publishes the target, on every frame
            perception.deliver(sight, stamp_ns(msg.header), rgb, epoch)
            # ... and now, not only at the next frame (a camera may have stopped): unless a
            # frame is waiting for the tracker anyway
            if tracking_worker is not None:
                tracking_worker.submit_if_idle(RETRACK)
        threshold = sight.threshold  # the frame's own, even if a live change came since
        height, width = rgb.shape[:2]
        labels = sight.labels(height, width)
        mask = labels if encoding == 'mono8' else resize_mask(
            mask_image(sight.probabilities, threshold, encoding), height, width)
        overlay = None
        if self.overlay_pub.get_subscription_count() > 0:  # drawn only for a viewer
            overlay = render_overlay(rgb, labels, sight.prompts, sight.target,
                                     candidates=sight.candidates)
        own = None if perception.tracking else Track(sight.target, 0, False, 1.0)
        return msg.header, mask, overlay, own, sight.step, sight.alike

    def track(self, msg):
        """The tracking worker: the target on the newest frame (a delivered segmentation
        first), published with that frame's header.
        """
        perception = self.perception
        if perception is None or not perception.prompts():
            return None
        if msg is RETRACK:  # the last frame again, with the segmentation just delivered
            if self._tracked is None:
                return None
            msg, rgb = self._tracked
        else:
            rgb = camera_frame(msg, self.max_image_pixels)
            self._tracked = (msg, rgb)
        stamp = stamp_ns(msg.header)
        self._headers[stamp] = msg.header
        while len(self._headers) > HEADERS_KEPT:
            self._headers.pop(next(iter(self._headers)))
        epoch = perception.epoch
        track = perception.frame(rgb, stamp)
        if perception.epoch != epoch:  # the frame history restarted
            self._published, self._headers = None, {stamp: msg.header}
            self.get_logger().warning(
                f'target tracking restarted: {perception.tracker.reason}',
                throttle_duration_sec=THROTTLE_S)
        if track is None or (self._published is not None and track.stamp <= self._published):
            # Once per frame: a camera that repeats a frame's stamp (frozen) must not make
            # the target look fresh to the policy.
            return None
        self._published = track.stamp
        return (self._headers.get(track.stamp, msg.header), track, perception.step,
                perception.alike)

    def publish_track(self, result):
        self.publish_target(*result)

    def diagnostic_problem(self, now):
        perception = self.perception.perception
        if perception.verifier is None:
            return ''
        return self.refusals.problem(now, perception.regions_checked, perception.regions_refused,
                                     perception.frames_with_target)

    def diagnostic_values(self):
        values = self._tracking_values()
        perception = self.perception.perception
        if perception.verifier is None:
            return {**values, 'target verification': 'off'}
        # Refusals explain a mask in rviz with no target: the CLIP did not call it the prompt.
        return {**values,
                'target verification': self.values['verification_model'] or 'embedded CLIP',
                'regions checked by verification': perception.regions_checked,
                'regions refused by verification': perception.regions_refused}

    def _tracking_values(self) -> dict:
        tracker, worker = self.perception.tracker, self.tracking_worker
        if tracker is None or worker is None:
            return {'target tracking': 'off'}
        stats = worker.stats()
        return {'target tracking': 'on', 'frames tracked': tracker.frames_tracked,
                'frames repeated (dropped)': self.frames_repeated,
                'tracks lost': tracker.tracks_lost,
                'track': tracker.reason or 'following',
                'tracking ms p50': 'none' if stats.latency_p50 is None
                else f'{1e3 * stats.latency_p50:.1f}',
                'frames rejected by the tracker': stats.rejected}

    def publish_result(self, result):
        header, mask, overlay, own, step, alike = result
        self.mask_pub.publish(to_image_msg(mask, header))
        if overlay is not None:
            self.overlay_pub.publish(to_image_msg(overlay, header))
        if own is not None:  # tracking off: the target of this segmentation
            self.publish_target(header, replace(own, segmented_stamp=stamp_ns(header)), step,
                                alike)

    def publish_target(self, header, track: Track, step: tuple | None, alike: int = 0):
        """target_extent, target_source, then target (the policy acts once all three came):
        `header` is the frame the target is on; `step`, the step of a command of several the
        target was looked for in (the source says it: the policy drops another step's);
        `alike`, how many things its segmentation saw that fit the command alike.
        """
        target = track.target
        source = TimeReference(header=header, time_ref=stamp_msg(track.segmented_stamp),
                               source=source_label(track.tracked, step, alike))
        point = PointStamped(header=header)
        point.point.x, point.point.y, point.point.z = target.x, target.y, target.confidence
        extent = Vector3Stamped(header=header)
        extent.vector.x, extent.vector.y = target.area, target.width
        extent.vector.z = target.bottom
        self.extent_pub.publish(extent)  # first, so the target never waits for its halves
        self.source_pub.publish(source)
        self.target_pub.publish(point)


def main(args=None):
    return run_node(SceneSegmenter, args)


if __name__ == '__main__':
    raise SystemExit(main())
