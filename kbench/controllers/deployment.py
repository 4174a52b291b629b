"""Deployment controller (pkg/controller/deployment, v1.35).

One ReplicaSet per pod template (``pod-template-hash``), the RollingUpdate strategy with ``maxSurge`` and
``maxUnavailable`` (25% each by default: surge rounded up, unavailable down, both 0 means 1 unavailable): the new
ReplicaSet grows while total replicas stay within replicas + maxSurge, old ones shrink while available pods stay
at least replicas - maxUnavailable (unhealthy old pods first); as rolloutRolling, a sync that scaled the
new ReplicaSet (up or down) or old ones down writes the status and ends there. Recreate scales old ReplicaSets to
zero first.

Status (progress.go syncRolloutStatus, deployment_util.go): replica counts; ``Available`` (True
``MinimumReplicasAvailable`` when available >= replicas - MaxUnavailable, else False
``MinimumReplicasUnavailable``); and, with a progress deadline (``progressDeadlineSeconds``, default 600,
SetDefaults_Deployment), ``Progressing``: True ``NewReplicaSetCreated`` when the controller creates the new
ReplicaSet (sync.go getNewReplicaSet, written at once), ``FoundNewReplicaSet`` when it finds one and there is no
Progressing condition, ``ReplicaSetUpdated`` whenever the rollout progresses (updated, ready or available replicas
grew, or old replicas shrank: a new ``lastUpdateTime``), ``NewReplicaSetAvailable`` once complete, and False
``ProgressDeadlineExceeded`` once ``lastUpdateTime`` + the deadline has passed without progress (a sync that
changes nothing requeues the Deployment for that moment, requeueStuckDeployment). Conditions follow
SetDeploymentCondition (a changed condition moves last; lastTransitionTime kept while its status holds).
Events (component ``deployment-controller``): ``ScalingReplicaSet`` "Scaled up/down replica set <rs> from <n> to
<m>" (sync.go scaleReplicaSet, getNewReplicaSet), ``ReplicaSetCreateError``. Not modelled: the
``isScalingEvent`` proportional-scaling path, paused Deployments, revision annotations, revision-history cleanup.
Workers: ``--concurrent-deployment-syncs``.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
from collections.abc import Mapping

import orjson

from kbench.apiserver.objects import APIError, seconds
from kbench.controllers.base import Controller, Manager, controlled, controller_key, owner_reference

POD_TEMPLATE_HASH = "pod-template-hash"
PROGRESS_DEADLINE_SECONDS = 600
"""SetDefaults_Deployment: ``progressDeadlineSeconds`` defaults to 600 (pkg/apis/apps/v1/defaults.go)."""
NO_DEADLINE = 2**31 - 1
"""HasProgressDeadline: ``math.MaxInt32`` means no deadline."""


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


def fenceposts(d: Mapping) -> tuple[int, int]:
    """ResolveFenceposts: (maxSurge, maxUnavailable) of a RollingUpdate Deployment."""
    replicas = d["spec"].get("replicas", 1)
    rolling = d["spec"].get("strategy", {}).get("rollingUpdate", {})
    surge = scaled(rolling.get("maxSurge", "25%"), replicas, True)
    unavailable = scaled(rolling.get("maxUnavailable", "25%"), replicas, False)
    return surge, 1 if surge == 0 and unavailable == 0 else unavailable


def max_unavailable(d: Mapping) -> int:
    """deploymentutil.MaxUnavailable: 0 for Recreate or no replicas, else maxUnavailable capped at replicas."""
    replicas = d["spec"].get("replicas", 1)
    if d["spec"].get("strategy", {}).get("type") == "Recreate" or replicas == 0:
        return 0
    return min(fenceposts(d)[1], replicas)


def progress_deadline(d: Mapping) -> int | None:
    """``progressDeadlineSeconds`` (defaulted), or None when HasProgressDeadline is false."""
    value = d["spec"].get("progressDeadlineSeconds")
    value = PROGRESS_DEADLINE_SECONDS if value is None else value
    return None if value == NO_DEADLINE else value


def new_condition(kind: str, status: str, reason: str, message: str, now: str) -> dict:
    """NewDeploymentCondition: updated and transitioned ``now``."""
    return {
        "type": kind,
        "status": status,
        "lastUpdateTime": now,
        "lastTransitionTime": now,
        "reason": reason,
        "message": message,
    }


def get_condition(status: Mapping, kind: str) -> dict | None:
    """GetDeploymentCondition."""
    return next((c for c in status.get("conditions") or () if c["type"] == kind), None)


def set_condition(status: dict, cond: dict) -> None:
    """SetDeploymentCondition: no change for the same status and reason; else replace it (moved last), keeping
    lastTransitionTime while the status holds."""
    current = get_condition(status, cond["type"])
    if current is not None and current["status"] == cond["status"] and current.get("reason") == cond["reason"]:
        return
    if current is not None and current["status"] == cond["status"]:
        cond = {**cond, "lastTransitionTime": current["lastTransitionTime"]}
    remove_condition(status, cond["type"])
    status["conditions"] = [*(status.get("conditions") or []), cond]


def remove_condition(status: dict, kind: str) -> None:
    """RemoveDeploymentCondition."""
    status["conditions"] = [c for c in status.get("conditions") or () if c["type"] != kind]


def complete(d: Mapping, status: Mapping) -> bool:
    """DeploymentComplete: every desired replica updated and available, no old replica left."""
    replicas = d["spec"].get("replicas", 1)
    return (
        status.get("updatedReplicas") == replicas
        and status.get("replicas") == replicas
        and status.get("availableReplicas") == replicas
        and status.get("observedGeneration", 0) >= d["metadata"].get("generation", 1)
    )


def progressing(old: Mapping, new: Mapping) -> bool:
    """DeploymentProgressing: updated, ready or available replicas grew, or old replicas shrank."""
    g = lambda status, k: status.get(k, 0)  # noqa: E731
    old_old = g(old, "replicas") - g(old, "updatedReplicas")
    new_old = g(new, "replicas") - g(new, "updatedReplicas")
    return (
        g(new, "updatedReplicas") > g(old, "updatedReplicas")
        or new_old < old_old
        or g(new, "readyReplicas") > g(old, "readyReplicas")
        or g(new, "availableReplicas") > g(old, "availableReplicas")
    )


def timed_out(d: Mapping, status: Mapping, now: float) -> bool:
    """DeploymentTimedOut: the Progressing condition's lastUpdateTime + the deadline is before ``now``."""
    deadline = progress_deadline(d)
    cond = get_condition(status, "Progressing")
    if deadline is None or cond is None or cond.get("reason") == "NewReplicaSetAvailable":
        return False
    if cond.get("reason") == "ProgressDeadlineExceeded":
        return True
    return seconds(cond["lastUpdateTime"]) + deadline < now


def calculate_status(d: Mapping, sets: list[Mapping], new: Mapping, now: str) -> dict:
    """calculateStatus: replica counts over all ReplicaSets, the conditions carried over, and Available."""
    replicas = d["spec"].get("replicas", 1)
    totals = {
        k: sum(rs.get("status", {}).get(k, 0) for rs in sets)
        for k in ("replicas", "readyReplicas", "availableReplicas")
    }
    desired = sum(rs["spec"].get("replicas", 0) for rs in sets)
    status = {
        **{k: v for k, v in (d.get("status") or {}).items() if k == "collisionCount"},
        "observedGeneration": d["metadata"].get("generation", 1),
        **totals,
        "updatedReplicas": new.get("status", {}).get("replicas", 0),
        "unavailableReplicas": max(0, desired - totals["availableReplicas"]),
        "conditions": [dict(c) for c in (d.get("status") or {}).get("conditions") or ()],
    }
    if totals["availableReplicas"] >= replicas - max_unavailable(d):
        cond = new_condition(
            "Available", "True", "MinimumReplicasAvailable", "Deployment has minimum availability.", now
        )
    else:
        message = "Deployment does not have minimum availability."
        cond = new_condition("Available", "False", "MinimumReplicasUnavailable", message, now)
    set_condition(status, cond)
    return status


class DeploymentController(Controller):
    """DeploymentController: syncDeployment for each Deployment key."""

    name = "deployment-controller"
    event_source = "deployment-controller"
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
        cached = self.primary.cache.get(key)
        if cached is None or cached["metadata"].get("deletionTimestamp"):
            return
        d = self.copy(cached)  # getNewReplicaSet sets conditions on it, as upstream's d.Status
        d.setdefault("status", {})
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
        else:
            yield from self._found(d, new)
        if recreate:
            yield from self._recreate(d, old, new, names(sets + [new], lambda rs: rs["spec"].get("replicas", 0)))
        else:
            old = yield from self._rolling(d, sets, old, new)
        yield from self._status(key, d, [*old, new], new)

    def _found(self, d: dict, new: Mapping):
        """Process body: getNewReplicaSet's existing-ReplicaSet branch: with a deadline and no Progressing
        condition yet, record FoundNewReplicaSet and write the status."""
        if progress_deadline(d) is None or get_condition(d["status"], "Progressing") is not None:
            return
        message = f'Found new replica set "{new["metadata"]["name"]}"'
        set_condition(
            d["status"], new_condition("Progressing", "True", "FoundNewReplicaSet", message, self.now_stamp())
        )
        yield self.client.call("update", "deployments", body=d, subresource="status")

    def _recreate(self, d: Mapping, old: list[Mapping], new: Mapping, rs_replicas: dict[str, int]):
        """Process body: rolloutRecreate: old ReplicaSets to zero, then (once their pods are gone) the new one up."""
        if any(rs_replicas[rs["metadata"]["name"]] for rs in old):
            for rs in old:
                yield from self._scale(d, rs, 0)
        elif all(rs.get("status", {}).get("replicas", 0) == 0 for rs in old):
            yield from self._scale(d, new, d["spec"].get("replicas", 1))

    def _rolling(self, d: Mapping, sets: list[Mapping], old: list[Mapping], new: Mapping):
        """Process body: rolloutRolling: reconcileNewReplicaSet, and only if it did not scale the new ReplicaSet,
        reconcileOldReplicaSets; returns the old ReplicaSets oldest first."""
        replicas = d["spec"].get("replicas", 1)
        surge, unavailable = fenceposts(d)
        rs_replicas = names(sets + [new], lambda rs: rs["spec"].get("replicas", 0))
        available = names(sets + [new], lambda rs: rs.get("status", {}).get("availableReplicas", 0))
        old = sorted(old, key=lambda r: r["metadata"].get("creationTimestamp", ""))
        scaled = yield from self._reconcile_new(d, new, replicas, surge, rs_replicas)
        if not scaled:
            yield from self._reconcile_old(d, old, new, replicas - unavailable, rs_replicas, available)
        return old

    def _reconcile_new(self, d: Mapping, new: Mapping, replicas: int, surge: int, rs_replicas: dict[str, int]):
        """Process body: reconcileNewReplicaSet: grow within replicas + maxSurge (or shrink to replicas); returns
        whether it scaled the new ReplicaSet (up or down: upstream returns ``scaled`` from both branches)."""
        name = new["metadata"]["name"]
        target = rs_replicas[name]
        if target < replicas:
            target = min(replicas, target + max(0, replicas + surge - sum(rs_replicas.values())))
        elif target > replicas:
            target = replicas
        if target == rs_replicas[name]:
            return False
        yield from self._scale(d, new, target)
        rs_replicas[name] = target
        return True

    def _reconcile_old(
        self,
        d: Mapping,
        old: list[Mapping],
        new: Mapping,
        min_available: int,
        rs_replicas: dict[str, int],
        available: dict,
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
                yield from self._scale(d, rs, rs_replicas[name])
        spare = sum(available[n] for n in rs_replicas) - min_available
        for rs in old:
            name = rs["metadata"]["name"]
            cut = min(spare, rs_replicas[name])
            if cut > 0:
                rs_replicas[name] -= cut
                spare -= cut
                yield from self._scale(d, rs, rs_replicas[name])

    def _create_rs(self, d: dict, h: str, replicas: int):
        """Process body: getNewReplicaSet's create branch: the new ReplicaSet of the Deployment's template, its
        ScalingReplicaSet Event and (with a deadline) Progressing NewReplicaSetCreated, written at once. None if
        the name is taken (the informer has not shown it yet and the next sync finds it)."""
        ns = d["metadata"]["namespace"]
        template = self.copy(d["spec"]["template"])
        template.setdefault("metadata", {}).setdefault("labels", {})[POD_TEMPLATE_HASH] = h
        selector = self.copy(d["spec"].get("selector", {}))
        selector.setdefault("matchLabels", {})[POD_TEMPLATE_HASH] = h
        name = f"{d['metadata']['name']}-{h}"
        body = {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": name,
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
            created = yield self.client.call("create", "replicasets", namespace=ns, body=body)
        except APIError as err:
            if err.code == 409:
                return None
            message = f'Failed to create new replica set "{name}": {err.message}'
            if progress_deadline(d) is not None:
                cond = new_condition("Progressing", "False", "ReplicaSetCreateError", message, self.now_stamp())
                set_condition(d["status"], cond)
                yield from self._try_status(d)
            self.recorder.event(d, "Warning", "ReplicaSetCreateError", message)
            raise
        if replicas > 0:
            self.recorder.event(d, "Normal", "ScalingReplicaSet", f"Scaled up replica set {name} from 0 to {replicas}")
        if progress_deadline(d) is not None:
            message = f'Created new replica set "{name}"'
            cond = new_condition("Progressing", "True", "NewReplicaSetCreated", message, self.now_stamp())
            set_condition(d["status"], cond)
            yield self.client.call("update", "deployments", body=d, subresource="status")
        return created

    def _try_status(self, d: Mapping):
        """Process body: a status write whose failure is ignored (``_, _ = UpdateStatus``)."""
        with contextlib.suppress(APIError):
            yield self.client.call("update", "deployments", body=d, subresource="status")

    def _scale(self, d: Mapping, rs: Mapping, replicas: int):
        """Process body: scaleReplicaSet: set a ReplicaSet's ``spec.replicas`` (an update from the informer's copy)
        and record ScalingReplicaSet on the Deployment."""
        before = rs["spec"].get("replicas", 0)
        if before == replicas:
            return
        body = self.copy(rs)
        body["spec"]["replicas"] = replicas
        yield self.client.call("update", "replicasets", body=body)
        way = "up" if before < replicas else "down"
        message = f"Scaled {way} replica set {rs['metadata']['name']} from {before} to {replicas}"
        self.recorder.event(d, "Normal", "ScalingReplicaSet", message)

    def _status(self, key: str, d: Mapping, sets: list[Mapping], new: Mapping):
        """Process body: syncRolloutStatus: calculateStatus, the Progressing condition, then the write (or, when
        nothing changed, requeueStuckDeployment)."""
        stamp, now = self.now_stamp(), self.engine.now
        status = calculate_status(d, sets, new, stamp)
        deadline = progress_deadline(d)
        if deadline is None:
            remove_condition(status, "Progressing")
        current = get_condition(d["status"], "Progressing")
        done = status["replicas"] == status["updatedReplicas"] and (current or {}).get("reason") == (
            "NewReplicaSetAvailable"
        )
        if deadline is not None and not done:
            self._progress(d, status, new, current, stamp, now)
        if status == d["status"]:
            self._requeue_stuck(key, d, status, now)
            return
        body = dict(d)
        body["status"] = status
        yield self.client.call("update", "deployments", body=body, subresource="status")

    def _progress(self, d: Mapping, status: dict, new: Mapping, current: Mapping | None, stamp: str, now: float):
        """syncRolloutStatus's switch: complete, progressing (a fresh lastUpdateTime) or timed out."""
        rs = f'ReplicaSet "{new["metadata"]["name"]}"'
        if complete(d, status):
            message = f"{rs} has successfully progressed."
            set_condition(status, new_condition("Progressing", "True", "NewReplicaSetAvailable", message, stamp))
        elif progressing(d["status"], status):
            cond = new_condition("Progressing", "True", "ReplicaSetUpdated", f"{rs} is progressing.", stamp)
            if current is not None:
                if current["status"] == "True":
                    cond["lastTransitionTime"] = current["lastTransitionTime"]
                remove_condition(status, "Progressing")
            set_condition(status, cond)
        elif timed_out(d, status, now):
            message = f"{rs} has timed out progressing."
            set_condition(status, new_condition("Progressing", "False", "ProgressDeadlineExceeded", message, stamp))

    def _requeue_stuck(self, key: str, d: Mapping, status: Mapping, now: float) -> None:
        """requeueStuckDeployment: check again when the Progressing condition's deadline passes."""
        deadline = progress_deadline(d)
        current = get_condition(d["status"], "Progressing")
        if deadline is None or current is None:
            return
        if complete(d, status) or current.get("reason") == "ProgressDeadlineExceeded":
            return
        after = seconds(current["lastUpdateTime"]) + deadline - now
        if after < 1.0:
            self.queue.add_rate_limited(key)
        else:
            self.queue.add_after(key, after + 1.0)
