"""The simulated robot and the stack: watch the robot obey a sentence without owning one.

    ros2 launch vla_ros sim.launch.py seed:=7 rviz:=true
    ros2 topic pub --once -w 1 /vla/command std_msgs/msg/String "{data: 'go to the red ball'}"

sim_bridge publishes /camera/image_raw, /scan, /odom and /clock and drives on /cmd_vel, which
are vla.launch.py's default topics; the stack runs on simulated time, with the simulated
camera's geometry, its scan required for motion and its objects as the verifier's contrasts
(vla_ros.sim.world.simulated_robot and simulated_segmenter, as the evaluator runs it).
`clutter:=4` puts boxes and walls in the way; `world:=rooms` makes the scene a house of 2-4
rooms whose target is mostly in another room than the robot.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, IncludeLaunchDescription, Shutdown
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node
import yaml

from vla_ros.sim.world import simulated_robot, simulated_segmenter

WIDTH, HEIGHT = 320, 240  # sim_bridge's camera


def generate_launch_description():
    share = get_package_share_directory('vla_ros')
    arguments = [
        DeclareLaunchArgument('seed', default_value='1', description='scene seed'),
        DeclareLaunchArgument('clutter', default_value='0',
                              description='boxes and walls in the scene, most in the way'),
        DeclareLaunchArgument('world', default_value='arena', choices=['arena', 'rooms'],
                              description='arena: one open room; rooms: rooms with doorways '
                              'and furniture, the target mostly out of sight (no clutter)'),
        DeclareLaunchArgument('camera_rate_hz', default_value='10.0',
                              description='simulated camera frames per second'),
        DeclareLaunchArgument('rviz', default_value='false', choices=['true', 'false'],
                              description='start rviz2 with config/vla.rviz'),
        DeclareLaunchArgument('clip_model', default_value='',
                              description='CLIP id or folder; empty = as in the YAML'),
        DeclareLaunchArgument('clipseg_model', default_value='',
                              description='CLIPSeg id or folder; empty = as in the YAML'),
    ]
    bridge = Node(package='vla_ros', executable='sim_bridge', name='sim_bridge',
                  parameters=[{'seed': LaunchConfiguration('seed'),
                               'clutter': LaunchConfiguration('clutter'),
                               'world': LaunchConfiguration('world'),
                               'camera_rate_hz': LaunchConfiguration('camera_rate_hz'),
                               'width': WIDTH, 'height': HEIGHT}],
                  output='screen', emulate_tty=True,
                  # Without the simulator nothing moves or sees (its clock stops): a bridge
                  # that ends (a bad seed, world or clutter) ends the launch with its reason.
                  on_exit=Shutdown(reason='sim_bridge exited'))
    stack = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(os.path.join(share, 'launch', 'vla.launch.py')),
        launch_arguments={'use_sim_time': 'true', 'rviz': LaunchConfiguration('rviz'),
                          'clip_model': LaunchConfiguration('clip_model'),
                          'clipseg_model': LaunchConfiguration('clipseg_model'),
                          'policy_params': yaml.safe_dump(simulated_robot(WIDTH, HEIGHT),
                                                          default_flow_style=True).strip(),
                          'segmenter_params': yaml.safe_dump(simulated_segmenter(),
                                                             default_flow_style=True).strip(),
                          }.items())
    return LaunchDescription([*arguments, bridge, stack])
