"""Two hosts over DDS: perception on a "GPU workstation", the policy and the robot on the
"robot", two network namespaces joined by a veth pair, discovery across the subnet.

The workstation runs camera_embedder, command_embedder and scene_segmenter and an operator who
types the command; the robot runs action_policy and a stand-in base (camera out, cmd_vel in).
Data crosses the veth link over UDP only (no shared memory between the namespaces). Checked:
a command typed on one host moves the robot on the other; killing the workstation's processes
(SIGKILL, no goodbye) stops the robot within the watchdog. Printed: the round trip the link
adds. Needs root (network namespaces); skipped otherwise.
"""

import json
import os
from pathlib import Path
import random
import signal
import statistics
import subprocess
import sys
import threading
import time

import pytest
import yaml

from vla_ros.core import paths
from vla_ros.fixtures.ros_graph import wait_until
from vla_ros.nodes.stack import ros_arguments

GPU_NODES = ('camera_embedder', 'command_embedder', 'scene_segmenter')
START_TIMEOUT_S = 240.0  # four model loads at once on two cores
INPUT_TIMEOUT_S = 0.5  # config/vla.yaml's input_timeout_s


def can_make_namespaces() -> str:
    """'' when this process may create network namespaces, else why not."""
    if os.geteuid() != 0:
        return 'network namespaces need root (CI runs as root)'
    probe = f'vla_probe_{os.getpid()}'
    made = subprocess.run(['ip', 'netns', 'add', probe], capture_output=True, text=True)
    if made.returncode != 0:
        return f'cannot create a network namespace: {made.stderr.strip()}'
    subprocess.run(['ip', 'netns', 'delete', probe], check=False)
    return ''


pytestmark = pytest.mark.skipif(bool(can_make_namespaces()), reason=can_make_namespaces())


class Process:
    """A process in a network namespace whose stdout lines are collected as they come."""

    def __init__(self, namespace, command, env, log: Path):
        self.lines = []
        self.log = log
        self.popen = subprocess.Popen(
            ['ip', 'netns', 'exec', namespace, *command], stdout=subprocess.PIPE,
            stderr=open(log, 'w'), text=True, env=env, start_new_session=True)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.popen.stdout:
            self.lines.append(line.split())

    def events(self, kind):
        return [line[1:] for line in list(self.lines) if line and line[0] == kind]

    def kill(self, sig=signal.SIGKILL):
        if self.popen.poll() is None:
            try:
                os.killpg(self.popen.pid, sig)
            except ProcessLookupError:
                pass
        self.popen.wait(timeout=20)


@pytest.fixture
def hosts(tmp_path, tiny_clip_dir, tiny_clipseg_dir):
    """(start(host, command) -> Process, the nodes' arguments); hosts 'gpu' and 'robot'."""
    tag = f'{os.getpid() % 10000}'
    names = {'gpu': f'vla_gpu_{tag}', 'robot': f'vla_robot_{tag}'}
    links = {'gpu': f'vg{tag}', 'robot': f'vr{tag}'}
    addresses = {'gpu': '10.77.0.1/24', 'robot': '10.77.0.2/24'}
    commands = [['ip', 'netns', 'add', names['gpu']], ['ip', 'netns', 'add', names['robot']],
                ['ip', 'link', 'add', links['gpu'], 'type', 'veth', 'peer', 'name',
                 links['robot']]]
    for host in names:
        commands += [['ip', 'link', 'set', links[host], 'netns', names[host]],
                     ['ip', '-n', names[host], 'addr', 'add', addresses[host], 'dev',
                      links[host]],
                     ['ip', '-n', names[host], 'link', 'set', links[host], 'up'],
                     ['ip', '-n', names[host], 'link', 'set', 'lo', 'up']]
    started = []
    try:
        for command in commands:
            subprocess.run(command, check=True, capture_output=True)
        env = dict(os.environ, ROS_DOMAIN_ID=str(random.randint(1, 101)),
                   ROS_AUTOMATIC_DISCOVERY_RANGE='SUBNET',
                   # UDP only: processes in two namespaces of one machine would otherwise
                   # pass data through shared memory and never use the link.
                   FASTDDS_BUILTIN_TRANSPORTS='UDPv4', PYTHONUNBUFFERED='1')
        overlay = tmp_path / 'overlay.yaml'
        overlay.write_text(yaml.safe_dump({
            '/**': {'ros__parameters': {'device': 'cpu'}},
            '/**/camera_embedder': {'ros__parameters': {'model': str(tiny_clip_dir)}},
            '/**/command_embedder': {'ros__parameters': {'model': str(tiny_clip_dir)}},
            '/**/scene_segmenter': {'ros__parameters': {
                'model': str(tiny_clipseg_dir), 'verify_targets': False}},
            '/**/action_policy': {'ros__parameters': {
                'model': str(tiny_clip_dir), 'min_intent_similarity': 0.99,
                'intent_margin': 0.0, 'intent': {'move_forward': {'duration_s': 0.0}}}}}))
        arguments = ros_arguments(paths.SOURCE_ROOT / 'config' / 'vla.yaml') + [
            '--params-file', str(overlay)]

        def start(host, command, log_name):
            process = Process(names[host], command, env, tmp_path / f'{log_name}.log')
            started.append(process)
            return process
        def received_bytes(host):
            shown = subprocess.run(['ip', '-j', '-s', '-n', names[host], 'link', 'show', 'dev',
                                    links[host]], check=True, capture_output=True, text=True)
            return json.loads(shown.stdout)[0]['stats64']['rx']['bytes']
        yield start, arguments, received_bytes
    finally:
        for process in started:
            process.kill()
        for host in names:
            subprocess.run(['ip', 'netns', 'delete', names[host]], check=False)


def node(name, arguments):
    return [sys.executable, '-m', f'vla_ros.nodes.{name}', *arguments]


def probe(*role):
    return [sys.executable, '-m', 'vla_ros.fixtures.two_hosts', *role]


def round_trips(start, log_name, count=40):
    pinger = start('robot', probe('ping', str(count)), log_name)
    assert wait_until(lambda: pinger.events('done'), 60), pinger.log.read_text()
    pinger.kill(signal.SIGINT)
    return [float(line[0]) for line in pinger.events('rtt')]


def test_perception_on_one_host_drives_the_robot_on_the_other(hosts, capsys):
    start, arguments, received_bytes = hosts
    workstation = [start('gpu', node(name, arguments), name) for name in GPU_NODES]
    operator = start('gpu', probe('operator', 'move forward'), 'operator')
    robot = start('robot', probe('robot'), 'robot')
    # The policy last: the operator must wait for it (a command older than the policy's
    # activation is not followed), as a person waits for the robot to say it is ready.
    assert wait_until(lambda: any('ready: model' in line for line in open(
        workstation[1].log)), START_TIMEOUT_S)
    policy = start('robot', node('action_policy', arguments), 'action_policy')

    def moving():
        return any(float(v) > 0.05 for _, v, _ in robot.events('cmd'))
    assert wait_until(moving, START_TIMEOUT_S, 0.2), (
        robot.lines[-5:], policy.log.read_text()[-2000:], operator.lines)
    assert operator.events('sent')  # the command came from the other host

    before = {host: received_bytes(host) for host in ('gpu', 'robot')}
    time.sleep(2.0)
    rates = {host: (received_bytes(host) - before[host]) / 2.0 for host in before}
    # The camera (10 frames/s of 128x96 rgb8, 37 kB each) crossed the link to the workstation.
    assert rates['gpu'] > 5 * 128 * 96 * 3, rates
    over_link = round_trips(start, 'ping_link')
    killed_at = time.monotonic()
    for process in (*workstation, operator):
        process.kill()  # the workstation is gone: no goodbye on the link

    def stopped_since_kill():
        return [float(t) for t, v, w in robot.events('cmd')
                if float(t) > killed_at and float(v) == 0.0 and float(w) == 0.0]
    assert wait_until(stopped_since_kill, 5.0), robot.lines[-10:]
    stop_delay = stopped_since_kill()[0] - killed_at
    # The camera and the perception outputs are INPUT_TIMEOUT_S old when the watchdog acts:
    # with one control period and the last frame's age, well within a second.
    assert stop_delay < INPUT_TIMEOUT_S + 0.5, stop_delay
    moving_after = [t for t, v, _ in robot.events('cmd')
                    if float(t) > killed_at + stop_delay and float(v) != 0.0]
    assert moving_after == []
    assert wait_until(lambda: any('stale' in ' '.join(words)
                                  for words in robot.events('status')), 3)

    start('robot', probe('operator', ''), 'echo_local')
    local = round_trips(start, 'ping_local')
    with capsys.disabled():
        print(f'\n[two hosts] round trip over the veth link p50 '
              f'{1e3 * statistics.median(over_link):.2f} ms, within one namespace '
              f'{1e3 * statistics.median(local):.2f} ms (same run); robot stopped '
              f'{1e3 * stop_delay:.0f} ms after the workstation died; link traffic to the '
              f"workstation {rates['gpu'] / 1e3:.0f} kB/s, to the robot "
              f"{rates['robot'] / 1e3:.1f} kB/s")
