"""The CPU of one kube-apiserver instance: ``cores`` cores serving work first come, first served (an M/G/k queue).

Every piece of work the instance does (a request's decoding, admission, listing and encoding; a watch event's decoding
and fan-out) is a job of known CPU seconds. A job takes one core from its start to its end: it starts at once when a
core is free, else when the earliest core frees up, in the order the jobs arrived, and is not preempted. So with ``k``
cores and ``n`` jobs of ``c`` seconds arriving together, job ``i`` (from 0) ends at ``(i // k + 1) * c``; latency grows
with load and without bound as the demand approaches ``k`` cores.

Why this model: a job's end is known when it arrives (later arrivals never delay it), so the apiserver knows when a
request will answer as it dispatches it and the model costs no engine event; and it is exact to test. Upstream the Go
runtime runs goroutines on ``GOMAXPROCS`` (= the machine's cores) threads and preempts one that has run 10 ms
(runtime/proc.go ``forcePreemptNS``), which is closer to processor sharing with at most one core per goroutine. The
two saturate at the same demand; they differ in who waits: here a short request that arrives while every core runs a
long LIST waits for one of them to finish, where Go would slice it in. Each job records its busy time
(:class:`BusyTime`) for the resource-usage summary (:mod:`kbench.metrics.resource_usage`).
"""

from __future__ import annotations

import math
from heapq import heapreplace

from kbench.sim.busy import BusyTime


class Cores:
    """``cores`` CPU cores serving jobs first come, first served, without preemption.

    Parameters
    ----------
    cores : int
        Cores of the instance (the profile's ``apiserver.cores``).
    resolution : float
        Bin width (seconds) of the busy-time record.
    """

    def __init__(self, cores: int, resolution: float = 1.0) -> None:
        if isinstance(cores, bool) or not isinstance(cores, int) or cores < 1:
            raise ValueError(f"cores: must be a positive integer; got {cores!r}")
        self.cores = cores
        self.free = [0.0] * cores
        """When each core is free next (a heap)."""
        self.busy = BusyTime(resolution)
        self.jobs = 0

    def run(self, now: float, seconds: float) -> float:
        """A job of ``seconds`` CPU arrives at ``now`` (never earlier than the previous job's arrival); returns when it
        ends."""
        if not seconds > 0:
            if seconds == 0:
                return now
            raise ValueError(f"seconds: a job's CPU time must be >= 0; got {seconds!r}")
        free = self.free
        start = free[0] if free[0] > now else now
        end = start + seconds
        heapreplace(free, end)
        self.busy.add(start, end)
        self.jobs += 1
        return end

    def run_all(self, now: float, jobs: list[float]) -> list[float]:
        """:meth:`run` for each of ``jobs`` (CPU seconds) in order, all arriving at ``now``; returns their ends. One
        call for a batch: a coalesced Lease tick's watch events (kbench.apiserver.server ``APIServer._events_cpu``).
        A bad job is refused (ValueError), the jobs before it run as one :meth:`run` each."""
        free, ran = self.free, 0
        ends: list[float] = []
        spans: list[float] = []
        try:
            for seconds in jobs:
                if not 0 < seconds < math.inf:
                    if seconds == 0:
                        ends.append(now)
                        continue
                    raise ValueError(f"seconds: a job's CPU time must be >= 0 and finite; got {seconds!r}")
                start = free[0] if free[0] > now else now
                end = start + seconds
                heapreplace(free, end)
                ran += 1
                if end > start:  # a job too short to move the clock records no span, as BusyTime.add drops it
                    spans += (start, end)
                ends.append(end)
        finally:
            self.busy.extend(spans)
            self.jobs += ran
        return ends

    def utilization(self, start: float, end: float) -> float:
        """Mean busy cores / cores between ``start`` and ``end``."""
        if not end > start:
            return math.nan
        done = self.busy.between([start, end])
        return float(done[1] - done[0]) / (end - start) / self.cores
