"""scene_segmenter: frames + the command's object phrase -> CLIPSeg mask, overlay and target."""

from dataclasses import replace

from geometry_msgs.msg import PointStamped, Vector3Stamped
from sensor_msgs.msg import Image
from std_msgs.msg import String

from vla_ros.core.config import verifier_config as verifier_config_of
from vla_ros.core.diagnostics import RefusalWatch
from vla_ros.core.encoders import ClipEncoder, ClipSegSegmenter
from vla_ros.core.images import to_image_msg, to_rgb
from vla_ros.core.perception import Perception, PerceptionSettings
from vla_ros.core.segmentation import mask_image, render_overlay, resize_mask
from vla_ros.core.verification import TargetVerifier
from vla_ros.nodes.common import ModelNode, run_node
from vla_ros.nodes.qos import LATCHED, OVERRIDABLE, RELIABLE_LATEST, SENSOR_DATA

MAX_PROMPTS = 254  # the mono8 label image numbers them 1..254


class SceneSegmenter(ModelNode):
    NODE_NAME = 'scene_segmenter'

    def __init__(self, **kwargs):
        super().__init__(self.NODE_NAME, 'clipseg', **kwargs)
        if len(self.values['prompts']) > MAX_PROMPTS:
            raise ValueError(f'prompts: at most {MAX_PROMPTS} (the mono8 label image numbers '
                             'them)')
        self.verifier_config = verifier_config_of(self.values)
        self.mask_encoding = self.values['mask_encoding']
        self.image_topic, self.image_type = self.image_input()
        self.perception = None  # while active
        self._verifier_model = None
        self.refusals = RefusalWatch()
        self.start()

    def make_outputs(self):
        self.mask_pub = self.output(Image, 'segmentation/mask', RELIABLE_LATEST,
                                    qos_overriding_options=OVERRIDABLE)
        self.overlay_pub = self.output(Image, 'segmentation/overlay', RELIABLE_LATEST)
        self.target_pub = self.output(PointStamped, 'target', RELIABLE_LATEST,
                                      qos_overriding_options=OVERRIDABLE)
        # PointStamped has no room for size: the policy pairs this with `target` by stamp.
        self.extent_pub = self.output(Vector3Stamped, 'target_extent', RELIABLE_LATEST)

    def load(self):
        verifier = None
        if self.verifier_config is not None:
            self._verifier_model = self.get_model('clip', self.values['verification_model'])
            verifier = TargetVerifier(ClipEncoder(self._verifier_model), self.verifier_config)
        with self._parameter_lock:
            settings = PerceptionSettings.from_values(self.values)
        self.perception = Perception(ClipSegSegmenter(self.loaded), settings, verifier)

    def subscribe(self):
        image = self.input(self.image_type, self.image_topic, self.worker.submit, SENSOR_DATA,
                           qos_overriding_options=OVERRIDABLE)
        # The command embedder's latched `instruction`: a restarted (or re-activated)
        # segmenter learns the current command at once (`command` itself is volatile, as
        # `ros2 topic pub` sends it).
        instruction = self.input(String, 'instruction', self.on_instruction, LATCHED)
        return f'{image.topic_name} and {instruction.topic_name}'

    def unload(self):
        self.perception = None
        if self._verifier_model is not None:
            self._model_cache.release(self._verifier_model)
            self._verifier_model = None

    def on_instruction(self, msg):
        self.perception.command(msg.data)

    def validate_parameter(self, parameter):
        if parameter.name == 'prompts' and len(parameter.value or []) > MAX_PROMPTS:
            return f'at most {MAX_PROMPTS} prompts (the mono8 label image numbers them)'
        return ''

    def apply_parameter(self, parameter):
        super().apply_parameter(parameter)
        self.mask_encoding = self.values['mask_encoding']
        if self.perception is not None:
            self.perception.configure(replace(PerceptionSettings.from_values(self.values),
                                              fovea=self.perception.settings.fovea))

    def process(self, msg):
        with self._parameter_lock:
            encoding = self.mask_encoding
        if not self.perception.prompts():
            return None  # no command yet: nothing to look for (and no frame to convert)
        rgb = to_rgb(msg, self.max_image_pixels)
        # Target and masks at the model's resolution (352 px for CLIPSeg rd64; twice that
        # with the fovea), not the camera's: the target is in normalised coordinates, and it
        # is several times cheaper.
        sight = self.perception.see(rgb)
        if sight is None:
            return None
        threshold = sight.threshold  # the frame's own, even if a live change came since
        height, width = rgb.shape[:2]
        labels = sight.labels(height, width)
        mask = labels if encoding == 'mono8' else resize_mask(
            mask_image(sight.probabilities, threshold, encoding), height, width)
        overlay = None
        if self.overlay_pub.get_subscription_count() > 0:  # drawn only for a viewer
            overlay = render_overlay(rgb, labels, sight.prompts, sight.target)
        return msg.header, mask, overlay, sight.target

    def diagnostic_problem(self, now):
        perception = self.perception
        if perception.verifier is None:
            return ''
        return self.refusals.problem(now, perception.regions_checked, perception.regions_refused,
                                     perception.frames_with_target)

    def diagnostic_values(self):
        if self.perception.verifier is None:
            return {'target verification': 'off'}
        # Refusals explain a mask in rviz with no target: the CLIP did not call it the prompt.
        return {'target verification': self.values['verification_model'] or 'embedded CLIP',
                'regions checked by verification': self.perception.regions_checked,
                'regions refused by verification': self.perception.regions_refused}

    def publish_result(self, result):
        header, mask, overlay, target = result
        self.mask_pub.publish(to_image_msg(mask, header))
        if overlay is not None:
            self.overlay_pub.publish(to_image_msg(overlay, header))
        point = PointStamped(header=header)
        point.point.x, point.point.y, point.point.z = target.x, target.y, target.confidence
        extent = Vector3Stamped(header=header)
        extent.vector.x, extent.vector.y = target.area, target.width
        extent.vector.z = target.bottom
        self.extent_pub.publish(extent)  # first, so the target never waits for its extent
        self.target_pub.publish(point)


def main(args=None):
    return run_node(SceneSegmenter, args)


if __name__ == '__main__':
    raise SystemExit(main())
