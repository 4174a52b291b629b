"""The ``cluster`` sweep: ClusterLoader2's density scenario on the whole modelled cluster, over cluster size,
pods per node and pod creation rate, with a few Deployments behind Services for network programming latency.

Each point runs :func:`kbench.scenarios.library.density` plus ``services`` Deployment + Service pairs and
reports every SLI (``sim_*``: PodStartupLatency phases, APIResponsiveness p99 per scope,
SchedulingThroughput, NetworkProgrammingLatency, etcd write latency, whether every SLO held) and kbench's
own speed (``wall_*``: seconds, engine events per second, simulated seconds per wall second). ``degrade``
runs the point on a degraded control plane, to see which SLI breaks first.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from kbench import components, plot
from kbench.cluster import MAX_PODS_PER_NODE
from kbench.metrics import perfdata
from kbench.metrics.pod_startup import PHASES
from kbench.metrics.slis import API_SLO, NETWORK_PROGRAMMING_SLO, POD_STARTUP_SLO
from kbench.scenarios.library import NODES, density, deployment, service
from kbench.sweep import progress
from kbench.sweep.grid import PROFILE, Param

DEGRADE: dict[str, dict[str, Any]] = {
    "none": {},
    "one-apiserver": {"apiservers": 1},
    "etcd-fsync-50ms": {"overrides": {"etcd.wal_fsync.median": 0.05, "etcd.wal_fsync.p99": 0.2}},
    "etcd-slow-disk": {"overrides": {"etcd.wal_fsync.median": 0.05, "etcd.wal_fsync.p99": 1.0}},
}
"""Degraded control planes: one kube-apiserver instead of three; an etcd WAL disk 60x slower than the default
at the median (etcd's FAQ asks for wal_fsync p99 < 10 ms); and such a disk with a one-second tail."""

PARAMS = (
    NODES,
    Param("pods_per_node", int, "density pods per node", minimum=0, maximum=MAX_PODS_PER_NODE),
    Param("churn", float, "pods created per second", minimum=0.1, maximum=10_000),
    Param(
        "services",
        int,
        "Deployments (5 replicas) behind a Service each, after the density pods",
        minimum=0,
        maximum=10_000,
    ),
    Param("proxy_nodes", int, "nodes running kube-proxy (0: every node)", minimum=0, maximum=20_000),
    Param("degrade", str, "control-plane degradation", choices=tuple(DEGRADE)),
    PROFILE,
)

PRESETS = {
    "quick": {
        "nodes": [100, 200, 400],
        "pods_per_node": [10],
        "churn": [50.0],
        "services": [5],
        "proxy_nodes": [25],
        "degrade": ["none"],
        "profile": ["default"],
    },
    "calibration": {
        "nodes": [500],
        "pods_per_node": [30],
        "churn": [20.0],
        "services": [10],
        "proxy_nodes": [50],
        "degrade": list(DEGRADE),
        "profile": ["default"],
    },
    "full": {
        "nodes": [100, 500, 1000, 2000, 5000],
        "pods_per_node": [30],
        "churn": [20.0],
        "services": [20],
        "proxy_nodes": [100],
        "degrade": ["none"],
        "profile": ["default"],
    },
}


def scenario(params: dict, seed: int):
    """The point's scenario (density, then the Deployments and Services)."""
    cluster = {"seed": seed, "profile": params["profile"], **DEGRADE[params["degrade"]]}
    cluster["config"] = components.nest({k: v for k, v in params.items() if "." in k})  # component fields
    if params["proxy_nodes"]:
        cluster["proxy_nodes"] = params["proxy_nodes"]
    sc = density(params["nodes"], params["pods_per_node"], params["churn"], **cluster)
    if params["services"]:
        count = params["services"]
        sc.add_steps(
            [
                {
                    "createObjects": {
                        "template": deployment("app-{i}", 5),
                        "count": count,
                        "rate": 10,
                        "namespace": "load",
                    }
                },
                {
                    "createObjects": {
                        "template": service("svc-{i}", "app-{i}"),
                        "count": count,
                        "rate": 10,
                        "namespace": "load",
                    }
                },
                {"waitForPods": {"namespace": "load", "timeout": 600}},
            ]
        )
    return sc


def run_point(params: dict, seed: int) -> dict:
    """Run one point's scenario; its summary (every SLI, the verdict and problems, kbench's speed)."""
    result = scenario(params, seed).run(progress=False, on_advance=progress.report)
    return result.summary()


SLOS = (
    ("sim_pod_startup_p99_s", POD_STARTUP_SLO, "PodStartupLatency pod_startup p99 <= 5 s"),
    ("sim_api_resource_p99_max_s", API_SLO["resource"], "APIResponsiveness resource scope p99 <= 1 s"),
    ("sim_api_namespace_p99_max_s", API_SLO["namespace"], "APIResponsiveness namespace scope p99 <= 5 s"),
    ("sim_api_cluster_p99_max_s", API_SLO["cluster"], "APIResponsiveness cluster scope p99 <= 30 s"),
    ("sim_npl_p99_s", NETWORK_PROGRAMMING_SLO, "NetworkProgrammingLatency p99 <= 30 s"),
)

FIGURES = (
    plot.Spec(
        "cluster_pod_startup",
        "PodStartupLatency (image pulls excluded)",
        ["sim_pod_startup_p50_s", "sim_pod_startup_p90_s", "sim_pod_startup_p99_s"],
        "nodes",
        logy=True,
    ),
    plot.Spec(
        "cluster_api",
        "APIResponsiveness: worst p99 per scope",
        [f"sim_api_{scope}_p99_max_s" for scope in API_SLO],
        "nodes",
        logy=True,
    ),
    plot.Spec(
        "cluster_scheduling_throughput",
        "SchedulingThroughput (5 s windows)",
        ["sim_scheduling_throughput_p50", "sim_scheduling_throughput_max"],
        "nodes",
    ),
    plot.Spec(
        "cluster_network_programming",
        "NetworkProgrammingLatency",
        ["sim_npl_p50_s", "sim_npl_p99_s"],
        "nodes",
        logy=True,
    ),
    plot.Spec(
        "cluster_etcd",
        "etcd write latency seen by kube-apiserver",
        ["sim_etcd_write_p50_s", "sim_etcd_write_p99_s"],
        "nodes",
        logy=True,
    ),
    plot.Spec("cluster_wall", "kbench speed on this machine", ["wall_sim_seconds_per_s"], "nodes", logy=True),
)


def export(df: pd.DataFrame, out_dir: Path) -> list[Path]:
    """ClusterLoader2-style PerfData: the SLIs of every point, labelled with the point's parameters."""
    items = []
    for row in df.to_dict("records"):
        labels = {p.name: str(row[p.name]) for p in PARAMS}
        for phase in PHASES:
            startup = {f"Perc{q}": row[f"sim_{phase}_p{q}_s"] * 1e3 for q in (50, 90, 99)}
            items.append(
                perfdata.data_item(startup, "ms", {"Metric": phase, "Measurement": "PodStartupLatency", **labels})
            )
        npl = {"Perc50": row["sim_npl_p50_s"] * 1e3, "Perc99": row["sim_npl_p99_s"] * 1e3}
        items.append(perfdata.data_item(npl, "ms", {"Metric": "NetworkProgrammingLatency", **labels}))
        throughput = {
            "Perc50": row["sim_scheduling_throughput_p50"],
            "Perc99": row["sim_scheduling_throughput_p99"],
            "Max": row["sim_scheduling_throughput_max"],
        }
        items.append(perfdata.data_item(throughput, "pods/s", {"Metric": "SchedulingThroughput", **labels}))
    return [perfdata.write(Path(out_dir) / "cluster_perfdata.json", perfdata.document(items))]


NAME = "cluster"
DESCRIPTION = "whole cluster, ClusterLoader2 density: every SLI vs cluster size (simulated), kbench speed"
SUMMARY = (
    "nodes",
    "pods_per_node",
    "churn",
    "degrade",
    "sim_pod_startup_p99_s",
    "sim_api_resource_p99_max_s",
    "sim_scheduling_throughput_max",
    "sim_npl_p99_s",
    "sim_slo_passed",
    "wall_seconds",
    "wall_sim_seconds_per_s",
)
COMPONENTS = True
"""Points build whole clusters: any component field can be an axis (``--param kubelet.kubeAPIQPS=...``)."""
