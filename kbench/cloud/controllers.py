"""cloud-controller-manager's controllers over the modelled cloud (k8s.io/cloud-provider, v1.35).

- node (controllers/node): a Node registered with the ``node.cloudprovider.kubernetes.io/uninitialized``
  taint gets its providerID, instance-type / zone / region labels from InstanceMetadata and loses the taint.
- node lifecycle (controllers/nodelifecycle): every 5 s, a Node that is not Ready and whose instance no
  longer exists is deleted.
- route (controllers/route): every ``--route-reconciliation-period`` 10 s, one cloud route per node
  pod CIDR; routes of gone nodes are deleted; each pass checks every node's NetworkUnavailable condition against
  its route (False when routed, True when the route failed) and writes it where it differs, as a fresh
  read-modify-write retried on 409 Conflict (updateNetworkConditionBackoff); a write that fails is tried again
  next pass.
- service (controllers/service): a LoadBalancer Service gets the ``service.kubernetes.io/load-balancer-cleanup``
  finalizer, then a load balancer whose backends are the ready nodes and whose ingress IP goes to
  ``status.loadBalancer.ingress``; node changes update every balancer's backends; deleting the Service
  deletes its balancer, then removes the finalizer.
"""

from __future__ import annotations

import contextlib

from kbench.apiserver.objects import APIError
from kbench.client import Backoff, update_fresh
from kbench.cloud.provider import Cloud, CloudError
from kbench.controllers.base import Controller, Manager, condition

UNINITIALIZED = "node.cloudprovider.kubernetes.io/uninitialized"
LB_FINALIZER = "service.kubernetes.io/load-balancer-cleanup"
EXCLUDE_LB = "node.kubernetes.io/exclude-from-external-load-balancers"
NODE_MONITOR_PERIOD = 5.0
ROUTE_RECONCILIATION_PERIOD = 10.0
UPDATE_NETWORK_CONDITION_BACKOFF = Backoff(5, 0.100, jitter=1.0)
CCM_QPS, CCM_BURST = 20.0, 30


class CloudNodeController(Controller):
    name = "cloud-node-controller"

    def __init__(self, manager: Manager, cloud: Cloud) -> None:
        super().__init__(manager)
        self.cloud = cloud
        self.nodes = manager.informer("nodes")
        self.nodes.add_handler(on_add=self.enqueue, on_update=self.enqueue)

    def sync(self, key):
        node = self.nodes.cache.get(key)
        if node is None or not any(t["key"] == UNINITIALIZED for t in node.get("spec", {}).get("taints") or []):
            return
        try:
            inst = yield self.cloud.instance_metadata(key)
        except CloudError as err:
            raise APIError(503, "ServiceUnavailable", str(err)) from None  # requeue with backoff
        body = self.copy(node)
        labels = body["metadata"].setdefault("labels", {})
        labels.update(
            {
                "node.kubernetes.io/instance-type": inst.instance_type,
                "topology.kubernetes.io/zone": inst.zone,
                "topology.kubernetes.io/region": inst.region,
            }
        )
        body["spec"]["providerID"] = inst.provider_id
        body["spec"]["taints"] = [t for t in body["spec"].get("taints") or [] if t["key"] != UNINITIALIZED]
        yield self.client.call("update", "nodes", body=body)


class CloudNodeLifecycleController(Controller):
    name = "cloud-node-lifecycle-controller"

    def __init__(self, manager: Manager, cloud: Cloud) -> None:
        super().__init__(manager)
        self.cloud = cloud
        self.nodes = manager.informer("nodes")

    def start(self) -> None:
        super().start()
        self.engine.process(self._monitor(), name="cloud-node-lifecycle")

    def _monitor(self):
        yield self.nodes.synced
        while not self.stopped:
            yield NODE_MONITOR_PERIOD
            for name, node in list(self.nodes.cache.items()):
                ready = condition(node, "Ready")
                if ready is not None and ready.get("status") == "True":
                    continue
                try:
                    exists = yield self.cloud.instance_exists(name)
                    if not exists:
                        yield self.client.call("delete", "nodes", name=name)
                except (CloudError, APIError):
                    continue


class RouteController(Controller):
    name = "route-controller"

    def __init__(self, manager: Manager, cloud: Cloud) -> None:
        super().__init__(manager)
        self.cloud = cloud
        self.nodes = manager.informer("nodes")

    def start(self) -> None:
        super().start()
        self.engine.process(self._reconcile(), name="route-controller")

    def _reconcile(self):
        yield self.nodes.synced
        while not self.stopped:
            for name, node in list(self.nodes.cache.items()):
                cidr = node.get("spec", {}).get("podCIDR")
                if not cidr:
                    continue
                ok = self.cloud.routes.get(name) == cidr
                if not ok:
                    try:
                        yield self.cloud.create_route(name, cidr)
                        ok = True
                    except CloudError:
                        pass
                yield from self._network_condition(name, ok)
            for name in [n for n in self.cloud.routes if n not in self.nodes.cache]:
                with contextlib.suppress(CloudError):  # retried next period
                    yield self.cloud.delete_route(name)
            yield ROUTE_RECONCILIATION_PERIOD

    def _network_condition(self, name: str, ok: bool):
        """Process body: updateNetworkingCondition."""
        node = self.nodes.cache.get(name)
        if node is None:
            return
        current = condition(node, "NetworkUnavailable")
        status = "False" if ok else "True"
        if current is not None and current.get("status") == status:
            return
        cond = {
            "type": "NetworkUnavailable",
            "status": status,
            "reason": "RouteCreated" if ok else "NoRouteCreated",
            "message": "RouteController created a route" if ok else "RouteController failed to create a route",
            "lastTransitionTime": self.now_stamp(),
        }

        def change(fresh) -> bool:
            conditions = fresh["status"].get("conditions") or []
            fresh["status"]["conditions"] = [c for c in conditions if c.get("type") != "NetworkUnavailable"] + [cond]
            return True

        with contextlib.suppress(APIError):  # checked again next period
            yield from update_fresh(
                self.client, "nodes", name, change, UPDATE_NETWORK_CONDITION_BACKOFF, subresource="status", current=node
            )


class ServiceController(Controller):
    name = "service-controller"

    def __init__(self, manager: Manager, cloud: Cloud) -> None:
        super().__init__(manager)
        self.cloud = cloud
        self.services = manager.informer("services")
        self.nodes = manager.informer("nodes")
        self.services.add_handler(on_add=self.enqueue, on_update=self.enqueue)
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
        svc = self.services.cache.get(key)
        if svc is None:
            return
        lb_name = f"a{svc['metadata']['uid']}"
        wants_lb = svc.get("spec", {}).get("type") == "LoadBalancer" and not svc["metadata"].get("deletionTimestamp")
        finalizers = svc["metadata"].get("finalizers") or []
        if not wants_lb:
            if LB_FINALIZER in finalizers:
                try:
                    yield self.cloud.delete_load_balancer(lb_name)
                except CloudError as err:
                    raise APIError(503, "ServiceUnavailable", str(err)) from None
                body = self.copy(svc)
                body["metadata"]["finalizers"] = [f for f in finalizers if f != LB_FINALIZER]
                yield self.client.call("update", "services", body=body)
            return
        if LB_FINALIZER not in finalizers:
            body = self.copy(svc)
            body["metadata"]["finalizers"] = [*finalizers, LB_FINALIZER]
            yield self.client.call("update", "services", body=body)
            return  # the update brings the Service back with the finalizer
        ports = [p.get("nodePort", 0) for p in svc["spec"].get("ports") or []]
        try:
            existing = self.cloud.load_balancers.get(lb_name)
            if existing is None or existing.ports != ports:
                lb = yield self.cloud.ensure_load_balancer(lb_name, self.backends(), ports)
            else:
                lb = yield self.cloud.update_load_balancer(lb_name, self.backends())
        except CloudError as err:
            raise APIError(503, "ServiceUnavailable", str(err)) from None
        ingress = [{"ip": lb.ip}]
        if svc.get("status", {}).get("loadBalancer", {}).get("ingress") != ingress:
            body = self.copy(svc)
            body["status"] = {"loadBalancer": {"ingress": ingress}}
            yield self.client.call("update", "services", body=body, subresource="status")


def cloud_controller_manager(
    server, cloud: Cloud, identity: str = "ccm-0", lease: str | None = "cloud-controller-manager"
) -> Manager:
    """A cloud-controller-manager instance with the node, node lifecycle, route and service controllers."""
    manager = Manager(server, "system:cloud-controller-manager", identity, CCM_QPS, CCM_BURST, lease)
    for cls in (CloudNodeController, CloudNodeLifecycleController, RouteController, ServiceController):
        cls(manager, cloud)
    return manager
