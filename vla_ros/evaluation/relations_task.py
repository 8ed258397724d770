"""`vla-ros eval --task relations`: which one of several alike ("go to the left red ball",
"the nearest cube", "the second red ball from the right", "the red ball next to the blue
cube"), through the deployed command path and the same control.

A scene puts 2 or 3 objects of one colour and shape in the robot's view from its start, and
for a relation to another thing that thing next to one of them; a few other objects stand
elsewhere. The template's relation, applied to the true geometry from the start pose, picks
the target; an episode succeeds when the robot arrives at that one (sim's scoring: arriving
at another is 'wrong object').

With `--commands` (test/data/ambiguous_commands.yaml) the same scenes get commands that do
not say which ("go to the red ball"): the robot must hold still and say so (`ambiguous: ...`),
never drive towards a guess.
"""

import math

import numpy as np

from vla_ros.evaluation.scoring import SUCCESS_DISTANCE_M
from vla_ros.sim.scene import (
    COLOURS,
    distance_to_segment,
    floor_and_light,
    other_kind,
    ROBOT_RADIUS,
    Scene,
    SceneObject,
    SHAPES,
)

# (template, relation kind, instances): {0} the objects' name, {1} the other thing's.
TEMPLATES = (
    ('go to the left {0}', 'left', 2),
    ('go to the {0} on the right', 'right', 2),
    ('go to the leftmost {0}', 'left', 3),
    ('drive to the rightmost {0}', 'right', 3),
    ('go to the second {0} from the left', 'second_left', 3),
    ('go to the nearest {0}', 'nearest', 2),
    ('go to the {0} closest to you', 'nearest', 3),
    ('go to the farthest {0}', 'farthest', 2),
    ('go to the biggest {0}', 'biggest', 2),
    ('go to the smallest {0}', 'smallest', 2),
    ('go to the {0} next to the {1}', 'next_to', 2),
    ('approach the {0} next to the {1}', 'next_to', 3),
)
SEED_STREAM = 37  # the relations' draws come from their own random stream of the seed
HALF_VIEW_RAD = math.radians(24.0)  # well inside the camera's half field of view (36.5°)
IN_VIEW_RAD = math.radians(30.0)  # the other thing of a relation, beside one of them
MIN_BEARING_GAP_RAD = math.radians(14.0)
ARENA_HALF = 3.0


def relations_scene(seed: int) -> tuple:
    """(scene, template, command) of `seed`: its alike objects in view, the target the one
    the template's relation picks.
    """
    rng = np.random.default_rng([SEED_STREAM, seed])
    for attempt in range(5000):
        if attempt % 500 == 0:  # a template some draws cannot lay out: draw another
            template, kind, count = TEMPLATES[int(rng.integers(len(TEMPLATES)))]
        drawn = _layout(rng, kind, count)
        if drawn is not None:
            break
    else:
        raise RuntimeError(f'seed {seed}: no layout for any template')
    objects, target, robot = drawn
    scene = Scene(seed=seed, objects=tuple(objects), target_index=target,
                  arena_half=ARENA_HALF, **floor_and_light(rng), robot_x=robot[0],
                  robot_y=robot[1], robot_yaw=robot[2])
    alike = objects[target].name
    other = next((thing.name for thing in objects if thing.name != alike), '')
    return scene, template, template.format(alike, other)


def _layout(rng, kind: str, count: int):
    colour, shape = str(rng.choice(list(COLOURS))), str(rng.choice(SHAPES))
    robot = (float(rng.uniform(-2.4, -1.8)), float(rng.uniform(-1.0, 1.0)),
             float(rng.uniform(-0.4, 0.4)))
    bearings = np.sort(rng.uniform(-HALF_VIEW_RAD, HALF_VIEW_RAD, count))
    if np.any(np.diff(bearings) < MIN_BEARING_GAP_RAD):
        return None
    ranges = rng.uniform(1.7, 3.4, count)
    sizes = rng.uniform(0.13, 0.2, count)
    if kind in ('nearest', 'farthest'):
        ranges = np.sort(rng.uniform(1.7, 3.6, count))
        if np.diff(ranges)[0 if kind == 'nearest' else -1] < 0.7:
            return None  # the one asked for clearly the nearest (farthest)
        ranges = rng.permutation(ranges)
    if kind in ('biggest', 'smallest'):
        ranges[:] = rng.uniform(2.2, 2.8)  # alike far: the bigger one looks bigger
        ranges += rng.uniform(-0.15, 0.15, count)
        sizes = rng.permutation(np.linspace(0.12, 0.24, count))
    things = []
    for bearing, distance, size in zip(bearings, ranges, sizes):
        heading = robot[2] + bearing
        things.append(SceneObject(shape, colour, float(size),
                                  robot[0] + float(distance) * math.cos(heading),
                                  robot[1] + float(distance) * math.sin(heading),
                                  float(rng.uniform(0, 2 * math.pi))))
    target = (int(rng.integers(count)) if kind == 'next_to'
              else _picked(kind, things, bearings, ranges))
    objects = list(things)
    if kind == 'next_to':
        # The other thing a little beside the target, further from every other instance.
        other_colour, other_shape = other_kind(rng, colour, shape)
        chosen = things[target]
        side = float(rng.choice([-1.0, 1.0]))
        heading = robot[2] + bearings[target] + side * math.pi / 2
        gap = chosen.size + 0.45
        anchor = SceneObject(other_shape, other_colour, 0.15, chosen.x + gap * math.cos(heading),
                             chosen.y + gap * math.sin(heading), 0.0)
        bearing = math.atan2(anchor.y - robot[1], anchor.x - robot[0]) - robot[2]
        if abs(bearing) > IN_VIEW_RAD:
            return None
        distances = [math.hypot(t.x - anchor.x, t.y - anchor.y) for t in things]
        if min(d for i, d in enumerate(distances) if i != target) < 2.0 * distances[target]:
            return None
        objects.append(anchor)
    for _ in range(int(rng.integers(1, 3))):  # others, out of the way
        other_colour, other_shape = other_kind(rng, colour, shape)
        if kind == 'next_to' and f'{other_colour} {other_shape}' == objects[count].name:
            return None  # the other thing must be the only one of its name
        spot = (float(rng.uniform(-2.6, 2.6)), float(rng.uniform(-2.6, 2.6)))
        objects.append(SceneObject(other_shape, other_colour, float(rng.uniform(0.12, 0.2)),
                                   *spot, 0.0))
    if not _clear(objects, robot, target):
        return None
    return objects, target, robot


def _picked(kind: str, things, bearings, ranges) -> int:
    """The index the relation picks, from the true geometry (left: the largest bearing)."""
    near_edge = [r - t.size for r, t in zip(ranges, things)]
    if kind == 'left':
        return int(np.argmax(bearings))
    if kind == 'right':
        return int(np.argmin(bearings))
    if kind == 'second_left':
        return int(np.argsort(-bearings)[1])
    if kind == 'nearest':
        return int(np.argmin(near_edge))
    if kind == 'farthest':
        return int(np.argmax(near_edge))
    if kind == 'biggest':
        return int(np.argmax([t.size for t in things]))
    if kind == 'smallest':
        return int(np.argmin([t.size for t in things]))
    raise ValueError(f'unknown relation {kind!r}')


def _clear(objects, robot, target) -> bool:
    """Inside the arena, apart, off the robot, and the straight way to the target free."""
    limit = ARENA_HALF - 0.35
    goal = objects[target]
    for index, thing in enumerate(objects):
        if abs(thing.x) > limit or abs(thing.y) > limit:
            return False
        if math.hypot(thing.x - robot[0], thing.y - robot[1]) < thing.size + ROBOT_RADIUS + 0.8:
            return False
        for other in objects[index + 1:]:
            # Things alike further apart than the success distance: arriving at one is never
            # arriving at another.
            gap = SUCCESS_DISTANCE_M + 0.1 if other.name == thing.name else 0.25
            if math.hypot(thing.x - other.x, thing.y - other.y) < thing.size + other.size + gap:
                return False
        if index != target and distance_to_segment(thing.x, thing.y, *robot[:2], goal.x,
                                                   goal.y) < (
                thing.size + ROBOT_RADIUS + 0.2):
            return False
    return True
