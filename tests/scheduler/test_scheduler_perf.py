"""scheduler_perf workloads on the engine: the calibration against upstream's CI thresholds, and the loop."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pandas as pd
import pytest

from kbench.api.core import Node, Pod
from kbench.cli import main
from kbench.scenarios.scheduler_perf import (
    WorkloadIncomplete,
    run_workload,
    summarize,
    throughput_samples,
    workload_names,
)
from kbench.scheduler import ClusterState, Scheduler
from kbench.sim import Engine
from kbench.sweep import run_sweep
from kbench.sweep import scheduler as scheduler_sweep

UPSTREAM = [
    "SchedulingBasic/5000Nodes_10000Pods",
    "TopologySpreading/5000Nodes_5000Pods",
    "PreferredTopologySpreading/5000Nodes_5000Pods",
    "SchedulingWithMixedChurn/5000Nodes_10000Pods",
    "SchedulingDaemonset/15000Nodes",
]


@pytest.mark.parametrize("name", UPSTREAM)
def test_default_profile_clears_upstream_ci_thresholds(name):
    """Each workload at upstream's scale lands above its CI threshold, and not absurdly (within 1.6x)."""
    result = run_workload(name)
    assert result.scheduled == result.measured
    assert result.threshold < result.throughput["Average"] < 1.6 * result.threshold


def test_throughput_sampling_follows_scheduler_perf():
    # 10 pods in second 1 (dropped: first sample), then 20, a quiet second, then 40 over two seconds.
    bound = [0.5] * 10 + [1.5] * 20 + [3.5] * 40
    samples = throughput_samples(bound, 0.0, 3.5)
    assert samples == [20.0, 20.0, 20.0]  # the quiet second repeats the next sample (40 over 2 s)
    stats = summarize([1, 2, 3, 4])
    assert stats["Average"] == 2.5 and stats["Perc50"] == 2 and stats["Perc99"] == 4


def test_unknown_workload_lists_the_valid_ones():
    assert "SchedulingBasic/5000Nodes_10000Pods" in workload_names()
    with pytest.raises(ValueError, match="unknown scheduler_perf test 'Nope'; valid: SchedulingBasic"):
        run_workload("Nope/x")
    with pytest.raises(ValueError, match="unknown workload 'x' of SchedulingBasic; valid: 500Nodes"):
        run_workload("SchedulingBasic/x")


def test_an_unschedulable_pod_waits_for_a_node_then_binds():
    engine = Engine()
    state = ClusterState(
        [Node.from_manifest({"metadata": {"name": "small"}, "status": {"allocatable": {"cpu": "1", "pods": "10"}}})]
    )
    scheduler = Scheduler(engine, state)
    big = Pod.from_manifest(
        {
            "metadata": {"name": "big"},
            "spec": {"containers": [{"name": "c", "image": "x", "resources": {"requests": {"cpu": "2"}}}]},
        }
    )
    scheduler.add_pod(big)
    engine.run(until=5)
    record = scheduler.stats.pods["default/big"]
    assert record.bound is None and record.message == (  # FitError.Error appends DefaultPreemption's " <msg>."
        "0/1 nodes are available: 1 Insufficient cpu. "
        "preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling.."
    )
    engine.schedule(
        0,
        lambda _: scheduler.add_nodes(
            [Node.from_manifest({"metadata": {"name": "large"}, "status": {"allocatable": {"cpu": "4", "pods": "10"}}})]
        ),
    )
    engine.run(until=20)
    assert record.node == "large" and record.attempts == 2


def test_scheduler_sweep_writes_scheduler_perf_json(tmp_path):
    table, run_dir, files = run_sweep(
        "scheduler", params={"nodes": [200], "pods": [600], "percentage": [0]}, out=tmp_path, jobs=1, progress=False
    )
    assert table.loc[0, "sim_scheduled_pods"] == 600 and table.loc[0, "wall_batch_pods_per_s"] > 0
    doc = json.loads((run_dir / "scheduler_perf.json").read_text())
    assert doc["version"] == "v1"
    item = doc["dataItems"][0]
    assert item["labels"]["Metric"] == "SchedulingThroughput" and item["unit"] == "pods/s"
    assert set(item["data"]) == {"Average", "Perc50", "Perc90", "Perc95", "Perc99"}
    assert any(f.name == "scheduler_throughput.png" for f in files)


def test_a_workload_whose_pods_do_not_fit_fails_naming_a_pending_pod():
    """waitUntilPodsScheduledInNamespace: 100 nodes hold 4,000 pod-default.yaml pods; of 5,000 measured, 1,100
    never fit, and after the 10-minute timeout the workload fails naming the first attempted one and its FitError,
    its measurements until then attached (and in a pickled copy: a process pool's worker may raise it)."""
    with pytest.raises(WorkloadIncomplete) as failed:
        run_workload("SchedulingBasic/500Nodes", {"initNodes": 100, "initPods": 100, "measurePods": 5000})
    assert str(failed.value) == (
        "SchedulingBasic/500Nodes: SchedulingBasic.workloadTemplate[2]: at least pod default/pod-4001 is not "
        "scheduled after 600 simulated seconds (1100 of 5000 pending): 0/100 nodes are available: 100 Insufficient "
        "cpu. preemption: 0/100 nodes are available: 100 No preemption victims found for incoming pod.."
    )
    result = failed.value.result
    assert (result.scheduled, result.measured) == (3900, 5000)
    copy = pickle.loads(pickle.dumps(failed.value))
    assert str(copy) == str(failed.value) and copy.result.scheduled == 3900 and copy.reason == failed.value.reason
    assert "samples" not in repr(failed.value)  # the result is an attribute, not part of the message


def test_a_sweep_point_whose_pods_do_not_fit_is_reported_failed_with_what_it_measured(tmp_path, capsys):
    """As a cluster sweep's point with pods never started: the point is kept (its scheduled pods counted) and the
    command names it as FAILED and exits 1."""
    code = main(
        ["sweep", "scheduler", "--param", "nodes=20", "--param", "pods=900", "--param", "percentage=0"]
        + ["--out", str(tmp_path), "--jobs", "1", "--no-progress"]
    )
    err = capsys.readouterr().err
    assert code == 1
    assert "FAILED point" in err and (
        ": SchedulingBasic.workloadTemplate[2]: at least pod default/pod-801 is not scheduled after 600 simulated "
        "seconds (120 of 900 pending): 0/20 nodes are available: 20 Insufficient cpu." in err
    )
    run_dir = next((tmp_path / "scheduler").glob("2*/"))
    table = pd.read_parquet(run_dir / "results.parquet")
    assert json.loads((run_dir / "scheduler_perf.json").read_text())["dataItems"] == []  # no partial throughput
    assert table.loc[0, "sim_scheduled_pods"] == 900 - 120 and np.isnan(table.loc[0, "wall_batch_pods_per_s"])


def test_every_preset_fits_every_pod():
    """SchedulingBasic's nodes (4 CPU) hold 40 pod-default.yaml pods (100m) each, its initial pods included; each of
    PreemptionBasic's 3-CPU preemptors takes a node of its own."""
    for name, preset in scheduler_sweep.PRESETS.items():
        for nodes in preset["nodes"]:
            if "SchedulingBasic" in preset["workload"]:
                assert min(nodes, 1000) + max(preset["pods"]) <= 40 * nodes, (name, nodes)
            if "PreemptionBasic" in preset["workload"]:
                assert max(preset["pods"]) <= nodes, (name, nodes)
