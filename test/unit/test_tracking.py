"""core.tracking: a segmented region followed between segmentations, and where it must end.

Scenes are drawn: a textured floor (the tracker needs corners, as a real floor has) and a
textured object moved, grown, covered or taken out of view from frame to frame.
"""

import numpy as np
import pytest

from vla_ros.core.segmentation import find_regions, NOT_VISIBLE
from vla_ros.core.tracking import TargetTracker, TrackerSettings

HEIGHT, WIDTH = 120, 160
RNG = np.random.default_rng(7)
FLOOR = RNG.integers(40, 120, (HEIGHT // 8 + 1, WIDTH // 8 + 1, 3), dtype=np.uint8)
OBJECT = RNG.integers(120, 255, (8, 8, 3), dtype=np.uint8)


def scene(centre_x: float, centre_y: float = 60.0, side: float = 24.0, floor_shift: int = 0,
          cover: tuple = None):
    """(rgb, the object's true mask): a checker-like floor, the object a square of random
    blocks centred at (centre_x, centre_y) px, `cover` an occluding grey box (x0, x1).
    """
    floor = np.kron(FLOOR, np.ones((8, 8, 1), np.uint8))
    rgb = np.ascontiguousarray(np.roll(floor, floor_shift, axis=1)[:HEIGHT, :WIDTH])
    mask = np.zeros((HEIGHT, WIDTH), bool)
    left, top = int(round(centre_x - side / 2)), int(round(centre_y - side / 2))
    size = int(round(side))
    texture = np.kron(OBJECT, np.ones((size // 8 + 1, size // 8 + 1, 1), np.uint8))[:size, :size]
    x0, y0 = max(left, 0), max(top, 0)
    x1, y1 = min(left + size, WIDTH), min(top + size, HEIGHT)
    if x1 > x0 and y1 > y0:
        rgb[y0:y1, x0:x1] = texture[y0 - top:y1 - top, x0 - left:x1 - left]
        mask[y0:y1, x0:x1] = True
    if cover is not None:
        rgb[:, cover[0]:cover[1]] = 128
    return rgb, mask


def region_target(mask):
    return find_regions(mask.astype(np.float32), 0.5)[0]


def started(tracker, rgb, mask, stamp=0.0):
    tracker.frame(rgb, stamp)
    return tracker.segmented(region_target(mask), mask, stamp)


def test_nothing_is_tracked_before_a_segmentation():
    tracker = TargetTracker()
    for step in range(5):
        assert tracker.frame(scene(40 + 4 * step)[0], float(step)) is None


def test_follows_a_target_that_moves_across_the_view():
    tracker = TargetTracker()
    rgb, mask = scene(40)
    track = started(tracker, rgb, mask)
    assert not track.tracked and track.confidence == 1.0
    for step in range(1, 16):  # 4 px a frame to the right: a robot turning left
        rgb, mask = scene(40 + 4 * step, floor_shift=4 * step)
        track = tracker.frame(rgb, float(step))
        truth = region_target(mask)
        assert track.tracked and track.target.visible, tracker.reason
        assert abs(track.target.x - truth.x) < 0.03
        assert track.segmented_stamp == 0.0 and track.stamp == float(step)


def zoomed(rgb, mask, factor, centre=(80, 60)):
    """The view `factor` times closer about `centre` (px): the floor there grows too."""
    import cv2
    matrix = np.array([[factor, 0, centre[0] * (1 - factor)],
                       [0, factor, centre[1] * (1 - factor)]], np.float32)
    return (cv2.warpAffine(rgb, matrix, (WIDTH, HEIGHT), flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_REFLECT),
            cv2.warpAffine(mask.astype(np.uint8), matrix, (WIDTH, HEIGHT),
                           flags=cv2.INTER_NEAREST) > 0)


def test_follows_a_target_that_grows_as_the_robot_approaches():
    tracker = TargetTracker()
    first_rgb, first_mask = scene(80, side=16)
    started(tracker, first_rgb, first_mask)
    for step in range(1, 11):
        rgb, mask = zoomed(first_rgb, first_mask, 1.06 ** step)
        track = tracker.frame(rgb, float(step))
    truth = region_target(mask)
    assert track.target.visible, tracker.reason
    assert track.target.area == pytest.approx(truth.area, rel=0.3)
    assert track.target.bottom == pytest.approx(truth.bottom, abs=0.04)
    assert track.target.width == pytest.approx(truth.width, rel=0.15)


def test_the_track_ends_when_the_target_leaves_the_view():
    tracker = TargetTracker()
    rgb, mask = scene(120)
    started(tracker, rgb, mask)
    visible = []
    for step in range(1, 20):
        track = tracker.frame(scene(120 + 6 * step, floor_shift=6 * step)[0], float(step))
        visible.append(track.target.visible)
    assert not visible[-1]
    assert 'view' in tracker.reason or 'lost' in tracker.reason
    assert tracker.tracks_lost == 1


def test_the_track_ends_when_something_covers_the_target():
    tracker = TargetTracker()
    rgb, mask = scene(80)
    started(tracker, rgb, mask)
    track = tracker.frame(scene(80, cover=(60, 100))[0], 1.0)
    assert track.target == NOT_VISIBLE
    # ... and it does not come back by itself when the cover goes: only a segmentation
    # starts a track.
    assert not tracker.frame(scene(80)[0], 2.0).target.visible


def test_an_occluder_passing_in_front_ends_the_track_or_leaves_it_on_the_target():
    tracker = TargetTracker()
    rgb, mask = scene(80)
    started(tracker, rgb, mask)
    truth = region_target(mask)
    visible = []
    for step, x0 in enumerate(range(30, 130, 8), start=1):  # a pole sweeping across
        track = tracker.frame(scene(80, cover=(x0, x0 + 10))[0], float(step))
        visible.append(track.target.visible)
        if track.target.visible:
            assert abs(track.target.x - truth.x) < 0.05  # never dragged away with the pole
    assert all(visible[:4])  # followed while the pole was beside it


def test_a_late_segmentation_is_brought_forward_to_the_newest_frame():
    tracker = TargetTracker()
    first_rgb, first_mask = scene(40)
    tracker.frame(first_rgb, 0.0)
    for step in range(1, 13):  # the segmenter was busy for 12 frames (1.2 s at 10 Hz)
        rgb, mask = scene(40 + 5 * step, floor_shift=5 * step)
        tracker.frame(rgb, 0.1 * step)
    track = tracker.segmented(region_target(first_mask), first_mask, 0.0)
    assert track.tracked and track.segmented_stamp == 0.0 and track.stamp == 0.1 * 12
    assert abs(track.target.x - region_target(mask).x) < 0.03


def test_a_segmentation_of_a_frame_the_tracker_dropped_is_brought_forward_too():
    tracker = TargetTracker()
    tracker.frame(scene(30)[0], 0.0)
    rgb, mask = scene(40, floor_shift=10)
    for step in range(2, 6):
        tracker.frame(scene(30 + 10 * step, floor_shift=10 * step)[0], float(step))
    track = tracker.segmented(region_target(mask), mask, 1.0, rgb)  # frame 1, never seen
    assert track.target.visible and track.stamp == 5.0
    assert abs(track.target.x - region_target(scene(80)[1]).x) < 0.03


def test_a_segmentation_that_finds_nothing_ends_the_track():
    tracker = TargetTracker()
    rgb, mask = scene(80)
    started(tracker, rgb, mask)
    track = tracker.segmented(NOT_VISIBLE, None, 0.0)
    assert not track.target.visible and tracker.reason == 'the segmentation found nothing'
    assert not tracker.frame(rgb, 1.0).target.visible


def test_stamps_that_go_back_restart_the_history_and_say_nothing_until_a_segmentation():
    """A restarted camera driver or a bag played again: the new frames must not be stuck
    behind the old ones' stamps.
    """
    tracker = TargetTracker()
    rgb, mask = scene(80)
    started(tracker, rgb, mask, stamp=100.0)
    tracker.frame(scene(82, floor_shift=2)[0], 100.1)
    assert tracker.frame(rgb, 0.0) is None and 'went back' in tracker.reason
    assert tracker.epoch == 1 and tracker.tracks_lost == 1
    track = tracker.segmented(region_target(mask), mask, 0.0)
    assert track.target.visible and track.stamp == 0.0
    assert tracker.frame(scene(84, floor_shift=4)[0], 0.1).target.visible


def test_frames_older_than_history_s_are_let_go():
    tracker = TargetTracker(TrackerSettings(history_s=1.0))
    for step in range(30):
        tracker.frame(scene(80)[0], 0.1 * step)
    assert 10 <= len(tracker._frames) <= 11  # 1 s back from 2.9 s


def test_a_segmentation_older_than_the_history_cannot_start_a_track():
    tracker = TargetTracker(TrackerSettings(history_frames=5))
    first_rgb, first_mask = scene(80)
    for step in range(8):
        tracker.frame(scene(80)[0], float(step))
    track = tracker.segmented(region_target(first_mask), first_mask, -1.0, first_rgb)
    assert not track.target.visible and 'history' in tracker.reason


def test_a_frozen_camera_repeating_one_stamp_is_not_followed_again():
    tracker = TargetTracker()
    rgb, mask = scene(80)
    started(tracker, rgb, mask)
    before = tracker.frames_tracked
    for _ in range(5):
        tracker.frame(scene(90)[0], 0.0)  # same stamp, other pixels: ignored
    assert tracker.frames_tracked == before


def test_a_change_of_frame_size_ends_the_track_and_says_nothing_until_a_segmentation():
    """A target "not visible" after a size change read as a target too close to see (a false
    arrival, from a driver's 1x1 frames).
    """
    tracker = TargetTracker()
    rgb, mask = scene(80)
    started(tracker, rgb, mask)
    assert tracker.frame(np.zeros((240, 320, 3), np.uint8), 1.0) is None
    assert 'size' in tracker.reason and tracker.tracks_lost == 1
    # A late segmentation of an old-size frame says nothing of the new view either.
    assert tracker.segmented(region_target(mask), mask, 0.5, rgb) is None
    assert tracker.frame(np.zeros((240, 320, 3), np.uint8), 2.0) is None
    big_rgb, big_mask = scene(80)[0].repeat(2, 0).repeat(2, 1), mask.repeat(2, 0).repeat(2, 1)
    tracker.frame(big_rgb, 3.0)
    assert tracker.segmented(region_target(big_mask), big_mask, 3.0).target.visible


def test_a_plain_region_without_corners_is_kept_for_its_own_frame_only():
    tracker = TargetTracker()
    rgb = np.full((HEIGHT, WIDTH, 3), 90, np.uint8)  # the segmenter's region, all plain
    mask = np.zeros((HEIGHT, WIDTH), bool)
    mask[50:70, 70:90] = True
    tracker.frame(rgb, 0.0)
    track = tracker.segmented(region_target(mask), mask, 0.0)
    assert track.target.visible  # what the segmentation saw on this frame
    assert not tracker.frame(rgb, 1.0).target.visible


def test_settings_are_checked():
    with pytest.raises(ValueError, match='min_kept'):
        TrackerSettings(min_kept=0.0)
    with pytest.raises(ValueError, match='max_side'):
        TrackerSettings(max_side=8)


def far_object(centre_x: float, cover: bool = False):
    """A small plain disc (a far object: too few pixels for corners) on a smooth floor."""
    import cv2
    columns = np.linspace(60, 110, WIDTH, dtype=np.float32)
    rgb = np.repeat(np.repeat(columns[None, :, None], HEIGHT, 0), 3, 2).astype(np.uint8)
    mask = np.zeros((HEIGHT, WIDTH), np.uint8)
    cv2.circle(mask, (int(round(centre_x)), 40), 3, 1, -1)
    rgb[mask > 0] = (230, 40, 40)
    if cover:
        rgb[30:50, int(centre_x) - 8:int(centre_x) + 8] = 90
    return rgb, mask > 0


def test_a_region_too_small_for_features_is_followed_by_its_patch():
    tracker = TargetTracker()
    rgb, mask = far_object(50)
    track = started(tracker, rgb, mask)
    assert tracker._points is None and tracker._patch is not None  # no corners in it
    for step in range(1, 11):
        rgb, mask = far_object(50 + 3 * step)
        track = tracker.frame(rgb, float(step))
        assert track.target.visible, tracker.reason
        assert abs(track.target.x - region_target(mask).x) < 0.02
    assert track.confidence >= tracker.settings.min_match
    # Covered: the patch no longer matches, the track ends.
    assert not tracker.frame(far_object(80, cover=True)[0], 11.0).target.visible
    assert 'no longer looks' in tracker.reason
