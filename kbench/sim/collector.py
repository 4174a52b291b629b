"""Python's garbage collector during a long simulation run.

A cluster is millions of long-lived objects (stored objects, informer caches, Leases) and a stream of short-lived
ones (requests, events). The collector's default thresholds (700, 10, 10) rescan the long-lived ones again and
again; :func:`long_run` moves what exists now out of the collector's generations (``gc.freeze``) and collects the
young generation less often, and :func:`settle` freezes what survived a stretch of the run (:func:`run_settled`:
every :data:`SETTLE_EVERY` simulated seconds, as scenarios run). None of them changes any simulated result (no
kbench logic depends on when objects are collected). A frozen object is never collected, so a reference cycle
frozen while alive stays in memory until the run ends: keep the objects of a run free of cycles
(``tests/sim/test_collector.py`` checks a scenario run).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kbench.sim.engine import Engine

THRESHOLDS = (50_000, 20, 100)
"""gc.set_threshold during a run: a young collection every 50,000 net allocations instead of 700."""
SETTLE_EVERY = 10.0
"""Simulated seconds between two :func:`settle` calls of a run."""


@contextmanager
def long_run() -> Iterator[None]:
    """Collect and freeze what exists, run with :data:`THRESHOLDS`; restore both afterwards."""
    before = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
    try:
        yield
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()


def settle() -> None:
    """Collect the young generations and freeze what survived: the cluster's state, not to be rescanned."""
    gc.collect(1)
    gc.freeze()


def run_settled(engine: Engine, until: float) -> None:
    """Run ``engine`` to ``until`` (simulated seconds), settling every :data:`SETTLE_EVERY` seconds; call it inside
    :func:`long_run`."""
    while engine.now < until:
        engine.run(until=min(until, engine.now + SETTLE_EVERY))
        settle()
