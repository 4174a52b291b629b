"""ServiceAccount controller (pkg/controller/serviceaccount/serviceaccounts_controller.go, v1.35).

Every active namespace gets a ``default`` ServiceAccount: created when the namespace appears, and again when it is
deleted while the namespace stays. One worker (``sac.Run(ctx, 1)`` in cmd/kube-controller-manager/app/core.go).
"""

from __future__ import annotations

from kbench.apiserver.objects import APIError
from kbench.controllers.base import Controller, Manager


class ServiceAccountController(Controller):
    """ServiceAccountsController: the ``default`` ServiceAccount of each namespace."""

    name = "serviceaccount-controller"
    client_name = "service-account-controller"
    resource = "namespaces"

    def __init__(self, manager: Manager) -> None:
        super().__init__(manager)
        self.accounts = self.watch("serviceaccounts", on_delete=lambda sa: self.queue.add(sa["metadata"]["namespace"]))

    def sync(self, key):
        """syncNamespace: create the namespace's ``default`` ServiceAccount if it is missing."""
        ns = self.primary.cache.get(key)
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
