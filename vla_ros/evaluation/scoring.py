"""How an episode is scored, whatever carried it (lockstep or DDS): its outcome, whether it
succeeded, why it failed and its SPL.
"""

from dataclasses import dataclass, field
import math

import numpy as np

from vla_ros.core.policy import TargetView
from vla_ros.core.segmentation import pixel_at
from vla_ros.core.status import (
    AMBIGUOUS,
    ARRIVED,
    BLOCKED,
    is_not_found,
    is_refusal,
    is_stale,
    is_stopped,
    own,
)
from vla_ros.sim.scene import behind_tall, Scene
from vla_ros.sim.world import SimWorld

SUCCESS_DISTANCE_M = 0.5  # robot rim to object within this, stopped, nothing touched first


@dataclass
class EpisodeResult:
    seed: int
    command: str
    mode: str
    outcome: str  # success | collision | wrong object | stopped short | not found | timeout |
    #               intent (the command was not understood as go_to) | input lost | blocked |
    #               stale input (held for want of fresh targets when time ran out)
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
    transport: str = 'lockstep'
    statuses: list = field(default_factory=list)  # each change of status, in order
    target_gap_max_s: float = 0.0  # dds: longest wait between targets after the first
    expected: str = 'go_to'  # go_to, or not_understood: a command that must not move it
    moved: bool = False  # any non-zero velocity was commanded
    moved_m: float = 0.0  # along the start heading (< 0: backwards)
    turned_deg: float = 0.0  # counter-clockwise, unwrapped
    asked: tuple = ()  # a measured motion's (distance | angle, signed m or degrees)
    template: str = ''  # the command as drawn from a --commands file ({object} unfilled)
    world: str = 'arena'  # the scene's: arena | rooms
    shortest_way_m: float = 0.0  # from the start to arriving, SPL's measure (ground_truth)
    visible_from_start: bool | None = None  # rooms: could turning on the spot see the target
    trajectory: list = field(default_factory=list, repr=False)
    frames: list = field(default_factory=list, repr=False)

    def summary(self) -> dict:
        return {key: value for key, value in vars(self).items()
                if key not in ('trajectory', 'frames')}




def classify_outcome(world: SimWorld, scene: Scene, status: str, timed_out: bool):
    """(outcome, final gap to the target in m) of an episode that ended with `status` (the
    last step's, for a command of several).
    """
    status = own(status)
    distances = [world.distance_to(i) for i in range(len(scene.objects))]
    final = distances[scene.target_index]
    if world.collided_with is not None:
        return 'collision', final
    if status == ARRIVED:
        pose = world.pose()
        if _faces_another_alike(scene, pose, distances):
            return 'wrong object', final
        # Near, and in the same room: not on the far side of a wall from it.
        if final <= SUCCESS_DISTANCE_M and not behind_tall(
                scene, (pose.x, pose.y), (scene.target.x, scene.target.y))[0]:
            return 'success', final
        nearest = int(np.argmin(distances))
        if nearest != scene.target_index and distances[nearest] <= SUCCESS_DISTANCE_M:
            return 'wrong object', final
        return 'stopped short', final
    if is_not_found(status):  # after the turn, or after exploring
        return 'not found', final
    if status.startswith(AMBIGUOUS):  # it saw several that fit alike, and asked which
        return 'ambiguous', final
    if status == 'stopped: input lost':
        return 'input lost', final
    if status == BLOCKED:
        return 'blocked', final
    if is_stale(status):
        return 'stale input', final
    # The tasks are go_to: a stop, a refusal, a motion or a look_for ('found the X') came
    # from how the command was heard.
    if is_stopped(status) or is_refusal(status) or status.startswith(('done: ', 'found ')):
        return 'intent', final
    return ('timeout' if timed_out else 'stopped short'), final


def _faces_another_alike(scene: Scene, pose, distances) -> bool:
    """Whether the robot, stopped within the success distance of the target and another
    thing of its name, arrived at that other: the servo stops facing what it went to, so of
    those it is the one nearest the robot's heading.
    """
    def off_heading(index):
        thing = scene.objects[index]
        bearing = math.atan2(thing.y - pose.y, thing.x - pose.x) - pose.yaw
        return abs(math.atan2(math.sin(bearing), math.cos(bearing)))
    near = [index for index, distance in enumerate(distances)
            if distance <= SUCCESS_DISTANCE_M and scene.objects[index].name == scene.target.name]
    return len(near) > 1 and min(near, key=off_heading) != scene.target_index


CAUSES = ('perception: miss', 'perception: false detection', 'perception: wrong object',
          'perception: ambiguity',
          'perception: too slow', 'control', 'language', 'transport', 'timeout', 'blocked')


def failure_cause(outcome: str, last_view_on: str) -> str:
    """Which part failed, from the outcome and what the last target view lay on: 'target',
    'other' (anything else: another object, a wall, the floor) or 'none' (nothing seen).
    """
    if outcome == 'success':
        return ''
    if outcome == 'wrong object':
        return 'perception: wrong object'
    if outcome == 'ambiguous':
        return 'perception: ambiguity'
    if outcome == 'intent':
        return 'language'
    if outcome == 'input lost':
        return 'transport'  # the watchdog gave up: inputs stopped arriving
    if outcome == 'stale input':
        return 'perception: too slow'  # targets (or their segmentations) came too seldom
    if outcome == 'blocked':
        return 'blocked'  # no way round the obstacles was found
    if outcome in ('collision', 'not found', 'stopped short', 'timeout'):
        if last_view_on == 'other':
            return 'perception: false detection'
        if outcome == 'collision':
            return 'control'
        if last_view_on == 'none' or outcome == 'not found':
            return 'perception: miss'  # nothing seen, or never seen steadily enough
        return 'timeout' if outcome == 'timeout' else 'control'
    raise ValueError(f"unknown outcome '{outcome}'")


def view_lies_on(world: SimWorld, scene: Scene, view: TargetView | None) -> str:
    """'target', 'other' or 'none': what is at the view's centroid in the current image."""
    if view is None or not view.visible:
        return 'none'
    labels = world.label_image()
    on = labels[pixel_at(view.x, view.y, *labels.shape)]
    return 'target' if on == scene.target_index + 1 else 'other'


GUESS_M = 0.1  # a command that does not say which, having driven this far, went for one


def ambiguity_outcome(status: str, path_m: float, collided) -> str:
    """A command that does not say which of several alike: 'said ambiguous' (held still and
    asked), 'guessed' (drove towards one, arrived, or found one) or 'held' (still, saying
    another thing).
    """
    if collided:
        return 'collision'
    if own(status) == ARRIVED or own(status).startswith('found ') or path_m >= GUESS_M:
        return 'guessed'
    return 'said ambiguous' if own(status).startswith(AMBIGUOUS) else 'held'


def refusal_outcome(status: str, moved: bool) -> str:
    """A command that must not move the robot: 'refused' (it said so), 'moved' (a false
    accept) or 'held' (still, but it said something else, e.g. a stop).
    """
    if moved:
        return 'moved'
    return 'refused' if is_refusal(status) else 'held'




def spl(outcome: str, shortest: float, path: float) -> float:
    """Success weighted by path length: the shortest way (ground_truth.shortest_way) over the
    way taken, 0 on failure.
    """
    if outcome != 'success':
        return 0.0
    return shortest / max(path, shortest, 1e-9)


def score(world: SimWorld, scene: Scene, status: str, timed_out: bool, last_view_on: str,
          expected: str = 'go_to', moved: bool = False, path_m: float = 0.0) -> tuple:
    """(outcome, success, final gap to the target in m, failure cause) of an episode that
    ended with `status`, its last target lying on `last_view_on` (view_lies_on). A command
    that must not move the robot (`expected` 'not_understood') succeeds when refused; one
    that does not say which of several alike (`expected` 'ambiguous', having driven
    `path_m`) when the robot held still and asked.
    """
    outcome, final = classify_outcome(world, scene, status, timed_out)
    cause = failure_cause(outcome, last_view_on)
    if expected == 'not_understood':
        outcome = refusal_outcome(status, moved)
        cause = '' if outcome == 'refused' else 'language'
    if expected == 'ambiguous':
        outcome = ambiguity_outcome(status, path_m, world.collided_with)
        cause = '' if outcome == 'said ambiguous' else 'perception: ambiguity'
    return outcome, outcome in ('success', 'refused', 'said ambiguous'), final, cause
