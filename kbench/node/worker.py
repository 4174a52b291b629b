"""The kubelet's pod workers (pkg/kubelet/pod_workers.go, v1.35): what the kubelet keeps of one pod and its
containers, built from the pod's spec, and when a started container becomes ready, stops, or is killed by its probes
(:mod:`kbench.node.probes`). :class:`~kbench.node.kubelet.Kubelet` drives them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from kbench.api.core import Pod
from kbench.apiserver.objects import object_key
from kbench.node.probes import Behaviour, Probe, behaviours
from kbench.sim import Process


@dataclass
class ContainerRun:
    """One container of a pod worker and its current state."""

    name: str
    image: str
    pull_policy: str
    behaviour: Behaviour
    startup: Probe | None = None
    liveness: Probe | None = None
    readiness: Probe | None = None
    init: bool = False
    state: str = "waiting"
    reason: str = "ContainerCreating"
    ready: bool = False
    restarts: int = 0
    started_at: float | None = None
    exit_code: int | None = None
    backoff: float = 0.0
    last_crash: float = -math.inf
    process: Process | None = None


@dataclass
class PodWorker:
    """One pod on the kubelet: its spec's parts the kubelet uses, its containers and its state."""

    key: str
    uid: str
    pod: Mapping
    requests: dict[str, int]
    restart_policy: str
    grace: float
    init: list[ContainerRun]
    containers: list[ContainerRun]
    phase: str = "Pending"
    reason: str = ""
    ip: str = ""
    initialized: bool = False
    terminating: bool = False
    started: float | None = None
    pull_seconds: float = 0.0
    process: Process | None = None
    patching: bool = False
    dirty: bool = False
    status: bytes | None = None
    """The status manager's status of the pod, the last one it took (sent or to be sent), as its JSON: a few hundred
    bytes a pod where the dict took a few kilobytes (150,000 pods)."""
    deleted: bool = False
    down: bool = False
    """Its node shut down: every container died with it."""


def pull_policy(container: Mapping) -> str:
    """imagePullPolicy, defaulted as core/v1 SetDefaults_Container: Always for ``:latest`` or untagged."""
    if container.get("imagePullPolicy"):
        return container["imagePullPolicy"]
    image = container.get("image", "")
    tag = image.rsplit("/", 1)[-1]
    return "Always" if "@" not in tag and (":" not in tag or tag.endswith(":latest")) else "IfNotPresent"


def pod_worker(manifest: Mapping) -> PodWorker:
    """A pod's worker as the kubelet builds it from the pod: its requests, restart policy, grace period and
    containers (probes and behaviour parsed; errors name the pod and container)."""
    meta, spec = manifest["metadata"], manifest["spec"]
    key = object_key(manifest)
    requests = Pod.from_manifest(manifest).requests
    kinds = behaviours(manifest)

    def run(c: Mapping, init: bool) -> ContainerRun:
        def probe(kind: str) -> Probe | None:  # init containers have no probes
            return None if init else Probe.of(c.get(f"{kind}Probe"), f"pod {key}: container {c['name']}.{kind}Probe")

        image, behaviour = c.get("image", ""), kinds[c["name"]]
        return ContainerRun(
            c["name"], image, pull_policy(c), behaviour, probe("startup"), probe("liveness"), probe("readiness"), init
        )

    return PodWorker(
        key,
        meta["uid"],
        manifest,
        requests,
        spec.get("restartPolicy", "Always"),
        float(spec.get("terminationGracePeriodSeconds", 30)),
        [run(c, True) for c in spec.get("initContainers") or []],
        [run(c, False) for c in spec.get("containers") or []],
    )


def container_timeline(c: ContainerRun, start: float) -> tuple[float, float, float]:
    """(ready, end, killed) times of a container started at ``start``: when its readiness probe first passes, when
    it stops (its exit or a kill), and when its startup or liveness probe has the kubelet kill it (inf: never)."""
    b = c.behaviour
    started, killed_at = start, math.inf
    if c.startup is not None:
        started = c.startup.passes_at(start, start + b.started_after, b.probe_latency)
        killed_at = c.startup.fails_at(start, start, b.probe_latency)
        if started <= killed_at:
            killed_at = math.inf
        else:
            started = math.inf
    if c.liveness is not None and not math.isinf(started):
        failing = max(started, start + b.liveness_fails_after)
        killed_at = min(killed_at, c.liveness.fails_at(start, failing, b.probe_latency))
    if c.readiness is None:
        ready_at = started
    else:
        ready_at = c.readiness.passes_at(start, max(started, start + b.ready_after), b.probe_latency)
    return ready_at, min(start + b.exit_after, killed_at), killed_at


def run_start(c: ContainerRun) -> float:
    """When a running container started."""
    assert c.started_at is not None, f"container {c.name} has not started"
    return c.started_at
