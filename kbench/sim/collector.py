"""Python's garbage collector during a long simulation run.

A cluster is millions of long-lived objects (stored objects, informer caches, Leases) and a stream of short-lived
ones (requests, events). Reference counting frees all that a run drops: the library's scenarios make no reference
cycle (``tests/sim/test_collector.py`` runs each built-in; before an API error was answered without the traceback
whose frames held the request, ``load``, ``rolling_update`` and ``job_waves`` made 33,000-104,000 cyclic objects).
Yet with the default thresholds (700, 10, 10) the collector rescans the long-lived objects again and again, and a
collection costs about 0.8 us an object it scans (57 ms for the 69,000 young objects of 5,000 hollow nodes).
:func:`long_run` moves what exists now out of the collector's generations (``gc.freeze``) and turns automatic
collection off; :func:`settle` then freezes what was made since the last settle, at times collecting it first
(:func:`run_settled`, :class:`Settler`: every :data:`SETTLE_EVERY` simulated seconds). None of them changes any
simulated result (no kbench logic depends on when objects are collected).

A settle scans the objects made since the last one that are still alive: the state they became (each object is
scanned once, at the first settle it lives through) and what is in flight at that moment (requests and their
handles), so few settles cost less than many. At 5,000 hollow nodes over 300 simulated seconds the collector took
2.3-3.0 s of a 10-13 s run with young collections every 50,000 allocations and a settle every 10 s, and 0.44-0.54 s
with a settle every 300 s and no other collection.

Since the library makes no cycles, most settles only freeze: one in :data:`CHECK_EVERY` collects first (the first
settle of a run among them), and so does every settle after a later one whose collection found garbage, until one
finds none. (In a density run of 1,000 nodes x 30 pods the settles took about 6% of the run when each collected.) The
run's first collection is not taken as a sign that the run makes cycles: it also frees what the run's start leaves
once, such as the few cyclic objects Numba's code generator leaves when it loads a kernel from its cache at the
kernel's first call (the scheduler's at the first pod, the busy-time record's at its first flush); taken as one, it
made the next settle collect too (0.49 s of a 19.7 s density run of 500 nodes x 30 pods, 0.60 s of 47.1 s at 1,000).
The price: a reference cycle is freed at the next settle if that one collects, and otherwise frozen with the rest and
kept until the run ends; a run that keeps making cycles is caught at its next check after the first and collected at
every settle from then on.

The cluster itself is a web of reference cycles, so once dropped only a full collection frees it, and the interpreter
makes one as it exits. :func:`skip_final_collection` lets a process kbench owns end without it.
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

CHECK_EVERY = 4
"""One settle in this many collects before it freezes (while the collections find no garbage)."""


class _Checks:
    """When the next settle collects: the settles since the last collection, whether it found garbage, and whether
    the run has collected yet."""

    since, found, first = 0, False, True


_checks = _Checks()


@contextmanager
def long_run() -> Iterator[None]:
    """Collect and freeze what exists, and run without automatic collections; afterwards, restore them and move
    every object the run left (the young ones uncollected: they would cost the first automatic collections a scan of
    what the run made since its last settle) to the oldest generation."""
    enabled = gc.isenabled()
    gc.collect()
    gc.freeze()
    gc.disable()
    _checks.since, _checks.found, _checks.first = CHECK_EVERY - 1, False, True  # the run's first settle collects
    try:
        yield
    finally:
        gc.freeze()
        gc.unfreeze()
        if enabled:
            gc.enable()


def settle() -> bool:
    """Freeze what was made since the last freeze (the cluster's state, not to be rescanned), first collecting it
    when due (:data:`CHECK_EVERY`); returns whether it collected."""
    _checks.since += 1
    due = _checks.found or _checks.since >= CHECK_EVERY
    if due:  # what the run's first collection finds includes its start's one-off garbage: not a sign of cycles
        _checks.found, _checks.since = gc.collect(1) > 0 and not _checks.first, 0
        _checks.first = False
    gc.freeze()
    return due


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


def skip_final_collection() -> None:
    """Freeze every object (``gc.freeze``) so the collection the interpreter makes as it exits (Py_FinalizeEx) scans
    none of them: a process ending after a run would otherwise spend seconds there. A cluster is one web of reference
    cycles (its components hold the engine, whose queue holds their callbacks), so once dropped only a collection
    frees it, and that collection scans every object (a density run of 500 nodes x 30 pods: 5.3 s more before its
    process ended, after 21.5 s of run). The operating system takes the memory back at once.

    For a process kbench owns and is about to end (the ``kbench`` command, a local sweep's worker): objects in
    reference cycles are not finalized, so anything they would flush must be closed by then, as kbench's writers
    are."""
    gc.freeze()
