"""`vla-ros smoke`: start the stack, feed it a generated frame and a command, print its outputs."""

import os
from pathlib import Path
import sys
import time

from vla_ros.core.config import DEVICES

SMOKE_COMMAND = 'go to the red ball'
SMOKE_LABELS = ['a red ball', 'a blue box', 'a green cylinder']


def synthetic_frame(height=240, width=320):
    """A floor, a red ball right of centre and a blue box on the left, as a camera sees them."""
    import cv2
    import numpy as np

    frame = np.empty((height, width, 3), np.uint8)
    frame[:] = (150, 150, 140)
    frame[: height // 3] = (200, 210, 225)  # wall
    cv2.circle(frame, (int(width * 0.7), int(height * 0.6)), height // 8, (220, 30, 30), -1)
    cv2.rectangle(frame, (int(width * 0.1), int(height * 0.5)),
                  (int(width * 0.3), int(height * 0.75)), (30, 40, 210), -1)
    return frame


def _describe(topic, msg) -> str:
    """One line about a received message, for a person reading the terminal."""
    import json

    import numpy as np

    kind = type(msg).__name__
    if kind == 'Float32MultiArray':
        data = np.asarray(msg.data)
        label = msg.layout.dim[0].label if msg.layout.dim else '?'
        if len(msg.layout.dim) > 1 and msg.layout.dim[1].label == 'embedding':  # rows
            rows = data.reshape(msg.layout.dim[0].size, -1)
            return (f'{topic}: Float32MultiArray, {rows.shape[0]} x dim {rows.shape[1]} '
                    f'(model {label}), norms {np.linalg.norm(rows, axis=1).round(4).tolist()}')
        return (f'{topic}: Float32MultiArray, dim {data.size} (model {label}), '
                f'norm {np.linalg.norm(data):.4f}')
    if kind == 'String':
        return f'{topic}: String {json.loads(msg.data) if msg.data.startswith("{") else msg.data}'
    if kind == 'Image':
        stamp = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
        return (f'{topic}: Image {msg.encoding} {msg.width}x{msg.height}, '
                f'frame_id {msg.header.frame_id!r}, stamp {stamp:.3f}')
    if kind == 'PointStamped':
        point = msg.point
        return (f'{topic}: PointStamped x {point.x:+.3f} (right), y {point.y:+.3f} (down), '
                f'confidence {point.z:.3f}')
    if kind == 'Twist':
        return (f'{topic}: Twist linear.x {msg.linear.x:+.3f} m/s, '
                f'angular.z {msg.angular.z:+.3f} rad/s')
    return f'{topic}: {kind}'


def run_smoke(args) -> int:
    """Start the stack as `vla-ros up` does, feed it a frame and a command, print the outputs."""
    os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')  # before rclpy
    import cv2
    from geometry_msgs.msg import PointStamped, Twist
    import rclpy.exceptions
    from rclpy.node import Node
    from rclpy.parameter import Parameter
    from sensor_msgs.msg import Image
    from std_msgs.msg import Float32MultiArray, String

    from vla_ros.core.images import to_image_msg, to_rgb
    from vla_ros.core.models import ModelLoadError
    from vla_ros.fixtures.stand_ins import ensure_models
    from vla_ros.nodes.qos import LATCHED
    from vla_ros.nodes.stack import parameter_overrides, ros_arguments, Stack

    sources = ensure_models(Path(args.cache_dir))
    output_dir = Path(args.output)
    output_dir.mkdir(parents=True, exist_ok=True)
    overrides = parameter_overrides(sources['clip'], sources['clipseg'], args.device)
    overrides['camera_embedder'].append(Parameter('labels', value=SMOKE_LABELS))
    started = time.monotonic()
    try:
        stack = Stack(ros_arguments(), overrides,
                      progress=lambda line: print(f'[smoke] {line}', flush=True))
    except (ModelLoadError, rclpy.exceptions.ParameterException, ValueError) as error:
        print(f'[smoke] cannot start: {error}', file=sys.stderr)
        return 2
    print(f'[smoke] nodes up in {time.monotonic() - started:.1f} s', flush=True)
    # The probe gets the stack's namespace and remappings, so relative names match.
    probe = stack.add(Node('smoke_probe', context=stack.context))
    wanted = {'text_embedding': (Float32MultiArray, LATCHED),
              'image_embedding': (Float32MultiArray, 1), 'scene_labels': (String, 1),
              'view_embeddings': (Float32MultiArray, 1),
              'segmentation/mask': (Image, 1), 'segmentation/overlay': (Image, 1),
              'target': (PointStamped, 1), 'status': (String, LATCHED), 'cmd_vel': (Twist, 1)}
    latest, names = {}, {}
    for topic, (message_type, qos) in wanted.items():
        names[topic] = probe.create_subscription(
            message_type, topic, lambda msg, topic=topic: latest.__setitem__(topic, msg),
            qos).topic_name
    commands = probe.create_publisher(String, 'command', 10)
    images = probe.create_publisher(Image, 'image', 1)
    stack.spin_in_background()
    try:
        frame = to_image_msg(synthetic_frame())
        frame.header.frame_id = 'smoke_camera'
        deadline = time.monotonic() + args.timeout
        print(f'[smoke] publishing {args.command!r} on {commands.topic_name} and a generated '
              f'{frame.width}x{frame.height} frame on {images.topic_name}', flush=True)
        settle_until = None  # once every topic spoke, let the policy act on the instruction
        while time.monotonic() < deadline and (settle_until is None
                                               or time.monotonic() < settle_until):
            if settle_until is None and len(latest) == len(wanted):
                settle_until = time.monotonic() + 1.0
            if 'text_embedding' not in latest:
                commands.publish(String(data=args.command))
            frame.header.stamp = probe.get_clock().now().to_msg()
            images.publish(frame)
            time.sleep(0.2)
        print('[smoke] what the pipeline published:')
        for topic in wanted:
            line = _describe(names[topic], latest[topic]) if topic in latest else \
                f'{names[topic]}: NOTHING within {args.timeout:g} s'
            print(f'  {line}')
        if 'segmentation/overlay' in latest:
            picture = output_dir / 'overlay.png'
            cv2.imwrite(str(picture), to_rgb(latest['segmentation/overlay'])[..., ::-1])
            print(f'[smoke] overlay picture: {picture}')
        return 0 if len(latest) == len(wanted) else 1
    finally:
        stack.close()




def add_arguments(parser):
    parser.add_argument('--command', default=SMOKE_COMMAND, help='the instruction to encode')
    parser.add_argument('--timeout', type=float, default=60.0,
                        help='seconds to wait for every output')
    parser.add_argument('--output', default='runs/smoke', help='where the overlay is saved')
    parser.add_argument('--device', default='auto', choices=DEVICES)
    parser.add_argument(
        '--cache-dir', default=os.path.join(os.path.expanduser('~'), '.cache', 'vla_ros'),
        help='where stand-in models are written when models/ has none')
