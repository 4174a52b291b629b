"""Property test: the engine runs random programs in exactly the order of a plain heap of (time, priority, seq).

A program is a set of callbacks ("nodes") that, when run, schedule further nodes at random delays (with many
exact ties and zero delays, so entries land in the bucket being run), schedule urgent nodes, cancel earlier
handles, trigger events and raise; plus processes that sleep and wait on those events; and a few
``run(until=...)`` stops. The same program runs on :class:`~kbench.sim.Engine` and on :class:`_Reference`,
the ordering contract in its plainest form, and both must log the same calls at the same times.
"""

from __future__ import annotations

import itertools
from heapq import heappop, heappush

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kbench.sim import Engine
from kbench.sim import engine as engine_module

NODES, EVENTS, BUDGET = 8, 4, 300


class _Boom(Exception):
    """Raised by a node to check that a failed callback leaves the rest of its time's work ahead of later work."""


class _Reference:
    """Heap of ``(time, priority, seq, entry)``: urgent (0) before normal (1), FIFO by scheduling order."""

    def __init__(self) -> None:
        self.now, self.steps, self._heap, self._seq = 0.0, 0, [], itertools.count()

    def schedule(self, delay, callback, arg=None):
        entry = [callback, arg]
        heappush(self._heap, (self.now + delay, 1, next(self._seq), entry))
        return entry

    def schedule_urgent(self, callback, arg=None):
        entry = [callback, arg]
        heappush(self._heap, (self.now, 0, next(self._seq), entry))
        return entry

    def peek(self):
        return self._heap[0][0] if self._heap else float("inf")

    def run(self, until=None):
        horizon = float("inf") if until is None else until
        while self._heap and self._heap[0][0] <= horizon:
            self.now, _, _, entry = heappop(self._heap)
            if entry[0] is not None:
                self.steps += 1
                entry[0](entry[1])
        if until is not None:
            self.now = until


class _RefEvent:
    """kbench's Event rules on the reference queue: triggering fires the callbacks as an urgent entry."""

    def __init__(self, queue: _Reference) -> None:
        self.queue, self.callbacks, self.triggered = queue, [], False

    def succeed(self) -> None:
        self.triggered = True
        self.queue.schedule_urgent(self._fire)

    def add_callback(self, callback) -> None:
        if self.callbacks is None:
            self.queue.schedule_urgent(callback, self)
        else:
            self.callbacks.append(callback)

    def _fire(self, _) -> None:
        callbacks, self.callbacks = self.callbacks, None
        for callback in callbacks:
            callback(self)


class _RefProcess:
    """kbench's Process rules on the reference queue: start urgent, sleep as a timer, wake inside the event's fire."""

    def __init__(self, queue: _Reference, steps, events, log) -> None:
        self.queue, self.steps, self.events, self.log = queue, iter(steps), events, log
        self.name = len(log)
        queue.schedule_urgent(self._resume)

    def _resume(self, _) -> None:
        step = next(self.steps, None)
        if step is None:
            self.queue.schedule_urgent(lambda _: None)  # the process's own event fires, with nobody waiting
            return
        self.log.append(("process step", self.queue.now))
        kind, x = step
        if kind == "sleep":
            self.queue.schedule(x, self._resume)
        else:
            self.events[x].add_callback(self._resume)


def _engine_process(eng: Engine, steps, events, log):
    for kind, x in steps:
        log.append(("process step", eng.now))
        yield x if kind == "sleep" else events[x]


def _play(queue, program, make_event, start_process) -> list:
    """Run ``program`` on ``queue`` (the engine or the reference); returns the log of what ran when."""
    nodes, processes, starts, stops = program
    log, handles, events, budget = [], [], [make_event() for _ in range(EVENTS)], [BUDGET]

    def node(i):
        log.append((i, queue.now))
        budget[0] -= 1
        if budget[0] < 0:
            return
        for action in nodes[i]:
            if action[0] == "at":
                handles.append(queue.schedule(action[1], node, action[2]))
            elif action[0] == "urgent":
                handles.append(queue.schedule_urgent(node, action[1]))
            elif action[0] == "cancel" and handles:
                handles[action[1] % len(handles)][0] = None
            elif action[0] == "fire" and not events[action[1]].triggered:
                events[action[1]].succeed()
            elif action[0] == "boom":
                raise _Boom

    for delay, i in starts:
        handles.append(queue.schedule(delay, node, i))
    for steps in processes:
        start_process(steps, events, log)
    for until in [*sorted(stops), None]:
        while True:
            try:
                queue.run(until=until if until is None or until >= queue.now else queue.now)
                break
            except _Boom:
                log.append(("boom", queue.now))
        log.append(("stopped", queue.now, queue.peek(), queue.steps))
    return log


_delays = st.one_of(
    st.sampled_from([0.0, 0.0, 0.5, 1.0, 1.0, 1.5, 2.0]),
    st.floats(0.0, 4.0),
    st.sampled_from([1e-7, 2e-7, 3e3]),
)
_actions = st.one_of(
    st.tuples(st.just("at"), _delays, st.integers(0, NODES - 1)),
    st.tuples(st.just("urgent"), st.integers(0, NODES - 1)),
    st.tuples(st.just("cancel"), st.integers(0, 10**6)),
    st.tuples(st.just("fire"), st.integers(0, EVENTS - 1)),
    st.tuples(st.just("boom")),
)
_steps = st.one_of(st.tuples(st.just("sleep"), _delays), st.tuples(st.just("wait"), st.integers(0, EVENTS - 1)))
_programs = st.tuples(
    st.lists(st.lists(_actions, max_size=4), min_size=NODES, max_size=NODES),
    st.lists(st.lists(_steps, max_size=6), max_size=5),
    st.lists(st.tuples(_delays, st.integers(0, NODES - 1)), min_size=1, max_size=25),
    st.lists(st.floats(0.0, 6.0), max_size=3),
)


def _run_engine(program, trace: bool = False) -> list:
    eng = Engine(trace=trace)
    return _play(
        eng, program, eng.event, lambda steps, events, log: eng.process(_engine_process(eng, steps, events, log))
    )


def _run_reference(program) -> list:
    ref = _Reference()
    return _play(ref, program, lambda: _RefEvent(ref), lambda steps, events, log: _RefProcess(ref, steps, events, log))


@pytest.mark.parametrize("target,window", [(engine_module._TARGET, engine_module._MIN_WINDOW), (2, 3)])
@settings(max_examples=150, deadline=None)
@given(program=_programs)
def test_engine_runs_programs_in_reference_order(program, target, window):
    expected = _run_reference(program)
    with pytest.MonkeyPatch.context() as mp:  # (2, 3): retune the bucket width every few entries
        mp.setattr(engine_module, "_TARGET", target)
        mp.setattr(engine_module, "_MIN_WINDOW", window)
        assert _run_engine(program) == expected
        assert _run_engine(program, trace=True) == expected


def test_infinite_delay_runs_last_in_fifo_order():
    eng, seen = Engine(), []
    eng.schedule(float("inf"), seen.append, "a")
    eng.schedule(1e308, seen.append, "huge")
    eng.schedule(float("inf"), seen.append, "b")
    eng.schedule(2.0, seen.append, "finite")
    eng.run()
    assert seen == ["finite", "huge", "a", "b"]
    assert eng.now == float("inf")
