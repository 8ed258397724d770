"""The last word on every velocity command: limits, acceleration bounds and stop conditions.

Rules, in order:
1. E-stop, disabled, stale input, a stopped clock, or a non-finite number anywhere -> zero,
   at once.
2. Speeds are clamped to |v| <= max_linear_mps and |w| <= max_angular_rps; those may be changed
   at run time, but never above the hard_max_* ceilings, which are fixed at start.
3. Speeding up (or reversing) is limited to max_*_accel x dt per step; slowing down towards
   zero without changing direction is braking and is always allowed immediately.
"""

from dataclasses import dataclass
import math

# Zero when an input the robot needs is older: at 0.5 m/s, 0.25 m of travel on old data.
INPUT_TIMEOUT_S = 0.5


@dataclass(frozen=True)
class SafetyLimits:
    max_linear_mps: float = 0.5
    max_angular_rps: float = 1.0
    max_linear_accel: float = 0.5  # m/s^2
    max_angular_accel: float = 2.0  # rad/s^2
    # Ceilings for the four above: a live change can lower speed, never raise it past these.
    hard_max_linear_mps: float = 1.0
    hard_max_angular_rps: float = 2.0
    hard_max_linear_accel: float = 1.0
    hard_max_angular_accel: float = 4.0

    def __post_init__(self):
        for name, value in vars(self).items():
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f'{name} must be a positive finite number, got {value}')
        for name in ('max_linear_mps', 'max_angular_rps', 'max_linear_accel',
                     'max_angular_accel'):
            ceiling = getattr(self, 'hard_' + name)
            if getattr(self, name) > ceiling:
                raise ValueError(f'{name} {getattr(self, name):g} is above hard_{name} '
                                 f'{ceiling:g} (a read-only ceiling, set in the YAML)')


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
               enabled: bool = True, inputs_fresh: bool = True, clock_running: bool = True,
               dt: float = None, stale_reason: str = 'stale input') -> SafeCommand:
        """The command to send now; `dt` defaults to the control period (capped at 2x)."""
        reason = ''
        if estop:
            reason = 'e-stop'
        elif not enabled:
            reason = 'disabled'
        elif not inputs_fresh:
            reason = stale_reason
        elif not clock_running:
            reason = 'clock stopped'  # timed motions would never end
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


class EstopSources:
    """E-stop presses, one per source (a publisher): engaged while any source that said true
    has not said false since, so one panel's release never releases another's press.

    A source that dies pressed stays pressed until a supervisor's `clear_dead()`. A message may
    arrive more than once and out of order (one subscription per QoS kind): an order key per
    source (its sequence number) puts them in order and drops repeats.
    """

    def __init__(self):
        self.pressed = set()
        self._last_order = {}  # source -> the order key of the newest message applied

    @property
    def engaged(self) -> bool:
        return bool(self.pressed)

    def update(self, source, pressed: bool, order=None) -> bool:
        """Record one source's state; return whether that changed whether it is engaged.
        `order` increases from message to message of one source (None: apply in arrival order).
        """
        if order is not None:
            last = self._last_order.get(source)
            if last is not None and order <= last:
                return False  # a copy, or older than what was applied
            self._last_order[source] = order
        was = self.engaged
        if pressed:
            self.pressed.add(source)
        else:
            self.pressed.discard(source)
        return was != self.engaged

    def clear_dead(self, live_sources) -> tuple:
        """Forget the presses of sources not in `live_sources` (publishers gone, which can
        never release them); return (how many were forgotten, how many live ones still press).
        """
        dead = self.pressed - set(live_sources)
        self.pressed -= dead
        for source in dead:
            self._last_order.pop(source, None)
        return len(dead), len(self.pressed)
