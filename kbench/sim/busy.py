"""A busy-time record: how much of a resource (cores) was in use over time, in fixed bins, for usage summaries."""

from __future__ import annotations

import numpy as np


class BusyTime:
    """Core-seconds of work done in each ``resolution``-second bin since time 0 (the record CPU usage is read from)."""

    def __init__(self, resolution: float = 1.0) -> None:
        if not resolution > 0:
            raise ValueError(f"resolution: must be > 0 seconds; got {resolution!r}")
        self.resolution = resolution
        self.bins: list[float] = []

    def add(self, start: float, end: float) -> None:
        """One core was busy from ``start`` to ``end`` (seconds)."""
        if end <= start:
            return
        res, bins = self.resolution, self.bins
        first, last = int(start // res), int(end // res)
        if last >= len(bins):
            bins.extend([0.0] * (last + 1 - len(bins)))
        if first == last:
            bins[first] += end - start
            return
        bins[first] += (first + 1) * res - start
        for i in range(first + 1, last):
            bins[i] += res
        bins[last] += end - last * res

    def total(self) -> float:
        """Core-seconds recorded."""
        return float(sum(self.bins))

    def between(self, times) -> np.ndarray:
        """Core-seconds done before each of ``times`` (work spread evenly inside a bin)."""
        cumulative = np.concatenate(([0.0], np.cumsum(self.bins)))
        edges = np.arange(len(cumulative)) * self.resolution
        return np.interp(np.asarray(times, dtype=np.float64), edges, cumulative)
