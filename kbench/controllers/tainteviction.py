"""Taint eviction controller (pkg/controller/tainteviction/taint_eviction.go, v1.35).

Deletes a Pod on a NoExecute-tainted node when its tolerations run out: at once if a taint is not tolerated; else
the smallest ``tolerationSeconds`` of the matching tolerations after the controller first saw the pod there
tainted (the DefaultTolerationSeconds admission plugin gives every pod 300 s for not-ready and unreachable); never
when none of them has ``tolerationSeconds``.

Events (recorder "taint-eviction-controller"), about the Pod (a reference without uid): ``TaintManagerEviction``
"Marking for deletion Pod <ns>/<name>" when the deletion fires (deletePodHandler's emitEventFunc, before the tries),
"Cancelling deletion of Pod <ns>/<name>" when a scheduled deletion is cancelled (cancelWorkWithEvent).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping

from kbench.apiserver.objects import APIError, object_key
from kbench.controllers.base import Controller, Manager

EVICTION_RETRIES, EVICTION_RETRY_SLEEP = 5, 0.010
"""deletePodHandler: retries, and the sleep between them."""


class TaintEvictionController(Controller):
    """Deletes pods from NoExecute-tainted nodes once their tolerations run out."""

    name = "taint-eviction-controller"
    client_name = "node-controller"
    event_source = "taint-eviction-controller"

    def __init__(self, manager: Manager) -> None:
        super().__init__(manager)
        self.nodes = self.watch("nodes", self._node, self._node_updated)
        self.pods = self.watch("pods", self._pod, self._pod_updated, self._pod_gone)
        self.by_node: dict[str, dict[str, None]] = defaultdict(dict)
        """node -> keys of the pods on it, in the order they were seen (an ordered set: runs repeat exactly)."""
        self.evictions: dict[str, float] = {}
        """pod -> when it is to be deleted (taintEvictionQueue: the first schedule stands while tainted)."""

    def _node(self, node: Mapping) -> None:
        for key in self.by_node.get(node["metadata"]["name"], {}):
            self.queue.add(key)

    def _node_updated(self, old: Mapping, new: Mapping) -> None:
        """NodeUpdated: an update that leaves the node's NoExecute taints as they were is ignored (every status
        update of a node queued each pod on it again)."""
        if no_execute_taints(old) != no_execute_taints(new):
            self._node(new)

    def _pod_updated(self, old: Mapping, new: Mapping) -> None:
        """PodUpdated: an update that changes neither the pod's tolerations nor its node is ignored (nil and empty
        tolerations alike, as Semantic.DeepEqual takes them)."""
        before, after = old.get("spec", {}), new.get("spec", {})
        tolerations = (before.get("tolerations") or []) != (after.get("tolerations") or [])
        if tolerations or before.get("nodeName") != after.get("nodeName"):
            self._pod(new)

    def _pod(self, pod: Mapping) -> None:
        node = pod.get("spec", {}).get("nodeName")
        key = object_key(pod)
        if node:
            self.by_node[node][key] = None
            self.queue.add(key)

    def _pod_gone(self, pod: Mapping) -> None:
        node = pod.get("spec", {}).get("nodeName")
        if node:
            self.by_node[node].pop(object_key(pod), None)
        self.evictions.pop(object_key(pod), None)

    def sync(self, key):
        """processPodOnNode: schedule (or cancel) the pod's eviction; delete it when due."""
        pod = self.pods.cache.get(key)
        node = self.nodes.cache.get(pod["spec"].get("nodeName", "")) if pod is not None else None
        taints = no_execute_taints(node) if pod is not None and not pod["metadata"].get("deletionTimestamp") else []
        if not taints:
            self._cancel(key)
            return
        now = self.engine.now
        tolerations = pod["spec"].get("tolerations") or []
        seconds = min_toleration_seconds(taints, tolerations)
        if seconds is None:
            self._cancel(key)  # tolerated forever
            return
        if not all_tolerated(taints, tolerations):
            self._cancel(key)  # not tolerated: any scheduled deletion is replaced by one now
            due = now
        else:  # a deletion already scheduled is kept, even for a 0 s toleration (processPodOnNode: keepExisting)
            due = self.evictions.setdefault(key, now + seconds)
        if due > now:
            self.queue.add_after(key, due - now)
            return
        self.evictions.pop(key, None)
        self.engine.process(self._evict(pod["metadata"]["namespace"], pod["metadata"]["name"]), name=f"evict/{key}")
        yield from ()  # (a sync is a process body; this one waits for nothing)

    def _cancel(self, key: str) -> None:
        """cancelWorkWithEvent: drop the pod's scheduled deletion, with an event if there was one."""
        if self.evictions.pop(key, None) is not None:
            self._event(key, "Cancelling deletion of Pod")

    def _event(self, key: str, what: str) -> None:
        """emitPodDeletionEvent / emitCancelPodDeletionEvent: TaintManagerEviction about the pod ``key``."""
        namespace, name = key.split("/", 1)
        ref = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace}}
        self.recorder.event(ref, "Normal", "TaintManagerEviction", f"{what} {key}")

    def _evict(self, namespace: str, name: str):
        """Process body: deletePodHandler, run by the eviction's own timed worker (evictions due together go
        together): the event, then up to 5 tries, 10 ms apart."""
        self._event(f"{namespace}/{name}", "Marking for deletion Pod")
        for attempt in range(EVICTION_RETRIES):
            try:
                yield from self.delete("pods", namespace, name)
                return
            except APIError:
                if attempt + 1 == EVICTION_RETRIES:
                    return  # upstream logs it; the pod's next update schedules it again
                yield EVICTION_RETRY_SLEEP


def min_toleration_seconds(taints: list[Mapping], tolerations: list[Mapping]) -> float | None:
    """GetMatchingTolerations + getMinTolerationTime: 0 if a taint is not tolerated, None if the matching
    tolerations (the first for each taint) tolerate forever, else the smallest ``tolerationSeconds``."""
    used = []
    for taint in taints:
        tol = next((t for t in tolerations if tolerates(t, taint)), None)
        if tol is None:
            return 0.0
        used.append(tol)
    limits = [t["tolerationSeconds"] for t in used if t.get("tolerationSeconds") is not None]
    return float(max(0, min(limits))) if limits else None


def all_tolerated(taints: list[Mapping], tolerations: list[Mapping]) -> bool:
    """GetMatchingTolerations' first result: every taint is tolerated by one of ``tolerations``."""
    return all(any(tolerates(t, taint) for t in tolerations) for taint in taints)


def tolerates(toleration: Mapping, taint: Mapping) -> bool:
    """v1.Toleration.ToleratesTaint for NoExecute taints."""
    if toleration.get("effect") and toleration["effect"] != taint.get("effect"):
        return False
    if toleration.get("operator") == "Exists":
        return not toleration.get("key") or toleration["key"] == taint["key"]
    return toleration.get("key") == taint["key"] and toleration.get("value", "") == taint.get("value", "")


def no_execute_taints(node: Mapping | None) -> list:
    """getNoExecuteTaints: the node's taints of effect NoExecute (none without a node)."""
    if node is None:
        return []
    return [t for t in node.get("spec", {}).get("taints") or [] if t.get("effect") == "NoExecute"]
