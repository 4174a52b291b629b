"""Tests for kbench.sim.engine: ordering, timers, processes, events, determinism."""

import pytest

from kbench.sim import Engine, Interrupt, Streams


def test_same_time_entries_run_fifo_and_urgent_first():
    eng, seen = Engine(), []
    eng.schedule(1.0, seen.append, "a")
    eng.schedule(1.0, seen.append, "b")
    eng.schedule(0.5, lambda _: eng.schedule_urgent(seen.append, "urgent"))
    eng.schedule(0.5, seen.append, "c")
    eng.run()
    assert seen == ["urgent", "c", "a", "b"]
    assert eng.now == 1.0


def test_urgent_scheduled_mid_bucket_preempts_the_rest_of_that_time():
    eng, seen = Engine(), []
    eng.schedule(2.0, lambda _: (seen.append("first"), eng.schedule_urgent(seen.append, "urgent")))
    eng.schedule(2.0, seen.append, "second")
    eng.run()
    assert seen == ["first", "urgent", "second"]


def test_cancel_skips_the_callback():
    eng, seen = Engine(), []
    handle = eng.schedule(1.0, seen.append, "x")
    eng.schedule(2.0, seen.append, "y")
    Engine.cancel(handle)
    Engine.cancel(handle)
    eng.run()
    assert seen == ["y"]
    assert eng.steps == 1


def test_negative_or_nan_delay_is_rejected():
    eng = Engine()
    with pytest.raises(ValueError, match="delay must be >= 0"):
        eng.schedule(-1, print)
    with pytest.raises(ValueError, match="delay must be >= 0"):
        eng.schedule(float("nan"), print)


def test_process_sleeping_a_negative_or_nan_delay_raises_out_of_run():
    for bad in (-1.0, float("nan")):
        eng = Engine()

        def proc(bad=bad):
            yield 1.0
            yield bad

        eng.process(proc())
        with pytest.raises(ValueError, match="delay must be >= 0"):
            eng.run()
        assert eng.now == 1.0


def test_trace_names_the_process_at_each_wake_up():
    eng = Engine(trace=True)

    def proc():
        yield 1.0
        yield 1

    eng.process(proc(), name="p")
    eng.run()
    assert eng.trace == [(0.0, "p"), (1.0, "p"), (2.0, "p"), (2.0, "p")]
    assert eng.steps == 4


def test_run_until_time_stops_before_later_entries_and_sets_clock():
    eng, seen = Engine(), []
    for t in (1.0, 2.0, 3.0):
        eng.schedule(t, seen.append, t)
    eng.run(until=2.0)
    assert seen == [1.0, 2.0] and eng.now == 2.0
    eng.run(until=2.5)
    assert seen == [1.0, 2.0] and eng.now == 2.5
    assert eng.peek() == 3.0
    with pytest.raises(ValueError, match="before now"):
        eng.run(until=1.0)
    eng.run()
    assert seen == [1.0, 2.0, 3.0]


def test_process_sleeps_waits_on_events_and_returns_a_value():
    eng = Engine()
    log = []

    def child():
        yield 2.0
        return "done"

    def parent():
        value = yield eng.timeout(1.0, value="tick")
        log.append((eng.now, value))
        result = yield eng.process(child())
        log.append((eng.now, result))
        yield 0.5
        log.append((eng.now, "slept"))

    eng.process(parent())
    eng.run()
    assert log == [(1.0, "tick"), (3.0, "done"), (3.5, "slept")]


def test_failed_event_raises_inside_the_waiting_process():
    eng = Engine()
    ev, caught = eng.event(), []

    def waiter():
        try:
            yield ev
        except KeyError as exc:
            caught.append((eng.now, exc.args[0]))

    eng.process(waiter())
    eng.schedule(4.0, lambda _: ev.fail(KeyError("boom")))
    eng.run()
    assert caught == [(4.0, "boom")]


def test_unwaited_process_crash_propagates_out_of_run():
    eng = Engine()

    def bad():
        yield 1.0
        raise RuntimeError("model bug")

    eng.process(bad())
    with pytest.raises(RuntimeError, match="model bug"):
        eng.run()


def test_waited_process_crash_fails_its_event():
    eng = Engine()
    seen = []

    def bad():
        yield 1.0
        raise RuntimeError("child failed")

    def parent():
        try:
            yield eng.process(bad())
        except RuntimeError as exc:
            seen.append(str(exc))

    eng.process(parent())
    eng.run()
    assert seen == ["child failed"]


def test_bad_yield_is_raised_in_the_process():
    eng = Engine()
    seen = []

    def proc():
        try:
            yield "soon"
        except TypeError as exc:
            seen.append(str(exc))

    eng.process(proc(), name="p")
    eng.run()
    assert seen and "p yielded 'soon'" in seen[0]


def test_interrupt_abandons_the_sleep():
    eng = Engine()
    log = []

    def sleeper():
        try:
            yield 10.0
            log.append("woke")
        except Interrupt as intr:
            log.append((eng.now, intr.cause))
        yield 1.0
        log.append((eng.now, "after"))

    proc = eng.process(sleeper())
    eng.schedule(3.0, lambda _: proc.interrupt("node stopped"))
    eng.run()
    assert log == [(3.0, "node stopped"), (4.0, "after")]
    assert not proc.is_alive
    with pytest.raises(RuntimeError, match="terminated"):
        proc.interrupt()


def test_a_process_interrupting_itself_on_waking_gets_the_interrupt_not_its_next_sleep():
    """The wake-up that runs the generator is the entry the interrupt cancels: the run loop files it again for the
    sleep the generator yields next, and must skip it there (the interrupt is thrown at once instead)."""
    eng = Engine(trace=True)
    log = []

    def proc():
        yield 1.0
        me.interrupt("self")
        try:
            yield 5.0
        except Interrupt as intr:
            log.append((eng.now, intr.cause))
        yield 1.0
        log.append((eng.now, "after"))

    me = eng.process(proc(), name="p")
    eng.run()
    assert log == [(1.0, "self"), (2.0, "after")]
    # start, wake-up, the interrupt thrown, wake-up, the process event fired: nothing at 6.0
    assert [t for t, label in eng.trace if label == "p"] == [0.0, 1.0, 1.0, 2.0, 2.0]


def test_interrupt_while_waiting_on_an_event_detaches_from_it():
    eng = Engine()
    ev, log = eng.event(), []

    def waiter():
        try:
            yield ev
        except Interrupt:
            log.append("interrupted")
        yield 5.0
        log.append("done")

    proc = eng.process(waiter())
    eng.schedule(1.0, lambda _: proc.interrupt())
    eng.schedule(2.0, lambda _: ev.succeed("late"))
    eng.run()
    assert log == ["interrupted", "done"]


def test_any_of_returns_the_first_event():
    eng = Engine()
    got = []

    def proc():
        slow, fast = eng.timeout(5.0, "slow"), eng.timeout(2.0, "fast")
        first = yield eng.any_of([slow, fast])
        got.append((eng.now, first.value))

    eng.process(proc())
    eng.run()
    assert got == [(2.0, "fast")]


def test_run_until_event_stops_when_it_is_processed():
    eng = Engine()
    stop = eng.timeout(3.0)
    later = []
    eng.schedule(3.0, later.append, "same time, scheduled after")
    eng.schedule(7.0, later.append, "later")
    eng.run(until=stop)
    assert eng.now == 3.0 and later == []
    eng.run()
    assert later == ["same time, scheduled after", "later"]


def test_event_cannot_trigger_twice():
    eng = Engine()
    ev = eng.event().succeed(1)
    with pytest.raises(RuntimeError, match="already triggered"):
        ev.succeed(2)
    with pytest.raises(RuntimeError, match="not been triggered"):
        _ = eng.event().value


def _stochastic_model(seed: int, trace: bool = True) -> Engine:
    eng, streams = Engine(trace=trace), Streams(seed)

    def client(i):
        rng = streams.python(f"client/{i}")
        while eng.now < 50:
            yield rng.expovariate(1.0)
            if rng.random() < 0.1:
                yield eng.timeout(rng.random())

    for i in range(20):
        eng.process(client(i), name=f"client/{i}")
    eng.run()
    return eng


def test_same_seed_gives_an_identical_event_trace():
    a, b = _stochastic_model(7), _stochastic_model(7)
    assert len(a.trace) > 500
    assert a.trace == b.trace
    assert _stochastic_model(8).trace != a.trace


def test_trace_does_not_change_the_run():
    traced, plain = _stochastic_model(3, trace=True), _stochastic_model(3, trace=False)
    assert traced.now == plain.now and traced.steps == plain.steps


def test_resource_grants_slots_first_come_first_served():
    from kbench.sim import Resource

    eng = Engine()
    cpu = Resource(eng, 2)
    done = []

    def job(name, work):
        yield cpu.acquire()
        yield work
        cpu.release()
        done.append((eng.now, name))

    for name, work in (("a", 3.0), ("b", 1.0), ("c", 1.0), ("d", 1.0)):
        eng.process(job(name, work))
    eng.run()
    assert done == [(1.0, "b"), (2.0, "c"), (3.0, "a"), (3.0, "d")]
    assert cpu.in_use == 0 and cpu.queued == 0
    with pytest.raises(RuntimeError, match="without a matching acquire"):
        cpu.release()
    with pytest.raises(ValueError, match="capacity must be a positive integer"):
        Resource(eng, 0)
