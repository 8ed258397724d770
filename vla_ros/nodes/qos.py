"""The stack's QoS profiles, by intent; every node, command and test takes them from here."""

from rclpy.qos import (
    DurabilityPolicy,
    qos_profile_sensor_data,
    QoSProfile,
    ReliabilityPolicy,
)
from rclpy.qos_overriding_options import QoSOverridingOptions

# State, not a stream (the current instruction, the status): a late joiner still gets it.
LATCHED = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                     durability=DurabilityPolicy.TRANSIENT_LOCAL)
# Outputs where only the newest counts; reliable publishers reach both kinds of subscriber.
RELIABLE_LATEST = QoSProfile(depth=1)
# Camera frames: best effort connects to both kinds of camera driver; depth 1, as only the
# newest is used, bounds what DDS holds for this node to one frame.
SENSOR_DATA = QoSProfile(depth=1, reliability=qos_profile_sensor_data.reliability,
                         durability=qos_profile_sensor_data.durability)
# Typed commands: a few in flight, none lost.
COMMANDS = QoSProfile(depth=10)
# The upstream way to let a YAML's qos_overrides block change a topic's QoS.
OVERRIDABLE = QoSOverridingOptions.with_default_policies()
