"""scheduler_perf's ops as the preemption workloads use them: the configs' fields checked by name, churn mode
create, and the preemption workloads at upstream's smallest size."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from kbench.scenarios.scheduler_perf import (
    WAIT_FOR_PODS_TIMEOUT,
    WorkloadIncomplete,
    load_tests,
    run_workload,
    workload_names,
)

TEMPLATES = Path(__file__).resolve().parents[2] / "data" / "scenarios" / "scheduler_perf" / "templates"


def _config(tmp_path: Path, op: dict | None = None, workload: dict | None = None) -> Path:
    """A one-test config: a node, then ``op`` (default: a createPods), then one workload."""
    ops = [
        {"opcode": "createNodes", "count": 1, "nodeTemplatePath": str(TEMPLATES / "node-default.yaml")},
        op or {"opcode": "createPods", "count": 1, "podTemplatePath": str(TEMPLATES / "pod-default.yaml")},
    ]
    test = {"name": "T", "workloadTemplate": ops, "workloads": [workload or {"name": "w", "params": {}}]}
    path = tmp_path / "scheduler_perf" / "performance-config.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump([test]))
    return path


def test_preemption_workloads_are_upstreams():
    names = workload_names()
    for name in ("PreemptionBasic/5Nodes", "PreemptionBasic/500Nodes", "PreemptionBasic/1000Nodes"):
        assert name in names
    assert "PreemptionAsync/5000Nodes" in names
    basic = {w["name"]: w for w in load_tests()["PreemptionBasic"]["workloads"]}
    assert basic["500Nodes"]["threshold"] == 18 and basic["500Nodes"]["labels"] == ["performance", "short"]
    assert basic["1000Nodes"]["params"] == {"initNodes": 1000, "initPods": 4000, "measurePods": 1000}
    churn = load_tests()["PreemptionAsync"]["workloadTemplate"][2]
    assert churn["mode"] == "create" and churn["intervalMilliseconds"] == 200
    low = yaml.safe_load((TEMPLATES / "pod-low-priority.yaml").read_text())
    assert low["spec"]["terminationGracePeriodSeconds"] == 0  # victims leave at the API delete


@pytest.mark.parametrize(
    "op, workload, message",
    [
        (
            {"opcode": "deletePods", "namespace": "x"},
            None,
            r"T\)\.workloadTemplate\[1\]\.opcode: must be one of createNodes, createPods, churn; got 'deletePods'",
        ),
        (
            {"opcode": "createPods", "count": 1, "skipWaitToCompletion": True},
            None,
            r"workloadTemplate\[1\]\.skipWaitToCompletion: unknown field \(not modelled\); allowed: opcode, count",
        ),
        (
            {"opcode": "churn", "mode": "delete", "templatePaths": []},
            None,
            r"workloadTemplate\[1\]\.mode: must be one of recreate, create; got 'delete'",
        ),
        (
            {"opcode": "churn", "mode": "create", "templatePaths": [], "intervalMilliseconds": -5},
            None,
            r"workloadTemplate\[1\]\.intervalMilliseconds: expected an integer >= 0; got -5",
        ),
        (
            {"opcode": "churn", "mode": "recreate", "templatePaths": []},
            None,
            r"workloadTemplate\[1\]\.number: mode recreate cycles through number >= 1 objects; got None",
        ),
        (
            {"opcode": "churn", "mode": "create", "intervalMilliseconds": 100},
            None,
            r"workloadTemplate\[1\]\.templatePaths: a non-empty list of template files; got None",
        ),
        (
            {"opcode": "churn", "mode": "create", "templatePaths": []},
            None,
            r"workloadTemplate\[1\]\.templatePaths: a non-empty list of template files; got \[\]",
        ),
        (None, {"name": "w", "params": {}, "labels": ["fast"]}, r"workloads\[0\]\.labels: unknown label 'fast'"),
        (
            None,
            {"name": "w", "params": {}, "featureGates": {"SchedulerAsyncPreemption": True}},
            r"workloads\[0\]\.featureGates: unknown field \(not modelled\); allowed: name, labels, threshold, params",
        ),
    ],
)
def test_bad_config_values_name_the_field(tmp_path, op, workload, message):
    with pytest.raises(ValueError, match=message):
        load_tests(_config(tmp_path, op, workload))


def _churn_then_a_pod_that_never_fits(tmp_path, monkeypatch, number: int, interval: int) -> WorkloadIncomplete:
    """Run a churn (create mode) of pods that never fit, then one measured pod that never fits either: the workload
    fails at the createPods timeout; its failure."""
    large = str(TEMPLATES / "pod-high-priority-large-cpu.yaml")
    churn = {
        "opcode": "churn",
        "mode": "create",
        "number": number,
        "intervalMilliseconds": interval,
        "templatePaths": [large],
    }
    path = _config(tmp_path, churn)
    test = yaml.safe_load(path.read_text())
    test[0]["workloadTemplate"].append(
        {"opcode": "createPods", "count": 1, "collectMetrics": True, "podTemplatePath": large}
    )
    path.write_text(yaml.safe_dump(test))
    monkeypatch.setenv("KBENCH_SCENARIOS", str(tmp_path))
    with pytest.raises(WorkloadIncomplete, match=r"T/w: T\.workloadTemplate\[2\]: at least pod default/") as failed:
        run_workload("T/w")
    return failed.value


def test_churn_create_stops_after_number_rounds(tmp_path, monkeypatch):
    """Three rounds of a pod that never fits, then no more (upstream's create mode with Number 3)."""
    result = _churn_then_a_pod_that_never_fits(tmp_path, monkeypatch, 3, 100).result
    assert result.scheduled == 0 and len(result.unschedulable) == 3 + 1
    assert result.sim_seconds == pytest.approx(WAIT_FOR_PODS_TIMEOUT, abs=0.2)


def test_a_churn_interval_of_0_is_the_500_ms_default(tmp_path, monkeypatch):
    """churnOp: IntervalMilliseconds 0 means the default 500 ms; a zero wait would stop simulated time, and this run
    would never reach the createPods timeout."""
    result = _churn_then_a_pod_that_never_fits(tmp_path, monkeypatch, 4, 0).result
    assert len(result.unschedulable) == 4 + 1


def test_preemption_basic_places_every_high_priority_pod_by_evicting_three_low_ones():
    """5 nodes with 4 low-priority pods each (3.6 of 4 CPU); each 3-CPU pod preempts three of one node's."""
    result = run_workload("PreemptionBasic/5Nodes")
    assert result.scheduled == result.measured == 5
    assert (result.preemptions, result.victims) == (5, 15)
