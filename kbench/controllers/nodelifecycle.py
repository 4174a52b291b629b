"""Node lifecycle and taint-based eviction (pkg/controller/nodelifecycle, pkg/controller/tainteviction, v1.35).

Every ``--node-monitor-period`` (5 s) the controller looks at each Node: the last time it saw the node's
Lease renewTime or Ready heartbeat change is the node's probe time. A node silent for longer than
``--node-monitor-grace-period`` (50 s since v1.32; 60 s ``nodeStartupGracePeriod`` before it was first
Ready) gets all its conditions set to Unknown ("Kubelet stopped posting node status."). A node whose Ready
is Unknown gets the ``node.kubernetes.io/unreachable`` taint (False: ``not-ready``): the NoSchedule one at
once, the NoExecute one through a per-zone rate limiter, ``--node-eviction-rate`` 0.1 nodes/s, or
``--secondary-node-eviction-rate`` 0.01/s when at least ``--unhealthy-zone-threshold`` 55% of a zone's nodes
(and more than 2) are not ready, 0 in such a zone of at most ``--large-cluster-size-threshold`` 50 nodes;
when every zone is fully disrupted no node is tainted. Taints come off when the node is Ready again.

The taint eviction controller deletes a Pod on a NoExecute-tainted node when its toleration for every such
taint has run out (``tolerationSeconds`` after the taint's ``timeAdded``; at once without a toleration).
"""

from __future__ import annotations

import contextlib
import math
from collections import defaultdict

from kbench.apiserver.objects import APIError, object_key, seconds, timestamp
from kbench.client import TokenBucket
from kbench.controllers.base import Controller, condition

NODE_MONITOR_PERIOD = 5.0
NODE_MONITOR_GRACE_PERIOD = 50.0
NODE_STARTUP_GRACE_PERIOD = 60.0
EVICTION_RATE, SECONDARY_EVICTION_RATE = 0.1, 0.01
UNHEALTHY_ZONE_THRESHOLD = 0.55
LARGE_CLUSTER_SIZE_THRESHOLD = 50
NODE_EVICTION_PERIOD = 0.1
"""How often the tainting pass takes nodes from the per-zone rate-limited queues (100 ms)."""
UNREACHABLE, NOT_READY = "node.kubernetes.io/unreachable", "node.kubernetes.io/not-ready"
ZONE_LABEL = "topology.kubernetes.io/zone"


def _ready(node) -> str:
    cond = condition(node, "Ready")
    return cond.get("status", "Unknown") if cond else "Unknown"


class NodeLifecycleController(Controller):
    name = "node-lifecycle"

    def __init__(self, manager, monitor_period: float = NODE_MONITOR_PERIOD,
                 grace_period: float = NODE_MONITOR_GRACE_PERIOD) -> None:
        super().__init__(manager)
        self.nodes = manager.informer("nodes")
        self.leases = manager.informer("leases")
        self.monitor_period, self.grace_period = monitor_period, grace_period
        self.health: dict[str, list] = {}
        """node -> [probe time, lease renewTime seen, Ready heartbeat seen, ever ready]."""
        self.zone_queues: dict[str, list[str]] = defaultdict(list)
        self.zone_limiters: dict[str, TokenBucket] = {}
        self.zone_states: dict[str, str] = {}

    def start(self) -> None:
        super().start()
        self.engine.process(self._monitor(), name="node-lifecycle-monitor")
        self.engine.process(self._tainting(), name="node-lifecycle-tainter")

    def _monitor(self):
        yield self.nodes.synced
        yield self.leases.synced
        while not self.stopped:
            yield from self.monitor_node_health()
            yield self.monitor_period

    def monitor_node_health(self):
        now = self.engine.now
        zones: dict[str, list[str]] = defaultdict(list)
        leases = self.leases.cache
        health = self.health
        for name, node in list(self.nodes.cache.items()):
            state = health.get(name)
            conditions = node.get("status", {}).get("conditions") or ()
            ready = conditions[0] if conditions and conditions[0].get("type") == "Ready" else next(
                (c for c in conditions if c.get("type") == "Ready"), {})
            lease = leases.get("kube-node-lease/" + name)
            renew = lease["spec"].get("renewTime") if lease else None
            beat = ready.get("lastHeartbeatTime")
            status = ready.get("status", "Unknown")
            if state is None:
                state = health[name] = [now, renew, beat, status == "True"]
            elif renew != state[1] or beat != state[2]:
                state[0], state[1], state[2] = now, renew, beat
            if status == "True":
                state[3] = True
            if now > state[0] + (self.grace_period if state[3] else NODE_STARTUP_GRACE_PERIOD) \
                    and status != "Unknown":
                yield from self._mark_unknown(node)
                status = "Unknown"
            zones[node["metadata"].get("labels", {}).get(ZONE_LABEL, "")].append(status)
            taints = node.get("spec", {}).get("taints")
            if status == "True" and not taints:
                continue  # the common case: healthy and untainted
            yield from self._taint_no_schedule(node, status)
            if status != "True":
                self._queue_no_execute(node)
            else:
                yield from self._untaint(node)
        for name in [n for n in self.health if n not in self.nodes.cache]:
            del self.health[name]
        self._zone_states(zones)

    def _mark_unknown(self, node):
        body = self.copy(node)
        stamp = timestamp(self.engine.now)
        for cond in body["status"].get("conditions") or []:
            if cond.get("status") != "Unknown":
                cond.update(status="Unknown", reason="NodeStatusUnknown", lastTransitionTime=stamp,
                            message="Kubelet stopped posting node status.")
        with contextlib.suppress(APIError):  # the next monitor pass sees the latest version
            yield self.client.call("update", "nodes", body=body, subresource="status")

    def _taint_no_schedule(self, node, status: str):
        want = {"Unknown": UNREACHABLE, "False": NOT_READY}.get(status)
        taints = node.get("spec", {}).get("taints") or []
        have = {t["key"] for t in taints if t.get("effect") == "NoSchedule" and t["key"] in (UNREACHABLE, NOT_READY)}
        if have == ({want} if want else set()):
            return
        kept = [t for t in taints if not (t.get("effect") == "NoSchedule" and t["key"] in (UNREACHABLE, NOT_READY))]
        if want:
            kept.append({"key": want, "effect": "NoSchedule", "timeAdded": timestamp(self.engine.now)})
        yield from self._set_taints(node, kept)

    def _queue_no_execute(self, node) -> None:
        name = node["metadata"]["name"]
        zone = node["metadata"].get("labels", {}).get(ZONE_LABEL, "")
        if name not in self.zone_queues[zone] and not any(
                t.get("effect") == "NoExecute" and t["key"] in (UNREACHABLE, NOT_READY)
                for t in node.get("spec", {}).get("taints") or []):
            self.zone_queues[zone].append(name)

    def _untaint(self, node):
        taints = node.get("spec", {}).get("taints") or []
        kept = [t for t in taints if not (t.get("effect") == "NoExecute" and t["key"] in (UNREACHABLE, NOT_READY))]
        name = node["metadata"]["name"]
        for queue in self.zone_queues.values():
            if name in queue:
                queue.remove(name)
        if len(kept) != len(taints):
            yield from self._set_taints(node, kept)

    def _set_taints(self, node, taints):
        body = self.copy(node)
        body["spec"]["taints"] = taints
        with contextlib.suppress(APIError):  # the next monitor pass retries
            yield self.client.call("update", "nodes", body=body)

    def _zone_states(self, zones: dict[str, list[str]]) -> None:
        """ComputeZoneState, and the eviction rate each zone's queue gets."""
        for zone, statuses in zones.items():
            not_ready = sum(s != "True" for s in statuses)
            if not_ready == len(statuses):
                self.zone_states[zone] = "FullDisruption"
            elif not_ready > 2 and not_ready / len(statuses) >= UNHEALTHY_ZONE_THRESHOLD:
                self.zone_states[zone] = "PartialDisruption"
            else:
                self.zone_states[zone] = "Normal"
        all_down = all(state == "FullDisruption" for state in self.zone_states.values())
        for zone, statuses in zones.items():
            rate = EVICTION_RATE
            if all_down:
                rate = 0.0  # every zone is down: more likely the control plane's network; evict nothing
            elif self.zone_states[zone] == "PartialDisruption":
                rate = SECONDARY_EVICTION_RATE if len(statuses) > LARGE_CLUSTER_SIZE_THRESHOLD else 0.0
            limiter = self.zone_limiters.get(zone)
            if (limiter.qps if limiter else 0.0) != rate:
                self.zone_limiters[zone] = TokenBucket(rate, 1) if rate > 0 else None

    def _tainting(self):
        """doNoExecuteTaintingPass every 100 ms: each zone takes nodes as its rate limiter allows."""
        while not self.stopped:
            yield NODE_EVICTION_PERIOD
            for zone, queue in self.zone_queues.items():
                limiter = self.zone_limiters.get(zone)
                while queue and limiter is not None and limiter.try_accept(self.engine.now):
                    node = self.nodes.cache.get(queue.pop(0))
                    if node is None or _ready(node) == "True":
                        continue
                    key = UNREACHABLE if _ready(node) == "Unknown" else NOT_READY
                    taints = [t for t in node.get("spec", {}).get("taints") or []
                              if not (t.get("effect") == "NoExecute" and t["key"] in (UNREACHABLE, NOT_READY))]
                    taints.append({"key": key, "effect": "NoExecute", "timeAdded": timestamp(self.engine.now)})
                    yield from self._set_taints(node, taints)


class TaintEvictionController(Controller):
    """Deletes pods from NoExecute-tainted nodes once their tolerations run out."""

    name = "taint-eviction-controller"

    def __init__(self, manager) -> None:
        super().__init__(manager)
        self.nodes = manager.informer("nodes")
        self.pods = manager.informer("pods")
        self.by_node: dict[str, set[str]] = defaultdict(set)
        self.nodes.add_handler(on_add=self._node, on_update=lambda old, new: self._node(new))
        self.pods.add_handler(on_add=self._pod, on_update=lambda old, new: self._pod(new), on_delete=self._pod_gone)

    def _node(self, node) -> None:
        for key in self.by_node.get(node["metadata"]["name"], ()):
            self.queue.add(key)

    def _pod(self, pod) -> None:
        node = pod.get("spec", {}).get("nodeName")
        key = object_key(pod)
        if node:
            self.by_node[node].add(key)
            self.queue.add(key)

    def _pod_gone(self, pod) -> None:
        node = pod.get("spec", {}).get("nodeName")
        if node:
            self.by_node[node].discard(object_key(pod))

    def sync(self, key):
        pod = self.pods.cache.get(key)
        if pod is None or pod["metadata"].get("deletionTimestamp"):
            return
        node = self.nodes.cache.get(pod["spec"].get("nodeName", ""))
        if node is None:
            return
        taints = [t for t in node.get("spec", {}).get("taints") or [] if t.get("effect") == "NoExecute"]
        if not taints:
            return
        deadline = -math.inf
        tolerations = pod["spec"].get("tolerations") or []
        for taint in taints:
            tol = next((t for t in tolerations if _tolerates(t, taint)), None)
            if tol is None:
                deadline = math.inf
                break
            if tol.get("tolerationSeconds") is None:
                continue  # tolerated forever
            added = seconds(taint["timeAdded"]) if taint.get("timeAdded") else self.engine.now
            deadline = max(deadline, added + max(0, tol["tolerationSeconds"]))
        if deadline == -math.inf:
            return
        wait = 0.0 if deadline == math.inf else deadline - self.engine.now
        if wait > 0:
            self.queue.add_after(key, wait)
            return
        yield self.client.call("delete", "pods", namespace=pod["metadata"]["namespace"], name=pod["metadata"]["name"])


def _tolerates(toleration, taint) -> bool:
    """v1.Toleration.ToleratesTaint for NoExecute taints."""
    if toleration.get("effect") and toleration["effect"] != taint.get("effect"):
        return False
    if toleration.get("operator") == "Exists":
        return not toleration.get("key") or toleration["key"] == taint["key"]
    return toleration.get("key") == taint["key"] and toleration.get("value", "") == taint.get("value", "")
