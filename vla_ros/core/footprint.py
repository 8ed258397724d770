"""The robot's footprint (a circle or a polygon in base_link) against obstacle points: how far
it can drive straight, whether a turn in place or an arc sweeps into a point, and the outline
of a zone swept ahead of it. Pure geometry on NumPy arrays, no rclpy.
"""

from dataclasses import dataclass
import math

import numpy as np


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
