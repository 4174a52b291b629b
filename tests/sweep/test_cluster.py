"""The cluster sweep: every SLI per point, figures with SLO lines, PerfData export."""

from __future__ import annotations

import json

from kbench.sweep import run_sweep


def test_cluster_sweep_reports_every_sli(tmp_path):
    params = {"nodes": [10, 20], "pods_per_node": [3], "churn": [30.0], "services": [2], "proxy_nodes": [0]}
    table, run_dir, files = run_sweep("cluster", params=params, out=tmp_path, run="a", jobs=1, progress=False)
    assert list(table["nodes"]) == [10, 20]
    assert (table["sim_pods_started"] == table["nodes"] * 3 + 10).all()
    for column in (
        "sim_pod_startup_p99_s",
        "sim_create_to_schedule_p50_s",
        "sim_run_to_watch_p99_s",
        "sim_api_resource_p99_max_s",
        "sim_scheduling_throughput_max",
        "sim_npl_p99_s",
        "sim_etcd_write_p99_s",
        "wall_events_per_s",
        "wall_sim_seconds_per_s",
    ):
        assert table[column].notna().all() and (table[column] > 0).all(), column
    assert table["sim_slo_passed"].all()
    names = {f.name for f in files}
    assert {
        "cluster_pod_startup.png",
        "cluster_api.svg",
        "cluster_network_programming.png",
        "cluster_perfdata.json",
    } <= names
    items = json.loads((run_dir / "cluster_perfdata.json").read_text())["dataItems"]
    assert {i["labels"]["Metric"] for i in items} >= {"pod_startup", "NetworkProgrammingLatency"}
    assert {i["labels"]["nodes"] for i in items} == {"10", "20"}
