"""The collector settings of long runs: restored afterwards, and no garbage kept alive by them."""

import gc
import os
import subprocess
import sys
from collections import Counter
from contextlib import contextmanager
from pathlib import Path

import pytest

from kbench.metrics.slis import RunResult
from kbench.scenarios import library, steps
from kbench.sim import Engine, collector

ROOT = Path(__file__).resolve().parents[2]


def test_long_run_turns_automatic_collection_off_and_restores_it_and_unfreezes():
    assert gc.isenabled()
    with collector.long_run():
        assert not gc.isenabled()
        assert gc.get_freeze_count() > 0
    assert gc.isenabled()
    assert gc.get_freeze_count() == 0
    gc.disable()
    try:
        with collector.long_run():
            pass
        assert not gc.isenabled()  # restored as it was, not turned on
    finally:
        gc.enable()


def test_long_run_restores_the_collector_when_the_run_raises():
    try:
        with collector.long_run():
            raise KeyboardInterrupt  # a run stopped by hand, or a scenario that fails
    except KeyboardInterrupt:
        pass
    assert gc.isenabled() and gc.get_freeze_count() == 0


def test_settler_settles_once_every_settle_every_seconds():
    engine, step = Engine(), collector.SETTLE_EVERY / 4
    with collector.long_run():
        settle, frozen = collector.Settler(engine), []
        for _ in range(9):
            kept = [[i] for i in range(100)]  # noqa: F841 (alive at the next settle, so frozen by it)
            engine.run(until=engine.now + step)
            before = gc.get_freeze_count()
            settle()
            frozen.append(gc.get_freeze_count() > before)
    assert frozen == [False, False, False, True] * 2 + [False]


def test_one_settle_in_check_every_collects_and_every_one_after_a_collection_that_found_garbage():
    every = collector.CHECK_EVERY
    with collector.long_run():
        collected = [collector.settle() for _ in range(2 * every + 1)]
        assert collected == ([True] + [False] * (every - 1)) * 2 + [True]  # the run's first settle collects
        collected = [collector.settle() for _ in range(every - 1)]
        cycle: list = []
        cycle.append(cycle)  # garbage the next collection finds
        del cycle
        collected += [collector.settle() for _ in range(3)]
        # the one due collects and finds it; the next collects too, finds nothing, and the one after does not
        assert collected == [False] * (every - 1) + [True, True, False]


def test_the_runs_first_collection_finding_garbage_does_not_make_the_next_settle_collect():
    """The run's first settle collects what its start left once (e.g. Numba loading a kernel from its cache leaves a
    few cyclic objects): the next settle only freezes; a later check that finds garbage makes the next collect."""
    every = collector.CHECK_EVERY
    with collector.long_run():
        cycle: list = []
        cycle.append(cycle)  # garbage the run's first collection finds
        del cycle
        collected = [collector.settle() for _ in range(every + 1)]
        assert collected == [True] + [False] * (every - 1) + [True]
        assert collector._checks.found is False  # that check found nothing
        collected = [collector.settle() for _ in range(every - 1)]
        cycle = []
        cycle.append(cycle)  # garbage the next check finds
        del cycle
        collected += [collector.settle(), collector.settle()]
        assert collected == [False] * (every - 1) + [True, True]  # that check found it: the next settle collects


def test_run_settled_reaches_the_horizon_and_freezes_what_survives_each_step():
    engine, fired = Engine(), []
    engine.schedule(25.0, fired.append, "a")
    engine.schedule(31.0, fired.append, "b")
    with collector.long_run():
        frozen = gc.get_freeze_count()
        kept = [[i] for i in range(1000)]  # alive across the steps, so frozen by the first settle
        collector.run_settled(engine, 27.5)
        assert gc.get_freeze_count() >= frozen + len(kept)
    assert engine.now == 27.5 and fired == ["a"]


SMALL = {
    "density": {"nodes": 20, "pods_per_node": 5},
    "probe-storm": {"nodes": 5, "pods_per_node": 4},
    "scheduler-perf": {"nodes": 100, "pods": 100},
}
"""Parameters that keep a built-in small (the others run with their defaults, each a few seconds at most)."""


def cycles_left(name: str) -> tuple[RunResult, Counter]:
    """Run the built-in ``name`` as ``Scenario.run`` does, a second time with the collector saving what it finds
    instead of freeing it; returns that run's result and the kinds of object the collector found."""
    scenario = library.SCENARIOS[name](**SMALL.get(name, {}))
    scenario.run(progress=False)
    saved = gc.get_debug()
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        result = scenario.run(progress=False)
        gc.collect()
        kinds = Counter(type(o).__qualname__ for o in gc.garbage)
    finally:
        gc.set_debug(saved)
        gc.garbage.clear()
    return result, kinds


@pytest.mark.parametrize("name", sorted(library.SCENARIOS))
def test_a_scenario_run_makes_no_reference_cycle(name):
    """A run collects only when it settles (one settle in ``CHECK_EVERY``, every ``SETTLE_EVERY`` simulated seconds),
    and every settle freezes what is alive: a reference cycle would wait minutes to be freed, and one frozen (e.g. a
    Lease renewal scheduled ahead, whose handle holds its own callback) would stay in memory until the run ends,
    millions of them in a 5,000-node run. So kbench makes none: run a scenario as ``Scenario.run`` does (after a
    first run, which loads what loads once: the compiled kernels), with the collector saving what it finds instead of
    freeing it, then collect everything the run left: nothing, during the run or after it. (Found this way and
    mended: an API error answered with its traceback, whose frames held the request; a stopped informer and its
    watch; an informer as the value of its own ``synced`` event.)"""
    result, kinds = cycles_left(name)
    assert result.passed, result.problems
    assert not kinds, f"reference cycles left for the collector: {kinds.most_common(5)}"


def test_a_first_run_on_a_machine_with_no_compiled_kernels_keeps_nothing_alive(tmp_path):
    """As above for a scenario that preempts, on a machine whose Numba cache is empty (a new environment, or a
    changed kernel): its first run compiles the kernels. The preemption dry run's kernel, compiled on the
    simulation's stack, kept that stack's frames, so the whole first cluster stayed in memory until Numba let it go
    during the next run, where the collector found it (5,000 nodes: gigabytes, in a sweep's next point). A process
    of its own, with an empty cache."""
    script = (
        "from tests.sim.test_collector import cycles_left\n"
        "result, kinds = cycles_left('preemption')\n"
        "assert result.counts['preemptions'] > 0, result.counts\n"
        "assert result.passed, result.problems\n"
        "assert not kinds, kinds.most_common(5)\n"
        "from kbench.scheduler import _preemption_kernels as kp\n"
        "assert len(kp.dry_run.overloads) == 1, kp.dry_run.signatures\n"  # the call used the version compiled apart
    )
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)}
    run = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-3000:]
    assert any(tmp_path.rglob("*dry_run*.nbi")), "the dry run's kernel was not compiled into the empty cache"


def test_a_runs_wall_time_leaves_out_the_collection_of_what_the_process_dropped_before(monkeypatch):
    """``result.wall_seconds`` starts after ``long_run``'s first collection, which frees what the process dropped
    before (in a sweep's worker, the previous point's cluster, seconds at thousands of nodes): a clock that this
    collection moves by 1,000 s shows none of it in the run's wall time."""
    clock = [0.0]
    long_run = collector.long_run

    @contextmanager
    def slow_first_collection():
        with long_run():
            clock[0] += 1000.0
            yield

    monkeypatch.setattr(collector, "long_run", slow_first_collection)
    monkeypatch.setattr(steps.time, "perf_counter", lambda: clock[0])
    result = library.density(3, 2).run(progress=False)
    assert result.passed, result.problems
    assert clock[0] == 1000.0 and result.wall_seconds == 0.0


EXIT_SCRIPT = """
import gc, os, queue, runpy, sys
gc.disable()  # no collection before the exit's
from kbench.sim import collector
from kbench.sweep import runner

class Cyclic:
    def __del__(self, write=os.write):  # os.write bound now: the exit clears the modules first
        write(1, b"finalized\\n")

item = Cyclic()
item.me = item
del item  # garbage that only a collection finds
if sys.argv[1] == "skip":
    collector.skip_final_collection()
elif sys.argv[1] == "local-worker":  # as a local sweep's worker starts
    runner._worker_init(None, queue.Queue())
elif sys.argv[1] == "dask-worker":  # a Dask worker is not kbench's to end
    runner._worker_init(None)
print("exiting", flush=True)
if sys.argv[1] == "command":  # python -m kbench.cli, as the kbench command runs
    sys.argv = ["kbench", "scenario", "list"]
    runpy.run_module("kbench.cli", run_name="__main__", alter_sys=True)
"""


@pytest.mark.parametrize(
    ("how", "finalized"),
    [("default", True), ("skip", False), ("command", False), ("local-worker", False), ("dask-worker", True)],
)
def test_a_process_kbench_ends_exits_without_collecting_what_it_made(how, finalized):
    """``skip_final_collection`` (the kbench command calls it after its work, a local sweep's worker at its exit):
    the interpreter's last collection does not scan the objects left, so a cycle left as garbage is not finalized; a
    process that does not call it (a Dask worker, a user's script) collects it as it exits."""
    run = subprocess.run([sys.executable, "-c", EXIT_SCRIPT, how], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-3000:]
    lines = run.stdout.splitlines()
    assert lines[0] == "exiting" and ("finalized" in lines) == finalized, run.stdout[-3000:]
    assert ("density: CL2 density" in run.stdout) == (how == "command")  # the command ran
