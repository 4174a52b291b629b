"""Disruption controller (pkg/controller/disruption/disruption.go, v1.35): keeps every PodDisruptionBudget's status.

A PDB's pods are those of its namespace its selector matches (getPodsForPdb: in policy/v1 an empty selector matches
all of them, an unset one none). ``currentHealthy`` counts those Ready (podutil.IsPodReady) and neither being deleted
nor in ``status.disruptedPods`` for less than :data:`DELETION_TIMEOUT` (countHealthyPods). getExpectedPodCount:

- ``maxUnavailable`` (int or percent): ``expectedPods`` is the scale of the pods' controllers (getExpectedScale),
  ``desiredHealthy`` = max(0, expected - maxUnavailable), a percentage rounded up;
- ``minAvailable`` int: ``desiredHealthy`` = minAvailable, ``expectedPods`` = the pods' count;
- ``minAvailable`` percent: ``expectedPods`` the controllers' scale, ``desiredHealthy`` the percentage rounded up.

``disruptionsAllowed`` = max(0, currentHealthy - desiredHealthy), 0 while ``expectedPods`` is 0; the
``DisruptionAllowed`` condition is True/SufficientPods when disruptions are allowed, else False/InsufficientPods
(component-helpers poddisruptionbudget UpdateDisruptionAllowedCondition). The status is written
(``poddisruptionbudgets/status``) only when one of these, ``disruptedPods`` or ``observedGeneration`` changed. A sync
that fails (other than on a conflict, which is retried) writes the fail-safe status: no disruptions allowed, condition
False/SyncFailed with the error.

Controller finders (getExpectedScale): a pod's ReplicaSet, or the Deployment controlling that ReplicaSet
(getPodDeployment, getPodReplicaSet, from the informers' caches); a Deployment owning a pod directly is found through
its scale, read here from the cache (upstream GETs its scale subresource). A pod without a controller is unmanaged
(counted nowhere; Warning ``UnmanagedPods``); a controller that is gone is "found no controllers for pod"; a Job (no
scale subresource) or a kind kbench does not serve (ReplicationController, StatefulSet, custom resources) fails the
sync as upstream's scale finder does. Events (recorder "controllermanager"): NoPods, UnmanagedPods,
CalculateExpectedPodCountFailed, MultiplePodDisruptionBudgets, NotDeleted. Not modelled: the stale
DisruptionTarget-condition cleanup of pods (stalePodDisruptionWorker); the recheck queue's extra rate-limited step.
One worker, as upstream.
"""

from __future__ import annotations

from collections.abc import Mapping

from kbench.api.policy import PodDisruptionBudget
from kbench.apiserver.objects import KINDS, APIError, object_key, timestamp
from kbench.controllers.base import Controller, Manager, controller_of, pod_ready
from kbench.controllers.deployment import scaled

DELETION_TIMEOUT = 120.0
"""DeletionTimeout: how long a pod in ``disruptedPods`` is expected to take to be marked for deletion."""
DISRUPTION_ALLOWED = "DisruptionAllowed"
"""policy/v1 DisruptionAllowedCondition, its reasons SufficientPods, InsufficientPods and SyncFailed."""
SCALED_KINDS = {"ReplicaSet": "replicasets", "Deployment": "deployments"}
"""Controller kinds whose scale kbench reads (group apps or extensions, as verifyGroupKind accepts)."""


class SyncError(Exception):
    """getExpectedPodCount failed: the PDB gets the fail-safe status."""


class DisruptionController(Controller):
    """DisruptionController: trySync for each PodDisruptionBudget key."""

    name = "disruption-controller"
    resource, enqueue_deletes = "poddisruptionbudgets", True
    event_source = "controllermanager"

    def __init__(self, manager: Manager) -> None:
        super().__init__(manager)
        self.pods = self.watch("pods", self._pod_changed, lambda old, new: self._pod_changed(new), self._pod_changed)
        self.replicasets, self.deployments = self.watch("replicasets"), self.watch("deployments")
        self._parsed: dict[str, PodDisruptionBudget] = {}

    def _pod_changed(self, pod: Mapping) -> None:
        """addPod / updatePod / deletePod: queue the first PDB covering the pod (getPdbForPod)."""
        meta = pod["metadata"]
        pdbs = [
            pdb
            for pdb in self.primary.cache.values()
            if pdb["metadata"]["namespace"] == meta["namespace"]
            and self.parsed(pdb).covers(meta["namespace"], meta.get("labels") or {})
        ]
        if not pdbs:
            return
        if len(pdbs) > 1:
            message = (
                f'Pod "{meta["namespace"]}"/"{meta["name"]}" matches multiple PodDisruptionBudgets.  '
                f'Chose "{pdbs[0]["metadata"]["name"]}" arbitrarily.'
            )
            self.recorder.event(pod, "Warning", "MultiplePodDisruptionBudgets", message)
        self.enqueue(pdbs[0])

    def parsed(self, obj: Mapping) -> PodDisruptionBudget:
        """The PDB object as a :class:`PodDisruptionBudget`, parsed once per stored version (cached objects are
        never changed, only replaced)."""
        key = object_key(obj)
        seen = self._parsed.get(key)
        if seen is None or seen.manifest is not obj:
            seen = self._parsed[key] = PodDisruptionBudget.from_manifest(obj)
        return seen

    def sync(self, key):
        """sync: trySync, the fail-safe status if it fails (a conflict is retried instead)."""
        obj = self.primary.cache.get(key)
        if obj is None:
            self._parsed.pop(key, None)
            return
        pdb = self.parsed(obj)
        try:
            yield from self.try_sync(obj, pdb)
        except SyncError as err:
            yield from self.fail_safe(obj, str(err))
        except APIError as err:
            if err.code == 409:
                raise
            yield from self.fail_safe(obj, err.message)

    def pods_for(self, pdb: PodDisruptionBudget) -> list[Mapping]:
        """getPodsForPdb: the pods of the PDB's namespace its selector matches."""
        return [
            p
            for p in self.pods.cache.values()
            if pdb.covers(p["metadata"]["namespace"], p["metadata"].get("labels") or {})
        ]

    def try_sync(self, obj: Mapping, pdb: PodDisruptionBudget):
        """trySync: compute the status and write it if it changed; come back when a disrupted pod's time is up."""
        pods = self.pods_for(pdb)
        if not pods:
            self.recorder.event(obj, "Normal", "NoPods", "No matching pods found")
        try:
            expected, desired, unmanaged = self.expected_pod_count(pdb, pods)
        except SyncError as err:
            message = f"Failed to calculate the number of expected pods: {err}"
            self.recorder.event(obj, "Warning", "CalculateExpectedPodCountFailed", message)
            raise
        if unmanaged:
            self.recorder.event(obj, "Warning", "UnmanagedPods", unmanaged_message(obj))
        disrupted, recheck = self.disrupted_pod_map(obj, pdb, pods)
        healthy = count_healthy_pods(pods, {name: pdb.disrupted_pods[name] for name in disrupted}, self.engine.now)
        yield from self.update_status(obj, pdb, healthy, desired, expected, disrupted)
        if recheck is not None:
            self.queue.add_after(pdb.key, recheck - self.engine.now)

    def expected_pod_count(self, pdb: PodDisruptionBudget, pods: list[Mapping]) -> tuple[int, int, list[str]]:
        """getExpectedPodCount: (expectedCount, desiredHealthy, unmanaged pods' names)."""
        if pdb.max_unavailable is not None:
            expected, unmanaged = self.expected_scale(pods)
            return expected, max(0, expected - scaled(pdb.max_unavailable, expected, True)), unmanaged
        if isinstance(pdb.min_available, int):
            return len(pods), pdb.min_available, []
        if pdb.min_available is not None:
            expected, unmanaged = self.expected_scale(pods)
            return expected, scaled(pdb.min_available, expected, True), unmanaged
        return 0, 0, []

    def expected_scale(self, pods: list[Mapping]) -> tuple[int, list[str]]:
        """getExpectedScale: the sum of the scales of the pods' controllers (each counted once), and the pods
        without a controller."""
        scales: dict[str, int] = {}
        unmanaged = []
        for pod in pods:
            ref = controller_of(pod)
            if ref is None:
                unmanaged.append(pod["metadata"]["name"])
            elif ref["uid"] not in scales:
                uid, scale = self.controller_scale(ref, pod["metadata"]["namespace"], pod["metadata"]["name"])
                scales[uid] = scale
        return sum(scales.values()), unmanaged

    def controller_scale(self, ref: Mapping, namespace: str, pod: str) -> tuple[str, int]:
        """The finders (getPodDeployment, getPodReplicaSet, getScaleController): (uid, scale) of a controller."""
        kind, group = ref.get("kind", ""), str(ref.get("apiVersion", "")).rpartition("/")[0]
        if kind in SCALED_KINDS and group in ("apps", "extensions"):
            found = self._owner(SCALED_KINDS[kind], namespace, ref)
            if found is None:
                raise SyncError(f'found no controllers for pod "{pod}"')
            parent = controller_of(found) if kind == "ReplicaSet" else None
            if parent is not None and parent.get("kind") == "Deployment":
                found = self._owner("deployments", namespace, parent) or found  # the RS's own scale if it is gone
            return found["metadata"]["uid"], found["spec"].get("replicas", 1)
        served = KINDS.get(kind)
        if served is not None and served.group == group:
            raise SyncError(f"{served.group_resource} does not implement the scale subresource")
        raise SyncError(f'no matches for kind "{kind}" in version "{ref.get("apiVersion", "")}"')

    def _owner(self, resource: str, namespace: str, ref: Mapping) -> Mapping | None:
        """The object ``ref`` names in the informer's cache, if it is that object (same uid)."""
        cache = (self.replicasets if resource == "replicasets" else self.deployments).cache
        found = cache.get(f"{namespace}/{ref['name']}")
        return found if found is not None and found["metadata"]["uid"] == ref["uid"] else None

    def disrupted_pod_map(self, obj: Mapping, pdb: PodDisruptionBudget, pods: list[Mapping]):
        """buildDisruptedPodMap: the disrupted pods still expected to be deleted (others dropped, with a NotDeleted
        event for a pod whose time ran out), and when the first of them runs out (None if none)."""
        now, kept, recheck = self.engine.now, {}, None
        for pod in pods:
            name = pod["metadata"]["name"]
            if pod["metadata"].get("deletionTimestamp") or name not in pdb.disrupted_pods:
                continue
            expected = pdb.disrupted_pods[name] + DELETION_TIMEOUT
            # upstream keeps a pod whose time is up at this very instant and rechecks then, real time having moved
            # on; here the recheck would come at the same instant again, forever. countHealthyPods counts it healthy
            # at that instant already, so it goes now.
            if expected <= now:
                ns = pdb.namespace  # upstream's message names the namespace twice
                self.recorder.event(
                    pod, "Warning", "NotDeleted", f"Pod was expected by PDB {ns}/{ns} to be deleted but it wasn't"
                )
                continue
            recheck = expected if recheck is None else min(recheck, expected)
            kept[name] = obj["status"]["disruptedPods"][name]
        return kept, recheck

    def update_status(self, obj: Mapping, pdb: PodDisruptionBudget, healthy, desired, expected, disrupted):
        """updatePdbStatus: the new status, written only if it differs from the PDB's."""
        allowed = healthy - desired if expected > 0 and healthy > desired else 0
        status = obj.get("status") or {}
        if (
            (pdb.current_healthy, pdb.desired_healthy, pdb.expected_pods) == (healthy, desired, expected)
            and pdb.disruptions_allowed == allowed
            and (status.get("disruptedPods") or {}) == disrupted
            and pdb.observed_generation == pdb.generation
            and conditions_are_up_to_date(obj, pdb)
        ):
            return
        new = {
            "currentHealthy": healthy,
            "desiredHealthy": desired,
            "expectedPods": expected,
            "disruptionsAllowed": allowed,
            "observedGeneration": pdb.generation,
            "conditions": [dict(c) for c in status.get("conditions") or ()],
        }
        if disrupted:
            new["disruptedPods"] = disrupted
        sufficient = allowed > 0
        reason = "SufficientPods" if sufficient else "InsufficientPods"
        set_status_condition(new, disruption_condition(sufficient, reason, "", pdb.generation), self.engine.now)
        yield from self.write_status(obj, new)

    def fail_safe(self, obj: Mapping, message: str):
        """failSafe: at least allow no disruptions, condition False/SyncFailed with the error."""
        status = {**(obj.get("status") or {}), "disruptionsAllowed": 0}
        status["conditions"] = [dict(c) for c in status.get("conditions") or ()]
        generation = status.get("observedGeneration", 0)
        set_status_condition(status, disruption_condition(False, "SyncFailed", message, generation), self.engine.now)
        yield from self.write_status(obj, status)

    def write_status(self, obj: Mapping, status: dict):
        """writePdbStatus: UpdateStatus, not retried here (a failure requeues the key). A status equal to the stored
        one is not written: the apiserver's GuaranteedUpdate (storage/etcd3/store.go) stores nothing and sends no
        event for an update that changes nothing, so failSafe's repeated write of one status ends there."""
        if status == (obj.get("status") or {}):
            return
        body = {**obj, "status": status}
        yield self.client.call("update", "poddisruptionbudgets", body=body, subresource="status")


def count_healthy_pods(pods: list[Mapping], disrupted: Mapping[str, float], now: float) -> int:
    """countHealthyPods: Ready pods not being deleted and not disrupted within the last :data:`DELETION_TIMEOUT`
    (``disrupted``: each disrupted pod's disruption time, in simulated seconds)."""
    healthy = 0
    for pod in pods:
        meta = pod["metadata"]
        if meta.get("deletionTimestamp"):
            continue
        at = disrupted.get(meta["name"])
        if at is not None and at + DELETION_TIMEOUT > now:
            continue
        healthy += pod_ready(pod)
    return healthy


def disruption_condition(status: bool, reason: str, message: str, generation: int) -> dict:
    """A DisruptionAllowed metav1.Condition (its lastTransitionTime set by :func:`set_status_condition`)."""
    return {
        "type": DISRUPTION_ALLOWED,
        "status": "True" if status else "False",
        "observedGeneration": generation,
        "reason": reason,
        "message": message,
    }


def set_status_condition(status: dict, cond: dict, now: float) -> None:
    """apimeta.SetStatusCondition: add ``cond``, or update the one of its type (lastTransitionTime moves only when
    the status changes)."""
    conditions = status.setdefault("conditions", [])
    current = next((c for c in conditions if c["type"] == cond["type"]), None)
    if current is None:
        conditions.append({**cond, "lastTransitionTime": timestamp(now)})
        return
    if current["status"] != cond["status"]:
        current["lastTransitionTime"] = timestamp(now)
    current.update(cond)


def conditions_are_up_to_date(obj: Mapping, pdb: PodDisruptionBudget) -> bool:
    """pdbhelper.ConditionsAreUpToDate: the DisruptionAllowed condition agrees with ``disruptionsAllowed``."""
    cond = next((c for c in (obj.get("status") or {}).get("conditions") or () if c["type"] == DISRUPTION_ALLOWED), None)
    if cond is None or pdb.observed_generation != pdb.generation:
        return False
    if pdb.disruptions_allowed > 0:
        return cond["status"] == "True" and cond.get("reason") == "SufficientPods"
    return cond["status"] == "False" and cond.get("reason") == "InsufficientPods"


def unmanaged_message(obj: Mapping) -> str:
    """trySync's UnmanagedPods warning."""
    return (
        f"Pods selected by this PodDisruptionBudget (selector: {obj['spec'].get('selector')}) were found to be "
        "unmanaged. As a result, the status of the PDB cannot be calculated correctly, which may result in undefined "
        'behavior. To account for these pods please set ".spec.minAvailable" field of the PDB to an integer value.'
    )
