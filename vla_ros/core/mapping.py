"""An occupancy grid of the floor in the odom frame, built from the laser scan and odometry:
what exploration plans on, and what the policy publishes for rviz (nav_msgs/OccupancyGrid).

Each cell holds the log-odds of being occupied: a beam's return adds to its cell, the floor
it crossed on the way subtracts (a beam with no return crosses max_free_range_m of floor).
Odometry drifts (REP 105): the grid is good for the minutes and tens of metres one search
takes, not as a lasting map; a robot with SLAM can hand its map pose in instead.
"""

from dataclasses import dataclass
import math

import numpy as np

from vla_ros.core.collision_monitor import Scan
from vla_ros.core.odometry import Pose2D

UNKNOWN = -1  # nav_msgs/OccupancyGrid's value for a cell never observed
MAX_CELLS = 1000  # across: planning and the published grid stay within a control tick
MAX_BEAMS = 2048  # a scan with more beams is thinned to this many for the grid


@dataclass(frozen=True)
class GridConfig:
    resolution_m: float = 0.1
    size_m: float = 24.0  # the square mapped, centred where the robot was at the first scan
    max_free_range_m: float = 4.0  # a beam marks floor as free up to here at most
    hit_log_odds: float = 0.9
    miss_log_odds: float = 0.4
    limit_log_odds: float = 4.0  # a cell can be unlearnt again within a few scans
    occupied_log_odds: float = 0.6  # above: occupied
    free_log_odds: float = -0.3  # below: free (one pass of a beam); between: unknown

    def __post_init__(self):
        if not 0.0 < self.resolution_m <= self.size_m:
            raise ValueError('map: need 0 < map_resolution_m <= map_size_m')
        if self.size_m / self.resolution_m > MAX_CELLS:
            cells = self.size_m / self.resolution_m
            raise ValueError(f'map: map_size_m / map_resolution_m is {cells:.0f} cells across, '
                             f'at most {MAX_CELLS}: a larger map_resolution_m or a smaller '
                             'map_size_m')
        if not self.free_log_odds < 0.0 < self.occupied_log_odds:
            raise ValueError('map: need free_log_odds < 0 < occupied_log_odds')


def shift(old: np.ndarray, new: np.ndarray, offset: tuple) -> None:
    """Copy into `new` the cells of `old` they share, `new` starting at `offset` in `old`."""
    (dr, dc), (rows, columns) = offset, old.shape
    source = (slice(max(dr, 0), min(rows + dr, rows)), slice(max(dc, 0), min(columns + dc,
                                                                               columns)))
    target = (slice(max(-dr, 0), min(rows - dr, rows)), slice(max(-dc, 0), min(columns - dc,
                                                                                columns)))
    if source[0].start < source[0].stop and source[1].start < source[1].stop:
        new[target] = old[source]


class OccupancyGrid:
    """Row i, column j is the cell at y = origin_y + (i + 0.5) * resolution, x likewise:
    nav_msgs/OccupancyGrid's row-major order.
    """

    def __init__(self, config: GridConfig, centre_x: float, centre_y: float):
        self.config = config
        self.cells = int(math.ceil(config.size_m / config.resolution_m))
        half = self.cells * config.resolution_m / 2.0
        self.origin = (centre_x - half, centre_y - half)
        self.log_odds = np.zeros((self.cells, self.cells), np.float32)
        self._occupied = None  # occupied(), kept until the grid changes

    def shifted(self, centre_x: float, centre_y: float) -> tuple:
        """(a grid of the same size centred near (centre_x, centre_y) on this one's cells,
        holding what this one knows of the floor they share; its (row, column) offset in this
        grid's cells).
        """
        rows, columns = self.cell_of(centre_x, centre_y)
        offset = (int(rows) - self.cells // 2, int(columns) - self.cells // 2)
        resolution = self.config.resolution_m
        grid = OccupancyGrid(self.config, 0.0, 0.0)
        grid.origin = (self.origin[0] + offset[1] * resolution,
                       self.origin[1] + offset[0] * resolution)
        shift(self.log_odds, grid.log_odds, offset)
        return grid, offset

    def cell_of(self, x, y):
        """(rows, columns) of points in the odom frame (may lie outside the grid)."""
        resolution = self.config.resolution_m
        return (np.floor((np.asarray(y) - self.origin[1]) / resolution).astype(np.int64),
                np.floor((np.asarray(x) - self.origin[0]) / resolution).astype(np.int64))

    def centre_of(self, rows, columns):
        """(x, y) in the odom frame of cells' centres."""
        resolution = self.config.resolution_m
        return (self.origin[0] + (np.asarray(columns) + 0.5) * resolution,
                self.origin[1] + (np.asarray(rows) + 0.5) * resolution)

    def inside(self, rows, columns):
        return (rows >= 0) & (rows < self.cells) & (columns >= 0) & (columns < self.cells)

    def integrate(self, pose: Pose2D, scan: Scan, body_radius_m: float = 0.0) -> None:
        """Add one scan taken at `pose`; the robot's own body (`body_radius_m`) is floor."""
        config = self.config
        ranges = np.asarray(scan.ranges, np.float64)
        angles = scan.angle_min + scan.angle_increment * np.arange(ranges.size) + scan.laser_yaw
        every = max(1, math.ceil(ranges.size / MAX_BEAMS))
        ranges, angles = ranges[::every], angles[::every]
        readable = ~np.isnan(ranges)
        ranges, angles = ranges[readable], angles[readable]
        ranges = np.where(ranges < scan.range_min, scan.range_min, ranges)  # too close: a hit
        hit = np.isfinite(ranges) & (ranges <= scan.range_max)
        # The floor a beam crossed: up to half a cell short of its return, or to the limit.
        crossed = np.minimum(np.where(hit, ranges - config.resolution_m / 2.0, np.inf),
                             config.max_free_range_m)
        cos_yaw, sin_yaw = math.cos(pose.yaw), math.sin(pose.yaw)
        laser_x = pose.x + cos_yaw * scan.laser_x - sin_yaw * scan.laser_y
        laser_y = pose.y + sin_yaw * scan.laser_x + cos_yaw * scan.laser_y
        directions = np.column_stack((np.cos(angles + pose.yaw), np.sin(angles + pose.yaw)))
        steps = np.arange(0.0, config.max_free_range_m, config.resolution_m / 2.0)
        along = np.broadcast_to(steps, (ranges.size, steps.size))
        keep = along < crossed[:, None]
        xs = laser_x + (along * directions[:, :1])[keep]
        ys = laser_y + (along * directions[:, 1:])[keep]
        self._add(xs, ys, -config.miss_log_odds)
        self._add(laser_x + ranges[hit] * directions[hit, 0],
                  laser_y + ranges[hit] * directions[hit, 1], config.hit_log_odds)
        if body_radius_m > 0.0:
            self.clear_disc(pose.x, pose.y, body_radius_m)

    def _add(self, xs, ys, amount: float) -> None:
        """Once per cell, however many samples fell in it: a cell listed twice is given the
        same new value twice (the right side is computed before any is stored).
        """
        rows, columns = self.cell_of(xs, ys)
        inside = self.inside(rows, columns)
        flat = rows[inside] * self.cells + columns[inside]
        self._occupied = None
        view = self.log_odds.reshape(-1)
        view[flat] = np.clip(view[flat] + amount, -self.config.limit_log_odds,
                             self.config.limit_log_odds)

    def clear_disc(self, x: float, y: float, radius_m: float) -> None:
        """Mark a disc as free floor (where the robot stands: the scan cannot see it)."""
        rows, columns = self._disc(x, y, radius_m)
        self._occupied = None
        self.log_odds[rows, columns] = np.minimum(self.log_odds[rows, columns],
                                                  self.config.free_log_odds - 0.1)

    def _disc(self, x: float, y: float, radius_m: float):
        reach = int(math.ceil(radius_m / self.config.resolution_m)) + 1
        row, column = (int(value) for value in self.cell_of(x, y))
        rows, columns = np.mgrid[row - reach:row + reach + 1, column - reach:column + reach + 1]
        cx, cy = self.centre_of(rows, columns)
        near = (np.hypot(cx - x, cy - y) <= radius_m) & self.inside(rows, columns)
        return rows[near], columns[near]

    def occupied(self) -> np.ndarray:
        return self.log_odds > self.config.occupied_log_odds

    def occupied_now(self) -> np.ndarray:
        """occupied(), computed once per change of the grid (the camera asks every tick)."""
        if self._occupied is None:
            self._occupied = self.occupied()
        return self._occupied

    def free(self) -> np.ndarray:
        return self.log_odds < self.config.free_log_odds

    def unknown(self) -> np.ndarray:
        return ~(self.occupied() | self.free())

    def free_area_m2(self) -> float:
        return float(self.free().sum()) * self.config.resolution_m ** 2

    def occupancy(self) -> np.ndarray:
        """int8 cells as nav_msgs/OccupancyGrid holds them: -1 unknown, else 0..100 (the
        probability of being occupied, in percent).
        """
        probability = 1.0 / (1.0 + np.exp(-self.log_odds))
        values = np.round(100.0 * probability).astype(np.int8)
        values[self.unknown()] = UNKNOWN
        return values
