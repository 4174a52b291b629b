"""Preemption cycles per second at 5,000 nodes: a failed scheduling cycle and DefaultPreemption's PostFilter,
compiled, beside the plain reference in the same run.

Cluster: 5,000 nodes of two machine sizes (4 and 8 CPU), full of low-priority pods of mixed sizes (500m-1.5 CPU),
priorities (0-3) and start times, a fifth of them under PodDisruptionBudgets with little left to disrupt. Each
round brings 20 high-priority 3-CPU pods that fit nowhere: every one is a scheduling cycle that fails (its FitError
diagnosed in the kernel) and a PostFilter that finds potential nodes, dry-runs preemption from a random offset
until it has calculateNumCandidates' max(10% of the nodes, ``minCandidateNodesAbsolute`` 100) = 500 candidates,
and picks one; nothing is
evicted, so rounds see the same cluster. The reference is ``Framework.schedule`` and the evaluator's reference dry
run (the filters over the state with the victims removed and re-added), timed on one pod. Both must choose the same
node and victims. Compilation happens before the timed rounds.
"""

from __future__ import annotations

import time

import numpy as np

from benchmarks.conftest import record
from kbench.api.core import Node, Pod
from kbench.api.policy import PodDisruptionBudget
from kbench.scheduler.config import parse_config
from kbench.scheduler.framework import Framework
from kbench.scheduler.kernel import KernelScheduler
from kbench.scheduler.state import ClusterState

NODES, PREEMPTORS, SEED = 5_000, 20, 1
SIZES = ("500m", "1", "1500m")


def _pod(name: str, cpu: str, priority: int, labels: dict, start: int | None = None) -> Pod:
    manifest = {
        "metadata": {"name": name, "namespace": "bench", "labels": labels},
        "spec": {"priority": priority, "containers": [{"name": "c", "resources": {"requests": {"cpu": cpu}}}]},
    }
    if start is not None:
        manifest["status"] = {"startTime": f"2026-01-01T{start // 3600:02d}:{start // 60 % 60:02d}:{start % 60:02d}Z"}
    return Pod.from_manifest(manifest)


def full_cluster(compiled: bool) -> tuple[KernelScheduler, object]:
    """The full heterogeneous cluster and its DefaultPreemption plugin (compiled dry run or the reference)."""
    rng = np.random.default_rng(SEED)
    nodes = [
        Node.from_manifest(
            {
                "metadata": {"name": f"n{i}"},
                "status": {"allocatable": {"cpu": "8" if i % 2 else "4", "memory": "64Gi", "pods": "110"}},
            }
        )  # fmt: skip
        for i in range(NODES)
    ]
    budgets = [
        PodDisruptionBudget.from_manifest(
            {
                "metadata": {"name": f"pdb-{app}", "namespace": "bench"},
                "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": app}}},
                "status": {"disruptionsAllowed": allowed},
            }
        )  # fmt: skip
        for app, allowed in (("a", 50), ("b", 0))
    ]
    state = ClusterState(nodes)
    fw = Framework(parse_config().profile(), state, 0, SEED, pdbs=lambda: budgets)
    k = 0
    for i in range(NODES):
        free = 8000 if i % 2 else 4000
        while True:
            size = SIZES[rng.integers(len(SIZES))]
            milli = int(float(size.rstrip("m")) * (1 if size.endswith("m") else 1000))
            if milli > free - 200:
                break
            labels = {"app": "ab"[rng.integers(2)]} if rng.integers(5) == 0 else {"app": "free"}
            state.bind(_pod(f"low-{k}", size, int(rng.integers(4)), labels, int(rng.integers(3600))), i)
            free -= milli
            k += 1
    plugin = fw.post_filters[0]
    plugin.evaluator.compiled = compiled
    return KernelScheduler(fw), plugin


def cycle(kernel: KernelScheduler, plugin, pod: Pod):
    """A failed scheduling cycle, then PostFilter."""
    result = kernel.schedule(pod)
    assert result.node is None
    return plugin.post_filter(pod, 7200.0)


def test_preemption_cycles(benchmark):
    kernel, plugin = full_cluster(compiled=True)
    high = [_pod(f"high-{j}", "3", 100, {}) for j in range(PREEMPTORS)]
    cycle(kernel, plugin, high[0])  # compiles the kernels
    outcomes = []
    benchmark.pedantic(lambda: outcomes.extend(cycle(kernel, plugin, p) for p in high), rounds=5, warmup_rounds=1)
    reference_kernel, reference = full_cluster(compiled=False)
    kernel_check, checked = full_cluster(compiled=True)
    started = time.perf_counter()
    want = cycle(reference_kernel, reference, high[0])
    reference_seconds = time.perf_counter() - started
    got = cycle(kernel_check, checked, high[0])
    assert got.node == want.node and [p.key for p in got.victims] == [p.key for p in want.victims]
    assert want.node and outcomes and all(o.node for o in outcomes)
    record(
        benchmark,
        PREEMPTORS,
        reference_seconds * PREEMPTORS,
        candidates_per_cycle=len(outcomes[-1].candidates),
        victims_per_cycle=len(outcomes[-1].victims),
        reference="Framework.schedule + the evaluator's reference dry run (NumPy filters)",
    )
    info = benchmark.extra_info
    info.update(cycles_per_s=info["ops_per_s"], reference_cycles_per_s=info["reference_ops_per_s"])
