"""A second opinion on CLIPSeg's regions from the camera CLIP, before the robot acts on them.

CLIPSeg on the small embedded models lights up the right colour on the wrong shape and patches
of wall; asked about a crop of each region, the CLIP names the right colour x shape far more
reliably (`vla-ros eval-models` on new scenes: a look-alike prompt gets a target in 4.8 % of
views instead of 100 %, the named object still in 99.4 %; the README has the table). A region
is kept when the prompt is the best match of its crop among the prompt and a list of contrast
phrases: the things the robot could confuse it with.
"""

from dataclasses import dataclass

import numpy as np

from vla_ros.core.scene import COLOURS, SHAPES
from vla_ros.core.segmentation import crop_region


def default_contrasts() -> tuple:
    """Every colour x shape of the simulator world, which the embedded models know."""
    return tuple(f'{colour} {shape}' for colour in COLOURS for shape in SHAPES)


@dataclass(frozen=True)
class VerifierConfig:
    contrasts: tuple = default_contrasts()
    template: str = 'a {}'
    padding: float = 0.2  # of the box's longer side, each side (0.1-0.35 alike, 1.0 worse)
    max_regions: int = 3  # the largest ones; each costs one CLIP image embedding
    # Smaller regions are refused unseen: the policy ignores them (its min_target_area), and
    # they were half of the crops checked in the simulator's episodes.
    min_area: float = 0.0005


class TargetVerifier:
    """`accept(rgb, regions)` for `find_target`: which regions the CLIP calls the prompt."""

    def __init__(self, encoder, config: VerifierConfig = VerifierConfig()):
        if not config.contrasts:
            raise ValueError('the verifier needs at least one contrast phrase')
        self.encoder, self.config = encoder, config
        self.prompt = None
        self._texts = None

    def set_prompt(self, phrase: str):
        """Encode the prompt and its contrasts (only when the prompt changed)."""
        phrase = ' '.join(phrase.lower().split())
        if phrase == self.prompt:
            return
        others = [text for text in self.config.contrasts if text.lower() != phrase]
        texts = [self.config.template.format(text) for text in [phrase] + others]
        self._texts = self.encoder.encode_texts(texts)
        self.prompt = phrase

    def scores(self, crops) -> np.ndarray:
        """Per crop: the prompt's similarity minus the best contrast's (> 0: the prompt wins)."""
        if self._texts is None:
            raise RuntimeError('set_prompt() must be called before verifying')
        similarity = self.encoder.encode_images(crops) @ self._texts.T
        return similarity[:, 0] - similarity[:, 1:].max(axis=1)

    def accept(self, rgb: np.ndarray, regions) -> list:
        """One bool per region (largest first); those past max_regions or under min_area are
        refused unseen.
        """
        checked = [region for region in regions
                   if region.area >= self.config.min_area][:self.config.max_regions]
        if not checked:
            return [False] * len(regions)
        crops = [crop_region(rgb, region, self.config.padding) for region in checked]
        verdicts = [bool(score > 0) for score in self.scores(crops)]
        # Regions come largest first, so the checked ones are the first len(checked).
        return verdicts + [False] * (len(regions) - len(checked))
