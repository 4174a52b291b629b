"""Route controller (k8s.io/cloud-provider/controllers/route, v1.35).

Every ``--route-reconciliation-period`` (10 s), one cloud route per node pod CIDR; routes of gone nodes are
deleted; each pass checks every node's NetworkUnavailable condition against its route (False when routed, True
when the route failed) and writes it where it differs, as a fresh read-modify-write retried on 409 Conflict
(updateNetworkConditionBackoff); a write that fails is tried again next pass. It runs only with
``--allocate-node-cidrs`` and ``--configure-cloud-routes`` (startRouteController).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping

from kbench.apiserver.objects import APIError
from kbench.client import Backoff, update_fresh
from kbench.cloud.base import CloudController
from kbench.cloud.provider import CloudError
from kbench.controllers.base import condition

UPDATE_NETWORK_CONDITION_BACKOFF = Backoff(5, 0.100, jitter=1.0)
"""updateNetworkConditionBackoff (route_controller.go)."""


def network_condition(ok: bool, stamp: str) -> dict:
    """The NetworkUnavailable condition for a node whose route was made (``ok``) or failed."""
    return {
        "type": "NetworkUnavailable",
        "status": "False" if ok else "True",
        "reason": "RouteCreated" if ok else "NoRouteCreated",
        "message": "RouteController created a route" if ok else "RouteController failed to create a route",
        "lastTransitionTime": stamp,
    }


class RouteController(CloudController):
    """RouteController: cloud routes for the nodes' pod CIDRs and their NetworkUnavailable conditions."""

    name = "node-route-controller"
    client_name = "route-controller"

    @staticmethod
    def runs(config) -> bool:
        """Only with ``--allocate-node-cidrs`` and ``--configure-cloud-routes``."""
        return bool(config.routes())

    def start(self) -> None:
        """reconcileNodeRoutes every ``--route-reconciliation-period``, once the informer has listed."""
        super().start()
        self.until(self.reconcile, self.config.route_reconciliation_period, "route-controller", [self.nodes])

    def reconcile(self):
        """Process body: a route for every node with a pod CIDR, the conditions, and gone nodes' routes deleted."""
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

    def _network_condition(self, name: str, ok: bool):
        """Process body: updateNetworkingCondition."""
        node = self.nodes.cache.get(name)
        if node is None:
            return
        current = condition(node, "NetworkUnavailable")
        if current is not None and current.get("status") == ("False" if ok else "True"):
            return
        cond = network_condition(ok, self.now_stamp())

        def change(fresh: Mapping) -> bool:
            conditions = fresh["status"].get("conditions") or []
            fresh["status"]["conditions"] = [c for c in conditions if c.get("type") != "NetworkUnavailable"] + [cond]
            return True

        with contextlib.suppress(APIError):  # checked again next period
            yield from update_fresh(
                self.client, "nodes", name, change, UPDATE_NETWORK_CONDITION_BACKOFF, subresource="status", current=node
            )
