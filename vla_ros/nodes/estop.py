"""action_policy's e-stop and enable switch: `estop` (std_msgs/Bool) from publishers of any
QoS, pressed per source (core.safety.EstopSources), `~/clear_estop` for the presses of
publishers that have left, and `~/enable` (std_srvs/SetBool).
"""

from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.qos import QoSProfile, ReliabilityPolicy
from std_msgs.msg import Bool
from std_srvs.srv import SetBool, Trigger

from vla_ros.core.safety import EstopSources
from vla_ros.nodes.conversions import publisher_of
from vla_ros.nodes.lifecycle import THROTTLE_S
from vla_ros.nodes.qos import LATCHED

# An e-stop must engage from a publisher of any QoS: one subscription per kind of publisher it
# could match (latched state, reliable stream, best-effort stream); each press is idempotent.
ESTOP_QOS = (LATCHED, QoSProfile(depth=10),
             QoSProfile(depth=10, reliability=ReliabilityPolicy.BEST_EFFORT))


class EstopInput:
    """The presses last across lifecycle transitions; the subscriptions are the node's
    inputs (while active), the services live as long as the node.
    """

    def __init__(self, node):
        self.node = node
        self.sources = EstopSources()
        self.enabled = True
        self.topic = node.resolve_topic_name('estop')
        node.create_service(SetBool, '~/enable', self.on_enable)
        node.create_service(Trigger, '~/clear_estop', self.on_clear_estop)

    @property
    def engaged(self) -> bool:
        return self.sources.engaged

    def subscribe(self) -> None:
        quiet = SubscriptionEventCallbacks(incompatible_qos=lambda event: None)
        for qos in ESTOP_QOS:  # a publisher matches at least the last one
            self.node.input(Bool, 'estop', self.on_estop, qos, event_callbacks=quiet)

    def diagnostic_values(self) -> dict:
        return {'e-stop': str(self.engaged), 'e-stop sources pressed': len(self.sources.pressed),
                'enabled': str(self.enabled)}

    def publishers_now(self) -> dict:
        """GUID -> node name of every publisher on estop now."""
        return {bytes(info.endpoint_gid): f'{info.node_namespace.rstrip("/")}/{info.node_name}'
                for info in self.node.get_publishers_info_by_topic(self.topic)}

    def on_estop(self, msg, info):
        source, order = publisher_of(info)
        if not self.sources.update(source, bool(msg.data), order):
            return
        logger = self.node.get_logger()
        if self.sources.engaged:
            who = self.publishers_now().get(source, 'a publisher that has left')
            logger.warning(f'e-stop ENGAGED by {who}: zero until every source that pressed it '
                           'publishes false', throttle_duration_sec=THROTTLE_S)
        else:
            logger.info('e-stop released by every source', throttle_duration_sec=THROTTLE_S)

    def on_clear_estop(self, request, response):
        publishers = self.publishers_now()
        cleared, live = self.sources.clear_dead(publishers)
        response.success = live == 0
        response.message = f'forgot {cleared} press(es) of publishers that have left'
        if live:
            names = sorted(publishers[source] for source in self.sources.pressed)
            response.message += (f'; {live} live publisher(s) still press it ({", ".join(names)}):'
                                 ' they must publish false')
        self.node.get_logger().warning(f'e-stop clear asked: {response.message}')
        return response

    def on_enable(self, request, response):
        self.enabled = bool(request.data)
        response.success = True
        response.message = 'enabled' if self.enabled else 'disabled: publishing zero'
        self.node.get_logger().info(response.message)
        return response
