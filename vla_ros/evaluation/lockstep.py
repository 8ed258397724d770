"""One "go to the <colour> <shape>" episode in the simulator, run in lockstep.

The robot's own pipeline objects (core.perception.Perception, core.control.Controller),
configured from the same params file as the nodes, run here without transport: the camera
at the simulated camera's rate, perception at the segmenter's max_rate_hz, control at the
policy's control_rate_hz with the freshness watchdog on the inputs' ages. Episodes are
reproducible and faster than real time. Two perception modes:
  oracle  the segmenter replaced by the simulator's segmentation buffer, and the go_to intent
          given: isolates control from perception;
  real    the command through the CLIP text encoder and intent matching, the target from
          CLIPSeg on the rendered camera image: the pipeline as deployed.
"""

from dataclasses import dataclass, field
import math
import time

import numpy as np

from vla_ros.core import config
from vla_ros.core.control import Controller, ControlSettings
from vla_ros.core.exploration import view_tiles
from vla_ros.core.odometry import motion
from vla_ros.core.perception import (
    Perception,
    PerceptionSettings,
    target_view,
    TrackedPerception,
)
from vla_ros.core.policy import Segmentation
from vla_ros.core.status import is_final
from vla_ros.core.text import clean_command
from vla_ros.core.tracking import TargetTracker
from vla_ros.evaluation.ground_truth import shortest_way, target_visible_from_start
from vla_ros.evaluation.motion_task import motion_outcome
from vla_ros.evaluation.scoring import EpisodeResult, score, spl, view_lies_on
from vla_ros.evaluation.sequence_task import LegScore, step_ended
from vla_ros.sim.scene import Scene
from vla_ros.sim.world import ScanSettings, simulated_robot, simulated_segmenter, SimWorld

CAMERA_HZ = 10.0  # sim_bridge's camera_rate_hz default, as sim.launch.py starts it
# The camera_embedder's rate: the image embeddings exploration's value map gets.
VIEW_RATE_HZ = config.NODE_TABLES['camera_embedder']['max_rate_hz'].default



@dataclass(frozen=True)
class StackSettings:
    """What the evaluator needs of a params file: the values the nodes would run with."""

    policy: dict  # action_policy's checked values
    segmenter: dict  # scene_segmenter's checked values
    camera_rate_hz: float = CAMERA_HZ
    scan: ScanSettings = field(default_factory=ScanSettings)
    view_tiles: int = config.NODE_TABLES['camera_embedder']['view_tiles'].default

    @classmethod
    def from_params_file(cls, path, camera_rate_hz: float = CAMERA_HZ, width: int = 160,
                         height: int = 120) -> 'StackSettings':
        policy = config.read_params_file(path, 'action_policy')
        policy = config.check_values('action_policy', {**policy, **simulated_robot(
            width, height)})
        segmenter = {**config.read_params_file(path, 'scene_segmenter'), **simulated_segmenter()}
        camera = config.read_params_file(path, 'camera_embedder')
        return cls(policy, segmenter, camera_rate_hz,
                   view_tiles=camera.get('view_tiles', cls.view_tiles))

    @property
    def control(self) -> ControlSettings:
        return ControlSettings.from_values(self.policy)

    @property
    def intents(self) -> tuple:
        return config.build_intents(self.policy)

    @property
    def perception(self) -> PerceptionSettings:
        return PerceptionSettings.from_values(self.segmenter)

    def go_to_intent(self):
        return next(intent for intent in self.intents if intent.behaviour == 'go_to')


class GroundTruthSegmenter:
    """The segmenter's interface over the simulator's segmentation buffer: for each prompt,
    the pixels of the objects it names at probability 1 (for the first, the target's where
    no object has its name).
    """

    def __init__(self, world: SimWorld, scene: Scene):
        self.world, self.scene = world, scene
        self.shown = ((scene.target_index,),)

    def set_prompts(self, prompts) -> bool:
        names = [thing.name for thing in self.scene.objects]
        self.shown = tuple(
            tuple(index for index, name in enumerate(names) if name == prompt)
            or ((self.scene.target_index,) if number == 0 else ())
            for number, prompt in enumerate(prompts))
        return False

    def probabilities(self, rgb, fovea=None) -> np.ndarray:
        labels = self.world.label_image()  # object i + 1, 0 elsewhere
        return np.stack([np.isin(labels, np.add(indices, 1)).astype(np.float32)
                         for indices in self.shown])


class OracleMode:
    """Ground truth for the target and the go_to intent; control is the robot's own."""

    mode = 'oracle'

    def __init__(self, settings: StackSettings):
        self.settings = settings

    def perception(self, world: SimWorld, scene: Scene) -> Perception:
        return Perception(GroundTruthSegmenter(world, scene), PerceptionSettings(
            command_verbs=self.settings.perception.command_verbs, fovea=None), exact=True)

    def controller(self) -> Controller:
        return Controller(None, self.settings.control)

    def instruct(self, controller: Controller, perception: Perception, command: str,
                 now: float) -> str:
        perception.command(command)
        return controller.follow_steps(clean_command(command)[0], self.settings.go_to_intent(),
                                       now)

    def view_embedding(self, rgb):
        """No CLIP here: exploration goes without a value map."""
        return None


class RealMode:
    """The deployed models: the command_embedder's text encoding and the policy's intent
    matching, the scene_segmenter's CLIPSeg with its fovea and verifier.
    """

    mode = 'real'

    def __init__(self, settings: StackSettings, encoder, segmenter, verifier_encoder=None,
                 intent_encoder=None):
        """`intent_encoder`: what encodes the intents' phrasings (action_policy's CLIP, on
        torch); default `encoder` (command_embedder's).
        """
        self.settings, self.encoder, self.segmenter = settings, encoder, segmenter
        self.verifier_encoder = verifier_encoder
        self.intent_encoder = intent_encoder or encoder
        self._controller = Controller.from_encoder(
            settings.intents, self.intent_encoder.encode_texts, settings.control)

    def perception(self, world: SimWorld, scene: Scene) -> Perception:
        from vla_ros.core.verification import TargetVerifier

        verifier_config = config.verifier_config(self.settings.segmenter)
        verifier = None if verifier_config is None else TargetVerifier(
            self.verifier_encoder, verifier_config)
        return Perception(self.segmenter, self.settings.perception, verifier)

    def controller(self) -> Controller:
        # The classifier (the intents' phrasings, encoded once) is shared; state is not.
        return Controller(self._controller.policy.classifier, self.settings.control,
                          self.intent_encoder.encode_texts)

    def instruct(self, controller: Controller, perception: Perception, command: str,
                 now: float) -> str:
        text, _ = clean_command(command)
        embedding = self.encoder.encode_texts([text])[0] if text else []
        perception.command(command)  # what the scene_segmenter does with it
        return controller.instruct(embedding, text, now)

    def view_embedding(self, rgb):
        """The camera_embedder's view_embeddings of a frame (exploration's value map): its
        crops', or the whole frame's.
        """
        tiles = self.settings.view_tiles
        if tiles:
            return self.encoder.encode_images(view_tiles(rgb, tiles), frames=False)
        return self.encoder.encode_images([rgb])


def run_episode(scene: Scene, pipeline, max_time_s: float = 60.0, width: int = 160,
                height: int = 120, record_every: int = 0, command: str = None,
                expected: str = 'go_to', perception_latency: float = None,
                asked: tuple = None) -> EpisodeResult:
    """Drive one episode; `record_every` > 0 keeps every n-th camera frame (for GIFs).
    `expected` not_understood scores a command that must not move the robot; motion a
    measured motion, `asked` (distance m | angle degrees, signed amount: motion_task).

    The segmenter is busy for `perception_latency` seconds a segmentation (None: auto, its
    period 1 / max_rate_hz or the time the model really took, whichever is longer): the
    result of a frame reaches the tracker that long after the frame, as on a robot, and the
    next segmentation starts then, on the newest frame. The tracker runs on every frame.
    """
    settings = pipeline.settings
    command = scene.command if command is None else command
    world = SimWorld(scene, width, height)
    try:
        perception, controller = pipeline.perception(world, scene), pipeline.controller()
        tracker = TargetTracker() if settings.segmenter.get('track_targets', True) else None
        tracked = TrackedPerception(perception, tracker)
        control_dt = 1.0 / settings.control.control_rate_hz
        frame_period = 1.0 / settings.camera_rate_hz
        perception_period = 1.0 / settings.segmenter['max_rate_hz']
        scan_settings, laser = settings.scan, config.laser_pose(settings.policy)
        scan_rng = np.random.default_rng(scene.seed)
        scan = scan_time = None
        next_scan = next_segmentation = next_view = 0.0
        view_period = 1.0 / VIEW_RATE_HZ
        in_flight = None  # (due time, sight, its frame's time, its frame)
        start = pose_now = world.pose()
        turned = 0.0  # rad, counter-clockwise, unwrapped
        start_distance = world.distance_to(scene.target_index)
        shortest = shortest_way(scene, start_distance)
        visible = target_visible_from_start(scene, world) if scene.world == 'rooms' else None
        status = pipeline.instruct(controller, perception, command, 0.0)
        statuses = [status]
        legs = LegScore(scene) if scene.sequence else None
        trajectory, frames, latencies = [(start.x, start.y)], [], []
        view = target_time = camera_time = segmented_time = looked_for = None
        alike = 0
        next_frame, frame_count, path, timed_out, moved = 0.0, 0, 0.0, True, False
        while world.time < max_time_s:
            now = world.time
            if now + 1e-9 >= next_frame:
                next_frame += frame_period
                camera_time = now
                rgb = world.render()
                if in_flight is not None and now + 1e-9 >= in_flight[0]:
                    tracked.deliver(*in_flight[1:])
                    in_flight = None
                if in_flight is None and now + 1e-9 >= next_segmentation:
                    started = time.perf_counter()
                    sight = tracked.segment(rgb, now)
                    took = time.perf_counter() - started
                    latencies.append(took)
                    busy = (max(perception_period, took) if perception_latency is None
                            else perception_latency)
                    next_segmentation = now + max(perception_period, busy)
                    if sight is not None:
                        in_flight = (now + busy, sight, now, rgb)
                track = tracked.frame(rgb, now)
                if track is not None:
                    view, target_time = target_view(track.target), now
                    segmented_time, looked_for = track.segmented_stamp, tracked.step
                    alike = tracked.alike
                if now + 1e-9 >= next_view and controller.explorer.ready and (
                        controller.wants_views):
                    next_view = now + view_period
                    embedding = pipeline.view_embedding(rgb)
                    if embedding is not None:
                        controller.observe_view(embedding, world.pose(), 0.0)
                if record_every and frame_count % record_every == 0:
                    frames.append((rgb, None if track is None else track.target))
                frame_count += 1
            if now + 1e-9 >= next_scan:
                next_scan += 1.0 / scan_settings.rate_hz
                rays = scan_settings.message(world.scan(**scan_settings.ray_cast(), rng=scan_rng),
                                             laser)
                scan, scan_time = rays.points(), now
                controller.observe_scan(rays, world.pose(), 0.0)
            output = controller.tick(now, view, None if target_time is None
                                     else now - target_time, now - camera_time,
                                     scan=scan, scan_age=now - scan_time,
                                     segmentation=None if segmented_time is None
                                     else Segmentation(now - segmented_time, target_time,
                                                       segmented_time, target_time,
                                                       step=looked_for, alike=alike),
                                     odom=world.pose(), odom_age=0.0)
            status = output.status
            moved = moved or output.linear != 0.0 or output.angular != 0.0
            if status != statuses[-1]:
                if legs is not None and step_ended(statuses[-1], status):
                    legs.step_ended(world)
                statuses.append(status)
                perception.command_status(status)  # as the scene_segmenter hears it
            world.step(output.linear, output.angular, control_dt)
            before, pose = pose_now, world.pose()
            turned += motion(before, pose)[2]
            pose_now = pose
            path += math.hypot(pose.x - trajectory[-1][0], pose.y - trajectory[-1][1])
            trajectory.append((pose.x, pose.y))
            if world.collided_with is not None or is_final(status):
                timed_out = False
                break
        if legs is None:
            outcome, success, final, cause = score(world, scene, status, timed_out,
                                                   view_lies_on(world, scene, view), expected,
                                                   moved, path)
        else:
            outcome, success, final, cause, shortest = legs.score(
                world, status, timed_out, view_lies_on(world, legs.leg(), view), shortest)
        moved_m, turned_deg = motion(start, world.pose())[0], math.degrees(turned)
        if expected == 'motion':
            outcome, success, _ = motion_outcome(status, world.collided_with, timed_out,
                                                 asked, moved_m, turned_deg)
            cause = '' if success else 'control'
        return EpisodeResult(
            seed=scene.seed, command=command, mode=pipeline.mode, outcome=outcome,
            success=success,
            spl=0.0 if expected == 'motion' else spl(outcome, shortest, path),
            time_s=world.time, path_length_m=path, start_distance_m=start_distance,
            final_distance_m=final, collided_with=world.collided_with or '', status=status,
            perception_ms_p50=1e3 * float(np.median(latencies)) if latencies else 0.0,
            cause=cause, statuses=statuses, trajectory=trajectory, frames=frames,
            expected=expected, moved=moved, moved_m=moved_m, turned_deg=turned_deg,
            asked=tuple(asked or ()), world=scene.world, shortest_way_m=shortest,
            visible_from_start=visible)
    finally:
        world.close()
