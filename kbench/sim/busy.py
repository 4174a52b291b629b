"""A busy-time record: how much of a resource (cores) was in use over time, in fixed bins, for usage summaries.

A record takes a span for every job a component runs (about eight for each Lease renewal at the apiserver and
etcd), so :meth:`BusyTime.add` only appends the span to a buffer (a list: an ``array("d")`` parses each float
appended to it, about 180 instructions by callgrind); the spans are spread over the bins by a compiled
loop when the buffer is full or the bins are read. The loop adds them in the order they came, with the same
arithmetic as adding each at once, so the bins are bit for bit the same (``tests/sim/test_busy.py``).
"""

from __future__ import annotations

import struct

import numpy as np
from numba import njit

_INF = float("inf")

PENDING = 8192
"""Buffered span ends (two a span) that make :meth:`BusyTime.add` spread them over the bins."""


# _nrt=False: the kernel allocates nothing (a private njit option numba's type stubs lack)
@njit(cache=True, _nrt=False)  # type: ignore[call-overload]
def _spread(bins, spans, resolution):
    """Add each span (``spans``: start, end, start, end, ...; each end > start) to ``bins``, in order: the core-seconds
    in each ``resolution``-second bin it covers. ``bins`` reaches the last span's end."""
    for j in range(0, spans.size, 2):
        start, end = spans[j], spans[j + 1]
        first, last = int(start // resolution), int(end // resolution)
        if first == last:
            bins[first] += end - start
            continue
        bins[first] += (first + 1) * resolution - start
        for i in range(first + 1, last):
            bins[i] += resolution
        bins[last] += end - last * resolution


class BusyTime:
    """Core-seconds of work done in each ``resolution``-second bin since time 0 (the record CPU usage is read from)."""

    __slots__ = ("resolution", "_bins", "_size", "_pending")

    def __init__(self, resolution: float = 1.0) -> None:
        if not resolution > 0:
            raise ValueError(f"resolution: must be > 0 seconds; got {resolution!r}")
        self.resolution = float(resolution)
        self._bins = np.zeros(64)
        self._size = 0
        """Bins in use: up to the latest end recorded."""
        self._pending: list[float] = []
        """Spans added and not yet spread: start, end, start, end, ..."""

    def add(self, start: float, end: float) -> None:
        """One core was busy from ``start`` to ``end`` (seconds)."""
        if -_INF < start < end < _INF:
            pending = self._pending
            pending.append(start)
            pending.append(end)
            if len(pending) >= PENDING:
                self._flush()
        elif not end <= start:  # a NaN or an infinite time (a span of no time is nothing)
            raise ValueError(f"busy time: a span from {start!r} to {end!r}; both must be finite numbers")

    def extend(self, spans: list[float]) -> None:
        """:meth:`add` for each span of ``spans`` (start, end, start, end, ...), each finite with end > start, as the
        caller has checked (:meth:`kbench.apiserver.cpu.Cores.run_all`): one call for a batch."""
        pending = self._pending
        pending += spans
        if len(pending) >= PENDING:
            self._flush()

    def unstage(self, buffer: np.ndarray, count: int, first: int) -> None:
        """Record the spans a compiled model staged (:func:`kbench.sim._kernels.stage_span`: ``buffer[count]``
        bounds from ``buffer[first]``), in the order staged, after the spans added before, and empty the stage.
        They are spread over the bins from the stage itself."""
        staged = int(buffer[count])
        if staged:
            self._flush()
            self._add_spans(buffer[first : first + staged])
            buffer[count] = 0

    def _flush(self) -> None:
        """Spread the buffered spans over the bins and empty the buffer."""
        pending = self._pending
        if not pending:
            return
        # struct.pack: 48 against 124 us for np.array(pending) of 8,192 floats (timeit, best of seven)
        self._add_spans(np.frombuffer(struct.pack(f"{len(pending)}d", *pending)))
        pending.clear()

    def _add_spans(self, spans: np.ndarray) -> None:
        """Spread ``spans`` (start, end, start, end, ...; each finite, end > start) over the bins, grown to the latest
        end."""
        size = max(self._size, int(spans[1::2].max() // self.resolution) + 1)
        if size > self._bins.size:
            grown = np.zeros(max(size, 2 * self._bins.size))
            grown[: self._size] = self._bins[: self._size]
            self._bins = grown
        self._size = size
        _spread(self._bins, spans, self.resolution)

    @property
    def bins(self) -> np.ndarray:
        """Core-seconds in each bin, from time 0 to the latest end recorded (a view: read, do not change)."""
        self._flush()
        return self._bins[: self._size]

    def total(self) -> float:
        """Core-seconds recorded."""
        return float(sum(self.bins.tolist()))

    def between(self, times) -> np.ndarray:
        """Core-seconds done before each of ``times`` (work spread evenly inside a bin)."""
        cumulative = np.concatenate(([0.0], np.cumsum(self.bins)))
        edges = np.arange(len(cumulative)) * self.resolution
        return np.interp(np.asarray(times, dtype=np.float64), edges, cumulative)
