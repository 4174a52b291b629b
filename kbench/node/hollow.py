"""A hollow node (kubemark's hollow kubelet): it registers its Node, renews its Lease and posts its status,
and runs no pods. What the control plane sees of a kubelet, at a fraction of the cost.

Timings come from its :class:`~kbench.node.config.KubeletConfiguration` (v1.35 defaults): the node Lease lasts
``nodeLeaseDurationSeconds`` (40 s) and is renewed 0.25 of that (10 s, NodeLeaseRenewIntervalFraction) after the
previous renewal returned, lengthened by up to 4% (the lease controller's sliding ``wait.JitterUntil(sync,
renewInterval, 0.04, true)``: ``wait.Jitter`` waits ``period + rand.Float64() x 0.04 x period``, from the node's own
seeded stream ``kubelet/<node>``). A renewal
that fails is retried as the lease controller's ``sync`` does (staging/src/k8s.io/component-helpers/apimachinery/
lease/controller.go): ``retryUpdateLease`` makes at most ``maxUpdateRetries`` (5) updates, reading the lease again
after a 409 Conflict (``backoffEnsureLease``: GET, or create when there is none, a failed one tried again 0.2 s
doubling to 7 s later) and trying again at once after any other error; when all five fail, the sync ensures the
lease and makes five more, and after those the next sync comes a renew interval later. A kubelet back from a stop
reads the lease and renews from it; one back before it had registered registers then. The kubelet's client is
limited to ``kubeAPIQPS`` / ``kubeAPIBurst``; the Node's pods capacity is ``maxPods`` (capped by ``podsPerCore``).

Status is posted at registration, then once ``nodeStatusReportFrequency`` (5 min) has passed, as
tryUpdateNodeStatus (pkg/kubelet/kubelet_node_status.go) does: GET the Node, set the kubelet's own conditions on
that fresh copy (others', such as NetworkUnavailable, stay as they are) and write it back; a 409 Conflict reads
again, up to ``nodeStatusUpdateRetry`` 5 tries. Upstream checks the status every ``nodeStatusUpdateFrequency``
(10 s) on a loop of its own; kbench runs each check with the Lease renewal nearest its tick (a renewal runs it when
at least ``nodeStatusUpdateFrequency`` less half a renew interval has passed since the last check), which saves an
engine event per node per tick: with the defaults every renewal checks, with a frequency of k renew intervals every
k-th does, and a frequency below the renew interval is checked at each renewal.

A stopped node (dead, or cut off by a partition) sends nothing from the moment it stops: every request it had
queued for later is taken back, and answers to requests sent before the stop start nothing, even after a restart.
"""

from __future__ import annotations

import math
from collections import deque
from functools import partial
from typing import TypedDict

from kbench.api.quantity import resource_amount
from kbench.apiserver.objects import timestamp
from kbench.apiserver.renewals import renewed_lease
from kbench.apiserver.server import APIServer, Callback
from kbench.client import Client
from kbench.node.config import KubeletConfiguration
from kbench.sim import Timer

NODE_STATUS_UPDATE_RETRY = 5
"""pkg/kubelet/kubelet.go nodeStatusUpdateRetry: tries of one status update."""

LEASE_RENEW_JITTER = 0.04
"""k8s.io/component-helpers/apimachinery/lease/controller.go: Run's wait.JitterUntil jitter factor."""
MAX_UPDATE_RETRIES = 5
"""lease/controller.go maxUpdateRetries: the updates one retryUpdateLease makes before it gives up."""
ENSURE_LEASE_BACKOFF, MAX_ENSURE_LEASE_BACKOFF = 0.2, 7.0
"""backoffEnsureLease's waits between reads of the lease (100 ms doubled before the first, maxBackoff 7 s)."""
CONDITIONS = {
    "Ready": ("True", "KubeletReady", "kubelet is posting ready status"),
    "MemoryPressure": ("False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
    "DiskPressure": ("False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
    "PIDPressure": ("False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
}
"""The conditions the kubelet sets (pkg/kubelet/nodestatus/setters.go), as a healthy node reports them."""


class NodeOptions(TypedDict, total=False):
    """:class:`HollowNode`'s keyword arguments, which a :class:`~kbench.node.kubelet.Kubelet` passes on to it."""

    config: KubeletConfiguration | None
    zone: str
    cpu: str
    memory: str
    uninitialized: bool
    start: float


class HollowNode:
    """A kubemark hollow kubelet on node ``name``: registration, Lease renewals and status posts, no pods.

    Parameters
    ----------
    server : APIServer
    name : str
        The node's name.
    config : KubeletConfiguration, optional
        The kubelet's configuration (default: upstream's defaults).
    zone : str
        Its ``topology.kubernetes.io/zone`` label.
    cpu, memory : str
        Its capacity (quantities); the pods capacity is the configuration's.
    uninitialized : bool
        Registers with the cloud provider's uninitialized taint (an external cloud-controller-manager initializes it).
    start : float
        Seconds from now until the kubelet registers.
    """

    def __init__(
        self,
        server: APIServer,
        name: str,
        *,
        config: KubeletConfiguration | None = None,
        zone: str = "zone-a",
        cpu: str = "4",
        memory: str = "16Gi",
        uninitialized: bool = False,
        start: float = 0.0,
    ) -> None:
        self.engine = server.engine
        self.name = name
        self.config = config = config or KubeletConfiguration()
        self.renew_interval = config.lease_renew_interval
        self.rng = server.streams.python(f"kubelet/{name}")
        """The node's own random stream (lease jitter; the kubelet's backoff and token jitter)."""
        self.client = Client(server, f"system:node:{name}", ("system:nodes",), config.client_qps, config.client_burst)
        self.running = True
        self._stops = 0
        """Times the kubelet has stopped: an answer to a request sent before the last stop is dropped."""
        self.registered = False
        self.renewals = 0
        self._status_posted = -math.inf
        self._status_checked = -math.inf
        self._lease_base: dict | None = None
        """The lease the last update was made from (the controller's latestLease, or the one just read)."""
        self._update_tries, self._ensured = 0, False
        """Updates failed in the current retryUpdateLease; whether this sync has ensured the lease already."""
        self._pending: deque[tuple[float, Timer]] = deque()
        """(send time, handle) of the requests sent lately, in the order sent: those not yet due when the node stops
        are taken back. Each send forgets those at the front that are due: a handle keeps its request (body,
        callback) alive, and kept, they were most of what a collector settle scans (kbench.sim.collector)."""
        self.manifest = node_manifest(name, zone, cpu, memory, config.pods_capacity(_cores(cpu)), uninitialized)
        """The Node as registered (its conditions are stamped at each registration)."""
        self._register(start)

    def _send(self, delay: float, verb: str, resource: str, callback: Callback, **kwargs) -> None:
        """Send a request ``delay`` seconds from now (when the answer that prompts it has arrived, or its timer is
        due), unless the node has stopped; :meth:`stop` takes it back if it is not yet due then."""
        if self.running:
            self._sent(delay, self.client.request(verb, resource, self._answering(callback), delay=delay, **kwargs))

    def _answering(self, callback: Callback) -> Callback:
        """``callback`` for the answer to a request sent now (:meth:`_answer`)."""
        return partial(self._answer, self._stops, callback)

    def _sent(self, delay: float, timer: Timer) -> None:
        """Keep the handle of a request sent ``delay`` seconds from now, for :meth:`stop`."""
        now = self.engine.now
        pending = self._pending
        while pending and pending[0][0] <= now:  # sent already (stop() would skip them anyway)
            pending.popleft()
        pending.append((now + delay, timer))

    def _answer(self, stops: int, callback: Callback, result, error, delay: float) -> None:
        """An answer reaches the kubelet: dropped when the kubelet has stopped since it sent the request (a restarted
        kubelet is a new process; a partition outlasts the request), else ``callback``'s."""
        if stops == self._stops:
            callback(result, error, delay)

    # -- registration and the Lease ---------------------------------------------------------------------------
    def _register(self, delay: float) -> None:
        """registerWithAPIServer: create the Node, its conditions as of when the request leaves."""
        status = {**self.manifest["status"], "conditions": []}
        _set_conditions(status["conditions"], timestamp(self.engine.now + delay))
        self._send(delay, "create", "nodes", self._registered, body={**self.manifest, "status": status})

    def _registered(self, node, error, delay) -> None:
        if error is not None and error.code != 409:
            self._register(delay + 1.0)
            return
        self.registered = True
        self._status_posted = self._status_checked = self.engine.now + delay  # registering posted the status
        self._create_lease(delay, self._renewed)

    def _create_lease(self, delay: float, callback: Callback) -> None:
        lease = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": self.name, "namespace": "kube-node-lease"},
            "spec": {
                "holderIdentity": self.name,
                "leaseDurationSeconds": self.config.node_lease_duration_seconds,
                "renewTime": timestamp(self.engine.now + delay, micro=True),
            },
        }
        self._send(delay, "create", "leases", callback, body=lease)

    def _renewed(self, lease, error, delay) -> None:
        if error is None:
            self._update_tries, self._ensured = 0, False
            self.renewals += 1
            self._renew(lease, delay + self.renew_wait())
            return
        if self._lease_base is None:  # the first create failed: ensure the lease (read it, or create it)
            self._read_lease(delay)
            return
        self._update_tries += 1
        if self._update_tries < MAX_UPDATE_RETRIES:  # retryUpdateLease: a conflict reads the lease again first
            if error.code == 409:
                self._read_lease(delay)
            else:
                self._renew(self._lease_base, delay)
        elif not self._ensured:  # sync: the latest lease failed; ensure the lease and retry from it
            self._update_tries, self._ensured = 0, True
            self._read_lease(delay)
        else:  # both retryUpdateLease calls failed: the next sync, a renew interval later, starts from the latest
            self._update_tries, self._ensured = 0, False
            self._renew(self._lease_base, delay + self.renew_wait())

    def renew_wait(self) -> float:
        """Seconds from a renewal's answer to the next renewal: wait.Jitter(renewInterval, 0.04)."""
        return self.renew_interval * (1.0 + self.rng.random() * LEASE_RENEW_JITTER)

    def _renew(self, lease, delay: float) -> None:
        """Update ``lease`` with renewTime as of when the request leaves; coalesced renewals (renewals.py) take the
        lease and the time, and make the body only if the registry needs it."""
        self._lease_base = lease
        at = self.engine.now + delay
        renew_time = timestamp(at, micro=True)
        renewals = self.client.server.renewals
        if renewals is None:
            self._send(delay, "update", "leases", self._renewed, body=renewed_lease(lease, renew_time))
        elif self.running:
            self._sent(delay, renewals.send(self.client, lease, renew_time, self._answering(self._renewed), delay))
        if self._status_due(at):
            self._post_status(delay)

    def _status_due(self, at: float) -> bool:
        """syncNodeStatus, run with the renewal sent at ``at`` when it is the one nearest the next tick: whether the
        status is to be posted (nothing changes on a hollow node, so once nodeStatusReportFrequency has passed)."""
        config = self.config
        if at - self._status_checked < config.node_status_update_frequency - self.renew_interval / 2:
            return False
        self._status_checked = at
        return at - self._status_posted >= config.node_status_report_frequency

    def _read_lease(self, delay: float, backoff: float = ENSURE_LEASE_BACKOFF) -> None:
        self._send(
            delay,
            "get",
            "leases",
            lambda lease, error, answer: self._lease_read(lease, error, answer, backoff),
            namespace="kube-node-lease",
            name=self.name,
        )

    def _lease_read(self, lease, error, delay: float, backoff: float) -> None:
        """backoffEnsureLease: renew at once from the lease read, or create it if there is none (ensureLease); a
        failed read or create is tried again, 0.2 s doubling to 7 s later."""
        if error is None:
            self._renew(lease, delay)
        elif error.code == 404:
            self._create_lease(delay, lambda made, failed, answer: self._lease_created(made, failed, answer, backoff))
        else:
            self._retry_lease(delay, backoff)

    def _lease_created(self, lease, error, delay: float, backoff: float) -> None:
        if error is None:
            self._renewed(lease, None, delay)
        else:
            self._retry_lease(delay, backoff)

    def _retry_lease(self, delay: float, backoff: float) -> None:
        """Read the lease again ``backoff`` later, the next wait doubled up to :data:`MAX_ENSURE_LEASE_BACKOFF`."""
        self._read_lease(delay + backoff, min(2 * backoff, MAX_ENSURE_LEASE_BACKOFF))

    # -- node status ------------------------------------------------------------------------------------------
    def _post_status(self, delay: float, tries: int = NODE_STATUS_UPDATE_RETRY) -> None:
        """tryUpdateNodeStatus: read the Node, then write the kubelet's conditions onto that copy."""
        self._status_posted = self.engine.now + delay
        self._send(
            delay,
            "get",
            "nodes",
            lambda node, error, answer: self._read_node(node, error, answer, tries),
            name=self.name,
        )

    def _read_node(self, node, error, delay: float, tries: int) -> None:
        if error is not None:  # a failed read waits for the next report
            return
        # a copy of what the setters change (the status, its conditions); the rest is shared with the Node read,
        # which nothing changes (stored objects never are; neither is a body once sent)
        status = dict(node["status"])
        status["conditions"] = conditions = [dict(c) for c in status.get("conditions", ())]
        _set_conditions(conditions, timestamp(self.engine.now + delay))
        body = {**node, "status": status}
        self._send(
            delay,
            "update",
            "nodes",
            lambda _, failed, answer: self._status_written(failed, answer, tries),
            body=body,
            subresource="status",
        )

    def _status_written(self, error, delay: float, tries: int) -> None:
        if error is not None and error.code == 409 and tries > 1:  # changed since read: read it again
            self._post_status(delay, tries - 1)

    # -- failure and recovery ---------------------------------------------------------------------------------
    def stop(self) -> None:
        """The kubelet dies (or is partitioned): from now on it sends nothing (requests not yet due are taken
        back; answers to those already sent start nothing)."""
        self.running = False
        self._stops += 1
        now = self.engine.now
        for at, timer in self._pending:
            if at > now:
                self.engine.cancel(timer)
        self._pending.clear()

    def restart(self) -> None:
        """The kubelet is back: it renews its lease and posts its status at once (or registers, if it never
        did)."""
        if self.running:
            return
        self.running = True
        if not self.registered:
            self._register(0.0)
            return
        self._update_tries, self._ensured = 0, False
        self._read_lease(0.0)
        self._status_checked = self.engine.now  # syncNodeStatus runs as the kubelet starts
        self._post_status(0.0)


def node_manifest(name: str, zone: str, cpu: str, memory: str, pods: int, uninitialized: bool) -> dict:
    """The Node a kubelet registers (registerWithAPIServer / initialNode): labels, capacity, allocatable, address, and
    the cloud provider's uninitialized taint when an external cloud-controller-manager is to initialize it."""
    labels = {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "topology.kubernetes.io/zone": zone}
    taint = {"key": "node.cloudprovider.kubernetes.io/uninitialized", "value": "true", "effect": "NoSchedule"}
    capacity = {"cpu": cpu, "memory": memory, "pods": str(pods)}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": labels},
        "spec": {"taints": [taint] if uninitialized else []},
        "status": {
            "capacity": capacity,
            "allocatable": dict(capacity),
            "conditions": [],
            "addresses": [{"type": "Hostname", "address": name}],
        },
    }


def _cores(cpu: str) -> int:
    """Whole CPU cores of a cpu quantity (the machine's NumCores), for podsPerCore."""
    return max(1, math.ceil(resource_amount("cpu", cpu) / 1000))


def _set_conditions(conditions: list[dict], stamp: str) -> None:
    """The kubelet's condition setters: each of :data:`CONDITIONS` gets a fresh heartbeat, and a new transition
    time when its status changes; conditions the kubelet does not own are left alone."""
    for kind, (status, reason, message) in CONDITIONS.items():
        cond = next((c for c in conditions if c.get("type") == kind), None)
        if cond is None:
            cond = {"type": kind}
            conditions.append(cond)
        if cond.get("status") != status:
            cond.update(status=status, reason=reason, message=message, lastTransitionTime=stamp)
        cond["lastHeartbeatTime"] = stamp
