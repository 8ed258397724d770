"""scene_segmenter: frames + the command's object phrase -> CLIPSeg mask, overlay and target."""

from functools import partial

from geometry_msgs.msg import PointStamped, Vector3Stamped
from rclpy.exceptions import InvalidParameterValueException
from rclpy.parameter import Parameter
from rclpy.qos import qos_profile_sensor_data, QoSProfile
from rclpy.qos_overriding_options import QoSOverridingOptions
from sensor_msgs.msg import Image
from std_msgs.msg import String

from vla_ros.core.encoders import ClipEncoder, ClipSegSegmenter
from vla_ros.core.images import to_image_msg, to_rgb
from vla_ros.core.segmentation import (
    find_target,
    Fovea,
    MASK_ENCODINGS,
    mask_image,
    render_overlay,
    resize_mask,
)
from vla_ros.core.text import clean_command, DEFAULT_COMMAND_PREFIXES, object_phrase
from vla_ros.core.verification import default_contrasts, TargetVerifier, VerifierConfig
from vla_ros.nodes.common import descriptor, ModelNode, run_node


class SceneSegmenter(ModelNode):
    NODE_NAME = 'scene_segmenter'

    def __init__(self, **kwargs):
        super().__init__(self.NODE_NAME, 'clipseg', default_rate_hz=5.0, expects_stream=True,
                         **kwargs)
        self.fixed_prompts = self._string_list(self.declare_parameter(
            'prompts', Parameter.Type.STRING_ARRAY, descriptor(
                "fixed prompts; when set they are segmented instead of the command's object "
                '(the first one is the target)')).value)
        self.command_prefixes = self._string_list(self.declare_parameter(
            'command_prefixes', list(DEFAULT_COMMAND_PREFIXES), descriptor(
                'leading phrases stripped from a command to get its object '
                '("go to the red ball" -> "red ball")')).value)
        self.mask_threshold = self.declare_parameter(
            'mask_threshold', 0.5, descriptor(
                'probability a pixel needs to belong to the target', float_range=(0.0, 1.0))
        ).value
        self.mask_encoding = self.declare_parameter(
            'mask_encoding', 'mono8', descriptor(
                'mono8: label image (0 none, i+1 prompt i); 32FC1: highest probability',
                additional_constraints='|'.join(MASK_ENCODINGS))).value
        if self.mask_encoding not in MASK_ENCODINGS:
            raise InvalidParameterValueException(
                'mask_encoding', self.mask_encoding, f'expected one of {MASK_ENCODINGS}')
        self.fovea = self._declare_fovea()
        verifier_config = self._declare_verification()
        image_topic, image_type = self.declare_image_input()
        self.command_phrase = ''
        self.previous_target = None  # for find_target to follow one region (worker thread)

        self.segmenter = ClipSegSegmenter(self.load_model())
        self.verifier = None
        self.regions_checked = self.regions_refused = 0  # by the verifier (worker thread)
        if verifier_config is not None:
            clip = self._model_cache.get('clip', self.verification_model, self.device,
                                         self.dtype)
            self.verifier = TargetVerifier(ClipEncoder(clip), verifier_config)
        overrides = QoSOverridingOptions.with_default_policies()
        # Reliable publishers reach both reliable (rviz) and best-effort subscribers.
        self.mask_pub = self.create_publisher(Image, 'segmentation/mask', QoSProfile(depth=1),
                                              qos_overriding_options=overrides)
        self.overlay_pub = self.create_publisher(Image, 'segmentation/overlay',
                                                 QoSProfile(depth=1))
        self.target_pub = self.create_publisher(PointStamped, 'target', QoSProfile(depth=1),
                                                qos_overriding_options=overrides)
        # PointStamped has no room for size: the policy pairs this with `target` by stamp.
        self.extent_pub = self.create_publisher(Vector3Stamped, 'target_extent',
                                                QoSProfile(depth=1))
        self.image_sub = self.create_subscription(
            image_type, image_topic, self.worker.submit, qos_profile_sensor_data,
            qos_overriding_options=overrides)
        self.command_sub = self.create_subscription(String, 'command', self.on_command,
                                                    QoSProfile(depth=10))
        self.start(f'{self.image_sub.topic_name} and {self.command_sub.topic_name}')

    def _declare_fovea(self):
        """The read-only fovea parameters; their Fovea, None when off."""
        enabled = self.declare_parameter(
            'fovea', True, descriptor(
                "also segment the view's middle (half its width and height) at twice the "
                'resolution, for far objects; one more image per frame', read_only=True)).value
        top = self.declare_parameter(
            'fovea_top', Fovea.top, descriptor(
                "the fovea's top edge as a fraction of the image height: put the window over "
                'the far floor', read_only=True, float_range=(0.0, 0.5))).value
        return Fovea(top=top) if enabled else None

    def _declare_verification(self):
        """The read-only verify_targets parameters; their VerifierConfig, None when off."""
        verify = self.declare_parameter(
            'verify_targets', True, descriptor(
                "a CLIP must name each region's crop as the target's prompt (best among "
                'verification_contrasts) before it can be the target: refuses look-alikes',
                read_only=True)).value
        self.verification_model = self.declare_parameter(
            'verification_model', '', descriptor(
                "verify_targets' CLIP: Hugging Face id or folder, best the camera_embedder's; "
                'empty = the embedded default', read_only=True)).value
        padding = self.declare_parameter(
            'verification_padding', VerifierConfig.padding, descriptor(
                "context around a region's box in its crop, as a fraction of the box's longer "
                'side on each side', read_only=True, float_range=(0.0, 2.0))).value
        min_area = self.declare_parameter(
            'verification_min_area', VerifierConfig.min_area, descriptor(
                'smaller regions (image fraction) are refused without a check; keep it at '
                "most the action_policy's min_target_area", read_only=True,
                float_range=(0.0, 1.0))).value
        recheck_frames = self.declare_parameter(
            'verification_recheck_frames', VerifierConfig.recheck_frames, descriptor(
                'a region continuing one refused in the last frame is refused unchecked for '
                'this many frames (or until its area doubles); 0 = check every frame',
                read_only=True, int_range=(0, 1000))).value
        contrasts = self._string_list(self.declare_parameter(
            'verification_contrasts', list(default_contrasts()), descriptor(
                'what a target could be confused with ("green ball" for "green pyramid"); '
                "default: the simulator's colour x shape objects", read_only=True)).value)
        if not verify:
            return None
        if not contrasts:
            raise InvalidParameterValueException(
                'verification_contrasts', contrasts,
                'list the things a target could be confused with, or set verify_targets false')
        return VerifierConfig(contrasts=tuple(contrasts), padding=padding, min_area=min_area,
                              recheck_frames=recheck_frames)

    @staticmethod
    def _string_list(value):
        return [item for item in (value or []) if item.strip()]

    def on_command(self, msg):
        text, _ = clean_command(msg.data)
        with self._parameter_lock:
            self.command_phrase = object_phrase(text, self.command_prefixes)

    def validate_parameter(self, parameter):
        if parameter.name == 'mask_encoding' and parameter.value not in MASK_ENCODINGS:
            return f'mask_encoding must be one of {", ".join(MASK_ENCODINGS)}'
        if parameter.name == 'prompts' and len(parameter.value or []) > 254:
            return 'at most 254 prompts (the mono8 label image numbers them 1..254)'
        return ''

    def apply_parameter(self, parameter):
        super().apply_parameter(parameter)
        if parameter.name == 'prompts':
            self.fixed_prompts = self._string_list(parameter.value)
        elif parameter.name == 'command_prefixes':
            self.command_prefixes = self._string_list(parameter.value)
        elif parameter.name in ('mask_threshold', 'mask_encoding'):
            setattr(self, parameter.name, parameter.value)

    def current_prompts(self):
        with self._parameter_lock:
            if self.fixed_prompts:
                return tuple(self.fixed_prompts), self.mask_threshold, self.mask_encoding
            prompts = (self.command_phrase,) if self.command_phrase else ()
            return prompts, self.mask_threshold, self.mask_encoding

    def process(self, msg):
        prompts, threshold, encoding = self.current_prompts()
        if not prompts:
            return None  # no command yet: nothing to look for
        rgb = to_rgb(msg, self.max_image_pixels)
        if self.segmenter.set_prompts(prompts):  # encodes only when the prompts changed
            self.previous_target = None  # a new thing to look for
            if self.verifier is not None:
                self.verifier.set_prompt(prompts[0])
        # Target and masks at the model's resolution (352 px for CLIPSeg rd64; twice that
        # with the fovea), not the camera's: the target is in normalised coordinates, and it
        # is several times cheaper.
        probabilities = self.segmenter.probabilities(rgb, self.fovea)
        accept = None if self.verifier is None else partial(self._verify, rgb)
        target = find_target(probabilities[0], threshold, self.previous_target, accept)
        self.previous_target = target
        height, width = rgb.shape[:2]
        labels = resize_mask(mask_image(probabilities, threshold, 'mono8'), height, width)
        mask = labels if encoding == 'mono8' else resize_mask(
            mask_image(probabilities, threshold, encoding), height, width)
        overlay = None
        if self.overlay_pub.get_subscription_count() > 0:  # drawn only for a viewer
            overlay = render_overlay(rgb, labels, prompts, target)
        return msg.header, mask, overlay, target

    def _verify(self, rgb, regions):
        verdicts = self.verifier.accept(rgb, regions)
        self.regions_checked += len(verdicts)
        self.regions_refused += verdicts.count(False)
        return verdicts

    def diagnostic_values(self):
        if self.verifier is None:
            return {'target verification': 'off'}
        # Refusals explain a mask in rviz with no target: the CLIP did not call it the prompt.
        return {'target verification': self.verification_model or 'embedded CLIP',
                'regions checked by verification': self.regions_checked,
                'regions refused by verification': self.regions_refused}

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
