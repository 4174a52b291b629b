"""kube-scheduler as a cluster component: node and pod informers feed :class:`Scheduler`; binds go through the
apiserver (``POST pods/<name>/binding``).

As upstream's scheduler cache (pkg/scheduler/eventhandlers.go): unassigned pods of the default scheduler
that are not terminal enter the queue; assigned pods are accounted on their node (the ones this scheduler
assumed already are); terminal or deleted pods free their node; node additions and updates (taints,
``unschedulable``, allocatable) are cluster events that move unschedulable pods. A failed binding forgets
the assumed pod and queues it again (``handleBindingCycleError``). A pod no node fits gets the
``PodScheduled=False`` condition with reason ``Unschedulable`` and upstream's message, written when the message
changes (``updatePod`` in handleSchedulingFailure).

Events (pkg/scheduler/schedule_one.go) go through the events.k8s.io/v1 recorder
(:class:`~kbench.client.record.EventsV1Recorder`, reporting controller the profile's schedulerName) on an event client
of their own (cmd/kube-scheduler/app/options ``createClients``: ``eventClient`` is a second clientset of the same
rest.Config, so a token bucket of its own): ``Scheduled`` "Successfully assigned <ns>/<name> to <node>" when a binding
succeeds (bindingCycle), ``FailedScheduling`` with the failure's message (the FitError's, or the binding error's)
when a cycle or a binding fails (handleSchedulingFailure, truncateMessage to 1024 characters).
"""

from __future__ import annotations

from collections.abc import Mapping

from kbench.api.core import Node, Pod
from kbench.api.policy import PodDisruptionBudget
from kbench.apiserver.objects import object_key, seconds, timestamp
from kbench.client import Client, Informer
from kbench.client.record import EventsV1Recorder
from kbench.profiles import Profile
from kbench.scheduler.config import SchedulerConfig
from kbench.scheduler.scheduler import Scheduler, SchedulerStats
from kbench.scheduler.state import ClusterState
from kbench.sim import Streams

TERMINAL = ("Succeeded", "Failed")
MAX_EVENT_MESSAGE = 1024
"""schedule_one.go truncateMessage: an event's message is cut to 1024 characters, ending " ..."."""


def truncate_message(message: str) -> str:
    """truncateMessage: ``message`` if it fits in 1024 characters, else its start and " ..."."""
    if len(message) <= MAX_EVENT_MESSAGE:
        return message
    return message[: MAX_EVENT_MESSAGE - 4] + " ..."


def _preemption_view(pod: Mapping) -> tuple:
    """What preemption reads of a bound pod besides its spec: deletion, start time, a DisruptionTarget condition."""
    status = pod.get("status") or {}
    target = next((c for c in status.get("conditions") or () if c.get("type") == "DisruptionTarget"), None)
    return pod["metadata"].get("deletionTimestamp"), status.get("startTime"), target


def _scheduling_view(node: Mapping) -> tuple:
    spec, status = node.get("spec") or {}, node.get("status") or {}
    return (
        node["metadata"].get("labels"),
        spec.get("taints"),
        spec.get("unschedulable"),
        status.get("allocatable"),
        status.get("images"),
    )


class KubeScheduler:
    """kube-scheduler on a cluster: its apiserver client and informers, the queue and the scheduling loop.

    Parameters
    ----------
    server
        The kube-apiserver (or its load balancer) the client talks to.
    profile : Profile
        Calibration profile (the ``scheduler`` section's unit costs).
    streams : Streams
        The run's RNG streams.
    config : SchedulerConfig, optional
        Its KubeSchedulerConfiguration (default: upstream's defaults); the client's QPS and burst are
        ``clientConnection.qps`` / ``clientConnection.burst``.
    """

    def __init__(self, server, profile: Profile, streams: Streams, config: SchedulerConfig | None = None) -> None:
        config = config or SchedulerConfig()
        self.engine = server.engine
        qps, burst = config.client_connection_qps, config.client_connection_burst
        self.client = Client(server, "system:kube-scheduler", ("system:authenticated",), qps, burst)
        events = Client(server, "system:kube-scheduler", ("system:authenticated",), qps, burst, self.client.conn)
        self.recorder = EventsV1Recorder(events, config.profile().scheduler_name)
        self.state = ClusterState()
        self.scheduler = Scheduler(
            self.engine, self.state, config, profile, streams, binder=self._bind, preempter=self._preempt,
            pdbs=self._budgets,
        )  # fmt: skip
        self.scheduler.on_unschedulable = self._unschedulable
        self.scheduler.on_nomination_cleared = self._clear_nomination
        self.nodes = Informer(self.client, "nodes")
        self.nodes.add_handler(on_add=self._node_added, on_update=self._node_updated)
        self.pods = Informer(self.client, "pods")
        self.pods.add_handler(on_add=self._pod, on_update=self._pod_updated, on_delete=self._gone)
        self.pdbs = Informer(self.client, "poddisruptionbudgets")
        self._parsed_pdbs: dict[str, tuple[str, PodDisruptionBudget]] = {}
        self.nodes.start()
        self.pods.start()
        self.pdbs.start()

    @property
    def stats(self) -> SchedulerStats:
        """What the scheduler did (per pod times, cycles, cost parts)."""
        return self.scheduler.stats

    def _node_added(self, node: Mapping) -> None:
        self.scheduler.add_nodes([Node.from_manifest(node)])

    def _node_updated(self, old: Mapping, new: Mapping) -> None:
        """Only what scheduling reads (labels, taints, unschedulable, allocatable, images) is a NodeUpdate."""
        if _scheduling_view(old) != _scheduling_view(new):
            self.state.update_node(Node.from_manifest(new))
            self.scheduler.queue.on_event("Node", "Update")

    def _pod(self, pod: Mapping) -> None:
        key, spec = object_key(pod), pod["spec"]
        if pod.get("status", {}).get("phase") in TERMINAL:
            self._gone(pod)
            return
        if spec.get("nodeName"):
            if key not in self.state.pods and spec["nodeName"] in self.state.index:
                self.state.bind(Pod.from_manifest(pod), spec["nodeName"])
        elif (
            key not in self.state.pods
            and key not in self.scheduler.stats.pods
            and not pod["metadata"].get("deletionTimestamp")
            and spec.get("schedulerName", "default-scheduler") == "default-scheduler"
        ):
            self.scheduler.add_pod(Pod.from_manifest(pod))

    def _pod_updated(self, old: Mapping, new: Mapping) -> None:
        """An update: a bound pod's deletion, DisruptionTarget condition or start time reach the scheduler's cache
        (what preemption reads), then as :meth:`_pod`."""
        key = object_key(new)
        bound = self.state.pods.get(key)
        if bound is not None and new["spec"].get("nodeName"):
            before, after = _preemption_view(old), _preemption_view(new)
            if before[0::2] != after[0::2]:  # deletion or DisruptionTarget: the pod object itself
                self.state.refresh(Pod.from_manifest(new))
            elif before[1] != after[1]:  # the kubelet's start time, once per pod: no new object needed
                self.state.set_start(key, None if after[1] is None else seconds(after[1]))
        self._pod(new)

    def _budgets(self) -> list[PodDisruptionBudget]:
        """The PDB lister: the informer's budgets, each parsed once per resourceVersion."""
        out = []
        parsed = {}
        for key, obj in self.pdbs.cache.items():
            rv = obj["metadata"].get("resourceVersion", "")
            cached = self._parsed_pdbs.get(key)
            if cached is None or cached[0] != rv:
                cached = (rv, PodDisruptionBudget.from_manifest(obj))
            parsed[key] = cached
            out.append(cached[1])
        self._parsed_pdbs = parsed  # deleted budgets go
        return out

    def _clear_nomination(self, pod: Pod) -> None:
        """clearNominatedNodeName: a status patch that removes the pod's nominatedNodeName."""
        self.client.request(
            "patch", "pods", lambda *a: None, namespace=pod.namespace, name=pod.name, subresource="status",
            body={"status": {"nominatedNodeName": None}},
        )  # fmt: skip

    def _preempt(self, victim: Pod, preemptor: Pod, node: str):
        """PreemptPod: the victim's DisruptionTarget condition (PreemptionByScheduler), then its deletion with its
        grace period, then the ``Preempted`` event; the returned event fires when the deletion is answered."""
        done = self.engine.event()
        self.scheduler.mark_preempted(victim)
        condition = {
            "type": "DisruptionTarget",
            "status": "True",
            "reason": "PreemptionByScheduler",
            "message": f"{preemptor.scheduler_name}: preempting to accommodate a higher priority pod",
            "lastTransitionTime": timestamp(self.engine.now),
        }
        current = self.pods.cache.get(victim.key) or victim.manifest
        conditions = [
            c for c in (current.get("status") or {}).get("conditions") or [] if c.get("type") != "DisruptionTarget"
        ]

        def deleted(result, error, delay):  # PreemptPod: a victim already gone (404) is not an eviction, no event
            if error is None:
                message = f"Preempted by pod {preemptor.uid} on node {node}"
                event = (self._regarding(victim), "Normal", "Preempted", message, "Preempting")
                self.engine.schedule(delay, lambda _: self.recorder.event(*event))
            self.engine.schedule(delay, done.succeed)

        def patched(result, error, delay):  # a victim already gone (404) is not deleted again, as PreemptPod returns
            if error is not None:
                self.engine.schedule(delay, done.succeed)
                return
            self.engine.schedule(
                delay,
                lambda _: self.client.request("delete", "pods", deleted, namespace=victim.namespace, name=victim.name),
            )

        self.client.request(
            "patch", "pods", patched, namespace=victim.namespace, name=victim.name, subresource="status",
            body={"status": {"conditions": [*conditions, condition]}},
        )  # fmt: skip
        return done

    def _gone(self, pod: Mapping) -> None:
        key = object_key(pod)
        if key in self.state.pods:  # frees its node
            self.scheduler.delete_pod(key)
        elif not pod["spec"].get("nodeName"):  # leaves the queue
            self.scheduler.delete_pod(key)
            self.scheduler.stats.pods.pop(key, None)

    def _regarding(self, pod: Pod) -> Mapping:
        """The pod as the informer last saw it (the event's regarding object)."""
        current = self.pods.cache.get(pod.key)
        if current is not None:
            return current
        return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": pod.name, "namespace": pod.namespace}}

    def _unschedulable(self, pod: Pod, message: str, nominating: str | None) -> None:
        self.recorder.event(
            self._regarding(pod), "Warning", "FailedScheduling", truncate_message(message), action="Scheduling"
        )
        current = self.pods.cache.get(pod.key)
        if current is None:
            return
        conditions = (current.get("status") or {}).get("conditions") or []
        old = next((c for c in conditions if c.get("type") == "PodScheduled"), None)
        same = old is not None and old.get("status") == "False" and old.get("message") == message
        nominated = (current.get("status") or {}).get("nominatedNodeName") or ""
        if same and (nominating is None or nominating == nominated):  # updatePod: nothing to write
            return
        condition = {
            "type": "PodScheduled",
            "status": "False",
            "reason": "Unschedulable",
            "message": message,
            "lastTransitionTime": timestamp(self.engine.now),
        }
        status: dict = {"conditions": [*(c for c in conditions if c.get("type") != "PodScheduled"), condition]}
        if nominating is not None and nominating != nominated:
            status["nominatedNodeName"] = nominating or None
        self.client.request(
            "patch",
            "pods",
            lambda *a: None,
            namespace=pod.namespace,
            name=pod.name,
            subresource="status",
            body={"status": status},
        )

    def _bind(self, pod: Pod, node: str):
        done = self.engine.event()

        def answer(result, error, delay):
            if error is None:  # recorded when the answer is back (bindingCycle, after bind returns)
                message = f"Successfully assigned {pod.namespace}/{pod.name} to {node}"
                event = (self._regarding(pod), "Normal", "Scheduled", message, "Binding")
            else:
                event = (
                    self._regarding(pod),
                    "Warning",
                    "FailedScheduling",
                    truncate_message(error.message),
                    "Scheduling",
                )
            self.engine.schedule(delay, lambda _: self.recorder.event(*event))
            if error is not None and pod.key in self.state.pods:
                self.state.remove(pod.key)
                self.scheduler.stats.pods.pop(pod.key, None)
                current = self.pods.cache.get(pod.key)
                if current is not None and not current["spec"].get("nodeName"):
                    self._pod(current)
            self.engine.schedule(delay, done.succeed)

        self.client.request(
            "create",
            "pods",
            answer,
            namespace=pod.namespace,
            name=pod.name,
            subresource="binding",
            body={"target": {"name": node}},
        )
        return done
