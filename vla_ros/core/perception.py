"""The perception pipeline: a command becomes a prompt, a camera frame becomes the target.

One object owns the segmenter, the fovea, the verifier and the memory of the last target, so
the scene_segmenter node, `vla-ros eval` and `vla-ros demo` run the same steps in the same
order. Commands arrive on one thread and frames on another (the node's worker): the prompt is
handed over under a lock, everything else belongs to the frame thread.
"""

from dataclasses import dataclass, field
import math
import re
import threading

import numpy as np

from vla_ros.core.policy import TargetView
from vla_ros.core.relations import ALIKE_MARGIN, instances, MIN_ALIKE_AREA, resolve
from vla_ros.core.segmentation import (
    continues,
    find_regions,
    follow,
    Fovea,
    judged_regions,
    mask_image,
    NOT_VISIBLE,
    region_of,
    resize_mask,
    Target,
)
from vla_ros.core.status import is_final, split_step
from vla_ros.core.steps import step_targets
from vla_ros.core.tracking import TargetTracker, Track
from vla_ros.core.verification import NOT

SOURCE_STEP = re.compile(r' for step (\d+)/(\d+)$')
SOURCE_ALIKE = re.compile(r', (\d+) alike\b')
# How far (image units) the one a relation chose may have moved between two segmentations.
FOLLOW_GATE = 0.3


@dataclass(frozen=True)
class PerceptionSettings:
    prompts: tuple = ()  # fixed prompts instead of the command's object; the first is the target
    command_verbs: tuple = ()  # the grammar's extra verbs (core.text)
    mask_threshold: float = 0.5
    fovea: Fovea | None = field(default_factory=Fovea)

    @classmethod
    def from_values(cls, values: dict) -> 'PerceptionSettings':
        """From the scene_segmenter's checked parameter values (core.config)."""
        return cls(prompts=_kept(values['prompts']),
                   command_verbs=_kept(values['command_verbs']),
                   mask_threshold=values['mask_threshold'],
                   fovea=Fovea(top=values['fovea_top']) if values['fovea'] else None)


def _kept(items) -> tuple:
    return tuple(item for item in items or () if item.strip())


@dataclass(frozen=True)
class Sight:
    """What one frame showed: the prompts asked, their probabilities (P, h, w) at the model's
    resolution, the target (the first prompt's chosen region) and the threshold used.
    """

    prompts: tuple
    probabilities: np.ndarray
    target: Target
    threshold: float  # the mask threshold the target was found with
    step: tuple | None = None  # (i, n): the step of a command of several it was looked for in
    # How many things fit the command alike (the target is then none: the robot asks
    # which); 0 when one was chosen or none is in view.
    alike: int = 0
    candidates: tuple = ()  # the instances of the thing asked for (core.relations)
    generation: int = 0  # Perception.generation when it was asked for

    @property
    def asked(self) -> tuple:
        """What it was a segmentation for: its prompts and Perception.generation (which
        changes with each command and each step's thing: a target of the last is no target
        of this).
        """
        return self.prompts, self.generation

    def region(self) -> np.ndarray | None:
        """The target's pixels (boolean, at the model's resolution): the connected region
        above the threshold that became the target (not others in its box, such as a
        refused look-alike); None when there is none.
        """
        if not self.target.visible:
            return None
        return region_of(self.probabilities[0], self.threshold, self.target)

    def labels(self, height: int, width: int) -> np.ndarray:
        """The mono8 label image (0 none, i + 1 prompt i) at a frame's size."""
        return resize_mask(mask_image(self.probabilities, self.threshold, 'mono8'), height,
                           width)


class Perception:
    """`command(text)` from any thread, `see(rgb)` on the frame thread."""

    def __init__(self, segmenter, settings: PerceptionSettings = PerceptionSettings(),
                 verifier=None, exact: bool = False):
        """`exact`: the segmenter's regions are the things named and nothing else (the
        simulator's ground truth), as good as verified: several are things alike.
        """
        self.segmenter, self.verifier = segmenter, verifier
        self.exact = exact
        self.settings = settings
        self.generation = 0  # counts what was asked: a new command, another step's thing
        self._lock = threading.Lock()
        self._command_object = ''
        self._relation = None  # which one of it (core.relations)
        self._step_targets = ()  # (object, relation) each step of the command looks for
        self._step = None  # (i, n): the step the policy's status names (None: one step)
        self._command_ended = False  # the policy has finished (or refused) the command
        self._looking_for = ()  # the prompts of the last frame (frame thread)
        self.previous = None  # the last frame's target, which find_target keeps following
        self.regions_checked = self.regions_refused = 0  # by the verifier
        self.frames_with_target = 0

    def configure(self, settings: PerceptionSettings) -> None:
        """Take new settings into use from the next frame (the fovea is not changed live)."""
        with self._lock:
            self.settings = settings

    def command(self, text: str) -> str:
        """Take a typed command; returns the object phrase its first step asks for ('' =
        nothing).
        """
        with self._lock:
            self._step_targets = step_targets(text, self.settings.command_verbs)
            self._command_object, self._relation = self._step_targets[0]
            self.generation += 1  # the same words again are a new question too
            count = len(self._step_targets)
            self._step = (1, count) if count > 1 else None
            self._command_ended = False
            return self._command_object

    def command_status(self, status: str) -> None:
        """The policy's status: once it has ended the command (arrived, not found, ...),
        the command's object is not looked for (no model time spent) until a new command or
        a status that is not final (a new command the policy took first). A command of
        several steps looks for the object of the step the status names (a status of a
        command with another number of steps is the previous command's).
        """
        index, count, _ = split_step(status)
        with self._lock:
            self._command_ended = is_final(status)
            if count == len(self._step_targets) and 1 <= index <= count:
                wanted = self._step_targets[index - 1]
                if wanted != (self._command_object, self._relation):
                    self.generation += 1
                self._command_object, self._relation = wanted
                self._step = (index, count)

    def prompts(self) -> tuple:
        return self.looking_for()[0]

    def looking_for(self) -> tuple:
        """(the prompts to segment, the step they are for: (i, n), None for one step), read
        together: a target is tagged with the step it was looked for in.
        """
        return self.wanted()[:2]

    def wanted(self) -> tuple:
        """looking_for's, the relation that picks one of the first prompt's things and the
        generation, read at once: the prompts are the thing and, for a relation to another
        ("next to the blue cube"), that other.
        """
        with self._lock:
            generation, step, relation = self.generation, self._step, self._relation
            if self.settings.prompts:
                return self.settings.prompts, step, None, generation
            if self._command_ended or not self._command_object:
                return (), step, None, generation
            if relation is not None and relation.anchor:
                return (self._command_object, relation.anchor), step, relation, generation
            return (self._command_object,), step, relation, generation

    def see(self, rgb: np.ndarray, now: float = None) -> Sight | None:
        """The target in one RGB frame (taken at `now`, seconds on any clock, if known);
        None while there is nothing to look for.
        """
        prompts, step, relation, generation = self.wanted()
        if not prompts:
            return None
        with self._lock:
            threshold, fovea = self.settings.mask_threshold, self.settings.fovea
            fixed = bool(self.settings.prompts)
        self.segmenter.set_prompts(prompts)  # encodes only when the prompts changed
        if (prompts, generation) != self._looking_for:
            self._looking_for, self.previous = (prompts, generation), None  # a new question
            if self.verifier is not None:
                self.verifier.set_prompt(prompts[0])
        probabilities = self.segmenter.probabilities(rgb, fovea)
        judge = None if self.verifier is None else lambda regions: self._verify(rgb, regions,
                                                                                  now)
        sure, nearly = judged_regions(probabilities[0], threshold, self.previous, judge)
        # Which one of several alike: beside a region the verifier calls the prompt, one it
        # nearly does is more of the same (a near crop cut by the image's edge, a far one a
        # few pixels wide): the things alike are both kinds, a lone target only a sure one.
        candidates, alike = (tuple(instances(nearly)) if sure else ()), 0
        # Things alike are told apart by a verifier (or exact masks): CLIPSeg alone lights
        # every thing of the colour named. Fixed prompts ask nothing.
        telling = (self.verifier is not None or self.exact) and not fixed
        following = self.previous is not None and self.previous.visible
        sizable = [candidate for candidate in candidates if candidate.area >= MIN_ALIKE_AREA]
        if relation is None and telling and len(sizable) > 1:
            # Whenever they are in view, not only at first: the verifier's verdicts on a far
            # one flicker, and a command that named one of several was not understood. The
            # one followed stays the target (the policy no longer asks once it follows one).
            alike = len(sizable)
            self.previous = follow(sure, self.previous) if following else NOT_VISIBLE
        elif relation is None:
            self.previous = follow(sure, self.previous)
        elif following:
            # The thing a relation chose in an earlier frame, followed: left and right change
            # as the robot turns. Only where it is: out of view, another of its kind is not it.
            chosen = follow(nearly, self.previous, may_switch=False)
            self.previous = chosen if chosen.visible and (
                continues(chosen, self.previous) or math.hypot(
                    chosen.x - self.previous.x, chosen.y - self.previous.y) <= FOLLOW_GATE) \
                else NOT_VISIBLE
        else:
            anchors = instances(find_regions(probabilities[1], threshold)) if (
                relation is not None and relation.anchor) else []
            resolution = resolve(sizable or list(candidates), relation, anchors)
            self.previous, alike = resolution.chosen or NOT_VISIBLE, resolution.alike
        self.frames_with_target += self.previous.confidence > 0.0
        return Sight(prompts, probabilities, self.previous, threshold, step, alike, candidates,
                     generation)

    def _verify(self, rgb, regions, now=None):
        verdicts = self.verifier.judge(rgb, regions, now, ALIKE_MARGIN)
        self.regions_checked += len(verdicts)
        self.regions_refused += verdicts.count(NOT)
        return verdicts


class TrackedPerception:
    """Detect slow, track fast: the segmentation (Perception: CLIPSeg and the verifier) runs
    at the segmenter's rate on the newest frame, the tracker (core.tracking) on every camera
    frame in between.

    `segment(rgb)` is the slow part (the segmentation worker), `deliver(sight, stamp, rgb)`
    hands its result over when it is done (the node: at once; the evaluator: after the
    modelled latency), `frame(rgb, stamp)` runs on every camera frame (the tracking thread)
    and returns the target on that frame. A delivered segmentation replaces the track at the
    next frame, brought forward from the frame it ran on. With `tracking` off, a target is
    only what a segmentation found on its own frame.
    """

    def __init__(self, perception: Perception, tracker: TargetTracker | None = None):
        self.perception, self.tracker = perception, tracker
        self._lock = threading.Lock()
        self._delivered = None  # (sight, stamp, rgb, epoch) not yet taken by the frame thread
        self._following = ()  # the prompts the track is of (frame thread)
        self._newest = None  # the track's target on the newest frame (None: not visible)
        self.step = None  # the step the last frame's target was looked for in (frame thread)
        self.alike = 0  # the last segmentation's things alike (Sight.alike; frame thread)

    @property
    def tracking(self) -> bool:
        return self.tracker is not None

    def prompts(self) -> tuple:
        return self.perception.prompts()

    @property
    def epoch(self) -> int:
        """The tracker's frame history generation: read it before segmenting a frame and
        deliver with it (a segmentation of a frame from before a restart is dropped).
        """
        return 0 if self.tracker is None else self.tracker.epoch

    def segment(self, rgb: np.ndarray, now: float = None) -> Sight | None:
        """Segment a frame (the newest): the region followed so far is the one to continue
        (core.segmentation.find_target), where the tracker has it now, not where the last
        segmentation saw it seconds ago.
        """
        if self.tracking:
            with self._lock:
                self.perception.previous = self._newest
        return self.perception.see(rgb, now)

    def deliver(self, sight: Sight, stamp: float, rgb: np.ndarray, epoch: int = 0) -> None:
        with self._lock:
            self._delivered = (sight, stamp, rgb, epoch)

    def frame(self, rgb: np.ndarray, stamp: float) -> Track | None:
        """The target on this frame (None: nothing to look for, or no segmentation of the
        current command yet; a Track whose target is not visible: nothing there).
        """
        with self._lock:
            delivered, self._delivered = self._delivered, None
        prompts, self.step, _, generation = self.perception.wanted()
        asked = prompts, generation
        if not self.tracking:
            if delivered is None or delivered[0].asked != asked:
                return None
            sight, segmented_stamp, _, _ = delivered
            self.step, self.alike = sight.step, sight.alike
            return Track(sight.target, segmented_stamp, False, 1.0, segmented_stamp)
        if asked != self._following:  # a new command: the old track is of something else
            self._following, self.alike = asked, 0
            self.tracker.reset('a new command')
        track = self.tracker.frame(rgb, stamp)  # first: it may restart the history
        if delivered is not None and delivered[0].asked == asked and (
                delivered[3] == self.tracker.epoch):
            sight, segmented_stamp, segmented_rgb, _ = delivered
            self.alike = sight.alike
            track = self.tracker.segmented(sight.target, sight.region(), segmented_stamp,
                                           segmented_rgb)
        with self._lock:
            self._newest = track.target if track is not None and track.target.visible \
                else None
        return track if prompts else None


def target_view(target: Target) -> TargetView:
    """What the policy needs of a target (the fields the node's messages carry)."""
    return TargetView(target.x, target.y, target.confidence, target.area, bottom=target.bottom,
                      width=target.width)


def source_label(tracked: bool, step: tuple | None, alike: int = 0) -> str:
    """A target's source as target_source says it: 'segmented' or 'tracked'; when its
    segmentation saw things that fit the command alike, how many ('segmented, 2 alike': the
    target is none then); and for a command of several steps the step it was looked for in
    ('tracked for step 2/3').
    """
    label = 'tracked' if tracked else 'segmented'
    if alike >= 2:
        label += f', {alike} alike'
    return label if step is None else f'{label} for step {step[0]}/{step[1]}'


def alike_of_source(label: str) -> int:
    """How many things alike a target_source label says its segmentation saw (0: none)."""
    match = SOURCE_ALIKE.search(label)
    return 0 if match is None else int(match[1])


def step_of_source(label: str) -> tuple | None:
    """The step a target_source label names ((i, n); None: none, a command of one step)."""
    match = SOURCE_STEP.search(label)
    return None if match is None else (int(match[1]), int(match[2]))
