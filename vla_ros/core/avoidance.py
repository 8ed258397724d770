"""Reactive avoidance: a gap chooser in the spirit of a vector field histogram. For every
heading it knows how far the footprint (plus a clearance) could drive straight along it, and
it steers to the free heading nearest the goal. The goal is a point in the robot frame, from
the camera's bearing and the scan's range, carried along by odometry or the commanded motion
while the camera cannot see it. No rclpy.
"""

from dataclasses import dataclass
import math

import numpy as np

from vla_ros.core.footprint import Footprint


def free_headings(points: np.ndarray, radius: float, headings: np.ndarray) -> np.ndarray:
    """For each heading (rad, base_link), how far a circle of `radius` about base_link can
    drive straight along it before touching a point (inf when nothing is in the way).
    """
    if points.size == 0:
        return np.full(headings.shape, np.inf)
    c, s = np.cos(headings)[:, None], np.sin(headings)[:, None]
    along = points[:, 0] * c + points[:, 1] * s
    across = -points[:, 0] * s + points[:, 1] * c
    hits = (np.abs(across) < radius) & (along > 0)
    gap = along - np.sqrt(np.clip(radius ** 2 - across ** 2, 0.0, None))
    return np.where(hits, np.maximum(gap, 0.0), np.inf).min(axis=1)


@dataclass(frozen=True)
class AvoidanceConfig:
    enabled: bool = True
    clearance_m: float = 0.05  # kept between the footprint and obstacles on a detour
    lookahead_m: float = 0.8  # a heading is free when this much of it is (or up to the goal)
    goal_radius_m: float = 0.35  # scan points this near the goal are the target itself
    turn_gain: float = 1.5
    max_turn_rps: float = 0.8
    speed_mps: float = 0.2
    blocked_timeout_s: float = 20.0  # no way found for this long: stop, 'blocked'


HEADINGS = np.radians(np.arange(-180.0, 180.0, 5.0))
GOAL_WINDOW_RAD = math.radians(4.0)  # scan returns this near the target's bearing may be it
GOAL_RANGE_MARGIN_M = 0.05  # a return this far outside the camera's floor range still counts
# The target's own run of returns spans the bearings its mask spans, to within this fraction
# of the mask's angular width at either edge. Only a close target's mask is matched (one this
# wide): a far one's lowest row ranges it well, and a far target's narrow mask is matched as
# easily by a box or a pole in front of it.
SPAN_TOLERANCE = 0.2
MIN_MATCHED_SPAN_RAD = math.radians(20.0)
MIN_RUN_RETURNS = 3
MAX_KEPT_TICKS = 20  # a matched goal is kept through this many unmatched ticks (1 s at 20 Hz)
RUN_GAP_RAD = math.radians(2.5)  # neighbouring returns of one object are at most this apart
RUN_STEP_M = 0.1  # ... in bearing, and in range
# Returns this much further than the one a run starts from lie behind the object. Seen from
# the camera rather than the laser, some appear between its own near its edges.
RUN_BACKGROUND_M = 0.5
UNRANGED_GOAL_M = 3.0  # without the camera's floor range, a target the scan does not range
MIN_COS_BEARING = 1e-3  # keeps the floor range's distance along a ray finite at 90 degrees
# The detour: a heading must be free for at least this much however near the goal is; the
# other side of the goal costs this much more than the side chosen first, and a change of
# heading this much per radian (so two equal gaps or a goal behind do not swing the robot
# back and forth); it drives only on headings within DRIVE_HEADING_RAD of straight ahead,
# slower the further off (cos to this power).
MIN_FREE_M = 0.05
OTHER_SIDE_COST_RAD = math.pi / 4
HEADING_CHANGE_COST = 0.5
DRIVE_HEADING_RAD = 0.6
SPEED_FALLOFF_POWER = 4


def run_span(angles: np.ndarray, ranges: np.ndarray, index: int) -> tuple:
    """(lowest, highest) bearing and number of returns of the run that return `index`
    belongs to: neighbours in bearing, each within RUN_GAP_RAD and RUN_STEP_M of the next,
    what lies behind it left out.
    """
    keep = ranges <= ranges[index] + RUN_BACKGROUND_M
    order = np.flatnonzero(keep)[np.argsort(angles[keep])]
    sorted_angles, sorted_ranges = angles[order], ranges[order]
    joined = (np.diff(sorted_angles) <= RUN_GAP_RAD) & (
        np.abs(np.diff(sorted_ranges)) <= RUN_STEP_M)
    position = int(np.flatnonzero(order == index)[0])
    breaks = np.flatnonzero(~joined)  # break i lies between sorted returns i and i + 1
    before, after = breaks[breaks < position], breaks[breaks >= position]
    low = int(before[-1]) + 1 if before.size else 0
    high = int(after[0]) if after.size else len(order) - 1
    return float(sorted_angles[low]), float(sorted_angles[high]), high - low + 1


class Avoidance:
    """The detour around what stands between the robot and its goal.

    `goal` is the target's position in base_link (from the camera's bearing and the scan's
    range), moved with the odometry (or, without, every commanded step) while out of sight.
    """

    def __init__(self, config: AvoidanceConfig, footprint: Footprint):
        self.config, self.footprint = config, footprint
        self.reset()

    def reset(self) -> None:
        self.forget_goal()
        self.detouring = False
        self.side = 0.0  # which side of the goal the detour passes (+1 left, -1 right)
        self.heading = None  # the heading taken last, carried along like the goal
        self.stuck_since = None

    def forget_goal(self) -> None:
        self.goal = None  # (x, y) in base_link
        # The goal is on a run of returns that spanned the target's mask (1), kept through
        # n - 1 ticks' sightings since (n); 0: not.
        self.matched = 0

    def see_goal(self, bearing: float, points: np.ndarray | None,
                 floor_range: tuple | None = None, origin_x: float = 0.0,
                 span: tuple | None = None) -> None:
        """The target is in sight at `bearing`, seen from (origin_x, 0) in base_link (the
        camera). Its range is the scan's nearest return within a few degrees of that ray
        whose forward x is in `floor_range` ((nearest, furthest) the camera's view of the
        floor allows, core.control) and near enough to matter to the way being checked; none:
        the ray at the furthest. Without a floor range: the nearest return near the ray (which
        a low obstacle in front of the target would be), or far.

        `span`: the (lowest, highest) bearing of the mask's sides. For a close target (a span
        of MIN_MATCHED_SPAN_RAD or more), the nearest return in it, nearer than the furthest,
        is the target wherever its run of returns spans the same bearings (SPAN_TOLERANCE):
        a mask ending high above the object's foot then still finds its return, while a box
        in front much wider or narrower than the target does not pass for it. A goal so
        matched stays on the ray's return near it for up to MAX_KEPT_TICKS unmatched calls.
        """
        cos_b, sin_b = math.cos(bearing), math.sin(bearing)
        matched, self.matched = self.matched, 0
        if floor_range is None:
            distance = UNRANGED_GOAL_M
        else:  # the camera sees ahead: |bearing| is under half its field of view
            distance = max(floor_range[1] - origin_x, 0.0) / max(cos_b, MIN_COS_BEARING)
        if points is not None and points.size:
            dx, dy = points[:, 0] - origin_x, points[:, 1]
            ranges = np.hypot(dx, dy)
            near_ray = np.abs(np.angle(np.exp(1j * (np.arctan2(dy, dx) - bearing)))) < (
                GOAL_WINDOW_RAD)
            near = near_ray
            if floor_range is not None:
                # Further out the camera's floor range is wide (a row spans metres there) and
                # a return on it matters to no check of the way: the camera's range stands.
                reach = (self.config.lookahead_m + self.footprint.circumradius
                         + self.config.clearance_m)
                ahead = points[:, 0]
                within = (ahead <= floor_range[1] + GOAL_RANGE_MARGIN_M) & (ahead <= reach)
                near = near_ray & within & (ahead >= floor_range[0] - GOAL_RANGE_MARGIN_M)
                run = None if span is None else self._matching_run(
                    np.arctan2(dy, dx), ranges, within, span)
                keep = 0 < matched <= MAX_KEPT_TICKS and self.goal is not None
                if run is None and keep:
                    # A goal its run matched stays while the scan shows it on the ray: a
                    # frame whose mask comes out wider or cut does not undo the match.
                    kept = near_ray & within & (np.hypot(points[:, 0] - self.goal[0],
                                                         points[:, 1] - self.goal[1])
                                                <= 2 * GOAL_RANGE_MARGIN_M)
                    if np.any(kept):
                        near = np.zeros_like(near)
                        distance, self.matched = float(np.min(ranges[kept])), matched + 1
                elif run is not None:
                    near = np.zeros_like(near)
                    distance, self.matched = run, 1
            if np.any(near):
                distance = float(np.min(ranges[near]))
        self.goal = (origin_x + distance * cos_b, distance * sin_b)

    @staticmethod
    def _matching_run(angles, ranges, candidates, span) -> float | None:
        """The range of the nearest candidate return in `span` whose run spans it too."""
        low, high = span
        if high - low < MIN_MATCHED_SPAN_RAD:
            return None
        tolerance = SPAN_TOLERANCE * (high - low)
        inside = candidates & (angles >= low - tolerance) & (angles <= high + tolerance)
        if not np.any(inside):
            return None
        nearest = int(np.argmin(np.where(inside, ranges, np.inf)))
        run_low, run_high, returns = run_span(angles, ranges, nearest)
        if returns >= MIN_RUN_RETURNS and abs(run_low - low) <= tolerance and (
                abs(run_high - high) <= tolerance):
            return float(ranges[nearest])
        return None

    def move(self, linear: float, angular: float, dt: float) -> None:
        """Carry the goal along one commanded step (the base turned and drove under it)."""
        if dt > 0.0:
            self.shift(linear * dt, 0.0, angular * dt)

    def shift(self, forward: float, left: float, turn: float) -> None:
        """Carry the goal along a motion of the base: (forward, left) in its old frame, then
        `turn` (core.odometry.motion; a commanded step is forward, 0, angular * dt).
        """
        if self.heading is not None:
            self.heading -= turn
        if self.goal is None:
            return
        x, y = self.goal[0] - forward, self.goal[1] - left
        c, s = math.cos(-turn), math.sin(-turn)
        self.goal = (c * x - s * y, s * x + c * y)

    def turn_towards(self, heading: float) -> float:
        limit = self.config.max_turn_rps
        return max(-limit, min(limit, self.config.turn_gain * heading))

    def goal_bearing(self) -> float:
        return math.atan2(self.goal[1], self.goal[0])

    def _obstacles(self, points: np.ndarray) -> np.ndarray:
        """The scan points that are not the target itself."""
        far = np.hypot(points[:, 0] - self.goal[0],
                       points[:, 1] - self.goal[1]) > self.config.goal_radius_m
        return points[far]

    def path_clear(self, points: np.ndarray) -> bool:
        """Whether the straight way to the goal is free of anything but the target."""
        distance = math.hypot(*self.goal)
        reach = self.footprint.circumradius + self.config.clearance_m
        free = free_headings(self._obstacles(points), reach,
                             np.array([self.goal_bearing()]))[0]
        return free >= min(distance - self.config.goal_radius_m, self.config.lookahead_m)

    def steer(self, points: np.ndarray, now: float):
        """(linear, angular, blocked) of the detour this tick; blocked once no free heading was
        found for blocked_timeout_s.
        """
        config = self.config
        goal = self.goal_bearing()
        distance = math.hypot(*self.goal)
        reach = self.footprint.circumradius + config.clearance_m
        free = free_headings(self._obstacles(points), reach, HEADINGS)
        needed = max(min(distance - config.goal_radius_m, config.lookahead_m), MIN_FREE_M)
        offset = np.angle(np.exp(1j * (HEADINGS - goal)))
        cost = np.abs(offset)
        # Keep to the side chosen first and near the heading taken last.
        if self.side:
            cost = cost + np.where(offset * self.side < 0, OTHER_SIDE_COST_RAD, 0.0)
        if self.heading is not None:
            cost = cost + HEADING_CHANGE_COST * np.abs(
                np.angle(np.exp(1j * (HEADINGS - self.heading))))
        cost = np.where(free >= needed, cost, np.inf)
        if not np.isfinite(cost).any():
            self.heading = None
            if self.stuck_since is None:
                self.stuck_since = now
            return 0.0, 0.0, now - self.stuck_since >= config.blocked_timeout_s
        self.stuck_since = None
        best = int(np.argmin(cost))
        heading = float(HEADINGS[best])
        self.heading = heading
        if not self.side and abs(offset[best]) > 1e-6:
            self.side = math.copysign(1.0, offset[best])
        angular = self.turn_towards(heading)
        linear = config.speed_mps * max(math.cos(heading), 0.0) ** SPEED_FALLOFF_POWER \
            if abs(heading) < DRIVE_HEADING_RAD else 0.0
        return linear, angular, False
