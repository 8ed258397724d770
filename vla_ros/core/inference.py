"""A newest-wins, rate-limited inference worker: the loop every model node runs.

Callbacks call :meth:`LatestWorker.submit` and return at once. One thread takes the newest
item, runs the model at most ``max_rate_hz`` times a second and hands the result to a publish
callback. An item that arrives while another waits replaces it (the old one is counted as
dropped), so latency never grows with load and memory stays bounded to one pending item.
"""

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
import threading
import time
from typing import Any

import numpy as np


@dataclass(frozen=True)
class WorkerStats:
    """A consistent snapshot of a worker's counters (latencies in seconds)."""

    received: int
    processed: int
    dropped: int
    rejected: int
    failed: int
    last_latency: float | None
    latency_p50: float | None
    latency_p95: float | None
    last_error: str
    last_received_at: float | None  # time.monotonic() of the newest input


class LatestWorker:
    """Run `process(item)` on the newest submitted item, then `publish(result)`.

    `process` may return None to publish nothing. An exception in `process` or `publish` is
    counted (as rejected when it is one of `rejected_errors`, i.e. bad input; as failed
    otherwise), reported through `on_error(error, item)`, and the loop goes on. `on_start()`
    runs once on the worker thread before the first item: the place for per-thread settings
    such as torch's CPU thread count.
    """

    def __init__(self, process: Callable[[Any], Any], publish: Callable[[Any], None],
                 max_rate_hz: float, name: str = 'inference',
                 on_error: Callable[[BaseException, Any], None] | None = None,
                 rejected_errors: tuple = (), latency_window: int = 200,
                 on_start: Callable[[], None] | None = None):
        self._process = process
        self._on_start = on_start
        self._publish = publish
        self._on_error = on_error
        self._rejected_errors = tuple(rejected_errors)
        self._name = name
        self._condition = threading.Condition()
        self._pending = None
        self._has_pending = False
        self._stopping = False
        self._min_period = 0.0
        self.set_max_rate(max_rate_hz)
        self._latencies = deque(maxlen=latency_window)
        self._received = self._processed = self._dropped = 0
        self._rejected = self._failed = 0
        self._last_error = ''
        self._last_received_at = None
        self._thread = None

    def set_max_rate(self, max_rate_hz: float) -> None:
        """Change the rate bound; takes effect from the next item."""
        if not max_rate_hz > 0:
            raise ValueError(f'max_rate_hz must be > 0, got {max_rate_hz}')
        with self._condition:
            self._min_period = 1.0 / float(max_rate_hz)

    def start(self) -> 'LatestWorker':
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
            self._thread.start()
        return self

    def submit(self, item: Any) -> None:
        """Hand over an item from any thread; replaces (and counts as dropped) an unread one."""
        with self._condition:
            self._received += 1
            self._last_received_at = time.monotonic()
            if self._has_pending:
                self._dropped += 1
            self._pending, self._has_pending = item, True
            self._condition.notify()

    def submit_if_idle(self, item: Any) -> bool:
        """Hand over an item only when none is waiting (never replaces a newer one)."""
        with self._condition:
            if self._has_pending:
                return False
        self.submit(item)
        return True

    def stop(self, timeout: float = 5.0) -> bool:
        """Stop the thread after the current item; True when it has ended within `timeout`."""
        with self._condition:
            self._stopping = True
            self._pending, self._has_pending = None, False
            self._condition.notify_all()
        if self._thread is None:
            return True
        if self._thread is not threading.current_thread():
            self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stats(self) -> WorkerStats:
        with self._condition:
            latencies = np.array(self._latencies) if self._latencies else None
            return WorkerStats(
                received=self._received, processed=self._processed, dropped=self._dropped,
                rejected=self._rejected, failed=self._failed,
                last_latency=self._latencies[-1] if self._latencies else None,
                latency_p50=float(np.percentile(latencies, 50)) if latencies is not None
                else None,
                latency_p95=float(np.percentile(latencies, 95)) if latencies is not None
                else None,
                last_error=self._last_error, last_received_at=self._last_received_at)

    def _next_item(self):
        with self._condition:
            while not self._has_pending and not self._stopping:
                self._condition.wait()
            if self._stopping:
                return False, None
            item, self._pending, self._has_pending = self._pending, None, False
            return True, item

    def _run(self) -> None:
        if self._on_start is not None:
            self._on_start()
        while True:
            found, item = self._next_item()
            if not found:
                return
            started = time.monotonic()
            try:
                result = self._process(item)
                if result is not None:
                    self._publish(result)
            except Exception as error:  # noqa: BLE001 - one bad item must not end the loop
                self._record_error(error, item)
            else:
                with self._condition:
                    self._processed += 1
                    self._latencies.append(time.monotonic() - started)
            self._wait_out_period(started)

    def _record_error(self, error: BaseException, item: Any) -> None:
        with self._condition:
            if isinstance(error, self._rejected_errors):
                self._rejected += 1
            else:
                self._failed += 1
            self._last_error = f'{type(error).__name__}: {error}'
        if self._on_error is not None:
            try:
                self._on_error(error, item)
            except Exception:  # noqa: BLE001,S110 - reporting must never kill the worker
                pass

    def _wait_out_period(self, started: float) -> None:
        """Sleep the rest of the rate period; items arriving meanwhile replace each other."""
        with self._condition:
            deadline = started + self._min_period
            while not self._stopping:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                self._condition.wait(remaining)
