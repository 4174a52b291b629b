"""The GPU-sharing lab (issue 15): one replay of the openb default trace at 130% of the paper's cluster's GPUs.

``test_trace_replay[FGD]`` is the target: one FGD replay (about 10,700 arrivals on 1,213 GPU nodes: the shuffled
trace, its clones up to 130%, filter, score, select, GPU choice and bind per pod, the cluster's fragmentation after
every pod) in at most 3 s wall (the paper's simulator: about 10 minutes on 2 vCPUs). The other five policies are
measured beside it. The reference is :class:`kbench.gpushare.reference.ReferenceScheduler` (the plain Python mirror
of the Go code) on the first ``REFERENCE_PODS`` arrivals of the same replay, which must place them identically.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from benchmarks.conftest import record
from kbench.gpushare import config, reference, replay
from kbench.traces import openb

SEED, REFERENCE_PODS, TARGET_WALL = 42, 100, 3.0


@pytest.fixture(scope="module")
def workload() -> replay.Workload:
    directory = openb.data_dir()
    if not (directory / "openb_pod_list_default.csv").is_file():
        pytest.skip(f"openb trace not found at {directory} (set ${openb.ENV}; source: {openb.SOURCE})")
    return replay.Workload.read("default", directory)


def _reference(workload: replay.Workload, policy: config.Policy) -> tuple[list[int], float]:
    """Nodes of the first ``REFERENCE_PODS`` arrivals of the seeded replay, and the reference's seconds."""
    rng = np.random.default_rng(SEED)
    order = workload.arrivals(replay.PAPER_RATIO, rng)[:REFERENCE_PODS]
    rank = workload.node_order(rng)
    u = rng.random((len(order), 2))
    scheduler = reference.ReferenceScheduler(workload.nodes, policy, workload.typical, tie_rank=list(rank))
    started = time.perf_counter()
    nodes = [scheduler.schedule(workload.specs[i], (u[j, 0], 0.0, u[j, 1]))[0] for j, i in enumerate(order)]
    return nodes, time.perf_counter() - started


@pytest.mark.parametrize("name", list(config.POLICIES))
def test_trace_replay(benchmark, workload, name):
    policy = config.POLICIES[name]
    replay.run(workload, policy, seed=SEED)  # Numba's cache loaded outside the timed rounds
    results = []
    benchmark.pedantic(lambda: results.append(replay.run(workload, policy, seed=SEED)), rounds=5, warmup_rounds=0)
    placed, reference_seconds = _reference(workload, policy)
    for result in results:
        assert result.node[:REFERENCE_PODS].tolist() == placed
    pods = len(results[-1].node)
    record(
        benchmark,
        pods,
        reference_seconds * pods / REFERENCE_PODS,
        target=pods / TARGET_WALL if name == "FGD" else None,
        wall_s=benchmark.stats.stats.median if benchmark.stats else results[-1].wall_s,
        target_wall_s=TARGET_WALL,
        gpu_alloc_pct=results[-1].summary()["gpu_alloc_pct"],
        reference=f"ReferenceScheduler (plain Python) on the first {REFERENCE_PODS} arrivals, scaled",
    )
