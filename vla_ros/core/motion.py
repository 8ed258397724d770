"""Motions a command measures out ("go forward 2 meters", "turn left 90 degrees", "back up a
little", "go forward for 3 seconds") and manners ("slowly", "at full speed"): what a motion
intent with a parsed quantity and manner does, and each control tick's speed until the
odometry shows it done.

A distance or an angle is measured by the odometry alone: without fresh odometry the robot
holds still (the controller's watchdog says so) rather than guess how far it went. A manner
never raises anything past the configured limits: "slowly" scales every speed down,
"quickly" runs a motion at the safety limits and leaves a go-to's approach as configured,
and the status says which limit applies.
"""

from dataclasses import dataclass
import math

from vla_ros.core.text import Quantity

# Near the end a measured motion slows to what covers the rest in SLOWDOWN_S, never under
# MIN_SPEED_FRACTION of its speed: it stops within a tick's travel of the amount.
SLOWDOWN_S = 1.0
MIN_SPEED_FRACTION = 0.2
# A measured motion not done in TIME_FACTOR times its nominal time plus TIME_SLACK_S (held
# by an obstacle, a wheel slipping) ends short, and says how far it got.
TIME_FACTOR, TIME_SLACK_S = 2.0, 3.0


@dataclass(frozen=True)
class MotionConfig:
    small_distance_m: float = 0.25  # "a little", "a bit" forwards or backwards
    small_angle_deg: float = 15.0  # "a little", "a bit" of a turn
    slow_fraction: float = 0.5  # "slowly", "carefully": every speed times this
    max_distance_m: float = 5.0  # a longer distance in a command is refused
    max_angle_deg: float = 720.0  # a larger angle is refused
    max_duration_s: float = 60.0  # a longer "for N seconds" is refused


@dataclass
class Motion:
    """A motion under way: its speeds and what ends it."""

    linear: float
    angular: float
    kind: str  # distance (m), angle (rad), duration (s); '' = the intent's own duration
    amount: float  # 0 with kind '': until the next command
    allowed_s: float  # a distance or angle not done in this long ends short
    progress: float = 0.0

    def words(self) -> str:
        if self.kind == 'distance':
            return f'{self.amount:.2f} m'
        if self.kind == 'angle':
            return f'{math.degrees(self.amount):.0f}°'
        return f'for {self.amount:g} s' if self.kind == 'duration' else ''


def manner_note(manner: str, config: MotionConfig, limit: str) -> str:
    """What a status adds for a manner ('' for none); `limit`: the limit a fast one runs at."""
    if manner == 'slow':
        return f'slowly: speeds x{config.slow_fraction:g}'
    if manner == 'fast':
        return f'quickly: at most {limit}'
    return ''


def plan_motion(linear: float, angular: float, duration_s: float, quantity: Quantity | None,
                manner: str, config: MotionConfig, limits: tuple) -> tuple:
    """(Motion, '') for a motion intent's (linear, angular, duration_s) with a command's
    quantity and manner, or (None, why it cannot be done). `limits`: (max linear m/s, max
    angular rad/s) a fast motion runs at.
    """
    if manner == 'slow':
        linear, angular = linear * config.slow_fraction, angular * config.slow_fraction
    elif manner == 'fast':
        linear = math.copysign(limits[0], linear) if linear else 0.0
        angular = math.copysign(limits[1], angular) if angular else 0.0
    if quantity is None:
        return Motion(linear, angular, '', duration_s, 0.0), ''
    kind, amount = quantity.kind, quantity.value
    moves, turns = linear != 0.0, angular != 0.0
    if kind == 'small':
        if moves == turns:
            return None, f"'{quantity.words}' of a motion that both moves and turns: which?"
        kind = 'distance' if moves else 'angle'
        amount = config.small_distance_m if moves else math.radians(config.small_angle_deg)
    if kind == 'duration':
        if amount > config.max_duration_s:
            return None, (f"'{quantity.words}' is longer than max_motion_duration_s "
                          f'({config.max_duration_s:g} s)')
        if abs(linear) * amount > config.max_distance_m + 1e-9:
            return None, (f"'{quantity.words}' at {abs(linear):g} m/s is "
                          f'{abs(linear) * amount:g} m, beyond max_motion_distance_m '
                          f'({config.max_distance_m:g} m)')
        if abs(angular) * amount > math.radians(config.max_angle_deg) + 1e-9:
            return None, (f"'{quantity.words}' at {abs(angular):g} rad/s is "
                          f'{math.degrees(abs(angular) * amount):.0f}°, beyond '
                          f'max_motion_angle_deg ({config.max_angle_deg:g}°)')
        return Motion(linear, angular, 'duration', amount, 0.0), ''
    if kind == 'distance' and (turns or not moves):
        return None, f"'{quantity.words}' for a turn: a turn takes degrees"
    if kind == 'angle' and (moves or not turns):
        return None, f"'{quantity.words}' for a move: a move takes meters"
    bound = config.max_distance_m if kind == 'distance' else math.radians(config.max_angle_deg)
    if amount > bound + 1e-9:
        name, shown = (('max_motion_distance_m', f'{bound:g} m') if kind == 'distance'
                       else ('max_motion_angle_deg', f'{config.max_angle_deg:g}°'))
        return None, f"'{quantity.words}' is beyond {name} ({shown})"
    speed = abs(linear) if kind == 'distance' else abs(angular)
    return Motion(linear, angular, kind, amount,
                  TIME_FACTOR * amount / speed + TIME_SLACK_S), ''


def motion_step(motion: Motion, elapsed_s: float, shown) -> tuple:
    """(linear, angular, final status or '') for this tick of `motion`, begun `elapsed_s`
    ago; `shown`: (forward m, turn rad) the odometry showed since the last tick, None when it
    is not fresh (a measured motion then holds still: the caller's watchdog says why).
    """
    if motion.kind in ('', 'duration'):
        if motion.amount and elapsed_s >= motion.amount:
            return 0.0, 0.0, 'ended'
        return motion.linear, motion.angular, ''
    if shown is not None:
        made = shown[0] if motion.kind == 'distance' else shown[1]
        velocity = motion.linear if motion.kind == 'distance' else motion.angular
        motion.progress += made * math.copysign(1.0, velocity)
    remaining = motion.amount - motion.progress
    if remaining <= 0.0:
        return 0.0, 0.0, 'moved' if motion.kind == 'distance' else 'turned'
    if elapsed_s >= motion.allowed_s:
        return 0.0, 0.0, 'short'
    if shown is None:
        return 0.0, 0.0, ''
    speed = abs(motion.linear or motion.angular)
    scale = max(MIN_SPEED_FRACTION, min(1.0, remaining / (SLOWDOWN_S * speed)))
    return motion.linear * scale, motion.angular * scale, ''
