"""`vla-ros eval --task sequence`: commands of several steps ("go to the red ball, then the
blue cube", "go to the red ball and come back") in the arena's scenes, through the deployed
command path (the grammar's steps, each step's text encoding and intent) and the same
control.

A scene of the arena (its usual one for the seed, with enough objects) gets 1 to 3 objects
to reach in order, each named by a colour and shape no other object there has, and maybe the
start to come back to. An episode succeeds when every step that goes to a thing ended where
the evaluator's `arrived` would count (sim's scoring: near it, nothing touched), in the order
asked, and the last step arrived (or came back within the success distance of the start).
"""

from dataclasses import replace
import math

import numpy as np

from vla_ros.core.control import BACK_M
from vla_ros.core.status import is_waiting, own, split_step
from vla_ros.evaluation.scoring import classify_outcome, failure_cause, SUCCESS_DISTANCE_M
from vla_ros.sim.scene import generate_scene, ROBOT_RADIUS, Scene
from vla_ros.sim.world import SimWorld

# {0}, {1}, {2}: the objects in order; a template's number of them is its number of legs.
TEMPLATES = (
    'go to the {0}, then the {1}',
    'go to the {0} and then to the {1}',
    'drive to the {0}, then go to the {1}',
    'go to the {0}, wait 2 seconds, then go to the {1}',
    'first go to the {0}. After that, go to the {1}',
    'go to the {0}, then the {1}, then the {2}',
    'go to the {0}, then to the {1} and then to the {2}',
    'approach the {0}, then the {1} and finally the {2}',
    'go to the {0} and come back',
    'drive to the {0}, then the {1}, then come back here',
)
HOME = -1  # in a scene's sequence: the robot's start, to come back to
SEED_STREAM = 31  # the sequence's draws come from their own random stream of the seed
SEQUENCE_S = 120.0  # an episode's time limit: twice the arena's for one thing
MAX_OBJECTS = 6  # generate_scene's default


def sequence_scene(seed: int, clutter: int = 0) -> tuple:
    """(scene with its `sequence` of objects to reach, template, command) of `seed`, with
    `clutter` obstacles (sim.scene.generate_scene): the seed's arena scene with enough
    objects; with more where too few have names of their own.
    """
    rng = np.random.default_rng([SEED_STREAM, seed])
    template = str(rng.choice(TEMPLATES))
    legs = template.count('{')
    back = (HOME,) if 'come back' in template else ()
    for least in range(legs + 1, MAX_OBJECTS + 1):
        scene = generate_scene(seed, min_objects=least, max_objects=max(least, MAX_OBJECTS),
                               clutter=clutter)
        names = [thing.name for thing in scene.objects]
        unique = [index for index, name in enumerate(names) if names.count(name) == 1
                  and index != scene.target_index]
        if len(unique) >= legs - 1:
            break
    else:
        raise ValueError(f'seed {seed}: too few objects with names of their own')
    order = (scene.target_index, *(int(index) for index in rng.choice(
        unique, size=legs - 1, replace=False)))
    scene = replace(scene, sequence=order + back)
    return scene, template, template.format(*(names[index] for index in order))


def shortest_legs(scene: Scene, first_leg_m: float) -> float:
    """A lower bound of the way (m) through every leg, for SPL: the first leg's shortest way,
    then from within the success distance of one object to within it of the next.
    """
    total = first_leg_m
    for before, after in zip(scene.sequence, scene.sequence[1:]):
        a = scene.objects[before]
        if after == HOME:
            gap = math.hypot(a.x - scene.robot_x, a.y - scene.robot_y)
            total += max(gap - a.size - ROBOT_RADIUS - SUCCESS_DISTANCE_M - BACK_M, 0.0)
            continue
        b = scene.objects[after]
        reach = a.size + b.size + 2 * (ROBOT_RADIUS + SUCCESS_DISTANCE_M)
        total += max(math.hypot(a.x - b.x, a.y - b.y) - reach, 0.0)
    return total


def step_ended(previous: str, status: str) -> bool:
    """Whether a change of status from `previous` ended a step that went to a thing (the next
    step began; not after a wait).
    """
    before, after = split_step(previous)[0], split_step(status)[0]
    return (before is not None and after is not None and after > before
            and not is_waiting(previous))


class LegScore:
    """The legs an episode reached, scored as each step ends: `step_ended` when a step that
    went to a thing ended as done (its status `arrived`), `score` at the episode's end.
    """

    def __init__(self, scene: Scene):
        self.scene, self.outcomes = scene, []

    def step_ended(self, world: SimWorld) -> None:
        if len(self.outcomes) < len(self.things):
            self.outcomes.append(classify_outcome(world, self.leg(), 'arrived', False)[0])
        else:
            self.outcomes.append('wrong object')  # more legs than asked

    @property
    def things(self) -> tuple:
        """The objects to reach, in order (the sequence less a coming back)."""
        return tuple(index for index in self.scene.sequence if index != HOME)

    def leg(self) -> Scene:
        """The scene as its current leg sees it: the leg's thing is the target (coming back:
        the last thing's).
        """
        index = min(len(self.outcomes), len(self.things) - 1)
        return replace(self.scene, target_index=self.things[index])

    def score(self, world: SimWorld, status: str, timed_out: bool, last_view_on: str,
              first_leg_m: float) -> tuple:
        """(outcome, success, final gap to the leg's thing in m, failure cause, SPL's
        shortest way) of the episode that ended with `status`, its last target lying on
        `last_view_on` (scoring.view_lies_on of leg()): 'success' when every leg did.
        """
        outcome, final = classify_outcome(world, self.leg(), status, timed_out)
        coming_back = self.scene.sequence[-1] == HOME and len(self.outcomes) == len(
            self.things)
        if coming_back and outcome != 'collision':
            pose = world.pose()
            final = math.hypot(pose.x - self.scene.robot_x, pose.y - self.scene.robot_y)
            came = own(status).startswith('done: came back') and final <= SUCCESS_DISTANCE_M
            outcome = 'success' if came else 'timeout' if timed_out else 'stopped short'
        missed = next((outcome for outcome in self.outcomes if outcome != 'success'), None)
        if missed is not None:
            outcome = missed
        elif outcome == 'success' and not coming_back and (
                len(self.outcomes) < len(self.things) - 1):
            outcome = 'stopped short'  # arrived with legs left: steps were lost
        elif outcome == 'success' and self.scene.sequence[-1] == HOME and not coming_back:
            outcome = 'stopped short'  # arrived, never came back
        return (outcome, outcome == 'success', final, failure_cause(outcome, last_view_on),
                shortest_legs(self.scene, first_leg_m))
