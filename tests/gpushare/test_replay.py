"""The arrival process, the report's curves, the configuration and the paper's data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kbench.componentconfig import ConfigError
from kbench.gpushare import arrays, config, kernel, paper, reference, replay
from kbench.gpushare.model import Nodes, PodSpec, pod_spec
from kbench.traces import openb

NODES = Nodes.from_rows([("b", 64000, 262144, 2, "A"), ("a", 32000, 131072, 1, "B")])
"""Two nodes, 3 GPUs: 3,000 milli-GPU."""


def workload(specs: list[PodSpec]) -> replay.Workload:
    names = [f"pod-{i:02d}" for i in range(len(specs))]
    return replay.Workload("test", names, specs, NODES, reference.typical_pods(specs))


def test_arrivals_shuffle_every_pod_once_when_demand_is_the_target():
    specs = [PodSpec(1000, 1024, 1, 1000)] * 3  # 3,000 milli = 100% of the cluster
    order = workload(specs).arrivals(1.0, np.random.default_rng(0))
    assert sorted(order) == [0, 1, 2]


def test_arrivals_tune_down_remove_random_pods_until_at_most_the_target():
    specs = [PodSpec(1000, 1024, 1, 1000)] * 5 + [PodSpec(1000, 1024)]  # 5,000 milli
    order = workload(specs).arrivals(1.0, np.random.default_rng(3))
    demand = sum(specs[i].total_milli for i in order)
    assert demand == 3000 and len(set(order.tolist())) == len(order)


def test_arrivals_tune_up_append_clones_after_the_shuffled_trace_until_the_next_would_pass():
    specs = [PodSpec(1000, 1024, 1, 500), PodSpec(1000, 1024, 1, 250)]  # 750 milli, target 3,900
    order = workload(specs).arrivals(1.3, np.random.default_rng(1))
    assert sorted(order[:2]) == [0, 1]
    demand = sum(specs[i].total_milli for i in order)
    assert 3900 - 500 < demand <= 3900
    assert all(i in (0, 1) for i in order[2:])


def test_tune_up_tests_per_gpu_milli_so_a_multi_gpu_clone_may_overshoot():
    """``tuneUpPods`` checks ``podTotalMilliGpuReq + podRes.MilliGpu`` but adds ``TotalMilliGpu``."""
    specs = [PodSpec(1000, 1024, 2, 1000)]  # 2,000 milli asked, 1,000 checked
    order = workload(specs).arrivals(1.0, np.random.default_rng(0))  # target 3,000
    assert len(order) == 2 and sum(specs[i].total_milli for i in order) == 4000


@pytest.mark.parametrize(("specs", "ratio"), [([PodSpec(1000, 1024)], 1.3), ([PodSpec(1000, 1024, 1, 500)], 0.0)])
def test_arrivals_refuse_a_trace_without_gpu_demand_or_a_ratio_that_is_not_positive(specs, ratio):
    with pytest.raises(ValueError, match="ratio: cannot tune trace 'test'"):
        workload(specs).arrivals(ratio, np.random.default_rng(0))


def test_arrivals_and_node_order_follow_the_seed():
    w = workload([PodSpec(1000, 1024, 1, 100 * k) for k in range(1, 8)])
    first, again = np.random.default_rng(5), np.random.default_rng(5)
    assert np.array_equal(w.arrivals(1.3, first), w.arrivals(1.3, again))
    assert np.array_equal(w.node_order(first), w.node_order(again))
    assert sorted(w.node_order(np.random.default_rng(9))) == [0, 1]


def test_curves_average_the_reports_by_rounded_arrived_percent():
    """As merge_alloc_discrete.py: arrive ratio rounded to a whole percent (half to even), allocation to 2 decimals,
    mean per percent, the report before the first pod included."""
    report = np.array([[30.0, 30.0, 0.0, 0.0], [45.0, 30.0, 0.0, 0.0], [60.0, 60.0, 0.0, 0.0]])
    run = replay.Replay("t", "p", 0, 1.3, np.array(["one"] * 3), np.zeros(3, np.int64), np.zeros((3, 8), np.int64),
                        report, 3000, 1000, 0, 0.0)  # fmt: skip
    curves = run.curves()
    assert curves.gpu_alloc_pct.to_dict() == {0: 0.0, 1: 1.0, 2: 1.5}  # 45 milli = 1.5% rounds to 2
    assert curves.index.name == "arrived_pct"


def test_a_replay_reports_failures_by_kind_and_what_is_left():
    specs = [PodSpec(1000, 1024, 2, 1000), PodSpec(1000, 1024, 1, 500), PodSpec(1000, 1024, 1, 1000)]
    specs += [PodSpec(100_000, 1024)]  # fits nowhere
    w = workload(specs)
    result = replay.run(w, config.POLICIES["FGD"], seed=0, ratio=1.0)
    summary = result.summary()
    assert summary["failed_cpu"] == (result.kinds == "cpu").sum() > 0
    assert summary["failed"] == (result.node < 0).sum()
    used = result.report[-1, kernel.USED]
    assert summary["gpu_alloc_pct"] == pytest.approx(100 * used / 3000)
    taken = {(n, g) for n, gpus in zip(result.node, result.gpus, strict=True) for g in gpus if n >= 0 and g >= 0}
    assert summary["unallocated_gpus"] == 3 - len(taken)


def test_kernel_inputs_refuse_shares_of_several_gpus_and_too_many_models():
    with pytest.raises(ValueError, match="pod 1: gpu_milli: a pod on 2 GPUs asks for whole GPUs .1000., got 500"):
        arrays.pods([PodSpec(1000, 1024), PodSpec(1000, 1024, 2, 500)], {})
    many = Nodes.from_rows([(f"n{i}", 1000, 1024, 1, f"M{i}") for i in range(arrays.MAX_MODELS + 1)])
    with pytest.raises(ValueError, match="model: at most 62 GPU models in a cluster, got 63"):
        arrays.model_ids(many)


def test_pod_spec_follows_the_repositorys_csv_to_yaml():
    row = openb.PodRow("p", 4000, 1024, 1, 0, " V100M16 | V100M32 ", {})
    assert pod_spec(row) == PodSpec(4000, 1024, 1, 1000, "V100M16|V100M32")
    assert pod_spec(openb.PodRow("c", 500, 10, 0, 0, "T4", {})) == PodSpec(500, 10)
    assert PodSpec(0, 0).nonzero_cpu == 100


@pytest.mark.parametrize(
    ("name", "scores", "gpu_sel", "dim_ext"),
    [
        ("Random", ("RandomScore",), "random", "share"),
        ("DotProd", ("DotProductScore",), "best", "merge"),
        ("GpuClustering", ("GpuClusteringScore",), "best", "share"),
        ("GpuPacking", ("GpuPackingScore",), "best", "share"),
        ("BestFit", ("BestFitScore",), "best", "share"),
        ("FGD", ("FGDScore",), "FGDScore", "share"),
    ],
)
def test_policies_are_configured_as_the_run_scripts_configure_them(name, scores, gpu_sel, dim_ext):
    policy = config.policy(name)
    assert tuple(n for n, _ in policy.scores) == scores and dict(policy.scores)[scores[0]] == 1000
    assert (policy.gpu_sel, policy.dim_ext, policy.norm) == (gpu_sel, dim_ext, "max")
    assert config.parse(config.manifest(policy)) == policy and policy.name == name


def manifest(**changes) -> dict:
    doc = config.manifest(config.POLICIES["FGD"])
    profile = doc["profiles"][0]
    for path, value in changes.items():
        *keys, last = path.split("__")
        target = profile
        for key in keys:
            target = target[int(key)] if key.isdigit() else target[key]
        target[last] = value
    return doc


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"plugins__score__enabled": [{"name": "Fgd", "weight": 1}]}, r"score.enabled\[0\].name: Unsupported value"),
        ({"plugins__score__enabled": [{"name": "FGDScore", "weight": 0}]}, r"enabled\[0\].weight: Invalid value: 0"),
        ({"plugins__score__enabled": []}, r"score.enabled: Required value"),
        ({"plugins__filter__enabled": []}, r"filter.enabled: Required value: Open-Gpu-Share"),
        ({"pluginConfig__1__args__gpuSelMethod": "tightest"}, r"pluginConfig\[1\].args.gpuSelMethod: Unsupported"),
        ({"pluginConfig__1__args__dimExtMethod": "extend"}, r"dimExtMethod: Unsupported value: 'extend'.*merge"),
        ({"pluginConfig__1__args__normMethod": "l2"}, r"normMethod: Unsupported value: 'l2'"),
        ({"pluginConfig__1__args__gpuSelMethod": "DotProductScore"}, r"gpuSelMethod: Invalid value.*not an enabled"),
    ],
)
def test_bad_configurations_name_the_field_and_the_allowed_values(changes, message):
    with pytest.raises(ConfigError, match=message):
        config.parse(manifest(**changes))


def test_a_configuration_must_be_one_profile_of_a_known_version():
    with pytest.raises(ConfigError, match="apiVersion: Unsupported value"):
        config.parse({"apiVersion": "v1", "profiles": []})
    with pytest.raises(ConfigError, match="profiles: Invalid value: 0 profiles"):
        config.parse({"apiVersion": config.API_VERSIONS[0], "profiles": []})
    with pytest.raises(ConfigError, match="policy: Unsupported value: 'fgd'.*Random, DotProd"):
        config.policy("fgd")


def test_the_papers_data_has_every_run_of_its_grid():
    table = paper.expected()
    assert set(table.trace) == set(paper.TRACES) and set(table.policy) == set(config.POLICIES)
    assert (table.seeds == paper.SEEDS).all() and len(table) == 17 * 6 * 131
    at = paper.at(130)
    assert isinstance(at, pd.DataFrame) and (at.gpu_alloc_min <= at.gpu_alloc_mean).all()
    assert at.loc[("default", "FGD"), "gpu_alloc_mean"] == pytest.approx(95.391)
