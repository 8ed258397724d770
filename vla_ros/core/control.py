"""The control pipeline: one tick turns the instruction, the inputs and their ages into a
velocity command and a status.

It owns the policy, the safety layer and the freshness rules, so the action_policy node,
`vla-ros eval` and `vla-ros demo` decide the same way. Time is passed in (seconds on whatever
clock the caller runs on); the caller says how old each input is, best on a clock that cannot
jump. The policy's own time only moves forward, a control period or a few at a time: when
`now` jumps back or far ahead, the jump is not counted, and the ControlOutput says so.
"""

from dataclasses import dataclass, field
import math

from vla_ros.core import config
from vla_ros.core.policy import ActionPolicy, IntentClassifier, ServoConfig, TargetView
from vla_ros.core.safety import INPUT_TIMEOUT_S, SafetyLayer, SafetyLimits
from vla_ros.core.text import parse_command, ParsedCommand

# Statuses after which the robot stays still until the next command.
FINAL_STATUSES = ('arrived', 'not found', 'stopped: stop command', 'stopped: input lost')
FINAL_PREFIXES = ('found ', 'done: ', 'not understood: ', 'stopped: invalid embedding',
                  'stopped: zero embedding')


def record_change(statuses: list, status: str) -> None:
    """Append `status` to a record of changes (the policy also repeats it once a second)."""
    if not statuses or statuses[-1] != status:
        statuses.append(status)


def is_final(status: str) -> bool:
    """Whether a status ends the current instruction (success or not)."""
    return status in FINAL_STATUSES or status.startswith(FINAL_PREFIXES)


@dataclass(frozen=True)
class ControlSettings:
    servo: ServoConfig = field(default_factory=ServoConfig)
    limits: SafetyLimits = field(default_factory=SafetyLimits)
    control_rate_hz: float = 20.0
    input_timeout_s: float = INPUT_TIMEOUT_S
    input_lost_s: float = 10.0  # held this long for stale input: the command is given up
    require_camera_for_motion: bool = True
    min_intent_similarity: float = 0.5
    intent_margin: float = 0.02
    command_verbs: tuple = ()  # verbs the command grammar adds to its own (core.text)

    @classmethod
    def from_values(cls, values: dict) -> 'ControlSettings':
        """From the action_policy's checked parameter values (core.config)."""
        return cls(servo=config.servo_config(values), limits=config.safety_limits(values),
                   **{name: values[name] for name in (
                       'control_rate_hz', 'input_timeout_s', 'input_lost_s',
                       'require_camera_for_motion',
                       'min_intent_similarity', 'intent_margin')},
                   command_verbs=tuple(values['command_verbs']))


@dataclass(frozen=True)
class ControlOutput:
    linear: float
    angular: float
    status: str
    target: TargetView | None  # the fresh target this tick acted on (None: none or stale)
    stop_reason: str = ''  # why the safety layer sent zero ('' when it did not)
    clock_jump_s: float = 0.0  # how far `now` jumped (back < 0, ahead > 0) without counting


# A larger step of the caller's clock between two calls is a jump (a reset simulation, a
# clock set by hand): counting it would end searches and confirm flickers at once.
MAX_STEP_PERIODS = 10


class Controller:
    def __init__(self, classifier: IntentClassifier | None,
                 settings: ControlSettings = ControlSettings()):
        self.settings = settings
        self.policy = ActionPolicy(classifier, settings.servo)
        self.safety = SafetyLayer(settings.limits, 1.0 / settings.control_rate_hz)
        self._last_tick = None
        self._last_now = None  # the caller's clock at the last call
        self._last_step = 0.0  # the last step of the policy's clock, jumps left out
        self._stale_held = None  # seconds the inputs have been stale (None: fresh)
        self._policy_now = None  # the policy's clock: the caller's, jumps not counted

    def _advance(self, now: float, paused: bool = False) -> float:
        """Move the policy's clock with `now` (not while `paused`); return the part of the
        step not counted as a jump (< 0 back, > 0 ahead; 0 when none): a step may be up to
        MAX_STEP_PERIODS control periods.
        """
        if self._last_now is None:
            self._policy_now, self._last_now = now, now
            return 0.0
        elapsed, self._last_now = now - self._last_now, now
        counted = min(max(elapsed, 0.0), MAX_STEP_PERIODS / self.settings.control_rate_hz)
        self._last_step = counted
        if not paused:
            self._policy_now += counted
        return elapsed - counted

    @classmethod
    def from_encoder(cls, intents, encode_texts, settings: ControlSettings) -> 'Controller':
        """Intents recognised with `encode_texts`, the encoder the commands go through."""
        classifier = IntentClassifier.from_encoder(
            intents, encode_texts, settings.min_intent_similarity, settings.intent_margin)
        return cls(classifier, settings)

    def configure(self, settings: ControlSettings) -> None:
        """Live changes: limits and servo values apply from the next tick."""
        self.settings = settings
        self.policy.servo_config = settings.servo
        self.safety.limits = settings.limits

    @property
    def intent(self):
        return self.policy.state.intent

    def instruct(self, embedding, command: str | None, now: float) -> str:
        """A new instruction: its cleaned text (None: unknown, refused) and that text's
        embedding; returns the new status (the reason of a refusal is in `refusal`).
        """
        self._advance(now)
        self._stale_held = None
        parsed = (ParsedCommand('', '', 'no command text came with the embedding')
                  if command is None else parse_command(command, self.settings.command_verbs))
        return self.policy.set_instruction(embedding, parsed, self._policy_now)

    @property
    def refusal(self) -> str:
        """Why the last command was not understood ('' when it was)."""
        return self.policy.state.refusal

    def follow(self, intent, object_phrase: str, now: float) -> str:
        """An intent given, not recognised (the evaluator's oracle)."""
        self._advance(now)
        self._stale_held = None
        return self.policy.follow(intent, object_phrase, self._policy_now)

    def tick(self, now: float, target: TargetView | None, target_age: float | None,
             camera_age: float | None, estop: bool = False, enabled: bool = True,
             clock_age: float | None = None) -> ControlOutput:
        """One control period. Ages are in seconds (None: never received). `clock_age`: how
        long `now` has not moved, when it is a clock that can stop (simulated time).

        While an input the command needs is stale the policy's clock stands still: a search
        or a timed motion does not run out while the robot cannot act on it. Stale for
        `input_lost_s` (whatever else holds the robot meanwhile, an e-stop included), the
        command is given up ('stopped: input lost', final): the robot does not drive off on
        it when the input comes back, maybe much later.
        """
        jump = self._advance(now, paused=self._stale_held is not None)
        now = self._policy_now
        timeout = self.settings.input_timeout_s
        target_fresh = target is not None and target_age is not None and target_age <= timeout
        camera_fresh = camera_age is not None and camera_age <= timeout
        fresh_target = target if target_fresh else None
        wanted = self.policy.step(now, fresh_target)
        fresh = (not wanted.needs_target or target_fresh) and (
            not wanted.needs_camera or not self.settings.require_camera_for_motion
            or camera_fresh)
        dt = None if self._last_tick is None else now - self._last_tick
        self._last_tick = now
        clock_running = clock_age is None or clock_age <= timeout
        command = self.safety.filter(wanted.linear, wanted.angular, estop=estop,
                                     enabled=enabled, inputs_fresh=fresh,
                                     clock_running=clock_running, dt=dt)
        reason = command.stop_reason
        status = f'stopped: {reason}' if reason else wanted.status
        if fresh:
            self._stale_held = None
        else:  # counted in the policy clock's steps: a jump of `now` neither adds nor hides
            self._stale_held = (0.0 if self._stale_held is None
                                else self._stale_held + self._last_step)
            if self._stale_held >= self.settings.input_lost_s:
                status = self.policy.give_up('stopped: input lost')
        return ControlOutput(command.linear, command.angular, status, fresh_target, reason,
                             jump)

    def stop(self) -> None:
        """Forget the speed reached, so the next command starts from rest."""
        self.safety.reset()


def stamp_problem(stamp_s: float, now_s: float, tolerance_s: float) -> str:
    """Why an input stamped `stamp_s` cannot be used at `now_s` ('' when it can): a stamp from
    the future would look newest for as long as it stays ahead, hiding every later input.
    """
    if not math.isfinite(stamp_s):
        return 'its stamp is not a number'
    if now_s <= 0.0:
        return 'this node has no time yet (with use_sim_time: nothing on /clock)'
    if stamp_s - now_s > tolerance_s:
        return (f"its stamp is {stamp_s - now_s:.3f} s ahead of this node's clock "
                f'(tolerance {tolerance_s:g} s)')
    return ''
