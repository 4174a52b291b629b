"""ReplicaSet controller (pkg/controller/replicaset, v1.35).

The active pods a ReplicaSet controls (ownerReference with controller: true, not terminating) against
``spec.replicas``: missing pods are created in slow-start batches (1, 2, 4, ... up to ``BurstReplicas`` 500 per
sync), surplus ones deleted in ``ActivePods`` order (unscheduled before scheduled, pending before running, not
ready before ready, newest first), with expectations so a sync does not act again before the informer has seen
its own creations and deletions (5-minute expectation timeout); it keeps ``status.replicas`` /
``readyReplicas`` / ``availableReplicas`` (ready for ``minReadySeconds``). Workers:
``--concurrent-replicaset-syncs``.

Events (pkg/controller/controller_utils.go RealPodControl, recorder "replicaset-controller"): ``SuccessfulCreate``
"Created pod: <name>", ``FailedCreate`` "Error creating: <error>" (Warning; not when the namespace is terminating),
``SuccessfulDelete`` "Deleted pod: <name>", ``FailedDelete`` "Error deleting: <error>" (Warning; a pod already gone
records nothing).
"""

from __future__ import annotations

from collections.abc import Mapping

from kbench.apiserver.objects import APIError, object_key, seconds
from kbench.controllers.base import (
    Controller,
    Expectations,
    PodOwner,
    active_pod,
    condition,
    controlled,
    owner_reference,
    pod_ready,
)

BURST_REPLICAS = 500
"""replicaset.BurstReplicas: creations or deletions in one sync at most."""
STATUS_UPDATE_RETRIES = 1
"""pkg/controller/replicaset/replica_set_utils.go updateReplicaSetStatus: a failed status update is retried once on a
fresh GET of the ReplicaSet before the sync fails (statusUpdateRetries)."""


def available(pod: Mapping, min_ready: int, now: float) -> bool:
    """podutil.IsPodAvailable: ready for at least ``min_ready`` seconds."""
    if not pod_ready(pod):
        return False
    if min_ready <= 0:
        return True
    since = (condition(pod, "Ready") or {}).get("lastTransitionTime")
    return since is not None and seconds(since) + min_ready <= now


def deletion_rank(pod: Mapping) -> tuple:
    """controller.ActivePods order: the first sort is the first to delete."""
    phase_rank = {"Pending": 0, "Unknown": 1, "Running": 2}.get(pod.get("status", {}).get("phase"), 0)
    return (
        bool(pod["spec"].get("nodeName")),
        phase_rank,
        pod_ready(pod),
        -seconds(pod["metadata"].get("creationTimestamp", "2026-01-01T00:00:00Z")),
    )


def new_pod(rs: Mapping) -> dict:
    """controller.GetPodFromTemplate: a pod of the ReplicaSet's template, owned by it."""
    template = rs["spec"]["template"]
    meta = template.get("metadata", {})
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "generateName": f"{rs['metadata']['name']}-",
            "labels": dict(meta.get("labels") or {}),
            "annotations": dict(meta.get("annotations") or {}),
            "ownerReferences": [owner_reference(rs)],
        },
        "spec": Controller.copy(template.get("spec", {})),
    }


class ReplicaSetController(PodOwner):
    """ReplicaSetController: syncReplicaSet for each ReplicaSet key."""

    name = "replicaset-controller"
    event_source = "replicaset-controller"
    owner_kind = "ReplicaSet"
    resource, enqueue_deletes, workers_option = "replicasets", True, "concurrent_replicaset_syncs"

    def sync(self, key):
        """syncReplicaSet: manage the pods if expectations allow, then write the status."""
        rs = self.primary.cache.get(key)
        if rs is None:
            self.expect.forget(key)
            return
        ns = rs["metadata"]["namespace"]
        active = [p for p in controlled(self.pods, rs) if active_pod(p)]
        if self.expect.satisfied(key) and not rs["metadata"].get("deletionTimestamp"):
            diff = len(active) - rs["spec"].get("replicas", 1)
            if diff < 0:
                yield from self.create_pods(rs, key, min(-diff, BURST_REPLICAS), lambda: new_pod(rs))
            elif diff > 0:
                yield from self._delete_surplus(
                    rs, key, ns, sorted(active, key=deletion_rank)[: min(diff, BURST_REPLICAS)]
                )
        yield from self._status(rs, active)

    def _delete_surplus(self, rs: Mapping, key: str, ns: str, victims: list[Mapping]):
        """Process body: delete ``victims``, expecting to see each deletion (RealPodControl.DeletePod's events)."""
        self.expect.expect(key, 0, len(victims))
        for pod in victims:
            name = pod["metadata"]["name"]
            try:
                if not (yield from self.delete("pods", ns, name)):
                    self.expect.lower(key, Expectations.DELETED)  # already gone: its deletion will not be observed
                    continue
            except APIError as err:
                self.expect.lower(key, Expectations.DELETED)
                self.recorder.event(rs, "Warning", "FailedDelete", f"Error deleting: {err.message}")
                raise
            self.recorder.event(rs, "Normal", "SuccessfulDelete", f"Deleted pod: {name}")

    def _status(self, rs: Mapping, active: list[Mapping]):
        """Process body: calculateStatus and updateReplicaSetStatus (written only when it changed)."""
        now, min_ready = self.engine.now, rs["spec"].get("minReadySeconds", 0)
        labels = rs["spec"].get("template", {}).get("metadata", {}).get("labels") or {}
        status = {
            "replicas": len(active),
            "readyReplicas": sum(pod_ready(p) for p in active),
            "availableReplicas": sum(available(p, min_ready, now) for p in active),
            "fullyLabeledReplicas": sum(
                all(p["metadata"].get("labels", {}).get(k) == v for k, v in labels.items()) for p in active
            ),
            "observedGeneration": rs["metadata"].get("generation", 1),
        }
        if any(rs.get("status", {}).get(k) != v for k, v in status.items()):
            for attempt in range(STATUS_UPDATE_RETRIES + 1):
                body = self.copy(rs)
                body["status"] = {**body.get("status", {}), **status}
                try:
                    yield self.client.call("update", "replicasets", body=body, subresource="status")
                    break
                except APIError:
                    if attempt == STATUS_UPDATE_RETRIES:
                        raise  # the ReplicaSet is requeued with the rate limit
                # the ReplicaSet with the latest resourceVersion for the next try (any error here propagates)
                rs = yield self.client.call(
                    "get", "replicasets", namespace=rs["metadata"]["namespace"], name=rs["metadata"]["name"]
                )
        if min_ready and status["readyReplicas"] > status["availableReplicas"]:
            self.queue.add_after(object_key(rs), min_ready)
