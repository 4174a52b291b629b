"""Cloud node lifecycle controller (k8s.io/cloud-provider/controllers/nodelifecycle, v1.35).

Every ``--node-monitor-period`` (5 s), a Node that is not Ready and whose instance no longer exists
(InstanceExists) is deleted. Not modelled: the shutdown taint for instances that exist but are shut down.
"""

from __future__ import annotations

from kbench.apiserver.objects import APIError
from kbench.cloud.base import CloudController
from kbench.cloud.provider import CloudError
from kbench.controllers.base import condition


class CloudNodeLifecycleController(CloudController):
    """CloudNodeLifecycleController: deletes the Nodes of instances that are gone."""

    name = "cloud-node-lifecycle-controller"
    client_name = "node-controller"

    def start(self) -> None:
        """MonitorNodes every ``--node-monitor-period`` (the first a period after the informer has listed)."""
        super().start()
        self.until(self.monitor_nodes, self.config.node_monitor_period, "cloud-node-lifecycle", [self.nodes], True)

    def monitor_nodes(self):
        """Process body: MonitorNodes: delete each not-ready Node whose instance does not exist."""
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
