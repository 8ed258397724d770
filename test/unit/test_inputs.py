"""Pure core: what action_policy keeps of its inputs between ticks (core.inputs) and the rule
that turns its status into a /diagnostics level (core.diagnostics.control_report).
"""

import math

import numpy as np
import pytest

from vla_ros.core.collision_monitor import Scan
from vla_ros.core.diagnostics import control_report, OK, WARN
from vla_ros.core.inputs import CommandPairing, LatestOdometry, LatestScan, TargetPairing
from vla_ros.core.odometry import Pose2D
from vla_ros.core.status import is_fault, is_final, is_refusal, is_stopped


def test_target_halves_pair_by_stamp_in_any_order():
    pairing = TargetPairing()
    pairing.add((1, 0), 1, 'extent 1', arrived=0.0)
    pairing.add((1, 0), 0, 'point 1', arrived=0.01)
    assert pairing.newest() is None  # two of three
    pairing.add((1, 0), 2, 'source 1', arrived=0.02)
    assert pairing.newest() == (('point 1', 'extent 1', 'source 1'), 0.0)


def test_the_newest_complete_set_wins_and_older_ones_are_forgotten():
    pairing = TargetPairing()
    for stamp, arrived in (((2, 0), 1.0), ((1, 0), 2.0)):  # a stamp that went back, later
        for half in range(3):
            pairing.add(stamp, half, f'{stamp[0]}.{half}', arrived)
    assert pairing.newest()[0][0] == '1.0'  # by arrival, not by stamp
    pairing.add((2, 0), 0, 'late half', 3.0)
    assert pairing.newest()[0][0] == '1.0'  # the older set is gone: a lone half pairs nothing


def test_a_repeated_stamp_starts_a_new_set_and_unmatched_halves_are_bounded():
    pairing = TargetPairing(capacity=4)
    pairing.add((1, 0), 0, 'first', 0.0)
    pairing.add((1, 0), 0, 'again', 0.1)  # the camera repeated its stamp
    pairing.add((1, 0), 1, 'extent', 0.2)
    pairing.add((1, 0), 2, 'source', 0.3)
    assert pairing.newest()[0][0] == 'again'
    for second in range(10):
        pairing.add((second + 5, 0), 0, 'lonely', float(second))
    assert len(pairing) <= 4


def scan(ranges, angle_min=-math.pi / 2, increment=math.pi / 2):
    return Scan(ranges=np.array(ranges, float), angle_min=angle_min, angle_increment=increment,
                range_min=0.05, range_max=8.0)


def test_a_scan_with_one_readable_beam_is_used_and_one_with_none_ages():
    scans = LatestScan()
    assert scans.points(0.0) == (None, None)  # no scanner
    behind_nan = scan([math.nan, 0.25, math.nan], angle_min=-math.pi, increment=math.pi)
    assert scans.take(behind_nan, '', arrived=1.0) == ''  # the beams behind do not read
    points, age = scans.points(1.5)
    assert points.shape == (1, 2) and age == pytest.approx(0.5)
    assert not scans.blind_ahead
    assert 'none of its beams read' in scans.take(scan([math.nan] * 3), '', arrived=2.0)
    points, age = scans.points(2.5)
    assert points.shape == (1, 2) and age == pytest.approx(1.5)  # the good one ages
    assert scans.problem.startswith('none of its beams read')


def test_only_malformed_scans_mean_no_points_forever_old():
    scans = LatestScan()
    assert scans.take(None, 'it has no ranges', arrived=0.0) == 'it has no ranges'
    points, age = scans.points(0.1)
    assert points.shape == (0, 2) and age == math.inf


def test_beams_ahead_that_mostly_do_not_read_mark_the_scan_blind_ahead():
    scans = LatestScan()
    ahead_nan = scan([0.5, math.nan, math.nan, math.nan, 0.5], angle_min=-math.pi,
                     increment=math.pi / 2)  # beams at -180, -90, 0, 90, 180 degrees
    scans.take(ahead_nan, '', arrived=0.0)
    assert scans.blind_ahead


def test_odometry_that_does_not_advance_its_stamp_is_no_news():
    odometry = LatestOdometry()
    assert odometry.pose(0.0) == (None, None)
    assert odometry.take(Pose2D(1.0, 0.0, 0.0), (5, 0), arrived=1.0)
    assert not odometry.take(Pose2D(9.0, 0.0, 0.0), (5, 0), arrived=2.0)  # same stamp
    assert not odometry.take(Pose2D(9.0, 0.0, 0.0), (4, 9), arrived=2.0)  # older
    pose, age = odometry.pose(3.0)
    assert pose.x == 1.0 and age == pytest.approx(2.0)
    assert odometry.take(Pose2D(2.0, 0.0, 0.0), (0, 0), arrived=3.0)  # unstamped: taken
    assert odometry.arrived == 3.0


@pytest.mark.parametrize('status, scan_seen, obstacle, level, message', [
    ('approaching red ball', False, None, OK, 'approaching red ball'),
    ('approaching red ball', True, 'clear', OK, 'approaching red ball'),
    ('approaching red ball', True, 'no scan', WARN,
     'approaching red ball; scan stale or malformed: collision monitor off'),
    ('stopped: scan lost', True, 'no scan', WARN, 'stopped: scan lost'),
    ('stopped: e-stop', False, None, WARN, 'stopped: e-stop'),
    ('stopped: stale input', False, None, WARN, 'stopped: stale input'),
    ('arrived', False, None, OK, 'arrived'),
    (None, False, None, OK, ''),
])
def test_the_control_report_warns_for_faults_and_a_monitor_that_lost_its_scanner(
        status, scan_seen, obstacle, level, message):
    report = control_report(status, {'k': 'v'}, scan_seen, obstacle)
    assert (report.level, report.message, report.values) == (level, message, {'k': 'v'})


def test_an_embedding_pairs_with_its_own_text_or_an_instruction_close_in_time():
    commands = CommandPairing(wait_s=0.5)
    assert commands.take(0.0) is None
    commands.embedding([1.0], 'go to the red ball', arrived=0.0)
    assert commands.take(0.0) == ([1.0], 'go to the red ball')
    assert commands.take(0.1) is None  # taken once
    commands.instruction('turn left', arrived=1.0)
    commands.embedding([2.0], None, arrived=1.3)
    assert commands.take(1.3) == ([2.0], 'turn left')


def test_an_embedding_without_text_waits_then_is_decided_without_one():
    commands = CommandPairing(wait_s=0.5)
    commands.instruction('an old instruction', arrived=0.0)
    commands.embedding([3.0], None, arrived=2.0)
    assert commands.take(2.4) is None  # its text may still come
    assert commands.take(2.6) == ([3.0], None)  # refused downstream: no text to check


@pytest.mark.parametrize('status, final, stopped, fault, refusal', [
    ('arrived', True, False, False, False),
    ('found red ball', True, False, False, False),
    ('done: turn left', True, False, False, False),
    ('not understood: (empty command)', True, False, False, True),
    ('stopped: stop command', True, True, False, False),
    ('stopped: stale input', False, True, True, False),
    ('stopped: scan lost', False, True, True, False),
    ('approaching red ball (checking arrival)', False, False, False, False),
    ('idle', False, False, False, False),
])
def test_one_vocabulary_of_statuses(status, final, stopped, fault, refusal):
    assert (is_final(status), is_stopped(status), is_fault(status), is_refusal(status)) == (
        final, stopped, fault, refusal)
