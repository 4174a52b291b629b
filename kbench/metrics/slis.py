"""A run's SLIs, with ClusterLoader2's measurement names and Kubernetes' SLO thresholds.

- **PodStartupLatency**: create_to_schedule, schedule_to_run, run_to_watch, pod_startup (p50/p90/p99);
  SLO: pod_startup p99 <= 5 s (sig-scalability slos/pod_startup_latency.md).
- **APIResponsiveness**: p50/p90/p99 per verb, resource and scope; SLO p99 <= 1 s for resource scope
  (single objects, every mutating call), 5 s namespace, 30 s cluster (slos/api_call_latency.md).
- **SchedulingThroughput**: pods bound per second over 5 s windows (CL2's scheduling_throughput.go samples
  every 5 s): Perc50, Perc90, Perc99, Max.
- **NetworkProgrammingLatency**: every kube-proxy's samples together; SLO p99 <= 30 s
  (slos/network_programming_latency.md).
- **EtcdRequestLatency**: etcd write latency as the apiserver sees it (no SLO).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from kbench.metrics.pod_startup import PHASES

POD_STARTUP_SLO = 5.0
API_SLO = {"resource": 1.0, "namespace": 5.0, "cluster": 30.0}
NETWORK_PROGRAMMING_SLO = 30.0
THROUGHPUT_WINDOW = 5.0
COLUMNS = ["sli", "metric", "verb", "resource", "scope", "count", "p50", "p90", "p99", "max", "unit", "threshold",
           "passed"]


def _row(sli: str, metric: str, values, threshold: float | None = None, unit: str = "s", **labels) -> dict:
    values = np.asarray(list(values), dtype=np.float64)
    if values.size:
        p50, p90, p99 = np.percentile(values, [50, 90, 99])
        top = float(values.max())
    else:
        p50 = p90 = p99 = top = float("nan")
    passed = None if threshold is None or not values.size else bool(p99 <= threshold)
    return {"sli": sli, "metric": metric, "verb": labels.get("verb", ""), "resource": labels.get("resource", ""),
            "scope": labels.get("scope", ""), "count": int(values.size), "p50": p50, "p90": p90, "p99": p99,
            "max": top, "unit": unit, "threshold": threshold, "passed": passed}


def throughput_samples(bound_times: Iterable[float], window: float = THROUGHPUT_WINDOW) -> np.ndarray:
    """Pods bound per second in each ``window`` from the first binding to the last."""
    times = np.sort(np.asarray(list(bound_times), dtype=np.float64))
    if times.size < 2:
        return np.zeros(0)
    edges = np.arange(times[0], times[-1] + window, window)
    counts, _ = np.histogram(times, bins=edges)
    return counts / window


@dataclass
class RunResult:
    """What one scenario run measured."""

    slis: pd.DataFrame
    pod_startup: pd.DataFrame
    sim_seconds: float
    wall_seconds: float
    events: int
    counts: dict = field(default_factory=dict)
    cluster: object = field(default=None, repr=False)
    """The cluster that ran (for drilling into components)."""

    @property
    def passed(self) -> bool:
        """Every SLI with an SLO met it."""
        verdicts = self.slis["passed"].dropna()
        return bool(verdicts.all()) if len(verdicts) else True

    def failing(self) -> list[str]:
        """The SLIs that broke their SLO, worst (largest p99 / threshold) first."""
        bad = self.slis[self.slis["passed"] == False].copy()  # noqa: E712 (object column with None)
        bad["ratio"] = bad["p99"] / bad["threshold"].astype(float)
        bad = bad.sort_values("ratio", ascending=False)
        return [f"{r.sli}/{r.metric}" + (f" {r.verb} {r.resource} {r.scope}" if r.verb else "")
                for r in bad.itertuples()]

    def summary(self) -> dict:
        """Flat ``sim_*`` / ``wall_*`` columns for a sweep row."""
        s = self.slis
        out = {}
        for phase in PHASES:
            row = s[(s.sli == "PodStartupLatency") & (s.metric == phase)]
            for q in ("p50", "p90", "p99"):
                out[f"sim_{phase}_{q}_s"] = float(row[q].iloc[0]) if len(row) else float("nan")
        api = s[s.sli == "APIResponsiveness"]
        for scope in API_SLO:
            sub = api[api.scope == scope]
            out[f"sim_api_{scope}_p99_max_s"] = float(sub["p99"].max()) if len(sub) else float("nan")
        thr = s[s.sli == "SchedulingThroughput"]
        for q in ("p50", "p99", "max"):
            out[f"sim_scheduling_throughput_{q}"] = float(thr[q].iloc[0]) if len(thr) else float("nan")
        for sli, name in (("NetworkProgrammingLatency", "npl"), ("EtcdRequestLatency", "etcd_write")):
            row = s[s.sli == sli]
            for q in ("p50", "p99"):
                out[f"sim_{name}_{q}_s"] = float(row[q].iloc[0]) if len(row) else float("nan")
        out.update({f"sim_{k}": v for k, v in self.counts.items()})
        out.update(sim_slo_passed=self.passed, sim_seconds=self.sim_seconds, wall_seconds=self.wall_seconds,
                   wall_events=self.events, wall_events_per_s=self.events / max(self.wall_seconds, 1e-9),
                   wall_sim_seconds_per_s=self.sim_seconds / max(self.wall_seconds, 1e-9))
        return out


def collect(cluster, wall_seconds: float, started: float = 0.0) -> RunResult:
    """The SLIs of ``cluster`` after a run (``started``: simulated time the measured part began)."""
    pods = cluster.watcher.table()
    rows = [_row("PodStartupLatency", phase, pods[phase], POD_STARTUP_SLO if phase == "pod_startup" else None)
            for phase in PHASES]
    for (verb, resource, scope), values in sorted(cluster.api.sli.samples.items()):
        rows.append(_row("APIResponsiveness", "request_latency", values, API_SLO[scope], verb=verb.upper(),
                         resource=resource, scope=scope))
    bound = [r.bound for r in cluster.scheduler.stats.pods.values() if r.bound is not None and r.bound >= started]
    rows.append(_row("SchedulingThroughput", "pods_per_second", throughput_samples(bound), unit="pods/s"))
    npl = [x for proxy in cluster.proxies for x in proxy.latencies]
    rows.append(_row("NetworkProgrammingLatency", "network_programming_latency", npl, NETWORK_PROGRAMMING_SLO))
    rows.append(_row("EtcdRequestLatency", "write", cluster.api.etcd.write_latencies))
    slis = pd.DataFrame(rows, columns=COLUMNS)
    counts = {"pods_created": len(cluster.watcher.pods), "pods_started": len(pods),
              "pods_bound": len(bound), "api_requests": int(sum(len(v) for v in cluster.api.sli.samples.values())),
              "api_rejected": cluster.api.sli.rejected,
              "container_restarts": sum(c.restarts for k in cluster.kubelets for w in k.workers.values()
                                        for c in w.containers)}
    return RunResult(slis, pods, cluster.engine.now - started, wall_seconds, cluster.engine.steps, counts)
