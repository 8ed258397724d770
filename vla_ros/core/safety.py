"""The last word on every velocity command: limits, acceleration bounds and stop conditions.

Rules, in order:
1. E-stop, disabled, stale input, or a non-finite number anywhere -> zero, at once.
2. Speeds are clamped to |v| <= max_linear_mps and |w| <= max_angular_rps.
3. Speeding up (or reversing) is limited to max_*_accel x dt per step; slowing down towards
   zero without changing direction is braking and is always allowed immediately.
"""

from dataclasses import dataclass
import math


@dataclass(frozen=True)
class SafetyLimits:
    max_linear_mps: float = 0.5
    max_angular_rps: float = 1.0
    max_linear_accel: float = 0.5  # m/s^2
    max_angular_accel: float = 2.0  # rad/s^2

    def __post_init__(self):
        for name, value in vars(self).items():
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f'{name} must be a positive finite number, got {value}')


@dataclass(frozen=True)
class SafeCommand:
    linear: float
    angular: float
    stop_reason: str  # '' when the request went through (possibly clamped)


def _limit_axis(requested: float, previous: float, max_speed: float, max_step: float) -> float:
    requested = max(-max_speed, min(max_speed, requested))
    same_direction = requested * previous >= 0.0
    if same_direction and abs(requested) <= abs(previous):
        return requested  # braking: always allowed at once
    start = previous if same_direction else 0.0  # reversing: brake to zero, then accelerate
    return max(start - max_step, min(start + max_step, requested))


class SafetyLayer:
    """Stateful filter from requested (v, w) to what the robot may do this control period."""

    def __init__(self, limits: SafetyLimits, period_s: float):
        if not (math.isfinite(period_s) and period_s > 0):
            raise ValueError(f'period_s must be positive, got {period_s}')
        self.limits = limits
        self.period_s = period_s
        self.linear = 0.0
        self.angular = 0.0

    def reset(self) -> None:
        self.linear = self.angular = 0.0

    def filter(self, linear: float, angular: float, *, estop: bool = False,
               enabled: bool = True, inputs_fresh: bool = True,
               dt: float = None) -> SafeCommand:
        """The command to send now; `dt` defaults to the control period (capped at 2x)."""
        reason = ''
        if estop:
            reason = 'e-stop'
        elif not enabled:
            reason = 'disabled'
        elif not inputs_fresh:
            reason = 'stale input'
        elif not (math.isfinite(linear) and math.isfinite(angular)):
            reason = 'invalid command (NaN/inf)'
        if reason:
            self.reset()
            return SafeCommand(0.0, 0.0, reason)
        step = self.period_s if dt is None or not math.isfinite(dt) else dt
        step = min(max(step, 0.0), 2.0 * self.period_s)  # a late tick must not allow a jump
        limits = self.limits
        self.linear = _limit_axis(linear, self.linear, limits.max_linear_mps,
                                  limits.max_linear_accel * step)
        self.angular = _limit_axis(angular, self.angular, limits.max_angular_rps,
                                   limits.max_angular_accel * step)
        return SafeCommand(self.linear, self.angular, '')
