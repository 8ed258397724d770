"""Following the target between segmentations: optical flow on the segmented region.

A segmentation (CLIPSeg, then the verifier) starts a track; the tracker then follows the
region from camera frame to frame with pyramidal Lucas-Kanade flow on corner features inside
it, a few milliseconds a frame, until its evidence ends: too few features left (the target
left the view, or something passed in front of it and took them), or the region's centre
outside the image. A region too small or too plain to have features (a far object a few
pixels wide) is followed by matching its patch instead (position only, no scale), until the
patch no longer matches. It never starts a target by itself.

A segmentation arrives late (the model was busy for a second or more): it was computed on a
frame the tracker has already seen, so the tracker keeps the recent frames and brings the
segmented region forward through them to the newest one before it replaces the track.

Frames are shrunk to at most `max_side` pixels for the flow; everything the caller sees is
in the normalised image coordinates of core.segmentation.Target.
"""

from collections import deque
from dataclasses import dataclass, replace

import cv2
import numpy as np

from vla_ros.core.segmentation import NOT_VISIBLE, Target

# Lucas-Kanade: a 15 px window over 3 pyramid levels follows ~60 px a frame at 320 px.
LK_WINDOW = (15, 15)
LK_LEVELS = 3
LK_CRITERIA = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 20, 0.03)


@dataclass(frozen=True)
class TrackerSettings:
    max_side: int = 320  # frames are shrunk to this longer side for the flow
    max_features: int = 80
    min_features: int = 4  # fewer left: the track ends
    min_kept: float = 0.35  # ... or fewer than this fraction of the features it started with
    max_flow_error_px: float = 1.0  # forward-backward disagreement that drops a feature
    # Frames kept to bring a late segmentation forward: this long (s; keep it above the
    # policy's max_segmentation_age_s), and at most this many (memory, time to catch up).
    history_s: float = 8.0
    history_frames: int = 400
    min_match: float = 0.7  # a featureless region's patch must correlate this well
    search_px: int = 12  # ... within this many pixels of where it was (at max_side)

    def __post_init__(self):
        if self.max_side < 32:
            raise ValueError(f'tracker max_side must be at least 32 px, got {self.max_side}')
        if not 0.0 < self.min_kept <= 1.0:
            raise ValueError(f'tracker min_kept must be in (0, 1], got {self.min_kept}')
        if self.min_features < 3 or self.max_features < self.min_features:
            raise ValueError('tracker features: need 3 <= min_features <= max_features')


@dataclass(frozen=True)
class Track:
    """The target on a frame: where it is, the stamp of the frame the segmentation behind it
    ran on, and whether that frame was itself segmented or the region followed to it.
    confidence: the tracker's own, the share of the segmentation's features still followed
    (1 on a segmented frame). stamp: the frame the target is on. Stamps are whatever the
    caller orders frames by (seconds, or integer nanoseconds: exact).
    """

    target: Target
    segmented_stamp: float
    tracked: bool
    confidence: float
    stamp: float = None


class TargetTracker:
    """`frame(rgb, stamp)` on every camera frame, `segmented(...)` when a segmentation of one
    of them is done; one thread calls both.
    """

    def __init__(self, settings: TrackerSettings = TrackerSettings(),
                 stamps_per_second: float = 1.0):
        """`stamps_per_second`: the unit of the stamps given (1e9: integer nanoseconds)."""
        self.settings = settings
        self._history = settings.history_s * stamps_per_second
        self._frames = deque(maxlen=settings.history_frames)  # (stamp, grey), oldest first
        self._points = None  # (N, 1, 2) float32 features on the newest frame
        self._patch = None  # a featureless region's patch (grey, with some floor around)
        self._match = 0.0  # how well the patch matched on the newest frame
        self._started_with = 0
        self._target = None  # the region's box and centroid on the newest frame
        self._segmented_stamp = None
        self._tracked = False
        self.frames_tracked = 0
        self.tracks_lost = 0
        self.reason = 'no segmentation yet'  # why there is no track ('' while there is one)
        # Counts restarts of the frame history (stamps that went back, another frame size):
        # a segmentation of a frame from before one says nothing of the frames after it.
        self.epoch = 0

    def reset(self, reason: str = 'no segmentation yet') -> None:
        """Forget the track (a new command: another thing to look for); frames are kept."""
        self._points, self._target, self._segmented_stamp = None, None, None
        self._patch = None
        self.reason = reason

    @property
    def track(self) -> Track | None:
        if self._target is None and self._segmented_stamp is None:
            return None
        target = NOT_VISIBLE if self._target is None else self._target
        if self._patch is not None:
            confidence = self._match
        else:
            confidence = 0.0 if self._points is None else len(self._points) / max(
                self._started_with, 1)
        stamp = self._frames[-1][0] if self._frames else self._segmented_stamp
        return Track(target, self._segmented_stamp, self._tracked, min(confidence, 1.0),
                     stamp)

    def frame(self, rgb: np.ndarray, stamp: float) -> Track | None:
        """Follow the track onto a new camera frame. A repeated stamp (a frozen camera) is
        ignored; a stamp older than the newest (a restarted driver, a bag played again) or
        another frame size restarts the history, and nothing is said of the target (not
        even "not visible") until a segmentation of the new frames. None until a
        segmentation has come.
        """
        if self._frames and stamp == self._frames[-1][0]:
            return self.track
        grey = self._grey(rgb)
        if self._frames and stamp < self._frames[-1][0]:
            self._restart("the camera's stamps went back: waiting for a segmentation of the "
                          'new frames')
        elif self._frames and grey.shape != self._frames[-1][1].shape:
            self._restart('the frame size changed: waiting for a segmentation at the new size')
        previous = self._frames[-1][1] if self._frames else None
        self._frames.append((stamp, grey))
        while self._frames and self._frames[0][0] < stamp - self._history:
            self._frames.popleft()
        if self._target is not None and previous is not None:
            self._follow(previous, grey)
            self._tracked = True
            self.frames_tracked += 1
        return self.track

    def segmented(self, target: Target, region: np.ndarray, stamp: float,
                  rgb: np.ndarray = None) -> Track | None:
        """A segmentation of the frame stamped `stamp` (`rgb`: that frame, for when the
        tracker never saw it): `target` and its region (a boolean HxW mask at any
        resolution; None when nothing was found). It replaces the track, brought forward
        through the frames seen since; a segmentation that finds nothing ends the track.
        """
        grey = None if rgb is None else self._grey(rgb)
        if grey is not None and self._frames and grey.shape != self._frames[-1][1].shape:
            return self.track  # of a frame size no longer seen: says nothing of this view
        index = self._frame_index(stamp, grey)
        self._segmented_stamp, self._tracked = stamp, False
        if index is None:
            self._end('the segmented frame is no longer held (older than the frame history)')
            return self.track
        if not target.visible or region is None:
            self._end('the segmentation found nothing')
            return self.track
        grey = self._frames[index][1]
        self._target, self._patch, self._match = target, None, 1.0
        self._points = self._features(grey, region, target)
        self._started_with = 0 if self._points is None else len(self._points)
        if self._points is None:
            self._patch = _patch(grey, target)
            if self._patch is None:
                # Plain all over (a plain object on a plain floor): nothing to follow it
                # by; it is good for its own frame only.
                if index != len(self._frames) - 1:
                    self._end('the segmented region has nothing to follow it by')
                else:
                    self.reason = 'the segmented region has nothing to follow it by'
                return self.track
        self.reason = ''
        for later in range(index + 1, len(self._frames)):
            self._follow(self._frames[later - 1][1], self._frames[later][1])
            self._tracked = True
            if self._target is None:
                break
        return self.track

    # ---------------------------------------------------------------------------------
    def _frame_index(self, stamp: float, grey: np.ndarray = None):
        """Where the frame stamped `stamp` is in the history (put there from `grey`, that
        frame, when it is missing and newer than the oldest held), or None.
        """
        stamps = [held for held, _ in self._frames]
        if stamp in stamps:
            return len(stamps) - 1 - stamps[::-1].index(stamp)
        if grey is None or (stamps and stamp < stamps[-1] - self._history) or (
                stamps and stamp < stamps[0] and len(stamps) == self._frames.maxlen):
            return None
        index = sum(held < stamp for held in stamps)
        if len(self._frames) == self._frames.maxlen:
            self._frames.popleft()
            index = max(index - 1, 0)
        self._frames.insert(index, (stamp, grey))
        return index

    def _grey(self, rgb: np.ndarray) -> np.ndarray:
        grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        height, width = grey.shape
        scale = self.settings.max_side / max(height, width)
        if scale < 1.0:
            grey = cv2.resize(grey, (max(int(round(width * scale)), 1),
                                     max(int(round(height * scale)), 1)),
                              interpolation=cv2.INTER_AREA)
        return grey

    def _features(self, grey: np.ndarray, region: np.ndarray, target: Target):
        """Corners inside the region (grown by a few pixels: a plain object's corners are
        on its outline), or None when there are too few.
        """
        height, width = grey.shape
        mask = cv2.resize(region.astype(np.uint8), (width, height),
                          interpolation=cv2.INTER_NEAREST)
        mask = cv2.dilate(mask, np.ones((5, 5), np.uint8))
        points = cv2.goodFeaturesToTrack(grey, self.settings.max_features, qualityLevel=0.01,
                                         minDistance=3, mask=mask, blockSize=5)
        if points is None or len(points) < self.settings.min_features:
            return None
        return points.astype(np.float32)

    def _follow(self, previous: np.ndarray, grey: np.ndarray) -> None:
        """Move the features and the region from `previous` to `grey`, or end the track."""
        if self._target is None:
            return
        if self._patch is not None:
            self._follow_patch(grey)
            return
        points = self._points
        if points is None or len(points) < self.settings.min_features:
            self._end('too few features to follow')
            return
        ahead, status, _ = cv2.calcOpticalFlowPyrLK(previous, grey, points, None,
                                                    winSize=LK_WINDOW, maxLevel=LK_LEVELS,
                                                    criteria=LK_CRITERIA)
        back, status_back, _ = cv2.calcOpticalFlowPyrLK(grey, previous, ahead, None,
                                                        winSize=LK_WINDOW, maxLevel=LK_LEVELS,
                                                        criteria=LK_CRITERIA)
        height, width = grey.shape
        error = np.linalg.norm((back - points).reshape(-1, 2), axis=1)
        inside = ((ahead[:, 0, 0] >= 0) & (ahead[:, 0, 0] < width)
                  & (ahead[:, 0, 1] >= 0) & (ahead[:, 0, 1] < height))
        good = ((status.ravel() == 1) & (status_back.ravel() == 1) & inside
                & (error <= self.settings.max_flow_error_px))
        kept = int(good.sum())
        if kept < self.settings.min_features or kept < self.settings.min_kept * (
                self._started_with):
            self._end(f'features lost ({kept} of {self._started_with} left: out of view, '
                      'covered or blurred)')
            return
        before, after = points[good, 0], ahead[good, 0]
        shift = np.median(after - before, axis=0)
        scale = _median_scale(before, after)
        # Motion that disagrees with the features' consensus: on something else (an
        # occluder, the background) or drifting; dropped.
        predicted = (before - before.mean(axis=0)) * scale + before.mean(axis=0) + shift
        agree = np.linalg.norm(after - predicted, axis=1) <= max(
            2.0 * self.settings.max_flow_error_px, 0.02 * max(width, height))
        if agree.sum() < self.settings.min_features:
            self._end('the features no longer move together')
            return
        self._points = after[agree].reshape(-1, 1, 2)
        self._target = _moved(self._target, shift * 2.0 / np.array([width, height]), scale)
        if not (-1.0 <= self._target.x <= 1.0 and -1.0 <= self._target.y <= 1.0):
            self._end('the target left the view')

    def _follow_patch(self, grey: np.ndarray) -> None:
        """Move a featureless region to where its patch matches best nearby, or end it."""
        patch, (height, width) = self._patch, grey.shape
        box_left, box_top = _corner(self._target, width, height)
        reach = self.settings.search_px
        x0, y0 = max(box_left - reach, 0), max(box_top - reach, 0)
        x1 = min(box_left + patch.shape[1] + reach, width)
        y1 = min(box_top + patch.shape[0] + reach, height)
        window = grey[y0:y1, x0:x1]
        if window.shape[0] < patch.shape[0] or window.shape[1] < patch.shape[1]:
            self._end('the target left the view')
            return
        scores = cv2.matchTemplate(window, patch, cv2.TM_CCOEFF_NORMED)
        _, best, _, (found_x, found_y) = cv2.minMaxLoc(scores)
        self._match = float(best) if np.isfinite(best) else 0.0
        if self._match < self.settings.min_match:
            self._end(f'the region no longer looks as segmented (match {self._match:.2f}: '
                      'covered, out of view or changed)')
            return
        shift = np.array([x0 + found_x - box_left, y0 + found_y - box_top], np.float64)
        self._target = _moved(self._target, shift * 2.0 / np.array([width, height]), 1.0)
        if not (-1.0 <= self._target.x <= 1.0 and -1.0 <= self._target.y <= 1.0):
            self._end('the target left the view')

    def _restart(self, reason: str) -> None:
        self._frames.clear()
        if self._target is not None:
            self.tracks_lost += 1
        self.epoch += 1
        self.reset(reason)

    def _end(self, reason: str) -> None:
        if self._target is not None:
            self.tracks_lost += 1
        self._target, self._points, self._patch, self.reason = None, None, None, reason


PATCH_MARGIN = 0.25  # of the box's size, added on each side: its outline against the floor


def _patch(grey: np.ndarray, target: Target):
    """The grey patch over a target's box with a margin, or None when it is (nearly) plain."""
    height, width = grey.shape
    left, top = _corner(target, width, height)
    right = int(round((target.left + 2 * target.width + 1) * width / 2 + _margin(target, width,
                                                                                   height)))
    bottom = int(round((target.bottom + 1) * height / 2 + _margin(target, width, height)))
    left, top = max(left, 0), max(top, 0)
    right, bottom = min(max(right, left + 3), width), min(max(bottom, top + 3), height)
    patch = grey[top:bottom, left:right]
    if patch.shape[0] < 3 or patch.shape[1] < 3 or float(patch.std()) < 2.0:
        return None
    return np.ascontiguousarray(patch)


def _margin(target: Target, width: int, height: int) -> float:
    box = max(target.width * width, (target.bottom - target.top) * height / 2)
    return max(PATCH_MARGIN * box, 2.0)


def _corner(target: Target, width: int, height: int) -> tuple:
    """(left, top) in pixels of a target's patch (its box less the margin), clipped at 0."""
    margin = _margin(target, width, height)
    left = int(round((target.left + 1) * width / 2 - margin))
    top = int(round((target.top + 1) * height / 2 - margin))
    return max(left, 0), max(top, 0)


def _median_scale(before: np.ndarray, after: np.ndarray) -> float:
    """How much the features spread apart (> 1: the region grows), median over pairs."""
    count = len(before)
    first, second = np.triu_indices(count, k=1)
    if len(first) > 2000:  # enough pairs for a median
        pick = np.linspace(0, len(first) - 1, 2000).astype(int)
        first, second = first[pick], second[pick]
    spread_before = np.linalg.norm(before[first] - before[second], axis=1)
    spread_after = np.linalg.norm(after[first] - after[second], axis=1)
    usable = spread_before > 2.0
    if not usable.any():
        return 1.0
    return float(np.median(spread_after[usable] / spread_before[usable]))


def _moved(target: Target, shift: np.ndarray, scale: float) -> Target:
    """`target` shifted by `shift` (normalised units) and scaled about its centroid, its box
    cut at the image's edges as a segmented region's would be (its area in proportion).
    """
    x, y = target.x + float(shift[0]), target.y + float(shift[1])
    left = x + (target.left - target.x) * scale
    right = x + (target.left + 2.0 * target.width - target.x) * scale
    top = y + (target.top - target.y) * scale
    bottom = y + (target.bottom - target.y) * scale
    whole = max((right - left) * (bottom - top), 1e-12)
    left, right = max(left, -1.0), min(right, 1.0)
    top, bottom = max(top, -1.0), min(bottom, 1.0)
    seen = max(right - left, 0.0) * max(bottom - top, 0.0) / whole
    return replace(target, x=x, y=y, area=target.area * scale * scale * seen,
                   width=max(right - left, 0.0) / 2.0, left=left, top=top, bottom=bottom)
