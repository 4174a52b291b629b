"""Cloud node controller (k8s.io/cloud-provider/controllers/node, v1.35).

A Node registered with the ``node.cloudprovider.kubernetes.io/uninitialized`` taint gets its providerID and
instance-type / zone / region labels from InstanceMetadata and loses the taint (``--concurrent-node-syncs``
workers). Every ``--node-status-update-frequency`` (5m0s) UpdateNodeStatus reads each initialized node's instance
again (one InstanceMetadata call per node, one node at a time); the modelled instances never change their
addresses or labels, so nothing is written.
"""

from __future__ import annotations

from kbench.cloud.base import CloudController
from kbench.cloud.provider import CloudError

UNINITIALIZED = "node.cloudprovider.kubernetes.io/uninitialized"


def uninitialized(node) -> bool:
    """Whether the node still has the cloud provider's uninitialized taint."""
    return any(t["key"] == UNINITIALIZED for t in node.get("spec", {}).get("taints") or [])


class CloudNodeController(CloudController):
    """CloudNodeController: initializes new nodes from the cloud, and reads every node's instance periodically."""

    name = "cloud-node-controller"
    resource, workers_option = "nodes", "concurrent_node_syncs"

    def start(self) -> None:
        """The workers, and UpdateNodeStatus every ``--node-status-update-frequency``."""
        super().start()
        self.until(self.update_node_status, self.config.node_status_update_frequency, "cloud-node-status", [self.nodes])

    def update_node_status(self):
        """Process body: UpdateNodeStatus: InstanceMetadata of every initialized node (a failed call is skipped)."""
        for name, node in list(self.nodes.cache.items()):
            if uninitialized(node):
                continue  # syncNode's
            try:
                yield self.cloud.instance_metadata(name)
            except CloudError:
                continue

    def sync(self, key):
        """syncNode: initialize a node that has the uninitialized taint."""
        node = self.nodes.cache.get(key)
        if node is None or not uninitialized(node):
            return
        try:
            inst = yield self.cloud.instance_metadata(key)
        except CloudError as err:
            raise self.requeue(err) from None
        body = self.copy(node)
        body["metadata"].setdefault("labels", {}).update(
            {
                "node.kubernetes.io/instance-type": inst.instance_type,
                "topology.kubernetes.io/zone": inst.zone,
                "topology.kubernetes.io/region": inst.region,
            }
        )
        body["spec"]["providerID"] = inst.provider_id
        body["spec"]["taints"] = [t for t in body["spec"].get("taints") or [] if t["key"] != UNINITIALIZED]
        yield self.client.call("update", "nodes", body=body)
