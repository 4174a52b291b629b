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

Events (recorder "endpoint-slice-controller"): a failed reconcile records ``FailedToUpdateEndpointSlices`` (Warning)
"Error updating Endpoint Slices for Service <ns>/<name>: <error>" about the Service (syncService).
"""

from __future__ import annotations

from collections.abc import Mapping

from kbench.api.selectors import label_selector_matches
from kbench.apiserver.objects import APIError, object_key, seconds, timestamp
from kbench.controllers.base import Controller, Manager, condition, owner_reference, pod_ready

MANAGED_BY = "endpointslice-controller.k8s.io"
TRIGGER = "endpoints.kubernetes.io/last-change-trigger-time"
"""The annotation with the earliest change a written slice reflects (kube-proxy's latency is measured from it)."""


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
        self.max_endpoints = self.config.max_endpoints_per_slice
        self.batch_period = self.config.endpointslice_updates_batch_period
        self.services = self.watch("services", self._service, lambda o, n: self._service(n), self.enqueue)
        self.pods = self.watch("pods", self._pod, self._pod_update, self._pod)
        self.slices = self.watch("endpointslices", on_delete=self._slice)
        self.triggers: dict[str, float] = {}

    def _trigger(self, key: str, at: float, delay: float = 0.0) -> None:
        self.triggers[key] = min(self.triggers.get(key, at), at)
        self.queue.add_after(key, delay)

    def _service(self, svc: Mapping) -> None:
        self._trigger(object_key(svc), self.engine.now)

    def _services_of(self, pod: Mapping):
        """Keys of the Services in the pod's namespace whose selector it matches (serviceSelectorCache)."""
        labels = pod["metadata"].get("labels") or {}
        ns = pod["metadata"]["namespace"]
        for key, svc in self.services.cache.items():
            selector = svc.get("spec", {}).get("selector")
            if selector and svc["metadata"]["namespace"] == ns and all(labels.get(k) == v for k, v in selector.items()):
                yield key

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

    def _slice(self, es: Mapping) -> None:
        name = (es["metadata"].get("labels") or {}).get("kubernetes.io/service-name")
        if name:
            self.queue.add(f"{es['metadata']['namespace']}/{name}")

    def sync(self, key):
        """syncService: the Service's slices hold the endpoints of the pods it selects (or go, with the Service)."""
        svc = self.services.cache.get(key)
        ns, name = key.split("/", 1)
        existing = [
            es
            for es in self.slices.cache.values()
            if es["metadata"]["namespace"] == ns
            and (es["metadata"].get("labels") or {}).get("kubernetes.io/service-name") == name
            and (es["metadata"].get("labels") or {}).get("endpointslice.kubernetes.io/managed-by") == MANAGED_BY
        ]
        if svc is None or not svc.get("spec", {}).get("selector"):
            for es in existing:  # the Service is gone (or selects nothing): its slices go too
                yield from self._delete(es)
            self.triggers.pop(key, None)
            return
        selector = {"matchLabels": svc["spec"]["selector"]}
        pods = [
            p
            for p in self.pods.cache.values()
            if p["metadata"]["namespace"] == ns
            and p.get("status", {}).get("podIP")
            and p.get("spec", {}).get("nodeName")
            and p.get("status", {}).get("phase") not in ("Succeeded", "Failed")
            and label_selector_matches(selector, p["metadata"].get("labels") or {})
        ]
        ports = self._ports(svc, pods)
        desired = {p["status"]["podIP"]: self._endpoint(p) for p in pods}
        trigger = self.triggers.pop(key, self.engine.now)
        try:
            yield from self._reconcile(svc, existing, desired, ports, timestamp(trigger, micro=True))
        except APIError as err:
            message = f"Error updating Endpoint Slices for Service {key}: {err.message}"
            self.recorder.event(svc, "Warning", "FailedToUpdateEndpointSlices", message)
            raise

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
        """Process body: the reconciler: write each planned slice that changed, delete the emptied ones."""
        plans = plan_slices(existing, desired, self.max_endpoints)
        for es, endpoints in plans:
            if es is not None and not endpoints and (len(plans) > 1 or desired):
                yield from self._delete(es)
                continue
            if es is not None and es.get("endpoints") == endpoints and es.get("ports") == ports:
                continue
            ns = svc["metadata"]["namespace"]
            body = self.copy(es) if es is not None else new_slice(svc)
            body["endpoints"], body["ports"] = endpoints, ports
            body["metadata"].setdefault("annotations", {})[TRIGGER] = trigger
            yield self.client.call("update" if es is not None else "create", "endpointslices", namespace=ns, body=body)

    def _delete(self, es: Mapping):
        """Process body: delete a slice."""
        yield from self.delete("endpointslices", es["metadata"]["namespace"], es["metadata"]["name"])
