"""The control pipeline: one tick turns the instruction, the inputs and their ages into a
velocity command and a status.

It owns the policy, the safety layer and the freshness rules, so the action_policy node,
`vla-ros eval` and `vla-ros demo` decide the same way. Time is passed in (seconds on whatever
clock the caller runs on); the caller says how old each input is, best on a clock that cannot
jump. The policy's own time only moves forward, a control period or a few at a time: when
`now` jumps back or far ahead, the jump is not counted, and the ControlOutput says so.
"""

from dataclasses import dataclass, field, replace
import math

import numpy as np

from vla_ros.core import config
from vla_ros.core.avoidance import Avoidance, AvoidanceConfig
from vla_ros.core.collision_monitor import monitor, MonitorConfig, MonitorResult, Scan
from vla_ros.core.exploration import (
    ExplorationConfig,
    Explorer,
    pursue,
    Sighting,
    Sightings,
    tile_bearings,
)
from vla_ros.core.footprint import travel_distance
from vla_ros.core.mapping import GridConfig
from vla_ros.core.motion import MotionConfig
from vla_ros.core.odometry import motion, Pose2D
from vla_ros.core.policy import (
    ActionPolicy,
    IntentClassifier,
    Segmentation,
    ServoConfig,
    TargetView,
)
from vla_ros.core.safety import INPUT_TIMEOUT_S, SafetyLayer, SafetyLimits
from vla_ros.core.status import (
    BLOCKED,
    is_approaching,
    is_final,
    is_searching,
    is_success,
    is_waiting,
    NOT_FOUND,
    step_status,
    WAITING,
)
from vla_ros.core.steps import command_steps, MAX_WAIT_S, StepRun
from vla_ros.core.text import ParsedCommand


@dataclass(frozen=True)
class ControlSettings:
    servo: ServoConfig = field(default_factory=ServoConfig)
    motion: MotionConfig = field(default_factory=MotionConfig)
    limits: SafetyLimits = field(default_factory=SafetyLimits)
    control_rate_hz: float = 20.0
    input_timeout_s: float = INPUT_TIMEOUT_S
    max_segmentation_age_s: float = 6.0  # a target's segmentation older than this: stale
    input_lost_s: float = 10.0  # held this long for stale input: the command is given up
    require_camera_for_motion: bool = True
    min_intent_similarity: float = 0.5
    intent_margin: float = 0.02
    command_verbs: tuple = ()  # verbs the command grammar adds to its own (core.text)
    monitor: MonitorConfig = field(default_factory=MonitorConfig)
    avoidance: AvoidanceConfig = field(default_factory=AvoidanceConfig)
    camera_hfov_deg: float = 90.0  # turns a target's image x into a bearing
    camera_vfov_deg: float = 60.0  # and its lowest row into a distance on the floor,
    camera_mount: tuple = ()  # with the camera's (x, height, pitch down in rad) in base_link
    camera_bottom_tolerance: float = 0.0  # how much higher a mask's lowest row may lie
    exploration: ExplorationConfig = field(default_factory=ExplorationConfig)
    grid: GridConfig = field(default_factory=GridConfig)

    @classmethod
    def from_values(cls, values: dict) -> 'ControlSettings':
        """From the action_policy's checked parameter values (core.config)."""
        return cls(servo=config.servo_config(values), motion=config.motion_config(values),
                   limits=config.safety_limits(values),
                   monitor=config.monitor_config(values),
                   avoidance=config.avoidance_config(values),
                   exploration=config.exploration_config(values),
                   grid=config.grid_config(values),
                   camera_hfov_deg=values['camera_hfov_deg'],
                   camera_vfov_deg=values['camera_vfov_deg'],
                   camera_mount=config.camera_mount(values),
                   camera_bottom_tolerance=values['camera_bottom_tolerance'],
                   **{name: values[name] for name in (
                       'control_rate_hz', 'input_timeout_s', 'max_segmentation_age_s',
                       'input_lost_s',
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
    obstacle: str = 'no scan'  # the collision monitor: clear | slowdown | stop | no scan
    free_m: float = math.inf  # free travel in the direction of the requested linear speed


# A larger step of the caller's clock between two calls is a jump (a reset simulation, a
# clock set by hand): counting it would end searches and confirm flickers at once.
MAX_STEP_PERIODS = 10
FAR_M = 5.0  # the distance given to a target seen at the horizon
PROGRESS_M = 0.1  # a detour that brings the goal this much nearer is making progress
FACING_RAD = 0.1  # a lost target's goal this near straight ahead has been faced
STALL_CYCLES = 5.0  # a segmentation this many of the segmenter's cycles old: it has stalled
ODOM_SLACK_M, ODOM_SLACK_RAD = 0.1, 0.2  # odometry's own jitter between two ticks, at most
ODOM_CHECK_M, ODOM_CHECK_RAD, ODOM_SHOWN = 0.25, 0.5, 0.25  # Controller._check_odometry
ODOM_FAILED_WINDOWS = 2
MIN_STALL_S = 1.0
SIGHTING_RANGE_M = 4.0  # a target placed further off (unranged, at the horizon) is not kept
GOAL_SHORT_M = 0.6  # the straight way to a target is checked on the grid up to this short of it
# The reactive detour first (it is quicker round a box); a path on the grid once it has been
# held by an obstacle, or made no progress, this long, or detoured this long in all (a wall,
# a doorway).
GRID_AFTER_HELD_S, GRID_AFTER_DETOUR_S, GRID_AFTER_DETOURS_S = 1.0, 4.0, 10.0
BACK_M = 0.3  # coming back ends this near where the command began
BACK_TIMEOUT_S = 90.0  # ... or, not there after this long, ends 'blocked'
COMING_BACK = 'coming back'


class Controller:
    def __init__(self, classifier: IntentClassifier | None,
                 settings: ControlSettings = ControlSettings(), encode_texts=None):
        """`encode_texts`: the text encoder the commands go through (core.encoders), which a
        command of several steps needs for the text of each step (None: such a command is
        refused, unless its intents are given: follow_steps).
        """
        self.settings = settings
        self.encode_texts = encode_texts
        self._steps = None  # a StepRun while a command of several steps runs
        limits = settings.limits
        self.policy = ActionPolicy(classifier, settings.servo, settings.motion,
                                   (limits.max_linear_mps, limits.max_angular_rps))
        self.safety = SafetyLayer(settings.limits, 1.0 / settings.control_rate_hz)
        self._last_tick = None
        self._last_now = None  # the caller's clock at the last call
        self._last_step = 0.0  # the last step of the policy's clock, jumps left out
        self._stale_held = None  # seconds the inputs have been stale (None: fresh)
        self._policy_now = None  # the policy's clock: the caller's, jumps not counted
        self.avoidance = Avoidance(settings.avoidance, settings.monitor.footprint)
        self._detour_since = None  # policy time the detour began or last came nearer
        self._detour_nearest = math.inf  # the goal's nearest distance on this detour
        self._detoured_s = 0.0  # policy seconds spent on detours this command
        # Policy seconds in which the safety layer let motion through (not e-stopped, held
        # for stale input, ...): exploring's time bounds count these, not time held still.
        self._free_s = 0.0
        self._held_by_obstacle = 0.0  # policy seconds a wanted motion has been stopped for one
        self._goal_from_camera = False  # the goal's range was bounded by the camera's view
        self._scan_seen = False  # a scan has come (require_scan auto: required from then on)
        self._odom_pose = None  # (the odometry's pose, policy time) at the last tick it was live
        self._measure_pose = None  # ... at the last tick it was fresh (a measured motion's)
        self._instructed_at = -math.inf  # the caller's clock at the last command
        # Motion sent and motion the odometry showed (m, rad, m, rad) since the last check
        # (_check_odometry: too little of it twice in a row, and the odometry is stuck).
        self._odom_check = [0.0, 0.0, 0.0, 0.0]
        self._odom_failures = 0  # windows in a row in which it showed too little
        self.odometry_stuck = False
        self.odometry_jumped = False  # set when it jumps (the node warns, then clears it)
        self.explorer = Explorer(settings.exploration, settings.grid,
                                 settings.monitor.footprint.circumradius)
        self._command_embedding = None  # the command's text embedding (the value map's)
        self.sightings = Sightings()  # where each thing asked for was last confirmed
        self._recalled = None  # the sighting this go_to goes back to first
        self._which = None  # the command's relation: which one of several (core.relations)
        self._checking_place = False  # looking around where it was seen
        self._approach_path = None  # (path on the grid to the target, when planned)
        self._following = None  # the path on the grid the last tick followed

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
        return cls(classifier, settings, encode_texts)

    def configure(self, settings: ControlSettings) -> None:
        """Live changes: limits and servo values apply from the next tick."""
        self.settings = settings
        self.policy.servo_config = settings.servo
        self.policy.motion_config = settings.motion
        self.policy.speed_limits = (settings.limits.max_linear_mps,
                                    settings.limits.max_angular_rps)
        self.safety.limits = settings.limits
        self.avoidance.config = settings.avoidance
        self.avoidance.footprint = settings.monitor.footprint
        self.explorer.configure(settings.exploration, settings.monitor.footprint.circumradius)

    def _new_command(self) -> None:
        self._instructed_at = self._last_now  # the caller's clock
        self._stale_held = None
        self._odom_pose = self._measure_pose = None
        self._odom_check, self._odom_failures = [0.0, 0.0, 0.0, 0.0], 0
        self.odometry_stuck = False
        self.avoidance.reset()
        self._detour_since, self._held_by_obstacle = None, 0.0
        self._detoured_s = 0.0
        self.explorer.new_command()
        self._command_embedding = None
        self._recalled, self._checking_place = None, False
        self._approach_path = None

    @property
    def intent(self):
        return self.policy.state.intent

    def instruct(self, embedding, command: str | None, now: float) -> str:
        """A new instruction: its cleaned text (None: unknown, refused) and that text's
        embedding; returns the new status (the reason of a refusal is in `refusal`).
        """
        self._advance(now)
        self._steps = None
        if command is None:
            return self._begin(embedding, ParsedCommand(
                '', '', 'no command text came with the embedding'), None)
        steps = command_steps(command, self.settings.command_verbs)
        if len(steps) > 1:
            return self._start_steps(command, steps, None, embedding)
        return self._begin(embedding, steps[0].parsed, None)

    def _begin(self, embedding, parsed: ParsedCommand | None, intent) -> str:
        """Start one command (or step): recognised from its embedding and parse, or the
        `intent` given (the oracle's) for the parse's object.
        """
        self._new_command()
        if intent is not None:
            status = self.policy.follow(intent, parsed.object_phrase, self._policy_now)
        else:
            status = self.policy.set_instruction(embedding, parsed, self._policy_now)
        if self.intent is not None and embedding is not None:
            vector = np.asarray(embedding, np.float64).reshape(-1)
            norm = np.linalg.norm(vector)
            self._command_embedding = vector / norm if norm > 0.0 else None
        self._which = parsed.relation
        self._recall()
        return status

    def _start_steps(self, text: str, steps: tuple, intent, embedding=None) -> str:
        """A command of several steps: every step is checked before the first begins (one
        that cannot be done refuses the whole command), then the first begins. `embedding`:
        the whole command's (the steps are encoded here), checked as a command of one step's.
        """
        command = ParsedCommand(text, '', '')
        for number, step in enumerate(steps, 1):
            if step.kind == 'wait' and not step.wait_s <= MAX_WAIT_S:
                return self._refuse_steps(command, f"step {number} ('{step.text}'): a wait of "
                                          f'at most {MAX_WAIT_S:g} s (a command runs now, not '
                                          'later)')
        texts = [step.text for step in steps if step.kind == 'command']
        problem = '' if embedding is None else self.policy.classifier.embedding_problem(
            embedding)
        if problem:  # the command embedder's model is not this policy's
            self._new_command()
            return self.policy.hold(f'stopped: {problem}', self._policy_now)
        if intent is None and self.encode_texts is None:
            return self._refuse_steps(command, 'commands of several steps need the text '
                                      'encoder (say one step at a time)')
        encoded = iter(self.encode_texts(texts) if intent is None and texts else ())
        embeddings = tuple(next(encoded) if step.kind == 'command' and intent is None
                           else None for step in steps)
        limits = self.settings.limits
        trial = ActionPolicy(self.policy.classifier, self.settings.servo, self.settings.motion,
                             (limits.max_linear_mps, limits.max_angular_rps))
        for number, (step, embedding) in enumerate(zip(steps, embeddings), 1):
            if step.kind != 'command' or intent is not None:
                continue
            status = trial.set_instruction(embedding, step.parsed, self._policy_now)
            chosen = trial.state.intent
            why = trial.state.refusal or ('' if chosen is not None else status)
            if chosen is not None and chosen.behaviour == 'stop':
                why = 'a stop between steps: say how long to wait ("wait 5 seconds")'
            if why:
                return self._refuse_steps(command, f"step {number} ('{step.text}'): {why}")
        self._steps = StepRun(steps, embeddings, intent)
        return self._begin_step()

    def _refuse_steps(self, command: ParsedCommand, why: str) -> str:
        self._new_command()
        return self.policy.refuse(command, why, self._policy_now)

    def _begin_step(self) -> str:
        run = self._steps
        run.began = self._policy_now
        step = run.step
        if step.kind in ('wait', 'return'):
            self._new_command()
            status = self.policy.hold(f'{WAITING} ({step.wait_s:g} s)' if step.kind == 'wait'
                                      else COMING_BACK, self._policy_now)
        else:
            status = self._begin(run.embeddings[run.index], step.parsed if run.intent is None
                                 else ParsedCommand('', step.object_phrase, '',
                                                    relation=step.relation), run.intent)
        return step_status(run.index + 1, len(run.steps), status)

    def _step_status(self, status: str) -> str:
        """The status of a command of several steps, the next step begun once one is done."""
        run = self._steps
        run.ticked = True
        step = run.step
        if step.kind == 'wait' and is_waiting(status) and (
                self._policy_now - run.began >= step.wait_s):  # not over a fault's status
            status = f'done: waited {step.wait_s:g} s'
        if is_success(status) and run.index + 1 < len(run.steps):
            run.index += 1
            return self._begin_step()
        return step_status(run.index + 1, len(run.steps), status)

    def _recall(self) -> None:
        """A go_to to a thing confirmed before goes back there first (not to one of several
        a relation picks: which one is seen in view, not remembered).
        """
        state = self.policy.state
        if state.intent is None or state.intent.behaviour != 'go_to' or not (
                self.settings.exploration.enabled and self.explorer.ready) or (
                self._which is not None):
            return
        self._recalled = self.sightings.recall(state.object_phrase)
        if self._recalled is not None:
            self.explorer.go_to_place(self._recalled.x, self._recalled.y)

    def observe_scan(self, scan: Scan, odom: Pose2D | None, odom_age: float | None) -> None:
        """A new scan, taken where the odometry says the robot is: onto the map (not
        without fresh odometry, nor while it is stuck).
        """
        if self.settings.exploration.enabled and self._odometry_usable(odom, odom_age):
            self.explorer.observe_scan(odom, scan)

    def observe_view(self, image_embedding, odom: Pose2D | None,
                     odom_age: float | None) -> None:
        """A camera frame's CLIP image embedding, taken at `odom`: how well the view matched
        the command goes onto the value map (nothing without a command's embedding). Several
        rows are view_tiles' crops, left to right, each matched along its own bearing.
        """
        command = self._command_embedding
        if command is None or not self.settings.exploration.enabled or (
                not self._odometry_usable(odom, odom_age)):
            return
        rows = np.asarray(image_embedding, np.float64)
        rows = rows.reshape(-1, command.shape[0]) if rows.size % command.shape[0] == 0 and (
            rows.size) else rows.reshape(1, -1)
        norms = np.linalg.norm(rows, axis=1)
        if rows.shape[1] != command.shape[0] or not np.all(norms > 0.0) or not np.all(
                np.isfinite(norms)):
            return
        bearings, spans = tile_bearings(len(rows), math.radians(self.settings.camera_hfov_deg))
        for similarity, bearing, span in zip(rows @ command / norms, bearings, spans):
            self.explorer.observe_view(Pose2D(odom.x, odom.y, odom.yaw + bearing),
                                       float(similarity), float(span))

    @property
    def refusal(self) -> str:
        """Why the last command was not understood ('' when it was)."""
        return self.policy.state.refusal

    def follow(self, intent, object_phrase: str, now: float, embedding=None) -> str:
        """An intent given, not recognised (the evaluator's oracle); `embedding`: the
        command's, if there is one (the value map compares views with it).
        """
        self._advance(now)
        self._steps = None
        return self._begin(embedding, ParsedCommand('', object_phrase, ''), intent)

    def follow_steps(self, command: str, intent, now: float) -> str:
        """A command's steps with their intent given (the oracle's, for every command step)."""
        self._advance(now)
        self._steps = None
        steps = command_steps(command, self.settings.command_verbs)
        if len(steps) == 1:
            return self._begin(None, ParsedCommand('', steps[0].object_phrase, '',
                                                   relation=steps[0].relation), intent)
        return self._start_steps(command, steps, intent)

    def tick(self, now: float, target: TargetView | None, target_age: float | None,
             camera_age: float | None, estop: bool = False, enabled: bool = True,
             clock_age: float | None = None, scan=None,
             scan_age: float | None = None,
             segmentation: Segmentation | None = None,
             scan_blind_ahead: bool = False, odom: Pose2D | None = None,
             odom_age: float | None = None) -> ControlOutput:
        """One control period. Ages are in seconds (None: never received). `clock_age`: how
        long `now` has not moved, when it is a clock that can stop (simulated time). `scan`:
        the newest laser scan's obstacle points in base_link ((N, 2), core.collision_monitor.Scan).
        `segmentation`: the one behind the target (it may have been tracked since; None: the
        target is its own segmentation); a target whose segmentation is older than
        segmentation_bound() is stale however new its frame. `scan_blind_ahead`: too few of
        the scan's beams ahead read (NaN): it may not see what is there, so no forward motion.
        `odom`: the newest odometry pose (odom frame), `odom_age` its age: while it is fresh, a
        go_to's target out of sight is carried by it and steered on for up to
        odometry_hold_s (core.policy); without, the goal moves with the commands sent.

        While an input the command needs is stale the policy's clock stands still: a search
        or a timed motion does not run out while the robot cannot act on it. Stale for
        `input_lost_s` (whatever else holds the robot meanwhile, an e-stop included), the
        command is given up ('stopped: input lost', final): the robot does not drive off on
        it when the input comes back, maybe much later.

        Every command passes the collision monitor after the safety limits; with a fresh scan
        a go_to goes around what stands between the robot and its target (core.avoidance).
        """
        jump = self._advance(now, paused=self._stale_held is not None)
        now = self._policy_now
        settings = self.settings
        run = self._steps
        if run is not None and segmentation is not None and segmentation.step not in (
                None, (run.index + 1, len(run.steps))):
            # Looked for in another step: the segmenter had not heard of this one.
            target, segmentation = None, replace(segmentation, alike=0)
        timeout = settings.input_timeout_s
        segmentation_fresh = segmentation is None or (
            segmentation.age <= self.segmentation_bound())
        target_fresh = (target is not None and target_age is not None and target_age <= timeout
                        and segmentation_fresh)
        camera_fresh = camera_age is not None and camera_age <= timeout
        scan_fresh = scan is not None and scan_age is not None and (
            scan_age <= settings.monitor.scan_timeout_s)
        points = scan if scan_fresh else None
        fresh_target = target if target_fresh else None
        odom_live = (odom is not None and odom_age is not None and odom_age <= timeout
                     and odom.is_finite())
        shown = self._odometry_motion(odom if odom_live else None, now - (odom_age or 0.0))
        odom_fresh = odom_live and not self.odometry_stuck
        if odom_fresh and shown is not None:
            self.avoidance.shift(*shown)
        if odom_fresh and camera_fresh and self.explorer.ready:  # what the camera looks at
            self.explorer.observe_camera(odom, math.radians(settings.camera_hfov_deg))
        # Once exploring, lost odometry or a map forgotten (a jump) holds the robot, not 'not
        # found'.
        self.policy.may_explore = (self.explorer.ready and odom_live) or (
            self.explorer.run.started is not None)
        if odom_fresh and run is not None and not run.ticked:
            run.home = (odom.x, odom.y)  # the command's first tick: it has not moved
        wanted = self.policy.step(now, fresh_target, segmentation,
                                  self._carried_x() if odom_fresh else None,
                                  drive_blind=points is not None,
                                  odometry_motion=self._measured_motion(
                                      odom if odom_fresh else None,
                                      self._last_now - odom_age if odom_fresh else 0.0))
        state, self._following = self.policy.state, None
        if self._recalled is not None and is_searching(wanted.status) and not (
                wanted.explore or state.tracking or state.seen_since is not None):
            wanted = self._go_back(wanted, odom if odom_fresh else None, now)
        if wanted.explore:
            wanted = self._explore(wanted, odom if odom_fresh else None, now)
        if self._steps is not None and self._steps.step.kind == 'return':
            wanted = self._come_back(wanted, odom if odom_fresh else None, now)
        self._see_goal(wanted, fresh_target, points)
        self._remember(odom if odom_fresh else None, now)
        wanted = self._approach_on_grid(wanted, odom if odom_fresh else None, now)
        linear, angular, status = self._avoid(wanted, points, now)
        moving = wanted.needs_target or wanted.needs_camera or wanted.needs_odometry
        odometry_missing = wanted.needs_odometry and not odom_fresh
        fresh = (not wanted.needs_target or target_fresh) and (
            not wanted.needs_camera or not settings.require_camera_for_motion
            or camera_fresh) and not odometry_missing
        self._scan_seen = self._scan_seen or scan is not None
        require = settings.monitor.require_scan
        scan_required = require == 'true' or (require == 'auto' and self._scan_seen)
        blind = scan_fresh and scan_blind_ahead and linear > 0.0
        scan_missing = moving and ((scan_required and not scan_fresh) or blind)
        dt = None if self._last_tick is None else now - self._last_tick
        self._last_tick = now
        clock_running = clock_age is None or clock_age <= timeout
        command = self.safety.filter(linear, angular, estop=estop, enabled=enabled,
                                     inputs_fresh=fresh and not scan_missing,
                                     clock_running=clock_running, dt=dt,
                                     stale_reason='scan unreadable ahead' if fresh and blind
                                     else 'stale odometry' if odometry_missing
                                     else self._stale_reason(fresh, segmentation_fresh,
                                                             require))
        checked = monitor(command.linear, command.angular, points, settings.monitor)
        # What was sent is where the next acceleration limit starts from.
        self.safety.linear, self.safety.angular = checked.linear, checked.angular
        self.policy.turned_at(now, checked.angular)  # a search counts the turn really made
        reason = command.stop_reason
        if not reason:
            self._free_s += self._last_step
        status = f'stopped: {reason}' if reason else self._obstacle_status(
            status, checked, command)
        if not reason and moving and scan is not None and not scan_fresh:
            status = f'{status} (scan stale: collision monitor off)'  # optional, and gone
        if fresh and not scan_missing:
            self._stale_held = None
        else:  # counted in the policy clock's steps: a jump of `now` neither adds nor hides
            self._stale_held = (0.0 if self._stale_held is None
                                else self._stale_held + self._last_step)
            if self._stale_held >= settings.input_lost_s:
                status = self.policy.give_up('stopped: input lost')
        if not odom_fresh:  # dead reckoning on what was sent; odometry carries it otherwise
            self.avoidance.move(checked.linear, checked.angular, self._last_step)
        if odom_live:  # stuck or not: a stuck odometry that shows motion again is trusted
            self._check_odometry(checked.linear, checked.angular, shown)
        if self._steps is not None:
            status = self._step_status(status)
        return ControlOutput(checked.linear, checked.angular, status, fresh_target, reason,
                             jump, checked.state, checked.free_m)

    @property
    def path_followed(self):
        """The path on the grid the last tick followed ((N, 2) in the odom frame), or None."""
        return self._following

    @property
    def wants_views(self) -> bool:
        """Whether image embeddings would be used now: a go_to or look_for looking for its
        target (not while it follows one), with the command's embedding to compare them with.
        """
        state = self.policy.state
        return (self._command_embedding is not None and self.settings.exploration.enabled
                and state.intent is not None and state.intent.behaviour in ('go_to', 'look_for')
                and not state.done and not state.tracking)

    def _odometry_usable(self, odom: Pose2D | None, odom_age: float | None) -> bool:
        return (odom is not None and odom_age is not None and odom.is_finite()
                and odom_age <= self.settings.input_timeout_s and not self.odometry_stuck)

    def _go_back(self, wanted, odom: Pose2D | None, now: float):
        """Towards where the thing was last confirmed, in place of the policy's search;
        there, a look all round (and, if it is not there, exploring, without that memory).
        """
        status = f'going to where the {self._recalled.thing} was seen'
        if odom is None:
            return replace(wanted, status=status, needs_odometry=True)
        self.policy.state.search_tick = None  # this is no turn of the search
        step = self.explorer.step_to_place(odom, self._free_s)
        self._following = self.explorer.run.path
        if step.reached:
            self._recalled, self._checking_place = None, True
            self.policy.look_around()
        linear, angular = self._as_asked(step.linear, step.angular)
        return replace(wanted, linear=linear, angular=angular, status=status,
                       needs_odometry=True)

    def _come_back(self, wanted, odom: Pose2D | None, now: float):
        """To where the command began: on a path on the grid where there is a map, else
        straight (the collision monitor stops it short of what is in the way).
        """
        run = self._steps
        if self.policy.state.done:
            return wanted  # ended (came back, blocked, input lost): held until a new command
        if run.home is None:  # no fresh odometry at the start, or it jumped since
            return replace(wanted, linear=0.0, angular=0.0, status=self.policy.give_up(
                f'{NOT_FOUND}: where the command began (its odometry was lost or jumped)'))
        if odom is None:
            return replace(wanted, status=COMING_BACK, needs_odometry=True)
        gap = math.hypot(run.home[0] - odom.x, run.home[1] - odom.y)
        if gap <= BACK_M:
            return replace(wanted, linear=0.0, angular=0.0, status=self.policy.give_up(
                f'done: came back ({gap:.2f} m from the start)'))
        if now - run.began >= BACK_TIMEOUT_S:
            return replace(wanted, linear=0.0, angular=0.0,
                           status=self.policy.give_up(BLOCKED))
        if self.explorer.ready and (run.path is None or now - run.path[1] >= (
                self.settings.exploration.replan_s)):
            run.path = (self.explorer.path_to_point(odom, run.home), now)
        path = None if run.path is None else run.path[0]
        if path is None or len(path) < 2:
            path = np.array([(odom.x, odom.y), run.home])
        self._following = path
        linear, angular = pursue(path, odom, self.settings.exploration)
        return replace(wanted, linear=linear, angular=angular, status=COMING_BACK,
                       needs_odometry=True)

    def _as_asked(self, linear: float, angular: float) -> tuple:
        """A path's speeds, slower for a command said 'slowly' (as the policy's own)."""
        if self.policy.state.manner == 'slow':
            fraction = self.settings.motion.slow_fraction
            return linear * fraction, angular * fraction
        return linear, angular

    def _remember(self, odom: Pose2D | None, now: float) -> None:
        """Keep where a tracked target in sight is, in the odom frame."""
        state, goal = self.policy.state, self.avoidance.goal
        if odom is None or goal is None or not state.tracking or state.last_seen_at != now or (
                not state.object_phrase) or math.hypot(*goal) > SIGHTING_RANGE_M or (
                self._which is not None):  # one of several: not 'the' red ball to go back to
            return
        self._recalled, self._checking_place = None, False
        self.sightings.record(Sighting(state.object_phrase, *_in_odom(odom, goal), now,
                                       state.last_seen.confidence))

    def _approach_on_grid(self, wanted, odom: Pose2D | None, now: float):
        """A go_to's target seen past a wall's end or through a doorway: once the reactive
        detour (core.avoidance) is stuck, and while the straight way there is not clear on the
        grid, a path on the grid.
        """
        state, goal = self.policy.state, self.avoidance.goal
        if odom is None or goal is None or not self.explorer.ready or not state.tracking or (
                not is_approaching(wanted.status)) or wanted.linear < 0.0:
            on_path = self._approach_path is not None and self._approach_path[0] is not None
            if on_path and not state.tracking:  # lost on the way: on to where it was seen
                self._recall()
            self._approach_path = None
            return wanted
        stuck = self._held_by_obstacle >= GRID_AFTER_HELD_S or (
            self._detoured_s >= GRID_AFTER_DETOURS_S) or (
            self.avoidance.detouring and self._detour_since is not None
            and now - self._detour_since >= GRID_AFTER_DETOUR_S)
        if self._approach_path is None and not stuck:
            return wanted
        point = _in_odom(odom, goal)
        if self.explorer.way_clear(odom, point, GOAL_SHORT_M):
            self._approach_path = None
            return wanted
        if self._approach_path is None or (
                now - self._approach_path[1] >= self.settings.exploration.replan_s):
            self._approach_path = (self.explorer.path_to_point(odom, point), now)
        path = self._approach_path[0]
        if path is None or len(path) < 2:
            return wanted
        linear, angular = self._as_asked(*pursue(path, odom, self.settings.exploration))
        self._following, thing = path, state.object_phrase or 'target'
        return replace(wanted, linear=linear, angular=angular,
                       status=f'approaching {thing} (on a path round an obstacle)')

    def _explore(self, wanted, odom: Pose2D | None, now: float):
        """The explorer's command in place of the policy's (held without fresh odometry:
        a path is followed on it).
        """
        if self._checking_place:  # it was not where it was seen: forget that place
            self.sightings.forget(self.policy.state.object_phrase)
            self._checking_place = False
        if odom is None:
            return replace(wanted, needs_odometry=True)
        step = self.explorer.step(odom, self._free_s)
        self._following = self.explorer.run.path
        if step.done:
            return replace(wanted, status=self.policy.give_up(step.done), explore=False,
                           needs_target=False)
        if step.reached:
            self.policy.look_around()
        linear, angular = self._as_asked(step.linear, step.angular)
        return replace(wanted, linear=linear, angular=angular, status=step.status,
                       needs_odometry=True)

    def segmentation_bound(self) -> float:
        """How old a target's segmentation may be: max_segmentation_age_s, or less where the
        segmenter has been seen to be fast (STALL_CYCLES of its cycle, at least
        MIN_STALL_S): a fast segmenter that stops leaves the robot on the tracker alone for
        about a second, not for the bound a slow one needs.
        """
        bound = self.settings.max_segmentation_age_s
        cycle = self.policy.segmentation_cycle
        if cycle > 0.0:
            bound = min(bound, max(STALL_CYCLES * cycle, MIN_STALL_S))
        return bound

    @staticmethod
    def _stale_reason(fresh: bool, segmentation_fresh: bool, require_scan: str) -> str:
        if fresh:  # the scan is what is missing
            return 'stale scan' if require_scan == 'true' else 'scan lost'
        return 'stale input' if segmentation_fresh else 'stale segmentation'

    def _bearing(self, view: TargetView) -> float:
        """The target's bearing in base_link (left > 0) from its image x (right > 0)."""
        return self._image_bearing(view.x)

    def _image_bearing(self, x: float) -> float:
        half_fov = math.radians(self.settings.camera_hfov_deg) / 2.0
        return -math.atan(x * math.tan(half_fov))

    def _span(self, view: TargetView) -> tuple | None:
        """(lowest, highest) bearing of the mask's sides, taken as even about its centroid
        (the box's left edge is not published); None when the width is not known.
        """
        if not view.width > 0.0:
            return None
        return (self._image_bearing(min(view.x + view.width, 1.0)),
                self._image_bearing(max(view.x - view.width, -1.0)))

    def _floor_range(self, view: TargetView) -> tuple | None:
        """(nearest, furthest) the target's lowest point can be ahead of base_link (forward x:
        an image row meets a flat floor along a line across the robot), from the camera's
        mount; None when the mount or the mask's lowest row is not known. The furthest is
        where the mask's lowest row meets the floor; a coarse or partial mask ends above the
        object's true lowest point, by up to camera_bottom_tolerance.
        """
        if not self.settings.camera_mount or not view.bottom > -1.0:
            return None
        lower = view.bottom + self.settings.camera_bottom_tolerance
        nearest = 0.0 if lower >= 1.0 else self._floor_distance(lower)
        return nearest, self._floor_distance(view.bottom)

    def _floor_distance(self, row: float) -> float:
        """How far from base_link an image row (1 = the bottom edge) meets the floor."""
        x, height, pitch = self.settings.camera_mount
        half_fov = math.radians(self.settings.camera_vfov_deg) / 2.0
        below = pitch + math.atan(row * math.tan(half_fov))
        if below <= math.radians(1.0):
            return FAR_M  # at or above the horizon: far
        return min(x + height / math.tan(below), FAR_M)

    def _going(self, wanted) -> bool:
        """Whether a go_to is under way (approaching or searching its target)."""
        state = self.policy.state
        going = is_approaching(wanted.status) or is_searching(wanted.status)
        return (state.intent is not None and state.intent.behaviour == 'go_to'
                and not state.done and going)

    def _see_goal(self, wanted, target: TargetView | None, points) -> None:
        """Place a go_to's target in base_link while it is tracked and in sight (a look_for's
        too: the memory of sightings keeps where it was found).
        """
        state = self.policy.state
        looking = state.intent is not None and state.intent.behaviour == 'look_for'
        if target is None or not target.visible or not state.tracking or not (
                self._going(wanted) or looking):
            return
        floor_range = self._floor_range(target)
        self._goal_from_camera = floor_range is not None
        self.avoidance.see_goal(self._bearing(target), points, floor_range,
                                origin_x=self.settings.camera_mount[0] if floor_range else 0.0,
                                span=self._span(target))

    def _odometry_motion(self, odom: Pose2D | None, received: float):
        """(forward, left, turn) the odometry shows since the last tick (None: stale, or no
        pose before); `received`: when its message came, on the policy's clock. A motion the
        base cannot make between two messages (twice its hard limits, and some slack; at a
        low odometry rate a message may follow the last by many ticks) is a reset or a jump
        of the odometry, not a motion: where the goal lies is then unknown, and it is
        forgotten.
        """
        shown = None
        if odom is not None and self._odom_pose is not None:
            before, then = self._odom_pose
            forward, left, turn = motion(before, odom)
            if self._possible(forward, left, turn, received - then):
                shown = (forward, left, turn)
            else:  # a jump: how the base moved is unknown, and with it where the goal is
                self.avoidance.forget_goal()
                self.forget_places()
        self._odom_pose = None if odom is None else (odom, received)
        return shown

    def forget_places(self) -> None:
        """The odometry's frame is not the one the map and the memory are in (it jumped, or
        changed its frame): both are forgotten, and where the command began; the goal, kept
        in base_link, is not.
        """
        self.explorer.forget_map()
        self.sightings = Sightings()
        self._recalled = self._approach_path = None
        self._checking_place = False
        self._odom_pose = self._measure_pose = None  # motions measure on from the next pose
        if self._steps is not None:  # where the command began is in the old frame
            self._steps.home = self._steps.path = None
        self.odometry_jumped = True

    def _possible(self, forward: float, left: float, turn: float, elapsed: float) -> bool:
        """Whether the base can make this motion in `elapsed` s (twice its hard limits, and
        some slack): else it is a reset or a jump of the odometry.
        """
        limits, elapsed = self.settings.limits, max(elapsed, 0.0)
        return (math.hypot(forward, left) <= 2.0 * limits.hard_max_linear_mps * elapsed
                + ODOM_SLACK_M and abs(turn) <= 2.0 * limits.hard_max_angular_rps * elapsed
                + ODOM_SLACK_RAD)

    def _measured_motion(self, odom: Pose2D | None, received: float):
        """(forward m, turn rad) for a measured motion since the last odometry message,
        however long ago (a turn made while the odometry was silent counts once it is back);
        None while it is not fresh. `received`: when this message came, on the caller's
        clock (a message read again adds nothing). A jump of the odometry counts nothing:
        it measures on from the new pose.
        """
        if odom is None:
            return None
        if self._measure_pose is None and received < self._instructed_at:
            return None  # from before the command: what the base did since is not known
        shown = (0.0, 0.0)
        if self._measure_pose is not None:
            before, then = self._measure_pose
            if received <= then:
                return shown  # the same message again
            forward, left, turn = motion(before, odom)
            if self._possible(forward, left, turn, received - then):
                shown = (forward, turn)
        self._measure_pose = (odom, received)
        return shown

    def _check_odometry(self, linear: float, angular: float, shown) -> None:
        """Count what was sent against what the odometry showed: each time ODOM_CHECK_M or
        ODOM_CHECK_RAD was sent, whether it showed at least ODOM_SHOWN of it. Two such
        windows in a row that did not (one pose repeated while the base moves; one window
        alone may be a slow start, or a base held downstream) make it stuck: the commands
        sent carry the goal. One window that did makes it trusted again.
        """
        check = self._odom_check
        check[0] += abs(linear) * self._last_step
        check[1] += abs(angular) * self._last_step
        if shown is not None:
            check[2] += math.hypot(shown[0], shown[1])
            check[3] += abs(shown[2])
        if check[0] < ODOM_CHECK_M and check[1] < ODOM_CHECK_RAD:
            return
        failed = (check[0] >= ODOM_CHECK_M and check[2] < ODOM_SHOWN * check[0]) or (
            check[1] >= ODOM_CHECK_RAD and check[3] < ODOM_SHOWN * check[1])
        self._odom_failures = self._odom_failures + 1 if failed else 0
        self.odometry_stuck = self._odom_failures >= ODOM_FAILED_WINDOWS
        self._odom_check = [0.0, 0.0, 0.0, 0.0]

    def _carried_x(self) -> float | None:
        """Where a go_to's goal now lies in the image's x (beyond +-1: out of view; behind the
        camera: the side's far edge, 2), or None without one (a look_for's goal is kept for
        the memory only: it turns to where it lost the thing, as without odometry).
        """
        goal, intent = self.avoidance.goal, self.policy.state.intent
        if goal is None or intent is None or intent.behaviour != 'go_to':
            return None
        origin = self.settings.camera_mount[0] if self.settings.camera_mount else 0.0
        bearing = math.atan2(goal[1], goal[0] - origin)
        half_fov = math.radians(self.settings.camera_hfov_deg) / 2.0
        if abs(bearing) >= math.pi / 2.0:
            return -math.copysign(2.0, bearing)
        return -math.tan(bearing) / math.tan(half_fov)

    def _avoid(self, wanted, points, now: float):
        """(linear, angular, status): the policy's wish, or a detour around what stands
        between the robot and the target of a go_to.
        """
        avoidance, state = self.avoidance, self.policy.state
        if self._approach_path is not None and self._approach_path[0] is not None:
            return wanted.linear, wanted.angular, wanted.status  # on a path on the grid
        if not self._going(wanted) or points is None or not avoidance.config.enabled:
            self._detour_since = None
            avoidance.detouring = False
            return wanted.linear, wanted.angular, wanted.status
        if avoidance.goal is None:
            return wanted.linear, wanted.angular, wanted.status
        clear = avoidance.path_clear(points)
        if avoidance.detouring and clear and abs(avoidance.goal_bearing()) < 0.35:
            avoidance.detouring, self._detour_since = False, None
            state.searching_since = None  # the search starts afresh after a detour
        elif not avoidance.detouring and not clear and is_approaching(wanted.status):
            avoidance.detouring, self._detour_since = True, now
            avoidance.side, avoidance.heading = 0.0, None
            self._detour_nearest = math.inf
        if avoidance.detouring:  # progress: the goal came nearer than ever on this detour
            distance = math.hypot(*avoidance.goal)
            if distance < self._detour_nearest - PROGRESS_M:
                self._detour_nearest, self._detour_since = distance, now
        if not avoidance.detouring:
            if is_searching(wanted.status):  # lost on the way: face where it was
                bearing = avoidance.goal_bearing()
                if abs(bearing) > FACING_RAD:
                    return 0.0, avoidance.turn_towards(bearing), wanted.status
                if self._goal_within_reach(points):
                    return 0.0, 0.0, self.policy.give_up('arrived')
                # Faced, and not in sight there: the policy's own search turns on from here.
                avoidance.forget_goal()
            return wanted.linear, wanted.angular, wanted.status
        state.searching_since = None  # a detour is no search: its own timeout applies
        self._detoured_s += self._last_step
        linear, angular, stuck = avoidance.steer(points, now)
        if stuck or now - self._detour_since >= avoidance.config.blocked_timeout_s:
            # no way, or no progress for that long
            return 0.0, 0.0, self.policy.give_up('blocked')
        thing = state.object_phrase or 'target'
        return linear, angular, f'approaching {thing} (going around an obstacle)'

    def _goal_within_reach(self, points) -> bool:
        """Whether what the scan shows at the goal (ranged by the camera when last seen) is
        in the collision monitor's stop zone straight ahead, where the robot faces: the
        target, too close now for the camera to see (under the view, or filling it).
        """
        goal, monitor_config = self.avoidance.goal, self.settings.monitor
        if not self._goal_from_camera or points is None or not points.size:
            return False
        at_goal = points[np.hypot(points[:, 0] - goal[0], points[:, 1] - goal[1])
                         <= self.avoidance.config.goal_radius_m]
        return travel_distance(at_goal, monitor_config.footprint) <= (
            monitor_config.stop_distance_m)

    def _obstacle_status(self, status: str, checked: MonitorResult, command) -> str:
        """The status with the collision monitor's part: slowed or stopped by an obstacle;
        'arrived' when what stops a go_to is its target; 'blocked' when held too long.
        """
        if checked.state not in ('slowdown', 'stop') or is_final(status):
            self._held_by_obstacle = 0.0
            return status
        if checked.state == 'slowdown':
            self._held_by_obstacle = 0.0
            return f'{status} (slowing for an obstacle)'
        state, avoidance = self.policy.state, self.avoidance
        going = state.intent is not None and state.intent.behaviour == 'go_to'
        # Only where the camera bounds the goal's distance (without, the goal is the nearest
        # return in its direction, maybe an obstacle in front) and the target is ahead.
        if going and state.tracking and avoidance.goal is not None and command.linear > 0 \
                and self._goal_from_camera and abs(avoidance.goal_bearing()) < 0.35:
            reach = self.settings.monitor.footprint.front(np.zeros(1))[0]
            if abs(math.hypot(*avoidance.goal) - (checked.free_m + reach)) <= (
                    avoidance.config.goal_radius_m):
                return self.policy.give_up('arrived')  # the target is what is in the way
        self._held_by_obstacle += self._last_step
        if self._held_by_obstacle >= self.settings.avoidance.blocked_timeout_s:
            return self.policy.give_up('blocked')
        return f'{status} (stopped by an obstacle)'

    def stop(self) -> None:
        """Forget the speed reached, so the next command starts from rest."""
        self.safety.reset()


def _in_odom(odom: Pose2D, point: tuple) -> tuple:
    """A point in base_link, where the robot stands at `odom`, in the odom frame."""
    cos_yaw, sin_yaw = math.cos(odom.yaw), math.sin(odom.yaw)
    return (odom.x + cos_yaw * point[0] - sin_yaw * point[1],
            odom.y + sin_yaw * point[0] + cos_yaw * point[1])


# What the segmenter's messages can hold (core.segmentation.Target); anything else is a
# faulty or hostile publisher's.
TARGET_RANGES = (('x', -1.0, 1.0), ('y', -1.0, 1.0), ('confidence', 0.0, 1.0))
EXTENT_RANGES = (('area', 0.0, 1.0), ('width', 0.0, 1.0), ('bottom', -1.0, 1.0))


def range_problem(numbers, ranges) -> str:
    """Why these numbers (in the order of `ranges`) cannot be a target's ('' when they can)."""
    for value, (name, low, high) in zip(numbers, ranges):
        if not math.isfinite(value):
            return f'its {name} is {value}'
        if not low <= value <= high:
            return f'its {name} {value:g} is outside [{low:g}, {high:g}]'
    return ''


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
