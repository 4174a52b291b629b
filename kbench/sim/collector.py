"""Python's garbage collector during a long simulation run.

A cluster is millions of long-lived objects (stored objects, informer caches, Leases) and a stream of short-lived
ones (requests, events). kbench keeps its objects free of reference cycles (``tests/sim/test_collector.py`` checks
a scenario run), so reference counting frees what a run drops and the collector finds nothing to free; yet with the
default thresholds (700, 10, 10) it rescans the long-lived objects again and again, and even a young collection
costs about a microsecond an object it scans (each a cache miss). :func:`long_run` moves what exists now out of the
collector's generations (``gc.freeze``) and turns automatic collection off; :func:`settle` then collects what was
made since the last settle and freezes what survived (:func:`run_settled`: every :data:`SETTLE_EVERY` simulated
seconds). None of them changes any simulated result (no kbench logic depends on when objects are collected).

A settle's cost is the number of young objects alive at that moment, and in a steady cluster that number stops
growing after a few renewal intervals (what the nodes' requests in flight and the caches' latest objects hold), so
few settles cost less than many. Measured at 5,000 hollow nodes, 300 simulated seconds: the collector took 2.3-3.0 s
of a 10-13 s run with young collections every 50,000 allocations and a settle every 10 s, 0.44-0.54 s with a settle
every 300 s and none in between. The price: a reference cycle made by mistake waits up to :data:`SETTLE_EVERY`
simulated seconds to be freed, and one frozen while alive stays in memory until the run ends.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kbench.sim.engine import Engine

SETTLE_EVERY = 300.0
"""Simulated seconds between two :func:`settle` calls of a run."""


@contextmanager
def long_run() -> Iterator[None]:
    """Collect and freeze what exists, and run without automatic collections; afterwards, restore them and move
    every object the run left (the young ones uncollected: they would cost the first automatic collections a scan of
    what the run made since its last settle) to the oldest generation."""
    enabled = gc.isenabled()
    gc.collect()
    gc.freeze()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.unfreeze()
        if enabled:
            gc.enable()


def settle() -> None:
    """Collect what was made since the last freeze and freeze what survived: the cluster's state, not to be
    rescanned."""
    gc.collect(1)
    gc.freeze()


class Settler:
    """Settles a run stepped in small increments (for progress reports) every :data:`SETTLE_EVERY` simulated
    seconds: call it after each step."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.last = engine.now

    def __call__(self) -> None:
        if self.engine.now - self.last >= SETTLE_EVERY:
            settle()
            self.last = self.engine.now


def run_settled(engine: Engine, until: float) -> None:
    """Run ``engine`` to ``until`` (simulated seconds), settling every :data:`SETTLE_EVERY` seconds and at the end;
    call it inside :func:`long_run`."""
    while engine.now < until:
        engine.run(until=min(until, engine.now + SETTLE_EVERY))
        settle()
