"""Namespace controller (pkg/controller/namespace, v1.35).

A namespace being deleted has its content deleted, resource by resource, as upstream's namespaced resources deleter
(pkg/controller/namespace/deletion/namespaced_resources_deleter.go ``deleteAllContentForGroupVersionResource``) does:
one DeleteCollection per resource that serves it (propagation Background, no grace period: pods terminate gracefully),
else a list and a delete of each item (``deleteEachItem``), then a list of what remains. Pods go first and the rest
waits until none is left (``OrderedNamespaceDeletion``, on by default). Once nothing is left its ``kubernetes``
finalizer is removed (finalize subresource) and the apiserver deletes it. Workers: ``--concurrent-namespace-syncs``.
Its client runs at 20 x ``--kube-api-qps`` and 100 x ``--kube-api-burst`` (startNamespaceController: "the
namespace cleanup controller is very chatty").
"""

from __future__ import annotations

from kbench.apiserver.objects import RESOURCES
from kbench.controllers.base import Controller, Manager

CONTENT = (
    "pods",
    "replicasets",
    "deployments",
    "jobs",
    "services",
    "endpointslices",
    "leases",
    "serviceaccounts",
    "configmaps",
    "secrets",
    "events",
    "poddisruptionbudgets",
)
"""What the namespace controller deletes (the namespaced resources kbench serves), pods first."""
CLIENT_QPS_FACTOR, CLIENT_BURST_FACTOR = 20, 100
"""cmd/kube-controller-manager/app/core.go startNamespaceController: nsKubeconfig.QPS *= 20, Burst *= 100."""
RECHECK = 1.0
"""Seconds until a namespace whose content is still going is looked at again."""
BACKGROUND = {"propagationPolicy": "Background"}
"""The DeleteOptions of every delete the deleter makes: the garbage collector must not orphan (no grace period)."""


class NamespaceController(Controller):
    """NamespaceController: deletes a terminating namespace's content, then finalizes it."""

    name = "namespace-controller"
    resource, workers_option = "namespaces", "concurrent_namespace_syncs"

    def __init__(self, manager: Manager) -> None:
        config = manager.builder.config_or_die(self.name).scaled(CLIENT_QPS_FACTOR, CLIENT_BURST_FACTOR)
        super().__init__(manager, manager.builder.new_client(config))

    def sync(self, key):
        """syncNamespaceFromKey: delete what is left in the namespace, or finalize it when nothing is."""
        ns = self.primary.cache.get(key)
        if ns is None or not ns["metadata"].get("deletionTimestamp"):
            return
        remaining = yield from self.delete_content(key, CONTENT[0])
        if not remaining:  # OrderedNamespaceDeletion: the other resources once no pod is left
            for resource in CONTENT[1:]:
                remaining += yield from self.delete_content(key, resource)
        if remaining:
            self.queue.add_after(key, RECHECK)  # wait for the content to go, then finalize
            return
        body = self.copy(ns)
        body["spec"]["finalizers"] = [f for f in body["spec"].get("finalizers", []) if f != "kubernetes"]
        yield self.client.call("update", "namespaces", body=body, subresource="finalize")

    def delete_content(self, namespace: str, resource: str):
        """Process body, deleteAllContentForGroupVersionResource: delete the collection (or each item where the
        resource has no DeleteCollection), then list; returns how many objects remain."""
        if RESOURCES[resource].delete_collection:
            yield self.client.call("deletecollection", resource, namespace=namespace, **BACKGROUND)
        else:
            yield from self.delete_each_item(namespace, resource)
        listed = yield self.client.call("list", resource, namespace=namespace)
        return len(listed["items"])

    def delete_each_item(self, namespace: str, resource: str):
        """Process body, deleteEachItem: list the resource and delete every item (one already gone is fine)."""
        listed = yield self.client.call("list", resource, namespace=namespace)
        for obj in listed["items"]:
            yield from self.delete(resource, namespace, obj["metadata"]["name"], **BACKGROUND)
