"""The collision monitor, after Nav2's collision_monitor (cited, not copied): the last filter
of every velocity command. The robot's footprint, a stop zone and a slowdown zone swept ahead
of it in the direction of travel (behind when reversing), and a turn check for a non-circular
footprint turning in place. A point in the stop zone zeroes the linear speed, one in the
slowdown zone scales it down with the free distance left. Turning in place is never stopped
for a circle (it sweeps no new floor).

Its source is a planar laser scan (`Scan`, as sensor_msgs/LaserScan holds it). Nothing here
imports rclpy: the action_policy node, `vla-ros eval` and the demo call it alike.
"""

from dataclasses import dataclass
import math

import numpy as np

from vla_ros.core.footprint import arc_blocked, Footprint, TOUCH_M, travel_distance, turn_blocked


@dataclass(frozen=True)
class Scan:
    """A planar scan as sensor_msgs/LaserScan holds it, and where the scanner sits on the base."""

    ranges: np.ndarray
    angle_min: float
    angle_increment: float
    range_min: float
    range_max: float
    laser_x: float = 0.0  # scanner pose in base_link
    laser_y: float = 0.0
    laser_yaw: float = 0.0

    @property
    def readable_fraction(self) -> float:
        """The share of beams that say something (REP 117: NaN is an erroneous reading)."""
        ranges = np.asarray(self.ranges, np.float64)
        return float(np.mean(~np.isnan(ranges))) if ranges.size else 0.0

    def readable_fraction_ahead(self) -> float:
        """The share of the beams pointing ahead of base_link (within 90 degrees of its x
        axis) that read: where a forward motion's zones are.
        """
        ranges = np.asarray(self.ranges, np.float64)
        angles = self.angle_min + self.angle_increment * np.arange(ranges.size) + self.laser_yaw
        ahead = np.cos(angles) > 0.0
        return float(np.mean(~np.isnan(ranges[ahead]))) if ahead.any() else 0.0

    def points(self) -> np.ndarray:
        """(N, 2) obstacle points in base_link. +inf and beams beyond range_max saw nothing;
        -inf and readings under range_min are something too close to measure, taken at
        range_min; NaN beams are dropped (a scan made mostly of them is no scan: the node
        checks readable_fraction).
        """
        ranges = np.asarray(self.ranges, np.float64)
        angles = self.angle_min + self.angle_increment * np.arange(ranges.size)
        too_close = (ranges < self.range_min) & ~np.isnan(ranges)
        ranges = np.where(too_close, self.range_min, ranges)
        good = np.isfinite(ranges) & (ranges <= self.range_max)
        ranges, angles = ranges[good], angles[good] + self.laser_yaw
        return np.column_stack((self.laser_x + ranges * np.cos(angles),
                                self.laser_y + ranges * np.sin(angles)))


REQUIRE_SCAN = ('auto', 'true', 'false')


@dataclass(frozen=True)
class MonitorConfig:
    footprint: Footprint = Footprint()
    stop_distance_m: float = 0.1  # free travel under this: no linear motion that way
    slowdown_distance_m: float = 0.5  # ... under this: slower, down to slowdown_min_ratio
    slowdown_min_ratio: float = 0.3
    stop_turn_rad: float = 0.3  # a polygon footprint: no turn that sweeps a point within this
    scan_timeout_s: float = 0.5
    # true: no motion without a fresh scan; auto: so once a scan has come; false: never
    require_scan: str = 'auto'

    def __post_init__(self):
        if self.require_scan not in REQUIRE_SCAN:
            raise ValueError(f"collision monitor: require_scan '{self.require_scan}' is not one "
                             f'of {", ".join(REQUIRE_SCAN)}')
        if not 0.0 <= self.stop_distance_m <= self.slowdown_distance_m:
            raise ValueError('collision monitor: need 0 <= stop_distance_m <= '
                             'slowdown_distance_m')
        if not 0.0 < self.slowdown_min_ratio <= 1.0:
            raise ValueError('collision monitor: slowdown_min_ratio must be in (0, 1]')


@dataclass(frozen=True)
class MonitorResult:
    linear: float
    angular: float
    state: str  # clear | slowdown | stop | no scan
    free_m: float  # free travel in the direction of the requested linear speed (inf: none)


def monitor(linear: float, angular: float, points: np.ndarray | None,
            config: MonitorConfig) -> MonitorResult:
    """The command the obstacles allow; `points` None when there is no fresh scan (the caller
    decides whether that stops the robot).
    """
    if points is None:
        return MonitorResult(linear, angular, 'no scan', math.inf)
    state, free = 'clear', math.inf
    if linear != 0.0:
        free = travel_distance(points, config.footprint, forward=linear > 0)
        if free <= config.stop_distance_m:
            linear, state = 0.0, 'stop'
        elif free < config.slowdown_distance_m:
            span = config.slowdown_distance_m - config.stop_distance_m
            ratio = config.slowdown_min_ratio + (1.0 - config.slowdown_min_ratio) * (
                free - config.stop_distance_m) / span
            linear, state = linear * ratio, 'slowdown'
    if angular != 0.0 and turn_blocked(points, config.footprint,
                                       math.copysign(config.stop_turn_rad, angular)):
        angular, state = 0.0, 'stop'
    if arc_blocked(points, config.footprint, linear, angular,
                   max(config.stop_distance_m, TOUCH_M)):
        linear, angular, state = 0.0, 0.0, 'stop'
    return MonitorResult(linear, angular, state, free)
