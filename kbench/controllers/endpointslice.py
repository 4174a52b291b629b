"""EndpointSlice controller (pkg/controller/endpointslice with staging/.../endpointslice reconciler, v1.35).

For each Service with a selector: the pods it selects that have an IP become endpoints (ready = the pod's
Ready condition and not terminating; serving = Ready; terminating = deletionTimestamp set), with the
Service's ports resolved against the pods (named targetPorts through container ports). Endpoints go into
slices of at most ``--max-endpoints-per-slice`` (100), labelled ``kubernetes.io/service-name`` and
``endpointslice.kubernetes.io/managed-by``; an endpoint stays in the slice it is in, new ones fill slices
with room, then new slices are created; empty slices are deleted. Each written slice carries
``endpoints.kubernetes.io/last-change-trigger-time``: the earliest change (a pod's Ready transition, its
creation or deletion, or the Service's) not yet written, which kube-proxy's network programming latency is
measured from. A pod change syncs its Services ``--endpointslice-updates-batch-period`` later (0: at once), so
changes within that period are written together. Workers: ``--concurrent-service-endpoint-syncs``.

Staleness (``EndpointSliceTracker``, :mod:`kbench.controllers.endpointslicetracker`): the controller records the
generation of every slice it writes and deletes; a sync whose informer cache has not yet seen those writes
(``StaleSlices``) writes nothing and is requeued through the rate limiter (pkg/controller/endpointslice/
endpointslice_controller.go syncService: ``NewStaleInformerCache``), so a Service gets no second slice for the
endpoints its first, not yet seen, slice holds. Slice events requeue the Service (after
``endpointSliceChangeMinSyncDelay``, 1 s, or the batch period if longer) only when the slice is not the controller's
own latest write (``ShouldSync``) or was deleted by someone else (``HandleDeletion``). The reconciler's ``finalize``
(staging/src/k8s.io/endpointslice/reconciler.go) turns a slice to create plus one to delete into an update of the
latest; creates, then updates, then deletes are sent. The service queue's rate limiter: per-key exponential backoff
from ``defaultSyncBackOff`` (1 s) up to ``maxSyncBackOff`` (1000 s) or the 10 qps / 100 bucket, whichever waits
longer; a key is dropped after ``maxRetries`` (15) requeues.

Events (recorder "endpoint-slice-controller"): a failed reconcile records ``FailedToUpdateEndpointSlices`` (Warning)
"Error updating Endpoint Slices for Service <ns>/<name>: <error>" about the Service (syncService).
"""

from __future__ import annotations

from collections.abc import Mapping

from kbench.api.selectors import label_selector_matches
from kbench.apiserver.objects import APIError, object_key, seconds, timestamp
from kbench.client import WorkQueue
from kbench.controllers.base import Controller, Manager, condition, owner_reference, pod_ready
from kbench.controllers.endpointslicetracker import SERVICE_NAME, EndpointSliceTracker, service_key

MANAGED_BY = "endpointslice-controller.k8s.io"
TRIGGER = "endpoints.kubernetes.io/last-change-trigger-time"
"""The annotation with the earliest change a written slice reflects (kube-proxy's latency is measured from it)."""
MAX_RETRIES = 15
"""maxRetries (endpointslice_controller.go): requeues of a failing Service before it is dropped from the queue."""
ENDPOINT_SLICE_CHANGE_MIN_SYNC_DELAY = 1.0
"""endpointSliceChangeMinSyncDelay (endpointslice_controller.go): the least delay of a sync queued by a slice event."""
DEFAULT_SYNC_BACKOFF, MAX_SYNC_BACKOFF = 1.0, 1000.0
"""defaultSyncBackOff, maxSyncBackOff (endpointslice_controller.go): the service queue's per-key exponential backoff
(its bucket is the default 10 qps, burst 100)."""


class StaleInformerCache(Exception):
    """endpointslicepkg.StaleInformerCache (pkg/controller/util/endpointslice): the EndpointSlice informer cache is
    behind the controller's own writes; the sync is retried through the rate limiter."""


def managed_by_controller(es: Mapping) -> bool:
    """Reconciler.ManagedByController: the slice's ``endpointslice.kubernetes.io/managed-by`` is this controller."""
    return (es["metadata"].get("labels") or {}).get("endpointslice.kubernetes.io/managed-by") == MANAGED_BY


def owned_by(es: Mapping, svc: Mapping) -> bool:
    """ownedBy (reconciler utils.go): one of the slice's ownerReferences is the Service (its uid)."""
    uid = svc["metadata"].get("uid")
    return any(ref.get("uid") == uid for ref in es["metadata"].get("ownerReferences") or ())


def finalize(svc: Mapping, creates: list[dict], updates: list[dict], deletes: list[Mapping]) -> tuple[list, list, list]:
    """The reconciler's ``finalize`` pairing (staging/src/k8s.io/endpointslice/reconciler.go): while there are slices
    to create and to delete, the last slice to create takes the name of a slice to delete owned by this Service with
    the same addressType and becomes an update of it (so no create-then-delete of a slice). kbench also gives it the
    deleted slice's resourceVersion (upstream's update is unconditional) so the write is based on a copy it read.

    Returns
    -------
    (creates, updates, deletes)
        New lists; the paired bodies are changed in place.
    """
    creates, updates, deletes = list(creates), list(updates), list(deletes)
    i = 0
    while i < len(deletes) and creates:
        doomed, body = deletes[i], creates[-1]
        if doomed.get("addressType") == body.get("addressType") and owned_by(doomed, svc):
            body["metadata"]["name"] = doomed["metadata"]["name"]
            body["metadata"]["resourceVersion"] = doomed["metadata"].get("resourceVersion")
            updates.append(creates.pop())
            del deletes[i]
        else:
            i += 1
    return creates, updates, deletes


def pod_state(pod: Mapping) -> tuple:
    """What of a pod its endpoint shows: Ready, IP, terminating, labels."""
    return (
        pod_ready(pod),
        pod.get("status", {}).get("podIP"),
        bool(pod["metadata"].get("deletionTimestamp")),
        pod["metadata"].get("labels"),
    )


def plan_slices(existing: list[Mapping], desired: dict, max_endpoints: int) -> list[list]:
    """[slice or None (a new one), its endpoints]: an endpoint stays in the slice it is in, new ones fill the
    fullest slices with room, then new slices of at most ``max_endpoints``."""
    placed = {}
    plans: list[list] = []
    for es in existing:
        keep = []
        for ep in es.get("endpoints") or []:
            ip = ep["addresses"][0]
            if ip in desired and ip not in placed:
                keep.append(desired[ip])
                placed[ip] = True
        plans.append([es, keep])
    fresh = [ep for ip, ep in desired.items() if ip not in placed]
    for plan in sorted(plans, key=lambda p: -len(p[1])):
        room = max_endpoints - len(plan[1])
        if room > 0 and fresh:
            plan[1] += fresh[:room]
            fresh = fresh[room:]
    while fresh:
        plans.append([None, fresh[:max_endpoints]])
        fresh = fresh[max_endpoints:]
    return plans


def new_slice(svc: Mapping) -> dict:
    """A new EndpointSlice of ``svc`` (its endpoints and ports still to set)."""
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "addressType": "IPv4",
        "metadata": {
            "generateName": f"{svc['metadata']['name']}-",
            "namespace": svc["metadata"]["namespace"],
            "labels": {
                "kubernetes.io/service-name": svc["metadata"]["name"],
                "endpointslice.kubernetes.io/managed-by": MANAGED_BY,
            },
            "ownerReferences": [owner_reference(svc)],
        },
    }


class EndpointSliceController(Controller):
    """The EndpointSlice controller: syncService for each Service key."""

    name = "endpointslice-controller"
    event_source = "endpoint-slice-controller"
    workers_option = "concurrent_service_endpoint_syncs"

    def __init__(self, manager: Manager) -> None:
        super().__init__(manager)
        # the service queue backs off from DEFAULT_SYNC_BACKOFF (1 s) to MAX_SYNC_BACKOFF (endpointslice_controller.go)
        self.queue = WorkQueue(self.engine, DEFAULT_SYNC_BACKOFF, MAX_SYNC_BACKOFF)
        self.tracker = EndpointSliceTracker()
        self.stale_syncs = 0
        """Syncs that found the slice cache stale (requeued, nothing written)."""
        self.max_endpoints = self.config.max_endpoints_per_slice
        self.batch_period = self.config.endpointslice_updates_batch_period
        self.services = self.watch("services", self._service, lambda o, n: self._service(n), self.enqueue)
        self.services.add_index("selector", _selector_entry)
        self.pods = self.watch("pods", self._pod, self._pod_update, self._pod)
        self.pods.add_index("labels", _namespaced_labels)
        self.slices = self.watch("endpointslices", self._slice_add, self._slice_update, self._slice_delete)
        self.slices.add_index("service", _slice_service)
        self.triggers: dict[str, float] = {}
        self._endpoints: dict[tuple, dict] = {}
        """Endpoints by the (uid, resourceVersion) of the pod they were made from (:meth:`_endpoint_of`)."""

    def _trigger(self, key: str, at: float, delay: float = 0.0) -> None:
        self.triggers[key] = min(self.triggers.get(key, at), at)
        self.queue.add_after(key, delay)

    def _service(self, svc: Mapping) -> None:
        self._trigger(object_key(svc), self.engine.now)

    def _services_of(self, pod: Mapping):
        """Keys of the Services in the pod's namespace whose selector it matches (serviceSelectorCache)."""
        if not self.services.cache:  # (a cluster without Services: every pod event asks)
            return
        labels = pod["metadata"].get("labels") or {}
        ns = pod["metadata"]["namespace"]
        entries = [(ns, k, v) for k, v in labels.items() if not isinstance(v, list | dict)] + [(ns, ANY_LABEL)]
        for svc in self.services.by_index("selector", entries, every=False):
            selector = svc.get("spec", {}).get("selector")
            if selector and svc["metadata"]["namespace"] == ns and all(labels.get(k) == v for k, v in selector.items()):
                yield object_key(svc)

    def _pod(self, pod: Mapping) -> None:
        for key in self._services_of(pod):
            self._trigger(key, self.engine.now, self.batch_period)

    def _pod_update(self, old: Mapping, new: Mapping) -> None:
        if pod_state(old) == pod_state(new):
            return
        ready = condition(new, "Ready") or {}
        at = self.engine.now
        if ready.get("lastTransitionTime") and pod_ready(old) != pod_ready(new):
            at = min(at, seconds(ready["lastTransitionTime"]))
        for key in dict.fromkeys((*self._services_of(old), *self._services_of(new))):  # (in a fixed order)
            self._trigger(key, at, self.batch_period)

    def _slice_add(self, es: Mapping) -> None:
        """onEndpointSliceAdd: queue the Service unless the slice is the controller's own latest write."""
        if managed_by_controller(es) and self.tracker.should_sync(es):
            self._queue_for_slice(es)

    def _slice_update(self, old: Mapping, new: Mapping) -> None:
        """onEndpointSliceUpdate: queue both Services when the service-name label changed; else the Service when
        managed-by changed to or from this controller, or the slice is not the controller's own latest write."""
        if (old["metadata"].get("labels") or {}).get(SERVICE_NAME) != (new["metadata"].get("labels") or {}).get(
            SERVICE_NAME
        ):
            self._queue_for_slice(new)
            self._queue_for_slice(old)
        elif managed_by_controller(old) != managed_by_controller(new) or (
            managed_by_controller(new) and self.tracker.should_sync(new)
        ):
            self._queue_for_slice(new)

    def _slice_delete(self, es: Mapping) -> None:
        """onEndpointSliceDelete: forget a tracked slice; queue its Service if the deletion was not expected."""
        if managed_by_controller(es) and self.tracker.has(es) and not self.tracker.handle_deletion(es):
            self._queue_for_slice(es)

    def _queue_for_slice(self, es: Mapping) -> None:
        """queueServiceForEndpointSlice: the slice's Service, after max(endpointSliceChangeMinSyncDelay, batch)."""
        if (es["metadata"].get("labels") or {}).get(SERVICE_NAME):
            self.queue.add_after(service_key(es), max(ENDPOINT_SLICE_CHANGE_MIN_SYNC_DELAY, self.batch_period))

    sync_errors = (APIError, StaleInformerCache)
    """processNextServiceWorkItem: a sync that fails (an APIError, or a stale cache) goes to handleErr."""

    def handle_err(self, key) -> None:
        """handleErr: requeue through the rate limiter, or drop the key after ``maxRetries`` requeues."""
        if self.queue.failures.get(key, 0) < MAX_RETRIES:
            self.queue.add_rate_limited(key)
        else:
            self.queue.forget(key)

    def sync(self, key):
        """syncService: the Service's slices hold the endpoints of the pods it selects (or go, with the Service)."""
        svc = self.services.cache.get(key)
        ns, name = key.split("/", 1)
        existing = [  # (the index holds exactly the slices of this namespace labelled with this name)
            es
            for es in self.slices.by_index("service", ((ns, name),))
            if managed_by_controller(es)
            and not es["metadata"].get("deletionTimestamp")  # dropEndpointSlicesPendingDeletion
        ]
        if svc is None or not svc.get("spec", {}).get("selector"):
            for es in existing:  # the Service is gone (or selects nothing): its slices go too
                yield from self._delete(es)
            self.triggers.pop(key, None)
            if svc is None:
                self.tracker.delete_service(ns, name)
            return
        if self.tracker.stale_slices(svc, existing):
            self.stale_syncs += 1
            raise StaleInformerCache("EndpointSlice informer cache is out of date")
        selector = {"matchLabels": svc["spec"]["selector"]}
        pods = [
            p
            for p in self.pods.by_index("labels", [(ns, k, str(v)) for k, v in selector["matchLabels"].items()])
            if p["metadata"]["namespace"] == ns
            and p.get("status", {}).get("podIP")
            and p.get("spec", {}).get("nodeName")
            and p.get("status", {}).get("phase") not in ("Succeeded", "Failed")
            and label_selector_matches(selector, p["metadata"].get("labels") or {})
        ]
        ports = self._ports(svc, pods)
        desired = {p["status"]["podIP"]: self._endpoint_of(p) for p in pods}
        trigger = self.triggers.pop(key, self.engine.now)
        try:
            yield from self._reconcile(svc, existing, desired, ports, timestamp(trigger, micro=True))
        except APIError as err:
            message = f"Error updating Endpoint Slices for Service {key}: {err.message}"
            self.recorder.event(svc, "Warning", "FailedToUpdateEndpointSlices", message)
            raise

    def _endpoint_of(self, pod: Mapping) -> dict:
        """:meth:`_endpoint`, made once a version of the pod (its uid and resourceVersion) and shared by the syncs
        that read that version: a sync reads every pod of its Service, so each pod's change of a Service of E pods
        made E endpoints again (2.4 M of them, 14.6 s of 87 s profiled, in a probe storm of 800 pods on 80 nodes).
        An endpoint, once sent in a slice, is part of stored objects, which are never changed."""
        meta = pod["metadata"]
        key = (meta.get("uid"), meta.get("resourceVersion"))
        endpoint = self._endpoints.get(key)
        if endpoint is None:
            if len(self._endpoints) > 2 * len(self.pods.cache) + 1024:  # versions of pods gone or changed since
                self._endpoints.clear()
            endpoint = self._endpoints[key] = self._endpoint(pod)
        return endpoint

    @staticmethod
    def _endpoint(pod: Mapping) -> dict:
        """The pod's endpoint: its IP, conditions, node and reference."""
        terminating = bool(pod["metadata"].get("deletionTimestamp"))
        ready = pod_ready(pod)
        return {
            "addresses": [pod["status"]["podIP"]],
            "conditions": {"ready": ready and not terminating, "serving": ready, "terminating": terminating},
            "nodeName": pod["spec"]["nodeName"],
            "targetRef": {
                "kind": "Pod",
                "namespace": pod["metadata"]["namespace"],
                "name": pod["metadata"]["name"],
                "uid": pod["metadata"]["uid"],
            },
        }

    @staticmethod
    def _ports(svc: Mapping, pods: list[Mapping]) -> list[dict]:
        """The Service's ports with target ports resolved (a named one on the first pod that has it)."""
        out = []
        for p in svc["spec"].get("ports") or []:
            target = p.get("targetPort", p.get("port"))
            if isinstance(target, str):
                target = next(
                    (
                        c["containerPort"]
                        for pod in pods
                        for ct in pod["spec"].get("containers", [])
                        for c in ct.get("ports") or []
                        if c.get("name") == target
                    ),
                    None,
                )
                if target is None:
                    continue
            out.append({"name": p.get("name", ""), "port": target, "protocol": p.get("protocol", "TCP")})
        return out

    def _reconcile(self, svc: Mapping, existing: list[Mapping], desired: dict, ports: list[dict], trigger: str):
        """Process body: the reconciler: plan the slices (slices of an older Service of that name are deleted),
        pair creates with deletes (:func:`finalize`), then send the creates (not while the Service is being
        deleted), the updates and the deletes, recording each answer in the tracker."""
        stale_owner = [es for es in existing if not owned_by(es, svc)]
        plans = plan_slices([es for es in existing if owned_by(es, svc)], desired, self.max_endpoints)
        creates: list[dict] = []
        updates: list[dict] = []
        deletes: list[Mapping] = list(stale_owner)
        for es, endpoints in plans:
            if es is not None and not endpoints and (len(plans) > 1 or desired):
                deletes.append(es)
            elif es is None or es.get("endpoints") != endpoints or es.get("ports") != ports:
                body = self.copy(es) if es is not None else new_slice(svc)
                body["endpoints"], body["ports"] = endpoints, ports
                (updates if es is not None else creates).append(body)
        creates, updates, deletes = finalize(svc, creates, updates, deletes)
        ns = svc["metadata"]["namespace"]
        if svc["metadata"].get("deletionTimestamp"):
            creates = []
        for verb, bodies in (("create", creates), ("update", updates)):
            for body in bodies:
                body["metadata"].setdefault("annotations", {})[TRIGGER] = trigger
                written = yield self.client.call(verb, "endpointslices", namespace=ns, body=body)
                self.tracker.update(written)
        for es in deletes:
            yield from self._delete(es)

    def _delete(self, es: Mapping):
        """Process body: deleteEndpointSlice: delete a slice (one already gone counts as deleted) and expect to see
        its deletion."""
        if (yield from self.delete("endpointslices", es["metadata"]["namespace"], es["metadata"]["name"])):
            self.tracker.expect_deletion(es)


ANY_LABEL = object()
"""The entry of a Service whose selector's first value is null, a list or a mapping (Kubernetes would refuse each;
null matches a pod without that label): looked up with every pod of its namespace."""


def _selector_entry(svc: Mapping) -> tuple[tuple, ...]:
    """Where the Services a pod may belong to are found (:meth:`EndpointSliceController._services_of`): under
    (namespace, label, value) of their selector's first label, which a pod they select carries as it is; a Service
    without a selector under none (it selects no pod)."""
    selector = svc.get("spec", {}).get("selector")
    if not selector:
        return ()
    ns = svc["metadata"]["namespace"]
    key, value = next(iter(selector.items()))
    return ((ns, ANY_LABEL) if value is None or isinstance(value, list | dict) else (ns, key, value),)


def _namespaced_labels(pod: Mapping) -> list[tuple[str, str, str]]:
    """(namespace, label, value) of each of the pod's labels: the pods a Service selects are among those indexed
    under (its namespace, label, the value as a string) for every label of its selector (``label_selector_matches``
    compares a label's value with the selector's as a string: a value that is not a string matches none)."""
    ns = pod["metadata"]["namespace"]
    return [(ns, k, v) for k, v in (pod["metadata"].get("labels") or {}).items() if isinstance(v, str)]


def _slice_service(es: Mapping) -> tuple[tuple, ...]:
    """Where a Service's slices are found (:meth:`EndpointSliceController.sync`): under (namespace, the value of
    their ``kubernetes.io/service-name`` label); a slice without the label, or whose label is not a string (which
    equals no Service's name), under none."""
    name = (es["metadata"].get("labels") or {}).get(SERVICE_NAME)
    return ((es["metadata"]["namespace"], name),) if isinstance(name, str) else ()
