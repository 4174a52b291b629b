"""The watch cache's event buffer sizing, ported from k8s.io/apiserver v1.35 pkg/storage/cacher/watch_cache_test.go
(TestDynamicCache, TestCacheIncreaseDoesNotBreakWatch, TestCapacityUpperBound)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kbench.apiserver.objects import APIError, Filter
from kbench.apiserver.watchcache import EVENT_FRESH_DURATION, WatchCache, capacity_upper_bound

F = EVENT_FRESH_DURATION
# (events, capacity, start index, lower bound, upper bound, interval, expected capacity, expected start index)
DYNAMIC = [
    (5, 5, 0, 2, 10, F / 6, 10, 0),
    (5, 5, 0, 2, 10, F / 4, 5, 0),
    (5, 5, 0, 2, 10, F + 1, 2, 3),
    (5, 5, 0, 3, 10, F + 1, 3, 2),
    (5, 5, 0, 2, 8, F / 6, 8, 0),
    (5, 5, 3, 2, 10, F / 6, 10, 3),
    (5, 5, 3, 2, 10, F / 4, 5, 3),
    (5, 5, 3, 2, 10, F + 1, 2, 6),
    (5, 5, 3, 3, 10, F + 1, 3, 5),
    (5, 5, 3, 2, 8, F / 6, 8, 3),
    (8, 8, 0, 4, 16, F / 9, 16, 0),
    (8, 8, 0, 4, 16, F / 8, 8, 0),
    (8, 8, 0, 4, 16, F / 2 + 1, 4, 4),
    (8, 8, 0, 7, 16, F / 2 + 1, 7, 1),
    (8, 8, 0, 4, 10, F / 9, 10, 0),
    (8, 8, 3, 4, 16, F / 9, 16, 3),
    (8, 8, 3, 4, 16, F / 8, 8, 3),
    (8, 8, 3, 4, 16, F / 2 + 1, 4, 7),
    (8, 8, 3, 7, 16, F / 2 + 1, 7, 4),
    (8, 8, 3, 4, 10, F / 9, 10, 3),
]


def cache(now: list[float]) -> WatchCache:
    return WatchCache("configmaps", lambda delay, cb, *a: None, lambda: now[0], lambda size: 0.0)


@pytest.mark.parametrize(
    ("count", "capacity", "start", "lower", "upper", "interval", "expect", "expect_start"), DYNAMIC
)
def test_resize_as_upstream_dynamic_cache(count, capacity, start, lower, upper, interval, expect, expect_start):
    wc = cache([0.0])
    wc.capacity, wc.start_index, wc.lower_bound, wc.upper_bound = capacity, start, lower, upper
    wc.history.extend((i, interval * (i - start), "ADDED", {}, None, 0) for i in range(start, start + count))
    wc.resize_cache(interval * count)
    assert (wc.capacity, wc.start_index) == (expect, expect_start)
    assert wc.start_index + len(wc.history) == start + count  # endIndex unchanged
    assert [e[0] for e in wc.history] == list(range(expect_start, start + count))  # the newest events kept


def obj(name: str) -> dict:
    return {"metadata": {"name": name, "namespace": "ns"}}


def test_cache_increase_does_not_break_watch():
    """The rotated-out event's resourceVersion is too old even after the buffer grows again."""
    now = [0.0]
    wc = cache(now)
    wc.capacity = wc.lower_bound = 2
    wc.list_rv = 10
    wc.apply("ADDED", "ns/key1", obj("key1"), 20, 1)
    now[0] = 2 * F
    wc.apply("ADDED", "ns/key2", obj("key2"), 30, 1)
    wc.apply("ADDED", "ns/key3", obj("key3"), 40, 1)
    now[0] += 1
    wc.apply("ADDED", "ns/key4", obj("key4"), 50, 1)  # fresh and full: the buffer doubles
    assert wc.capacity == 4
    with pytest.raises(APIError, match="too old resource version"):
        wc.watch(Filter(), 15, lambda events: None)


def test_capacity_upper_bound_doubles_with_the_history_window():
    assert capacity_upper_bound(F) == 100 * 1024
    assert capacity_upper_bound(2 * F) == 200 * 1024
    assert capacity_upper_bound(3 * F) == 400 * 1024
    assert capacity_upper_bound(20 * F) == 100 * 1024 * 32  # ceil(log2(20)) = 5


def test_burst_grows_the_buffer_and_quiet_then_new_events_shrink_it():
    """A burst of 1,000 events within 75 s doubles the buffer from 100 to 1,600 and keeps them all; after a quiet
    minute and more, a new event finds the quarter-back event stale and halves it (keeping the newest 800)."""
    now = [0.0]
    wc = cache(now)
    for i in range(1000):
        now[0] = i * 0.01
        wc.apply("ADDED", f"ns/p{i}", obj(f"p{i}"), i + 1, 10)
    assert wc.capacity == 1600 and len(wc.history) == 1000 and not wc.removed
    assert wc.window_start() == 0  # nothing dropped since the initial list: any resourceVersion from it on
    for i in range(600):  # fill it up, still fresh
        now[0] = 10 + i * 0.01
        wc.apply("MODIFIED", "ns/p0", obj("p0"), 1001 + i, 10)
    assert wc.capacity == 1600 and len(wc.history) == 1600
    now[0] = 200.0  # quiet, then one event: the buffer is full and its last quarter stale
    wc.apply("MODIFIED", "ns/p0", obj("p0"), 2000, 10)
    assert wc.capacity == 800 and len(wc.history) == 800
    assert wc.window_start() == wc.history[0][0] - 1
    with pytest.raises(APIError, match="too old resource version"):
        wc.watch(Filter(), 5, lambda events: None)


def _reference_sizes(times: list[float], lower: int, upper: int) -> list[tuple[int, int]]:
    """(capacity, startIndex) after each event, by resizeCacheLocked read literally (the quarter-back event looked
    up in the buffer at every event)."""
    history: list[float] = []
    capacity, start, out = lower, 0, []
    for t in times:
        if len(history) >= capacity:
            if t - history[0] < F:
                capacity = min(capacity * 2, upper)
            elif t - history[(len(history) - capacity // 4) % len(history)] > F:
                shrunk = max(capacity // 2, lower)
                start += max(0, len(history) - shrunk)
                history = history[max(0, len(history) - shrunk) :]
                capacity = min(shrunk, capacity)
        if len(history) >= capacity:
            history, start = history[1:], start + 1
        history.append(t)
        out.append((capacity, start))
    return out


@settings(deadline=None, max_examples=60)
@given(st.lists(st.sampled_from([0.0, 0.5, 3.0, F / 4, F / 2, F + 1, 3 * F]), min_size=1, max_size=300))
def test_resize_reads_the_quarter_back_event_only_when_needed_and_sizes_as_upstream(gaps):
    """The buffer's sizes under any arrival pattern (bursts, lulls) are those of the literal algorithm, though the
    quarter-back event's time is read from the deque only when the last one read cannot decide."""
    now = [0.0]
    wc = cache(now)
    wc.lower_bound, wc.capacity, wc.upper_bound = 4, 4, 64
    times, sizes = [], []
    for i, gap in enumerate(gaps):
        now[0] += gap
        times.append(now[0])
        wc.apply("ADDED", f"ns/k{i}", obj(f"k{i}"), i + 1, 1)
        sizes.append((wc.capacity, wc.start_index))
    assert sizes == _reference_sizes(times, 4, 64)
