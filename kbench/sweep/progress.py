"""Progress inside running points: how far each point's simulation has got, shown on the sweep's bar.

A point's simulation calls :func:`report` as it advances (the cluster sweep: every 10 simulated seconds);
the message goes to the process running the sweep through the executor's channel (a function in the same
process, a multiprocessing queue from local workers, Dask's event topic from a Dask cluster) and appears
beside the bar as ``nodes=400: 230 sim s``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager

TOPIC = "kbench-progress"
"""Dask event topic of the messages (``Worker.log_event``)."""
_INTERVAL = 1.0
"""Wall seconds between two messages of one point."""

Sink = Callable[[tuple[str, float]], None]
_sink: Sink | None = None
_point = ""
_last = 0.0


def set_sink(sink: Sink | None) -> None:
    """Where this process's points send ``(point_id, simulated seconds)`` messages."""
    global _sink
    _sink = sink


@contextmanager
def running(pid: str) -> Iterator[None]:
    """Messages sent while the block runs are about point ``pid``."""
    global _point, _last
    _point, _last = pid, 0.0
    try:
        yield
    finally:
        _point = ""


def report(sim_seconds: float) -> None:
    """The running point's simulation has reached ``sim_seconds`` (at most one message a wall second)."""
    global _last
    if _sink is None or not _point:
        return
    now = time.monotonic()
    if now - _last < _INTERVAL:
        return
    _last = now
    _sink((_point, float(sim_seconds)))


def labels(points: Sequence[Mapping], ids: Sequence[str]) -> dict[str, str]:
    """A short label per point: the values of the parameters that differ between points (``nodes=400``)."""
    varying = [k for k in (points[0] if points else {}) if len({repr(p[k]) for p in points}) > 1]
    return {pid: ", ".join(f"{k}={p[k]}" for k in varying) or "point" for p, pid in zip(points, ids)}


class Board:
    """The bar's postfix: each running point's simulated seconds, dropped when the point is stored."""

    def __init__(self, bar, names: Mapping[str, str]) -> None:
        self.bar, self.names = bar, names
        self.at: dict[str, float] = {}

    def update(self, message: tuple[str, float]) -> None:
        """Record ``(point id, simulated seconds)`` from a running point."""
        pid, sim_seconds = message
        if pid in self.names:
            self.at[pid] = sim_seconds
            self._show()

    def done(self, pid: str) -> None:
        """Drop a point that has been stored."""
        self.at.pop(pid, None)
        self._show()

    def _show(self) -> None:
        self.bar.set_postfix_str(
            "; ".join(f"{self.names[p]}: {s:,.0f} sim s" for p, s in self.at.items()), refresh=True
        )
