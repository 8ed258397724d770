"""Bring up the vla_ros stack: four nodes in one namespace, configured by config/vla.yaml.

    ros2 launch vla_ros vla.launch.py image_topic:=/camera/image_raw rviz:=true

Launch arguments override the YAML: they are passed as parameter dicts after the file, and
launch_ros keys those by the node's full name, which rcl ranks above the file's entries.
"""

import os

from ament_index_python.packages import get_package_share_directory, PackageNotFoundError
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node
import yaml

CLIP_NODES = ('command_embedder', 'camera_embedder', 'action_policy')
CLIPSEG_NODES = ('scene_segmenter',)
IMAGE_NODES = ('camera_embedder', 'scene_segmenter')
NODE_PARAMS = {'action_policy': 'policy_params', 'scene_segmenter': 'segmenter_params'}


def launch_nodes(context):
    """Nodes built from the evaluated arguments, so that empty ones override nothing."""
    def value(name):
        return LaunchConfiguration(name).perform(context)

    image_topic, cmd_vel_topic = value('image_topic'), value('cmd_vel_topic')
    shared = {'use_sim_time': value('use_sim_time').lower() == 'true'}
    if value('device'):
        shared['device'] = value('device')
    nodes = []
    for name in (*CLIP_NODES, *CLIPSEG_NODES):
        overrides = dict(shared)
        model = value('clip_model') if name in CLIP_NODES else value('clipseg_model')
        if model:
            overrides['model'] = model
        remappings = [('cmd_vel', cmd_vel_topic), ('scan', value('scan_topic')),
                      ('odom', value('odom_topic'))] \
            if name == 'action_policy' else []
        argument = NODE_PARAMS.get(name)
        if argument and value(argument):
            # Values of the robot (sim.launch.py's camera, scanner and objects), above the
            # file's.
            extra = yaml.safe_load(value(argument))
            if not isinstance(extra, dict):
                raise ValueError(f'{argument}: write a YAML mapping, e.g. '
                                 '"{require_scan: \'true\'}", got ' + repr(value(argument)))
            overrides.update(extra)
        if name in IMAGE_NODES:
            remappings += [('image', image_topic),
                           ('image/compressed', image_topic + '/compressed')]
        nodes.append(Node(
            package='vla_ros', executable=name, name=name, namespace=value('namespace'),
            parameters=[value('params_file'), overrides], remappings=remappings,
            arguments=['--ros-args', '--log-level', value('log_level')],
            output='screen', emulate_tty=True))
    wanted = value('diagnostics_aggregator')
    if wanted == 'true' or (wanted == 'auto' and installed('diagnostic_aggregator')):
        # Groups the stack's /diagnostics on /diagnostics_agg for rqt_robot_monitor.
        share = get_package_share_directory('vla_ros')
        nodes.append(Node(
            package='diagnostic_aggregator', executable='aggregator_node',
            name='diagnostics_aggregator', namespace=value('namespace'),
            parameters=[os.path.join(share, 'config', 'diagnostics.yaml'),
                        {'use_sim_time': shared['use_sim_time']}],
            output='screen'))
    return nodes


def installed(package: str) -> bool:
    try:
        get_package_share_directory(package)
    except PackageNotFoundError:
        return False
    return True


def generate_launch_description():
    share = get_package_share_directory('vla_ros')
    arguments = [
        DeclareLaunchArgument('namespace', default_value='vla',
                              description='namespace of the four nodes and their topics'),
        DeclareLaunchArgument('params_file',
                              default_value=os.path.join(share, 'config', 'vla.yaml'),
                              description='the stack YAML (node-name keys, ros__parameters)'),
        DeclareLaunchArgument('image_topic', default_value='/camera/image_raw',
                              description='camera topic (sensor_msgs/Image), remapped to '
                                          'each node\'s "image"'),
        DeclareLaunchArgument('cmd_vel_topic', default_value='/cmd_vel',
                              description='where the policy sends velocity commands'),
        DeclareLaunchArgument('scan_topic', default_value='/scan',
                              description='laser scan (sensor_msgs/LaserScan) of the collision '
                              "monitor, remapped to the policy's scan"),
        DeclareLaunchArgument('odom_topic', default_value='/odom',
                              description='odometry (nav_msgs/Odometry) that carries a target '
                              "out of sight, remapped to the policy's odom"),
        DeclareLaunchArgument('policy_params', default_value='',
                              description="action_policy values above params_file, as a YAML "
                              "mapping: \"{require_scan: 'true', camera_mount: '0.16 0.28 12'}\""),
        DeclareLaunchArgument('segmenter_params', default_value='',
                              description='scene_segmenter values above params_file, as a '
                              'YAML mapping: "{verification_contrasts: [red mug, red ball]}"'),
        DeclareLaunchArgument('use_sim_time', default_value='false',
                              choices=['true', 'false'],
                              description='use /clock (simulation) instead of wall time'),
        DeclareLaunchArgument('clip_model', default_value='',
                              description='CLIP for both embedders and the policy: Hugging '
                                          'Face id or folder; empty = as in params_file'),
        DeclareLaunchArgument('clipseg_model', default_value='',
                              description='CLIPSeg for the segmenter: Hugging Face id or '
                                          'folder; empty = as in params_file'),
        DeclareLaunchArgument('device', default_value='', choices=['', 'auto', 'cpu', 'cuda'],
                              description='inference device; empty = as in params_file'),
        DeclareLaunchArgument('log_level', default_value='info',
                              choices=['debug', 'info', 'warn', 'error', 'fatal'],
                              description='log level of the four nodes'),
        DeclareLaunchArgument('rviz', default_value='false', choices=['true', 'false'],
                              description='start rviz2 with config/vla.rviz'),
        DeclareLaunchArgument('diagnostics_aggregator', default_value='auto',
                              choices=['auto', 'true', 'false'],
                              description='start diagnostic_aggregator with '
                                          'config/diagnostics.yaml (/diagnostics_agg, for '
                                          'rqt_robot_monitor); auto = when it is installed'),
    ]
    rviz = Node(package='rviz2', executable='rviz2', name='vla_rviz',
                arguments=['-d', os.path.join(share, 'config', 'vla.rviz')],
                parameters=[{'use_sim_time': LaunchConfiguration('use_sim_time')}],
                condition=IfCondition(LaunchConfiguration('rviz')))
    return LaunchDescription([*arguments, OpaqueFunction(function=launch_nodes), rviz])
