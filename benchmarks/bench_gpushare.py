"""The GPU-sharing lab (issue 15): one replay of the openb default trace at 130% of the paper's cluster's GPUs.

``test_trace_replay[FGD]`` is the target: one FGD replay (about 10,800 arrivals on 1,213 GPU nodes: the shuffled
trace, its clones up to 130%, filter, score, select, GPU choice and bind per pod, the cluster's fragmentation after
every pod) in at most 3 s wall (the paper's simulator: about 10 minutes on 2 vCPUs). The other five policies are
measured beside it. A round replays three seeds (42-44), so ``wall_s_per_replay`` is a third of its median. The
reference is :class:`kbench.gpushare.reference.ReferenceScheduler` (the plain Python mirror of the Go code) on the
first ``REFERENCE_PODS`` arrivals of seed 42's replay, which must place them identically.
"""

from __future__ import annotations

import time

import pytest

from benchmarks.conftest import record
from kbench.gpushare import config, reference, replay
from kbench.traces import openb

SEED, SEEDS, REFERENCE_PODS, TARGET_WALL = 42, 3, 100, 3.0


@pytest.fixture(scope="module")
def workload() -> replay.Workload:
    directory = openb.data_dir()
    if not (directory / "openb_pod_list_default.csv").is_file():
        pytest.skip(f"openb trace not found at {directory} (set ${openb.ENV}; source: {openb.SOURCE})")
    return replay.Workload.read("default", directory)


def _reference(workload: replay.Workload, policy: config.Policy) -> tuple[list[int], float]:
    """Nodes of the first ``REFERENCE_PODS`` arrivals of the seeded replay, and the reference's seconds."""
    order, rank, u = replay.draws(workload, SEED)
    scheduler = reference.ReferenceScheduler(workload.nodes, policy, workload.typical, tie_rank=list(rank))
    started = time.perf_counter()
    nodes = [scheduler.schedule(workload.specs[i], (u[j, 0], u[j, 1]))[0] for j, i in enumerate(order[:REFERENCE_PODS])]
    return nodes, time.perf_counter() - started


@pytest.mark.parametrize("name", list(config.POLICIES))
def test_trace_replay(benchmark, workload, name):
    policy = config.POLICIES[name]
    replay.run(workload, policy, seed=SEED)  # Numba's cache loaded outside the timed rounds
    results: list[replay.Replay] = []

    def replays():  # a round replays SEEDS seeds: sub-second rounds vary too much on a shared 2-core VM
        results.extend(replay.run(workload, policy, seed=SEED + k) for k in range(SEEDS))

    benchmark.pedantic(replays, rounds=5, warmup_rounds=1)
    placed, reference_seconds = _reference(workload, policy)
    for result in results[::SEEDS]:
        assert result.node[:REFERENCE_PODS].tolist() == placed
    pods = sum(len(result.node) for result in results[-SEEDS:])
    median = benchmark.stats.stats.median if benchmark.stats else sum(r.wall_s for r in results[-SEEDS:])
    record(
        benchmark,
        pods,
        reference_seconds * pods / REFERENCE_PODS,
        target=pods / (SEEDS * TARGET_WALL) if name == "FGD" else None,
        wall_s_per_replay=median / SEEDS,
        target_wall_s=TARGET_WALL,
        gpu_alloc_pct=results[-SEEDS].summary()["gpu_alloc_pct"],
        reference=f"ReferenceScheduler (plain Python) on the first {REFERENCE_PODS} arrivals, scaled",
    )
    # one replay of the same code took 0.14 s in some runs and 0.20-0.21 s in others the same hour (DotProd,
    # GpuPacking, GpuClustering; three runs each): the gate flags a median 60% slower, not that noise
    benchmark.extra_info["regression_tolerance"] = 0.6
