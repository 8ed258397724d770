"""camera_embedder: camera frames -> L2-normalised CLIP image embeddings (+ zero-shot labels)."""

import json

from rclpy.parameter import Parameter
from rclpy.qos import qos_profile_sensor_data, QoSProfile
from rclpy.qos_overriding_options import QoSOverridingOptions
from std_msgs.msg import Float32MultiArray, String

from vla_ros.core.encoders import ClipEncoder
from vla_ros.core.images import to_rgb
from vla_ros.nodes.common import descriptor, embedding_msg, ModelNode, run_node


class CameraEmbedder(ModelNode):
    NODE_NAME = 'camera_embedder'

    def __init__(self, **kwargs):
        super().__init__(self.NODE_NAME, 'clip', default_rate_hz=10.0, expects_stream=True,
                         **kwargs)
        self.labels = list(self.declare_parameter(
            'labels', Parameter.Type.STRING_ARRAY, descriptor(
                'zero-shot labels; when set, scene_labels carries their probabilities '
                '(write them as captions, e.g. "a red ball")')).get_parameter_value()
            .string_array_value)
        self.top_k = self.declare_parameter(
            'top_k', 5, descriptor('labels reported in scene_labels', int_range=(1, 1000))).value
        image_topic, image_type = self.declare_image_input()
        self._label_cache = ((), None)  # (labels, their text embeddings), worker thread only

        self.encoder = ClipEncoder(self.load_model())
        overrides = QoSOverridingOptions.with_default_policies()
        self.embedding_pub = self.create_publisher(
            Float32MultiArray, 'image_embedding', QoSProfile(depth=1),
            qos_overriding_options=overrides)
        self.labels_pub = self.create_publisher(String, 'scene_labels', QoSProfile(depth=1))
        self.image_sub = self.create_subscription(
            image_type, image_topic, self.worker.submit, qos_profile_sensor_data,
            qos_overriding_options=overrides)
        self.start(self.image_sub.topic_name)

    def apply_parameter(self, parameter):
        super().apply_parameter(parameter)
        if parameter.name == 'labels':
            self.labels = list(parameter.value or [])
        elif parameter.name == 'top_k':
            self.top_k = parameter.value

    def _label_embeddings(self, labels):
        """Text embeddings of the labels, computed once per change of the parameter."""
        if self._label_cache[0] != labels:
            self._label_cache = (labels, self.encoder.encode_texts(list(labels)))
        return self._label_cache[1]

    def process(self, msg):
        with self._parameter_lock:
            labels, top_k = tuple(self.labels), self.top_k
        rgb = to_rgb(msg, self.max_image_pixels)
        embedding = self.encoder.encode_images([rgb])[0]
        scores = None
        if labels:
            probabilities = self.encoder.label_probabilities(
                embedding[None], self._label_embeddings(labels))[0]
            ranked = sorted(zip(labels, probabilities), key=lambda pair: -pair[1])[:top_k]
            scores = {label: round(float(p), 4) for label, p in ranked}
        return embedding, scores

    def publish_result(self, result):
        embedding, scores = result
        self.embedding_pub.publish(embedding_msg(embedding, self.encoder.name))
        if scores is not None:
            self.labels_pub.publish(String(data=json.dumps(scores)))


def main(args=None):
    return run_node(CameraEmbedder, args)


if __name__ == '__main__':
    raise SystemExit(main())
