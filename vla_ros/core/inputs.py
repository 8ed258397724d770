"""What action_policy reads between two control ticks, kept as the core sees it: a target's
three halves paired by stamp, the newest good scan and the newest good odometry, each with
when it arrived. Arrival times are seconds on the node's steady clock.
"""

import math

import numpy as np

from vla_ros.core.collision_monitor import Scan
from vla_ros.core.odometry import Pose2D

MIN_READABLE_AHEAD = 0.5  # fewer of the beams ahead reading (NaN): no forward motion


class TargetPairing:
    """scene_segmenter publishes each target in three messages with one stamp (a point, its
    extent, where it came from); they arrive in any order. `add` files a half under its
    stamp, `newest` gives the last complete set to arrive.
    """

    HALVES = 3

    def __init__(self, capacity: int = 8):
        self.capacity = capacity
        self._entries = {}  # stamp key -> [half 0, half 1, half 2, first arrival]

    def clear(self) -> None:
        self._entries = {}

    def __len__(self) -> int:
        return len(self._entries)  # sets held, complete or not

    def add(self, key, half: int, item, arrived: float) -> None:
        entry = self._entries.get(key)
        if entry is not None and entry[half] is not None:
            del self._entries[key]  # a stamp used again (a camera that repeats them): new set
            entry = None
        if entry is None:
            if len(self._entries) >= self.capacity:  # bounded: forget the oldest unmatched
                del self._entries[min(self._entries, key=lambda k: self._entries[k][-1])]
            entry = self._entries[key] = [None] * self.HALVES + [arrived]
        entry[half] = item

    def newest(self):
        """(the halves, arrival) of the last complete set to arrive, or None; sets that
        arrived before it are forgotten. By arrival, not by stamp: stamps from a restarted
        or re-clocked source may go back.
        """
        complete = [(entry[-1], key) for key, entry in self._entries.items()
                    if None not in entry[:self.HALVES]]
        if not complete:
            return None
        arrived, newest = max(complete)
        halves = tuple(self._entries[newest][:self.HALVES])
        for key in [key for key, entry in self._entries.items() if entry[-1] < arrived]:
            del self._entries[key]
        return halves, arrived


class LatestScan:
    """The newest good scan as obstacle points in base_link. Every beam that reads is used,
    however many others do not (REP 117: NaN is an erroneous reading); a scan where none
    reads says nothing and is dropped, and the last good one ages.
    """

    def __init__(self, min_readable_ahead: float = MIN_READABLE_AHEAD):
        self.min_readable_ahead = min_readable_ahead
        self.clear()

    def clear(self) -> None:
        self.seen = False  # any scan arrived, good or not
        self.problem = ''  # why the newest one was dropped ('' when it was not)
        self.blind_ahead = False  # the newest good one's beams ahead mostly do not read
        self._points = None  # ((N, 2) points, arrival) of the newest good one
        self.unmapped = None  # the newest good Scan not yet put on the map

    def take(self, scan: Scan | None, problem: str, arrived: float) -> str:
        """Take the newest scan (None with the reason it could not be read); returns why
        it was dropped, '' when it was used.
        """
        self.seen = True
        if not problem and scan.readable_fraction == 0.0:
            problem = 'none of its beams read (all NaN: erroneous)'
        self.problem = problem
        if not problem:
            self._points = (scan.points(), arrived)
            self.unmapped = scan
            self.blind_ahead = scan.readable_fraction_ahead() < self.min_readable_ahead
        return problem

    def points(self, now: float):
        """(points, age) of the newest good scan; (None, None) when no scan came, (no
        points, inf) when only malformed ones did.
        """
        if self._points is not None:
            return self._points[0], now - self._points[1]
        if self.seen:
            return np.zeros((0, 2)), math.inf
        return None, None


class LatestOdometry:
    """The newest good odometry pose. A stamp no later than the last good one's is no news
    (a frozen driver, an old message, a second publisher): the pose then ages.
    """

    def __init__(self):
        self.clear()

    def clear(self) -> None:
        self._pose = None  # (Pose2D, arrival, stamp key)

    @property
    def arrived(self):
        return None if self._pose is None else self._pose[1]

    def take(self, pose: Pose2D, stamp: tuple, arrived: float) -> bool:
        """Whether `pose` (stamped `stamp`, (0, 0) when unstamped) was news."""
        if stamp != (0, 0) and self._pose is not None and stamp <= self._pose[2]:
            return False
        self._pose = (pose, arrived, stamp)
        return True

    def pose(self, now: float):
        """(pose, age) of the newest good one; (None, None) when none came."""
        if self._pose is None:
            return None, None
        return self._pose[0], now - self._pose[1]


class CommandPairing:
    """A command's text embedding and its text. command_embedder's embedding carries its
    text; one that does not is paired with an `instruction` that arrived within `wait_s` of
    it, or, once it has waited that long, decided without one (the policy refuses it).
    """

    def __init__(self, wait_s: float = 0.5):
        self.wait_s = wait_s
        self.clear()

    def clear(self) -> None:
        self._embedding = None  # (vector, its text or None, arrival)
        self._instruction = None  # (text, arrival), until used

    def embedding(self, vector, text, arrived: float) -> None:
        self._embedding = (vector, text, arrived)

    def instruction(self, text: str, arrived: float) -> None:
        self._instruction = (text, arrived)

    def take(self, now: float):
        """(embedding, its text or None) once it can be decided, else None."""
        if self._embedding is None:
            return None
        vector, text, arrived = self._embedding
        if text is None and self._instruction is not None and (
                abs(self._instruction[1] - arrived) <= self.wait_s):
            text = self._instruction[0]
        if text is None and now - arrived <= self.wait_s:
            return None  # its text may still come
        self.clear()
        return vector, text
