"""Pod startup timeline, as ClusterLoader2's PodStartupLatency measurement takes it
(clusterloader2/pkg/measurement/common/slos/pod_startup_latency.go).

For every pod: ``create`` (the watcher first sees it; CL2 reads ``creationTimestamp``, which has one-second
resolution, so kbench uses the exact moment instead), ``schedule`` (its binding completed), ``run`` (the
kubelet started its last container; CL2 reads the latest ``containerStatuses[].state.running.startedAt``)
and ``watch`` (the watcher sees it Running with every container running). Phases: create_to_schedule,
schedule_to_run, run_to_watch and pod_startup = watch - create. As the SLO says ("excluding time to pull
images and run init containers", sig-scalability slos/pod_startup_latency.md), the kubelet's image pull
time is subtracted from schedule_to_run and pod_startup.

Beside these exact values, each pod's phases *as ClusterLoader2 computes them* (:meth:`PodStartupWatcher.cl2_table`,
SLI metric names prefixed with the method, e.g. ``cl2_pod_startup``), by one of :data:`CL2_METHODS`:

- ``cl2``: perf-tests master since kubernetes/perf-tests#3891 (2026, fixing #3889 "create_to_schedule etc are
  based on second-granularity measurements"): every phase is CL2's clock when its pod informer receives an event
  (``recvTime``, ns): ``create`` the first event of the pod, ``schedule`` the first with ``spec.nodeName`` set,
  ``run`` and ``watch`` (deprecated, "now equivalent to runPhase") the first with ``status.phase`` Running
  (containers not checked). Transitions: create_to_schedule, schedule_to_run, run_to_watch (always 0),
  schedule_to_watch, pod_startup (create to watch), create_to_run.
- ``cl2_legacy``: the measurement before #3891, which published scalability results used: at the first event with
  phase Running, ``create`` = ``metadata.creationTimestamp`` (metav1.Time: whole seconds, truncated), ``run`` = the
  latest ``containerStatuses[].state.running.startedAt`` (whole seconds; unset when no container is running) and
  ``watch`` = ``recvTime``; ``schedule`` from the scheduler's ``Scheduled`` Event listed at gather
  (``eventTime``, a MicroTime, else ``firstTimestamp``): kube-scheduler records it when the binding completed,
  so kbench takes the binding time truncated to microseconds (a pod whose Event has expired or was never written
  would have no schedule phase in CL2; kbench assumes every Event is there). Transitions: create_to_schedule,
  schedule_to_run, run_to_watch, schedule_to_watch, pod_startup. Neither method subtracts image pulls.

CL2's percentiles are nearest-rank (measurementutil.NewLatencyMetric: the ``ceil(n * q / 100)``-th smallest,
:func:`cl2_percentiles`), and a negative lag (second-truncated timestamps) is kept as it is
(ObjectTransitionTimes.CalculateTransitionsLatency).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import pandas as pd

from kbench.apiserver.objects import object_key, seconds
from kbench.client import Client, Informer
from kbench.metrics.resource_usage import nearest_rank

PHASES = ("create_to_schedule", "schedule_to_run", "run_to_watch", "pod_startup")
TRANSITIONS = {
    "create_to_schedule": ("create", "schedule"),
    "schedule_to_run": ("schedule", "run"),
    "run_to_watch": ("run", "watch"),
    "schedule_to_watch": ("schedule", "watch"),
    "pod_startup": ("create", "watch"),
    "create_to_run": ("create", "run"),
}
"""clusterloader2 pod_startup_latency.go podStartupTransitions: name -> (from phase, to phase)."""
CL2_METHODS = {
    "cl2": tuple(TRANSITIONS),
    "cl2_legacy": ("create_to_schedule", "schedule_to_run", "run_to_watch", "schedule_to_watch", "pod_startup"),
}
"""How ClusterLoader2 computes the phases (see the module notes) -> the transitions it reports."""


@dataclass
class PodTimes:
    """When one pod was first seen (``create``), bound, started and seen running, and its image pull time."""

    create: float
    schedule: float | None = None
    run: float | None = None
    watch: float | None = None
    pulls: float = 0.0
    seen_bound: float | None = None
    """When the watcher first saw ``spec.nodeName`` set (CL2's schedule phase)."""
    seen_running: float | None = None
    """When the watcher first saw phase Running (CL2's run and watch phases)."""
    created_stamp: float | None = None
    """``metadata.creationTimestamp`` (whole seconds), read at the first Running event (legacy CL2)."""
    started_stamp: float | None = None
    """The latest running container's ``startedAt`` (whole seconds) at the first Running event (legacy CL2)."""
    labels: Mapping[str, str] = field(default_factory=dict)
    """The pod's labels as last seen (what a measurement's label selector matches)."""


Keep = Callable[[Mapping[str, str]], bool] | None
"""Which pods a table counts, by their labels (None: every pod), e.g. a ClusterLoader2 measurement's
``labelSelector`` (its informer lists and watches only the matching pods)."""


class PodStartupWatcher:
    """An informer over every pod (ClusterLoader2's own client) that times each pod's startup."""

    def __init__(self, server) -> None:
        self.engine = server.engine
        self.pods: dict[str, PodTimes] = {}
        self.pending: set[str] = set()
        """Pods that exist, are not terminating, and are not yet Running, Succeeded or Failed."""
        client = Client(server, "clusterloader", ("system:masters",), qps=1e9, burst=10**9)
        self.informer = Informer(client, "pods")
        self.informer.add_handler(on_add=self._seen, on_update=lambda old, new: self._seen(new), on_delete=self._gone)
        self.informer.start()

    def _seen(self, pod: Mapping) -> None:
        meta = pod["metadata"]
        key = object_key(pod)
        times = self.pods.get(key)
        if times is None:
            times = self.pods[key] = PodTimes(self.engine.now)
        times.labels = meta.get("labels") or {}
        status = pod.get("status") or {}
        if meta.get("deletionTimestamp") or status.get("phase") in ("Running", "Succeeded", "Failed"):
            self.pending.discard(key)
        else:
            self.pending.add(key)
        if times.seen_bound is None and (pod.get("spec") or {}).get("nodeName"):
            times.seen_bound = self.engine.now
        if times.seen_running is None and status.get("phase") == "Running":
            times.seen_running = self.engine.now
            times.created_stamp = seconds(meta["creationTimestamp"])
            starts = [
                seconds(c["state"]["running"]["startedAt"])
                for c in status.get("containerStatuses") or ()
                if "running" in (c.get("state") or {})
            ]
            times.started_stamp = max(starts) if starts else None
        if (
            times.watch is None
            and status.get("phase") == "Running"
            and status.get("containerStatuses")
            and all("running" in c.get("state", {}) for c in status["containerStatuses"])
        ):
            times.watch = self.engine.now

    def _gone(self, pod: Mapping) -> None:
        self.pending.discard(object_key(pod))

    def scheduled(self, key: str, at: float) -> None:
        """Pod ``key``'s binding completed at ``at`` (the first report counts)."""
        if key in self.pods and self.pods[key].schedule is None:
            self.pods[key].schedule = at

    def running(self, key: str, at: float, pulls: float) -> None:
        """The kubelet started pod ``key``'s last container at ``at`` after ``pulls`` seconds of image pulls."""
        times = self.pods.get(key)
        if times is not None and times.run is None:
            times.run, times.pulls = at, pulls

    def selected(self, keep: Keep = None) -> dict[str, PodTimes]:
        """The pods whose labels ``keep`` accepts (every pod when ``keep`` is None)."""
        if keep is None:
            return self.pods
        return {key: t for key, t in self.pods.items() if keep(t.labels)}

    def table(self, keep: Keep = None) -> pd.DataFrame:
        """One row per pod that reached ``watch`` (of those ``keep`` accepts): the four phases in seconds."""
        rows = []
        for key, t in self.selected(keep).items():
            if t.schedule is None or t.run is None or t.watch is None:
                continue
            rows.append(
                {
                    "pod": key,
                    "create_to_schedule": t.schedule - t.create,
                    "schedule_to_run": max(0.0, t.run - t.schedule - t.pulls),
                    "run_to_watch": t.watch - t.run,
                    "pod_startup": max(0.0, t.watch - t.create - t.pulls),
                    "image_pull": t.pulls,
                }
            )
        return pd.DataFrame(rows, columns=["pod", *PHASES, "image_pull"])

    def cl2_phases(self, method: str, keep: Keep = None) -> dict[str, dict[str, float]]:
        """Pod key -> phase -> time, the phases ClusterLoader2 records by ``method`` (:data:`CL2_METHODS`) for the
        pods ``keep`` accepts."""
        if method not in CL2_METHODS:
            raise ValueError(f"method: unknown {method!r}; allowed: {', '.join(CL2_METHODS)}")
        phases = _cl2_watch if method == "cl2" else _cl2_legacy
        return {key: p for key, t in self.selected(keep).items() if (p := phases(t))}

    def cl2_table(self, method: str, keep: Keep = None) -> pd.DataFrame:
        """One row per pod CL2 recorded by ``method`` (of those ``keep`` accepts): each of its transitions in
        seconds (NaN where a phase is missing, as CL2 then leaves the pod out of that transition)."""
        phases = self.cl2_phases(method, keep)
        transitions = CL2_METHODS[method]
        rows = []
        for key, p in phases.items():
            row: dict[str, object] = {"pod": key}
            for name in transitions:
                start, end = TRANSITIONS[name]
                row[name] = p[end] - p[start] if start in p and end in p else math.nan
            rows.append(row)
        return pd.DataFrame(rows, columns=["pod", *transitions])


def _cl2_watch(t: PodTimes) -> dict[str, float]:
    """perf-tests#3891 processEvent: create, schedule, run = watch, all CL2's receive times."""
    phases = {"create": t.create}
    if t.seen_bound is not None:
        phases["schedule"] = t.seen_bound
    if t.seen_running is not None:
        phases["run"] = phases["watch"] = t.seen_running
    return phases


def _cl2_legacy(t: PodTimes) -> dict[str, float]:
    """processEvent before #3891 (pods seen Running only) plus gatherScheduleTimes' Scheduled Event eventTime."""
    if t.seen_running is None or t.created_stamp is None:
        return {}
    phases = {"create": t.created_stamp, "watch": t.seen_running}
    if t.started_stamp is not None:
        phases["run"] = t.started_stamp
    if t.schedule is not None:
        phases["schedule"] = math.floor(t.schedule * 1e6) / 1e6  # metav1.MicroTime
    return phases


def cl2_percentiles(values: Sequence[float]) -> tuple[float, float, float]:
    """measurementutil.NewLatencyMetric: (Perc50, Perc90, Perc99), each the ``ceil(n * q / 100)``-th smallest value
    (0 for no values, as CL2's zero LatencyMetric)."""
    if len(values) == 0:
        return 0.0, 0.0, 0.0
    p50, p90, p99 = (nearest_rank(values, q) for q in (50, 90, 99))
    return p50, p90, p99
