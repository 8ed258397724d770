"""From CLIPSeg probabilities to what the robot uses: a target point, a mask image, an overlay."""

from dataclasses import dataclass

import cv2
import numpy as np

MASK_ENCODINGS = ('mono8', '32FC1')


@dataclass(frozen=True)
class Target:
    """Where the prompt's object is in the image.

    x, y: centroid in normalised image coordinates, x in [-1, 1] to the right, y in [-1, 1]
    downwards, (0, 0) the image centre. confidence: the mean probability over the object's
    region, 0 when nothing passes the threshold (then x = y = 0). area: the region's fraction
    of the image, which grows as the robot gets closer; width: its bounding box width as a
    fraction of the image width; bottom: its lowest row in the same coordinates as y (1 = the
    image's bottom edge). For things on the floor seen by a forward camera, bottom is a
    distance cue that hardly depends on the object's size. left, top: the bounding box's other
    corner, in the same coordinates (its right edge is left + 2 * width).
    """

    x: float
    y: float
    confidence: float
    area: float
    width: float = 0.0
    bottom: float = 0.0
    left: float = 0.0
    top: float = 0.0

    @property
    def visible(self) -> bool:
        return self.confidence > 0.0


NOT_VISIBLE = Target(0.0, 0.0, 0.0, 0.0, 0.0, 0.0)


SWITCH_AREA_RATIO = 3.0  # another region must be this much larger to take over a tracked one
# A region continuing the accepted target is asked again once it is this much larger: a
# speck the verifier passed does not vouch for a look-alike around it.
CONTINUE_GROWTH = 3.0


def find_regions(probability: np.ndarray, threshold: float) -> list:
    """Every connected region above `threshold` as a Target, largest first."""
    if probability.ndim != 2 or probability.size == 0:
        raise ValueError(f'expected an HxW probability map, got shape {probability.shape}')
    above = np.ascontiguousarray(probability >= threshold, dtype=np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(above, connectivity=8)
    height, width = probability.shape
    # Per-region weighted sums in one pass over the pixels above the threshold (this runs on
    # every frame, and a segmenter's noise can make dozens of regions). Pixel centres map to
    # (-1, 1): column c -> (2c + 1) / width - 1.
    rows, cols = np.nonzero(labels)
    owners = labels[rows, cols]
    weights = probability[rows, cols].astype(np.float64)

    def weighted_sum(values):
        return np.bincount(owners, weights * values, minlength=count)
    mass = weighted_sum(1.0)
    sum_x = weighted_sum((2.0 * cols + 1.0) / width - 1.0)
    sum_y = weighted_sum((2.0 * rows + 1.0) / height - 1.0)
    regions = []
    for region in 1 + np.argsort(-stats[1:, cv2.CC_STAT_AREA], kind='stable'):
        left, top, box_width, box_height, area = stats[region]
        regions.append(Target(
            x=float(sum_x[region] / mass[region]), y=float(sum_y[region] / mass[region]),
            confidence=float(mass[region] / area), area=area / probability.size,
            width=box_width / width, bottom=2.0 * (top + box_height) / height - 1.0,
            left=2.0 * left / width - 1.0, top=2.0 * top / height - 1.0))
    return regions


def region_of(probability: np.ndarray, threshold: float, target: Target) -> np.ndarray:
    """The pixels of the connected region above `threshold` whose box is `target`'s (as
    find_regions measures it): a boolean HxW mask.
    """
    above = np.ascontiguousarray(probability >= threshold, dtype=np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(above, connectivity=8)
    if count <= 1:
        return np.zeros(probability.shape, bool)
    height, width = probability.shape
    left = 2.0 * stats[1:, cv2.CC_STAT_LEFT] / width - 1.0
    top = 2.0 * stats[1:, cv2.CC_STAT_TOP] / height - 1.0
    box_width = stats[1:, cv2.CC_STAT_WIDTH] / width
    bottom = 2.0 * (stats[1:, cv2.CC_STAT_TOP] + stats[1:, cv2.CC_STAT_HEIGHT]) / height - 1.0
    mismatch = (np.abs(left - target.left) + np.abs(top - target.top)
                + np.abs(box_width - target.width) + np.abs(bottom - target.bottom))
    return labels == 1 + int(np.argmin(mismatch))


def pixel_at(x: float, y: float, height: int, width: int):
    """(row, column) of the pixel under normalised image point (x, y)."""
    return (min(max(int((y + 1) * height / 2), 0), height - 1),
            min(max(int((x + 1) * width / 2), 0), width - 1))


def find_target(probability: np.ndarray, threshold: float, previous: Target = None,
                accept=None) -> Target:
    """One connected region above `threshold`: its weighted centroid and confidence.

    Taking one connected region (not all pixels above the threshold) keeps two separate
    look-alikes from pulling the centroid into the empty space between them. Which region:
    the largest, or, given the `previous` frame's target, the region nearest to it unless
    another is SWITCH_AREA_RATIO times larger: with two similar regions in view the largest
    one alternates from frame to frame as the view shifts, and a robot turning towards each
    in turn never turns at all (seen in the simulator).

    `accept`, if given, is asked about the regions (largest first; on every frame, with an
    empty list when there is nothing to ask) and returns one bool each: only accepted ones
    can be chosen. A region that continues `previous` (one holds the other's centroid in its
    box) and is under CONTINUE_GROWTH times its area is not asked again: `previous` was
    accepted, and the check of a near object's crop, cut off by the image edges, flickers
    (seen in the simulator).
    """
    return follow(accepted_regions(probability, threshold, previous, accept), previous)


def accepted_regions(probability: np.ndarray, threshold: float, previous: Target = None,
                     accept=None) -> list:
    """The regions above `threshold` (largest first) that `accept` accepts, or that continue
    `previous` (find_target says which and why).
    """
    judge = None if accept is None else (
        lambda regions: [2 if verdict else 0 for verdict in accept(regions)])
    return judged_regions(probability, threshold, previous, judge)[0]


def judged_regions(probability: np.ndarray, threshold: float, previous: Target = None,
                   judge=None) -> tuple:
    """(sure, alike): the regions above `threshold` (largest first) that `judge` (a
    TargetVerifier's, three verdicts: 2 sure, 1 nearly, 0 not) calls the prompt, or that
    continue `previous` (as accepted_regions); and those it calls the prompt or nearly so.
    """
    regions = find_regions(probability, threshold)
    if judge is None:
        return regions, regions
    continuing = [continues(region, previous)
                  and region.area < CONTINUE_GROWTH * previous.area for region in regions]
    verdicts = iter(judge([region for region, known in zip(regions, continuing) if not known]))
    levels = [2 if known else next(verdicts) for known in continuing]
    return ([region for region, level in zip(regions, levels) if level == 2],
            [region for region, level in zip(regions, levels) if level >= 1])


def follow(regions: list, previous: Target = None, may_switch: bool = True) -> Target:
    """Of `regions` (largest first), the one nearest to the `previous` target, or the largest
    where there is no previous or (`may_switch`) it is SWITCH_AREA_RATIO times larger.
    """
    if not regions:
        return NOT_VISIBLE
    chosen = regions[0]
    if previous is not None and previous.visible:
        nearest = min(regions, key=lambda r: np.hypot(r.x - previous.x, r.y - previous.y))
        if not may_switch or chosen.area < SWITCH_AREA_RATIO * nearest.area:
            chosen = nearest
    return chosen


def _inside(x: float, y: float, box: Target) -> bool:
    return box.left <= x <= box.left + 2 * box.width and box.top <= y <= box.bottom


def continues(region: Target, previous: Target) -> bool:
    """Whether `region` is `previous` one frame on: either holds the other's centroid in its
    bounding box.
    """
    return previous is not None and previous.visible and (
        _inside(previous.x, previous.y, region) or _inside(region.x, region.y, previous))


def crop_region(rgb: np.ndarray, target: Target, padding: float, min_side: int = 16):
    """The square around `target`'s bounding box, `padding` times its longer side added on
    each side, edge pixels repeated where it leaves the image: what a classifier of the region
    sees (object, a little of its surroundings, its shape's outline).
    """
    height, width = rgb.shape[:2]
    left, right = (target.left + 1) * width / 2, (target.left + 2 * target.width + 1) * width / 2
    top, bottom = (target.top + 1) * height / 2, (target.bottom + 1) * height / 2
    side = max(int(round(max(right - left, bottom - top) * (1 + 2 * padding))), min_side)
    x0 = int(round((left + right - side) / 2))
    y0 = int(round((top + bottom - side) / 2))
    padded = cv2.copyMakeBorder(rgb, side, side, side, side, cv2.BORDER_REPLICATE)
    return np.ascontiguousarray(padded[y0 + side:y0 + 2 * side, x0 + side:x0 + 2 * side])


@dataclass(frozen=True)
class Fovea:
    """A second look at the middle of the view at twice the resolution.

    Far objects are a few pixels wide once a frame is shrunk to a small model's input (a
    white cylinder 4 m away covers 0.3 % of a 160x120 view, under half a 96 px model's patch)
    and CLIPSeg barely sees them; in a window half the frame's width and height, resized to
    the same input, they are four times larger. The window is centred horizontally, where a
    searching robot sweeps everything and a steering one keeps its target; `top` (a fraction
    of the image height) places it over the far floor. Cost: one more image in the batch.
    """

    top: float = 0.125

    def __post_init__(self):
        if not 0.0 <= self.top <= 0.5:
            raise ValueError(f'fovea top must be in [0, 0.5] of the image height, got {self.top}')

    def crop(self, rgb: np.ndarray) -> np.ndarray:
        """The window: half the width and height of `rgb`, centred horizontally."""
        height, width = rgb.shape[:2]
        top, left = int(round(self.top * height)), int(round(0.25 * width))
        return np.ascontiguousarray(rgb[top:top + height // 2, left:left + width // 2])

    def merge(self, whole: np.ndarray, zoomed: np.ndarray) -> np.ndarray:
        """(P, 2h, 2w) probabilities: `whole` (P, h, w) upsampled, with the window's own
        (P, h, w) in its place wherever it is the more confident of the two.
        """
        _, height, width = whole.shape
        if zoomed.shape != whole.shape:
            raise ValueError(f'whole {whole.shape} and zoomed {zoomed.shape} must match')
        merged = np.stack([resize_mask(plane, 2 * height, 2 * width) for plane in whole])
        top, left = int(round(self.top * 2 * height)), width // 2
        window = merged[:, top:top + height, left:left + width]
        np.maximum(window, zoomed, out=window)
        return merged


def mask_image(probabilities: np.ndarray, threshold: float, encoding: str) -> np.ndarray:
    """The mask to publish for P prompts' probabilities (P, H, W).

    mono8: a label image, 0 = nothing, i + 1 = prompt i (the most probable prompt among those
    above the threshold). 32FC1: each pixel's highest probability over the prompts.
    """
    if encoding not in MASK_ENCODINGS:
        raise ValueError(f"mask encoding '{encoding}' is not one of {MASK_ENCODINGS}")
    if probabilities.ndim != 3 or probabilities.shape[0] > 254:
        raise ValueError(f'expected (P <= 254, H, W) probabilities, got {probabilities.shape}')
    if encoding == '32FC1':
        return probabilities.max(axis=0).astype(np.float32)
    best = probabilities.argmax(axis=0)
    passed = probabilities.max(axis=0) >= threshold
    return np.where(passed, best + 1, 0).astype(np.uint8)


def resize_mask(mask: np.ndarray, height: int, width: int) -> np.ndarray:
    """A mask at the camera frame's size: labels by nearest neighbour, probabilities bilinear."""
    if mask.shape == (height, width):
        return mask
    interpolation = cv2.INTER_NEAREST if mask.dtype == np.uint8 else cv2.INTER_LINEAR
    return cv2.resize(mask, (width, height), interpolation=interpolation)


# Distinct tints per prompt (RGB), cycled when there are more prompts.
TINTS = np.array([(255, 40, 40), (40, 200, 255), (60, 230, 60), (255, 200, 0),
                  (230, 80, 255), (255, 140, 60)], np.float32)


def render_overlay(rgb: np.ndarray, labels: np.ndarray, prompts, target: Target,
                   alpha: float = 0.5, candidates=()) -> np.ndarray:
    """The frame with each prompt's region tinted, the prompts written, a box round each of
    the `candidates` (the things alike that a relation chose among, core.relations) and the
    target marked.
    """
    overlay = rgb.astype(np.float32)
    for index in range(len(prompts)):
        region = labels == index + 1
        overlay[region] = (1 - alpha) * overlay[region] + alpha * TINTS[index % len(TINTS)]
    overlay = overlay.astype(np.uint8)
    height, width = rgb.shape[:2]
    scale = max(0.7, min(width, height) / 480.0)
    for index, prompt in enumerate(prompts):
        colour = tuple(int(c) for c in TINTS[index % len(TINTS)])
        origin = (8, int(24 * scale * (index + 1)))
        cv2.putText(overlay, prompt, origin, cv2.FONT_HERSHEY_SIMPLEX, 0.7 * scale, (0, 0, 0),
                    max(2, int(4 * scale)), cv2.LINE_AA)
        cv2.putText(overlay, prompt, origin, cv2.FONT_HERSHEY_SIMPLEX, 0.7 * scale, colour,
                    max(1, int(2 * scale)), cv2.LINE_AA)
    for candidate in candidates if len(candidates) > 1 else ():
        corner = (int((candidate.left + 1) * width / 2), int((candidate.top + 1) * height / 2))
        far = (int((candidate.left + 2 * candidate.width + 1) * width / 2),
               int((candidate.bottom + 1) * height / 2))
        cv2.rectangle(overlay, corner, far, (255, 255, 255), max(1, int(scale)))
    if target.visible:
        centre = (int((target.x + 1) * width / 2), int((target.y + 1) * height / 2))
        cv2.drawMarker(overlay, centre, (255, 255, 255), cv2.MARKER_CROSS,
                       max(8, int(20 * scale)), max(1, int(2 * scale)))
    return overlay
