"""One "go to the <colour> <shape>" episode in the simulator, run in lockstep.

The same core classes the nodes wrap (policy, safety layer, segmenter, encoders) run here
without transport, one control period at a time, so that episodes are reproducible and faster
than real time. Two perception modes:
  oracle  the target from the simulator's segmentation buffer, and the go_to intent given:
          isolates control from perception;
  real    the command through the CLIP text encoder and intent matching, the target from
          CLIPSeg on the rendered camera image: the pipeline as deployed.
"""

from dataclasses import dataclass, field
from functools import partial
import math
import time

import numpy as np

from vla_ros.core.policy import ActionPolicy, DEFAULT_INTENTS, ServoConfig, TargetView
from vla_ros.core.safety import SafetyLayer, SafetyLimits
from vla_ros.core.scene import Scene
from vla_ros.core.segmentation import find_target, pixel_at
from vla_ros.core.sim_world import SimWorld
from vla_ros.core.text import object_phrase

SUCCESS_DISTANCE_M = 0.5  # robot rim to object within this, stopped, nothing touched first
CONTROL_HZ = 20
CAMERA_HZ = 10
GO_TO = next(intent for intent in DEFAULT_INTENTS if intent.behaviour == 'go_to')


@dataclass
class EpisodeResult:
    seed: int
    command: str
    mode: str
    outcome: str  # success | collision | wrong object | stopped short | not found | timeout |
    #               intent (the command was not understood as go_to)
    success: bool
    spl: float
    time_s: float
    path_length_m: float
    start_distance_m: float
    final_distance_m: float
    collided_with: str
    status: str
    perception_ms_p50: float
    cause: str = ''  # a failure's cause, see failure_cause()
    trajectory: list = field(default_factory=list, repr=False)
    frames: list = field(default_factory=list, repr=False)

    def summary(self) -> dict:
        return {key: value for key, value in vars(self).items()
                if key not in ('trajectory', 'frames')}


class OraclePerception:
    """Ground truth: the target's pixels from the segmentation buffer."""

    mode = 'oracle'

    def instruct(self, policy: ActionPolicy, scene: Scene, now: float) -> str:
        return policy.follow(GO_TO, scene.target.name, now)

    def see(self, world: SimWorld, scene: Scene):
        mask = world.object_mask(scene.target_index).astype(np.float32)
        return find_target(mask, 0.5), None


class RealPerception:
    """The deployed pipeline's models: CLIP text for the intent, CLIPSeg for the target (with
    a `fovea`, also on the view's middle at twice the resolution) and, with a `verifier`, the
    camera CLIP's word on each region before it can be the target.
    """

    mode = 'real'

    def __init__(self, clip_encoder, segmenter, classifier, mask_threshold: float = 0.5,
                 verifier=None, fovea=None):
        self.encoder, self.segmenter = clip_encoder, segmenter
        self.classifier, self.mask_threshold = classifier, mask_threshold
        self.verifier, self.fovea = verifier, fovea
        self.previous = None

    def instruct(self, policy: ActionPolicy, scene: Scene, now: float) -> str:
        embedding = self.encoder.encode_texts([scene.command])[0]
        phrase = object_phrase(scene.command)
        self.segmenter.set_prompts([phrase])
        if self.verifier is not None:
            self.verifier.set_prompt(phrase)
        self.previous = None
        return policy.set_instruction(embedding, phrase, now)

    def see(self, world: SimWorld, scene: Scene):
        rgb = world.render()
        probabilities = self.segmenter.probabilities(rgb, self.fovea)
        accept = None if self.verifier is None else partial(self.verifier.accept, rgb)
        self.previous = find_target(probabilities[0], self.mask_threshold, self.previous, accept)
        return self.previous, rgb


def classify_outcome(world: SimWorld, scene: Scene, status: str, timed_out: bool):
    """(outcome, final gap to the target in m) of an episode that ended with `status`."""
    distances = [world.distance_to(i) for i in range(len(scene.objects))]
    final = distances[scene.target_index]
    if world.collided_with is not None:
        return 'collision', final
    if status == 'arrived':
        if final <= SUCCESS_DISTANCE_M:
            return 'success', final
        nearest = int(np.argmin(distances))
        if nearest != scene.target_index and distances[nearest] <= SUCCESS_DISTANCE_M:
            return 'wrong object', final
        return 'stopped short', final
    if status == 'not found':
        return 'not found', final
    if status.startswith('stopped') or status.startswith('done'):
        return 'intent', final
    return ('timeout' if timed_out else 'stopped short'), final


CAUSES = ('perception: miss', 'perception: false detection', 'perception: wrong object',
          'control', 'language', 'timeout')


def failure_cause(outcome: str, last_view_on: str) -> str:
    """Which part failed, from the outcome and what the last target view lay on: 'target',
    'other' (anything else: another object, a wall, the floor) or 'none' (nothing seen).
    """
    if outcome == 'success':
        return ''
    if outcome == 'wrong object':
        return 'perception: wrong object'
    if outcome == 'intent':
        return 'language'
    if outcome in ('collision', 'not found', 'stopped short', 'timeout'):
        if last_view_on == 'other':
            return 'perception: false detection'
        if outcome == 'collision':
            return 'control'
        if last_view_on == 'none' or outcome == 'not found':
            return 'perception: miss'  # nothing seen, or never seen steadily enough
        return 'timeout' if outcome == 'timeout' else 'control'
    raise ValueError(f"unknown outcome '{outcome}'")


def _view_lies_on(world: SimWorld, scene: Scene, view: TargetView | None) -> str:
    """'target', 'other' or 'none': what is at the view's centroid in the current image."""
    if view is None or not view.visible:
        return 'none'
    labels = world.label_image()
    on = labels[pixel_at(view.x, view.y, *labels.shape)]
    return 'target' if on == scene.target_index + 1 else 'other'


def run_episode(scene: Scene, perception, servo_config: ServoConfig = None,
                limits: SafetyLimits = None, max_time_s: float = 60.0, width: int = 160,
                height: int = 120, record_every: int = 0) -> EpisodeResult:
    """Drive one episode; `record_every` > 0 keeps every n-th camera frame (for GIFs)."""
    world = SimWorld(scene, width, height)
    try:
        # The oracle gives the intent, so it has no classifier.
        policy = ActionPolicy(getattr(perception, 'classifier', None),
                              servo_config or ServoConfig())
        safety = SafetyLayer(limits or SafetyLimits(), 1.0 / CONTROL_HZ)
        start = world.pose()
        start_distance = world.distance_to(scene.target_index)
        status = perception.instruct(policy, scene, 0.0)
        trajectory, frames, latencies = [(start.x, start.y)], [], []
        view, steps_per_frame = None, CONTROL_HZ // CAMERA_HZ
        path, step, timed_out = 0.0, 0, True
        while world.time < max_time_s:
            if step % steps_per_frame == 0:
                started = time.perf_counter()
                target, rgb = perception.see(world, scene)
                latencies.append(time.perf_counter() - started)
                view = TargetView(target.x, target.y, target.confidence, target.area,
                                  bottom=target.bottom)
                if record_every and (step // steps_per_frame) % record_every == 0:
                    frames.append((rgb if rgb is not None else world.render(), target))
            output = policy.step(world.time, view)
            command = safety.filter(output.linear, output.angular)
            status = output.status
            world.step(command.linear, command.angular, 1.0 / CONTROL_HZ)
            pose = world.pose()
            path += math.hypot(pose.x - trajectory[-1][0], pose.y - trajectory[-1][1])
            trajectory.append((pose.x, pose.y))
            step += 1
            if world.collided_with is not None or status in ('arrived', 'not found') or (
                    output.linear == 0 and output.angular == 0 and (
                        status.startswith('stopped') or status.startswith('done'))):
                timed_out = False
                break
        outcome, final = classify_outcome(world, scene, status, timed_out)
        cause = failure_cause(outcome, _view_lies_on(world, scene, view))
        shortest = max(start_distance - SUCCESS_DISTANCE_M, 0.0)
        success = outcome == 'success'
        spl = float(success) * shortest / max(path, shortest, 1e-9) if success else 0.0
        return EpisodeResult(
            seed=scene.seed, command=scene.command, mode=perception.mode, outcome=outcome,
            success=success, spl=spl, time_s=world.time, path_length_m=path,
            start_distance_m=start_distance, final_distance_m=final,
            collided_with=world.collided_with or '', status=status,
            perception_ms_p50=1e3 * float(np.median(latencies)) if latencies else 0.0,
            cause=cause, trajectory=trajectory, frames=frames)
    finally:
        world.close()
