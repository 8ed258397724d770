"""`vla-ros demo`: watch the robot obey a sentence in the simulator (the main job of make demo).

The sim bridge and the stack run in one process over real DDS on simulated time. Modes:
  real    the four nodes as deployed: command -> embeddings -> CLIPSeg target -> policy;
  oracle  ground truth stands in for perception: the simulator's target pixels are published
          as `target`/`target_extent`/`target_source`, and the go_to intent as the text
          embedding of its own phrasing; the policy, safety layer, bridge and physics are the
          real ones.
  auto    real when the embedded models exist (or models are given), else oracle.
Writes runs/demo/seed-N/: episode.gif (camera with overlay), trajectory.png, summary.json.
"""

import json
import os
from pathlib import Path
import sys
import time

from vla_ros.core.config import DEVICES


def _models_available(args) -> bool:
    from vla_ros.core import paths
    if args.clip_model and args.clipseg_model:
        return True
    return all((paths.default_model_dir(kind) / 'config.json').is_file()
               for kind in ('clip', 'clipseg'))


class Observer:
    """Runs in the executor thread (where the simulator renders): records ground truth,
    pictures, and in oracle mode publishes the ground-truth target.
    """

    def __init__(self, node, world, scene, oracle: bool, frame_every: int = 2):
        from geometry_msgs.msg import PointStamped, Vector3Stamped
        from sensor_msgs.msg import Image, TimeReference

        from vla_ros.core.perception import Perception, PerceptionSettings
        from vla_ros.evaluation.lockstep import GroundTruthSegmenter

        self.node, self.world, self.scene, self.oracle = node, world, scene, oracle
        # The evaluator's oracle: the segmenter's place taken by the segmentation buffer.
        self.perception = Perception(GroundTruthSegmenter(world, scene),
                                     PerceptionSettings(prompts=(scene.target.name,),
                                                        fovea=None))
        self.trajectory, self.frames, self.distance = [], [], float('nan')
        self.frame_every, self.frame_count = frame_every, 0
        self.overlay = None
        if oracle:
            self.target_pub = node.create_publisher(PointStamped, 'target', 1)
            self.extent_pub = node.create_publisher(Vector3Stamped, 'target_extent', 1)
            self.source_pub = node.create_publisher(TimeReference, 'target_source', 1)
        else:
            node.create_subscription(Image, 'segmentation/overlay', self.on_overlay, 1)
        node.create_subscription(Image, 'camera/image_raw', self.on_frame, 1)

    def on_overlay(self, msg):
        self.overlay = msg

    def on_frame(self, msg):
        from geometry_msgs.msg import PointStamped, Vector3Stamped
        import numpy as np
        from sensor_msgs.msg import TimeReference

        from vla_ros.core.images import to_rgb
        from vla_ros.core.segmentation import render_overlay

        pose = self.world.pose()
        self.trajectory.append((pose.x, pose.y))
        self.distance = self.world.distance_to(self.scene.target_index)
        self.frame_count += 1
        keep = self.frame_count % self.frame_every == 0
        if self.oracle:
            sight = self.perception.see(None)
            target, mask = sight.target, sight.probabilities[0] > 0.5
            point, extent = PointStamped(header=msg.header), Vector3Stamped(header=msg.header)
            point.point.x, point.point.y, point.point.z = target.x, target.y, target.confidence
            extent.vector.x, extent.vector.y, extent.vector.z = (target.area, target.width,
                                                                 target.bottom)
            self.extent_pub.publish(extent)
            # Each frame its own segmentation (the ground truth's, at once).
            self.source_pub.publish(TimeReference(header=msg.header, time_ref=msg.header.stamp,
                                                  source='segmented'))
            self.target_pub.publish(point)
            if keep:
                self.frames.append(render_overlay(to_rgb(msg), mask.astype(np.uint8),
                                                  [f'{self.scene.target.name} (oracle)'],
                                                  target))
        elif keep:
            self.frames.append(to_rgb(self.overlay) if self.overlay is not None
                               else to_rgb(msg))


def write_episode(folder: Path, scene, observer, summary):
    import imageio.v2 as imageio
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    from vla_ros.commands.eval import draw_scene

    folder.mkdir(parents=True, exist_ok=True)
    if observer.frames:
        imageio.mimsave(folder / 'episode.gif', observer.frames, duration=0.2, loop=0)
    figure, axes = plt.subplots(figsize=(6, 6))
    draw_scene(axes, scene, observer.trajectory,
               f'"{summary["command"]}": {summary["outcome"]} after {summary["time_s"]:.1f} s')
    figure.tight_layout()
    figure.savefig(folder / 'trajectory.png', dpi=90)
    plt.close(figure)
    (folder / 'summary.json').write_text(json.dumps(summary, indent=2))


def run_demo(args) -> int:
    os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    from rclpy.node import Node
    from rclpy.parameter import Parameter
    from std_msgs.msg import Float32MultiArray, String

    from vla_ros.core import paths
    from vla_ros.core.models import ModelLoadError
    from vla_ros.core.status import is_final, record_change
    from vla_ros.evaluation.lockstep import StackSettings
    from vla_ros.evaluation.scoring import classify_outcome
    from vla_ros.fixtures.stand_ins import ensure_models
    from vla_ros.nodes.conversions import embedding_msg
    from vla_ros.nodes.qos import LATCHED
    from vla_ros.nodes.sim_bridge import SimBridge
    from vla_ros.nodes.stack import parameter_overrides, ros_arguments, Stack
    from vla_ros.sim.rooms import build_scene, EPISODE_S
    from vla_ros.sim.world import simulated_robot, simulated_segmenter, SimWorld

    if args.timeout is None:
        args.timeout = EPISODE_S[args.world]
    params_file = args.params_file or paths.default_params_file()
    try:
        settings = StackSettings.from_params_file(params_file)
        scene = build_scene(args.world, args.seed, args.clutter)
    except (OSError, ValueError) as error:
        print(f'[demo] cannot start: {error}', file=sys.stderr)
        return 2
    command = args.command or scene.command
    mode = args.mode
    if mode == 'auto':
        mode = 'real' if _models_available(args) else 'oracle'
        if mode == 'oracle':
            print('[demo] no embedded models in models/ yet: running in ORACLE mode (the '
                  "simulator's ground truth stands in for perception; the policy, safety "
                  'layer, bridge and physics are real)', flush=True)
    print(f'[demo] {args.world} scene {args.seed}: {len(scene.objects)} objects '
          f'({", ".join(item.name for item in scene.objects)}), '
          f'{len(scene.obstacles)} obstacles; command: "{command}"',
          flush=True)
    world = SimWorld(scene, 320, 240)
    overrides = parameter_overrides(args.clip_model, args.clipseg_model, args.device, True)
    nodes = None
    if mode == 'oracle':
        clip = args.clip_model or ensure_models(Path(args.cache_dir), quiet=True)['clip']
        overrides = parameter_overrides(clip, None, args.device, True)
        # The intent is given, not recognised: its exact phrasing cannot be ambiguous.
        overrides['action_policy'].append(Parameter('intent_margin', value=0.0))
        nodes = ('action_policy',)
    # The simulated camera's geometry and its laser, as sim.launch.py passes them.
    overrides['action_policy'].extend(
        Parameter(name, value=value)
        for name, value in simulated_robot(world.width, world.height).items())
    overrides['scene_segmenter'].extend(
        Parameter(name, value=value) for name, value in simulated_segmenter().items())
    started = time.monotonic()
    try:
        stack = Stack(ros_arguments(params_file, image_topic='/vla/camera/image_raw'),
                      overrides,
                      progress=lambda line: print(f'[demo] {line}', flush=True),
                      node_names=nodes)
    except (ModelLoadError, ValueError) as error:
        print(f'[demo] cannot start: {error}', file=sys.stderr)
        return 2
    stack.add(SimBridge(world=world, context=stack.context))
    probe = stack.add(Node('demo', context=stack.context))
    observer = Observer(probe, world, scene, oracle=mode == 'oracle')
    statuses = []
    probe.create_subscription(String, 'status', lambda msg: record_change(statuses, msg.data),
                              LATCHED)
    commands = probe.create_publisher(String, 'command', 10)
    if mode == 'oracle':
        policy = next(node for node in stack.nodes if node.get_name() == 'action_policy')
        # What the command embedder would latch: the instruction, and go_to's embedding.
        instructions = probe.create_publisher(String, 'instruction', LATCHED)
        instructions.publish(String(data=command))
        embeddings = probe.create_publisher(Float32MultiArray, 'text_embedding', LATCHED)
        go_to = settings.go_to_intent()
        embeddings.publish(embedding_msg(policy.encoder.encode_texts([go_to.phrases[0]])[0],
                                         policy.encoder.name))
    print(f'[demo] stack up in {time.monotonic() - started:.1f} s; sending "{command}"',
          flush=True)
    stack.spin_in_background()
    status, timed_out, last_print = 'idle', True, 0.0
    try:
        while world.time < args.timeout:
            if not statuses or statuses[-1] == 'idle':
                commands.publish(String(data=command))
            status = statuses[-1] if statuses else 'idle'
            if time.monotonic() - last_print >= 1.0:
                last_print = time.monotonic()
                print(f'[demo] t={world.time:5.1f} s  {status:<32} distance to the '
                      f'{scene.target.name}: {observer.distance:.2f} m', flush=True)
            if is_final(status):
                timed_out = False
                break
            time.sleep(0.1)
    except KeyboardInterrupt:
        print('[demo] interrupted', flush=True)
    finally:
        stack.close()  # the policy sends zero first
        bridge_time = world.time
    outcome, gap = classify_outcome(world, scene, status, timed_out)
    summary = {'seed': args.seed, 'world': args.world, 'command': command, 'mode': mode,
               'outcome': outcome,
               'status': status, 'time_s': bridge_time, 'final_distance_m': gap,
               'collided_with': world.collided_with or '', 'statuses': statuses}
    folder = Path(args.output) / f'seed-{args.seed}'
    write_episode(folder, scene, observer, summary)
    print(f'[demo] outcome: {outcome} ({status}), {gap:.2f} m from the {scene.target.name} '
          f'after {bridge_time:.1f} s of simulated time')
    print(f'[demo] pictures: {folder / "episode.gif"}, {folder / "trajectory.png"}; '
          f'summary: {folder / "summary.json"}')
    world.close()
    return 0


def add_arguments(parser):
    parser.add_argument('--command', default=None,
                        help='what to tell the robot (default: "go to the <target>")')
    parser.add_argument('--seed', type=int, default=1, help='scene seed')
    parser.add_argument('--clutter', type=int, default=0, metavar='N',
                        help='N boxes and walls in the scene, most of them in the way')
    parser.add_argument('--world', choices=('arena', 'rooms'), default='arena',
                        help='arena: one open room; rooms: 2-4 rooms with doorways and '
                        'furniture, the target mostly in another room than the start')
    parser.add_argument('--mode', choices=('auto', 'real', 'oracle'), default='auto')
    parser.add_argument('--timeout', type=float, default=None,
                        help='simulated seconds (default 60, 300 with --world rooms)')
    parser.add_argument('--params-file', default=None,
                        help='the stack YAML (default: the installed config/vla.yaml)')
    parser.add_argument('--output', default='runs/demo')
    parser.add_argument('--clip-model', default=None)
    parser.add_argument('--clipseg-model', default=None)
    parser.add_argument('--device', default=None, choices=DEVICES)
    parser.add_argument('--cache-dir',
                        default=os.path.join(os.path.expanduser('~'), '.cache', 'vla_ros'),
                        help='where a stand-in text encoder is written in oracle mode')
