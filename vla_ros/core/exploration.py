"""Exploration, for when the thing asked for is nowhere in view: frontiers between the free
floor and the unknown on the occupancy grid (core.mapping), ranked by the length of the path
to them and by how well the camera's views towards them matched the command (a value map,
after VLFM), and a path there on the grid, followed by pure pursuit. A memory of where each
thing was last confirmed sends the robot back there first. The safety layer and the collision
monitor still filter every command it gives (core.control).
"""

from dataclasses import dataclass, field
import math

import numpy as np
from scipy import ndimage
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import dijkstra

from vla_ros.core.collision_monitor import Scan
from vla_ros.core.mapping import GridConfig, OccupancyGrid, shift
from vla_ros.core.odometry import Pose2D
from vla_ros.core.status import EXPLORING

NEIGHBOURS = ((0, 1), (1, 0), (1, 1), (1, -1))  # each edge of an 8-connected grid once
WALL_COST = 2.0  # a step next to a wall costs up to this much more: paths keep to the middle
VIEW_RAYS = 24  # rays a camera view is painted along
NO_PREDECESSOR = -9999  # scipy's mark for a cell with no predecessor
START_SEARCH_M = 0.5  # a robot too near a wall to plan from starts at a free cell this near
PLACE_REACH_M = 1.0  # a remembered place is driven to within this (the thing stands there)
UNSEEN_MIN_M2 = 0.5  # floor the laser mapped but the camera never saw: a goal from this much
PLACE_SEEN_M = 0.8  # ... and looked around for once this near
MAX_VIEW_TILES = 8  # crops a view may come in (each one costs the policy a painting)



def view_tiles(rgb: np.ndarray, count: int) -> list:
    """`count` square crops side by side across the frame's middle rows, left to right (the
    value map's views): a far thing is a speck in the whole frame at the CLIP's input size,
    and each crop looks one way (tile_bearings).
    """
    height, width = rgb.shape[:2]
    side = min(width // count, height)
    top = (height - side) // 2
    edges = np.linspace(0, width, count + 1).round().astype(int)
    return [rgb[top:top + side, left:right] for left, right in zip(edges[:-1], edges[1:])]


def tile_bearings(count: int, hfov_rad: float) -> tuple:
    """(bearing of each crop's middle, angle each spans) in rad, left positive, of
    view_tiles' crops, for a pinhole camera of horizontal field `hfov_rad` (the middle ones
    span more than those at the sides).
    """
    edges = np.linspace(-1.0, 1.0, count + 1) * math.tan(hfov_rad / 2.0)
    angles = -np.arctan(edges)  # image x to the right: a bearing to the right
    middles = -np.arctan((edges[:-1] + edges[1:]) / 2.0)
    return middles, angles[:-1] - angles[1:]

@dataclass(frozen=True)
class ExplorationConfig:
    enabled: bool = True
    margin_m: float = 0.1  # paths keep the footprint this far from occupied cells
    min_frontier_m: float = 0.3  # a shorter frontier is a gap between beams, not a way on
    speed_mps: float = 0.3
    turn_rps: float = 0.6
    lookahead_m: float = 0.4
    turn_in_place_rad: float = 0.8  # a path point further round than this: turn on the spot
    reached_m: float = 0.35
    replan_s: float = 1.0
    goal_timeout_s: float = 25.0  # a frontier not reached in this long is given up
    max_time_s: float = 240.0  # exploring for one command stops after this long,
    max_distance_m: float = 60.0  # or this far driven (odometry drifts with distance)
    value_weight: float = 0.5  # 0: the nearest frontier first; 1: the best-matching view first
    view_range_m: float = 3.0  # how far a view counts for the value map

    def __post_init__(self):
        if not 0.0 <= self.value_weight <= 1.0:
            raise ValueError('exploration: value_weight must be in [0, 1]')
        if not self.margin_m >= 0.0:
            raise ValueError('exploration: margin_m must be >= 0')
        for name in ('speed_mps', 'turn_rps', 'lookahead_m', 'reached_m',
                     'max_time_s', 'max_distance_m', 'view_range_m'):
            if not getattr(self, name) > 0.0:
                raise ValueError(f'exploration: {name} must be > 0')


@dataclass(frozen=True)
class Frontier:
    goal: tuple  # (row, column) of the reachable cell the robot drives to
    distance_m: float  # along the path
    size_m: float
    value: float  # the value map's mean along it (nan: no view there yet)


def traversable(grid: OccupancyGrid, clearance_m: float) -> tuple:
    """(cells the robot's centre may cross: known free, clear of occupied cells by
    `clearance_m`; the distance of every cell to the nearest occupied one, m).
    """
    clearance = ndimage.distance_transform_edt(~grid.occupied()) * grid.config.resolution_m
    return grid.free() & (clearance > clearance_m), clearance


def path_distances(passable: np.ndarray, clearance: np.ndarray, start: tuple,
                   resolution: float, clearance_m: float) -> tuple:
    """(distance in m from `start` to every cell over `passable` ones, inf where none; the
    predecessor of each cell on its shortest path, flat indices, -9999 where none). Only the
    box round the passable cells is searched: the cost grows with the floor known, not with
    the grid.
    """
    distances = np.full(passable.shape, np.inf)
    predecessors = np.full(passable.size, NO_PREDECESSOR, np.int64)
    rows, columns = np.flatnonzero(passable.any(axis=1)), np.flatnonzero(passable.any(axis=0))
    if not passable[start]:
        return distances, predecessors
    box = (slice(rows[0], rows[-1] + 1), slice(columns[0], columns[-1] + 1))
    near, before = _path_distances(passable[box], clearance[box],
                                   (start[0] - rows[0], start[1] - columns[0]), resolution,
                                   clearance_m)
    distances[box] = near
    width = box[1].stop - box[1].start
    found = np.flatnonzero(before >= 0)
    inner = np.flatnonzero(np.ones(near.shape, bool).reshape(-1))
    full = ((inner // width + rows[0]) * passable.shape[1] + inner % width + columns[0])
    predecessors[full[found]] = full[before[found]]
    return distances, predecessors


def _path_distances(passable: np.ndarray, clearance: np.ndarray, start: tuple,
                    resolution: float, clearance_m: float) -> tuple:
    index = np.arange(passable.size).reshape(passable.shape)
    sources, targets, weights = [], [], []
    # A step near a wall costs more, so that paths keep to the middle of a doorway.
    penalty = 1.0 + WALL_COST * np.clip(1.0 - (clearance - clearance_m) / clearance_m, 0, 1)
    for dr, dc in NEIGHBOURS:
        here, there = _pairs(passable.shape, dr, dc)
        both = passable[here] & passable[there]
        ia, ib = index[here][both], index[there][both]
        cost = resolution * math.hypot(dr, dc) * 0.5 * (penalty.reshape(-1)[ia]
                                                         + penalty.reshape(-1)[ib])
        sources += [ia, ib]
        targets += [ib, ia]
        weights += [cost, cost]
    graph = coo_matrix((np.concatenate(weights), (np.concatenate(sources),
                                                  np.concatenate(targets))),
                       shape=(passable.size, passable.size)).tocsr()
    distances, predecessors = dijkstra(graph, indices=int(index[start]),
                                       return_predecessors=True)
    return distances.reshape(passable.shape), predecessors


def _pairs(shape: tuple, dr: int, dc: int) -> tuple:
    """Slices of a grid of `shape` whose cells pair each cell with its neighbour (dr, dc)."""
    rows, columns = shape
    here = (slice(0, rows - dr), slice(max(0, -dc), columns - max(0, dc)))
    there = (slice(dr, rows), slice(max(0, dc), columns + min(0, dc)))
    return here, there


def path_to(predecessors: np.ndarray, shape: tuple, goal: tuple) -> list:
    """[(row, column), ...] from the start to `goal` on the shortest path."""
    flat = int(np.ravel_multi_index(goal, shape))
    path = [flat]
    while predecessors[flat] >= 0:
        flat = int(predecessors[flat])
        path.append(flat)
    return [tuple(int(v) for v in np.unravel_index(cell, shape)) for cell in reversed(path)]


def find_frontiers(grid: OccupancyGrid, distances: np.ndarray, min_size_m: float,
                   reach_m: float, values: np.ndarray | None = None) -> list:
    """The frontiers the robot can reach: runs of free cells next to unknown ones, each with
    the reachable cell within `reach_m` of it nearest its middle as the goal.
    """
    free, unknown = grid.free(), grid.unknown()
    beside_unknown = ndimage.binary_dilation(unknown, structure=ndimage.generate_binary_structure(
        2, 1))
    resolution = grid.config.resolution_m
    reach = max(1, int(round(reach_m / resolution)))
    reachable = np.isfinite(distances)
    frontiers = []
    for cells in _regions(free & beside_unknown):
        if len(cells) * resolution < min_size_m:
            continue
        middle = cells.mean(axis=0)
        top, left = np.maximum(cells.min(axis=0) - reach, 0)
        bottom, right = np.minimum(cells.max(axis=0) + reach + 1, grid.cells)
        near = np.zeros((bottom - top, right - left), bool)
        near[cells[:, 0] - top, cells[:, 1] - left] = True
        near = ndimage.binary_dilation(near, iterations=reach) & reachable[top:bottom,
                                                                          left:right]
        if not near.any():
            continue
        candidates = np.argwhere(near) + [top, left]
        goal = tuple(int(v) for v in candidates[np.argmin(
            np.hypot(*(candidates - middle).T))])
        value = math.nan
        if values is not None:
            seen = values[cells[:, 0], cells[:, 1]]
            seen = seen[np.isfinite(seen)]
            value = float(seen.mean()) if seen.size else math.nan
        frontiers.append(Frontier(goal, float(distances[goal]), len(cells) * resolution, value))
    return frontiers


def _regions(mask: np.ndarray):
    """The (row, column) cells of each 8-connected region of `mask`, region by region."""
    labels, _ = ndimage.label(mask, structure=np.ones((3, 3)))
    for label, window in enumerate(ndimage.find_objects(labels), start=1):
        if window is not None:
            yield np.argwhere(labels[window] == label) + [window[0].start, window[1].start]


def unseen_floor(grid: OccupancyGrid, covered: np.ndarray, distances: np.ndarray,
                 min_area_m2: float) -> list:
    """Floor the laser has mapped but the camera has not looked at (the laser sees a room
    through its doorway; the camera must look in): each patch of at least `min_area_m2`, as a
    Frontier whose goal is its reachable cell nearest its middle.
    """
    resolution = grid.config.resolution_m
    reachable = np.isfinite(distances)
    goals = []
    for cells in _regions(grid.free() & ~covered):
        if len(cells) * resolution ** 2 < min_area_m2:
            continue
        inside = cells[reachable[cells[:, 0], cells[:, 1]]]
        if not len(inside):
            continue
        goal = tuple(int(v) for v in inside[np.argmin(np.hypot(*(inside - cells.mean(
            axis=0)).T))])
        goals.append(Frontier(goal, float(distances[goal]), len(cells) * resolution ** 2,
                              math.nan))
    return goals


def rank(frontiers: list, value_weight: float) -> list:
    """Cheapest first: the path's length, made shorter (by up to `value_weight` of itself)
    the better the views towards the frontier matched the command.
    """
    values = np.array([f.value for f in frontiers], np.float64)
    known = np.isfinite(values)
    relative = np.full(len(frontiers), 0.5)
    if known.sum() >= 2 and np.ptp(values[known]) > 0.0:
        low, span = values[known].min(), np.ptp(values[known])
        relative[known] = (values[known] - low) / span
    costs = [f.distance_m * (1.0 - value_weight * r) for f, r in zip(frontiers, relative)]
    return [frontiers[i] for i in np.argsort(costs, kind='stable')]


def pursue(path_xy: np.ndarray, pose: Pose2D, config: ExplorationConfig) -> tuple:
    """(linear, angular) towards the path's point `lookahead_m` ahead of its nearest point to
    the robot (pure pursuit); a point behind or to the side is turned to on the spot.
    """
    offsets = path_xy - (pose.x, pose.y)
    nearest = int(np.argmin(np.hypot(*offsets.T)))
    ahead = np.cumsum(np.r_[0.0, np.hypot(*np.diff(path_xy[nearest:], axis=0).T)])
    index = nearest + int(np.searchsorted(ahead, config.lookahead_m))
    x, y = path_xy[min(index, len(path_xy) - 1)] - (pose.x, pose.y)
    forward = math.cos(pose.yaw) * x + math.sin(pose.yaw) * y
    left = -math.sin(pose.yaw) * x + math.cos(pose.yaw) * y
    bearing = math.atan2(left, forward)
    if abs(bearing) > config.turn_in_place_rad:
        return 0.0, math.copysign(config.turn_rps, bearing)
    distance = max(math.hypot(forward, left), 1e-6)
    linear = config.speed_mps * math.cos(bearing)
    angular = 2.0 * linear * left / distance ** 2  # the arc through the point
    return linear, float(np.clip(angular, -config.turn_rps, config.turn_rps))


class ValueMap:
    """Per cell, how well the views that saw it matched the command (the cosine of the
    camera's image embedding and the command's text embedding), and how sure that is: a view
    counts most along the camera's axis, less towards the edges of its field (VLFM's
    confidence, cos² of the angle off the axis scaled to the half field).
    """

    def __init__(self, shape: tuple):
        self.value = np.full(shape, np.nan, np.float32)
        self.confidence = np.zeros(shape, np.float32)
        self.covered = np.zeros(shape, bool)  # looked at by the camera, matched or not

    def shifted(self, offset: tuple) -> 'ValueMap':
        """The same map on a grid shifted by `offset` cells (OccupancyGrid.shifted)."""
        moved = ValueMap(self.value.shape)
        for old, new in ((self.value, moved.value), (self.confidence, moved.confidence),
                         (self.covered, moved.covered)):
            shift(old, new, offset)
        return moved

    def cover(self, grid: OccupancyGrid, pose: Pose2D, hfov_rad: float,
              range_m: float) -> None:
        """The floor in the camera's view now has been looked at."""
        rows, columns, _ = self._in_view(grid, pose, hfov_rad, range_m)
        self.covered[rows, columns] = True

    def _in_view(self, grid: OccupancyGrid, pose: Pose2D, hfov_rad: float, range_m: float):
        """(rows, columns, weight) of the cells in the camera's view up to a wall, each once,
        weighted by how near the camera's axis it lies.
        """
        resolution = grid.config.resolution_m
        offsets = np.linspace(-hfov_rad / 2.0, hfov_rad / 2.0, VIEW_RAYS)
        steps = np.arange(resolution, range_m, resolution / 2.0)
        angles = pose.yaw + offsets
        xs = pose.x + np.cos(angles)[:, None] * steps
        ys = pose.y + np.sin(angles)[:, None] * steps
        rows, columns = grid.cell_of(xs, ys)
        inside = grid.inside(rows, columns)
        occupied = grid.occupied_now()
        blocked = np.zeros_like(inside)
        blocked[inside] = occupied[rows[inside], columns[inside]]
        seen = inside & (np.cumsum(blocked, axis=1) == 0)  # up to a wall, not beyond
        weight = np.broadcast_to((np.cos(offsets / (hfov_rad / 2.0) * math.pi / 2.0) ** 2)
                                 [:, None], seen.shape)
        flat = rows[seen] * grid.cells + columns[seen]
        flat, first = np.unique(flat, return_index=True)
        return flat // grid.cells, flat % grid.cells, weight[seen][first].astype(np.float32)

    def add_view(self, grid: OccupancyGrid, pose: Pose2D, similarity: float, hfov_rad: float,
                 range_m: float) -> None:
        rows, columns, confidence = self._in_view(grid, pose, hfov_rad, range_m)
        flat = rows * grid.cells + columns
        value, sure = self.value.reshape(-1), self.confidence.reshape(-1)
        old, old_sure = np.nan_to_num(value[flat]), sure[flat]
        total = old_sure + confidence
        keep = total > 0.0
        flat, old, old_sure, confidence, total = (a[keep] for a in (flat, old, old_sure,
                                                                    confidence, total))
        value[flat] = (old * old_sure + similarity * confidence) / total
        sure[flat] = (old_sure ** 2 + confidence ** 2) / total


@dataclass(frozen=True)
class ExploreStep:
    linear: float
    angular: float
    status: str
    reached: bool = False  # at a frontier: look around there before going on
    done: str = ''  # a final status: nothing left to explore, or out of time or distance


@dataclass(frozen=True)
class Sighting:
    """Where a thing asked for was last confirmed, in the odom frame."""

    thing: str
    x: float
    y: float
    seen_at: float  # the policy's clock
    confidence: float


class Sightings:
    """The last confirmed place of each thing asked for (by the words of its command)."""

    def __init__(self):
        self._by_thing = {}

    def record(self, sighting: Sighting) -> None:
        self._by_thing[sighting.thing] = sighting

    def recall(self, thing: str) -> Sighting | None:
        return self._by_thing.get(thing)

    def forget(self, thing: str) -> None:
        self._by_thing.pop(thing, None)

    def __iter__(self):
        return iter(list(self._by_thing.values()))


@dataclass
class _Run:
    """One command's exploration."""

    started: float | None = None
    place: tuple | None = None  # (x, y) to go back to first: where the thing was seen
    travelled_m: float = 0.0
    last_pose: Pose2D | None = None
    goal: tuple | None = None
    goal_since: float = 0.0
    path: np.ndarray | None = None
    planned_at: float = -math.inf
    given_up: list = field(default_factory=list)  # (x, y) of frontiers given up or visited
    frontiers_left: int = 0


class Explorer:
    """The grid, the value map and one command's way through the unknown."""

    def __init__(self, config: ExplorationConfig = None, grid_config: GridConfig = None,
                 body_radius_m: float = 0.17):
        """`body_radius_m`: of the circle about base_link that holds the footprint."""
        self.config = config or ExplorationConfig()
        self.grid_config = grid_config or GridConfig()
        self.body_radius_m = body_radius_m
        self.clearance_m = body_radius_m + self.config.margin_m
        self._traversable_now = None
        self.grid: OccupancyGrid | None = None
        self.values: ValueMap | None = None
        self.run = _Run()

    def configure(self, config: ExplorationConfig, body_radius_m: float) -> None:
        """Live changes (speed, value weight, margin) apply from the next tick."""
        self.config, self.body_radius_m = config, body_radius_m
        self.clearance_m = body_radius_m + config.margin_m
        self._traversable_now = None

    def new_command(self) -> None:
        """The map stays (it is of the place); what the camera has looked at for the last
        command, how well that matched it, the budgets and the goal start afresh.
        """
        self.run = _Run()
        if self.grid is not None:
            self.values = ValueMap(self.grid.log_odds.shape)

    def forget_map(self) -> None:
        """The odometry jumped (a reset, another frame): the map no longer fits it, nor do
        the goal and the frontiers given up; the time and distance explored still count.
        """
        self.grid = self.values = None
        self.run = _Run(started=self.run.started, travelled_m=self.run.travelled_m)
        self._traversable_now = None

    def go_to_place(self, x: float, y: float) -> None:
        """Drive back to a remembered place first (then explore, if asked to)."""
        self.run.place, self.run.path, self.run.goal = (x, y), None, None

    def step_to_place(self, pose: Pose2D, now: float) -> ExploreStep:
        """Towards the remembered place; `reached` once near it (or no way there)."""
        run = self.run
        x, y = run.place
        if math.hypot(x - pose.x, y - pose.y) <= PLACE_SEEN_M:
            run.place = None
            return ExploreStep(0.0, 0.0, '', reached=True)
        if run.path is None or now - run.planned_at >= self.config.replan_s:
            run.path, run.planned_at = self.path_to_point(pose, run.place), now
        if run.path is None or math.hypot(*(run.path[-1] - (pose.x, pose.y))) <= (
                self.config.reached_m):
            run.place = None  # there, or no way there
            return ExploreStep(0.0, 0.0, '', reached=True)
        linear, angular = pursue(run.path, pose, self.config)
        return ExploreStep(linear, angular, '')

    def path_to_point(self, pose: Pose2D, point: tuple) -> np.ndarray | None:
        """[(x, y), ...] from the robot to the reachable cell nearest `point` (within
        PLACE_REACH_M: the thing itself stands there), or None where there is none.
        """
        grid, reached = self.grid, self._paths_from(pose)
        if reached is None:
            return None
        distances, predecessors = reached
        rows, columns = np.nonzero(np.isfinite(distances))
        xs, ys = grid.centre_of(rows, columns)
        away = np.hypot(xs - point[0], ys - point[1])
        if not away.size or away.min() > PLACE_REACH_M:
            return None
        best = int(np.argmin(away))
        cells = np.array(path_to(predecessors, grid.log_odds.shape,
                                 (rows[best], columns[best])))
        return np.column_stack(grid.centre_of(cells[:, 0], cells[:, 1]))

    def way_clear(self, pose: Pose2D, point: tuple, short_of_m: float) -> bool:
        """Whether the straight way from the robot towards `point`, up to `short_of_m`
        before it (the thing itself is on the grid), keeps the footprint clear of occupied
        cells.
        """
        distance = math.hypot(point[0] - pose.x, point[1] - pose.y) - short_of_m
        if distance <= 0.0:
            return True
        _, clearance = self._traversable()
        steps = np.arange(0.0, distance, self.grid.config.resolution_m / 2.0)
        heading = math.atan2(point[1] - pose.y, point[0] - pose.x)
        rows, columns = self.grid.cell_of(pose.x + steps * math.cos(heading),
                                          pose.y + steps * math.sin(heading))
        inside = self.grid.inside(rows, columns)
        return bool(np.all(clearance[rows[inside], columns[inside]] > self.clearance_m))

    def _traversable(self) -> tuple:
        """traversable() of the grid as it is now (kept until the next scan)."""
        if self._traversable_now is None:
            self._traversable_now = traversable(self.grid, self.clearance_m)
        return self._traversable_now

    def observe_scan(self, pose: Pose2D, scan: Scan) -> None:
        """A scan onto the grid; a robot nearer the grid's edge than the scan marks free
        floor gets a new grid centred on it (what lay behind is forgotten, the memory of
        sightings is not).
        """
        if not pose.is_finite():
            return
        if self.grid is not None and not self._well_inside(pose):
            self.grid, offset = self.grid.shifted(pose.x, pose.y)
            self.values = self.values.shifted(offset)
            self.run.goal = self.run.path = None  # in the old grid's cells
        if self.grid is None or not self._well_inside(pose):  # the first, or far away
            self.grid = OccupancyGrid(self.grid_config, pose.x, pose.y)
            self.values = ValueMap(self.grid.log_odds.shape)
        self.grid.integrate(pose, scan, self.body_radius_m)
        self._traversable_now = None

    def _well_inside(self, pose: Pose2D) -> bool:
        margin = min(self.grid_config.max_free_range_m, self.grid_config.size_m / 4.0)
        low_x, low_y = self.grid.origin
        size = self.grid.cells * self.grid_config.resolution_m
        return (low_x + margin <= pose.x <= low_x + size - margin
                and low_y + margin <= pose.y <= low_y + size - margin)

    def observe_camera(self, pose: Pose2D, hfov_rad: float) -> None:
        """The camera is looking from `pose`: the floor in its view has been seen."""
        if self.grid is not None and pose.is_finite():
            self.values.cover(self.grid, pose, hfov_rad, self.config.view_range_m)

    def unseen_near(self, pose: Pose2D) -> bool:
        """Whether mapped floor the camera has not looked at lies within its range: worth a
        look all round.
        """
        grid, reach = self.grid, self.config.view_range_m
        rows, columns = grid.cell_of(np.array([pose.x - reach, pose.x + reach]),
                                     np.array([pose.y - reach, pose.y + reach]))
        top, bottom = max(int(rows[0]), 0), min(int(rows[1]) + 1, grid.cells)
        left, right = max(int(columns[0]), 0), min(int(columns[1]) + 1, grid.cells)
        unseen = grid.free()[top:bottom, left:right] & ~self.values.covered[top:bottom,
                                                                            left:right]
        return float(unseen.sum()) * grid.config.resolution_m ** 2 >= UNSEEN_MIN_M2

    def observe_view(self, pose: Pose2D, similarity: float, hfov_rad: float) -> None:
        if self.grid is not None and pose.is_finite() and math.isfinite(similarity):
            self.values.add_view(self.grid, pose, similarity, hfov_rad, self.config.view_range_m)

    @property
    def ready(self) -> bool:
        return self.config.enabled and self.grid is not None

    def step(self, pose: Pose2D, now: float) -> ExploreStep:
        """What to do now to explore on; `now` on the policy's clock."""
        run, config = self.run, self.config
        if run.started is None:
            run.started = now
        if run.last_pose is not None:
            run.travelled_m += math.hypot(pose.x - run.last_pose.x, pose.y - run.last_pose.y)
        run.last_pose = pose
        if now - run.started >= config.max_time_s or run.travelled_m >= config.max_distance_m:
            return self._done(now)
        if self.grid is None:  # forgotten: held until the next scan draws it again
            return ExploreStep(0.0, 0.0, f'{EXPLORING} (the map starts afresh)')
        if run.goal is not None:
            goal_x, goal_y = self.grid.centre_of(*run.goal)
            if math.hypot(goal_x - pose.x, goal_y - pose.y) <= config.reached_m:
                run.given_up.append((float(goal_x), float(goal_y)))
                run.goal, run.path = None, None
                if self.unseen_near(pose):  # else on to the next one at once
                    return ExploreStep(0.0, 0.0, self._status(), reached=True)
            if now - run.goal_since >= config.goal_timeout_s:
                run.given_up.append((float(goal_x), float(goal_y)))
                run.goal, run.path = None, None
        if run.path is None or now - run.planned_at >= config.replan_s:
            if not self._plan(pose, now):
                return self._done(now)
        linear, angular = pursue(run.path, pose, config)
        return ExploreStep(linear, angular, self._status())

    def _status(self) -> str:
        left = self.run.frontiers_left
        return f'{EXPLORING} ({left} frontier{"" if left == 1 else "s"} left)'

    def _done(self, now: float) -> ExploreStep:
        area = 0.0 if self.grid is None else self.grid.free_area_m2()
        return ExploreStep(0.0, 0.0, '', done=f'not found: explored {area:.0f} m² in '
                           f'{now - self.run.started:.0f} s')

    def _plan(self, pose: Pose2D, now: float) -> bool:
        """Choose a frontier (the current one while it lasts) and a path to it."""
        run, grid, config = self.run, self.grid, self.config
        reached = self._paths_from(pose)
        if reached is None:
            return False
        distances, predecessors = reached
        frontiers = [f for f in find_frontiers(grid, distances, config.min_frontier_m,
                                               self.clearance_m + 0.15, self.values.value)
                     + unseen_floor(grid, self.values.covered, distances, UNSEEN_MIN_M2)
                     if not self._given_up(f.goal)]
        run.frontiers_left = len(frontiers)
        if not frontiers:
            return False
        current = [f for f in frontiers if run.goal is not None and math.dist(
            f.goal, run.goal) * grid.config.resolution_m <= config.reached_m + 0.2]
        chosen = current[0] if current else rank(frontiers, config.value_weight)[0]
        if not current:
            run.goal_since = now
        run.goal = chosen.goal
        cells = np.array(path_to(predecessors, grid.log_odds.shape, chosen.goal))
        run.path = np.column_stack(grid.centre_of(cells[:, 0], cells[:, 1]))
        run.planned_at = now
        return True

    def _paths_from(self, pose: Pose2D):
        """(distances, predecessors) of the shortest paths on the grid (path_distances) from the
        robot's cell (or the nearest passable one); None where it has none.
        """
        passable, clearance = self._traversable()
        start = self._start_cell(pose, passable)
        if start is None:
            return None
        return path_distances(passable, clearance, start, self.grid.config.resolution_m,
                              self.clearance_m)

    def _start_cell(self, pose: Pose2D, passable: np.ndarray):
        rows, columns = self.grid.cell_of(pose.x, pose.y)
        row, column = int(rows), int(columns)
        if not self.grid.inside(row, column):
            return None
        if passable[row, column]:
            return row, column
        reach = int(round(START_SEARCH_M / self.grid.config.resolution_m))
        top, left = max(row - reach, 0), max(column - reach, 0)
        window = passable[top:row + reach + 1, left:column + reach + 1]
        cells = np.argwhere(window) + [top, left]
        if not len(cells):
            return None
        nearest = cells[np.argmin(np.hypot(cells[:, 0] - row, cells[:, 1] - column))]
        return int(nearest[0]), int(nearest[1])

    def _given_up(self, goal: tuple) -> bool:
        x, y = self.grid.centre_of(*goal)
        return any(math.hypot(x - gx, y - gy) <= self.config.reached_m + 0.2
                   for gx, gy in self.run.given_up)
