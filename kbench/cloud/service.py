"""Service (load balancer) controller (k8s.io/cloud-provider/controllers/service, v1.35).

A LoadBalancer Service gets the ``service.kubernetes.io/load-balancer-cleanup`` finalizer, then a load balancer whose
backends are the ready nodes and whose ingress IP goes to ``status.loadBalancer.ingress``; node changes update every
balancer's backends; deleting the Service deletes its balancer, then removes the finalizer. Workers:
``--concurrent-service-syncs``.
"""

from __future__ import annotations

from collections.abc import Mapping

from kbench.cloud.base import CloudController
from kbench.cloud.provider import Cloud, CloudError
from kbench.controllers.base import Manager, condition

LB_FINALIZER = "service.kubernetes.io/load-balancer-cleanup"
EXCLUDE_LB = "node.kubernetes.io/exclude-from-external-load-balancers"


class ServiceController(CloudController):
    """The service controller: a cloud load balancer for each LoadBalancer Service."""

    name = "service-lb-controller"
    client_name = "service-controller"
    resource, workers_option = "services", "concurrent_service_syncs"

    def __init__(self, manager: Manager, cloud: Cloud) -> None:
        super().__init__(manager, cloud)
        self.services = self.primary
        self.nodes.add_handler(on_add=self._nodes_changed, on_update=self._nodes_changed, on_delete=self._nodes_changed)
        self._backends: tuple[str, ...] | None = None

    def backends(self) -> list[str]:
        """Nodes a balancer sends traffic to: ready, and not excluded by label."""
        return sorted(
            name
            for name, node in self.nodes.cache.items()
            if (condition(node, "Ready") or {}).get("status") == "True"
            and EXCLUDE_LB not in (node["metadata"].get("labels") or {})
        )

    def _nodes_changed(self, *_) -> None:
        current = tuple(self.backends())
        if current != self._backends:
            self._backends = current
            for key, svc in self.services.cache.items():
                if svc.get("spec", {}).get("type") == "LoadBalancer":
                    self.queue.add(key)

    def sync(self, key):
        """syncService: ensure (or delete) the Service's load balancer, with its finalizer and status."""
        svc = self.services.cache.get(key)
        if svc is None:
            return
        wants_lb = svc.get("spec", {}).get("type") == "LoadBalancer" and not svc["metadata"].get("deletionTimestamp")
        finalizers = svc["metadata"].get("finalizers") or []
        if not wants_lb:
            if LB_FINALIZER in finalizers:
                yield from self._delete_load_balancer(svc, finalizers)
            return
        if LB_FINALIZER not in finalizers:
            body = self.copy(svc)
            body["metadata"]["finalizers"] = [*finalizers, LB_FINALIZER]
            yield self.client.call("update", "services", body=body)
            return  # the update brings the Service back with the finalizer
        yield from self._ensure_load_balancer(svc)

    def _delete_load_balancer(self, svc: Mapping, finalizers: list[str]):
        """Process body: EnsureLoadBalancerDeleted, then the finalizer removed."""
        try:
            yield self.cloud.delete_load_balancer(f"a{svc['metadata']['uid']}")
        except CloudError as err:
            raise self.requeue(err) from None
        body = self.copy(svc)
        body["metadata"]["finalizers"] = [f for f in finalizers if f != LB_FINALIZER]
        yield self.client.call("update", "services", body=body)

    def _ensure_load_balancer(self, svc: Mapping):
        """Process body: EnsureLoadBalancer (or UpdateLoadBalancer when only backends may differ), then the ingress
        written to the Service's status."""
        lb_name = f"a{svc['metadata']['uid']}"
        ports = [p.get("nodePort", 0) for p in svc["spec"].get("ports") or []]
        try:
            existing = self.cloud.load_balancers.get(lb_name)
            if existing is None or existing.ports != ports:
                lb = yield self.cloud.ensure_load_balancer(lb_name, self.backends(), ports)
            else:
                lb = yield self.cloud.update_load_balancer(lb_name, self.backends())
        except CloudError as err:
            raise self.requeue(err) from None
        ingress = [{"ip": lb.ip}]
        if svc.get("status", {}).get("loadBalancer", {}).get("ingress") != ingress:
            body = self.copy(svc)
            body["status"] = {"loadBalancer": {"ingress": ingress}}
            yield self.client.call("update", "services", body=body, subresource="status")
