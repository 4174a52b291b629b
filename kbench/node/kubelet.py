"""The kubelet (pkg/kubelet, v1.35): its own pods through the client, pod workers over a CRI runtime, probes,
restarts with CrashLoopBackOff, graceful termination, status updates, and the node heartbeats of
:class:`HollowNode`.

- **Configuration**: a :class:`~kbench.node.config.KubeletConfiguration` (``maxPods`` is the node's pods
  capacity; ``serializeImagePulls`` / ``maxParallelImagePulls`` how many images it pulls at once; ``kubeAPIQPS`` /
  ``kubeAPIBurst`` its client's limits; the heartbeats' settings as :class:`HollowNode`).
- **Pods**: an informer on ``pods`` with ``fieldSelector=spec.nodeName=<node>``. A new pod is admitted
  against the node's allocatable (requests of the pods already admitted; a pod that does not fit fails with
  ``OutOf<resource>``, as lifecycle.PredicateAdmitHandler), then its worker (:mod:`kbench.node.worker`) runs
  SyncPod's order: the Pending status (SetPodStatus), WaitForAttachAndMount (:mod:`kbench.node.volumes`:
  ConfigMaps, Secrets and tokens read through the kubelet's client; a sync that times out is retried 10-15 s later),
  RunPodSandbox, init containers one at a time to completion, then each container: PullImage (per
  ``imagePullPolicy``; one pull at a time per node unless ``serializeImagePulls`` is false), CreateContainer,
  StartContainer.
- **Events** (pkg/kubelet/events): Pulling, Pulled, Created, Started, Killing, BackOff, FailedMount, Unhealthy with
  upstream's messages, through the kubelet's event recorder (client-go tools/record) on its own event client
  (``eventRecordQPS`` / ``eventBurst``, sharing the kubelet's connection).
- **Containers** then live by their behaviour spec and the probes (:mod:`kbench.node.probes`). A container
  that exits or is killed by its liveness / startup probe restarts per ``restartPolicy`` (Always; OnFailure
  on a non-zero code; Never) after the kubelet's per-container backoff (kuberuntime doBackOff with
  flowcontrol.Backoff: the first restart at once, then 10 s doubling to ``MaxContainerBackOff`` 300 s, reset
  after 600 s without a crash).
- **Deletion**: a pod with ``deletionTimestamp`` has its containers stopped (each takes its ``stopAfter``,
  capped by the grace period), its sandbox stopped, its final status written, and is then deleted with
  grace period 0 (the status manager's last step).
- **Status**: the status manager PATCHes ``pods/status`` after every change (changes made while a patch is in
  flight are folded into the next one); a status equal to the one it holds is ignored, and a condition whose
  status holds keeps its lastTransitionTime (pkg/kubelet/status/status_manager.go updateStatusInternal: "Ignoring
  same status for pod", updateLastTransitionTime). Patches go through the kubelet's client (``kubeAPIQPS`` /
  ``kubeAPIBurst``); a
  patch or final delete that fails is sent again at the next sync (the status manager's ``syncPeriod``, a 10 s
  constant in pkg/kubelet/status/status_manager.go). Container state changes reach it
  through the generic PLEG, which relists the runtime every second (genericPlegRelistPeriod 1 s,
  pkg/kubelet/kubelet.go; the evented PLEG is off by default), so they wait for the node's next relist; probe
  results (readiness) go to the status manager at once.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Unpack

import orjson

from kbench.api.quantity import resource_amount
from kbench.apiserver.objects import encode, object_key, timestamp
from kbench.apiserver.server import APIServer
from kbench.client import Client, Informer
from kbench.client.record import DEFAULT_SPAM_BURST, EventRecorder
from kbench.node.hollow import HollowNode, NodeOptions
from kbench.node.runtime import NodeRuntime, RuntimeModel
from kbench.node.volumes import VolumeCosts, VolumeManager
from kbench.node.worker import ContainerRun, PodWorker, container_timeline, pod_worker, run_start
from kbench.sim import Interrupt

FINISHED = ("Succeeded", "Failed")
"""The phases a pod does not leave (its containers will not run again)."""
PLEG_RELIST_PERIOD = 1.0
"""pkg/kubelet/kubelet.go genericPlegRelistPeriod: how often the generic PLEG relists the runtime."""
STATUS_SYNC_PERIOD = 10.0
"""pkg/kubelet/status/status_manager.go syncPeriod: how often syncBatch resends what did not reach the apiserver."""
INITIAL_BACKOFF, MAX_BACKOFF = 10.0, 300.0
"""pkg/kubelet/kubelet.go: backOffPeriod 10 s, MaxContainerBackOff 300 s (flowcontrol.Backoff resets an entry
unused for 2 x max)."""


def _failed(error) -> bool:
    """A write that did not happen (a 404 means the pod is gone: nothing left to write)."""
    return error is not None and error.code != 404


def node_ip(index: int) -> str:
    """The address of node ``index`` (its InternalIP, the pods' hostIP, kube-proxy's node IP)."""
    return f"192.168.{index // 256 % 256}.{index % 256}"


def go_duration(seconds: float) -> str:
    """A duration as Go's time.Duration.String prints it, truncated to the millisecond (``512ms``, ``1.5s``,
    ``2m3.25s``, ``1h0m5s``), as the kubelet's Pulled event shows it."""
    ms = int(seconds * 1000 + 1e-6)
    if ms < 1000:
        return f"{ms}ms" if ms else "0s"
    hours, ms = divmod(ms, 3_600_000)
    minutes, ms = divmod(ms, 60_000)
    secs = f"{ms / 1000:.3f}".rstrip("0").rstrip(".")
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    return f"{minutes}m{secs}s" if minutes else f"{secs}s"


def format_pod(pod: Mapping) -> str:
    """pkg/kubelet/util/format.Pod: ``name_namespace(uid)``."""
    meta = pod["metadata"]
    return f"{meta['name']}_{meta.get('namespace', '')}({meta.get('uid', '')})"


class Kubelet(HollowNode):
    """A kubelet on node ``name``: :class:`HollowNode`'s registration and heartbeats, plus real pods.

    Parameters
    ----------
    server : APIServer
    name : str
        The node's name.
    runtime : RuntimeModel
        The CRI runtime every node of its kind shares (costs, image catalog); the node keeps its own image store.
    config : KubeletConfiguration, optional
        The kubelet's configuration (default: upstream's defaults): client limits, heartbeats, maxPods, image pulls.
    index : int
        The node's number (its IP, its pods' IPs, the phase of its PLEG relist).
    observer : callable, optional
        ``observer(worker)`` is called when all of a pod's containers have started.
    zone, cpu, memory, uninitialized, start
        As :class:`HollowNode` (:class:`~kbench.node.hollow.NodeOptions`; ``config`` too).
    """

    def __init__(
        self,
        server: APIServer,
        name: str,
        runtime: RuntimeModel,
        *,
        index: int = 0,
        observer: Callable[[PodWorker], None] | None = None,
        **node: Unpack[NodeOptions],
    ) -> None:
        super().__init__(server, name, **node)
        self.runtime = NodeRuntime(runtime, self.config.parallel_image_pulls)
        self.index = index
        self.observer = observer
        self.allocatable = {r: resource_amount(r, q) for r, q in self.manifest["status"]["allocatable"].items()}
        self.workers: dict[str, PodWorker] = {}
        self._used = {"cpu": 0, "memory": 0, "pods": 0}
        """The requests (and the count) of the workers not finished, kept as they change (:meth:`_set_phase`,
        :meth:`_pod_gone`): a sum over the workers at each admission read every worker, most of them out of the CPU's
        caches in a large run."""
        self._ips = 0
        self.rejected = 0
        self._relist_phase = (index * 0.6180339887) % 1.0  # nodes relist out of step with each other
        self.ip = node_ip(index)
        config = self.config
        events = Client(  # kubeDeps.EventClient: the kubelet's connection, its own eventRecordQPS / eventBurst
            server,
            f"system:node:{name}",
            ("system:nodes",),
            config.event_qps,
            config.event_burst_size,
            self.client.conn,
        )
        self.recorder = EventRecorder(events, "kubelet", name)
        self.volumes = VolumeManager(
            self.client,
            VolumeCosts.from_profile(runtime.profile),
            self.rng,
            phase=(index * 0.7548776662) % 1.0 * 0.1,  # the volume manager's 100 ms loops, out of step across nodes
            on_event=self._pod_event,
        )
        self.pods = self._watch_pods()

    def _watch_pods(self) -> Informer:
        informer = Informer(self.client, "pods", field_selector=f"spec.nodeName={self.name}")
        informer.add_handler(
            on_add=self._pod_seen, on_update=lambda old, new: self._pod_seen(new), on_delete=self._pod_gone
        )
        return informer.start()

    # -- node state -----------------------------------------------------------------------------------------
    def stop(self, shutdown: bool = False) -> None:
        """The node is cut off: from now on no heartbeats, no watch, no status (nothing is sent). A partition
        leaves its containers running; a ``shutdown`` kills them (and their sandboxes) with the machine."""
        super().stop()
        self.pods.stop()
        self.volumes.stop()
        if shutdown:
            for w in self.workers.values():
                self._interrupt(w)
                for c in [*w.init, *w.containers]:
                    if c.state == "running":
                        c.state, c.reason, c.ready, c.exit_code = "terminated", "Error", False, 137
                w.ip, w.down = "", True

    def restart(self) -> None:
        """The node is back: it heartbeats again, relists its pods, and (after a shutdown) starts them over
        (a new sandbox each; kubelet's SyncPod after a reboot)."""
        if self.running:
            return
        super().restart()
        self.pods = self._watch_pods()
        self.volumes.restart()
        for w in self.workers.values():
            if w.down and not w.terminating and w.phase not in FINISHED:
                w.down, w.initialized = False, False
                for c in w.containers:
                    c.restarts += 1
                w.process = self.engine.process(self._start_pod(w), name=f"pod/{w.key}")
            w.dirty = True  # resent as before the status manager ignored same statuses (needsReconcile not modelled)
            self._status(w)

    # -- pods from the informer -------------------------------------------------------------------------------
    def _pod_seen(self, pod: Mapping) -> None:
        meta = pod["metadata"]
        key = object_key(pod)
        worker = self.workers.get(key)
        if worker is not None and worker.uid != meta["uid"]:
            self._pod_gone(worker.pod)
            worker = None
        if worker is None:
            if pod.get("status", {}).get("phase") in FINISHED:
                return
            self._admit(pod)
        elif meta.get("deletionTimestamp") and not worker.terminating:
            worker.terminating = True
            grace = meta.get("deletionGracePeriodSeconds")
            worker.grace = float(worker.grace if grace is None else grace)
            self.engine.process(self._terminate(worker), name=f"kill/{key}")

    def _pod_gone(self, pod: Mapping) -> None:
        worker = self.workers.pop(object_key(pod), None)
        if worker is not None:
            if worker.phase not in FINISHED:
                self._count(worker, -1)
            worker.deleted = True
            self._interrupt(worker)
            self.volumes.unregister_pod(worker.pod)

    def _admit(self, manifest: Mapping) -> None:
        """A new pod: its worker starts, unless it does not fit the node's allocatable (lifecycle's
        PredicateAdmitHandler: it fails with ``OutOf<resource>``)."""
        used = self._in_use()
        worker = pod_worker(manifest)
        assert worker.key not in self.workers  # _pod_seen let a worker of the same key go first
        self.workers[worker.key] = worker
        self._count(worker, 1)
        for resource, have in self.allocatable.items():
            want = 1 if resource == "pods" else worker.requests.get(resource, 0)
            if used[resource] + want > have:
                self.rejected += 1
                self._set_phase(worker, "Failed")
                worker.reason = f"OutOf{resource}"
                self._status(worker)
                return
        self.volumes.register_pod(manifest)  # podManager.AddPod: RegisterPod, then the populator adds its volumes
        worker.process = self.engine.process(self._start_pod(worker), name=f"pod/{worker.key}")

    def _in_use(self) -> dict[str, int]:
        """Requests (and the count) of the pods admitted that have not finished."""
        return dict(self._used)

    def _set_phase(self, w: PodWorker, phase: str) -> None:
        """Set ``w``'s phase, keeping :meth:`_in_use`: a worker counts while it is one of the workers (not one removed
        or replaced under its name) and not Succeeded or Failed."""
        if self.workers.get(w.key) is w and (w.phase in FINISHED) != (phase in FINISHED):
            self._count(w, -1 if phase in FINISHED else 1)
        w.phase = phase

    def _count(self, w: PodWorker, sign: int) -> None:
        used = self._used
        used["cpu"] += sign * w.requests.get("cpu", 0)
        used["memory"] += sign * w.requests.get("memory", 0)
        used["pods"] += sign

    # -- the pod worker ---------------------------------------------------------------------------------------
    def _start_pod(self, w: PodWorker):
        """SyncPod: the pending status, WaitForAttachAndMount (a sync that times out is retried after the pod
        worker's backoff), RunPodSandbox, then the init containers and containers in order."""
        model = self.runtime.model
        try:
            w.started = self.engine.now
            self._status(w)  # SetPodStatus at the start of SyncPod: Pending, containers ContainerCreating
            while not (yield from self.volumes.wait_for_attach_and_mount(w.pod)):
                yield self.volumes.sync_backoff()
            yield model.duration("sandbox_create")
            self._ips += 1
            w.ip = f"10.{128 + self.index // 256 % 128}.{self.index % 256}.{self._ips % 254 + 1}"
            self._relisted(w)
            for c in w.init:
                if not (yield from self._run_init(w, c)):
                    return
            w.initialized = True
            for c in w.containers:
                if not (yield from self._start_container(w, c)):
                    return
                c.process = self.engine.process(self._live(w, c), name=f"container/{w.key}/{c.name}")
            self._set_phase(w, "Running")
            self._relisted(w)
            if self.observer is not None:
                self.observer(w)
        except Interrupt:
            return

    def _run_init(self, w: PodWorker, c: ContainerRun):
        """An init container, run to completion (and restarted after a failure unless restartPolicy is Never);
        False if the pod goes no further."""
        while True:
            if not (yield from self._start_container(w, c)):
                return False
            b = c.behaviour
            yield 0.0 if math.isinf(b.exit_after) else b.exit_after
            self._exited(w, c, b.exit_code)
            if b.exit_code == 0:
                return True
            if w.restart_policy == "Never":
                self._finish(w)
                return False
            yield self._backoff(w, c)

    def _start_container(self, w: PodWorker, c: ContainerRun):
        """PullImage (per policy), CreateContainer, StartContainer; False if the image may not be pulled."""
        rt, model, image = self.runtime, self.runtime.model, c.image
        if c.pull_policy == "Never" and not rt.present(image):
            c.state, c.reason = "waiting", "ErrImageNeverPull"
            self._event(
                w, "Warning", "ErrImageNeverPull", f'Container image "{image}" is not present with pull policy of Never'
            )
            self._status(w)
            return False
        if c.pull_policy == "Always" or not rt.present(image):
            self._event(w, "Normal", "Pulling", f'Pulling image "{image}"')
            took = yield from rt.pull(image)
            pulling, size = rt.last_pull
            self._event(
                w,
                "Normal",
                "Pulled",
                f'Successfully pulled image "{image}" in {go_duration(pulling)} ({go_duration(took)} including '
                f"waiting). Image size: {size} bytes.",
            )
            if c.restarts == 0:
                w.pull_seconds += took
        else:
            self._event(
                w,
                "Normal",
                "Pulled",
                f'Container image "{image}" already present on machine and can be accessed by the pod',
            )
        yield model.duration("container_create")
        self._event(w, "Normal", "Created", "Container created")
        yield model.duration("container_start")
        self._event(w, "Normal", "Started", "Container started")
        c.state, c.reason, c.started_at, c.exit_code = "running", "", self.engine.now, None
        self._relisted(w)
        return True

    def _live(self, w: PodWorker, c: ContainerRun):
        """A started container: runs until it exits or is killed, and restarts per restartPolicy."""
        try:
            while True:
                code = yield from self._run_once(w, c)
                self._exited(w, c, code)
                if w.restart_policy == "Never" or (w.restart_policy == "OnFailure" and code == 0):
                    self._finish(w)
                    return
                yield self._backoff(w, c)
                c.restarts += 1
                if not (yield from self._start_container(w, c)):
                    return
        except Interrupt:
            return

    def _run_once(self, w: PodWorker, c: ContainerRun):
        """One run of a started container: ready at its readiness probe's tick, then its exit or the kubelet's kill
        (SIGTERM, SIGKILL after the grace period); returns the exit code."""
        start, b = run_start(c), c.behaviour
        ready_at, end, killed_at = container_timeline(c, start)
        self._probe_events(w, c, start, ready_at, end, killed_at)
        if ready_at <= start:  # no probe to wait for: ready as it starts (reported with the PLEG relist)
            c.ready = True
        elif ready_at < end:
            yield ready_at - self.engine.now
            c.ready = True
            self._status(w)
        yield self.engine.event() if math.isinf(end) else end - self.engine.now
        if end < killed_at:
            return b.exit_code
        yield min(b.stop_after, w.grace) + self.runtime.model.costs.container_stop
        return 137 if b.stop_after > w.grace else 143

    def _probe_events(self, w: PodWorker, c: ContainerRun, start: float, ready_at: float, end: float, killed: float):
        """Unhealthy at each failed probe result (prober.go: "<Kind> probe failed: <output>"; kbench's probes have
        no output), and Killing when a liveness or startup probe has the container restarted. Only a readiness
        probe's first 25 failures (the spam filter's burst) are recorded: the recorder's spam filter would let
        through one more per 300 s, which kbench leaves out rather than record every failure of a never-ready
        container."""
        latency = c.behaviour.probe_latency
        if c.readiness is not None and ready_at > start:
            probe, until = c.readiness, min(ready_at - (c.readiness.success - 1) * c.readiness.period, end)
            first = max(0, math.ceil(probe.initial_delay / probe.period))
            ticks = [
                start + k * probe.period + min(latency, probe.timeout) for k in range(first, first + DEFAULT_SPAM_BURST)
            ]
            self._at(w, c, start, [t for t in ticks if t < until], "Warning", "Unhealthy", "Readiness probe failed: ")
        if math.isinf(killed) or killed > end:
            return
        by_startup = c.startup is not None and killed == c.startup.fails_at(start, start, latency)
        kind, killer = ("Startup", c.startup) if by_startup else ("Liveness", c.liveness)
        assert killer is not None, f"container {c.name} killed without a startup or liveness probe"
        ticks = [killed - j * killer.period for j in range(killer.failure)]
        self._at(w, c, start, [t for t in ticks if t >= start], "Warning", "Unhealthy", f"{kind} probe failed: ")
        message = f"Container {c.name} failed {kind.lower()} probe, will be restarted"
        self._at(w, c, start, [killed], "Normal", "Killing", message)

    def _at(self, w: PodWorker, c: ContainerRun, run: float, times: list[float], kind: str, reason: str, message: str):
        """Record an Event at each of ``times`` while the container's run that started at ``run`` lasts."""

        def record(_) -> None:
            if c.started_at == run and not w.deleted:
                self._event(w, kind, reason, message)

        for t in times:
            self.engine.schedule(max(0.0, t - self.engine.now), record)

    def _exited(self, w: PodWorker, c: ContainerRun, code: int) -> None:
        c.state, c.reason, c.ready, c.exit_code = "terminated", "Completed" if code == 0 else "Error", False, code
        self._relisted(w)

    def _backoff(self, w: PodWorker, c: ContainerRun) -> float:
        """Seconds until the kubelet restarts a crashed container (kuberuntime doBackOff)."""
        now = self.engine.now
        if now - c.last_crash > 2 * MAX_BACKOFF:
            c.backoff = 0.0
        c.last_crash = now
        delay = c.backoff
        c.backoff = INITIAL_BACKOFF if c.backoff == 0 else min(2 * c.backoff, MAX_BACKOFF)
        if delay > 0:
            c.state, c.reason = "waiting", "CrashLoopBackOff"
            self._event(
                w, "Warning", "BackOff", f"Back-off restarting failed container {c.name} in pod {format_pod(w.pod)}"
            )
            self._status(w)
        return delay

    def _event(self, w: PodWorker, kind: str, reason: str, message: str) -> None:
        """Record an Event about the pod (pkg/kubelet/events reasons; the container's fieldPath is not carried)."""
        self._pod_event(w.pod, kind, reason, message)

    def _pod_event(self, pod: Mapping, kind: str, reason: str, message: str) -> None:
        """Record an Event about ``pod`` through the kubelet's recorder, unless the node is stopped."""
        if self.running:
            self.recorder.event(pod, kind, reason, message)

    def _finish(self, w: PodWorker) -> None:
        """No container will run again (restartPolicy): the pod Succeeded or Failed."""
        if w.initialized and any(c.state != "terminated" for c in w.containers):
            return
        codes = [c.exit_code for c in (w.containers if w.initialized else w.init) if c.exit_code is not None]
        self._set_phase(w, "Succeeded" if w.initialized and all(code == 0 for code in codes) else "Failed")
        self._status(w)

    def _interrupt(self, w: PodWorker) -> None:
        for proc in [w.process, *(c.process for c in w.containers)]:
            if proc is not None and proc.is_alive:
                proc.interrupt()

    def _terminate(self, w: PodWorker):
        """Graceful deletion: stop the containers (in parallel), then the sandbox; final status; delete."""
        self._interrupt(w)
        model = self.runtime.model
        running = [c for c in w.containers if c.state == "running"]
        for c in running:
            self._event(w, "Normal", "Killing", f"Stopping container {c.name}")
        yield max((min(c.behaviour.stop_after, w.grace) for c in running), default=0.0) + model.costs.container_stop
        for c in running:
            self._exited(w, c, 0 if c.behaviour.stop_after <= w.grace else 137)
        yield model.costs.sandbox_stop
        self._set_phase(w, "Failed" if w.phase == "Pending" else w.phase)
        self._status(w)

    # -- the status manager -----------------------------------------------------------------------------------
    def _relisted(self, w: PodWorker) -> None:
        """A container state change: the status manager hears of it at the node's next PLEG relist."""
        wait = (self._relist_phase - self.engine.now) % PLEG_RELIST_PERIOD
        self.engine.schedule(wait, lambda _: self._status(w))

    def _status(self, w: PodWorker) -> None:
        """SetPodStatus: the status manager takes the pod's status now (updateStatusInternal) and sends it, or folds
        it into the next patch while one is in flight."""
        if w.deleted:
            return
        status = self._pod_status(w)
        if w.status is not None:
            keep_transition_times(status, orjson.loads(w.status))
        held = encode(status)  # exact-size bytes (equal statuses, built in one order, encode alike)
        # "Ignoring same status for pod"; one not yet sent (dirty) is resent, and a pod being deleted always gets its
        # update (SetPodStatus forces it once the deletionTimestamp is set: the final status and delete follow it)
        if held == w.status and not w.dirty and not w.terminating:
            return
        w.status = held
        if w.patching or not self.running:
            w.dirty = True
            return
        w.patching, w.dirty = True, False
        ns, name = w.key.split("/", 1)
        self.client.request(
            "patch",
            "pods",
            lambda r, e, d: self._patched(w, r, e, d),
            namespace=ns,
            name=name,
            subresource="status",
            body={"status": status},
        )

    def _patched(self, w: PodWorker, result, error, delay: float) -> None:
        """The apiserver answered a status patch; the status manager hears it ``delay`` later."""
        self.engine.schedule(delay, lambda _: self._patch_landed(w, error))

    def _patch_landed(self, w: PodWorker, error) -> None:
        """A failed patch is sent again at the next sync; changes made meanwhile go in the next patch; a pod whose
        termination is done is then deleted (a stopped node deletes after its restart)."""
        w.patching = False
        if w.deleted:
            return
        if _failed(error):  # not written: the status manager's next sync tries again
            w.dirty = True
            self.engine.schedule(STATUS_SYNC_PERIOD, lambda _: self._resync(w))
        elif w.dirty:
            self._status(w)
        elif (
            self.running
            and w.terminating
            and all(c.state != "running" for c in w.containers)
            and not (w.process is not None and w.process.is_alive)
        ):
            self._delete_pod(w)

    def _delete_pod(self, w: PodWorker) -> None:
        """The status manager's last step: delete the pod with grace period 0."""
        ns, name = w.key.split("/", 1)
        w.deleted = True
        self.client.request(
            "delete",
            "pods",
            lambda r, e, d: self._deleted(w, e, d),
            namespace=ns,
            name=name,
            gracePeriodSeconds=0,
        )

    def _deleted(self, w: PodWorker, error, delay: float) -> None:
        if _failed(error):  # still there: the status manager's next sync (syncPod, then the delete) deletes it again
            w.deleted, w.dirty = False, True
            self.engine.schedule(delay + STATUS_SYNC_PERIOD, lambda _: self._status(w))

    def _resync(self, w: PodWorker) -> None:
        """syncBatch: a status that has not reached the apiserver is sent again."""
        if w.dirty:
            self._status(w)

    def _pod_status(self, w: PodWorker) -> dict:
        now = timestamp(self.engine.now)
        ready = w.phase == "Running" and not w.terminating and all(c.ready for c in w.containers)
        conditions = [
            {"type": "PodScheduled", "status": "True"},
            {"type": "Initialized", "status": "True" if w.initialized else "False"},
            {"type": "ContainersReady", "status": "True" if ready else "False"},
            {"type": "Ready", "status": "True" if ready else "False", "lastTransitionTime": now},
        ]
        status = {
            "phase": w.phase,
            "conditions": conditions,
            "hostIP": self.ip,
            "containerStatuses": [self._container_status(c) for c in w.containers],
        }
        if w.init:
            status["initContainerStatuses"] = [self._container_status(c) for c in w.init]
        if w.reason:
            status["reason"] = w.reason
        if w.ip:
            status["podIP"], status["podIPs"] = w.ip, [{"ip": w.ip}]
        if w.started is not None:
            status["startTime"] = timestamp(w.started)
        return status

    @staticmethod
    def _container_status(c: ContainerRun) -> dict:
        state: dict[str, dict[str, object]]
        if c.state == "running":
            state = {"running": {"startedAt": timestamp(run_start(c))}}
        elif c.state == "terminated":
            state = {"terminated": {"exitCode": c.exit_code, "reason": c.reason}}
        else:
            state = {"waiting": {"reason": c.reason}}
        return {
            "name": c.name,
            "image": c.image,
            "ready": c.ready,
            "restartCount": c.restarts,
            "state": state,
            "started": c.state == "running",
        }


def keep_transition_times(status: dict, old: Mapping) -> None:
    """status_manager.go updateLastTransitionTime: a condition whose status is the one ``old`` had keeps old's
    lastTransitionTime."""
    before = {c["type"]: c for c in old.get("conditions", ())}
    for cond in status.get("conditions", ()):
        prev = before.get(cond["type"])
        if "lastTransitionTime" in cond and prev is not None and prev["status"] == cond["status"]:
            cond["lastTransitionTime"] = prev.get("lastTransitionTime", cond["lastTransitionTime"])
