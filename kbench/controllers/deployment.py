"""Deployment controller (pkg/controller/deployment, v1.35).

One ReplicaSet per pod template (``pod-template-hash``), the RollingUpdate strategy with ``maxSurge`` and
``maxUnavailable`` (25% each by default: surge rounded up, unavailable down, both 0 means 1 unavailable): the new
ReplicaSet grows while total replicas stay within replicas + maxSurge, old ones shrink while available pods stay
at least replicas - maxUnavailable (unhealthy old pods first); Recreate scales old ReplicaSets to zero first.
Status: updated / ready / available replicas and the Available and Progressing conditions. Workers:
``--concurrent-deployment-syncs``.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping

import orjson

from kbench.apiserver.objects import APIError
from kbench.controllers.base import Controller, Manager, condition, controlled, controller_key, owner_reference

POD_TEMPLATE_HASH = "pod-template-hash"


def template_hash(template) -> str:
    """ComputeHash's role: a stable short hash of the pod template (FNV-32a in upstream; here SHA-256)."""
    digest = hashlib.sha256(orjson.dumps(template, option=orjson.OPT_SORT_KEYS)).hexdigest()
    return digest[:10]


def scaled(value, total: int, round_up: bool) -> int:
    """intstr.GetScaledValueFromIntOrPercent: an int, or a percentage of ``total`` rounded up or down."""
    if isinstance(value, str) and value.endswith("%"):
        exact = total * int(value[:-1]) / 100
        return math.ceil(exact) if round_up else math.floor(exact)
    return int(value)


def names(sets: list[Mapping], field) -> dict[str, int]:
    """ReplicaSet name -> ``field(rs)``."""
    return {rs["metadata"]["name"]: field(rs) for rs in sets}


class DeploymentController(Controller):
    """DeploymentController: syncDeployment for each Deployment key."""

    name = "deployment-controller"
    resource, workers_option = "deployments", "concurrent_deployment_syncs"

    def __init__(self, manager: Manager) -> None:
        super().__init__(manager)
        self.sets = self.watch("replicasets", self._owner, lambda old, new: self._owner(new), self._owner)

    def _owner(self, rs: Mapping) -> None:
        key = controller_key(rs, "Deployment")
        if key is not None:
            self.queue.add(key)

    def sync(self, key):
        """syncDeployment: the new ReplicaSet (created if missing), the strategy's scaling, then the status."""
        d = self.primary.cache.get(key)
        if d is None or d["metadata"].get("deletionTimestamp"):
            return
        spec = d["spec"]
        sets = controlled(self.sets, d)
        h = template_hash(spec["template"])
        new = next((rs for rs in sets if rs["metadata"].get("labels", {}).get(POD_TEMPLATE_HASH) == h), None)
        old = [rs for rs in sets if rs is not new]
        recreate = spec.get("strategy", {}).get("type") == "Recreate"
        if new is None:
            new = yield from self._create_rs(d, h, 0 if recreate or old else spec.get("replicas", 1))
            if new is None:
                return
        if recreate:
            yield from self._recreate(d, old, new, names(sets + [new], lambda rs: rs["spec"].get("replicas", 0)))
        else:
            old = yield from self._rolling(d, sets, old, new)
        yield from self._status(d, [*old, new], new)

    def _recreate(self, d: Mapping, old: list[Mapping], new: Mapping, rs_replicas: dict[str, int]):
        """Process body: rolloutRecreate: old ReplicaSets to zero, then (once their pods are gone) the new one up."""
        if any(rs_replicas[rs["metadata"]["name"]] for rs in old):
            for rs in old:
                yield from self._scale(rs, 0)
        elif all(rs.get("status", {}).get("replicas", 0) == 0 for rs in old):
            yield from self._scale(new, d["spec"].get("replicas", 1))

    def _rolling(self, d: Mapping, sets: list[Mapping], old: list[Mapping], new: Mapping):
        """Process body: rolloutRolling: reconcileNewReplicaSet, then reconcileOldReplicaSets; returns the old
        ReplicaSets oldest first."""
        replicas = d["spec"].get("replicas", 1)
        rolling = d["spec"].get("strategy", {}).get("rollingUpdate", {})
        surge = scaled(rolling.get("maxSurge", "25%"), replicas, True)
        unavailable = scaled(rolling.get("maxUnavailable", "25%"), replicas, False)
        if surge == 0 and unavailable == 0:
            unavailable = 1
        rs_replicas = names(sets + [new], lambda rs: rs["spec"].get("replicas", 0))
        available = names(sets + [new], lambda rs: rs.get("status", {}).get("availableReplicas", 0))
        yield from self._reconcile_new(new, replicas, surge, rs_replicas)
        old = sorted(old, key=lambda r: r["metadata"].get("creationTimestamp", ""))
        yield from self._reconcile_old(old, new, replicas - unavailable, rs_replicas, available)
        return old

    def _reconcile_new(self, new: Mapping, replicas: int, surge: int, rs_replicas: dict[str, int]):
        """Process body: reconcileNewReplicaSet: grow within replicas + maxSurge (or shrink to replicas)."""
        name = new["metadata"]["name"]
        target = rs_replicas[name]
        if target < replicas:
            target = min(replicas, target + max(0, replicas + surge - sum(rs_replicas.values())))
        elif target > replicas:
            target = replicas
        if target != rs_replicas[name]:
            yield from self._scale(new, target)
            rs_replicas[name] = target

    def _reconcile_old(
        self, old: list[Mapping], new: Mapping, min_available: int, rs_replicas: dict[str, int], available: dict
    ):
        """Process body: reconcileOldReplicaSets: first unhealthy old pods (cleanupUnhealthyReplicas), then
        available ones down to the minimum (scaleDownOldReplicaSetsForRollingUpdate)."""
        new_name = new["metadata"]["name"]
        new_unavailable = rs_replicas[new_name] - available[new_name]
        budget = sum(rs_replicas.values()) - min_available - new_unavailable
        for rs in old:
            name = rs["metadata"]["name"]
            cut = min(budget, rs_replicas[name] - available[name])
            if cut > 0:
                rs_replicas[name] -= cut
                budget -= cut
                yield from self._scale(rs, rs_replicas[name])
        spare = sum(available[n] for n in rs_replicas) - min_available
        for rs in old:
            name = rs["metadata"]["name"]
            cut = min(spare, rs_replicas[name])
            if cut > 0:
                rs_replicas[name] -= cut
                spare -= cut
                yield from self._scale(rs, rs_replicas[name])

    def _create_rs(self, d: Mapping, h: str, replicas: int):
        """Process body: the new ReplicaSet of the Deployment's template (None if the name is taken: the informer
        has not shown it yet and the next sync finds it)."""
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
                return None
            raise

    def _scale(self, rs: Mapping, replicas: int):
        """Process body: set a ReplicaSet's ``spec.replicas`` (an update from the informer's copy)."""
        if rs["spec"].get("replicas") == replicas:
            return
        body = self.copy(rs)
        body["spec"]["replicas"] = replicas
        yield self.client.call("update", "replicasets", body=body)

    def _status(self, d: Mapping, sets: list[Mapping], new: Mapping):
        """Process body: syncRolloutStatus: replica counts and the Available and Progressing conditions."""
        status, conditions = self._desired_status(d, sets, new)
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

    @staticmethod
    def _desired_status(d: Mapping, sets: list[Mapping], new: Mapping) -> tuple[dict, dict]:
        """calculateStatus: the status counts, and condition type -> (status, reason)."""
        replicas = d["spec"].get("replicas", 1)
        totals = {
            k: sum(rs.get("status", {}).get(k, 0) for rs in sets)
            for k in ("replicas", "readyReplicas", "availableReplicas")
        }
        updated = new.get("status", {}).get("replicas", 0)
        unavailable = d["spec"].get("strategy", {}).get("rollingUpdate", {}).get("maxUnavailable", "25%")
        minimum = replicas - scaled(unavailable, replicas, False)
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
        return status, conditions
