"""Random arenas for the simulator, as a pure function of a seed.

A scene is 1–6 objects of five shapes and ten colours on a floor, one of them the target (no
other object has both its colour and its shape, so "the red ball" names exactly one thing),
with floor texture, lighting and the robot's start pose varied per seed.
"""

from dataclasses import dataclass
import math

import numpy as np

COLOURS = {
    'red': (0.85, 0.10, 0.10), 'green': (0.10, 0.65, 0.20), 'blue': (0.10, 0.25, 0.85),
    'yellow': (0.95, 0.85, 0.10), 'purple': (0.55, 0.20, 0.70), 'orange': (1.00, 0.50, 0.05),
    'white': (0.95, 0.95, 0.95), 'black': (0.08, 0.08, 0.08), 'cyan': (0.10, 0.80, 0.85),
    'pink': (1.00, 0.45, 0.70),
}
# The words a person uses; 'pyramid' is a textured mesh.
SHAPES = ('ball', 'cube', 'cylinder', 'capsule', 'pyramid')
ROBOT_RADIUS = 0.15


@dataclass(frozen=True)
class SceneObject:
    shape: str
    colour: str
    size: float  # radius or half-extent, m
    x: float
    y: float
    yaw: float

    @property
    def name(self) -> str:
        return f'{self.colour} {self.shape}'

    @property
    def rgb(self):
        return COLOURS[self.colour]


@dataclass(frozen=True)
class Scene:
    seed: int
    objects: tuple
    target_index: int
    arena_half: float  # the floor spans [-arena_half, arena_half]^2, walled
    floor_rgb: tuple  # two checker colours
    floor_squares: int
    light_direction: tuple
    light_diffuse: float
    robot_x: float
    robot_y: float
    robot_yaw: float

    @property
    def target(self) -> SceneObject:
        return self.objects[self.target_index]

    @property
    def command(self) -> str:
        return f'go to the {self.target.name}'


def _free_spot(rng, placed, radius, arena_half, clearance):
    for _ in range(500):
        x, y = rng.uniform(-arena_half + radius + 0.3, arena_half - radius - 0.3, size=2)
        if all(math.hypot(x - px, y - py) >= radius + pr + clearance for px, py, pr in placed):
            return float(x), float(y)
    return None


def _distance_to_segment(x, y, ax, ay, bx, by):
    dx, dy = bx - ax, by - ay
    t = max(0.0, min(1.0, ((x - ax) * dx + (y - ay) * dy) / max(dx * dx + dy * dy, 1e-12)))
    return math.hypot(x - (ax + t * dx), y - (ay + t * dy))


def generate_scene(seed: int, min_objects: int = 1, max_objects: int = 6,
                   arena_half: float = 3.0, min_start_distance: float = 1.5,
                   corridor_clearance: float = 0.35) -> Scene:
    """The scene of `seed`; the same seed always gives the same scene.

    Distractors keep `corridor_clearance` (beyond their size and the robot's radius) from the
    straight line between the robot's start and the target: the policy servos straight at
    the target and has no obstacle sensor, so a blocked line would test something it does
    not claim to do.
    """
    rng = np.random.default_rng(seed)
    count = int(rng.integers(min_objects, max_objects + 1))
    colours, shapes = list(COLOURS), list(SHAPES)
    target_colour, target_shape = str(rng.choice(colours)), str(rng.choice(shapes))
    target_size = float(rng.uniform(0.12, 0.25))
    target_spot = _free_spot(rng, [], target_size, arena_half, clearance=0.0)
    placed = [(*target_spot, target_size)]
    for _ in range(1000):
        start = _free_spot(rng, placed, ROBOT_RADIUS, arena_half, clearance=0.6)
        if start and math.hypot(start[0] - target_spot[0],
                                start[1] - target_spot[1]) >= min_start_distance:
            break
    else:
        raise RuntimeError(f'seed {seed}: no free start pose for the robot')
    objects = [SceneObject(target_shape, target_colour, target_size, *target_spot,
                           float(rng.uniform(0, 2 * math.pi)))]
    robot_keepout = [(*start, ROBOT_RADIUS + 0.3)]
    for _ in range(count - 1):
        while True:  # distractors never share both colour and shape with the target
            colour, shape = str(rng.choice(colours)), str(rng.choice(shapes))
            if (colour, shape) != (target_colour, target_shape):
                break
        size = float(rng.uniform(0.12, 0.25))
        for _ in range(200):
            spot = _free_spot(rng, placed + robot_keepout, size, arena_half, clearance=0.5)
            if spot is None:
                break
            if _distance_to_segment(*spot, *start, *target_spot) >= (
                    size + ROBOT_RADIUS + corridor_clearance):
                break
        else:
            spot = None
        if spot is None:
            continue
        placed.append((*spot, size))
        objects.append(SceneObject(shape, colour, size, *spot, float(rng.uniform(0, 2 * math.pi))))
    order = rng.permutation(len(objects))  # the target is not always object 0
    objects = [objects[i] for i in order]
    target_index = int(np.flatnonzero(order == 0)[0])
    robot_yaw = float(rng.uniform(-math.pi, math.pi))
    shade = rng.uniform(0.25, 0.75)
    floor = (tuple(np.clip(shade + rng.uniform(-0.08, 0.08, 3), 0, 1).round(3)),
             tuple(np.clip(shade * 0.7 + rng.uniform(-0.08, 0.08, 3), 0, 1).round(3)))
    elevation = rng.uniform(math.radians(35), math.radians(80))
    azimuth = rng.uniform(0, 2 * math.pi)
    light = (round(math.cos(elevation) * math.cos(azimuth), 3),
             round(math.cos(elevation) * math.sin(azimuth), 3), round(-math.sin(elevation), 3))
    return Scene(seed=seed, objects=tuple(objects), target_index=target_index,
                 arena_half=arena_half, floor_rgb=floor,
                 floor_squares=int(rng.integers(4, 16)), light_direction=light,
                 light_diffuse=float(round(rng.uniform(0.5, 0.9), 3)),
                 robot_x=start[0], robot_y=start[1], robot_yaw=robot_yaw)


def object_names() -> tuple:
    """Every colour x shape this world can hold: what a target here could be confused with."""
    return tuple(f'{colour} {shape}' for colour in COLOURS for shape in SHAPES)
