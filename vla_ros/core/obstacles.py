"""Obstacles from a planar laser scan: a collision monitor and reactive avoidance.

The collision monitor (after Nav2's collision_monitor, cited, not copied) is the last filter of
every velocity command: the robot's footprint (a circle or a polygon in base_link), a stop zone
and a slowdown zone swept ahead of it in the direction of travel (behind when reversing), and a
turn check for a non-circular footprint turning in place. A point in the stop zone zeroes the
linear speed, one in the slowdown zone scales it down with the free distance left. Turning in
place is never stopped for a circle (it sweeps no new floor).

Avoidance is a gap chooser in the spirit of a vector field histogram: for every heading it
knows how far the footprint (plus a clearance) could drive straight along it, and it steers to
the free heading nearest the goal. The goal is a point in the robot frame, carried along by
the commanded motion (dead reckoning) while the camera cannot see it.

Nothing here imports rclpy: the action_policy node, `vla-ros eval` and the demo call it alike.
"""

from dataclasses import dataclass
import math

import numpy as np


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


@dataclass(frozen=True)
class Footprint:
    """A circle of `radius` about base_link, or a convex polygon ((x, y), ...) in base_link."""

    radius: float = 0.2
    polygon: tuple = ()

    def __post_init__(self):
        if self.polygon:
            corners = _corners(self.polygon)
            if len(corners) < 3:
                raise ValueError('footprint: a polygon needs at least 3 corners')
            edges = np.roll(corners, -1, axis=0) - corners
            following = np.roll(edges, -1, axis=0)
            turns = edges[:, 0] * following[:, 1] - edges[:, 1] * following[:, 0]
            if not (np.all(turns > 0) or np.all(turns < 0)):
                raise ValueError('footprint: the polygon must be convex, corners in order')
            if not _inside_polygon(np.zeros((1, 2)), corners)[0]:
                raise ValueError('footprint: base_link (0, 0) must lie inside the polygon')
        elif not (math.isfinite(self.radius) and self.radius > 0):
            raise ValueError(f'footprint: radius must be positive, got {self.radius}')

    @property
    def corners(self) -> np.ndarray:
        return _corners(self.polygon)

    @property
    def circumradius(self) -> float:
        if not self.polygon:
            return self.radius
        return float(np.max(np.hypot(*self.corners.T)))

    def front(self, lateral: np.ndarray, forward: bool = True) -> np.ndarray:
        """The footprint's leading edge x (trailing when not `forward`) at each lateral y;
        NaN where the footprint does not reach that y.
        """
        if not self.polygon:
            inside = np.abs(lateral) < self.radius
            edge = np.sqrt(np.clip(self.radius ** 2 - lateral ** 2, 0.0, None))
            return np.where(inside, edge if forward else -edge, np.nan)
        corners = self.corners
        start, end = corners, np.roll(corners, -1, axis=0)
        y = lateral[:, None]
        low, high = np.minimum(start[:, 1], end[:, 1]), np.maximum(start[:, 1], end[:, 1])
        spans = (y >= low) & (y <= high) & (high > low)
        fraction = (y - start[:, 1]) / np.where(high > low, end[:, 1] - start[:, 1], 1.0)
        x = start[:, 0] + fraction * (end[:, 0] - start[:, 0])
        x = np.where(spans, x, -np.inf if forward else np.inf)
        edge = x.max(axis=1) if forward else x.min(axis=1)
        return np.where(np.isfinite(edge), edge, np.nan)


def _corners(polygon) -> np.ndarray:
    """The polygon's corners, without repeats (a closed ring) or points on a straight edge."""
    corners = np.asarray(polygon, np.float64).reshape(-1, 2)
    distinct = [corner for index, corner in enumerate(corners)
                if np.hypot(*(corner - corners[index - 1])) > 1e-9] if len(corners) > 1 \
        else list(corners)
    keep = []
    for index, here in enumerate(distinct):
        before, after = distinct[index - 1], distinct[(index + 1) % len(distinct)]
        cross = (here[0] - before[0]) * (after[1] - here[1]) - (here[1] - before[1]) * (
            after[0] - here[0])
        if abs(cross) > 1e-12:
            keep.append(here)
    return np.array(keep).reshape(-1, 2)


def _depth(points: np.ndarray, corners: np.ndarray) -> np.ndarray:
    """How deep each point lies inside the convex polygon (m; < 0 outside, by the nearest
    edge line).
    """
    start, end = corners, np.roll(corners, -1, axis=0)
    edge = end - start
    length = np.hypot(edge[:, 0], edge[:, 1])
    area = np.sum(start[:, 0] * end[:, 1] - end[:, 0] * start[:, 1])
    inward = 1.0 if area > 0 else -1.0  # left of each edge is inside when counter-clockwise
    cross = (edge[:, 0] * (points[:, None, 1] - start[:, 1])
             - edge[:, 1] * (points[:, None, 0] - start[:, 0]))
    return np.min(inward * cross / length, axis=1)


def _inside_polygon(points: np.ndarray, corners: np.ndarray) -> np.ndarray:
    """Whether each point lies inside the convex polygon (corners in either order)."""
    start, end = corners, np.roll(corners, -1, axis=0)
    cross = ((end[:, 0] - start[:, 0]) * (points[:, None, 1] - start[:, 1])
             - (end[:, 1] - start[:, 1]) * (points[:, None, 0] - start[:, 0]))
    return np.all(cross >= 0, axis=1) | np.all(cross <= 0, axis=1)


def travel_distance(points: np.ndarray, footprint: Footprint, forward: bool = True) -> float:
    """How far the footprint can drive straight ahead (behind when not `forward`) before it
    touches a point; 0 when a point on that side is already inside it, inf when none is in
    the way.
    """
    if points.size == 0:
        return math.inf
    edge = footprint.front(points[:, 1], forward)
    gap = points[:, 0] - edge if forward else edge - points[:, 0]
    ahead = points[:, 0] > 0 if forward else points[:, 0] < 0
    in_way = np.isfinite(gap) & (ahead | (gap >= 0))
    if not np.any(in_way):
        return math.inf
    return float(max(np.min(gap[in_way]), 0.0))


def turn_blocked(points: np.ndarray, footprint: Footprint, angle: float) -> bool:
    """Whether turning in place by `angle` (rad, sign = direction) sweeps the footprint over a
    point: seen from the footprint, the point moves the other way along its circle about
    base_link, and it is swept when that arc crosses an edge. A circle sweeps nothing new.
    """
    if not footprint.polygon or points.size == 0 or angle == 0.0:
        return False
    radius = np.hypot(points[:, 0], points[:, 1])
    near = radius <= footprint.circumradius
    if not np.any(near):
        return False
    points, radius = points[near], radius[near]
    start = footprint.corners
    # A point on or inside the edge (contact, noise): blocked if this turn takes it deeper.
    depth = _depth(points, start)
    touching = depth > -TOUCH_M
    if np.any(touching):
        steps = np.linspace(0.0, angle, _samples(abs(angle) * footprint.circumradius))[1:]
        c, s = np.cos(-steps)[:, None], np.sin(-steps)[:, None]
        held = points[touching]
        turned = np.stack((c * held[None, :, 0] - s * held[None, :, 1],
                           s * held[None, :, 0] + c * held[None, :, 1]), axis=-1)
        deeper = _depth(turned.reshape(-1, 2), start).reshape(steps.size, -1) > (
            depth[touching][None, :] + 1e-9)
        if np.any(deeper):
            return True
        points, radius = points[~touching], radius[~touching]  # the rest: do they get hit?
        if not points.size:
            return False
    edge = np.roll(start, -1, axis=0) - start
    # |start + t edge| = radius, for every point (rows) and edge (columns)
    a = np.sum(edge ** 2, axis=1)[None, :]
    b = 2.0 * np.sum(start * edge, axis=1)[None, :]
    c = np.sum(start ** 2, axis=1)[None, :] - radius[:, None] ** 2
    root = np.sqrt(np.clip(b * b - 4 * a * c, 0.0, None))
    real = b * b - 4 * a * c >= 0.0
    bearing = np.arctan2(points[:, 1], points[:, 0])[:, None]
    for t in ((-b - root) / (2 * a), (-b + root) / (2 * a)):
        on_edge = real & (t >= 0.0) & (t <= 1.0)
        crossing = start[None, :, :] + t[..., None] * edge[None, :, :]
        where = np.arctan2(crossing[..., 1], crossing[..., 0])
        # how far the point's bearing must fall back (in the turn's sense) to reach it
        travel = np.mod((bearing - where) * math.copysign(1.0, angle), 2 * math.pi)
        if np.any(on_edge & (travel <= abs(angle))):
            return True
    return False


TOUCH_M = 0.01  # a point this near a polygon footprint's edge counts as touching it
SWEEP_STEP_M = 0.005  # sweeps are checked at poses this far apart along the footprint's rim


def _samples(sweep_m: float) -> int:
    return int(min(max(math.ceil(sweep_m / SWEEP_STEP_M), 2), 400)) + 1


def arc_blocked(points: np.ndarray, footprint: Footprint, linear: float, angular: float,
                distance: float) -> bool:
    """Whether a polygon footprint driving the arc (linear, angular) for `distance` of travel
    would reach a point (within TOUCH_M), or take one it touches deeper: its corners sweep
    outside the straight corridor. A circle about base_link is covered by the corridor check.
    """
    if not footprint.polygon or points.size == 0 or linear == 0.0 or angular == 0.0:
        return False
    reach = footprint.circumradius + distance
    near = points[np.hypot(points[:, 0], points[:, 1]) <= reach]
    if near.size == 0:
        return False
    corners = footprint.corners
    before = _depth(near, corners)
    touching = before > -TOUCH_M
    duration = distance / abs(linear)
    sweep = max(distance, abs(angular) * duration * footprint.circumradius)
    time = np.linspace(0.0, duration, _samples(sweep))[1:, None]  # every pose at once
    turn = angular * time
    x = linear / angular * np.sin(turn)
    y = linear / angular * (1.0 - np.cos(turn))
    c, s = np.cos(turn), np.sin(turn)
    dx, dy = near[None, :, 0] - x, near[None, :, 1] - y
    local = np.stack((c * dx + s * dy, -s * dx + c * dy), axis=-1).reshape(-1, 2)
    after = _depth(local, corners).reshape(time.shape[0], -1)
    # a point reached, or one already touching taken deeper
    return bool(np.any(np.where(touching[None, :], after > before[None, :] + 1e-6,
                                after > -TOUCH_M)))


def _hull(points: np.ndarray) -> np.ndarray:
    """The convex hull, counter-clockwise (Andrew's monotone chain)."""
    ordered = sorted(map(tuple, np.round(points, 9)))

    def half(sequence):
        chain = []
        for point in sequence:
            while len(chain) >= 2 and ((chain[-1][0] - chain[-2][0]) * (point[1] - chain[-2][1])
                                       - (chain[-1][1] - chain[-2][1])
                                       * (point[0] - chain[-2][0])) <= 0:
                chain.pop()
            chain.append(point)
        return chain[:-1]

    return np.array(half(ordered) + half(reversed(ordered)))


def zone_outline(footprint: Footprint, distance: float, forward: bool = True) -> np.ndarray:
    """The floor the footprint sweeps driving `distance` ahead (behind when not `forward`):
    the outline of a zone, for rviz.
    """
    if footprint.polygon:
        outline = footprint.corners
    else:
        angles = np.linspace(0.0, 2 * math.pi, 32, endpoint=False)
        outline = footprint.radius * np.column_stack((np.cos(angles), np.sin(angles)))
    shifted = outline + np.array([distance if forward else -distance, 0.0])
    return _hull(np.vstack((outline, shifted)))


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
            distance = 3.0
        else:  # the camera sees ahead: |bearing| is under half its field of view
            distance = max(floor_range[1] - origin_x, 0.0) / max(cos_b, 1e-3)
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
        needed = max(min(distance - config.goal_radius_m, config.lookahead_m), 0.05)
        offset = np.angle(np.exp(1j * (HEADINGS - goal)))
        cost = np.abs(offset)
        # Keep to the side chosen first and near the heading taken last: a goal behind the
        # robot or two equal gaps would otherwise make it turn back and forth.
        if self.side:
            cost = cost + np.where(offset * self.side < 0, math.pi / 4, 0.0)
        if self.heading is not None:
            cost = cost + 0.5 * np.abs(np.angle(np.exp(1j * (HEADINGS - self.heading))))
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
        linear = config.speed_mps * max(math.cos(heading), 0.0) ** 4 if abs(heading) < 0.6 \
            else 0.0
        return linear, angular, False
