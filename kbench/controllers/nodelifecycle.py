"""Node lifecycle controller (pkg/controller/nodelifecycle/node_lifecycle_controller.go, v1.35).

monitorNodeHealth runs every ``--node-monitor-period`` (5 s, counted from the end of the previous pass:
wait.UntilWithContext). For each Node, tryUpdateNodeHealth takes as the node's probe time the pass in which the
controller last saw its Lease renewTime or its Ready heartbeat change; a node silent for longer than
``--node-monitor-grace-period`` (50 s since v1.32; ``--node-startup-grace-period`` 60 s while it has no Ready
condition) gets Ready, MemoryPressure, DiskPressure and PIDPressure set to Unknown ("Kubelet stopped posting node
status."). The write starts from the informer's copy; when it fails, the node is read afresh and the check and
write are tried again (NodeHealthUpdateRetry 5 tries, retrySleepTime 20 ms apart).

Taints, each added or removed by SwapNodeControllerTaint (pkg/controller/util/node): a fresh GET, the change,
a write that a stale read turns into 409 Conflict, retried with a fresh GET (controller.UpdateTaintBackoff):

- NoSchedule (doNoScheduleTaintingPass): as soon as the node informer shows a condition, on the node update
  work queue (nodeUpdateWorkerSize 8 workers): ``node.kubernetes.io/unreachable`` for Ready Unknown,
  ``not-ready`` for False, ``memory-pressure`` / ``disk-pressure`` / ``pid-pressure`` / ``network-unavailable``
  for those True, ``unschedulable`` for ``spec.unschedulable``. (A failure is retried through the work queue;
  upstream logs it and waits for the next node update.)
- NoExecute (processTaintBaseEviction): from the Ready status the pass *observed* (before its own write, so one
  pass after the node went Unknown) the node joins its zone's queue (markNodeForTainting); doNoExecuteTaintingPass
  drains the queues every 100 ms as each zone's rate limiter allows (RateLimitedTimedQueue.Try):
  ``--node-eviction-rate`` 0.1 nodes/s (burst 1), ``--secondary-node-eviction-rate`` 0.01/s once at least
  ``--unhealthy-zone-threshold`` 55% of a zone's nodes (and more than 2) are not ready, 0 in such a zone of at
  most ``--large-cluster-size-threshold`` 50 nodes; when every zone is fully disrupted no node is tainted. A node
  Ready again loses its NoExecute taints and leaves the queue (markNodeAsReachable).

The pods on a NoExecute-tainted node are the taint eviction controller's (:mod:`kbench.controllers.tainteviction`).

Events (recorder "node-controller"): ``RegisteredNode`` / ``RemovingNode`` "Node <n> event: Registered Node <n> in
Controller" / "... Removing Node <n> from Controller" when monitorNodeHealth first sees a node or finds a known one
gone (classifyNodes, RecordNodeEvent); ``NodeNotReady`` "Node <n> status is now: NodeNotReady" once, when its own
write turned an observed Ready node not ready (RecordNodeStatusChange). Not modelled: MarkPodsNotReady (pods' Ready
condition set False, with a "NodeNotReady" event on each pod).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping

from kbench.apiserver.objects import APIError
from kbench.client import Backoff, TokenBucket, update_fresh
from kbench.controllers.base import Controller, Manager, condition
from kbench.controllers.nodehealth import FleetIndex, Record, Tentative, renew_time

NODE_EVICTION_PERIOD = 0.1
"""How often the tainting pass takes nodes from the per-zone rate-limited queues (100 ms)."""
NODE_UPDATE_WORKERS = 8
"""nodeUpdateWorkerSize: workers of the NoSchedule tainting pass."""
HEALTH_UPDATE_RETRY = Backoff(5, 0.020)
"""tryUpdateNodeHealth's tries: scheduler.NodeHealthUpdateRetry, retrySleepTime."""
UPDATE_TAINT_BACKOFF = Backoff(5, 0.100, jitter=1.0)
"""controller.UpdateTaintBackoff (pkg/controller/controller_utils.go)."""
UNREACHABLE, NOT_READY = "node.kubernetes.io/unreachable", "node.kubernetes.io/not-ready"
UNSCHEDULABLE = "node.kubernetes.io/unschedulable"
CONDITION_TAINTS = {
    ("Ready", "False"): NOT_READY,
    ("Ready", "Unknown"): UNREACHABLE,
    ("MemoryPressure", "True"): "node.kubernetes.io/memory-pressure",
    ("DiskPressure", "True"): "node.kubernetes.io/disk-pressure",
    ("NetworkUnavailable", "True"): "node.kubernetes.io/network-unavailable",
    ("PIDPressure", "True"): "node.kubernetes.io/pid-pressure",
}
"""nodeConditionToTaintKeyStatusMap: the NoSchedule taint each condition status stands for."""
NO_SCHEDULE_KEYS = {*CONDITION_TAINTS.values(), UNSCHEDULABLE}
UNKNOWN_CONDITIONS = ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure")
"""What a silent node's conditions turn Unknown (NetworkUnavailable is the control plane's)."""
ZONE_LABEL = "topology.kubernetes.io/zone"
FULL_DISRUPTION, PARTIAL_DISRUPTION, NORMAL = "FullDisruption", "PartialDisruption", "Normal"
"""ZoneState values."""

Taint = tuple[str, str]
"""(key, effect)."""


def _ready_condition(node) -> Mapping | None:
    """The Ready condition (the kubelet writes it first)."""
    conditions = node.get("status", {}).get("conditions")
    if conditions and conditions[0].get("type") == "Ready":
        return conditions[0]
    return condition(node, "Ready")


def _ready(node) -> str:
    cond = _ready_condition(node)
    return cond.get("status", "Unknown") if cond else "Unknown"


def _no_execute_for(status: str) -> tuple[Taint, Taint]:
    """The NoExecute taint for a not-ready Ready status (False: not-ready, Unknown: unreachable), and its opposite:
    the two are kept mutually exclusive."""
    not_ready, unreachable = (NOT_READY, "NoExecute"), (UNREACHABLE, "NoExecute")
    return (not_ready, unreachable) if status == "False" else (unreachable, not_ready)


def _has(node, taint: Taint) -> bool:
    """taintutils.TaintExists: a taint with this key and effect."""
    return any((t.get("key"), t.get("effect")) == taint for t in node.get("spec", {}).get("taints") or ())


def add_taints(node: dict, taints: Iterable[Taint], stamp: str) -> bool:
    """taintutils.AddOrUpdateTaint for each: a taint with the same key and effect is replaced (``timeAdded``
    ``stamp``, as SwapNodeControllerTaint sets it); True (always: the stamp is new)."""
    taints = list(taints)
    kept = [t for t in node["spec"].get("taints") or [] if (t.get("key"), t.get("effect")) not in taints]
    node["spec"]["taints"] = kept + [{"key": key, "effect": effect, "timeAdded": stamp} for key, effect in taints]
    return bool(taints)


def remove_taints(node: dict, taints: Iterable[Taint]) -> bool:
    """taintutils.RemoveTaint for each; True if any was there."""
    taints = set(taints)
    current = node["spec"].get("taints") or []
    kept = [t for t in current if (t.get("key"), t.get("effect")) not in taints]
    node["spec"]["taints"] = kept
    return len(kept) != len(current)


def mark_unknown(node: dict, stamp: str) -> bool:
    """tryUpdateNodeHealth's write: :data:`UNKNOWN_CONDITIONS` become Unknown (added as never updated if missing);
    True if Ready changed (only then is the node written)."""
    conditions = node.setdefault("status", {}).setdefault("conditions", [])
    before = dict(condition(node, "Ready") or {})
    for kind in UNKNOWN_CONDITIONS:
        cond = next((c for c in conditions if c.get("type") == kind), None)
        if cond is None:
            conditions.append(
                {
                    "type": kind,
                    "status": "Unknown",
                    "reason": "NodeStatusNeverUpdated",
                    "message": "Kubelet never posted node status.",
                    "lastHeartbeatTime": node["metadata"].get("creationTimestamp"),
                    "lastTransitionTime": stamp,
                }
            )
        elif cond.get("status") != "Unknown":
            cond.update(
                status="Unknown",
                reason="NodeStatusUnknown",
                message="Kubelet stopped posting node status.",
                lastTransitionTime=stamp,
            )
    return condition(node, "Ready") != before


def _count(zones: dict[str, list[int]], zone: str, nodes: int, not_ready: int) -> None:
    """Count nodes in their zone: [nodes, of which not ready], zones in the order first seen."""
    counts = zones.setdefault(zone, [0, 0])
    counts[0] += nodes
    counts[1] += not_ready


class ZoneTainter:
    """scheduler.RateLimitedTimedQueue of one zone: nodes waiting for their NoExecute taint (``[process at, name]``
    in order) and the zone's rate limiter (None: rate 0), at ``--node-eviction-rate`` when the zone is first seen
    (addPodEvictorForNewZone). A node stays known from when it is added until it is removed, so a tainted node is
    not queued again while it stays not ready (UniqueQueue)."""

    def __init__(self, rate: float) -> None:
        self.queue: list[list] = []
        self.known: set[str] = set()
        self.limiter: TokenBucket | None = TokenBucket(rate, 1) if rate > 0 else None

    def add(self, name: str, now: float) -> None:
        """Add: queue a node to be processed from ``now`` (unless it is known already)."""
        if name not in self.known:
            self.known.add(name)
            self.queue.append([now, name])

    def remove(self, name: str) -> None:
        """Remove: the node leaves the queue and is forgotten."""
        if name in self.known:
            self.known.discard(name)
            self.queue[:] = [entry for entry in self.queue if entry[1] != name]

    def swap_limiter(self, rate: float, now: float) -> None:
        """SwapLimiter: a new bucket (burst 1) when the rate changes, drained if the old one had no token."""
        old = self.limiter
        if (old.qps if old else 0.0) == rate:
            return
        self.limiter = TokenBucket(rate, 1) if rate > 0 else None
        if self.limiter is not None and (old is None or not old.try_accept(now)):
            self.limiter.try_accept(now)


class NodeLifecycleController(Controller):
    """monitorNodeHealth every ``monitor_period``; ``sync(node)`` is doNoScheduleTaintingPass, run for each node
    update; :meth:`do_no_execute_tainting_pass` every 100 ms."""

    name = "node-lifecycle-controller"
    client_name = "node-controller"
    event_source = "node-controller"
    resource = "nodes"
    workers = NODE_UPDATE_WORKERS

    def __init__(self, manager: Manager) -> None:
        super().__init__(manager)
        self.nodes = self.primary
        self.leases = self.watch("leases")
        config = self.config
        self.monitor_period, self.grace_period = config.node_monitor_period, config.node_monitor_grace_period
        self.startup_grace_period = config.node_startup_grace_period
        self.fleet = FleetIndex(self._lease)
        """The nodes in the informer's order with their health records (nodeHealthData), for passes that settle the
        quiet ones in bulk."""
        self.nodes.add_handler(
            self.fleet.node_added_or_deleted, self.fleet.node_updated, self.fleet.node_added_or_deleted
        )
        self.leases.add_handler(self.fleet.lease_set, self.fleet.lease_set, self.fleet.lease_deleted)
        self.walk_every_node = False
        """True: each pass walks every node one by one (the plain reference the indexed pass is held to)."""
        self.tainters: dict[str, ZoneTainter] = defaultdict(lambda: ZoneTainter(config.node_eviction_rate))
        self.zone_states: dict[str, str] = {}
        self.known: dict[str, str] = {}
        """knownNodeSet: node name -> uid, of the nodes monitorNodeHealth has seen."""

    def start(self) -> None:
        """The workers, monitorNodeHealth every ``--node-monitor-period``, the NoExecute tainting pass every 100 ms."""
        super().start()
        self.until(self.monitor_node_health, self.monitor_period, "node-lifecycle-monitor", (self.nodes, self.leases))
        self.until(self.do_no_execute_tainting_pass, NODE_EVICTION_PERIOD, "node-lifecycle-tainter")

    # -- monitorNodeHealth --------------------------------------------------------------------------------------
    def monitor_node_health(self):
        """Process body: one pass over the nodes (tryUpdateNodeHealth, processTaintBaseEviction), then the zones'
        states and eviction rates (handleDisruption).

        The nodes are taken in the informer's order as upstream walks them; those the pass would leave alone (Ready,
        untainted, not queued, heard from in time) are settled in bulk from :attr:`fleet`, the others walked one by
        one (:meth:`_check_node`), with the same decisions as a walk over every node."""
        fleet = self.fleet
        restructured = fleet.stale or fleet.cache is not self.nodes.cache or self.walk_every_node
        if restructured:  # nodes came or went since the last pass: classifyNodes has work, the order changed
            self._classify_nodes()
            fleet.rebuild(self.nodes.cache)
        zones: dict[str, list[int]] = {}
        snapshot = list(self.nodes.cache.items())
        if self.walk_every_node:
            for name, node in snapshot:
                yield from self._check_node(name, node, zones)
        else:
            yield from self._walk(snapshot, zones)
        if restructured or fleet.stale:  # (no node gone since the last clean-up: nothing to forget)
            fleet.forget(self.nodes.cache)
        self._handle_disruption(zones)

    def _walk(self, snapshot: list, zones: dict[str, list[int]]):
        """Process body: the pass over ``snapshot`` (the node cache's items, in the fleet's order): each run of settled
        nodes in bulk (:meth:`_settle`), each unsettled node by :meth:`_check_node`. When the clock moved or an
        informer changed while a node was walked, the nodes ahead are judged again as of then."""
        fleet = self.fleet
        changed, renewed = fleet.dirty, fleet.renewed
        fleet.dirty, fleet.renewed = set(), set()
        now, changes = self.engine.now, fleet.changes
        tentative = Tentative(fleet)
        self._judge(tentative, changed, renewed, snapshot, now, 0)
        stops, start, end = iter(self._unsettled(tentative, 0, now)), 0, len(snapshot)
        while True:
            stop = next(stops, end)
            self._settle(tentative, start, stop, zones)
            if stop == end:
                return
            name, node = snapshot[stop]
            yield from self._check_node(name, node, zones)
            fleet.dirty.add(name)  # its entries are set again at the next pass
            start = stop + 1
            if self.engine.now != now or fleet.changes != changes:
                now, changes = self.engine.now, fleet.changes
                tentative.reset(start)
                self._judge(tentative, changed | fleet.dirty, renewed | fleet.renewed, snapshot, now, start)
                stops = iter(self._unsettled(tentative, start, now))

    def _judge(
        self, tentative: Tentative, changed: set[str], renewed: set[int], snapshot: list, now: float, start: int
    ) -> None:
        """Judge, as a walk reaching them at ``now`` would, the nodes from position ``start`` on whose Node changed
        (``changed``, by name: everything is looked at again) or whose Lease alone did (``renewed``, positions)."""
        pos, names = self.fleet.pos, self.fleet.names
        full = {i for name in changed if (i := pos.get(name, -1)) >= start}
        full.update(tentative.renewals(renewed - full, start, now))
        rows = []
        for i in full:
            node = snapshot[i][1]
            ready = _ready_condition(node)
            ok = (ready.get("status", "Unknown") if ready else "Unknown") == "True" and not node["spec"].get("taints")
            zone = node["metadata"].get("labels", {}).get(ZONE_LABEL, "")
            rows.append((i, ok, zone, self.grace_period if ready else self.startup_grace_period))
            tentative.set(i, self._probe(i, names[i], ready, now))
        self.fleet.set_nodes(rows)

    def _unsettled(self, tentative: Tentative, start: int, now: float) -> list[int]:
        """Positions from ``start`` on of the nodes a pass at ``now`` walks: not Ready and untainted, silent, or
        queued in their zone's tainter."""
        fleet = self.fleet
        queued = [
            i
            for zone, tainter in self.tainters.items()
            for name in tainter.known
            if (i := fleet.pos.get(name, -1)) >= start and fleet.zone_names[fleet.zone[i]] == zone
        ]
        found = tentative.unsettled(start, now).tolist()
        return sorted({*found, *queued}) if queued else found

    def _settle(self, tentative: Tentative, start: int, stop: int, zones: dict[str, list[int]]) -> None:
        """The settled nodes at positions ``start`` to ``stop``: their health records as judged, each counted Ready
        in its zone (whose tainter a walk would have looked in)."""
        if stop > start:
            tentative.commit(start, stop)
            for zone, count in self.fleet.zone_counts(start, stop):
                _count(zones, zone, count, 0)
                self.tainters[zone]  # created on first sight, as a walk creates it

    def _check_node(self, name: str, node: Mapping, zones: dict[str, list[int]]):
        """Process body: tryUpdateNodeHealth and processTaintBaseEviction for one node, counted in its zone."""
        ready = _ready_condition(node)
        observed = current = ready.get("status", "Unknown") if ready else "Unknown"
        if self._silent(name, ready) and (ready is None or current != "Unknown"):
            node, observed = yield from self._try_update_node_health(name, node)
            if node is None:
                return  # the write failed NodeHealthUpdateRetry times: nothing is decided for this node
            current = _ready(node)
            if current != "True" and observed == "True":  # report the status change once
                self.record_node_status_change(node, "NodeNotReady")
        zone = node["metadata"].get("labels", {}).get(ZONE_LABEL, "")
        _count(zones, zone, 1, current != "True")
        if observed == "True":
            if node["spec"].get("taints") or name in self.tainters[zone].known:  # (the common case: neither)
                yield from self._mark_reachable(node, zone)
        else:
            yield from self._mark_for_tainting(node, zone, observed)

    def _classify_nodes(self) -> None:
        """classifyNodes' added and deleted nodes: "RegisteredNode" for each node first seen, "RemovingNode" for
        each known node gone (RecordNodeEvent)."""
        for name, node in self.nodes.cache.items():
            if name not in self.known:
                self.known[name] = node["metadata"].get("uid", "")
                self.record_node_event(
                    name, self.known[name], "RegisteredNode", f"Registered Node {name} in Controller"
                )
        for name in [n for n in self.known if n not in self.nodes.cache]:
            self.record_node_event(name, self.known.pop(name), "RemovingNode", f"Removing Node {name} from Controller")

    def record_node_event(self, name: str, uid: str, reason: str, event: str) -> None:
        """controllerutil.RecordNodeEvent: a Normal event about the node, "Node <name> event: <event>"."""
        ref = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "uid": uid}}
        self.recorder.event(ref, "Normal", reason, f"Node {name} event: {event}")

    def record_node_status_change(self, node: Mapping, status: str) -> None:
        """controllerutil.RecordNodeStatusChange: a Normal event "Node <name> status is now: <status>"."""
        meta = node["metadata"]
        ref = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": meta["name"], "uid": meta.get("uid", "")}}
        self.recorder.event(ref, "Normal", status, f"Node {meta['name']} status is now: {status}")

    def _silent(self, name: str, ready: Mapping | None) -> bool:
        """Record the node's health signals (its Lease, its Ready heartbeat); True if it has been silent for
        longer than its grace period."""
        now, i = self.engine.now, self.fleet.pos[name]
        record = self._probe(i, name, ready, now)
        self.fleet.keep(i, record)
        return now > record[0] + (self.grace_period if ready else self.startup_grace_period)

    def _probe(self, i: int, name: str, ready: Mapping | None, now: float) -> Record:
        """The health record of node ``name`` (at position ``i``) as of ``now``: the probe time moves to ``now`` when
        its Lease renewTime or its Ready heartbeat is not the one last recorded."""
        renew = renew_time(self._lease(name))
        beat = ready.get("lastHeartbeatTime") if ready else None
        record = self.fleet.record(i)
        if record is None or renew != record[1] or beat != record[2]:
            return (now, renew, beat)
        return record

    def _lease(self, name: str) -> Mapping | None:
        """Node ``name``'s Lease as the informer has it (None without one)."""
        return self.leases.cache.get("kube-node-lease/" + name)

    def _try_update_node_health(self, name: str, node: Mapping):
        """Process body: mark a silent node Unknown, from a fresh read after a failed write; returns the node as
        it now is (None if the tries ran out) and the Ready status of the copy last judged (the observed one)."""
        stamp = self.now_stamp()
        observed = _ready(node)

        def change(fresh: dict) -> bool:
            nonlocal observed
            observed = _ready(fresh)
            return self._silent(name, condition(fresh, "Ready")) and mark_unknown(fresh, stamp)

        try:
            node = yield from update_fresh(
                self.client,
                "nodes",
                name,
                change,
                HEALTH_UPDATE_RETRY,
                subresource="status",
                current=node,
                retriable=lambda _: True,
            )
        except APIError:
            return None, observed
        return node, observed

    def _mark_reachable(self, node: Mapping, zone: str):
        """Process body: markNodeAsReachable: a Ready node leaves its zone's queue and loses its NoExecute taints."""
        name = node["metadata"]["name"]
        self.tainters[zone].remove(name)
        stale = [t for t in ((UNREACHABLE, "NoExecute"), (NOT_READY, "NoExecute")) if _has(node, t)]
        if stale:
            yield from self._swap_or_retry_later(name, [], stale)

    def _mark_for_tainting(self, node: Mapping, zone: str, observed: str):
        """Process body: a not-ready node joins its zone's queue (markNodeForTainting), or has its not-ready and
        unreachable NoExecute taints swapped at once."""
        name = node["metadata"]["name"]
        want, opposite = _no_execute_for(observed)
        if _has(node, opposite):
            yield from self._swap_or_retry_later(name, [want], [opposite])
        else:
            self.tainters[zone].add(name, self.engine.now)

    def _handle_disruption(self, zones: dict[str, list[int]]) -> None:
        """ComputeZoneState for each zone ([nodes, not ready] of each), and the eviction rate its queue gets
        (setLimiterInZone)."""
        config = self.config
        for zone, (nodes, not_ready) in zones.items():
            if not_ready == nodes:
                self.zone_states[zone] = FULL_DISRUPTION
            elif not_ready > 2 and not_ready / nodes >= config.unhealthy_zone_threshold:
                self.zone_states[zone] = PARTIAL_DISRUPTION
            else:
                self.zone_states[zone] = NORMAL
        all_down = all(state == FULL_DISRUPTION for state in self.zone_states.values())
        for zone, (nodes, _) in zones.items():
            rate = config.node_eviction_rate
            if all_down:
                rate = 0.0  # every zone is down: more likely the control plane's network; evict nothing
            elif self.zone_states[zone] == PARTIAL_DISRUPTION:
                large = nodes > config.large_cluster_size_threshold
                rate = config.secondary_node_eviction_rate if large else 0.0
            self.tainters[zone].swap_limiter(rate, self.engine.now)

    # -- taints -------------------------------------------------------------------------------------------------
    def sync(self, name):
        """doNoScheduleTaintingPass: the node's NoSchedule condition taints follow its conditions."""
        node = self.nodes.cache.get(name)
        if node is None:
            return
        want = {
            CONDITION_TAINTS[key]
            for key in ((c.get("type"), c.get("status")) for c in node.get("status", {}).get("conditions") or ())
            if key in CONDITION_TAINTS
        }
        if node.get("spec", {}).get("unschedulable"):
            want.add(UNSCHEDULABLE)
        have = {
            t["key"]
            for t in node.get("spec", {}).get("taints") or ()
            if t.get("effect") == "NoSchedule" and t.get("key") in NO_SCHEDULE_KEYS
        }
        if want != have:
            yield from self._swap_taints(
                name, [(k, "NoSchedule") for k in sorted(want - have)], [(k, "NoSchedule") for k in sorted(have - want)]
            )

    def do_no_execute_tainting_pass(self):
        """Process body: each zone's queue hands out the nodes that are due as its rate limiter allows (a token
        is taken before the head is looked at, as RateLimitedTimedQueue.Try); a failed taint goes to the back."""
        for tainter in list(self.tainters.values()):
            queue = tainter.queue
            while queue and tainter.limiter is not None and tainter.limiter.try_accept(self.engine.now):
                if self.engine.now < queue[0][0]:
                    break
                entry = queue.pop(0)
                if not (yield from self._taint_no_execute(entry[1])):
                    entry[0] = self.engine.now + 1e-9  # ProcessAt = now + wait (0) + 1 ns
                    queue.append(entry)

    def _taint_no_execute(self, name: str):
        """Process body: the NoExecute taint for the node's Ready status (its opposite removed); True when done."""
        node = self.nodes.cache.get(name)
        status = _ready(node) if node is not None else "True"
        if status == "True":
            return True  # gone, or ready again
        taint, opposite = _no_execute_for(status)
        return (yield from self._swap_or_retry_later(name, [taint], [opposite] if _has(node, opposite) else []))

    def _swap_or_retry_later(self, name: str, add: list[Taint], remove: list[Taint]):
        """Process body: :meth:`_swap_taints`; False if it failed (the next pass or tick tries again)."""
        try:
            yield from self._swap_taints(name, add, remove)
        except APIError:
            return False
        return True

    def _swap_taints(self, name: str, add: list[Taint], remove: list[Taint]):
        """Process body: SwapNodeControllerTaint: AddOrUpdateTaintOnNode, then RemoveTaintOffNode, each a fresh
        read-modify-write retried on 409 Conflict; the last error propagates."""
        if add:
            stamp = self.now_stamp()
            yield from update_fresh(
                self.client, "nodes", name, lambda node: add_taints(node, add, stamp), UPDATE_TAINT_BACKOFF
            )
        if remove:
            yield from update_fresh(
                self.client, "nodes", name, lambda node: remove_taints(node, remove), UPDATE_TAINT_BACKOFF
            )
