"""Episodes over DDS: the four nodes as separate processes on simulated time, scored like the
lockstep ones.

Each episode starts camera_embedder, command_embedder, scene_segmenter and action_policy as
processes with the arguments vla.launch.py gives them (nodes.stack.ros_arguments: the params
file, the /vla namespace, the camera and cmd_vel remappings) and use_sim_time, as
sim.launch.py does. The simulated robot (nodes.sim_bridge.SimBridge: physics in real time,
/clock, camera, odometry, cmd_vel in) runs in this process, so that ground truth (contacts,
distances) can be scored without being published. A probe sends the command on /vla/command
as a user would and follows /vla/status, /vla/target and /odom. The processes are restarted
for every episode: a new world starts its clock at zero again.
"""

import os
from pathlib import Path
import random
import signal
import subprocess
import sys
import tempfile
import time

import yaml

from vla_ros.core.policy import TargetView
from vla_ros.core.status import is_final, record_change
from vla_ros.evaluation.ground_truth import shortest_way, target_visible_from_start
from vla_ros.evaluation.scoring import EpisodeResult, score, spl, view_lies_on
from vla_ros.evaluation.sequence_task import LegScore, step_ended
from vla_ros.sim.world import simulated_robot, simulated_segmenter, SimWorld

NODES = ('command_embedder', 'camera_embedder', 'scene_segmenter', 'action_policy')
START_TIMEOUT_S = 180.0  # four model loads on two busy cores
STOP_TIMEOUT_S = 15.0


class StackProcesses:
    """The four node processes of one episode; `stop()` sends SIGINT as Ctrl-C would."""

    def __init__(self, params_file, overlay_file, log_folder: Path):
        from vla_ros.nodes.stack import ros_arguments

        log_folder.mkdir(parents=True, exist_ok=True)
        self.logs = {name: log_folder / f'{name}.log' for name in NODES}
        arguments = ros_arguments(params_file) + ['--params-file', str(overlay_file)]
        self.processes = {}
        try:
            for name in NODES:
                with open(self.logs[name], 'w') as log:
                    self.processes[name] = subprocess.Popen(
                        [sys.executable, '-m', f'vla_ros.nodes.{name}', *arguments],
                        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        except BaseException:  # a Ctrl-C between two starts: stop those already started
            self.stop()
            raise

    def exited(self) -> dict:
        """Name -> exit code of each process that has ended."""
        return {name: process.poll() for name, process in self.processes.items()
                if process.poll() is not None}

    def log_tail(self, name: str, lines: int = 5) -> str:
        return '\n'.join(self.logs[name].read_text(errors='replace').splitlines()[-lines:])

    def stop(self) -> dict:
        """Ctrl-C to each process, SIGKILL after STOP_TIMEOUT_S; name -> exit code."""
        for process in self.processes.values():
            if process.poll() is None:
                try:
                    os.killpg(process.pid, signal.SIGINT)
                except ProcessLookupError:
                    pass  # it ended in between
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for process in self.processes.values():
            try:
                process.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                process.wait()
        return {name: process.returncode for name, process in self.processes.items()}


def overlay(args, width: int = 160, height: int = 120) -> dict:
    """The launch arguments sim.launch.py passes (use_sim_time; models and device when
    given), and the evaluator's --no-verify / --no-fovea, as a second params file.
    """
    from vla_ros.nodes.stack import parameter_overrides

    overrides = parameter_overrides(args.clip_model, args.clipseg_model, args.device, True)
    sections = {f'/**/{name}': {'ros__parameters': {parameter.name: parameter.value
                                                    for parameter in parameters}}
                for name, parameters in overrides.items()}
    segmenter = sections['/**/scene_segmenter']['ros__parameters']
    segmenter.update(simulated_segmenter())
    if args.clip_model:  # as lockstep: the verifier uses the given CLIP too
        segmenter['verification_model'] = str(args.clip_model)
    if not args.verify:
        segmenter['verify_targets'] = False
    if not args.fovea:
        segmenter['fovea'] = False
    sections['/**/action_policy']['ros__parameters'].update(simulated_robot(width, height))
    return sections


class DdsEpisodes:
    mode = 'real'

    def __init__(self, args, params_file, width: int = 160, height: int = 120,
                 camera_rate_hz: float = 10.0):
        if args.mode != 'real':
            raise ValueError('--transport dds runs the deployed nodes: --mode real only')
        # A domain of its own, unless the caller chose one: other stacks on this machine
        # (a test run, a demo) must not see these topics.
        os.environ.setdefault('ROS_DOMAIN_ID', str(random.randint(1, 101)))  # Linux-safe ids
        os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
        self.params_file, self.width, self.height = params_file, width, height
        self.camera_rate_hz = camera_rate_hz
        self.logs = Path(args.output) / 'logs'
        self._overlay = tempfile.NamedTemporaryFile('w', suffix='.yaml', delete=False)
        yaml.safe_dump(overlay(args, width, height), self._overlay)
        self._overlay.close()

    def close(self):
        Path(self._overlay.name).unlink(missing_ok=True)

    def run(self, scene, max_time_s: float = 60.0, command: str = None,
            expected: str = 'go_to') -> EpisodeResult:
        from diagnostic_msgs.msg import DiagnosticArray
        from geometry_msgs.msg import PointStamped, Vector3Stamped
        from nav_msgs.msg import Odometry
        from rclpy.node import Node
        from rclpy.parameter import Parameter
        from std_msgs.msg import String

        from vla_ros.nodes.qos import COMMANDS, LATCHED
        from vla_ros.nodes.sim_bridge import SimBridge
        from vla_ros.nodes.stack import Stack

        command = scene.command if command is None else command
        # Rendered here, in a world of its own: the episode's renders on the bridge's thread.
        visible = target_visible_from_start(scene) if scene.world == 'rooms' else None
        world = SimWorld(scene, self.width, self.height)
        processes = graph = None
        try:
            processes = StackProcesses(self.params_file, self._overlay.name,
                                       self.logs / f'seed-{scene.seed}')
            graph = Stack(None, node_names=(), progress=lambda line: None)
            probe = graph.add(Node('eval_probe', namespace='vla', context=graph.context))
            statuses, targets, extents, path = [], {}, {}, []
            legs = LegScore(scene) if scene.sequence else None

            def on_status(msg):
                if legs is not None and statuses and step_ended(statuses[-1], msg.data):
                    legs.step_ended(world)  # where the robot stands as the next step begins
                record_change(statuses, msg.data)

            probe.create_subscription(String, 'status', on_status, LATCHED)

            def keep(store, msg):
                store[(msg.header.stamp.sec, msg.header.stamp.nanosec)] = msg
                if len(store) > 4:
                    store.pop(min(store))

            arrivals = []  # when each target reached the probe (steady clock)

            def on_target(msg):
                keep(targets, msg)
                arrivals.append(time.monotonic())

            probe.create_subscription(PointStamped, 'target', on_target, 5)
            probe.create_subscription(Vector3Stamped, 'target_extent',
                                      lambda msg: keep(extents, msg), 5)
            probe.create_subscription(Odometry, '/odom', lambda msg: path.append(
                (msg.pose.pose.position.x, msg.pose.pose.position.y)), 50)
            perception_ms = []  # the scene_segmenter's own p50, as /diagnostics reports it
            probe.create_subscription(DiagnosticArray, '/diagnostics',
                                      lambda msg: segmenter_latency(msg, perception_ms), 10)
            commands = probe.create_publisher(String, 'command', COMMANDS)
            graph.spin_in_background()
            self._wait_until_ready(processes, probe, commands)
            start_distance = world.distance_to(scene.target_index)
            shortest = shortest_way(scene, start_distance)
            bridge = graph.add(SimBridge(world=world, context=graph.context, parameter_overrides=[
                Parameter('camera_rate_hz', value=self.camera_rate_hz)]))
            commands.publish(String(data=command))  # volatile, as `ros2 topic pub` sends it
            timed_out = True
            while world.time < max_time_s:
                if world.collided_with is not None or (
                        len(statuses) > 1 and is_final(statuses[-1])):
                    timed_out = False
                    break
                if processes.exited():
                    raise RuntimeError(self._died(processes))
                time.sleep(0.02)
            bridge.timer.cancel()  # the world stands still while it is scored
            time.sleep(0.1)  # a physics tick under way ends
            status = statuses[-1] if statuses else 'idle'
            # What the last target lay on, rendered on the executor thread: the world's GL
            # context belongs to the thread that renders its camera (the bridge's).
            lies_on = graph.executor.create_task(lambda: view_lies_on(
                world, scene if legs is None else legs.leg(), last_view(targets, extents)))
            deadline = time.monotonic() + 10.0
            while not lies_on.done() and time.monotonic() < deadline:
                time.sleep(0.01)
            last_view_on = lies_on.result() if lies_on.done() else 'none'
            length = sum(((bx - ax) ** 2 + (by - ay) ** 2) ** 0.5
                         for (ax, ay), (bx, by) in zip(path, path[1:]))
            if legs is None:
                outcome, success, final, cause = score(world, scene, status, timed_out,
                                                       last_view_on, expected,
                                                       path_m=length)
            else:
                outcome, success, final, cause, shortest = legs.score(
                    world, status, timed_out, last_view_on, shortest)
            return EpisodeResult(
                seed=scene.seed, command=command, mode='real', outcome=outcome,
                success=success, spl=spl(outcome, shortest, length),
                time_s=world.time, path_length_m=length, start_distance_m=start_distance,
                final_distance_m=final, collided_with=world.collided_with or '',
                status=status, perception_ms_p50=perception_ms[-1] if perception_ms else 0.0,
                cause=cause,
                transport='dds', statuses=list(statuses), trajectory=path,
                target_gap_max_s=max((b - a for a, b in zip(arrivals, arrivals[1:])),
                                     default=0.0),
                world=scene.world, shortest_way_m=shortest,
                visible_from_start=visible, expected=expected)
        finally:
            codes = processes.stop() if processes is not None else {}
            if graph is not None:
                graph.close()
            world.close()
            unclean = {name: code for name, code in codes.items() if code != 0}
            if unclean:
                print(f'[eval] seed {scene.seed}: processes that did not exit cleanly: '
                      f'{unclean} (logs in {self.logs / f"seed-{scene.seed}"})', flush=True)

    def _wait_until_ready(self, processes, probe, commands):
        """Until the command embedder hears commands, the segmenter and the policy its
        latched instruction, the camera has its two subscribers and the policy publishes
        status: every model is loaded.
        """
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if processes.exited():
                raise RuntimeError(self._died(processes))
            if (commands.get_subscription_count() >= 1
                    and probe.count_subscribers('instruction') >= 2
                    and probe.count_subscribers('/camera/image_raw') >= 2
                    and probe.count_publishers('status') >= 1):
                return
            time.sleep(0.1)
        raise RuntimeError(f'the stack was not ready within {START_TIMEOUT_S:g} s')

    @staticmethod
    def _died(processes) -> str:
        name, code = next(iter(processes.exited().items()))
        return f'{name} exited with {code}:\n{processes.log_tail(name)}'


def last_view(targets: dict, extents: dict) -> TargetView | None:
    """The newest target whose extent arrived too (the policy pairs them the same way)."""
    complete = sorted(set(targets) & set(extents))
    if not complete:
        return None
    point, extent = targets[complete[-1]].point, extents[complete[-1]].vector
    return TargetView(point.x, point.y, point.z, extent.x, bottom=extent.z, width=extent.y)


def segmenter_latency(msg, into: list) -> None:
    """Append the scene_segmenter's 'latency p50 (ms)' from a /diagnostics message."""
    for status in msg.status:
        if status.name.endswith('scene_segmenter: inference'):
            for item in status.values:
                if item.key == 'latency p50 (ms)':
                    try:
                        into.append(float(item.value))
                    except ValueError:
                        pass  # 'n/a' before the first frame
