"""The ``scheduler`` sweep: scheduler_perf workloads over node counts.

Each point runs one workload on the engine and reports:

- ``sim_*``: SchedulingThroughput (Average, Perc50/90/99, scheduler_perf's
  sampling) under the calibrated cycle costs, and its cost components;
- ``wall_*``: kbench's own speed on this machine: pods/s of the simulated
  scheduler's decisions (the fused kernel, one pod per cycle) and, for the
  SchedulingBasic pod, of the signature batch kernel on the same cluster.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd

from kbench import plot
from kbench.metrics import perfdata
from kbench.profiles import load_profile
from kbench.scenarios.scheduler_perf import WorkloadIncomplete, basic_cluster, basic_pods, load_tests, run_workload
from kbench.scheduler.config import parse_config
from kbench.sweep.grid import PROFILE, Param

WORKLOADS = (
    "SchedulingBasic",
    "TopologySpreading",
    "PreferredTopologySpreading",
    "SchedulingWithMixedChurn",
    "SchedulingDaemonset",
    "PreemptionBasic",
    "PreemptionAsync",
)
_WORKLOAD_OF = {
    "SchedulingBasic": "5000Nodes_10000Pods",
    "TopologySpreading": "5000Nodes_5000Pods",
    "PreferredTopologySpreading": "5000Nodes_5000Pods",
    "SchedulingWithMixedChurn": "5000Nodes_10000Pods",
    "SchedulingDaemonset": "15000Nodes",
    "PreemptionBasic": "500Nodes",
    "PreemptionAsync": "5000Nodes",
}

PARAMS = (
    Param("workload", str, "scheduler_perf test", choices=WORKLOADS),
    Param("nodes", int, "nodes in the cluster (initNodes)", minimum=1, maximum=100_000),
    Param("pods", int, "measured pods (measurePods)", minimum=1, maximum=1_000_000),
    Param("percentage", int, "percentageOfNodesToScore (0 = adaptive)", minimum=0, maximum=100),
    PROFILE,
)

PRESETS = {  # every point schedulable: a workload whose pods do not all fit fails (WorkloadIncomplete)
    "quick": {  # 100 nodes hold 4,000 pod-default.yaml pods (4 CPU / 100m), the 100 initial ones included
        "workload": ["SchedulingBasic"],
        "nodes": [100, 500, 1000, 2000, 5000],
        "pods": [3000],
        "percentage": [0, 100],
        "profile": ["default"],
    },
    "full": {
        "workload": [w for w in WORKLOADS if not w.startswith("Preemption")],
        "nodes": [500, 1000, 2000, 5000, 15000],
        "pods": [10000],
        "percentage": [0, 100],
        "profile": ["default"],
    },
    "preemption": {  # PreemptionBasic: each 3-CPU preemptor takes a node of four low-priority pods, so pods <= nodes;
        # PreemptionAsync: its measured 100m pods fit beside them (its preemptors come from a churn)
        "workload": ["PreemptionBasic", "PreemptionAsync"],
        "nodes": [500, 1000, 5000],
        "pods": [500],
        "percentage": [0, 100],
        "profile": ["default"],
    },
}


def _upstream(workload: str) -> dict:
    """The upstream workload kbench runs for a test (its params and CI threshold)."""
    test = load_tests()[workload]
    return next(w for w in test["workloads"] if w["name"] == _WORKLOAD_OF[workload])


def batch_pods_per_second(nodes: int, pods: int, percentage: int, seed: int) -> float:
    """Wall pods/s of the signature batch kernel placing SchedulingBasic pods (1000 already placed)."""
    kernel, template = basic_cluster(nodes, percentage, seed)
    kernel.schedule_batch(basic_pods(template, 0, min(1000, nodes)))  # initial pods; compiles the kernels
    batch = basic_pods(template, 10**7, pods)
    started = time.perf_counter()
    kernel.schedule_batch(batch)
    return pods / (time.perf_counter() - started)


def run_point(params: dict, seed: int) -> dict:
    """Run the point's scheduler_perf workload: simulated throughput and costs, kbench's own pods/s."""
    workload = params["workload"]
    nodes, pods = params["nodes"], params["pods"]
    upstream = _upstream(workload)["params"]
    overrides = {"initNodes": nodes, "measurePods": pods}
    if workload in ("SchedulingBasic", "TopologySpreading", "PreferredTopologySpreading"):
        overrides["initPods"] = min(nodes, 1000) if workload == "SchedulingBasic" else nodes
    elif workload.startswith("Preemption"):  # low-priority pods per node as upstream's workload has them (4)
        overrides["initPods"] = nodes * upstream["initPods"] // upstream["initNodes"]
    config = parse_config({"percentageOfNodesToScore": params["percentage"]})
    problems = ""
    try:
        result = run_workload(
            f"{workload}/{_WORKLOAD_OF[workload]}", overrides, config, load_profile(params["profile"]), seed
        )
    except WorkloadIncomplete as err:  # pods left unscheduled: what it measured, and the point reported as FAILED
        result, problems = err.result, f"{err.reason}; choose more nodes or fewer pods"
    out: dict[str, float | str] = {f"sim_throughput_{k.lower()}": v for k, v in result.throughput.items()}
    latencies = np.asarray(result.latencies or [np.nan])
    upstream_scale = nodes == upstream["initNodes"] and pods == upstream["measurePods"]
    out.update(
        {
            "sim_scheduling_latency_p50_s": float(np.percentile(latencies, 50)),
            "sim_scheduling_latency_p99_s": float(np.percentile(latencies, 99)),
            **{f"sim_cost_{name.lower().replace('/', '_')}_s": v for name, v in result.cost_parts.items()},
            "sim_scheduled_pods": result.scheduled,
            "sim_seconds": result.sim_seconds,
            "sim_cycles": result.cycles,
            "sim_failed_cycles": result.failed_cycles,
            "sim_preemptions": result.preemptions,
            "sim_victims": result.victims,
            "sim_threshold_pods_per_s": (result.threshold or np.nan) if upstream_scale else np.nan,
            "wall_seconds_run": result.wall_seconds,
            "wall_pods_per_s": result.cycles / max(result.decision_wall_seconds, 1e-9),
            "wall_batch_pods_per_s": (
                batch_pods_per_second(nodes, pods, params["percentage"], seed)
                if workload == "SchedulingBasic" and not problems
                else np.nan
            ),
            "problems": problems,
        }
    )
    return out


FIGURES = (
    plot.Spec(
        "scheduler_throughput",
        "Modelled kube-scheduler: SchedulingThroughput",
        ["sim_throughput_average", "sim_throughput_perc50"],
        "nodes",
    ),
    plot.Spec(
        "scheduler_wall",
        "kbench's scheduler on this machine",
        ["wall_pods_per_s", "wall_batch_pods_per_s"],
        "nodes",
        logy=True,
    ),
)


def export(df: pd.DataFrame, out_dir: Path) -> list[Path]:
    """scheduler_perf data items: one SchedulingThroughput item per point that scheduled all its pods (a failed
    point's partial throughput is no measurement of the workload)."""
    items = []
    for row in df.to_dict("records"):
        if isinstance(row.get("problems"), str) and row["problems"]:
            continue
        data = {
            "Average": row["sim_throughput_average"],
            **{f"Perc{q}": row[f"sim_throughput_perc{q}"] for q in (50, 90, 95, 99)},
        }
        labels = {
            "Metric": "SchedulingThroughput",
            "Name": f"{row['workload']}/{row['nodes']}Nodes_{row['pods']}Pods",
            "percentageOfNodesToScore": str(row["percentage"]),
        }
        items.append(perfdata.data_item(data, "pods/s", labels))
    return [perfdata.write(Path(out_dir) / "scheduler_perf.json", perfdata.document(items))]


NAME = "scheduler"
DESCRIPTION = "kube-scheduler on scheduler_perf workloads: simulated throughput, measured kernel speed"
SUMMARY = (
    "workload",
    "nodes",
    "pods",
    "percentage",
    "sim_throughput_average",
    "sim_throughput_perc50",
    "wall_pods_per_s",
    "wall_batch_pods_per_s",
)
