"""`vla-ros up` in its own process: the same end-to-end checks as the launch test."""

import os
import subprocess
import sys
import time

from vla_ros.fixtures import stack_checks
from vla_ros.fixtures.ros_graph import finish, RosGraph, stop_as_a_terminal_does, wait_until


def test_vla_ros_up_end_to_end_and_clean_exit(tiny_clip_dir, tiny_clipseg_dir):
    ros = RosGraph()
    process = subprocess.Popen(
        [sys.executable, '-m', 'vla_ros', 'up', '--clip-model', str(tiny_clip_dir),
         '--clipseg-model', str(tiny_clipseg_dir), '--device', 'cpu',
         '--image-topic', stack_checks.CAMERA_TOPIC,
         '--cmd-vel-topic', stack_checks.CMD_VEL_TOPIC,
         '--ros-args', '-p', 'control_rate_hz:=10.0'],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
        env=dict(os.environ))
    try:
        received = stack_checks.subscribe_all(ros.probe)
        stack_checks.feed(ros.probe, received, wait_until)
        stack_checks.check_outputs(received, tiny_clip_dir.name)
        # The YAML says 20 Hz; the command-line override must win.
        cmd_vel = received[stack_checks.CMD_VEL_TOPIC]
        count, started = len(cmd_vel), time.monotonic()
        time.sleep(2.0)
        rate = (len(cmd_vel) - count) / (time.monotonic() - started)
        assert 6.0 <= rate <= 14.0, f'cmd_vel at {rate:.1f} Hz, expected the 10 Hz override'
    finally:
        stop_as_a_terminal_does(process.pid)  # SIGINT twice, then SIGTERM
        output = finish(process, 60)
        time.sleep(0.3)
        ros.close()
    assert process.returncode == 0, output
    assert 'Traceback' not in output, output
    last = received[stack_checks.CMD_VEL_TOPIC][-1]
    assert (last.linear.x, last.angular.z) == (0.0, 0.0)


def test_vla_ros_up_refuses_bad_configuration(tmp_path):
    result = subprocess.run(
        [sys.executable, '-m', 'vla_ros', 'up', '--clip-model', str(tmp_path / 'missing')],
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert 'cannot start' in result.stdout and 'does not exist' in result.stdout
    assert 'Traceback' not in result.stdout + result.stderr
