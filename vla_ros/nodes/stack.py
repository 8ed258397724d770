"""Run the four nodes in one process: `vla-ros up`, the demo, and single-board robots.

It behaves like launch/vla.launch.py: the same namespace, remappings and YAML, read through
rcl's own `--ros-args --params-file` handling, with the same arguments overriding the YAML.
Nodes that name the same model share one copy in memory (ModelCache).
"""

import threading

from vla_ros.core import paths

DEFAULT_NAMESPACE = 'vla'
DEFAULT_IMAGE_TOPIC = '/camera/image_raw'
DEFAULT_CMD_VEL_TOPIC = '/cmd_vel'
DEFAULT_SCAN_TOPIC = '/scan'
DEFAULT_ODOM_TOPIC = '/odom'
CLIP_NODES = ('camera_embedder', 'command_embedder', 'action_policy')
CLIPSEG_NODES = ('scene_segmenter',)


def node_classes():
    from vla_ros.nodes.action_policy import ActionPolicyNode
    from vla_ros.nodes.camera_embedder import CameraEmbedder
    from vla_ros.nodes.command_embedder import CommandEmbedder
    from vla_ros.nodes.scene_segmenter import SceneSegmenter
    return (CommandEmbedder, CameraEmbedder, SceneSegmenter, ActionPolicyNode)


def ros_arguments(params_file=None, namespace=DEFAULT_NAMESPACE,
                  image_topic=DEFAULT_IMAGE_TOPIC, cmd_vel_topic=DEFAULT_CMD_VEL_TOPIC,
                  log_level=None, extra=(), scan_topic=DEFAULT_SCAN_TOPIC,
                  odom_topic=DEFAULT_ODOM_TOPIC):
    """The --ros-args every node of the stack gets, as the launch file gives them."""
    arguments = ['--ros-args', '--params-file', str(params_file or paths.default_params_file()),
                 '-r', f'__ns:=/{namespace.strip("/")}', '-r', f'image:={image_topic}',
                 '-r', f'image/compressed:={image_topic}/compressed',
                 '-r', f'cmd_vel:={cmd_vel_topic}', '-r', f'scan:={scan_topic}',
                 '-r', f'odom:={odom_topic}']
    if log_level:
        arguments += ['--log-level', log_level]
    return arguments + list(extra)


def parameter_overrides(clip_model=None, clipseg_model=None, device=None, use_sim_time=None):
    """Per-node overrides from the command line; like launch arguments, they beat the YAML."""
    from rclpy.parameter import Parameter

    overrides = {name: [] for name in (*CLIP_NODES, *CLIPSEG_NODES)}
    for names, model in ((CLIP_NODES, clip_model), (CLIPSEG_NODES, clipseg_model)):
        if model is not None:
            for name in names:
                overrides[name].append(Parameter('model', value=str(model)))
    for name in overrides:
        if device is not None:
            overrides[name].append(Parameter('device', value=device))
        if use_sim_time is not None:
            overrides[name].append(Parameter('use_sim_time', value=bool(use_sim_time)))
    return overrides


def split_parameter_rules(extra):
    """Take `-p name:=value` out of extra ROS arguments as Parameters.

    rcl files `-p` rules under `/**`, and a YAML that has its own `/**` section puts those
    before its node sections, so the YAML would win. As node parameter overrides they win, as
    a launch file's parameter dicts (keyed by the node's full name) do.
    """
    from rclpy.parameter import Parameter
    import yaml

    remaining, parameters, items = [], [], iter(extra)
    for item in items:
        if item in ('-p', '--param'):
            rule = next(items, '')
            name, separator, text = rule.partition(':=')
            if not separator or not name or ':' in name:
                raise ValueError(f"'-p {rule}': write -p name:=value (applies to every node "
                                 'that declares name)')
            parameters.append(Parameter(name, value=yaml.safe_load(text)))
        else:
            remaining.append(item)
    return remaining, parameters


class Stack:
    """The four nodes on one executor thread in a private context."""

    def __init__(self, ros_args, overrides=None, progress=print, node_names=None):
        import rclpy
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.signals import SignalHandlerOptions

        from vla_ros.core.models import ModelCache

        overrides = overrides or {}
        self.context = rclpy.Context()
        # No rclpy signal handler: Ctrl-C must leave the context working long enough for the
        # policy to publish its zero Twist (see vla_ros.nodes.process.run_node).
        rclpy.init(args=ros_args, context=self.context,
                   signal_handler_options=SignalHandlerOptions.NO)
        # One executor thread: callbacks only hand over, and rclpy's MultiThreadedExecutor
        # delays back-to-back messages by up to a second (ros2/rclpy#1452).
        self.executor = SingleThreadedExecutor(context=self.context)
        self.nodes = []
        self._spinner = None
        models = ModelCache()
        try:
            for node_class in node_classes():
                if node_names is not None and node_class.NODE_NAME not in node_names:
                    continue
                progress(f'starting {node_class.NODE_NAME} ...')
                node = node_class(context=self.context, model_cache=models,
                                  parameter_overrides=overrides.get(node_class.NODE_NAME, []))
                self.add(node)
        except BaseException:
            self.close()
            raise

    def add(self, node):
        self.nodes.append(node)
        self.executor.add_node(node)
        return node

    def spin_in_background(self):
        """Spin on a thread (once: a second call leaves the running thread alone)."""
        if getattr(self, '_spinner', None) is not None and self._spinner.is_alive():
            return
        self._spinner = threading.Thread(target=self.executor.spin, daemon=True)
        self._spinner.start()

    def spin_until_interrupted(self):
        from vla_ros.nodes.process import spin_until_stopped

        try:
            spin_until_stopped(self.executor, self.context)
        except KeyboardInterrupt:
            pass

    def close(self):
        import rclpy

        # The executor first: a control tick must not run while the policy stops.
        self.executor.shutdown(timeout_sec=5.0)
        if self._spinner is not None:
            self._spinner.join(timeout=5.0)  # destroying nodes under a spinner aborts
        for node in self.nodes:
            if hasattr(node, 'shutdown'):
                node.shutdown()  # stops workers; the policy publishes zero
        for node in self.nodes:
            node.destroy_node()
        rclpy.try_shutdown(context=self.context)
