"""A hollow node (kubemark's hollow kubelet): it registers its Node, renews its Lease and posts its status,
and runs no pods. What the control plane sees of a kubelet, at a fraction of the cost.

Timings are the kubelet's (v1.35 defaults, pkg/kubelet/apis/config/v1beta1/defaults.go): the node Lease lasts
``nodeLeaseDurationSeconds`` 40 s and is renewed every 40 x 0.25 = 10 s (NodeLeaseRenewIntervalFraction);
status is checked every ``nodeStatusUpdateFrequency`` 10 s and posted when it changed or
``nodeStatusReportFrequency`` (5 min) has passed. A renewal that gets 409 Conflict reads the lease and retries.
"""

from __future__ import annotations

from kbench.apiserver.objects import copy_object, timestamp
from kbench.client import Client

LEASE_DURATION = 40
RENEW_INTERVAL = LEASE_DURATION * 0.25
STATUS_REPORT_FREQUENCY = 300.0
KUBELET_QPS, KUBELET_BURST = 50.0, 100
"""kubeAPIQPS / kubeAPIBurst defaults since v1.27."""


class HollowNode:
    def __init__(self, server, name: str, zone: str = "zone-a", cpu: str = "4", memory: str = "16Gi",
                 pods: int = 110, uninitialized: bool = False, start: float = 0.0) -> None:
        """``start``: seconds from now until the kubelet registers; ``uninitialized``: registers with the
        cloud provider's uninitialized taint (an external cloud-controller-manager initializes it)."""
        self.engine = server.engine
        self.name = name
        self.client = Client(server, f"system:node:{name}", ("system:nodes",), KUBELET_QPS, KUBELET_BURST)
        self.running = True
        self.node = None
        self.renewals = 0
        self._status_posted = -1e18
        labels = {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "topology.kubernetes.io/zone": zone}
        taints = [{"key": "node.cloudprovider.kubernetes.io/uninitialized", "value": "true", "effect": "NoSchedule"}] \
            if uninitialized else []
        self.manifest = {
            "apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": labels},
            "spec": {"taints": taints},
            "status": {"capacity": {"cpu": cpu, "memory": memory, "pods": str(pods)},
                       "allocatable": {"cpu": cpu, "memory": memory, "pods": str(pods)},
                       "conditions": self._conditions(self.engine.now + start),
                       "addresses": [{"type": "Hostname", "address": name}]}}
        self.client.request("create", "nodes", self._registered, body=self.manifest, delay=start)

    def _conditions(self, now: float) -> list[dict]:
        stamp = timestamp(now)
        reasons = {"Ready": ("True", "KubeletReady", "kubelet is posting ready status"),
                   "MemoryPressure": ("False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
                   "DiskPressure": ("False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                   "PIDPressure": ("False", "KubeletHasSufficientPID", "kubelet has sufficient PID available")}
        return [{"type": t, "status": status, "reason": reason, "message": message, "lastHeartbeatTime": stamp,
                 "lastTransitionTime": stamp} for t, (status, reason, message) in reasons.items()]

    def _registered(self, node, error, delay) -> None:
        if error is not None and error.code != 409:
            self.client.request("create", "nodes", self._registered, body=self.manifest, delay=delay + 1.0)
            return
        self.node = node
        self._status_posted = self.engine.now + delay
        lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                 "metadata": {"name": self.name, "namespace": "kube-node-lease"},
                 "spec": {"holderIdentity": self.name, "leaseDurationSeconds": LEASE_DURATION,
                          "renewTime": timestamp(self.engine.now + delay, micro=True)}}
        self.client.request("create", "leases", self._renewed, body=lease, delay=delay)

    def _renewed(self, lease, error, delay) -> None:
        if not self.running:
            return
        if error is not None:  # conflict (or other): read the lease and try again
            self.client.request("get", "leases", self._renewed, namespace="kube-node-lease", name=self.name,
                                delay=delay)
            return
        self.renewals += 1
        at = self.engine.now + delay + RENEW_INTERVAL
        body = {"apiVersion": lease["apiVersion"], "kind": "Lease", "metadata": dict(lease["metadata"]),
                "spec": {**lease["spec"], "renewTime": timestamp(at, micro=True)}}
        self.client.request("update", "leases", self._renewed, body=body, delay=delay + RENEW_INTERVAL)
        if at - self._status_posted >= STATUS_REPORT_FREQUENCY and self.node is not None:
            self._post_status(at, delay + RENEW_INTERVAL)

    def _post_status(self, at: float, delay: float) -> None:
        self._status_posted = at
        node = copy_object(self.node)
        stamp = timestamp(at)
        for cond in node["status"]["conditions"]:
            if cond["type"] == "Ready" and cond["status"] != "True":
                cond.update(status="True", reason="KubeletReady", message="kubelet is posting ready status",
                            lastTransitionTime=stamp)
            cond["lastHeartbeatTime"] = stamp
        node["metadata"].pop("resourceVersion", None)
        self.client.request("update", "nodes", self._status_done, body=node, subresource="status", delay=delay)

    def _status_done(self, node, error, delay) -> None:
        if node is not None:
            self.node = node

    def stop(self) -> None:
        """The kubelet dies (or is partitioned): no more renewals or status."""
        self.running = False

    def restart(self) -> None:
        """The kubelet is back: it renews its lease and posts Ready at once."""
        if self.running:
            return
        self.running = True
        self._status_posted = -1e18
        self.client.request("get", "leases", self._renewed, namespace="kube-node-lease", name=self.name)
        self.client.request("get", "nodes", self._refresh_and_post, name=self.name)

    def _refresh_and_post(self, node, error, delay) -> None:
        if node is not None:
            self.node = node
            self._post_status(self.engine.now + delay, delay)
