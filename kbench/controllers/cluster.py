"""Housekeeping controllers of kube-controller-manager (v1.35): ServiceAccount, Namespace, garbage collector,
node IPAM.

- ServiceAccount (pkg/controller/serviceaccount): a ``default`` ServiceAccount in every active namespace.
- Namespace (pkg/controller/namespace): a namespace being deleted has its content deleted, resource by
  resource; once nothing is left its ``kubernetes`` finalizer is removed (finalize subresource) and the
  apiserver deletes it.
- Garbage collector (pkg/controller/garbagecollector): objects whose controlling owner (ownerReferences,
  by uid) no longer exists are deleted (background propagation); foreground deletion and orphaning are not
  modelled.
- Node IPAM (pkg/controller/nodeipam, RangeAllocator): each Node gets a ``spec.podCIDR`` of
  ``--node-cidr-mask-size`` 24 out of ``--cluster-cidr``, written as a merge patch of just the pod CIDRs
  (PatchNodeCIDRs: no resourceVersion, so the kubelet's status writes cannot make it conflict), tried
  ``cidrUpdateRetries`` 3 times; a CIDR that could not be written is released (unless the server timed out,
  reason ServerTimeout: the write may yet land).
"""

from __future__ import annotations

import ipaddress

from kbench.apiserver.objects import RESOURCES, APIError
from kbench.controllers.base import Controller

CONTENT = (
    "pods",
    "replicasets",
    "deployments",
    "jobs",
    "services",
    "endpointslices",
    "leases",
    "serviceaccounts",
    "events",
)
"""What the namespace controller deletes (the namespaced resources kbench serves)."""
CIDR_UPDATE_RETRIES = 3
OWNED = ("pods", "replicasets", "endpointslices", "jobs")
OWNERS = {
    "ReplicaSet": "replicasets",
    "Deployment": "deployments",
    "Job": "jobs",
    "Service": "services",
    "Node": "nodes",
}


class ServiceAccountController(Controller):
    name = "serviceaccount-controller"

    def __init__(self, manager) -> None:
        super().__init__(manager)
        self.namespaces = manager.informer("namespaces")
        self.accounts = manager.informer("serviceaccounts")
        self.namespaces.add_handler(on_add=self.enqueue, on_update=self.enqueue)
        self.accounts.add_handler(on_delete=lambda sa: self.queue.add(sa["metadata"]["namespace"]))

    def sync(self, key):
        ns = self.namespaces.cache.get(key)
        if ns is None or ns.get("status", {}).get("phase") == "Terminating":
            return
        if f"{key}/default" in self.accounts.cache:
            return
        try:
            yield self.client.call(
                "create", "serviceaccounts", namespace=key, body={"metadata": {"name": "default", "namespace": key}}
            )
        except APIError as err:
            if err.code != 409:
                raise


class NamespaceController(Controller):
    name = "namespace-controller"
    workers = 10  # --concurrent-namespace-syncs

    def __init__(self, manager) -> None:
        super().__init__(manager)
        self.namespaces = manager.informer("namespaces")
        self.namespaces.add_handler(on_add=self.enqueue, on_update=self.enqueue)

    def sync(self, key):
        ns = self.namespaces.cache.get(key)
        if ns is None or not ns["metadata"].get("deletionTimestamp"):
            return
        remaining = 0
        for resource in CONTENT:
            listed = yield self.client.call("list", resource, namespace=key)
            for obj in listed["items"]:
                remaining += 1
                if obj["metadata"].get("deletionTimestamp"):
                    continue
                yield from self.delete(
                    resource, key, obj["metadata"]["name"], gracePeriodSeconds=0 if resource == "pods" else None
                )
        if remaining:
            self.queue.add_after(key, 1.0)  # wait for the content to go, then finalize
            return
        body = self.copy(ns)
        body["spec"]["finalizers"] = [f for f in body["spec"].get("finalizers", []) if f != "kubernetes"]
        yield self.client.call("update", "namespaces", body=body, subresource="finalize")


class GarbageCollector(Controller):
    name = "garbage-collector"
    workers = 20  # --concurrent-gc-syncs

    def __init__(self, manager) -> None:
        super().__init__(manager)
        self.informers = {r: manager.informer(r) for r in {*OWNED, *OWNERS.values()}}
        for resource in OWNED:
            self.informers[resource].add_handler(
                on_add=lambda o, r=resource: self._check(r, o),
                on_update=lambda old, new, r=resource: self._check(r, new),
            )
        for resource in OWNERS.values():
            self.informers[resource].add_handler(on_delete=self._owner_gone)

    def _check(self, resource: str, obj) -> None:
        if obj["metadata"].get("ownerReferences"):
            self.queue.add((resource, obj["metadata"].get("namespace", ""), obj["metadata"]["name"]))

    def _owner_gone(self, owner) -> None:
        uid = owner["metadata"]["uid"]
        for resource in OWNED:
            for obj in self.informers[resource].cache.values():
                if any(ref.get("uid") == uid for ref in obj["metadata"].get("ownerReferences") or ()):
                    self._check(resource, obj)

    def sync(self, key):
        resource, ns, name = key
        obj = self.informers[resource].cache.get(f"{ns}/{name}" if ns else name)
        if obj is None or obj["metadata"].get("deletionTimestamp"):
            return
        refs = obj["metadata"].get("ownerReferences") or []
        live = []
        for ref in refs:
            owners = self.informers.get(OWNERS.get(ref.get("kind"), ""))
            if owners is None:
                live.append(ref)
                continue
            scoped = RESOURCES[OWNERS[ref["kind"]]].namespaced
            owner = owners.cache.get(f"{ns}/{ref['name']}" if scoped else ref["name"])
            if owner is not None and owner["metadata"]["uid"] == ref.get("uid"):
                live.append(ref)
        if live or not owners_synced(self.informers):
            return
        yield from self.delete(resource, ns, name)


def owners_synced(informers) -> bool:
    return all(inf.synced.triggered for inf in informers.values())


class NodeIpamController(Controller):
    name = "node-ipam-controller"

    def __init__(self, manager, cluster_cidr: str = "10.0.0.0/8", mask: int = 24) -> None:
        super().__init__(manager)
        self.nodes = manager.informer("nodes")
        self.nodes.add_handler(on_add=self.enqueue)
        self.subnets = ipaddress.ip_network(cluster_cidr).subnets(new_prefix=mask)
        self.used: set[str] = set()

    def sync(self, key):
        node = self.nodes.cache.get(key)
        if node is None:
            return
        cidr = node.get("spec", {}).get("podCIDR")
        if cidr:
            self.used.add(cidr)
            return
        cidr = next(str(s) for s in self.subnets if str(s) not in self.used)
        self.used.add(cidr)
        for attempt in range(CIDR_UPDATE_RETRIES):
            try:
                yield self.client.call("patch", "nodes", name=key, body={"spec": {"podCIDR": cidr, "podCIDRs": [cidr]}})
                return
            except APIError as err:
                if attempt + 1 == CIDR_UPDATE_RETRIES:
                    if err.reason != "ServerTimeout":  # ReleaseCIDR unless IsServerTimeout (it may yet land)
                        self.used.discard(cidr)  # (upstream's cidrset hands it out again only after wrapping)
                    raise
