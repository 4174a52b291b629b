"""The plain reference of the FGD simulator's scheduling: hand-computed golden cases (the arithmetic in comments),
the repository's own Go test cases, and a property test of binding and releasing."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kbench.gpushare import config, reference
from kbench.gpushare.model import Nodes, PodSpec
from kbench.gpushare.reference import (
    NodeResource,
    ReferenceScheduler,
    ScoreError,
    bind,
    cluster_metrics,
    dot_product_score,
    fgd_score,
    fits,
    node_frag,
    node_sub,
    normalize_score,
    plugin_score,
    release,
    select_gpus,
    typical_pods,
)


def node(
    cpu_left: int,
    gpus: list[int],
    gpu_model: str = "V100",
    cpu_capacity: int = 64000,
    memory_left: int = 1 << 20,
    pods_left: int = 10,
    affinity: dict[str, int] | None = None,
) -> NodeResource:
    """A node with plenty of memory and pod slots unless told."""
    return NodeResource(cpu_left, cpu_capacity, memory_left, pods_left, gpus, gpu_model, affinity or {})


def share(milli: int, cpu: int = 1000, models: str = "") -> PodSpec:
    return PodSpec(cpu, 100, 1, milli, models)


def whole(gpus: int, cpu: int = 1000, models: str = "") -> PodSpec:
    return PodSpec(cpu, 100, gpus, 1000, models)


CPU_POD = PodSpec(1000, 100)
SHARE_500 = PodSpec(1000, 100, 1, 500)
PACKING = config.Policy((("GpuPackingScore", 1000),))


# --- the repository's Go tests ------------------------------------------------------------------------------------


def test_packing_score_cases_of_gpu_packing_score_test_go():
    used = node(1000, [200, 1000, 1000, 500], "1080", cpu_capacity=96000)
    assert reference.packing_score(used, (100, 1000, 2, "1080")) == 48  # case 2: 50 - 2 free GPUs used
    assert reference.packing_score(node(1000, [1000] * 4, "1080"), (100, 1000, 2, "1080")) == 29  # case 3: 33 - 4
    assert reference.packing_score(node(1000, [1000] * 8, "1080"), (100, 1000, 2, "1080")) == 25  # 33 - 8
    assert reference.packing_score(used, (100, 200, 2, "1080")) == 93  # case 1: 100 - (20 + 50) / 10
    assert used.gpu_left == [200, 1000, 1000, 500]  # the node's GPU order is untouched


def test_sub_and_copy_of_resource_test_go():
    tnr = node(1000, [200, 1000, 1000, 500], "1080", cpu_capacity=96000)
    out = node_sub(tnr, (100, 1000, 2, "1080"))
    assert (out.cpu_left, out.gpu_left) == (900, [200, 0, 0, 500])
    assert tnr.copy() == tnr and tnr.gpu_left == [200, 1000, 1000, 500]


def test_add_of_resource_test_go_is_release():
    tnr = node(1000, [200, 0, 0, 500], "1080", cpu_capacity=96000, affinity={"2-gpu": 1})
    release(tnr, PodSpec(100, 0, 2, 1000, "1080"), (1, 2))
    assert (tnr.cpu_left, tnr.gpu_left, tnr.affinity) == (1100, [200, 1000, 1000, 500], {})


GO_TYPICAL = [
    ((6000, 465, 1, ""), 9.33), ((8000, 440, 1, "2080"), 9.15), ((8000, 475, 1, "T4"), 8.76),
    ((8000, 440, 1, "P100"), 8.72), ((2000, 465, 1, ""), 8.68), ((12000, 900, 1, ""), 8.65),
    ((4000, 900, 1, ""), 8.43), ((16000, 678, 1, "T4"), 8.36), ((8000, 500, 1, ""), 8.29),
    ((6000, 511, 1, ""), 8.11), ((14000, 1000, 2, "2080"), 0.54), ((4000, 1000, 1, "2080"), 0.43),
    ((32000, 1000, 2, "T4"), 0.43), ((16000, 1000, 1, "V100M16"), 0.40), ((64000, 1000, 2, ""), 0.40),
    ((10000, 1000, 2, ""), 0.40), ((11400, 1000, 1, "T4"), 0.36), ((16000, 1000, 1, "T4"), 0.36),
    ((4000, 1000, 2, ""), 0.36), ((14000, 1000, 2, "V100M16"), 0.36), ((8000, 1000, 4, ""), 0.36),
    ((16000, 1000, 2, ""), 0.32), ((2000, 1000, 1, "T4"), 0.32), ((6000, 1000, 1, ""), 0.32),
    ((4000, 1000, 1, ""), 0.32), ((5000, 1000, 1, ""), 0.32), ((32000, 1000, 4, "V100M16"), 0.32),
    ((32000, 1000, 2, ""), 0.32), ((24000, 1000, 8, "2080"), 0.32), ((40000, 1000, 4, ""), 0.29),
    ((32000, 1000, 8, ""), 0.29), ((32000, 1000, 1, "T4"), 0.29), ((16000, 1000, 1, ""), 0.25),
    ((7000, 1000, 1, "V100M16"), 0.25), ((24000, 1000, 1, "T4"), 0.25),
]  # fmt: skip
"""frag_test.go ``TestingGenerateGetTypicalPods`` (percentages)."""
GO_TYPICAL_WITH_CPU = [
    ((15700, 1000, 1, ""), 28.69), ((11900, 1000, 1, ""), 18.93), ((11400, 1000, 1, ""), 12.27),
    ((1000, 0, 0, ""), 7.36), ((18710, 1000, 1, ""), 4.85), ((8200, 1000, 1, ""), 3.79),
    ((16400, 1000, 1, ""), 3.31), ((9810, 1000, 1, ""), 1.97), ((15200, 1000, 1, ""), 1.87),
    ((11200, 1000, 1, ""), 1.81), ((14200, 1000, 1, ""), 1.76), ((12000, 0, 0, ""), 1.65),
    ((14900, 1000, 1, ""), 1.39), ((60200, 1000, 4, ""), 1.23), ((64200, 1000, 8, ""), 1.07),
    ((32200, 1000, 4, ""), 1.01), ((17400, 1000, 2, ""), 0.91), ((30200, 1000, 2, ""), 0.69),
    ((16000, 1000, 1, ""), 0.64), ((15000, 1000, 1, ""), 0.59), ((64000, 1000, 8, ""), 0.53),
    ((15000, 0, 0, ""), 0.53), ((11910, 1000, 1, ""), 0.53), ((120200, 1000, 8, ""), 0.48),
    ((11300, 1000, 1, ""), 0.37), ((30000, 1000, 2, ""), 0.32), ((9800, 1000, 1, ""), 0.32),
    ((8000, 1000, 1, ""), 0.32), ((2000, 1000, 1, ""), 0.27), ((2000, 80, 1, ""), 0.27),
    ((1000, 1000, 1, ""), 0.27),
]  # fmt: skip
"""frag_test.go ``TestingGenerateGetTypicalPodsWithNonGpu`` (percentages)."""


def percent(pods):
    return [(res, pct / 100) for res, pct in pods]


@pytest.mark.parametrize(
    ("cpu_left", "gpus", "gpu_model", "typical", "expected"),
    [
        (1000, [200, 1000, 1000, 500], "1080", GO_TYPICAL, 2566.62),
        (1000, [1000] * 4, "1080", GO_TYPICAL, 3802.40),
        (1000, [1000] * 8, "1080", GO_TYPICAL, 7604.80),
        (1000, [200, 1000, 1000, 500], "1080", GO_TYPICAL[:1], 251.91),  # Q4: 0.0933 x 2700
        (64000, [1000] * 8, "P100", GO_TYPICAL_WITH_CPU, 887.20),
        (32000, [1000] * 4 + [0] * 4, "P100", GO_TYPICAL_WITH_CPU, 554.4),
        (0, [1000] * 4 + [0] * 4, "P100", GO_TYPICAL_WITH_CPU, 4000),
    ],
)
def test_node_frag_cases_of_frag_test_go(cpu_left, gpus, gpu_model, typical, expected):
    assert node_frag(node(cpu_left, gpus, gpu_model), percent(typical)) == pytest.approx(expected, abs=0.01)


# --- typical pods -------------------------------------------------------------------------------------------------

A, B, C, D = share(500), whole(1, cpu=2000), PodSpec(0, 100), whole(2, cpu=4000)
WORKLOAD = [A, A, A, B, B, C, C, D]  # counts 3, 2, 2, 1 of 8; C's key carries the non-zero CPU 100


def test_typical_pods_keep_everything_within_the_threshold_normalised_by_the_total():
    # 95% of 8 = 7.6; cumulative counts 3, 5, 7, 8: all four taken, each count / 8. B and C tie at 2: the reversed
    # Less puts the larger PodResource first, and B's CPU 2000 > C's 100.
    assert typical_pods(WORKLOAD) == [
        ((1000, 500, 1, ""), 3 / 8),
        ((2000, 1000, 1, ""), 2 / 8),
        ((100, 0, 0, ""), 2 / 8),
        ((4000, 1000, 2, ""), 1 / 8),
    ]


def test_typical_pods_cut_at_the_threshold_are_renormalised_as_go_does():
    # 80% of 8 = 6.4: A, B, C reach 7; each share (count / 8) / (7 / 8), the two float steps of Go.
    assert typical_pods(WORKLOAD, threshold=80) == [
        ((1000, 500, 1, ""), (3 / 8) / (7 / 8)),
        ((2000, 1000, 1, ""), (2 / 8) / (7 / 8)),
        ((100, 0, 0, ""), (2 / 8) / (7 / 8)),
    ]
    # step 2, 50% of 8 = 4: the first step takes A and B (5 >= 4).
    assert [share for _, share in typical_pods(WORKLOAD, threshold=50, step=2)] == [
        (3 / 8) / (5 / 8),
        (2 / 8) / (5 / 8),
    ]


def test_typical_pods_without_cpu_pods_and_ties_by_gpu_type():
    # Without C: 6 pods, 95% = 5.7, all three specs taken.
    assert [s for _, s in typical_pods(WORKLOAD, cpu_pods=False)] == [3 / 6, 2 / 6, 1 / 6]
    # Equal counts and resources: the larger GpuType string first.
    assert [r[3] for r, _ in typical_pods([share(500, models="A"), share(500, models="B")])] == ["B", "A"]
    with pytest.raises(ValueError, match="over 100"):
        typical_pods(WORKLOAD, threshold=101)


# --- fragmentation by category ------------------------------------------------------------------------------------

FRAG_NODE = node(4000, [1000, 300])  # 1300 milli left


@pytest.mark.parametrize(
    ("res", "expected"),
    [
        ((1000, 0, 0, ""), 1300),  # XL: a CPU pod that fits still counts all GPU left as fragment
        ((8000, 0, 0, ""), 1300),  # XR: CPU short
        ((1000, 500, 1, "T4"), 1300),  # no access: V100 node
        ((1000, 500, 1, ""), 300),  # Q3: only GPU 1 (300 < 500) is fragment
        ((8000, 500, 1, ""), 1300),  # Q4: GPU fits, CPU short
        ((1000, 1000, 2, ""), 1300),  # Q2: one fully free GPU of two
        ((8000, 1000, 2, ""), 1300),  # Q1: both short
        ((1000, 500, 1, "T4|V100"), 300),  # Q3 through the model list
    ],
)
def test_node_frag_by_category(res, expected):
    assert node_frag(FRAG_NODE, [(res, 1.0)]) == expected


def test_node_frag_weighs_categories_and_skips_bad_frequencies():
    # 0.5 x 300 (Q3's Q2 part) + 0.25 x 1300 (XL) + 0.25 x 1300 (no access) = 150 + 325 + 325
    mixed = [((1000, 500, 1, ""), 0.5), ((1000, 0, 0, ""), 0.25), ((1000, 500, 1, "T4"), 0.25)]
    assert node_frag(FRAG_NODE, mixed) == 800.0
    assert node_frag(FRAG_NODE, [((1000, 0, 0, ""), 1.5)]) == 0.0


# --- filter -------------------------------------------------------------------------------------------------------


def test_fits_checks_real_cpu_memory_and_pod_count():
    assert fits(node(0, []), PodSpec(0, 100))  # the filter uses the real request, not the non-zero 100m
    assert not fits(node(999, []), PodSpec(1000, 100))
    assert fits(node(1000, [], memory_left=100), PodSpec(1000, 100))
    assert not fits(node(1000, [], memory_left=99), PodSpec(1000, 100))
    assert not fits(node(1000, [1000], pods_left=0), CPU_POD)


def test_fits_gpu_models_and_gpu_counts():
    assert fits(node(8000, [1000], "B"), share(500, models="A|B"))
    assert not fits(node(8000, [1000], "C"), share(500, models="A|B"))
    assert fits(node(8000, [1000], "C"), share(500, models="|"))  # no model named at all
    assert not fits(node(8000, [], ""), share(500))  # CPU node
    assert fits(node(8000, [], ""), CPU_POD)
    assert not fits(node(8000, [500, 400]), share(600))
    assert fits(node(8000, [500, 600]), share(600))
    assert fits(node(8000, [1000, 500, 1000]), whole(2))  # needs fully free GPUs, not adjacent ones
    assert not fits(node(8000, [1000, 999, 500]), whole(2))
    # Go's two pointers put both halves of a (never seen) 2 x 500 pod on one GPU.
    assert fits(node(8000, [1000]), PodSpec(1000, 100, 2, 500))


# --- score plugins, hand-computed ----------------------------------------------------------------------------------


def test_best_fit_raw_scores_and_normalisation():
    # free - request, / maxSpec, x 0.5 each, (1 - sum) x 100 truncated; pod 2000m CPU, 500 milli:
    # n0 8000m, 2 GPUs: 6000/128000/2 + 1500/8000/2 = 0.0234375 + 0.09375 -> 88.28 -> 88
    # n1 8000m, 4 GPUs: 0.0234375 + 3500/8000/2 = 0.2421875 -> 75.78 -> 75
    # n2 4000m, 1 GPU:  2000/128000/2 + 500/8000/2 = 0.0390625 -> 96.09 -> 96
    pod = share(500, cpu=2000)
    nodes = [node(8000, [1000] * 2), node(8000, [1000] * 4), node(4000, [1000])]
    raw = [plugin_score("BestFitScore", n, pod, PACKING, []) for n in nodes]
    assert raw == [88, 75, 96]
    assert normalize_score(raw) == [61, 0, 100]  # (88 - 75) x 100 / 21 = 61.9 -> 61
    assert normalize_score([5, 5]) == [0, 0]


def test_best_fit_errors_when_the_non_zero_cpu_does_not_fit():
    with pytest.raises(ScoreError):
        plugin_score("BestFitScore", node(50, [1000]), PodSpec(0, 100), PACKING, [])


def test_packing_score_cases():
    # share 200: [1000, 300] uses GPU 1: 100 - (300 x 100 / 1000) / 10 = 97; a free 4-GPU node: 33 - 4 = 29;
    # a free 1-GPU node: 33 - 1 = 32; [1000, 100]: only the free GPU fits: 50 - 1 = 49; CPU pod: 0.
    gpus = ([1000, 300], [1000] * 4, [1000], [1000, 100])
    assert [plugin_score("GpuPackingScore", node(8000, g), share(200), PACKING, []) for g in gpus] == [97, 29, 32, 49]
    assert plugin_score("GpuPackingScore", node(8000, [1000], "T4"), CPU_POD, PACKING, []) == 0


def test_clustering_score_cases():
    # 25 x (8000 - left) / 8000 plus 75 (only the pod's tag), 50 (its tag among others), 25 (no tag), 0 (others)
    def score(gpus, affinity, pod=SHARE_500):
        return plugin_score("GpuClusteringScore", node(8000, gpus, affinity=affinity), pod, PACKING, [])

    assert score([1000, 500], {"share-gpu": 2}) == 95  # 25 x 6500 / 8000 = 20 (20.3) + 75
    assert score([1000, 500], {"share-gpu": 1, "1-gpu": 1}) == 70  # 20 + 50
    assert score([1000] * 8, {}) == 25  # 0 + 25
    assert score([1000, 1000], {"2-gpu": 1}) == 18  # 25 x 6000 / 8000 = 18.75 -> 18
    assert score([1000, 1000], {"2-gpu": 1}, whole(2)) == 93  # 18 + 75
    assert score([1000, 1000], {}, CPU_POD) == 0


@pytest.mark.parametrize(
    ("dim_ext", "norm", "expected"),
    [
        # node 64000m of 64000, GPUs [1000, 500]; pod 8000m, 500 milli; max norm (128000, 8000):
        # merge: node (0.5, 1500/8000 = 0.1875), pod (0.0625, 0.0625): dot 0.04296875 / 2 -> 1 - 0.0215 -> 97
        ("merge", "max", (97, ())),
        # share: GPU 1 (0.5, 0.0625): dot 0.03515625 / 2 -> 98.2; free GPU 0 (0.5, 0.125): 0.0390625 / 2 -> 98.0
        ("share", "max", (98, (1,))),
        # divide: GPU 1's CPU 64000 x 500 / 1500 -> (1/6, 0.0625): 0.0143 / 2 -> 99.3
        ("divide", "max", (99, (1,))),
        # pod norm (8000, 500): GPU 1 (8, 1).(1, 1) = 9 / 2 -> tanh(0.45) = 0.422 -> 57.8; GPU 0 (8, 2): tanh(0.5) -> 53
        ("share", "pod", (57, (1,))),
        # node norm (64000, 2000): GPU 1 (1, 0.25).(0.125, 0.25) = 0.1875 / 2 -> 90.6; GPU 0 (1, 0.5): 0.25 / 2 -> 87.5
        ("share", "node", (90, (1,))),
    ],
)
def test_dot_product_scores(dim_ext, norm, expected):
    assert dot_product_score(node(64000, [1000, 500]), (8000, 500, 1, ""), dim_ext, norm) == expected


def test_dot_product_edge_cases():
    assert dot_product_score(node(4000, [1000, 500]), (8000, 500, 1, ""), "share", "max") == (0, ())  # CPU short
    # divide on a node without GPU milli left: CPU x 0 / 0 is NaN in Go, no group beats the -1 sentinel -> 0
    assert dot_product_score(node(64000, [0, 0]), (1000, 0, 0, ""), "divide", "max") == (0, ())
    # share: used-up GPUs are groups too for a CPU pod (request 0): 1 - 0.5 x 1000/128000 / 2 = 0.998 -> 99
    assert dot_product_score(node(64000, [0, 0]), (1000, 0, 0, ""), "share", "max") == (99, (0,))


def test_fgd_scores_and_gpus():
    typical = [((1000, 500, 1, ""), 1.0)]
    # [1000, 400]: frag before 400 (GPU 1 < 500). 400 on GPU 0 -> [600, 400], frag 400, sigmoid(0) -> 50;
    # on GPU 1 -> [1000, 0], frag 0, sigmoid(0.4) = 0.5987 -> 59
    assert fgd_score(node(8000, [1000, 400]), (1000, 400, 1, ""), typical) == (59, (1,))
    # [1000, 600], 500: GPU 0 -> frag 0 -> 50; GPU 1 -> [1000, 100], frag 100, sigmoid(-0.1) -> 47; first best GPU 0
    assert fgd_score(node(8000, [1000, 600]), (1000, 500, 1, ""), typical) == (50, (0,))
    # a CPU pod via Sub: typical half CPU (XL) half share; 1500m [1000]: before 0.5 x 1000 (XL);
    # after 500m: XR 500 + Q4 500 = 1000; sigmoid(-0.5) = 0.3775 -> 37
    mixed = [((1000, 0, 0, ""), 0.5), ((1000, 500, 1, ""), 0.5)]
    assert fgd_score(node(1500, [1000]), (1000, 0, 0, ""), mixed) == (37, ())


def test_sub_failing_midway_keeps_what_it_took():
    out = node_sub(node(1000, [300, 1000]), (100, 1000, 2, ""))
    assert (out.cpu_left, out.gpu_left) == (900, [300, 0])


# --- GPU selection ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("gpu_sel", "u_gpu", "expected"),
    [("best", 0.0, (1,)), ("worst", 0.0, (0,)), ("random", 0.99, (2,)), ("random", 0.0, (0,))],
)
def test_select_gpus_for_a_sharing_pod(gpu_sel, u_gpu, expected):
    # GPUs [900, 500, 600, 200], pod 500: fitting 0, 1, 2; best = least left (1), worst = most (0),
    # random = fitting[int(u x 3)]
    policy = config.Policy(PACKING.scores, gpu_sel=gpu_sel)
    assert select_gpus(node(8000, [900, 500, 600, 200]), share(500), policy, [], u_gpu) == expected


def test_select_gpus_exclusive_cpu_and_merge():
    gpus = node(8000, [500, 1000, 0, 1000, 1000])
    assert select_gpus(gpus, whole(2), config.POLICIES["GpuPacking"], [], 0.0) == (1, 3)  # first fully free
    assert select_gpus(gpus, CPU_POD, config.POLICIES["GpuPacking"], [], 0.0) == ()
    merge = config.Policy((("DotProductScore", 1000),), gpu_sel="DotProductScore", dim_ext="merge")
    assert select_gpus(gpus, share(500), merge, [], 0.0) == ()  # Go's "" -> Reserve fails


# --- the scheduling cycle -----------------------------------------------------------------------------------------


def cluster(*rows: tuple[int, int, str]) -> Nodes:
    return Nodes.from_rows([(f"n{i}", cpu, 1024, gpus, gpu_model) for i, (cpu, gpus, gpu_model) in enumerate(rows)])


THREE = cluster((8000, 2, "V100"), (8000, 4, "V100"), (4000, 1, "T4"))


def test_best_fit_schedules_the_tightest_node():
    sched = ReferenceScheduler(THREE, config.POLICIES["BestFit"], [])
    pod = share(500, cpu=2000)
    assert sched.scores(pod, 0.0) == {0: 61000, 1: 0, 2: 100000}  # see test_best_fit_raw_scores_and_normalisation
    assert sched.schedule(pod, (0.0, 0.0)) == (2, (0,))
    assert (sched.nodes[2].cpu_left, sched.nodes[2].gpu_left, sched.nodes[2].affinity) == (
        2000,
        [500],
        {"share-gpu": 1},
    )


def test_random_policy_uses_u_random_and_u_gpu():
    sched = ReferenceScheduler(THREE, config.POLICIES["Random"], [])
    assert sched.scores(CPU_POD, 0.5) == {0: 0, 1: 100000, 2: 0}  # feasible[int(0.5 x 3)]
    assert sched.schedule(share(300), (0.5, 0.8)) == (1, (3,))  # GPUs 0..3 fit: int(0.8 x 4) = 3


def test_ties_go_to_the_smallest_rank():
    same = cluster((8000, 2, "V100"), (8000, 2, "V100"), (8000, 2, "V100"))
    assert ReferenceScheduler(same, PACKING, []).schedule(share(500), (0.0, 0.0)) == (0, (0,))  # index order
    ranked = ReferenceScheduler(same, PACKING, [], tie_rank=[2, 0, 1])
    assert ranked.schedule(share(500), (0.0, 0.0)) == (1, (0,))  # the smallest rank


def test_gpu_packing_then_clustering_follow_used_nodes():
    sched = ReferenceScheduler(THREE, PACKING, [])
    sched.schedule(share(500), (0.0, 0.0))  # all nodes free: n2 (33 - 1) beats n0 (31), n1 (29)
    assert sched.schedule(share(300), (0.0, 0.0)) == (2, (0,))  # n2's shared GPU: 100 - 50/10 = 95
    clustering = ReferenceScheduler(THREE, config.POLICIES["GpuClustering"], [])
    # free nodes: 25 x (8000 - left) / 8000 + 25: n0 18 + 25 = 43, n1 12 + 25 = 37, n2 21 + 25 = 46
    assert clustering.schedule(whole(1), (0.0, 0.0)) == (2, (0,))
    assert clustering.schedule(whole(1), (0.0, 0.0)) == (0, (0,))  # n2 is full; n0 43 beats n1 37


def test_fgd_and_dot_product_policies():
    typical = [((1000, 500, 1, ""), 1.0)]
    sched = ReferenceScheduler(cluster((8000, 2, "V100"), (8000, 2, "V100")), config.POLICIES["FGD"], typical)
    sched.nodes[0].gpu_left[1] = 400
    # n0 [1000, 400]: 59 on GPU 1 (see test_fgd_scores_and_gpus); n1 [1000, 1000]: frag 0 before and after -> 50
    assert sched.scores(share(400), 0.0) == {0: 59000, 1: 50000}
    assert sched.schedule(share(400), (0.0, 0.0)) == (0, (1,))
    dot = ReferenceScheduler(cluster((64000, 2, "V100"), (64000, 2, "V100")), config.POLICIES["DotProd"], [])
    dot.nodes[1].gpu_left[1] = 500
    # merge / max: n0 (0.5, 0.25).(0.0625, 0.0625) -> 1 - 0.0234 -> 97; n1 97 as well (0.0215) -> tie: index 0
    assert dot.scores(share(500, cpu=8000), 0.0) == {0: 97000, 1: 97000}
    assert dot.schedule(share(500, cpu=8000), (0.0, 0.0)) == (0, (0,))  # gpu_sel best: GPU 0 (a tie)


def test_unschedulable_pods_change_nothing():
    sched = ReferenceScheduler(THREE, PACKING, [])
    before = [n.copy() for n in sched.nodes]
    assert sched.schedule(whole(8), (0.0, 0.0)) == (-1, ())
    best_fit = ReferenceScheduler(cluster((8000, 1, "V100"), (8000, 1, "V100")), config.POLICIES["BestFit"], [])
    best_fit.nodes[0].cpu_left = 50
    assert best_fit.schedule(PodSpec(0, 100), (0.0, 0.0)) == (-1, ())  # BestFit's Score error fails the pod
    assert sched.nodes == before and best_fit.nodes[1].pods_left == 1001


def test_one_feasible_node_skips_scoring():
    best_fit = ReferenceScheduler(cluster((8000, 1, "V100")), config.POLICIES["BestFit"], [])
    best_fit.nodes[0].cpu_left = 50
    assert best_fit.schedule(PodSpec(0, 100), (0.0, 0.0)) == (0, ())


def test_cluster_metrics():
    sched = ReferenceScheduler(THREE, PACKING, [])
    sched.schedule(share(500, cpu=2000), (0.0, 0.0))  # onto n2
    typical = [((1000, 0, 0, ""), 1.0)]  # XL everywhere: every idle milli is fragment
    assert cluster_metrics(sched.nodes, typical) == {
        "used_gpu_milli": 500,
        "idle_gpu_milli": 6500,
        "frag_gpu_milli": 6500.0,
        "used_cpu_milli": 2000,
    }


# --- property: bind and release -----------------------------------------------------------------------------------

PODS = st.one_of(
    st.builds(share, st.integers(1, 999), st.integers(0, 4000)),
    st.builds(whole, st.integers(1, 4), st.integers(0, 4000)),
    st.builds(lambda cpu, memory: PodSpec(cpu, memory), st.integers(0, 4000), st.integers(0, 100)),
)


@settings(max_examples=60, deadline=None)
@given(
    gpus=st.lists(st.integers(0, 8), min_size=1, max_size=4),
    ops=st.lists(st.tuples(PODS, st.integers(0, 3), st.sampled_from(["best", "worst", "random"]), st.floats(0, 0.999))),
    releases=st.lists(st.integers(0, 30)),
)
def test_bind_and_release_keep_gpus_in_range_and_restore_nodes(gpus, ops, releases):
    nodes = reference.new_nodes(cluster(*[(64000, g, "V100") for g in gpus]))
    initial = [n.copy() for n in nodes]
    bound = []
    for pod, index, gpu_sel, u in ops:
        target = nodes[index % len(nodes)]
        if not fits(target, pod):
            continue
        before = target.copy()
        chosen = select_gpus(target, pod, config.Policy(PACKING.scores, gpu_sel=gpu_sel), [], u)
        assert len(chosen) == pod.gpus
        bind(target, pod, chosen)
        assert all(0 <= left <= 1000 for left in target.gpu_left)
        if releases and releases.pop() % 3 == 0:
            release(target, pod, chosen)
            assert target == before
        else:
            bound.append((target, pod, chosen))
    for target, pod, chosen in reversed(bound):
        release(target, pod, chosen)
        assert all(0 <= left <= 1000 for left in target.gpu_left)
    assert nodes == initial


@settings(max_examples=25, deadline=None)
@given(
    name=st.sampled_from(sorted(config.POLICIES)),
    pods=st.lists(PODS, max_size=25),
    draws=st.lists(st.tuples(*[st.floats(0, 0.999)] * 2), min_size=25, max_size=25),
)
def test_schedule_under_every_policy_binds_fitting_pods_or_changes_nothing(name, pods, draws):
    sched = ReferenceScheduler(cluster((8000, 2, "V100"), (4000, 1, "T4"), (16000, 4, "V100")), config.POLICIES[name],
                               typical_pods(pods) if pods else [])  # fmt: skip
    for pod, u in zip(pods, draws, strict=False):
        before = [n.copy() for n in sched.nodes]
        host, gpus = sched.schedule(pod, u)
        if host == -1:
            assert sched.nodes == before
            continue
        assert fits(before[host], pod) and len(gpus) == pod.gpus
        assert all(0 <= left <= 1000 for n in sched.nodes for left in n.gpu_left)
