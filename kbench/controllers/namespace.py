"""Namespace controller (pkg/controller/namespace, v1.35).

A namespace being deleted has its content deleted, resource by resource; once nothing is left its ``kubernetes``
finalizer is removed (finalize subresource) and the apiserver deletes it. Workers: ``--concurrent-namespace-syncs``.
Its client runs at 20 x ``--kube-api-qps`` and 100 x ``--kube-api-burst`` (startNamespaceController: "the
namespace cleanup controller is very chatty").
"""

from __future__ import annotations

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
    "events",
)
"""What the namespace controller deletes (the namespaced resources kbench serves)."""
CLIENT_QPS_FACTOR, CLIENT_BURST_FACTOR = 20, 100
"""cmd/kube-controller-manager/app/core.go startNamespaceController: nsKubeconfig.QPS *= 20, Burst *= 100."""
RECHECK = 1.0
"""Seconds until a namespace whose content is still going is looked at again."""


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
            self.queue.add_after(key, RECHECK)  # wait for the content to go, then finalize
            return
        body = self.copy(ns)
        body["spec"]["finalizers"] = [f for f in body["spec"].get("finalizers", []) if f != "kubernetes"]
        yield self.client.call("update", "namespaces", body=body, subresource="finalize")
