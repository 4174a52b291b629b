"""The Numba kernels against the plain reference (:mod:`kbench.gpushare.reference`), pod by pod: every policy and
option on random clusters and pods, and the six policies on the real openb trace. Placements and GPUs must be
identical, the report's integer columns equal and its fragmentation equal to rounding. And the kernels' per-GPU
accounting: never outside 0..1000 milli, and a release gives back exactly what the bind took."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kbench.gpushare import arrays, kernel, reference, replay
from kbench.gpushare.config import NORM_METHODS, POLICIES, Policy
from kbench.gpushare.model import MILLI, Nodes, PodSpec
from kbench.gpushare.plugins import opengpushare
from kbench.traces import openb

MODELS = ("A", "B", "C")
VARIANTS = {
    **POLICIES,
    **{f"DotProd-share-{n}": Policy((("DotProductScore", 1000),), "DotProductScore", "share", n) for n in NORM_METHODS},
    **{f"DotProd-merge-{n}": Policy((("DotProductScore", 1000),), "best", "merge", n) for n in ("node", "pod")},
    "GpuPacking-worst": Policy((("GpuPackingScore", 1000),), "worst"),
    "GpuClustering-random": Policy((("GpuClusteringScore", 1000),), "random"),
    "mixed-FGD": Policy((("BestFitScore", 2), ("FGDScore", 3), ("GpuClusteringScore", 1)), "FGDScore"),
    "mixed-Random": Policy((("RandomScore", 1), ("BestFitScore", 1), ("DotProductScore", 5)), "random", "merge"),
}
"""The paper's six and the other options the configuration accepts."""

nodes_strategy = st.lists(
    st.tuples(
        st.sampled_from([4000, 8000, 32000, 64000, 96000, 128000]),
        st.sampled_from([16384, 65536, 262144]),
        st.sampled_from([0, 1, 2, 4, 8]),
        st.sampled_from(MODELS),
    ),
    min_size=1,
    max_size=10,
)
pod_strategy = st.builds(
    lambda cpu, memory, gpus, milli, models: PodSpec(
        cpu, memory, gpus[0], milli if gpus[1] is None else gpus[1], models if gpus[0] else ""
    ),
    st.sampled_from([0, 500, 2000, 8000, 16000, 32000]),
    st.sampled_from([0, 1024, 16384, 65536]),
    st.sampled_from([(0, 0), (1, None), (1, MILLI), (2, MILLI), (4, MILLI), (8, MILLI)]),
    st.sampled_from([100, 250, 300, 500, 750, 999]),
    st.sampled_from(["", "A", "B|C", "D", "A|D"]),
)
"""A CPU pod, a sharing pod or a whole-GPU pod, maybe asking for models (D is in no cluster)."""


def compare(
    workload: replay.Workload, policy: Policy, order: np.ndarray, rank: np.ndarray, u: np.ndarray, every: int = 1
) -> None:
    """Kernel and reference agree on every arrival of ``order`` (the report on every ``every``-th and the last)."""
    placed = replay.place(workload, policy, order, rank, u)
    ref = reference.ReferenceScheduler(workload.nodes, policy, workload.typical, tie_rank=list(rank))
    for j, i in enumerate(order):
        node, gpus = ref.schedule(workload.specs[i], (u[j, 0], u[j, 1]))
        where = f"arrival {j} ({workload.specs[i]})"
        assert placed.node[j] == node, where
        assert tuple(int(g) for g in placed.gpus[j] if g >= 0) == gpus, where
        if j % every and j != len(order) - 1:
            continue
        metrics = reference.cluster_metrics(ref.nodes, workload.typical)
        assert placed.report[j, kernel.USED] == metrics["used_gpu_milli"], where
        assert placed.report[j, kernel.CPU_USED] == metrics["used_cpu_milli"], where
        assert placed.report[j, kernel.FRAG] == pytest.approx(metrics["frag_gpu_milli"], rel=1e-9, abs=1e-6), where


def workload_of(rows: list[tuple[int, int, int, str]], specs: list[PodSpec]) -> replay.Workload:
    nodes = Nodes.from_rows([(f"n{i}", cpu, mem, gpus, model if gpus else "") for i, (cpu, mem, gpus, model) in
                             enumerate(rows)])  # fmt: skip
    return replay.Workload("test", [f"p{i}" for i in range(len(specs))], specs, nodes, reference.typical_pods(specs))


@pytest.mark.parametrize("name", VARIANTS)
@settings(max_examples=40, deadline=None)
@given(rows=nodes_strategy, specs=st.lists(pod_strategy, min_size=1, max_size=30), seed=st.integers(0, 2**16))
def test_kernel_matches_the_reference_on_random_clusters(name, rows, specs, seed):
    rng = np.random.default_rng(seed)
    workload = workload_of(rows, specs)
    order = np.arange(len(specs), dtype=np.int64)
    compare(workload, VARIANTS[name], order, rng.permutation(len(rows)), rng.random((len(specs), 2)))


@pytest.fixture(scope="module")
def trace_slice() -> replay.Workload:
    """The default trace on the first 120 nodes of the paper's cluster (a real, heterogeneous mix)."""
    try:
        full = replay.Workload.read("default")
    except openb.TraceError as error:
        pytest.skip(f"openb trace not present: {error}")
    nodes = Nodes(full.nodes.names[:120], full.nodes.cpu[:120], full.nodes.memory[:120], full.nodes.gpus[:120],
                  full.nodes.models[:120])  # fmt: skip
    return replay.Workload("default", full.names, full.specs, nodes, full.typical)


@pytest.mark.parametrize("name", POLICIES)
def test_kernel_matches_the_reference_on_the_openb_trace(trace_slice, name):
    order, rank, u = replay.draws(trace_slice, seed=7)
    compare(trace_slice, POLICIES[name], order[:700], rank, u[:700], every=50)


@settings(max_examples=60, deadline=None)
@given(rows=nodes_strategy, specs=st.lists(pod_strategy, min_size=1, max_size=25), seed=st.integers(0, 2**16))
def test_per_gpu_accounting_never_leaves_0_to_1000_milli_and_release_restores_the_node(rows, specs, seed):
    """Pods placed by the kernel's Reserve (random GPU choice) and bound, then released in a random order."""
    rng = np.random.default_rng(seed)
    workload = workload_of(rows, specs)
    ids = arrays.model_ids(workload.nodes)
    state, pods = arrays.state(workload.nodes), arrays.pods(specs, ids)
    empty = tuple(a.copy() for a in state)
    bound = []
    for i in range(len(specs)):
        pod = kernel.pod_at(pods, i)
        for n in rng.permutation(len(rows)):
            if opengpushare.fits(state, n, pod):
                gpus = np.full(8, -1, np.int64)
                if pod.milli >= MILLI:
                    taken = opengpushare.exclusive(state, n, pod, gpus)
                else:
                    gpus[0] = opengpushare.shared(state, n, pod, opengpushare.SEL_RANDOM, rng.random())
                    taken = int(pod.milli > 0)
                opengpushare.bind(state, n, pod, gpus, taken, 1)
                bound.append((n, pod, gpus, taken))
                assert (state.gpu_left >= 0).all() and (state.gpu_left <= MILLI).all()
                assert (state.cpu_left >= 0).all() and (state.memory_left >= 0).all()
                break
    for k in rng.permutation(len(bound)):
        n, pod, gpus, taken = bound[k]
        opengpushare.bind(state, n, pod, gpus, taken, -1)
        assert (state.gpu_left >= 0).all() and (state.gpu_left <= MILLI).all()
    for before, after in zip(empty, state, strict=True):
        assert np.array_equal(before, after)
