"""command_embedder: a typed command -> its CLIP text embedding, latched for late joiners.

It is the stack's memory of the current instruction: `instruction` (the cleaned text) and
`text_embedding` are latched, so a restarted segmenter or policy learns what was asked.
"""

from functools import lru_cache

from std_msgs.msg import Float32MultiArray, String

from vla_ros.core.encoders import ClipEncoder
from vla_ros.core.text import clean_command
from vla_ros.nodes.conversions import embedding_msg
from vla_ros.nodes.lifecycle import THROTTLE_S
from vla_ros.nodes.model_node import ModelNode
from vla_ros.nodes.process import run_node
from vla_ros.nodes.qos import COMMANDS, LATCHED, OVERRIDABLE


class CommandEmbedder(ModelNode):
    NODE_NAME = 'command_embedder'

    def __init__(self, **kwargs):
        super().__init__(self.NODE_NAME, 'clip', **kwargs)
        self._encode = None  # while active: one encoding per distinct command
        self._last_text = None  # worker thread only: log a command when it changes
        self.encoder = None
        self.start()

    def make_outputs(self):
        self.embedding_pub = self.output(
            Float32MultiArray, 'text_embedding', LATCHED, qos_overriding_options=OVERRIDABLE)
        self.instruction_pub = self.output(String, 'instruction', LATCHED)

    def load(self):
        self.encoder = ClipEncoder(self.loaded)
        # One encoding per distinct command, never per frame or per repeat.
        self._encode = lru_cache(maxsize=self.values['cache_size'])(self._encode_uncached)

    def subscribe(self):
        return self.input(String, 'command', self.worker.submit, COMMANDS,
                          qos_overriding_options=OVERRIDABLE).topic_name

    def unload_model(self):
        self.encoder, self._encode = None, None

    def _encode_uncached(self, text: str):
        return self.encoder.encode_texts([text])[0]

    def process(self, msg):
        text, notes = clean_command(msg.data)
        logger = self.get_logger()
        if notes:
            logger.warning(f'command cleaned: {"; ".join(notes)}',
                           throttle_duration_sec=THROTTLE_S)
        changed, self._last_text = text != self._last_text, text
        if not text:
            # An empty command clears the instruction, so nobody acts on the previous one.
            if changed:
                logger.info('empty command: instruction cleared')
            return text, embedding_msg([], self.encoder.name, text)
        tokens = self.encoder.count_tokens(text)
        if tokens > self.encoder.max_text_tokens:
            logger.warning(
                f'command of {tokens} tokens cut to the model context of '
                f'{self.encoder.max_text_tokens}', throttle_duration_sec=THROTTLE_S)
        if changed:
            logger.info(f'new command: {text!r}')
        return text, embedding_msg(self._encode(text), self.encoder.name, text)

    def publish_result(self, result):
        text, embedding = result
        self.instruction_pub.publish(String(data=text))  # first: it names the embedding's object
        self.embedding_pub.publish(embedding)

    def cache_info(self):
        return self._encode.cache_info()


def main(args=None):
    return run_node(CommandEmbedder, args)


if __name__ == '__main__':
    raise SystemExit(main())
