"""The newest-wins, rate-limited worker, without ROS."""

import threading
import time

import pytest

from vla_ros.core.inference import LatestWorker


def wait_until(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not predicate():
        time.sleep(0.005)
    return predicate()


def test_newest_item_wins_and_older_ones_are_counted_as_dropped():
    release = threading.Event()
    processed = []

    def process(item):
        if item == 0:
            release.wait(5)
        return item

    worker = LatestWorker(process, processed.append, max_rate_hz=1000).start()
    worker.submit(0)
    assert wait_until(lambda: worker.stats().received == 1 and not worker._has_pending)
    for item in range(1, 11):
        worker.submit(item)
    release.set()
    assert wait_until(lambda: worker.stats().processed == 2)
    assert processed == [0, 10]
    stats = worker.stats()
    assert (stats.received, stats.dropped) == (11, 9)
    assert worker.stop()


def test_on_start_runs_on_the_worker_thread_before_the_first_item():
    events = []
    worker = LatestWorker(lambda item: events.append(('item', threading.current_thread())),
                          lambda result: None, 1000, name='worker-under-test',
                          on_start=lambda: events.append(('start', threading.current_thread())))
    worker.submit(1)  # waits for the thread
    worker.start()
    assert wait_until(lambda: worker.stats().processed == 1)
    assert [name for name, _ in events] == ['start', 'item']
    assert {thread.name for _, thread in events} == {'worker-under-test'}
    assert worker.stop()


def test_rate_is_bounded_and_the_rest_is_dropped():
    published = []
    worker = LatestWorker(lambda item: item, published.append, max_rate_hz=20).start()
    started = time.monotonic()
    while time.monotonic() - started < 1.0:
        worker.submit(time.monotonic())
        time.sleep(0.002)
    elapsed = time.monotonic() - started
    assert worker.stop()
    stats = worker.stats()
    assert 5 <= len(published) <= 20 * elapsed + 2
    # Every input is either published or dropped (one may still wait when it stopped).
    assert stats.received - 1 <= stats.processed + stats.dropped <= stats.received
    assert stats.processed == len(published)


def test_rate_can_change_while_running():
    worker = LatestWorker(lambda item: item, lambda result: None, max_rate_hz=1)
    worker.set_max_rate(50)
    with pytest.raises(ValueError):
        worker.set_max_rate(0)
    assert worker._min_period == pytest.approx(0.02)


def test_exceptions_are_counted_and_the_loop_goes_on():
    errors, published = [], []

    def process(item):
        if item == 'bad input':
            raise ValueError('unsupported encoding')
        if item == 'model crash':
            raise RuntimeError('CUDA out of memory')
        return item

    worker = LatestWorker(process, published.append, max_rate_hz=1000,
                          on_error=lambda error, item: errors.append((item, str(error))),
                          rejected_errors=(ValueError,)).start()
    for item in ('bad input', 'good 1', 'model crash', 'good 2'):
        worker.submit(item)
        assert wait_until(lambda: worker.stats().received == worker.stats().processed
                          + worker.stats().rejected + worker.stats().failed)
    assert worker.stop()
    stats = worker.stats()
    assert published == ['good 1', 'good 2']
    assert (stats.processed, stats.rejected, stats.failed) == (2, 1, 1)
    assert errors == [('bad input', 'unsupported encoding'), ('model crash', 'CUDA out of memory')]
    assert stats.last_error == 'RuntimeError: CUDA out of memory'


def test_a_failing_error_reporter_does_not_kill_the_worker():
    def report(error, item):
        raise RuntimeError('logger broke')

    def process(item):
        if item < 0:
            raise RuntimeError('negative')
        return item

    published = []
    worker = LatestWorker(process, published.append, 1000, on_error=report).start()
    worker.submit(-1)
    assert wait_until(lambda: worker.stats().failed == 1)
    worker.submit(1)
    assert wait_until(lambda: published == [1])
    assert worker.running and worker.stop()


def test_none_results_are_not_published():
    published = []
    worker = LatestWorker(lambda item: None, published.append, 1000).start()
    worker.submit(1)
    assert wait_until(lambda: worker.stats().processed == 1)
    assert published == [] and worker.stop()


def test_stop_joins_quickly_even_in_a_long_rate_period():
    worker = LatestWorker(lambda item: item, lambda result: None, max_rate_hz=0.1).start()
    worker.submit(1)
    assert wait_until(lambda: worker.stats().processed == 1)
    started = time.monotonic()
    assert worker.stop(timeout=2.0)
    assert time.monotonic() - started < 2.0
    assert not worker.running
    worker.submit(2)  # after stop: accepted, never processed, nothing grows
    assert worker.stats().processed == 1


def test_stop_without_start_and_twice():
    worker = LatestWorker(lambda item: item, lambda result: None, 10)
    assert worker.stop() and worker.stop()


def test_memory_stays_bounded_under_a_flood():
    gate = threading.Event()
    worker = LatestWorker(lambda item: gate.wait(5) and item, lambda result: None, 1000,
                          latency_window=50).start()
    for _ in range(100_000):
        worker.submit(bytes(10))
    gate.set()
    assert wait_until(lambda: not worker._has_pending)
    for item in range(200):
        worker.submit(item)
        time.sleep(0.0005)
    assert worker.stop()
    stats = worker.stats()
    assert len(worker._latencies) <= 50
    assert stats.received == 100_200
    assert stats.processed + stats.dropped <= stats.received
    assert stats.dropped >= 99_998


def test_latency_percentiles():
    delays = iter([0.01] * 9 + [0.1])

    def process(item):
        time.sleep(next(delays))
        return item

    worker = LatestWorker(process, lambda result: None, 1000).start()
    for item in range(10):
        worker.submit(item)
        assert wait_until(lambda count=item + 1: worker.stats().processed == count)
    assert worker.stop()
    stats = worker.stats()
    assert 0.009 <= stats.latency_p50 < 0.05
    assert stats.latency_p95 > stats.latency_p50
    assert stats.last_latency >= 0.09
