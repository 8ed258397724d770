"""The node executables as separate processes: DDS between processes, Ctrl-C, bad config."""

import os
from pathlib import Path
import signal
import subprocess
import sys

import numpy as np
import pytest
from sensor_msgs.msg import Image
from std_msgs.msg import Float32MultiArray

from vla_ros.core.backends import openvino_installed
from vla_ros.core.images import to_image_msg
from vla_ros.fixtures.ros_graph import finish, stop_as_a_terminal_does, wait_until

BIN = Path(sys.executable).parent


def start(executable, *ros_args):
    """Start a node as `ros2 run vla_ros <executable> --ros-args ...` would.

    Its own session, so that SIGINT reaches it as Ctrl-C would.
    """
    return subprocess.Popen([str(BIN / executable), '--ros-args', *ros_args],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True, env=dict(os.environ))


def test_camera_embedder_process_embeds_and_exits_cleanly_on_ctrl_c(ros, tiny_clip_dir):
    process = start('camera_embedder', '-p', f'model:={tiny_clip_dir}', '-p', 'device:=cpu',
                    '-r', 'image:=/test_camera/image_raw', '-r', '__ns:=/vla')
    try:
        received = ros.collect(Float32MultiArray, '/vla/image_embedding')
        images = ros.publisher(Image, '/test_camera/image_raw')
        msg = to_image_msg(np.full((30, 40, 3), 128, np.uint8))
        assert wait_until(lambda: received or images.publish(msg), 60, 0.2), 'no embedding'
        assert received[0].layout.dim[0].label == tiny_clip_dir.name
    finally:
        stop_as_a_terminal_does(process.pid)  # SIGINT twice, then SIGTERM
        output = finish(process, 30)
    assert process.returncode == 0, output
    assert 'ready: model tiny-clip' in output
    # The backend auto chose, on the start-up line.
    assert f"on {'openvino' if openvino_installed() else 'torch'} " in output
    assert 'Traceback' not in output


def test_ctrl_c_stops_a_node_started_with_sigint_ignored(ros, tiny_clip_dir):
    """Started from a background job (`cmd &` in a script), a process inherits SIGINT ignored;
    the node must still stop on Ctrl-C.
    """
    process = subprocess.Popen(
        [str(BIN / 'command_embedder'), '--ros-args', '-p', f'model:={tiny_clip_dir}',
         '-p', 'device:=cpu'], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True, env=dict(os.environ),
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    try:
        assert wait_until(lambda: 'command_embedder' in ros.probe.get_node_names(), 60)
    finally:
        stop_as_a_terminal_does(process.pid)  # SIGINT twice, then SIGTERM
        output = finish(process, 30)
    assert process.returncode == 0, output


@pytest.mark.parametrize(('executable', 'argument', 'expected'), [
    ('command_embedder', 'model:=/no/such/folder', "model folder '/no/such/folder' does not"),
    ('scene_segmenter', 'max_rate_hz:=fast', 'max_rate_hz'),
    ('scene_segmenter', 'mask_encoding:=jpeg', 'mask_encoding'),
])
def test_bad_configuration_exits_with_one_clear_line(executable, argument, expected):
    process = start(executable, '-p', argument)
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 1, output
    assert expected in output
    assert 'Traceback' not in output


@pytest.mark.parametrize('executable', ['camera_embedder', 'action_policy', 'sim_bridge'])
def test_help_prints_usage_and_parameters_without_starting(executable):
    result = subprocess.run([str(BIN / executable), '--help'], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f'usage: ros2 run vla_ros {executable}')
    assert 'ready:' not in result.stdout + result.stderr  # no node started
    if executable != 'sim_bridge':
        assert 'read-only' in result.stdout and 'model' in result.stdout
