"""Houses for the simulator: a walled floor split into rooms by walls with doorways, with
furniture, as a pure function of a seed.

The robot starts in one room and, in most seeds, the target stands in another: turning on
the spot does not find it, it has to be looked for. Walls and tall furniture are Obstacles
taller than anything the camera could look over, so they hide what is behind them from the
camera as they do from the laser. Objects and the target's uniqueness are as in the arena
(scene.generate_scene); a rooms seed draws from streams of its own, so it shares nothing with
the arena of the same seed.
"""

from dataclasses import dataclass
import math

import numpy as np
from scipy import ndimage

from vla_ros.sim.scene import (
    blocked_cells,
    COLOURS,
    floor_and_light,
    floor_grid,
    generate_scene,
    has_way,
    Obstacle,
    OBSTACLE_COLOURS,
    other_kind,
    ROBOT_RADIUS,
    Scene,
    SceneObject,
    SHAPES,
    WALL_HEIGHT,
)

WORLDS = ('arena', 'rooms')
WALL_HALF_WIDTH = 0.05
WALL_RGB = (0.6, 0.6, 0.65)  # as the walls round the floor
DOORWAY_WIDTH = (0.8, 1.0)
# Kept free round a doorway (beyond its half width) of furniture, objects and the ends of
# later walls, so that the robot can line up with it.
DOORWAY_KEEPOUT = 0.6
FURNITURE_COLOURS = OBSTACLE_COLOURS + ((0.62, 0.47, 0.32), (0.36, 0.40, 0.46))
OTHER_ROOM_SHARE = 0.85  # of seeds whose target is drawn into a room other than the start's
GRID_CELL, GRID_MARGIN = 0.05, 0.08  # the reachability check's, as has_way's


@dataclass(frozen=True)
class Doorway:
    x: float
    y: float
    along_x: bool  # the wall it is in runs along x
    width: float


@dataclass(frozen=True)
class Layout:
    """The rooms of a seed: rectangles (x0, y0, x1, y1) between the walls' centre lines, the
    interior walls (Obstacles, in pieces either side of their doorway) and the doorways.
    """

    arena_half: float
    rooms: tuple
    walls: tuple
    doorways: tuple

    def room_of(self, x: float, y: float) -> int:
        """Index of the room holding (x, y); -1 on no room (outside, or in a wall's line)."""
        for index, (x0, y0, x1, y1) in enumerate(self.rooms):
            if x0 < x < x1 and y0 < y < y1:
                return index
        return -1


def rooms_layout(seed: int) -> Layout:
    """2-4 rooms: the largest room is split across its longer side, again and again, by a
    wall with one doorway; the rooms are therefore always connected.
    """
    rng = np.random.default_rng([seed, 1])
    half = round(float(rng.uniform(3.8, 4.2)), 2)
    rooms, walls, doorways = [(-half, -half, half, half)], [], []
    for _ in range(int(rng.integers(1, 4))):
        index = max(range(len(rooms)), key=lambda i: _area(rooms[i]))
        halves, pieces, doorway = _split(rng, rooms[index], doorways)
        rooms[index:index + 1] = halves
        walls += pieces
        doorways.append(doorway)
    return Layout(half, tuple(rooms), tuple(walls), tuple(doorways))


def _area(room) -> float:
    return (room[2] - room[0]) * (room[3] - room[1])


def _split(rng, room, doorways):
    """(the two halves, the wall's pieces, its doorway) of a wall across `room`'s longer
    side, near the middle, whose ends stay clear of the doorways of the walls they meet.
    """
    x0, y0, x1, y1 = room
    across_x = x1 - x0 >= y1 - y0  # the wall runs along y, at x = c
    (u0, u1), (v0, v1) = ((x0, x1), (y0, y1)) if across_x else ((y0, y1), (x0, x1))

    def point(u, v):
        return (u, v) if across_x else (v, u)

    for attempt in range(100):
        spread = 0.1 + 0.2 * attempt / 100  # off the middle where a doorway is in the way
        c = round(float(u0 + (u1 - u0) * rng.uniform(0.5 - spread, 0.5 + spread)), 2)
        if not any(_ends_in(door, point, across_x, c, v0, v1) for door in doorways):
            break
    else:
        raise RuntimeError(f'no room for a wall across {room}')
    width = round(float(rng.uniform(*DOORWAY_WIDTH)), 2)
    margin = 0.5 + width / 2  # the doorway stays off the corners
    d = round(float(rng.uniform(v0 + margin, v1 - margin)), 2)
    pieces = []
    for a, b in ((v0, d - width / 2), (d + width / 2, v1)):
        pieces.append(Obstacle('wall', *point(c, (a + b) / 2), math.pi / 2 if across_x else 0.0,
                               (b - a) / 2, WALL_HALF_WIDTH, WALL_HEIGHT['rooms'], WALL_RGB))
    halves = ([(x0, y0, c, y1), (c, y0, x1, y1)] if across_x
              else [(x0, y0, x1, c), (x0, c, x1, y1)])
    return halves, pieces, Doorway(*point(c, d), not across_x, width)


def _ends_in(door, point, across_x, c, v0, v1) -> bool:
    """Whether a wall at u = c from v0 to v1 would end in (or next to) `door`, which is in
    one of the walls it meets.
    """
    u, v = point(door.x, door.y)
    in_an_end_wall = door.along_x == across_x and min(abs(v - v0), abs(v - v1)) < 1e-6
    return in_an_end_wall and abs(u - c) < door.width / 2 + DOORWAY_KEEPOUT


def gap_to(item: Obstacle, x: float, y: float) -> float:
    """From (x, y) to the obstacle's footprint (0 inside it)."""
    c, s = math.cos(item.yaw), math.sin(item.yaw)
    u, v = (x - item.x) * c + (y - item.y) * s, -(x - item.x) * s + (y - item.y) * c
    return math.hypot(max(abs(u) - item.half_length, 0.0), max(abs(v) - item.half_width, 0.0))


def _clear_of_doorways(layout: Layout, x: float, y: float, radius: float) -> bool:
    return all(math.hypot(x - door.x, y - door.y) >= door.width / 2 + DOORWAY_KEEPOUT + radius
               for door in layout.doorways)


def _furniture(rng, layout: Layout) -> list:
    """0-2 pieces a room: tall ones (shelves, wardrobes) against a wall, low ones (tables,
    benches) anywhere; none in front of a doorway.
    """
    placed = []
    for x0, y0, x1, y1 in layout.rooms:
        for _ in range(int(rng.integers(0, 3))):
            rgb = FURNITURE_COLOURS[int(rng.integers(len(FURNITURE_COLOURS)))]
            tall = rng.random() < 0.5
            for _ in range(50):
                if tall:
                    item = _against_a_wall(rng, (x0, y0, x1, y1), rgb)
                else:
                    half_length = float(rng.uniform(0.25, 0.5))
                    item = Obstacle('box', 0.0, 0.0, float(rng.uniform(0, math.pi)),
                                    half_length, half_length * float(rng.uniform(0.5, 0.9)),
                                    float(rng.uniform(0.15, 0.3)), rgb)
                    inset = WALL_HALF_WIDTH + item.radius + 0.05
                    if x1 - x0 <= 2 * inset or y1 - y0 <= 2 * inset:
                        continue
                    item = Obstacle('box', float(rng.uniform(x0 + inset, x1 - inset)),
                                    float(rng.uniform(y0 + inset, y1 - inset)), item.yaw,
                                    item.half_length, item.half_width, item.height, rgb)
                if item is None:
                    continue
                near_doorway = any(
                    gap_to(item, door.x, door.y) < door.width / 2 + DOORWAY_KEEPOUT
                    for door in layout.doorways)
                crowded = any(math.hypot(item.x - other.x, item.y - other.y)
                              < item.radius + other.radius + 0.1 for other in placed)
                if not near_doorway and not crowded:
                    placed.append(item)
                    break
    return placed


def _against_a_wall(rng, room, rgb):
    """A tall piece along one side of the room, its back to the wall (None: no room)."""
    x0, y0, x1, y1 = room
    half_length, half_width = float(rng.uniform(0.3, 0.6)), float(rng.uniform(0.15, 0.25))
    height = float(rng.uniform(0.9, 1.6))
    side = int(rng.integers(4))
    off = WALL_HALF_WIDTH + half_width + 0.01
    along_x = side < 2
    low, high = (x0, x1) if along_x else (y0, y1)
    if high - low <= 2 * (half_length + 0.1):
        return None
    t = float(rng.uniform(low + half_length + 0.1, high - half_length - 0.1))
    if along_x:
        x, y, yaw = t, (y0 + off if side == 0 else y1 - off), 0.0
    else:
        x, y, yaw = (x0 + off if side == 2 else x1 - off), t, math.pi / 2
    return Obstacle('box', x, y, yaw, half_length, half_width, height, rgb)


def _spot(rng, room, radius, wall_gap, layout, furniture, taken, clearance):
    """A free (x, y) for a thing of `radius` in `room`, or None."""
    x0, y0, x1, y1 = room
    inset = WALL_HALF_WIDTH + radius + wall_gap
    for _ in range(200):
        x = float(rng.uniform(x0 + inset, x1 - inset))
        y = float(rng.uniform(y0 + inset, y1 - inset))
        if not _clear_of_doorways(layout, x, y, radius):
            continue
        if any(gap_to(item, x, y) < radius + clearance for item in furniture):
            continue
        if all(math.hypot(x - px, y - py) >= radius + pr + clearance for px, py, pr in taken):
            return x, y
    return None


def _contents(rng, seed: int, layout: Layout, min_start_distance: float = 1.5):
    """The scene's furniture, objects and start drawn into `layout`; None where they did not
    fit.
    """
    furniture = _furniture(rng, layout)
    count = int(rng.integers(1, 7))
    target_colour, target_shape = str(rng.choice(list(COLOURS))), str(rng.choice(list(SHAPES)))
    target_size = float(rng.uniform(0.12, 0.25))
    rooms = layout.rooms
    start_room = int(rng.integers(len(rooms)))
    target_room = start_room
    if rng.random() < OTHER_ROOM_SHARE:
        target_room = int(rng.choice([i for i in range(len(rooms)) if i != start_room]))
    target_spot = _spot(rng, rooms[target_room], target_size, 0.3, layout, furniture, [], 0.3)
    if target_spot is None:
        return None
    placed = [(*target_spot, target_size)]
    for _ in range(50):
        start = _spot(rng, rooms[start_room], ROBOT_RADIUS, 0.3, layout, furniture, placed,
                      0.6)
        if start and (start_room != target_room or math.hypot(
                start[0] - target_spot[0], start[1] - target_spot[1]) >= min_start_distance):
            break
    else:
        return None
    objects = [SceneObject(target_shape, target_colour, target_size, *target_spot,
                           float(rng.uniform(0, 2 * math.pi)))]
    robot_keepout = [(*start, ROBOT_RADIUS + 0.3)]
    for _ in range(count - 1):
        colour, shape = other_kind(rng, target_colour, target_shape)
        size = float(rng.uniform(0.12, 0.25))
        room = rooms[int(rng.integers(len(rooms)))]
        spot = _spot(rng, room, size, 0.3, layout, furniture, placed + robot_keepout, 0.5)
        if spot is None:
            continue
        placed.append((*spot, size))
        objects.append(SceneObject(shape, colour, size, *spot, float(rng.uniform(0, 2 * math.pi))))
    order = rng.permutation(len(objects))  # the target is not always object 0
    return Scene(seed=seed, objects=tuple(objects[i] for i in order),
                 target_index=int(np.flatnonzero(order == 0)[0]),
                 arena_half=layout.arena_half, **floor_and_light(rng),
                 robot_x=start[0], robot_y=start[1],
                 robot_yaw=float(rng.uniform(-math.pi, math.pi)),
                 obstacles=layout.walls + tuple(furniture), world='rooms')


def every_room_reachable(scene: Scene, layout: Layout) -> bool:
    """Whether the robot can get from its start into every room (through every doorway),
    on has_way's grid, round the furniture and the objects.
    """
    free = ~blocked_cells(scene, scene.obstacles, GRID_CELL, GRID_MARGIN)
    labels, _ = ndimage.label(free)
    x, y = floor_grid(scene, GRID_CELL)
    half = scene.arena_half
    start = labels[int((scene.robot_x + half) / GRID_CELL),
                   int((scene.robot_y + half) / GRID_CELL)]
    if start == 0:
        return False
    reached = labels == start
    return all(reached[(x > x0) & (x < x1) & (y > y0) & (y < y1)].any()
               for x0, y0, x1, y1 in layout.rooms)


def generate_rooms_scene(seed: int, attempts: int = 100) -> Scene:
    """The rooms scene of `seed`; the same seed always gives the same scene. Contents that
    leave the target or a room out of reach are drawn again (from the next stream).
    """
    layout = rooms_layout(seed)
    for attempt in range(attempts):
        scene = _contents(np.random.default_rng([seed, 2, attempt]), seed, layout)
        if scene is not None and has_way(scene, scene.obstacles) and every_room_reachable(
                scene, layout):
            return scene
    raise RuntimeError(f'seed {seed}: no rooms scene with everything in reach in {attempts} '
                       'tries')


# Simulated seconds an episode gets by default: a house needs exploring, the arena a turn.
EPISODE_S = {'arena': 60.0, 'rooms': 300.0}  # rooms: exploring's 240 s and the turns


def build_scene(world: str, seed: int, clutter: int = 0) -> Scene:
    """The scene of `seed` in `world` (WORLDS): what eval, demo and sim_bridge run."""
    if world == 'arena':
        return generate_scene(seed, clutter=clutter)
    if world == 'rooms':
        if clutter:
            raise ValueError('clutter (boxes across the straight way in the open arena) does '
                             'not go with rooms: they have walls and furniture of their own')
        return generate_rooms_scene(seed)
    raise ValueError(f"unknown world '{world}': one of {', '.join(WORLDS)}")
