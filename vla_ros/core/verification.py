"""A second opinion on CLIPSeg's regions from the camera CLIP, before the robot acts on them.

CLIPSeg on the small embedded models lights up the right colour on the wrong shape and patches
of wall; asked about a crop of each region, the CLIP names the right colour x shape far more
reliably (`vla-ros eval-models` on new scenes; benchmarks/README.md has the figures). A region
is kept when the prompt is the best match of its crop among the prompt and a list of contrast
phrases: the things the robot could confuse it with.

Frames of a camera stream repeat most of what the last one showed. A region continuing one
refused in the last frame is refused again without a crop, until `recheck_frames` frames
have passed or it has grown `recheck_growth` times (the robot came closer): a look-alike
in view through a search turn costs one check in five instead of one a frame. (The accepted
side is find_target's: it keeps following the region it chose.)
"""

from dataclasses import dataclass

import numpy as np

from vla_ros.core.segmentation import continues, crop_region, Target

SURE, NEARLY, NOT = 2, 1, 0  # judge()'s verdicts


@dataclass(frozen=True)
class VerifierConfig:
    contrasts: tuple = ()  # what a target could be confused with; at least one
    template: str = 'a {}'
    padding: float = 0.2  # of the box's longer side, each side (0.1-0.35 alike, 1.0 worse)
    max_regions: int = 3  # the largest ones; each costs one CLIP image embedding
    # Smaller regions are refused unseen: the policy ignores them (its min_target_area), and
    # they were half of the crops checked in the simulator's episodes.
    min_area: float = 0.0005
    recheck_frames: int = 5  # 0: every region is checked in every frame (independent views)
    recheck_growth: float = 2.0
    # ... and only between frames this close in time (s): a slow segmenter's next frame is a
    # new view, where a region refused once would otherwise stay refused for many seconds.
    recheck_within_s: float = 1.0


@dataclass(frozen=True)
class _Refusal:
    region: Target  # where it is now
    checked_area: float  # its area when it was last checked
    frames: int  # since that check


class TargetVerifier:
    """`accept(rgb, regions)` for `find_target`: which regions the CLIP calls the prompt."""

    def __init__(self, encoder, config: VerifierConfig):
        if not config.contrasts:
            raise ValueError('the verifier needs at least one contrast phrase')
        self.encoder, self.config = encoder, config
        self.prompt = None
        self._texts = None
        self._refused = []  # the last frame's refusals, to carry over
        self._last_time = None  # when accept() last looked (the caller's clock)

    def set_prompt(self, phrase: str):
        """Encode the prompt and its contrasts (only when the prompt changed)."""
        phrase = ' '.join(phrase.lower().split())
        if phrase == self.prompt:
            return
        others = [text for text in self.config.contrasts if text.lower() != phrase]
        texts = [self.config.template.format(text) for text in [phrase] + others]
        self._texts = self.encoder.encode_texts(texts)
        self.prompt = phrase
        self._refused = []

    def scores(self, crops) -> np.ndarray:
        """Per crop: the prompt's similarity minus the best contrast's (> 0: the prompt wins)."""
        if self._texts is None:
            raise RuntimeError('set_prompt() must be called before verifying')
        similarity = self.encoder.encode_images(crops, frames=False) @ self._texts.T
        return similarity[:, 0] - similarity[:, 1:].max(axis=1)

    def accept(self, rgb: np.ndarray, regions, now: float = None) -> list:
        """One bool per region (largest first), for consecutive frames of one stream; call it
        on every frame (with [] when nothing is in view), since refusals carry over to the
        next call. Refused unseen: regions under min_area, those continuing a recent refusal,
        and those past max_regions. `now` (seconds, any clock): refusals older than
        recheck_within_s are not carried over.
        """
        return [verdict == SURE for verdict in self.judge(rgb, regions, now)]

    def judge(self, rgb: np.ndarray, regions, now: float = None, margin: float = 0.0) -> list:
        """accept()'s, in three: SURE (the prompt wins), NEARLY (it loses to the best
        contrast by less than `margin`: more of the same beside a sure one, core.relations)
        or NOT (refused; carried over as accept() says).
        """
        if now is not None:
            if self._last_time is not None and not (
                    0.0 <= now - self._last_time <= self.config.recheck_within_s):
                self._refused = []
            self._last_time = now
        verdicts = [NOT] * len(regions)
        refused, to_check = [], []
        for index, region in enumerate(regions):
            if region.area < self.config.min_area:
                continue
            known = self._recent_refusal(region)
            if known is not None:
                refused.append(_Refusal(region, known.checked_area, known.frames + 1))
            elif len(to_check) < self.config.max_regions:
                to_check.append(index)
        if to_check:
            crops = [crop_region(rgb, regions[index], self.config.padding) for index in to_check]
            for index, score in zip(to_check, self.scores(crops)):
                verdicts[index] = SURE if score > 0 else NEARLY if score > -margin else NOT
                if verdicts[index] == NOT:
                    refused.append(_Refusal(regions[index], regions[index].area, 0))
        self._refused = refused
        return verdicts

    def _recent_refusal(self, region: Target):
        for refusal in self._refused:
            if (refusal.frames + 1 < self.config.recheck_frames
                    and region.area < self.config.recheck_growth * refusal.checked_area
                    and continues(region, refusal.region)):
                return refusal
        return None
