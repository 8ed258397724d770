"""What an episode is measured against besides contacts and distances: the shortest way to
the target round walls (SPL in rooms), and whether the target could be seen from the start
at all (a search that turns on the spot can find only those).
"""

import math

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import dijkstra

from vla_ros.core.policy import ServoConfig
from vla_ros.evaluation.scoring import SUCCESS_DISTANCE_M
from vla_ros.sim.scene import behind_tall, blocked_cells, floor_grid, ROBOT_RADIUS, Scene
from vla_ros.sim.world import SimWorld

GRID_CELL = 0.05
# Ways on the grid step to the 8 neighbours: (row, column) offsets and lengths in cells.
STEPS = ((1, 0, 1.0), (0, 1, 1.0), (1, 1, math.sqrt(2.0)), (1, -1, math.sqrt(2.0)))


def shortest_way(scene: Scene, start_distance: float) -> float:
    """The shortest way (m) from the start to arriving, for SPL: in an open arena the straight
    gap (`start_distance`, the robot's rim to the target) less the success distance; in rooms
    round the walls (geodesic_distance).
    """
    if scene.world == 'rooms':
        return geodesic_distance(scene)
    return max(start_distance - SUCCESS_DISTANCE_M, 0.0)


def geodesic_distance(scene: Scene, cell: float = GRID_CELL) -> float:
    """The length (m) of the shortest way for the robot's centre from its start to where its
    rim is within SUCCESS_DISTANCE_M of the target, round the walls, the furniture and the
    other objects: Dijkstra on a grid of `cell`, the path then pulled straight wherever the
    floor between two of its points is free (inf: no way).
    """
    blocked = blocked_cells(scene, scene.obstacles, cell, margin=0.0)
    x, y = floor_grid(scene, cell)
    target = scene.target
    reach = target.size + ROBOT_RADIUS + SUCCESS_DISTANCE_M
    start = np.array([scene.robot_x, scene.robot_y])
    if math.hypot(start[0] - target.x, start[1] - target.y) <= reach:
        return 0.0
    goal = (np.hypot(x - target.x, y - target.y) <= reach) & ~blocked
    near = np.flatnonzero(goal.ravel())  # not through a wall: the target must be in the room
    goal.ravel()[near[behind_tall(scene, (target.x, target.y), np.column_stack(
        (x.ravel()[near], y.ravel()[near])))]] = False
    half, count = scene.arena_half, len(blocked)
    first = np.ravel_multi_index((min(int((start[0] + half) / cell), count - 1),
                                  min(int((start[1] + half) / cell), count - 1)),
                                 blocked.shape)
    graph = _grid_graph(~blocked, cell)
    distances, previous = dijkstra(graph, directed=False, indices=first,
                                   return_predecessors=True)
    goal_cells = np.flatnonzero(goal.ravel())
    if not goal_cells.size or not np.isfinite(distances[goal_cells]).any():
        return math.inf
    cell_index = int(goal_cells[np.argmin(distances[goal_cells])])
    path = []
    while cell_index >= 0:
        path.append(cell_index)
        cell_index = int(previous[cell_index])
    points = np.column_stack((x.ravel()[path[::-1]], y.ravel()[path[::-1]]))
    points[0] = start
    return _pulled_length(points, blocked, scene, cell, np.array([target.x, target.y]), reach)


def _grid_graph(free: np.ndarray, cell: float):
    """The free cells' 8-neighbour graph (a diagonal step needs both cells beside it free)."""
    rows, columns = free.shape
    index = np.arange(free.size).reshape(free.shape)
    sources, targets, lengths = [], [], []
    for di, dj, length in STEPS:
        a = (slice(0, rows - di), slice(max(-dj, 0), columns - max(dj, 0)))
        b = (slice(di, rows), slice(max(dj, 0), columns - max(-dj, 0)))
        ok = free[a] & free[b]
        if di and dj:  # no corner cutting
            ok &= free[(slice(0, rows - di), b[1])] & free[(b[0], a[1])]
        sources.append(index[a][ok])
        targets.append(index[b][ok])
        lengths.append(np.full(int(ok.sum()), length * cell))
    return coo_matrix((np.concatenate(lengths), (np.concatenate(sources),
                                                  np.concatenate(targets))),
                      shape=(free.size, free.size)).tocsr()


def _clear(blocked, scene, cell, a, b) -> np.ndarray:
    """Whether the segment from `a` to each of `b` (n x 2) crosses only free cells."""
    b = np.atleast_2d(b)
    steps = max(int(np.max(np.linalg.norm(b - a, axis=1)) / (cell / 3)), 2)
    t = np.linspace(0.0, 1.0, steps)[None, :, None]
    samples = a + (b - a)[:, None, :] * t
    cells = np.clip(((samples + scene.arena_half) / cell).astype(int), 0, len(blocked) - 1)
    return ~blocked[cells[..., 0], cells[..., 1]].any(axis=1)


def _pulled_length(points, blocked, scene, cell, target, reach) -> float:
    """The path's length with each corner cut to the farthest point of it seen free, and its
    last leg straight at the target where the floor allows.
    """
    anchor, length = 0, 0.0
    while True:
        here = points[anchor]
        gap = float(np.linalg.norm(target - here))
        if gap <= reach:
            return length
        arrival = here + (target - here) * (1.0 - reach / gap)
        if _clear(blocked, scene, cell, here, arrival)[0] and not behind_tall(
                scene, target, arrival)[0]:
            return length + gap - reach
        if anchor == len(points) - 1:
            return length
        visible = np.flatnonzero(_clear(blocked, scene, cell, here, points[anchor + 1:]))
        step = anchor + 1 + (int(visible[-1]) if visible.size else 0)
        length += float(np.linalg.norm(points[step] - here))
        anchor = step


def target_visible_from_start(scene: Scene, world: SimWorld = None, headings: int = 8,
                              min_area: float = ServoConfig.min_target_area) -> bool:
    """Whether the camera, turned on the spot at the start to `headings` headings, sees at
    least `min_area` of its image on the target (the policy's smallest target). `world`: the
    episode's, before it starts, in the thread that renders it (it is put back at the start
    pose); None: a world of its own at the evaluator's camera size.
    """
    own = world is None
    world = SimWorld(scene) if own else world
    try:
        for heading in range(headings):
            world.place_robot(scene.robot_x, scene.robot_y,
                              scene.robot_yaw + 2 * math.pi * heading / headings)
            if world.object_mask(scene.target_index).mean() >= min_area:
                return True
        return False
    finally:
        if own:
            world.close()
        else:
            world.place_robot(scene.robot_x, scene.robot_y, scene.robot_yaw)
