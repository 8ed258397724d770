"""From an instruction's embedding and the segmenter's target to a requested (v, w) and a status.

Intents are recognised zero-shot: the instruction's CLIP text embedding is compared (cosine)
with embeddings of example phrasings of each intent, made by the same text encoder. The best
intent is taken only when it is similar enough and ahead of the runner-up by a margin;
otherwise the robot stays still and says why. Everything here is plain Python: the node feeds
it and sends its output through the safety layer.
"""

from dataclasses import dataclass, field, replace
from functools import lru_cache
import math

import numpy as np

from vla_ros.core.motion import manner_note, Motion, motion_step, MotionConfig, plan_motion
from vla_ros.core.relations import ambiguity_status
from vla_ros.core.status import EXPLORING, NOT_FOUND
from vla_ros.core.text import parse_command, ParsedCommand, REVERSING_VERBS, verb_kind

BEHAVIOURS = ('stop', 'motion', 'go_to', 'look_for')
MAX_EMBEDDING_NORM = 1e3  # no CLIP embedding is longer (normalised 1, raw tens)
# Things alike seen again within this many segmentations are the same question; specks the
# verifier passes now and then, far apart in time, are not.
ALIKE_GAP = 2


@dataclass(frozen=True)
class Intent:
    """One thing a command can mean. `motion` intents run (linear, angular) for duration_s
    seconds (0 = until the next command); `go_to` and `look_for` use the target.
    """

    name: str
    behaviour: str
    phrases: tuple
    linear_mps: float = 0.0
    angular_rps: float = 0.0
    duration_s: float = 0.0

    def __post_init__(self):
        if self.behaviour not in BEHAVIOURS:
            raise ValueError(f"intent '{self.name}': behaviour '{self.behaviour}' is not one "
                             f'of {BEHAVIOURS}')
        if not self.phrases:
            raise ValueError(f"intent '{self.name}' needs at least one phrase")
        for key in ('linear_mps', 'angular_rps', 'duration_s'):
            if not math.isfinite(getattr(self, key)):
                raise ValueError(f"intent '{self.name}': {key} must be finite")
        if self.duration_s < 0:
            raise ValueError(f"intent '{self.name}': duration_s must be >= 0")


DEFAULT_INTENTS = (
    Intent('stop', 'stop', ('stop', 'halt', 'stop moving', 'freeze', 'stand still',
                            'do not move', "don't move", 'wait here', 'hold on', 'stop now')),
    Intent('move_forward', 'motion', ('move forward', 'go forward', 'drive forward',
                                      'go straight ahead', 'move ahead'),
           linear_mps=0.2, duration_s=3.0),
    Intent('move_backward', 'motion', ('move backward', 'go back', 'back up', 'reverse',
                                       'drive backwards'), linear_mps=-0.1, duration_s=2.0),
    Intent('turn_left', 'motion', ('turn left', 'rotate left', 'spin left', 'go left'),
           angular_rps=0.5, duration_s=3.0),
    Intent('turn_right', 'motion', ('turn right', 'rotate right', 'spin right', 'go right'),
           angular_rps=-0.5, duration_s=3.0),
    Intent('go_to', 'go_to', ('go to the object', 'drive to the thing', 'move to the object',
                              'approach the object', 'head to the item', 'go to it')),
    Intent('look_for', 'look_for', ('look for the object', 'find the thing',
                                    'search for the object', 'where is the item',
                                    'locate the object')),
)


@dataclass(frozen=True)
class IntentMatch:
    intent: Intent | None
    similarity: float
    margin: float
    reason: str  # why no intent was taken, '' when one was


class IntentClassifier:
    """Nearest intent by the best cosine similarity over its phrasings."""

    def __init__(self, intents, phrase_embeddings, min_similarity: float, min_margin: float):
        """`phrase_embeddings[i]` holds the (k_i, D) L2-normalised embeddings of intent i."""
        self.intents = tuple(intents)
        if len(phrase_embeddings) != len(self.intents):
            raise ValueError('one embedding block per intent is needed')
        self._blocks = [np.asarray(block, np.float32) for block in phrase_embeddings]
        self.dim = self._blocks[0].shape[1]
        self.min_similarity = min_similarity
        self.min_margin = min_margin

    @classmethod
    def from_encoder(cls, intents, encode_texts, min_similarity, min_margin):
        """Build with `encode_texts(list[str]) -> (N, D)`, the same encoder as the commands."""
        intents = tuple(intents)
        phrases = [phrase for intent in intents for phrase in intent.phrases]
        embeddings = np.asarray(encode_texts(phrases))
        blocks, start = [], 0
        for intent in intents:
            blocks.append(embeddings[start:start + len(intent.phrases)])
            start += len(intent.phrases)
        return cls(intents, blocks, min_similarity, min_margin)

    def scores(self, embedding) -> np.ndarray:
        vector = np.asarray(embedding, np.float32)
        return np.array([float(np.max(block @ vector)) for block in self._blocks])

    def embedding_problem(self, embedding) -> str:
        """Why a command's embedding cannot be compared with the intents ('' if it can): a
        command embedder on another model, NaN, zero, or not normalised nor raw CLIP.
        """
        vector = np.asarray(embedding, np.float32)
        if vector.shape != (self.dim,):
            return f"invalid embedding: {vector.size} values, this policy's model gives {self.dim}"
        if not np.all(np.isfinite(vector)):
            return 'invalid embedding: it holds NaN or infinity'
        norm = float(np.linalg.norm(vector.astype(np.float64)))  # 1e38s overflow float32
        if norm < 1e-6:
            return 'zero embedding'
        if norm > MAX_EMBEDDING_NORM:
            return (f"invalid embedding: its norm is {norm:.3g} (a CLIP embedding's is 1, "
                    'normalised, or tens, raw)')
        return ''

    def classify(self, embedding, behaviours=None, fits=None) -> IntentMatch:
        """The nearest intent; with `behaviours`, the nearest among the intents whose
        behaviour is one of them (what the command's grammar allows), the margin to the
        runner-up among those. When the grammar allows one behaviour only ("drive to the
        red ball" is a go_to), the similarity floor does not apply: the sentence has said
        what it asks, the embedding only picks among that behaviour's intents. `fits`: a
        further test an intent must pass (the directions a motion names).
        """
        problem = self.embedding_problem(embedding)
        if problem:
            return IntentMatch(None, 0.0, 0.0, problem)
        vector = np.asarray(embedding, np.float32)
        scores = self.scores(vector / float(np.linalg.norm(vector.astype(np.float64))))
        allowed = [index for index, intent in enumerate(self.intents)
                   if (behaviours is None or intent.behaviour in behaviours)
                   and (fits is None or fits(intent))]
        if not allowed:
            return IntentMatch(None, 0.0, 0.0, 'low confidence: no intent of this policy fits '
                               f"({', '.join(sorted(behaviours))})")
        order = sorted(allowed, key=lambda index: scores[index], reverse=True)
        best = float(scores[order[0]])
        margin = best - float(scores[order[1]]) if len(order) > 1 else math.inf  # no rival
        intent = self.intents[order[0]]
        said = behaviours is not None and len(behaviours) == 1
        if best < self.min_similarity and not said:
            return IntentMatch(None, best, margin,
                               f'low confidence: best {intent.name} {best:.2f} < '
                               f'{self.min_similarity:.2f}')
        if margin < self.min_margin:
            runner_up = self.intents[order[1]].name
            return IntentMatch(None, best, margin,
                               f'low confidence: {intent.name} vs {runner_up} margin '
                               f'{margin:.2f} < {self.min_margin:.2f}')
        return IntentMatch(intent, best, margin, '')


@dataclass(frozen=True)
class ServoConfig:
    turn_gain: float = 1.2  # rad/s per unit of normalised horizontal offset
    max_turn_rps: float = 0.8
    centred_tolerance: float = 0.3  # |x| below which the robot also drives forward
    approach_speed_mps: float = 0.25
    slow_area_fraction: float = 0.04  # start slowing down from this fraction of the image
    arrive_area_fraction: float = 0.5  # arrived when the target fills this much
    arrive_bottom: float = 0.7  # ... or reaches this low in the image (1 = bottom edge)
    arrive_confidence: float = 0.5  # ... while at least this confident
    arrive_min_area: float = 0.01  # ... and this large: a speck at the bottom edge is floor
    # ... or, once the tracked target was this large, when a frame shows it gone or shrunk
    # under near_shrink of that: an approached object only grows, so the camera is too close
    # to see it whole (a segmenter's mask breaks up there; seen in the simulator).
    near_area: float = 0.15
    near_shrink: float = 0.33
    min_approach_fraction: float = 0.25  # slowest approach, as a fraction of the speed
    search_speed_rps: float = 0.4
    search_direction: float = 1.0  # +1 turns left (counter-clockwise), -1 right
    # Not found after turning as far as search_speed_rps turns in this long.
    search_timeout_s: float = 20.0
    # The search turns at most this far in one segmentation cycle (a frame's wait for the
    # segmenter plus its time a segmentation): with a slow segmenter, a view turned past before
    # its segmentation came back would never be seen (the tracker cannot bring back what has
    # left the view), so the turn slows to it.
    search_sweep_rad: float = 1.0
    # An arrival seen on a tracked target waits at most this long for a segmentation of a
    # frame taken since the robot stopped.
    arrival_check_s: float = 10.0
    # While stopped to check an arrival, the target still counts as arrived this far short of
    # the thresholds (bottom row, and area fraction): a mask's edge moves by about this much
    # between segmentations, and with a slow segmenter each step on costs a whole cycle.
    arrival_margin: float = 0.05
    found_tolerance: float = 0.15  # look_for: |x| at which the target counts as found
    # Tracking: a segmenter's stray blob flickers from frame to frame, a real target persists.
    min_target_area: float = 0.0005  # smaller regions are not a target (noise)
    confirm_s: float = 0.25  # seen this long without a gap before the robot steers at it
    lost_hold_s: float = 1.0  # a tracked target unseen this long is lost: search again
    # ... or, while odometry carries where it was, this long if longer (0: not carried): the
    # robot turns towards it, and drives on no faster than its slowest approach where a
    # collision monitor watches, never arriving, until a frame shows it again.
    odometry_hold_s: float = 3.0


@dataclass(frozen=True)
class TargetView:
    """What the segmenter last saw: normalised centroid, confidence, area fraction, the
    lowest row (same coordinates as y; 1 = the bottom edge of the image) and the width as a
    fraction of the image's (0: not known).
    """

    x: float
    y: float
    confidence: float
    area: float
    bottom: float = -1.0
    width: float = 0.0

    @property
    def visible(self) -> bool:
        return self.confidence > 0.0 and math.isfinite(self.x) and math.isfinite(self.area)


@dataclass(frozen=True)
class Segmentation:
    """The segmentation behind a target (the tracker may have followed it since): its age in
    seconds on the caller's clock, and on the camera's clock the stamps of the target's own
    frame and of the frame that was segmented.
    """

    age: float
    frame_stamp: float
    segmented_stamp: float
    received: float | None = None  # when the target came (tells repeats of a stamp apart)
    step: tuple | None = None  # (i, n): the step of a command of several it was looked for in
    alike: int = 0  # things that fit the command alike in it (core.relations): say which


@dataclass
class PolicyState:
    intent: Intent | None = None
    object_phrase: str = ''
    started_at: float = 0.0
    searching_since: float | None = None
    seen_since: float | None = None  # start of the current unbroken run of sightings
    last_seen: TargetView | None = None  # the latest tracked sighting (kept to aim the search)
    last_seen_at: float = 0.0
    tracking: bool = False
    glimpse: TargetView | None = None  # the sighting being confirmed now, if any
    search_direction: float = 0.0  # the search's turn (+1 left, -1 right; 0: not chosen)
    glimpse_followed: bool = False  # a lost glimpse has chosen the search's direction
    turned_rad: float = 0.0  # how far the search has turned
    search_turn_rad: float | None = None  # how far this search turns (None: the config's)
    search_tick: tuple | None = None  # (time, turn rate) of the search's last tick
    arrival_look_from: float | None = None  # stopped to check an arrival: the newest
    # frame's stamp then; a segmentation of a later frame decides
    arrival_look_since: float = 0.0  # ... since when (policy time)
    arrival_segmented: float = 0.0  # ... and the segmented stamp behind the target then
    segmentations_seen: int = 0  # distinct segmentations behind the current sightings
    # Segmentations lately that saw things alike, the newest segmentation's stamp, and how
    # many since the last that saw them (more than ALIKE_GAP: the count starts again)
    alike_seen: tuple = (0, None, 0)
    last_segmented: tuple | None = None  # ... the newest one's stamps
    done: str = ''  # a terminal status (arrived, not found, done) until the next command
    motion: Motion | None = None  # a motion intent's speeds and amount (core.motion)
    manner: str = ''  # the command's manner: '', slow or fast
    manner_note: str = ''  # what the status says of it
    reason: str = 'idle'
    refusal: str = ''  # why the command was not understood ('' when it was)
    holding: bool = False  # a step held without an intent (waiting, coming back): hold()


@dataclass(frozen=True)
class PolicyOutput:
    linear: float
    angular: float
    status: str
    needs_target: bool = False  # the watchdog must see a fresh target stream
    needs_camera: bool = False  # the watchdog must see a fresh camera stream
    needs_odometry: bool = False  # the watchdog must see fresh odometry (a measured motion)
    explore: bool = False  # the search has turned all round: exploring (core.control) moves it


DIRECTION_SIGNS = {'left': ('angular', 1), 'right': ('angular', -1), 'forward': ('linear', 1),
                   'forwards': ('linear', 1), 'ahead': ('linear', 1), 'straight': ('linear', 1),
                   'back': ('linear', -1), 'backward': ('linear', -1),
                   'backwards': ('linear', -1), 'clockwise': ('angular', -1),
                   'counterclockwise': ('angular', 1), 'anticlockwise': ('angular', 1),
                   'around': ('angular', 0), 'round': ('angular', 0)}  # 0: either way


def _own_segmentation(segmentation: Segmentation) -> bool:
    """Whether the target is its own frame's segmentation (not followed since): each such
    target is a segmentation, even where a camera repeats its stamps.
    """
    return segmentation.segmented_stamp == segmentation.frame_stamp


@lru_cache(maxsize=64)
def _says_a_direction(phrases: tuple) -> bool:
    """Whether an intent's own phrasings name a direction ("turn left"): then a command
    must name one too before the robot makes that motion.
    """
    return any(parse_command(phrase).directions for phrase in phrases)


def _direction_problem(intent: Intent, directions) -> str:
    """Why a motion intent cannot be made for a command with these direction words ('' if
    it can): every word on an axis the motion uses must agree with it, and when the intent's
    phrasings name directions, the command must name one ("turn" alone: which way?).
    """
    if intent.behaviour in ('go_to', 'look_for'):
        turning = [word for word in directions if DIRECTION_SIGNS.get(word, ('', 0))[0]
                   == 'angular']
        return (f"'{turning[0]}' with a thing: which way to turn is not supported, the robot "
                'turns to the thing itself' if turning else '')
    if intent.behaviour != 'motion':
        return ''
    velocity = {'linear': intent.linear_mps, 'angular': intent.angular_rps}
    said = [(word, *DIRECTION_SIGNS[word]) for word in directions
            if word in DIRECTION_SIGNS and velocity[DIRECTION_SIGNS[word][0]] != 0.0]
    wrong = [word for word, axis, sign in said if velocity[axis] * sign < 0]
    if wrong:
        return f"{intent.name} contradicts '{' '.join(wrong)}'"
    unused = [word for word in directions
              if word in DIRECTION_SIGNS and velocity[DIRECTION_SIGNS[word][0]] == 0.0]
    if unused:  # "turn back around" heard as move_backward: the turn would be dropped
        return f"{intent.name} does not make '{' '.join(unused)}': one motion a command"
    if not said and _says_a_direction(intent.phrases):
        return f'{intent.name} needs a direction in the command (which way?)'
    return ''


def _verb_problem(intent: Intent, command: ParsedCommand) -> str:
    """Why the intent does not do what the command's verb says ('' when it does): a verb
    of turning or looking made a move ("turn back" heard as move_backward), a verb of
    reversing a go-to ("back up to the wall", "reverse to the red ball": it would drive
    forwards to it).
    """
    kind = verb_kind(command.verb)
    if intent.behaviour == 'motion' and kind in ('turn', 'find') and intent.angular_rps == 0.0:
        return f"'{command.verb}' turns; {intent.name} does not: say which way to turn"
    if intent.behaviour in ('go_to', 'look_for') and (
            command.verb in REVERSING_VERBS
            or {'backward', 'backwards'} & set(command.directions)):
        return f"'{command.verb}' to a thing: reversing to a thing is not supported"
    return ''


def turn_towards(x: float, config: ServoConfig) -> float:
    """The turn rate towards a horizontal image offset x (> 0: right, so clockwise)."""
    return max(-config.max_turn_rps, min(config.max_turn_rps, -config.turn_gain * x))


def servo(target: TargetView, config: ServoConfig, margin: float = 0.0):
    """(v, w, arrived) for a visible target: turn towards it, drive when centred, slow near.
    `margin`: how far short of the arrival thresholds still counts as arrived.
    """
    # The bottom-edge cue only when centred: a floor row is a distance straight ahead, so a
    # target at the image's side with its foot that low is further away.
    if target.area >= config.arrive_area_fraction - margin or (
            target.confidence >= config.arrive_confidence
            and target.bottom >= config.arrive_bottom - margin
            and target.area >= config.arrive_min_area
            and abs(target.x) <= config.centred_tolerance):
        return 0.0, 0.0, True
    angular = turn_towards(target.x, config)
    linear = 0.0
    if abs(target.x) <= config.centred_tolerance:
        # Full speed while small in view, linearly down to min_approach_fraction at arrival.
        span = max(config.arrive_area_fraction - config.slow_area_fraction, 1e-6)
        closeness = min(max((target.area - config.slow_area_fraction) / span, 0.0), 1.0)
        scale = 1.0 - (1.0 - config.min_approach_fraction) * closeness
        # Less forward speed the further off-centre, so the turn dominates.
        centring = 1.0 - abs(target.x) / max(config.centred_tolerance, 1e-6) * 0.5
        linear = config.approach_speed_mps * scale * centring
    return linear, angular, False


@dataclass
class ActionPolicy:
    """The decision of what to do each control period; time is passed in (seconds)."""

    classifier: IntentClassifier | None
    servo_config: ServoConfig = field(default_factory=ServoConfig)
    motion_config: MotionConfig = field(default_factory=MotionConfig)
    speed_limits: tuple = (0.5, 1.0)  # (m/s, rad/s) a fast motion runs at: the safety limits
    state: PolicyState = field(default_factory=PolicyState)
    # A search that has turned all round explores on (core.control sets it: a map to explore
    # on and odometry to follow it) instead of ending 'not found'.
    may_explore: bool = False
    # The segmenter's cycle (s), learnt from the targets' segmentation ages, across commands.
    _cycle: float = field(default=0.0, repr=False)
    _last_age: float | None = field(default=None, repr=False)
    _last_segmented: float | None = field(default=None, repr=False)

    def set_instruction(self, embedding, command: ParsedCommand, now: float) -> str:
        """A new command (its CLIP text embedding and what the grammar made of its text)
        replaces the old one at once. Returns the new status.

        The grammar refuses what is not a command of this robot and says which behaviours
        its structure allows; the embedding picks the intent among those. A negated command
        never does what it names: with a thing or a direction ("don't turn left") it is
        refused, a negated bare motion ("do not move") is a stop. A motion whose direction
        words contradict the intent the embedding chose, or that names none where the
        intent's phrasings do ("turn": which way?), is refused too.
        """
        self.state = PolicyState(object_phrase=command.object_phrase, started_at=now)
        self._last_age = None  # ages seen before this command say nothing of a cycle
        if not command.text:
            return self._refuse(command, command.problem or 'empty command')
        if command.problem:
            return self._refuse(command, command.problem)
        behaviours = command.behaviours
        if command.negated:
            if command.object_phrase or command.directions:
                return self._refuse(command, 'negated: a command not to do something is not '
                                    'done, nor anything else')
            behaviours = frozenset({'stop'})  # "do not move": at most a stop
        # A sentence that can only be a motion ("turn right 90 degrees and stop") picks
        # among the motions its direction words fit.
        fits = ((lambda intent: not _direction_problem(intent, command.directions))
                if behaviours == {'motion'} and command.directions else None)
        match = self.classifier.classify(embedding, behaviours, fits)
        if match.intent is None and fits is not None and match.reason.startswith(
                'low confidence: no intent'):
            return self._refuse(command, 'no motion of this policy makes '
                                f"'{' '.join(command.directions)}' (one motion a command)")
        if match.intent is None:
            if match.reason.startswith('low confidence'):
                return self._refuse(command, match.reason)
            self.state.reason = f'stopped: {match.reason}'
            return self.state.reason
        intent = match.intent
        direction = _direction_problem(intent, command.directions) or _verb_problem(
            intent, command)
        if direction:
            return self._refuse(command, direction)
        motion = None
        if intent.behaviour == 'motion':
            motion, problem = plan_motion(intent.linear_mps, intent.angular_rps,
                                          intent.duration_s, command.quantity, command.manner,
                                          self.motion_config, self.speed_limits)
            if problem:
                return self._refuse(command, problem)
        elif command.quantity is not None and intent.behaviour == 'stop':
            return self._refuse(command, f"'{command.quantity.words}' with a stop: a stop "
                                'lasts until the next command')
        elif command.quantity is not None:
            return self._refuse(command, f"'{command.quantity.words}' with a thing to go to or "
                                'look for: a distance, angle or time to a thing is not supported')
        status = self.follow(intent, command.object_phrase, now)
        self.state.motion, self.state.manner = motion, command.manner
        self.state.manner_note = manner_note(
            command.manner, self.motion_config,
            f'{self.speed_limits[0]:g} m/s and {self.speed_limits[1]:g} rad/s, the safety '
            'limits' if motion is not None
            else f'{self.servo_config.approach_speed_mps:g} m/s, approach_speed_mps')
        return status

    def refuse(self, command: ParsedCommand, why: str, now: float) -> str:
        """Refuse a command whole (one of its steps cannot be done); returns the status."""
        self.state = PolicyState(started_at=now)
        return self._refuse(command, why)

    def hold(self, status: str, now: float) -> str:
        """Hold still, saying `status`, until told otherwise (a step of waiting)."""
        self.state = PolicyState(started_at=now, reason=status, holding=True)
        return status

    def _refuse(self, command: ParsedCommand, why: str) -> str:
        quoted = command.quoted or ('(empty command)' if why == 'empty command'
                                    else '(no command text)')
        self.state.reason = f'not understood: {quoted}'
        self.state.refusal = why
        return self.state.reason

    def give_up(self, status: str) -> str:
        """End the current command with a final `status` (the robot stays still until the
        next command); returns the status now in force.
        """
        if (self.state.intent is not None or self.state.holding) and not self.state.done:
            self.state.done = status
        return self.state.done or self.state.reason

    def follow(self, intent: Intent, object_phrase: str, now: float) -> str:
        """Take an intent as given (the evaluator's oracle mode skips recognition)."""
        self._last_age = None  # ages seen before this command say nothing of a cycle
        self.state = PolicyState(intent=intent, object_phrase=object_phrase, started_at=now,
                                 reason='')
        if intent.behaviour == 'motion':
            self.state.motion = Motion(intent.linear_mps, intent.angular_rps, '',
                                       intent.duration_s, 0.0)
        return intent.name

    def step(self, now: float, target: TargetView | None,
             segmentation: Segmentation | None = None,
             carried_x: float | None = None, drive_blind: bool = False,
             odometry_motion: tuple | None = None) -> PolicyOutput:
        """One decision; `segmentation`: the one behind `target` (None: the target is its own
        segmentation, as fresh as its frame). `carried_x`: where the tracked target's last
        sighting now lies in the image (|x| > 1: out of view), carried by the odometry (None:
        no odometry); `drive_blind`: whether it may be driven to, not only turned to (a
        collision monitor watches the way). `odometry_motion`: (forward m, turn rad) fresh
        odometry showed since the last tick (None: no fresh odometry).
        """
        output = self._step(now, target, segmentation, carried_x, drive_blind, odometry_motion)
        state = self.state
        if state.manner == 'slow' and state.motion is None:  # a motion's speeds have it
            fraction = self.motion_config.slow_fraction
            output = replace(output, linear=output.linear * fraction,
                             angular=output.angular * fraction)
        if state.manner_note and not state.done and state.intent is not None and (
                output.needs_target or output.needs_camera or output.needs_odometry):
            output = replace(output, status=f'{output.status} ({state.manner_note})')
        return output

    def _step(self, now: float, target: TargetView | None, segmentation: Segmentation | None,
              carried_x: float | None, drive_blind: bool,
              odometry_motion: tuple | None) -> PolicyOutput:
        state, config = self.state, self.servo_config
        if state.search_tick is not None:  # the last tick turned to search: count that turn
            then, rate = state.search_tick
            state.turned_rad += rate * max(now - then, 0.0)
            state.search_tick = None  # a search tick sets it again
        intent = state.intent
        if state.done:
            return PolicyOutput(0.0, 0.0, state.done)
        if intent is None:
            return PolicyOutput(0.0, 0.0, state.reason)
        self._watch_segmentation(segmentation)
        if intent.behaviour == 'stop':
            return PolicyOutput(0.0, 0.0, 'stopped: stop command')
        if intent.behaviour == 'motion':
            return self._measured_motion(intent, now - state.started_at, odometry_motion)
        thing = state.object_phrase or 'target'
        self._count_alike(segmentation)
        if segmentation is not None and not state.tracking:
            held = self._alike(segmentation, thing)
            if held is not None:
                return held
        if intent.behaviour == 'go_to' and self._too_close_to_see(target):
            return self._arrive(now, segmentation, thing)
        carried = carried_x is not None and config.odometry_hold_s > 0.0
        target, in_sight = self._track(now, target, segmentation, carried)
        if target is not None and not in_sight:
            # Briefly out of sight: never arrive on it. With odometry, steer on to where it is
            # now, slowly; without, turn to where it was seen and do not drive blind.
            if not carried or intent.behaviour != 'go_to':
                return PolicyOutput(0.0, turn_towards(target.x, config),
                                    self._moving_status(thing), needs_target=True)
            linear, angular, _ = servo(replace(target, x=carried_x), config)
            slowest = config.approach_speed_mps * config.min_approach_fraction
            return PolicyOutput(min(linear, slowest) if drive_blind else 0.0, angular,
                                f'approaching {thing} (out of sight: on odometry)',
                                needs_target=True)
        if target is not None:
            state.searching_since = None
            if intent.behaviour == 'look_for':
                if abs(target.x) <= config.found_tolerance:
                    state.done = f'found {thing}'
                    return PolicyOutput(0.0, 0.0, state.done)
                _, angular, _ = servo(target, config)
                return PolicyOutput(0.0, angular, f'searching {thing}', needs_target=True)
            checking = state.arrival_look_from is not None  # stopped to check: hysteresis
            linear, angular, arrived = servo(target, config,
                                             config.arrival_margin if checking else 0.0)
            if arrived:
                return self._arrive(now, segmentation, thing)
            state.arrival_look_from = None
            return PolicyOutput(linear, angular, f'approaching {thing}', needs_target=True)
        if state.seen_since is not None:
            # A sighting being confirmed: hold still, not turn it out of view (with a slow
            # segmenter, turning away loses it for seconds).
            return PolicyOutput(0.0, 0.0, f'searching {thing}', needs_target=True)
        if state.searching_since is None:
            state.searching_since, state.turned_rad = now, 0.0
        turn = state.search_turn_rad or config.search_timeout_s * config.search_speed_rps
        if state.turned_rad >= turn:
            if self.may_explore:  # go_to and look_for: what is not here may be elsewhere
                return PolicyOutput(0.0, 0.0, EXPLORING, needs_target=True, explore=True)
            state.done = NOT_FOUND
            return PolicyOutput(0.0, 0.0, state.done)
        direction = state.search_direction or config.search_direction
        rate = self._search_rate()
        state.search_tick = (now, rate)
        return PolicyOutput(0.0, direction * rate, f'searching {thing}', needs_target=True)

    def _count_alike(self, segmentation: Segmentation | None) -> None:
        """Each new segmentation: how many lately saw things alike, and how many came since
        the last that did (more than ALIKE_GAP: the count starts again). Those while the
        robot follows one are no question (a look-alike on the way), only time between.
        """
        if segmentation is None:
            return
        state = self.state
        count, last, since = state.alike_seen
        key = (segmentation.segmented_stamp, segmentation.received
               if _own_segmentation(segmentation) else None)  # as _track counts them
        if key == last:
            return
        if segmentation.alike < 2 or state.tracking:
            since += 1
        else:
            count, since = (count if since <= ALIKE_GAP else 0) + 1, 0
        state.alike_seen = count, key, since

    def _alike(self, segmentation: Segmentation, thing: str) -> PolicyOutput | None:
        """Hold still while segmentations see several things that fit the command alike
        (two red balls, and no word of which), before the robot follows one: after two such
        segmentations no more than ALIKE_GAP apart, end the command saying so. None when the
        last segmentation saw no such thing.
        """
        state = self.state
        count = state.alike_seen[0]
        if segmentation.alike < 2:
            return None
        # A sighting being confirmed starts again: one of several seen alone between
        # segmentations that see both (the verifier's flicker) is no answer.
        state.seen_since, state.segmentations_seen, state.glimpse = None, 0, None
        if count >= 2:
            state.done = ambiguity_status(segmentation.alike, thing)
            return PolicyOutput(0.0, 0.0, state.done)
        return PolicyOutput(0.0, 0.0, f'searching {thing}', needs_target=True)

    def _measured_motion(self, intent: Intent, elapsed: float, shown) -> PolicyOutput:
        motion = self.state.motion
        linear, angular, ended = motion_step(motion, elapsed, shown)
        said = motion.words()
        if ended:
            self.state.done = {
                'ended': f'done: {intent.name}' + (f' {said}' if motion.kind else ''),
                'moved': f'moved {abs(motion.progress):.2f} m',
                'turned': f'turned {math.degrees(abs(motion.progress)):.0f}°',
                'short': (f'stopped short: {intent.name} made {abs(motion.progress):.2f} of {said}'
                          if motion.kind == 'distance' else
                          f'stopped short: {intent.name} made '
                          f'{math.degrees(abs(motion.progress)):.0f} of {said}')
                + ' in the time allowed'}[ended]
            return PolicyOutput(0.0, 0.0, self.state.done)
        measured = motion.kind in ('distance', 'angle')
        return PolicyOutput(linear, angular, f'{intent.name} {said}'.rstrip(),
                            needs_camera=True, needs_odometry=measured)

    def look_around(self) -> None:
        """Turn once all round where exploring has led, then explore on."""
        self.state.searching_since, self.state.turned_rad = None, 0.0
        self.state.search_turn_rad = 2.0 * math.pi

    def turned_at(self, now: float, angular: float) -> None:
        """The turn rate really sent after this tick's decision (limits, e-stop, monitor): a
        search counts that, not the rate it asked for.
        """
        if self.state.search_tick is not None:
            self.state.search_tick = (now, abs(angular))

    @property
    def segmentation_cycle(self) -> float:
        """The segmenter's last cycle (s): the age a segmentation reached before the next
        came (its period plus its time a segmentation); 0 while unknown.
        """
        return self._cycle

    def _watch_segmentation(self, segmentation: Segmentation | None) -> None:
        """Learn the segmenter's cycle while a command uses it (not across pauses): the age
        the last segmentation had reached when a new one came (not a jitter of arrivals).
        """
        if segmentation is None:
            return
        age = segmentation.age
        if self._last_age is not None and segmentation.segmented_stamp != self._last_segmented:
            self._cycle = self._last_age
        self._last_age, self._last_segmented = age, segmentation.segmented_stamp

    def _search_rate(self) -> float:
        """search_speed_rps, or slower, so that one segmentation cycle (the last one, or
        the segmentation's age now if longer) turns at most search_sweep_rad.
        """
        config = self.servo_config
        cycle = max(self._cycle, self._last_age or 0.0)
        if cycle <= 0.0:
            return config.search_speed_rps
        return min(config.search_speed_rps, config.search_sweep_rad / cycle)

    def _arrive(self, now: float, segmentation: Segmentation | None,
                thing: str) -> PolicyOutput:
        """'arrived', once a segmentation of a frame taken after the robot stopped agrees: a
        target followed by the tracker since an older segmentation (a far, coarse mask
        scaled up) may look arrived before it is. Meanwhile the robot holds still. Stamps,
        not ages: both are on the camera's clock, whatever clock the policy runs on.
        """
        state = self.state
        if segmentation is not None and not _own_segmentation(segmentation):
            if state.arrival_look_from is None:
                state.arrival_look_from = segmentation.frame_stamp
                state.arrival_segmented = segmentation.segmented_stamp
                state.arrival_look_since = now
            # Stamps that went back below the segmentation at the stop (a restarted camera
            # or segmenter) are news too; and the check ends after arrival_check_s whatever
            # comes (a segmenter that stopped deciding leaves the robot where it stands).
            waiting = state.arrival_segmented <= segmentation.segmented_stamp <= (
                state.arrival_look_from)
            if waiting and now - state.arrival_look_since < self.servo_config.arrival_check_s:
                return PolicyOutput(0.0, 0.0, f'approaching {thing} (checking arrival)',
                                    needs_target=True)
        state.done = 'arrived'
        return PolicyOutput(0.0, 0.0, state.done)

    def _moving_status(self, thing: str) -> str:
        verb = 'searching' if self.state.intent.behaviour == 'look_for' else 'approaching'
        return f'{verb} {thing}'

    def _too_close_to_see(self, target: TargetView | None) -> bool:
        """Whether a frame (None is no news, e.g. a stale stream) shows the large tracked
        target gone or broken up.
        """
        state, config = self.state, self.servo_config
        last = state.last_seen
        if target is None or not state.tracking or last.area < config.near_area:
            return False
        if not target.visible:
            return True
        # Shrunk where it was: a smaller region elsewhere is another sighting (a segmenter
        # that saw the target elsewhere after a tracked false detection), not the near one.
        # (The box's half width in image units is `width`; unknown width: anywhere.)
        in_place = not last.width > 0.0 or abs(target.x - last.x) <= last.width
        return in_place and target.area < config.near_shrink * last.area

    def _track(self, now: float, target: TargetView | None,
               segmentation: Segmentation | None = None, carried: bool = False):
        """(target to act on or None, whether it is in sight now). A sighting is acted on
        after `confirm_s` of unbroken sightings, which two segmentations saw (one
        segmentation's blob, followed by the tracker, is there on every frame of its cycle:
        time alone would confirm a single false detection); a tracked target is then held,
        as last seen, through gaps shorter than `lost_hold_s` (or `odometry_hold_s`, if
        longer, while odometry carries it).
        """
        state, config = self.state, self.servo_config
        seen = (target is not None and target.visible
                and target.area >= config.min_target_area)
        if seen:
            if state.seen_since is None:
                state.seen_since, state.segmentations_seen = now, 0
                state.last_segmented = None
            # A target that is its own segmentation is a new one each time one comes, even
            # where a camera repeats its stamps; the same message read again is not.
            key = None if segmentation is None else (
                segmentation.segmented_stamp, segmentation.received
                if _own_segmentation(segmentation) else None)
            if key is not None and key != state.last_segmented:  # one count per segmentation
                state.segmentations_seen += 1
                state.last_segmented = key
            enough = segmentation is None or state.segmentations_seen >= 2
            if state.tracking or (now - state.seen_since >= config.confirm_s and enough):
                state.tracking, state.last_seen, state.last_seen_at = True, target, now
                state.glimpse = None
                return target, True
            state.glimpse = target
            return None, False
        state.seen_since = None
        if state.glimpse is not None and not state.glimpse_followed and state.glimpse.x != 0.0:
            # A sighting lost before it was confirmed (with a slow segmenter, often one the
            # search turned out of view): the search turns back towards it, once a command.
            self._search_towards(state.glimpse)
            state.glimpse_followed = True
        state.glimpse = None
        hold = max(config.odometry_hold_s, config.lost_hold_s) if carried else (
            config.lost_hold_s)
        if state.tracking and now - state.last_seen_at < hold:
            return state.last_seen, False
        if state.tracking:
            self._search_towards(state.last_seen)  # where it went out of view
        state.tracking, state.arrival_look_from = False, None
        return None, False

    def _search_towards(self, view: TargetView) -> None:
        if view.x != 0.0:
            self.state.search_direction = -math.copysign(1.0, view.x)
