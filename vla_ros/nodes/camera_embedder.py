"""camera_embedder: camera frames -> L2-normalised CLIP image embeddings (+ zero-shot labels,
and the embeddings of crops across each frame: exploration's value map's views).
"""

import json

from std_msgs.msg import Float32MultiArray, String

from vla_ros.core.encoders import ClipEncoder
from vla_ros.core.exploration import view_tiles
from vla_ros.core.images import camera_frame
from vla_ros.nodes.conversions import embedding_msg, embeddings_msg
from vla_ros.nodes.model_node import ModelNode
from vla_ros.nodes.process import run_node
from vla_ros.nodes.qos import OVERRIDABLE, RELIABLE_LATEST


class CameraEmbedder(ModelNode):
    NODE_NAME = 'camera_embedder'

    def __init__(self, **kwargs):
        super().__init__(self.NODE_NAME, 'clip', **kwargs)
        self.labels, self.top_k = list(self.values['labels']), self.values['top_k']
        self.view_tiles = self.values['view_tiles']
        self.image_topic, self.image_type = self.image_input()
        self._label_cache = ((), None)  # (labels, their text embeddings), worker thread only
        self.encoder = None  # while active
        self.start()

    def make_outputs(self):
        self.embedding_pub = self.output(
            Float32MultiArray, 'image_embedding', RELIABLE_LATEST,
            qos_overriding_options=OVERRIDABLE)
        self.labels_pub = self.output(String, 'scene_labels', RELIABLE_LATEST)
        self.views_pub = self.output(Float32MultiArray, 'view_embeddings', RELIABLE_LATEST,
                                     qos_overriding_options=OVERRIDABLE)

    def load(self):
        self.encoder = ClipEncoder(self.loaded)

    def subscribe(self):
        return self.camera_input(self.worker.submit).topic_name

    def unload_model(self):
        self.encoder, self._label_cache = None, ((), None)

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
        with self.parameter_lock:
            labels, top_k = tuple(self.labels), self.top_k
        rgb = camera_frame(msg, self.max_image_pixels)
        embedding = self.encoder.encode_images([rgb])[0]
        views = self.encoder.encode_images(view_tiles(rgb, self.view_tiles), frames=False) if (
            self.view_tiles) else embedding[None]
        scores = None
        if labels:
            probabilities = self.encoder.label_probabilities(
                embedding[None], self._label_embeddings(labels))[0]
            ranked = sorted(zip(labels, probabilities), key=lambda pair: -pair[1])[:top_k]
            scores = {label: round(float(p), 4) for label, p in ranked}
        return embedding, views, scores

    def publish_result(self, result):
        embedding, views, scores = result
        self.embedding_pub.publish(embedding_msg(embedding, self.encoder.name))
        self.views_pub.publish(embeddings_msg(views, self.encoder.name))
        if scores is not None:
            self.labels_pub.publish(String(data=json.dumps(scores)))


def main(args=None):
    return run_node(CameraEmbedder, args)


if __name__ == '__main__':
    raise SystemExit(main())
