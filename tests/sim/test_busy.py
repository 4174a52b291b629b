"""The busy-time record: its buffered, compiled spreading gives the bins bit for bit as adding each span at once."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kbench.sim import busy as busy_module
from kbench.sim.busy import BusyTime


def spread_one_by_one(spans: list[tuple[float, float]], res: float) -> list[float]:
    """The record as it was kept before the buffer: each span added to a list of bins as it came."""
    bins: list[float] = []
    for start, end in spans:
        if end <= start:
            continue
        first, last = int(start // res), int(end // res)
        if last >= len(bins):
            bins.extend([0.0] * (last + 1 - len(bins)))
        if first == last:
            bins[first] += end - start
            continue
        bins[first] += (first + 1) * res - start
        for i in range(first + 1, last):
            bins[i] += res
        bins[last] += end - last * res
    return bins


span = st.tuples(
    st.floats(0.0, 500.0, allow_nan=False), st.floats(0.0, 3.0, allow_nan=False, allow_subnormal=False)
).map(lambda s: (s[0], s[0] + s[1]))


@settings(max_examples=200, deadline=None)
@given(
    spans=st.lists(span, max_size=300),
    res=st.sampled_from([1.0, 0.1, 0.25, 10.0, 1]),
    reads=st.lists(st.integers(0, 300), max_size=4),
)
def test_bins_are_bit_for_bit_those_of_adding_each_span_at_once(spans, res, reads):
    busy = BusyTime(res)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(busy_module, "PENDING", 16)  # spread often, between the reads too
        for i, (start, end) in enumerate(spans):
            busy.add(start, end)
            if i in reads:  # a read spreads what is buffered; later spans go on from there
                assert busy.bins.tolist() == spread_one_by_one(spans[: i + 1], res)
    expected = spread_one_by_one(spans, res)
    assert busy.bins.tolist() == expected
    assert busy.total() == sum(expected)


def test_many_spans_spread_as_they_fill_the_buffer():
    rng = np.random.default_rng(7)
    starts = np.sort(rng.uniform(0, 3600, 50_000))
    spans = list(zip(starts.tolist(), (starts + rng.exponential(0.002, starts.size)).tolist(), strict=True))
    busy = BusyTime()
    for start, end in spans:
        busy.add(start, end)
    assert len(busy._pending) < busy_module.PENDING  # spread as it filled, not all kept
    assert busy.bins.tolist() == spread_one_by_one(spans, 1.0)
    assert busy.between([0.0, 3601.0]).tolist() == [0.0, pytest.approx(sum(e - s for s, e in spans))]


def test_an_empty_record():
    busy = BusyTime()
    busy.add(2.0, 2.0)
    busy.add(3.0, 1.0)
    assert busy.bins.size == 0 and busy.total() == 0.0
    assert busy.between([0.0, 5.0]).tolist() == [0.0, 0.0]
    with pytest.raises(ValueError, match="resolution"):
        BusyTime(0.0)


@pytest.mark.parametrize("start, end", [(1.0, math.nan), (math.nan, 1.0), (1.0, math.inf), (-math.inf, 1.0)])
def test_a_span_that_is_not_finite_is_refused_and_what_was_recorded_stays(start, end):
    busy = BusyTime()
    busy.add(0.5, 1.25)
    with pytest.raises(ValueError, match="finite numbers"):
        busy.add(start, end)
    assert busy.bins.tolist() == [0.5, 0.25]


@settings(max_examples=100, deadline=None)
@given(spans=st.lists(span.filter(lambda s: s[1] > s[0]), max_size=120), cut=st.integers(1, 9))
def test_spans_extended_in_batches_are_those_added_one_at_a_time(spans, cut):
    """BusyTime.extend (a batch of checked spans, Cores.run_all's) spreads as add does, its flushes included."""
    one, batched = BusyTime(0.25), BusyTime(0.25)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(busy_module, "PENDING", 16)
        for start, end in spans:
            one.add(start, end)
        for i in range(0, len(spans), cut):
            batched.extend([t for s in spans[i : i + cut] for t in s])
            assert len(batched._pending) < 16  # flushed as it filled
    assert batched.bins.tolist() == one.bins.tolist()


@pytest.mark.parametrize("seed", range(5))
def test_staged_spans_are_recorded_in_their_place_among_those_added(seed):
    """BusyTime.unstage (a compiled model's stage: a count, then bounds) spreads the staged spans after those added
    before them and before those added after, as adding each at once would. The spans crowd a few bins, with
    fractions that round, so the order of the additions shows in the bins."""
    rng = np.random.default_rng(seed)
    starts = rng.uniform(0.0, 2.0, 400)
    spans = list(zip(starts.tolist(), (starts + rng.uniform(0.001, 1.0, starts.size)).tolist(), strict=True))
    staged = rng.random(len(spans)) < 0.5
    one, mixed = BusyTime(0.25), BusyTime(0.25)
    stage = np.full(2 + 2 * len(spans), np.nan)
    stage[0] = 0
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(busy_module, "PENDING", 16)
        for (start, end), to_stage in zip(spans, staged, strict=True):
            one.add(start, end)
            if to_stage:
                n = int(stage[0])
                stage[2 + n : 4 + n] = start, end
                stage[0] = n + 2
            else:
                mixed.unstage(stage, 0, 2)
                mixed.add(start, end)
        mixed.unstage(stage, 0, 2)
    assert stage[0] == 0
    assert mixed.bins.tolist() == one.bins.tolist()
