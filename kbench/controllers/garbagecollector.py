"""Garbage collector (pkg/controller/garbagecollector, v1.35).

Objects whose controlling owner (ownerReferences, by uid) no longer exists are deleted (background propagation),
once every owner informer has listed; foreground deletion and orphaning are not modelled. Workers:
``--concurrent-gc-syncs``; it runs only with ``--enable-garbage-collector``. Its deletes go through a client at
2 x ``--kube-api-qps`` (startGarbageCollectorController: "each object deletion takes two API calls").
"""

from __future__ import annotations

from collections.abc import Mapping

from kbench.apiserver.objects import RESOURCES
from kbench.client import Informer
from kbench.controllers.base import Controller, Manager

OWNED = ("pods", "replicasets", "endpointslices", "jobs")
"""The resources whose objects the collector checks for live owners."""
OWNERS = {
    "ReplicaSet": "replicasets",
    "Deployment": "deployments",
    "Job": "jobs",
    "Service": "services",
    "Node": "nodes",
}
"""Owner kind -> its resource."""
CLIENT_QPS_FACTOR = 2
"""cmd/kube-controller-manager/app/core.go startGarbageCollectorController: config.QPS *= 2."""


def owners_synced(informers: Mapping[str, Informer]) -> bool:
    """Whether every informer has listed (the graph builder's caches are synced)."""
    return all(inf.synced.triggered for inf in informers.values())


class GarbageCollector(Controller):
    """GarbageCollector: deletes what lost its controlling owner."""

    name = "garbage-collector-controller"
    client_name = "generic-garbage-collector"
    workers_option = "concurrent_gc_syncs"

    def __init__(self, manager: Manager) -> None:
        config = manager.builder.config_or_die(self.client_name).scaled(qps=CLIENT_QPS_FACTOR)
        super().__init__(manager, manager.builder.new_client(config))
        self.informers = {r: manager.informer(r) for r in dict.fromkeys((*OWNED, *OWNERS.values()))}
        for resource in OWNED:
            self.informers[resource].add_handler(
                on_add=lambda o, r=resource: self._check(r, o),
                on_update=lambda old, new, r=resource: self._check(r, new),
            )
        for resource in OWNERS.values():
            self.informers[resource].add_handler(on_delete=self._owner_gone)

    @staticmethod
    def runs(config) -> bool:
        """Only with ``--enable-garbage-collector``."""
        return bool(config.enable_garbage_collector)

    def _check(self, resource: str, obj: Mapping) -> None:
        if obj["metadata"].get("ownerReferences"):
            self.queue.add((resource, obj["metadata"].get("namespace", ""), obj["metadata"]["name"]))

    def _owner_gone(self, owner: Mapping) -> None:
        uid = owner["metadata"]["uid"]
        for resource in OWNED:
            for obj in self.informers[resource].cache.values():
                if any(ref.get("uid") == uid for ref in obj["metadata"].get("ownerReferences") or ()):
                    self._check(resource, obj)

    def _owner_lives(self, ns: str, ref: Mapping) -> bool:
        """Whether the owner ``ref`` names is in its informer with the same uid (kinds not watched count as live)."""
        owners = self.informers.get(OWNERS.get(ref.get("kind", ""), ""))
        if owners is None:
            return True
        scoped = RESOURCES[OWNERS[ref["kind"]]].namespaced
        owner = owners.cache.get(f"{ns}/{ref['name']}" if scoped else ref["name"])
        return owner is not None and owner["metadata"]["uid"] == ref.get("uid")

    def sync(self, key):
        """attemptToDeleteItem: delete the object when none of its owners lives."""
        resource, ns, name = key
        obj = self.informers[resource].cache.get(f"{ns}/{name}" if ns else name)
        if obj is None or obj["metadata"].get("deletionTimestamp"):
            return
        refs = obj["metadata"].get("ownerReferences") or []
        if any(self._owner_lives(ns, ref) for ref in refs) or not owners_synced(self.informers):
            return
        yield from self.delete(resource, ns, name)
