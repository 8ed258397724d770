"""End-to-end checks on a running stack, shared by the `vla-ros up` test and the launch test.

The stack runs elsewhere (another process); this side publishes a camera frame and a command
and checks what comes back: types, headers, remappings, and that the policy speaks.
"""

import numpy as np
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

CAMERA_TOPIC = '/test_camera/image_raw'
CMD_VEL_TOPIC = '/test_robot/cmd_vel'
NAMESPACE = '/vla'
FRAME_ID = 'test_camera_optical'
LATCHED = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                     durability=DurabilityPolicy.TRANSIENT_LOCAL)


def outputs():
    from geometry_msgs.msg import PointStamped, Twist, Vector3Stamped
    from sensor_msgs.msg import Image
    from std_msgs.msg import Float32MultiArray, String
    return {
        f'{NAMESPACE}/text_embedding': (Float32MultiArray, LATCHED),
        f'{NAMESPACE}/image_embedding': (Float32MultiArray, 1),
        f'{NAMESPACE}/segmentation/mask': (Image, 1),
        f'{NAMESPACE}/target': (PointStamped, 1),
        f'{NAMESPACE}/target_extent': (Vector3Stamped, 1),
        f'{NAMESPACE}/status': (String, LATCHED),
        CMD_VEL_TOPIC: (Twist, 1),
    }


def subscribe_all(node):
    """Subscribe to every output; returns {topic: [messages]}."""
    received = {topic: [] for topic in outputs()}
    for topic, (message_type, qos) in outputs().items():
        node.create_subscription(message_type, topic, received[topic].append, qos)
    return received


def feed(node, received, wait_until, timeout=90.0):
    """Publish a frame and a command until every output has arrived."""
    from sensor_msgs.msg import Image
    from std_msgs.msg import String

    from vla_ros.core.images import to_image_msg

    frames = node.create_publisher(Image, CAMERA_TOPIC, 1)
    commands = node.create_publisher(String, f'{NAMESPACE}/command', 10)
    frame = to_image_msg(np.random.default_rng(5).integers(0, 256, (60, 80, 3), np.uint8))
    frame.header.frame_id = FRAME_ID

    def step():
        if all(received.values()):
            return True
        # Until everything answered: discovery matches each subscriber at its own pace.
        commands.publish(String(data='go to the red ball'))
        frame.header.stamp = node.get_clock().now().to_msg()
        frames.publish(frame)
        return False

    missing = lambda: [topic for topic, messages in received.items() if not messages]  # noqa
    assert wait_until(step, timeout, 0.25), f'nothing arrived on {missing()}'


def check_outputs(received, clip_name):
    """Types, headers and contents of what the stack published."""
    text = received[f'{NAMESPACE}/text_embedding'][-1]
    image = received[f'{NAMESPACE}/image_embedding'][-1]
    for embedding in (text, image):
        assert embedding.layout.dim[0].label == clip_name
        assert abs(float(np.linalg.norm(embedding.data)) - 1.0) < 1e-4
    mask = received[f'{NAMESPACE}/segmentation/mask'][-1]
    assert (mask.encoding, mask.width, mask.height) == ('mono8', 80, 60)
    assert mask.header.frame_id == FRAME_ID
    target = received[f'{NAMESPACE}/target'][-1]
    assert target.header.frame_id == FRAME_ID and 0.0 <= target.point.z <= 1.0
    extent = received[f'{NAMESPACE}/target_extent'][-1]
    assert extent.header.frame_id == FRAME_ID
    assert received[f'{NAMESPACE}/status'][-1].data
    twist = received[CMD_VEL_TOPIC][-1]
    assert np.isfinite([twist.linear.x, twist.angular.z]).all()
