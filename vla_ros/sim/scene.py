"""Random arenas for the simulator, as a pure function of a seed.

A scene is 1–6 objects of five shapes and ten colours on a floor, one of them the target (no
other object has both its colour and its shape, so "the red ball" names exactly one thing),
with floor texture, lighting and the robot's start pose varied per seed. A cluttered scene
adds plain boxes and wall segments, most of them across the straight way to the target.
"""

from dataclasses import dataclass, replace
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
# Obstacles are things nobody names: cardboard and grey plastic. They are low (the laser at
# 0.1 m sees them, the camera sees over them): a target hidden behind a high one would need
# exploring, which the policy does not do.
OBSTACLE_COLOURS = ((0.55, 0.42, 0.28), (0.45, 0.45, 0.48), (0.30, 0.28, 0.26))
# The walls round an open arena are low, those of a house (sim/rooms.py) hide what is behind.
WALL_HEIGHT = {'arena': 0.3, 'rooms': 1.0}


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
class Obstacle:
    kind: str  # box | wall
    x: float
    y: float
    yaw: float
    half_length: float
    half_width: float
    height: float
    rgb: tuple

    @property
    def radius(self) -> float:
        """Of the circle about it that holds its footprint."""
        return math.hypot(self.half_length, self.half_width)


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
    obstacles: tuple = ()
    world: str = 'arena'  # arena (generate_scene) | rooms (sim/rooms.py)
    sequence: tuple = ()  # a command of several steps: the objects to reach in order

    @property
    def wall_height(self) -> float:
        """Of the walls round the floor."""
        return WALL_HEIGHT[self.world]

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


def distance_to_segment(x, y, ax, ay, bx, by):
    dx, dy = bx - ax, by - ay
    t = max(0.0, min(1.0, ((x - ax) * dx + (y - ay) * dy) / max(dx * dx + dy * dy, 1e-12)))
    return math.hypot(x - (ax + t * dx), y - (ay + t * dy))


def generate_scene(seed: int, min_objects: int = 1, max_objects: int = 6,
                   arena_half: float = 3.0, min_start_distance: float = 1.5,
                   corridor_clearance: float = 0.35, clutter: int = 0) -> Scene:
    """The scene of `seed`; the same seed always gives the same scene.

    Distractors keep `corridor_clearance` (beyond their size and the robot's radius) from the
    straight line between the robot's start and the target, so that a plain scene tests
    perception and control. `clutter` adds that many obstacles (core.collision_monitor and
    core.avoidance deal with them), placed by their own random stream: the rest of the scene
    is the seed's usual one.
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
        colour, shape = other_kind(rng, target_colour, target_shape)
        size = float(rng.uniform(0.12, 0.25))
        for _ in range(200):
            spot = _free_spot(rng, placed + robot_keepout, size, arena_half, clearance=0.5)
            if spot is None:
                break
            if distance_to_segment(*spot, *start, *target_spot) >= (
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
    scene = Scene(seed=seed, objects=tuple(objects), target_index=target_index,
                  arena_half=arena_half, **floor_and_light(rng),
                  robot_x=start[0], robot_y=start[1], robot_yaw=robot_yaw)
    if clutter:
        scene = replace(scene, obstacles=place_obstacles(scene, clutter))
    return scene


def other_kind(rng, target_colour: str, target_shape: str) -> tuple:
    """(colour, shape) of a distractor: never both the target's."""
    colours, shapes = list(COLOURS), list(SHAPES)
    while True:
        colour, shape = str(rng.choice(colours)), str(rng.choice(shapes))
        if (colour, shape) != (target_colour, target_shape):
            return colour, shape


def floor_and_light(rng) -> dict:
    """The Scene fields of the floor's checker and the light, drawn."""
    shade = rng.uniform(0.25, 0.75)
    floor = (tuple(np.clip(shade + rng.uniform(-0.08, 0.08, 3), 0, 1).round(3)),
             tuple(np.clip(shade * 0.7 + rng.uniform(-0.08, 0.08, 3), 0, 1).round(3)))
    elevation = rng.uniform(math.radians(35), math.radians(80))
    azimuth = rng.uniform(0, 2 * math.pi)
    light = (round(math.cos(elevation) * math.cos(azimuth), 3),
             round(math.cos(elevation) * math.sin(azimuth), 3), round(-math.sin(elevation), 3))
    return {'floor_rgb': floor, 'floor_squares': int(rng.integers(4, 16)),
            'light_direction': light, 'light_diffuse': float(round(rng.uniform(0.5, 0.9), 3))}


def _obstacle(rng, kind, x, y, across):
    rgb = OBSTACLE_COLOURS[int(rng.integers(len(OBSTACLE_COLOURS)))]
    if kind == 'wall':  # mostly across the way, so that it must be walked round
        return Obstacle('wall', x, y, across + float(rng.uniform(-0.5, 0.5)),
                        float(rng.uniform(0.25, 0.5)), 0.03, float(rng.uniform(0.12, 0.2)), rgb)
    half = float(rng.uniform(0.08, 0.18))
    return Obstacle('box', x, y, float(rng.uniform(0, math.pi)), half,
                    half * float(rng.uniform(0.6, 1.0)), float(rng.uniform(0.12, 0.2)), rgb)


def place_obstacles(scene: Scene, count: int, attempts: int = 200) -> tuple:
    """`count` boxes and walls: two of three across the straight way from the robot to the
    target, the rest around it; never on the robot, the target or an object, and always with
    a way round them (checked on a grid, see has_way).
    """
    rng = np.random.default_rng([scene.seed, count])
    target = scene.target
    start = np.array([scene.robot_x, scene.robot_y])
    goal = np.array([target.x, target.y])
    way = goal - start
    length = float(np.linalg.norm(way))
    along, side = way / length, np.array([-way[1], way[0]]) / length
    across = math.atan2(side[1], side[0])
    taken = [(o.x, o.y, o.size) for o in scene.objects]
    for _ in range(attempts):
        obstacles = []
        for index in range(count):
            for _ in range(100):
                kind = 'wall' if rng.random() < 0.35 else 'box'
                if index % 3 < 2:  # on the way
                    spot = start + along * length * rng.uniform(0.25, 0.8) + side * rng.uniform(
                        -0.3, 0.3)
                else:
                    spot = start + along * length * rng.uniform(-0.2, 1.1) + side * rng.uniform(
                        -1.2, 1.2)
                item = _obstacle(rng, kind, float(spot[0]), float(spot[1]), across)
                if abs(item.x) > scene.arena_half - item.radius - 0.1 or \
                        abs(item.y) > scene.arena_half - item.radius - 0.1:
                    continue
                if math.hypot(item.x - start[0], item.y - start[1]) < \
                        ROBOT_RADIUS + item.radius + 0.15:
                    continue
                if math.hypot(item.x - goal[0], item.y - goal[1]) < \
                        target.size + item.radius + 0.45:
                    continue  # room to arrive
                if any(math.hypot(item.x - x, item.y - y) < item.radius + r + 0.1
                       for x, y, r in taken + [(o.x, o.y, o.radius) for o in obstacles]):
                    continue
                obstacles.append(item)
                break
        if len(obstacles) == count and has_way(scene, obstacles):
            return tuple(obstacles)
    raise RuntimeError(f'seed {scene.seed}: no way past {count} obstacles in {attempts} tries')


def floor_grid(scene: Scene, cell: float):
    """(x, y) of the centres of a grid of `cell` over the floor, indexed [i, j] = (x, y)."""
    half = scene.arena_half
    count = int(2 * half / cell)
    centres = -half + cell * (np.arange(count) + 0.5)
    return np.meshgrid(centres, centres, indexing='ij')


def blocked_cells(scene: Scene, obstacles, cell: float, margin: float) -> np.ndarray:
    """Cells of floor_grid where the robot's centre cannot be (ROBOT_RADIUS + margin from
    the walls, the objects but the target, and the obstacles).
    """
    half = scene.arena_half
    x, y = floor_grid(scene, cell)
    blocked = (np.abs(x) > half - ROBOT_RADIUS - margin) | (np.abs(y) > half - ROBOT_RADIUS
                                                           - margin)
    reach = ROBOT_RADIUS + margin
    for item in scene.objects:
        if item is not scene.target:
            blocked |= np.hypot(x - item.x, y - item.y) < item.size + reach
    for item in obstacles:
        c, s = math.cos(item.yaw), math.sin(item.yaw)
        u, v = (x - item.x) * c + (y - item.y) * s, -(x - item.x) * s + (y - item.y) * c
        du, dv = np.maximum(np.abs(u) - item.half_length, 0), np.maximum(
            np.abs(v) - item.half_width, 0)
        blocked |= np.hypot(du, dv) < reach
    return blocked


def has_way(scene: Scene, obstacles, cell: float = 0.05, margin: float = 0.08) -> bool:
    """Whether the robot (ROBOT_RADIUS + margin) can reach the target's side on a grid of
    `cell` over the arena, around the objects and the obstacles.
    """
    half = scene.arena_half
    blocked = blocked_cells(scene, obstacles, cell, margin)
    count = len(blocked)
    x, y = floor_grid(scene, cell)
    reach = ROBOT_RADIUS + margin
    target = scene.target
    goal = np.hypot(x - target.x, y - target.y) < target.size + reach + 0.3
    goal &= ~blocked
    start = (int((scene.robot_x + half) / cell), int((scene.robot_y + half) / cell))
    seen = np.zeros_like(blocked)
    frontier = [start]
    seen[start] = True
    while frontier:
        i, j = frontier.pop()
        if goal[i, j]:
            return True
        for di, dj in ((1, 0), (-1, 0), (0, 1), (0, -1)):
            a, b = i + di, j + dj
            if 0 <= a < count and 0 <= b < count and not seen[a, b] and not blocked[a, b]:
                seen[a, b] = True
                frontier.append((a, b))
    return False


def object_names() -> tuple:
    """Every colour x shape this world can hold: what a target here could be confused with."""
    return tuple(f'{colour} {shape}' for colour in COLOURS for shape in SHAPES)


TALL_M = 0.5  # an obstacle this high hides what is behind it from the robot and its camera


def behind_tall(scene: Scene, a, points) -> np.ndarray:
    """For each of `points` (n x 2), whether the straight segment from `a` crosses a tall
    obstacle (a wall between rooms, tall furniture): there, the two are in different rooms,
    however near.
    """
    points = np.atleast_2d(np.asarray(points, np.float64))
    tall = [item for item in scene.obstacles if item.height >= TALL_M]
    crossed = np.zeros(len(points), bool)
    if not tall or not len(points):
        return crossed
    a = np.asarray(a, np.float64)
    steps = max(int(np.max(np.linalg.norm(points - a, axis=1)) / 0.01), 2)
    samples = a + (points - a)[:, None, :] * np.linspace(0.0, 1.0, steps)[None, :, None]
    for item in tall:
        c, s = math.cos(item.yaw), math.sin(item.yaw)
        dx, dy = samples[..., 0] - item.x, samples[..., 1] - item.y
        inside = (np.abs(dx * c + dy * s) <= item.half_length) & (
            np.abs(-dx * s + dy * c) <= item.half_width)
        crossed |= inside.any(axis=1)
    return crossed
