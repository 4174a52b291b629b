"""A run's SLIs, with ClusterLoader2's measurement names and Kubernetes' SLO thresholds.

- **PodStartupLatency**: create_to_schedule, schedule_to_run, run_to_watch, pod_startup (p50/p90/p99);
  SLO: pod_startup p99 <= 5 s (sig-scalability slos/pod_startup_latency.md). Beside them (no SLO), the phases as
  ClusterLoader2 computes them, metric ``<method>_<transition>`` (``cl2_pod_startup``, ``cl2_legacy_pod_startup``
  ...; :data:`~kbench.metrics.pod_startup.CL2_METHODS`) with CL2's nearest-rank percentiles.
- **APIResponsiveness**: p50/p90/p99 per verb, resource and scope; SLO p99 <= 1 s for resource scope
  (single objects, every mutating call), 5 s namespace, 30 s cluster (slos/api_call_latency.md).
- **SchedulingThroughput**: pods bound per second over 5 s windows (CL2's scheduling_throughput.go samples
  every 5 s): Perc50, Perc90, Perc99, Max.

Which pods PodStartupLatency (every row: exact, ``cl2_`` and ``cl2_legacy_``) and SchedulingThroughput count:
every pod, unless the scenario's ``measure:`` section gives the measurement a ``labelSelector``
(:class:`Measure`), as ClusterLoader2's configs do (testing/density/config.yaml: PodStartupLatency on
``group = latency``, SchedulingThroughput on ``group = saturation``; both measurements list and watch only the
pods their ObjectSelector matches). The "pods never started" problem always considers every pod.
- **NetworkProgrammingLatency**: every kube-proxy's samples together; SLO p99 <= 30 s
  (slos/network_programming_latency.md). Beside it (no SLO), ``cl2_network_programming_latency``: the percentiles
  as CL2 reads them from kube-proxy's histogram buckets (:mod:`kbench.metrics.histogram`).
- **EtcdRequestLatency**: etcd write latency as the apiserver sees it (no SLO).

A run passes only when every SLO it measures is met *and* nothing it waited for failed to happen: an SLI the
run should have measured but has no sample of (pods created, none started; Services with endpoints, no
network programming sample) is a failure ("no data"), not a pass, and so are a step that timed out and pods
still not started when the run ends (:attr:`RunResult.problems`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from kbench.api.selectors import label_selector_matches
from kbench.controllers.endpointslice import TRIGGER
from kbench.metrics import resource_usage
from kbench.metrics.histogram import NETWORK_PROGRAMMING_BUCKETS, cl2_histogram_percentiles
from kbench.metrics.pod_startup import CL2_METHODS, PHASES, cl2_percentiles

POD_STARTUP_SLO = 5.0
API_SLO = {"resource": 1.0, "namespace": 5.0, "cluster": 30.0}
NETWORK_PROGRAMMING_SLO = 30.0
THROUGHPUT_WINDOW = 5.0
COLUMNS = [
    "sli",
    "metric",
    "verb",
    "resource",
    "scope",
    "count",
    "p50",
    "p90",
    "p99",
    "max",
    "unit",
    "threshold",
    "verdict",
    "passed",
]


def _row(
    sli: str,
    metric: str,
    values,
    threshold: float | None = None,
    unit: str = "s",
    expected: bool = True,
    percentiles=None,
    **labels,
) -> dict:
    """One SLI row; ``expected``: the run exercised what this SLI measures, so having no sample is a failure;
    ``percentiles``: values -> (p50, p90, p99) when not NumPy's interpolated ones (e.g. CL2's nearest rank).

    Its ``verdict``: "met" or "broken" (its SLO); "no data" (expected and no sample: a failure); "not measured"
    (nothing in the run exercises it, e.g. no Service for network programming); "no SLO" (reported only)."""
    values = np.asarray(list(values), dtype=np.float64)
    if values.size:
        p50, p90, p99 = (percentiles or (lambda v: np.percentile(v, [50, 90, 99])))(values)
        top = float(values.max())
    else:
        p50 = p90 = p99 = top = float("nan")
    if threshold is None:
        verdict, passed = "no SLO", None
    elif values.size:
        verdict = "met" if p99 <= threshold else "broken"
        passed = verdict == "met"
    else:
        verdict, passed = ("no data", False) if expected else ("not measured", None)
    return {
        "sli": sli,
        "metric": metric,
        "verb": labels.get("verb", ""),
        "resource": labels.get("resource", ""),
        "scope": labels.get("scope", ""),
        "count": int(values.size),
        "p50": p50,
        "p90": p90,
        "p99": p99,
        "max": top,
        "unit": unit,
        "threshold": threshold,
        "verdict": verdict,
        "passed": passed,
    }


@dataclass(frozen=True)
class Measure:
    """Which pods one measurement counts: ClusterLoader2's ``labelSelector`` param (ObjectSelector), parsed.

    ``written`` is the selector as the scenario wrote it (a string like ``group = latency``, or a
    metav1.LabelSelector mapping), kept for ``kbench scenario show``; ``selector`` the LabelSelector it parses
    to (None: every pod); ``threshold`` (PodStartupLatency only) pod_startup's SLO in seconds (None: the SLO's
    5 s, CL2's defaultPodStartupLatencyThreshold)."""

    written: str | Mapping | None = None
    selector: Mapping | None = None
    threshold: float | None = None

    def to_dict(self) -> dict:
        """The ``measure:`` entry as a scenario file writes it."""
        out: dict[str, Any] = {}
        if self.written is not None:
            out["labelSelector"] = self.written
        if self.threshold is not None:
            out["threshold"] = f"{self.threshold:.9f}".rstrip("0").rstrip(".") + "s"  # a Go duration
        return out

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether a pod with ``labels`` counts (labels.Selector.Matches; no selector: every pod)."""
        return self.selector is None or label_selector_matches(self.selector, labels)

    def keep(self):
        """A predicate on a pod's labels for :meth:`PodStartupWatcher.table`, or None for every pod."""
        return None if self.selector is None else self.matches


EVERY_POD = Measure()
MEASUREMENTS = {"podStartupLatency": "PodStartupLatency", "schedulingThroughput": "SchedulingThroughput"}
"""The scenario's ``measure:`` keys -> the ClusterLoader2 measurement (Method) each selects pods for."""


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
    problems: list[str] = field(default_factory=list)
    """What the run waited for and did not get: steps that timed out, pods never started."""
    cluster: object = field(default=None, repr=False)
    """The cluster that ran (for drilling into components)."""

    @property
    def passed(self) -> bool:
        """No problem, and every SLO the run measured is met (an expected SLI without data is not)."""
        return not self.problems and not (self.slis["passed"] == False).any()  # noqa: E712 (object column)

    def failing(self) -> list[str]:
        """What failed: the run's problems, then SLIs without data, then broken SLOs (worst p99 / SLO first)."""
        bad = self.slis[self.slis["passed"] == False].copy()  # noqa: E712 (object column with None)
        bad["ratio"] = (bad["p99"] / bad["threshold"].astype(float)).fillna(np.inf)  # no data first
        bad = bad.sort_values("ratio", ascending=False, kind="stable")
        return [
            *self.problems,
            *(
                f"{r['sli']}/{r['metric']}"
                + (f" {r['verb']} {r['resource']} {r['scope']}" if r["verb"] else "")
                + (" (no data)" if r["verdict"] == "no data" else "")
                for r in bad.to_dict("records")
            ),
        ]

    def verdict(self) -> str:
        """One line: ``every SLO met, every wait satisfied`` or what failed, counted."""
        if self.passed:
            return "every SLO met, every wait satisfied"
        verdicts = self.slis["verdict"].value_counts()
        parts = [
            (len(self.problems), "problem", "problems"),
            (verdicts.get("broken", 0), "SLO broken", "SLOs broken"),
            (verdicts.get("no data", 0), "SLI without data", "SLIs without data"),
        ]
        return "FAILED: " + ", ".join(f"{n} {one if n == 1 else many}" for n, one, many in parts if n)

    def summary(self) -> dict:
        """Flat ``sim_*`` / ``wall_*`` columns for a sweep row."""
        s = self.slis
        out: dict[str, Any] = {}
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
        out.update(
            sim_slo_passed=self.passed,
            problems="; ".join(self.problems),
            sim_seconds=self.sim_seconds,
            wall_seconds=self.wall_seconds,
            wall_events=self.events,
            wall_events_per_s=self.events / max(self.wall_seconds, 1e-9),
            wall_sim_seconds_per_s=self.sim_seconds / max(self.wall_seconds, 1e-9),
        )
        return out


def _programs_endpoints(cluster) -> bool:
    """Network programming latency is expected: kube-proxy runs and an EndpointSlice carries a change
    trigger time (the endpointslice controller stamps one whenever a Service's endpoints change)."""
    return bool(cluster.proxies) and any(
        TRIGGER in (obj["metadata"].get("annotations") or {})
        for obj, _, _ in cluster.api.caches["endpointslices"].objects.values()
    )


def listing(keys: Iterable[str], noun: str, what: str) -> str | None:
    """``"<n> <noun>s <what>: a, b, c, ..."`` naming the first three, or None when there are none."""
    keys = sorted(keys)
    if not keys:
        return None
    shown = ", ".join(keys[:3]) + (", ..." if len(keys) > 3 else "")
    return f"{len(keys)} {noun}{'s' if len(keys) != 1 else ''} {what}: {shown}"


def _bound(cluster, started: float, which: Measure) -> list[float]:
    """Binding times (from ``started`` on) of the pods ``which`` counts; a pod's labels are those the startup
    watcher last saw (the scheduler's records carry none)."""
    records = cluster.scheduler.stats.pods.items()
    pods = cluster.watcher.pods
    return [
        r.bound
        for key, r in records
        if r.bound is not None
        and r.bound >= started
        and (which.selector is None or (key in pods and which.matches(pods[key].labels)))
    ]


def collect(
    cluster,
    wall_seconds: float,
    started: float = 0.0,
    problems: Iterable[str] = (),
    measure: Mapping[str, Measure] | None = None,
) -> RunResult:
    """The SLIs of ``cluster`` after a run (``started``: simulated time the measured part began; ``problems``:
    what the run's steps reported, e.g. a wait that timed out; ``measure``: the pods each of
    :data:`MEASUREMENTS` counts, every pod when absent). Pods still not started (any pod) are a problem too."""
    measure = measure or {}
    unknown = set(measure) - set(MEASUREMENTS)
    if unknown:
        raise ValueError(f"measure: unknown {sorted(unknown)[0]!r}; allowed: {', '.join(MEASUREMENTS)}")
    startup = measure.get("podStartupLatency", EVERY_POD).keep()
    threshold = measure.get("podStartupLatency", EVERY_POD).threshold or POD_STARTUP_SLO
    pods = cluster.watcher.table(startup)
    created = bool(cluster.watcher.selected(startup))
    rows = [
        _row(
            "PodStartupLatency",
            phase,
            pods[phase],
            threshold if phase == "pod_startup" else None,
            expected=created,
        )
        for phase in PHASES
    ]
    for method, transitions in CL2_METHODS.items():
        table = cluster.watcher.cl2_table(method, startup)
        for name in transitions:
            values = table[name].dropna()
            rows.append(_row("PodStartupLatency", f"{method}_{name}", values, percentiles=cl2_percentiles))
    for (verb, resource, scope), values in sorted(cluster.api.sli.samples.items()):
        rows.append(
            _row(
                "APIResponsiveness",
                "request_latency",
                values,
                API_SLO[scope],
                verb=verb.upper(),
                resource=resource,
                scope=scope,
            )
        )
    bound = _bound(cluster, started, measure.get("schedulingThroughput", EVERY_POD))
    rows.append(_row("SchedulingThroughput", "pods_per_second", throughput_samples(bound), unit="pods/s"))
    npl = [x for proxy in cluster.proxies for x in proxy.latencies]
    rows.append(
        _row(
            "NetworkProgrammingLatency",
            "network_programming_latency",
            npl,
            NETWORK_PROGRAMMING_SLO,
            expected=_programs_endpoints(cluster),
        )
    )
    rows.append(  # as CL2 reads it: histogram_quantile over kube-proxy's buckets
        _row(
            "NetworkProgrammingLatency",
            "cl2_network_programming_latency",
            npl,
            percentiles=cl2_histogram_percentiles(NETWORK_PROGRAMMING_BUCKETS),
        )
    )
    rows.append(_row("EtcdRequestLatency", "write", cluster.api.etcd.write_latencies))
    rows += resource_usage.sli_rows(cluster, started)
    slis = pd.DataFrame(rows, columns=COLUMNS)
    counts = {
        "pods_created": len(cluster.watcher.pods),
        "pods_started": len(pods) if startup is None else len(cluster.watcher.table()),
        "pods_bound": len(bound) if "schedulingThroughput" not in measure else len(_bound(cluster, started, EVERY_POD)),
        "pods_measured_startup": len(pods),
        "pods_measured_throughput": len(bound),
        "api_requests": int(sum(len(v) for v in cluster.api.sli.samples.values())),
        "api_rejected": cluster.api.sli.rejected,
        "container_restarts": sum(
            c.restarts for k in cluster.kubelets for w in k.workers.values() for c in w.containers
        ),
    }
    problems = list(problems)
    never = listing(cluster.watcher.pending, "pod", "never started (still Pending when the run ended)")
    if never:
        problems.append(never)
    counts["pods_never_started"] = len(cluster.watcher.pending)
    return RunResult(slis, pods, cluster.engine.now - started, wall_seconds, cluster.engine.steps, counts, problems)
