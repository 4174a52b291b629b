"""Engine events/s on timeout chains, beside SimPy on the same workload in the same run.

Workload: 10,000 processes each looping on a timeout until 1,000,000 timeouts have fired in total. "periodic":
each process sleeps a fixed period (1.0 to 1.6 s by process, like heartbeats and resync loops); "jittered": each
sleep is exponential with mean 1 s (every event at a distinct time). Target: >= 3x SimPy's events/s, both timed the
same way: ``ROUNDS`` rounds each, a SimPy round just before each kbench round (so a busy neighbour weighs on both
alike), medians compared. ``extra_info`` also keeps the wall time of the workload's own generator work without any
engine (the generators stepped round-robin, kinder to the CPU cache than any event order, so the engine's cost per
event beyond it reads about 0.05 us high).
"""

from __future__ import annotations

import random
import statistics

import pytest
import simpy

from benchmarks.conftest import best_of, record
from kbench.sim import Engine

PROCESSES = 10_000
EVENTS = 1_000_000
ROUNDS = 5


def _delays(kind: str, i: int, rng: random.Random):
    if kind == "periodic":
        period = 1.0 + (i % 7) * 0.1
        while True:
            yield period
    while True:
        yield rng.expovariate(1.0)


def run_kbench(kind: str) -> None:
    engine, left, rng = Engine(), [EVENTS], random.Random(1)

    def proc(i):
        delays = _delays(kind, i, rng)
        while left[0] > 0:
            left[0] -= 1
            yield next(delays)

    for i in range(PROCESSES):
        engine.process(proc(i))
    engine.run()


def run_workload_only(kind: str) -> None:
    """The processes' own work (the same generators, stepped round-robin), with no engine."""
    left, rng = [EVENTS], random.Random(1)

    def proc(i):
        delays = _delays(kind, i, rng)
        while left[0] > 0:
            left[0] -= 1
            yield next(delays)

    gens = [proc(i) for i in range(PROCESSES)]
    while left[0] > 0:
        for gen in gens:
            gen.send(None)
            if left[0] <= 0:
                break


def run_simpy(kind: str) -> None:
    env, left, rng = simpy.Environment(), [EVENTS], random.Random(1)

    def proc(i):
        delays = _delays(kind, i, rng)
        while left[0] > 0:
            left[0] -= 1
            yield env.timeout(next(delays))

    for i in range(PROCESSES):
        env.process(proc(i))
    env.run()


@pytest.mark.parametrize("kind", ["periodic", "jittered"])
def test_engine_timeout_chain(benchmark, kind):
    simpy_rounds: list[float] = []

    def simpy_round() -> None:  # pedantic's setup: untimed, before each kbench round
        simpy_rounds.append(best_of(lambda: run_simpy(kind), repeat=1))

    benchmark.pedantic(run_kbench, args=(kind,), setup=simpy_round, rounds=ROUNDS, iterations=1, warmup_rounds=0)
    workload_only = best_of(lambda: run_workload_only(kind), repeat=2)
    record(
        benchmark,
        EVENTS,
        statistics.median(simpy_rounds),
        reference="simpy (median of rounds interleaved with kbench's)",
        workload=kind,
        target_ratio=3.0,
        workload_only_s=workload_only,
        engine_us_per_event=(benchmark.stats.stats.median - workload_only) / EVENTS * 1e6,
    )
