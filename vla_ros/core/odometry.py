"""The robot's planar pose in the odom frame, and what its change since a sighting does to a
point the robot saw: odometry is smooth and continuous (REP 105), so the motion between two
readings is good for the few seconds a target goes unseen, not for a map.
"""

from dataclasses import dataclass
import math


@dataclass(frozen=True)
class Pose2D:
    """base_link in the odom frame: x, y in metres, yaw in radians (counter-clockwise)."""

    x: float
    y: float
    yaw: float

    @classmethod
    def from_quaternion(cls, x: float, y: float, qz: float, qw: float) -> 'Pose2D':
        """From a nav_msgs/Odometry pose's position and the z and w of its orientation (a
        planar robot's roll and pitch are taken as 0).
        """
        return cls(x, y, 2.0 * math.atan2(qz, qw))

    def is_finite(self) -> bool:
        return all(math.isfinite(value) for value in (self.x, self.y, self.yaw))


def motion(before: Pose2D, after: Pose2D) -> tuple:
    """(forward, left, turn): how base_link moved from `before` to `after`, in its frame at
    `before` (metres, radians).
    """
    dx, dy = after.x - before.x, after.y - before.y
    cos_b, sin_b = math.cos(before.yaw), math.sin(before.yaw)
    turn = math.atan2(math.sin(after.yaw - before.yaw), math.cos(after.yaw - before.yaw))
    return cos_b * dx + sin_b * dy, -sin_b * dx + cos_b * dy, turn
