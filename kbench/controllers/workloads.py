"""ReplicaSet and Deployment controllers (pkg/controller/replicaset, pkg/controller/deployment, v1.35).

ReplicaSet: the active pods it controls (ownerReference with controller: true, not terminating) against
``spec.replicas``; it creates missing pods in slow-start batches (1, 2, 4, ... up to 500 per sync,
``BurstReplicas``) and deletes surplus ones in ``ActivePods`` order (unscheduled before scheduled, pending
before running, not ready before ready, newest first), with expectations so a sync does not act again
before the informer has seen its own creations and deletions (5-minute expectation timeout); it keeps
``status.replicas`` / ``readyReplicas`` / ``availableReplicas`` (ready for ``minReadySeconds``).

Deployment: one ReplicaSet per pod template (``pod-template-hash``), the RollingUpdate strategy with
``maxSurge`` and ``maxUnavailable`` (25% each by default: surge rounded up, unavailable down, both 0 means 1
unavailable): the new ReplicaSet grows while total replicas stay within replicas + maxSurge, old ones
shrink while available pods stay at least replicas - maxUnavailable (unhealthy old pods first); Recreate
scales old ReplicaSets to zero first. Status: updated / ready / available replicas and the Available and
Progressing conditions.
"""

from __future__ import annotations

import hashlib
import math

import orjson

from kbench.apiserver.objects import APIError, object_key, seconds
from kbench.controllers.base import (
    Controller,
    Expectations,
    active_pod,
    condition,
    controller_key,
    owned_by,
    owner_reference,
    pod_ready,
)

BURST_REPLICAS = 500
POD_TEMPLATE_HASH = "pod-template-hash"


def _available(pod, min_ready: int, now: float) -> bool:
    if not pod_ready(pod):
        return False
    if min_ready <= 0:
        return True
    since = condition(pod, "Ready").get("lastTransitionTime")
    return since is not None and seconds(since) + min_ready <= now


def _rank(pod) -> tuple:
    """controller.ActivePods order: the first sort is the first to delete."""
    phase_rank = {"Pending": 0, "Unknown": 1, "Running": 2}.get(pod.get("status", {}).get("phase"), 0)
    return (
        bool(pod["spec"].get("nodeName")),
        phase_rank,
        pod_ready(pod),
        -seconds(pod["metadata"].get("creationTimestamp", "2026-01-01T00:00:00Z")),
    )


class ReplicaSetController(Controller):
    name = "replicaset-controller"
    workers = 5  # --concurrent-replicaset-syncs

    def __init__(self, manager) -> None:
        super().__init__(manager)
        self.sets = manager.informer("replicasets")
        self.pods = manager.informer("pods")
        self.expect = Expectations(self.engine)
        self.sets.add_handler(on_add=self.enqueue, on_update=self.enqueue, on_delete=self.enqueue)
        # a pod that starts terminating counts as a deletion seen (updatePod -> deletePod upstream)
        self.pods.add_handler(
            on_add=lambda p: self._pod(p, 0),
            on_update=lambda o, n: self._pod(
                n, 1 if n["metadata"].get("deletionTimestamp") and not o["metadata"].get("deletionTimestamp") else -1
            ),
            on_delete=lambda p: self._pod(p, 1 if not p["metadata"].get("deletionTimestamp") else -1),
        )

    def _pod(self, pod, observed: int) -> None:
        key = controller_key(pod, "ReplicaSet")
        if key is not None:
            if observed >= 0:
                self.expect.observed(key, observed)
            self.queue.add(key)

    def sync(self, key):
        rs = self.sets.cache.get(key)
        if rs is None:
            self.expect.forget(key)
            return
        ns = rs["metadata"]["namespace"]
        pods = [p for p in self.pods.cache.values() if p["metadata"]["namespace"] == ns and owned_by(p, rs)]
        active = [p for p in pods if active_pod(p)]
        if self.expect.satisfied(key) and not rs["metadata"].get("deletionTimestamp"):
            diff = len(active) - rs["spec"].get("replicas", 1)
            if diff < 0:
                yield from self._create(rs, key, min(-diff, BURST_REPLICAS))
            elif diff > 0:
                victims = sorted(active, key=_rank)[: min(diff, BURST_REPLICAS)]
                self.expect.expect(key, 0, len(victims))
                for pod in victims:
                    try:
                        if not (yield from self.delete("pods", ns, pod["metadata"]["name"])):
                            self.expect.lower(key, 1)  # already gone: its deletion will not be observed
                    except APIError:
                        self.expect.lower(key, 1)
                        raise
        yield from self._status(rs, active)

    def _create(self, rs, key: str, count: int):
        template = rs["spec"]["template"]
        meta = template.get("metadata", {})
        self.expect.expect(key, count, 0)
        batch, done = 1, 0
        while done < count:  # slowStartBatch: 1, 2, 4, ... pods, stopping at the first failed batch
            size = min(batch, count - done)
            events = [
                self.client.call(
                    "create",
                    "pods",
                    namespace=rs["metadata"]["namespace"],
                    body={
                        "apiVersion": "v1",
                        "kind": "Pod",
                        "metadata": {
                            "generateName": f"{rs['metadata']['name']}-",
                            "labels": dict(meta.get("labels") or {}),
                            "annotations": dict(meta.get("annotations") or {}),
                            "ownerReferences": [owner_reference(rs)],
                        },
                        "spec": self.copy(template.get("spec", {})),
                    },
                )
                for _ in range(size)
            ]
            failed = None
            for ev in events:
                try:
                    yield ev
                except APIError as err:
                    self.expect.lower(key, 0)
                    failed = err
            if failed is not None:
                self.expect.lower(key, 0, count - done - size)
                raise failed
            done += size
            batch *= 2

    def _status(self, rs, active):
        now, min_ready = self.engine.now, rs["spec"].get("minReadySeconds", 0)
        labels = rs["spec"].get("template", {}).get("metadata", {}).get("labels") or {}
        status = {
            "replicas": len(active),
            "readyReplicas": sum(pod_ready(p) for p in active),
            "availableReplicas": sum(_available(p, min_ready, now) for p in active),
            "fullyLabeledReplicas": sum(
                all(p["metadata"].get("labels", {}).get(k) == v for k, v in labels.items()) for p in active
            ),
            "observedGeneration": rs["metadata"].get("generation", 1),
        }
        if any(rs.get("status", {}).get(k) != v for k, v in status.items()):
            body = self.copy(rs)
            body["status"] = {**body.get("status", {}), **status}
            yield self.client.call("update", "replicasets", body=body, subresource="status")
        if min_ready and status["readyReplicas"] > status["availableReplicas"]:
            self.queue.add_after(object_key(rs), min_ready)


def template_hash(template) -> str:
    """ComputeHash's role: a stable short hash of the pod template (FNV-32a in upstream; here SHA-256)."""
    digest = hashlib.sha256(orjson.dumps(template, option=orjson.OPT_SORT_KEYS)).hexdigest()
    return digest[:10]


def _scaled(value, total: int, round_up: bool) -> int:
    if isinstance(value, str) and value.endswith("%"):
        exact = total * int(value[:-1]) / 100
        return math.ceil(exact) if round_up else math.floor(exact)
    return int(value)


class DeploymentController(Controller):
    name = "deployment-controller"
    workers = 5  # --concurrent-deployment-syncs

    def __init__(self, manager) -> None:
        super().__init__(manager)
        self.deployments = manager.informer("deployments")
        self.sets = manager.informer("replicasets")
        self.deployments.add_handler(on_add=self.enqueue, on_update=self.enqueue)
        self.sets.add_handler(on_add=self._owner, on_update=lambda o, n: self._owner(n), on_delete=self._owner)

    def _owner(self, rs) -> None:
        key = controller_key(rs, "Deployment")
        if key is not None:
            self.queue.add(key)

    def sync(self, key):
        d = self.deployments.cache.get(key)
        if d is None or d["metadata"].get("deletionTimestamp"):
            return
        ns, spec = d["metadata"]["namespace"], d["spec"]
        replicas = spec.get("replicas", 1)
        sets = [rs for rs in self.sets.cache.values() if rs["metadata"]["namespace"] == ns and owned_by(rs, d)]
        template = spec["template"]
        h = template_hash(template)
        new = next((rs for rs in sets if rs["metadata"].get("labels", {}).get(POD_TEMPLATE_HASH) == h), None)
        old = [rs for rs in sets if rs is not new]
        strategy = spec.get("strategy", {})
        if new is None:
            start = 0 if strategy.get("type") == "Recreate" or old else replicas
            new = yield from self._create_rs(d, h, start)
            if new is None:
                return
        rs_replicas = {rs["metadata"]["name"]: rs["spec"].get("replicas", 0) for rs in sets + [new]}
        available = {rs["metadata"]["name"]: rs.get("status", {}).get("availableReplicas", 0) for rs in sets + [new]}
        new_name = new["metadata"]["name"]
        if strategy.get("type") == "Recreate":
            if any(rs_replicas[rs["metadata"]["name"]] for rs in old):
                for rs in old:
                    yield from self._scale(rs, 0)
            elif all(rs.get("status", {}).get("replicas", 0) == 0 for rs in old):
                yield from self._scale(new, replicas)
        else:
            rolling = strategy.get("rollingUpdate", {})
            surge = _scaled(rolling.get("maxSurge", "25%"), replicas, True)
            unavailable = _scaled(rolling.get("maxUnavailable", "25%"), replicas, False)
            if surge == 0 and unavailable == 0:
                unavailable = 1
            total = sum(rs_replicas.values())
            # reconcileNewReplicaSet
            target = rs_replicas[new_name]
            if target < replicas:
                target = min(replicas, target + max(0, replicas + surge - total))
            elif target > replicas:
                target = replicas
            if target != rs_replicas[new_name]:
                yield from self._scale(new, target)
                total += target - rs_replicas[new_name]
                rs_replicas[new_name] = target
            # reconcileOldReplicaSets: first unhealthy old pods, then available ones down to the minimum
            min_available = replicas - unavailable
            new_unavailable = rs_replicas[new_name] - available[new_name]
            budget = total - min_available - new_unavailable
            old = sorted(old, key=lambda r: r["metadata"].get("creationTimestamp", ""))
            for rs in old:  # cleanupUnhealthyReplicas
                name = rs["metadata"]["name"]
                cut = min(budget, rs_replicas[name] - available[name])
                if cut > 0:
                    rs_replicas[name] -= cut
                    budget -= cut
                    yield from self._scale(rs, rs_replicas[name])
            spare = sum(available[n] for n in rs_replicas) - min_available
            for rs in old:  # scaleDownOldReplicaSetsForRollingUpdate
                name = rs["metadata"]["name"]
                cut = min(spare, rs_replicas[name])
                if cut > 0:
                    rs_replicas[name] -= cut
                    spare -= cut
                    yield from self._scale(rs, rs_replicas[name])
        yield from self._status(d, [*old, new], new)

    def _create_rs(self, d, h: str, replicas: int):
        ns = d["metadata"]["namespace"]
        template = self.copy(d["spec"]["template"])
        template.setdefault("metadata", {}).setdefault("labels", {})[POD_TEMPLATE_HASH] = h
        selector = self.copy(d["spec"].get("selector", {}))
        selector.setdefault("matchLabels", {})[POD_TEMPLATE_HASH] = h
        body = {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": f"{d['metadata']['name']}-{h}",
                "namespace": ns,
                "labels": {**template["metadata"]["labels"]},
                "ownerReferences": [owner_reference(d)],
            },
            "spec": {
                "replicas": replicas,
                "selector": selector,
                "template": template,
                "minReadySeconds": d["spec"].get("minReadySeconds", 0),
            },
        }
        try:
            return (yield self.client.call("create", "replicasets", namespace=ns, body=body))
        except APIError as err:
            if err.code == 409:
                return None  # the informer has not shown it yet; the next sync finds it
            raise

    def _scale(self, rs, replicas: int):
        if rs["spec"].get("replicas") == replicas:
            return
        body = self.copy(rs)
        body["spec"]["replicas"] = replicas
        yield self.client.call("update", "replicasets", body=body)

    def _status(self, d, sets, new):
        replicas = d["spec"].get("replicas", 1)
        totals = {
            k: sum(rs.get("status", {}).get(k, 0) for rs in sets)
            for k in ("replicas", "readyReplicas", "availableReplicas")
        }
        updated = new.get("status", {}).get("replicas", 0)
        unavailable = d["spec"].get("strategy", {}).get("rollingUpdate", {}).get("maxUnavailable", "25%")
        minimum = replicas - _scaled(unavailable, replicas, False)
        available = "True" if totals["availableReplicas"] >= minimum else "False"
        complete = updated == replicas and totals["replicas"] == replicas and totals["availableReplicas"] == replicas
        status = {
            **totals,
            "updatedReplicas": updated,
            "unavailableReplicas": max(0, replicas - totals["availableReplicas"]),
            "observedGeneration": d["metadata"].get("generation", 1),
        }
        conditions = {
            "Available": (
                available,
                "MinimumReplicasAvailable" if available == "True" else "MinimumReplicasUnavailable",
            ),
            "Progressing": ("True", "NewReplicaSetAvailable" if complete else "ReplicaSetUpdated"),
        }
        old_status = d.get("status", {})
        old_conditions = {c["type"]: (c["status"], c.get("reason")) for c in old_status.get("conditions") or ()}
        if all(old_status.get(k) == v for k, v in status.items()) and old_conditions == conditions:
            return
        stamp = self.now_stamp()
        body = self.copy(d)
        body["status"] = {
            **status,
            "conditions": [
                {
                    "type": t,
                    "status": s,
                    "reason": r,
                    "lastUpdateTime": stamp,
                    "lastTransitionTime": stamp
                    if old_conditions.get(t, (None,))[0] != s
                    else (condition(d, t) or {}).get("lastTransitionTime", stamp),
                }
                for t, (s, r) in conditions.items()
            ],
        }
        yield self.client.call("update", "deployments", body=body, subresource="status")
