"""Pod startup timeline, as ClusterLoader2's PodStartupLatency measurement takes it
(clusterloader2/pkg/measurement/common/slos/pod_startup_latency.go).

For every pod: ``create`` (the watcher first sees it; CL2 reads ``creationTimestamp``, which has one-second
resolution, so kbench uses the exact moment instead), ``schedule`` (its binding completed), ``run`` (the
kubelet started its last container; CL2 reads the latest ``containerStatuses[].state.running.startedAt``)
and ``watch`` (the watcher sees it Running with every container running). Phases: create_to_schedule,
schedule_to_run, run_to_watch and pod_startup = watch - create. As the SLO says ("excluding time to pull
images and run init containers", sig-scalability slos/pod_startup_latency.md), the kubelet's image pull
time is subtracted from schedule_to_run and pod_startup.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

from kbench.apiserver.objects import object_key
from kbench.client import Client, Informer

PHASES = ("create_to_schedule", "schedule_to_run", "run_to_watch", "pod_startup")


@dataclass
class PodTimes:
    """When one pod was first seen (``create``), bound, started and seen running, and its image pull time."""

    create: float
    schedule: float | None = None
    run: float | None = None
    watch: float | None = None
    pulls: float = 0.0


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
        status = pod.get("status") or {}
        if meta.get("deletionTimestamp") or status.get("phase") in ("Running", "Succeeded", "Failed"):
            self.pending.discard(key)
        else:
            self.pending.add(key)
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

    def table(self) -> pd.DataFrame:
        """One row per pod that reached ``watch``: the four phases in seconds."""
        rows = []
        for key, t in self.pods.items():
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
