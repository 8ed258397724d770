"""`vla-ros up`: the four nodes in one process, configured like launch/vla.launch.py."""

import os

from vla_ros.core.config import DEVICES
from vla_ros.nodes.stack import (
    DEFAULT_CMD_VEL_TOPIC,
    DEFAULT_IMAGE_TOPIC,
    DEFAULT_NAMESPACE,
    DEFAULT_ODOM_TOPIC,
    DEFAULT_SCAN_TOPIC,
    parameter_overrides,
    ros_arguments,
    split_parameter_rules,
    Stack,
)


def run_up(args) -> int:
    """`vla-ros up`: the stack until Ctrl-C."""
    os.environ.setdefault('RCUTILS_COLORIZED_OUTPUT', '1')
    import rclpy.exceptions

    from vla_ros.core.models import ModelLoadError
    from vla_ros.nodes.process import hold_stop_signals, ignore_stop_signals, install_stop_signals

    install_stop_signals()  # from the start: a stop while the models load cleans up too

    try:
        extra, rules = split_parameter_rules(args.ros_args)
    except ValueError as error:
        print(f'[up] {error}', flush=True)
        return 2
    ros_args = ros_arguments(args.params_file, args.namespace, args.image_topic,
                             args.cmd_vel_topic, args.log_level, extra, args.scan_topic,
                             args.odom_topic)
    use_sim_time = None if args.use_sim_time is None else args.use_sim_time == 'true'
    overrides = parameter_overrides(args.clip_model, args.clipseg_model, args.device,
                                    use_sim_time)
    for node_overrides in overrides.values():
        node_overrides.extend(rules)
    try:
        stack = Stack(ros_args, overrides, progress=lambda line: print(f'[up] {line}',
                                                                       flush=True))
    except (ModelLoadError, rclpy.exceptions.ParameterException, ValueError) as error:
        print(f'[up] cannot start: {error}', flush=True)
        return 1
    except KeyboardInterrupt:  # stopped while starting: the Stack closed what it had started
        print('[up] stopped while starting', flush=True)
        ignore_stop_signals()
        return 0
    print(f'[up] running in /{args.namespace.strip("/")}: camera {args.image_topic}, '
          f'cmd_vel {args.cmd_vel_topic}, scan {args.scan_topic}, odom {args.odom_topic}; '
          'Ctrl-C stops (and sends a zero Twist)', flush=True)
    try:
        stack.spin_until_interrupted()
    finally:
        hold_stop_signals()  # a second Ctrl-C must not cut the cleanup short
        stack.close()
        ignore_stop_signals()
    return 0


def add_arguments(parser):
    """The launch file's arguments, as command-line options."""
    parser.add_argument('--namespace', default=DEFAULT_NAMESPACE)
    parser.add_argument('--params-file', default=None,
                        help='the stack YAML (default: the installed config/vla.yaml)')
    parser.add_argument('--image-topic', default=DEFAULT_IMAGE_TOPIC)
    parser.add_argument('--cmd-vel-topic', default=DEFAULT_CMD_VEL_TOPIC)
    parser.add_argument('--scan-topic', default=DEFAULT_SCAN_TOPIC,
                        help='the laser scan (sensor_msgs/LaserScan) of the collision monitor')
    parser.add_argument('--odom-topic', default=DEFAULT_ODOM_TOPIC,
                        help='odometry (nav_msgs/Odometry) that carries a target out of sight')
    parser.add_argument('--use-sim-time', default=None, choices=('true', 'false'),
                        type=str.lower)
    parser.add_argument('--clip-model', default=None,
                        help='CLIP id or folder for both embedders and the policy')
    parser.add_argument('--clipseg-model', default=None, help='CLIPSeg id or folder')
    parser.add_argument('--device', default=None, choices=DEVICES)
    parser.add_argument('--log-level', default=None,
                        choices=('debug', 'info', 'warn', 'error', 'fatal'))
    parser.add_argument('--ros-args', dest='ros_args', nargs='...', default=[],
                        help='ROS arguments: -p name:=value sets name on every node that '
                        'declares it (beating the YAML); the rest goes to rcl as it is')
