"""Health reports for /diagnostics, in the spirit of diagnostic_updater (not installable here).

Plain data: a node turns a :class:`Report` into a diagnostic_msgs/DiagnosticStatus. Levels
use DiagnosticStatus' numbers.
"""

from collections import deque
from dataclasses import dataclass, field

from vla_ros.core.inference import WorkerStats
from vla_ros.core.status import is_fault, is_stopped

OK, WARN, ERROR, STALE = 0, 1, 2, 3


@dataclass(frozen=True)
class Report:
    level: int
    message: str
    values: dict = field(default_factory=dict)


def _ms(seconds):
    return 'n/a' if seconds is None else f'{1000.0 * seconds:.1f}'


def inference_report(stats: WorkerStats, previous: WorkerStats | None, period_s: float, now: float,
                     *, model: str, device: str, stale_input_s: float | None,
                     max_drop_fraction: float) -> Report:
    """How a model node's worker did since the `previous` snapshot, `period_s` ago.

    ERROR: inference failed in the period. WARN: no input for `stale_input_s` (None = input is
    occasional, as commands are), bad input dropped, or more than `max_drop_fraction` of the
    input dropped to keep up. OK otherwise. `now` is on time.monotonic()'s clock.
    """
    before = previous or WorkerStats(0, 0, 0, 0, 0, None, None, None, '', None)
    received = stats.received - before.received
    dropped = stats.dropped - before.dropped
    period_s = max(period_s, 1e-6)
    input_age = None if stats.last_received_at is None else now - stats.last_received_at
    values = {
        'model': model, 'device': device,
        'input rate (Hz)': f'{received / period_s:.2f}',
        'processed rate (Hz)': f'{(stats.processed - before.processed) / period_s:.2f}',
        'received': str(stats.received), 'processed': str(stats.processed),
        'dropped (newer input arrived)': str(stats.dropped),
        'rejected (bad input)': str(stats.rejected), 'failed (inference error)': str(stats.failed),
        'latency p50 (ms)': _ms(stats.latency_p50), 'latency p95 (ms)': _ms(stats.latency_p95),
        'last input age (s)': 'never' if input_age is None else f'{input_age:.2f}',
        'last error': stats.last_error or 'none',
    }
    if stats.failed > before.failed:
        return Report(ERROR, f'inference failing: {stats.last_error}', values)
    if stale_input_s is not None and (input_age is None or input_age > stale_input_s):
        waited = 'no input yet' if input_age is None else f'no input for {input_age:.1f} s'
        return Report(WARN, f'{waited} (stale after {stale_input_s:g} s)', values)
    if stats.rejected > before.rejected:
        return Report(WARN, f'dropping bad input: {stats.last_error}', values)
    if received > 0 and dropped / received > max_drop_fraction:
        return Report(WARN, f'dropping {100.0 * dropped / received:.0f}% of the input to keep up',
                      values)
    return Report(OK, 'running', values)


class RefusalWatch:
    """Whether target verification refused every region it checked for a while: the target
    is not in view, or `verification_contrasts` or the verification model do not fit it.
    Either way an operator should look; a segmenter that finds masks but never a target is
    not running well.
    """

    def __init__(self, window_s: float = 60.0, min_checked: int = 100):
        self.window_s, self.min_checked = window_s, min_checked
        self._counts = deque()  # (time, and so far: regions checked, refused; targets found)

    def problem(self, now: float, checked: int, refused: int, found: int) -> str:
        """'' or why to warn, from running counts at `now` (seconds): regions the verifier
        was given and refused, and frames with a target (a tracked target is not asked again,
        so those are the acceptances that count).
        """
        self._counts.append((now, checked, refused, found))
        while now - self._counts[0][0] > self.window_s:
            self._counts.popleft()
        since, checked_before, refused_before, found_before = self._counts[0]
        checked, refused = checked - checked_before, refused - refused_before
        if checked >= self.min_checked and refused == checked and found == found_before:
            return (f'target verification refused all {checked} regions checked in the last '
                    f'{now - since:.0f} s: is the target out of view, or are '
                    'verification_contrasts and verification_model right for it?')
        return ''


def control_report(status: str, values: dict, scan_seen: bool, obstacle: str | None) -> Report:
    """action_policy's report: WARN while a fault holds the robot, or while a scanner that
    has been seen no longer feeds the collision monitor (`obstacle`: the monitor's last
    verdict, 'no scan' or None when it had none); OK otherwise.
    """
    status = status or ''
    monitor_off = scan_seen and obstacle in (None, 'no scan')
    if monitor_off and not is_stopped(status):
        return Report(WARN, f'{status}; scan stale or malformed: collision monitor off', values)
    return Report(WARN if monitor_off or is_fault(status) else OK, status,
                  values)
