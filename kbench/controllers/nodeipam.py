"""Node IPAM controller, RangeAllocator (pkg/controller/nodeipam, v1.35).

Each Node gets a ``spec.podCIDR`` of ``--node-cidr-mask-size`` (24) out of ``--cluster-cidr``, written as a merge
patch of just the pod CIDRs (PatchNodeCIDRs: no resourceVersion, so the kubelet's status writes cannot make it
conflict), tried ``cidrUpdateRetries`` 3 times; a CIDR that could not be written is released (unless the server
timed out, reason ServerTimeout: the write may yet land). It runs only with ``--allocate-node-cidrs``
(startNodeIpamController). A CIDR that could not be written records ``CIDRAssignmentFailed`` "Node <n> status is
now: CIDRAssignmentFailed" about the Node (RecordNodeStatusChange; recorder "cidrAllocator").
"""

from __future__ import annotations

import ipaddress

from kbench.apiserver.objects import APIError
from kbench.controllers.base import Controller, Manager

CIDR_UPDATE_RETRIES = 3
"""cidrUpdateRetries (pkg/controller/nodeipam/ipam/range_allocator.go)."""


class NodeIpamController(Controller):
    """The range allocator: a pod CIDR for each Node."""

    name = "node-ipam-controller"
    client_name = "node-controller"
    event_source = "cidrAllocator"

    def __init__(self, manager: Manager) -> None:
        super().__init__(manager)
        self.nodes = self.watch("nodes", on_add=self.enqueue)
        network = ipaddress.ip_network(self.config.cluster_cidr)
        self.subnets = network.subnets(new_prefix=self.config.node_cidr_mask_size)
        """The cluster CIDR's node-sized subnets, handed out in order (cidrset's next candidate)."""
        self.used: set[str] = set()

    @staticmethod
    def runs(config) -> bool:
        """Only with ``--allocate-node-cidrs``."""
        return bool(config.allocate_node_cidrs)

    def sync(self, key):
        """AllocateOrOccupyCIDR: record a Node's CIDR, or give it the next free one."""
        node = self.nodes.cache.get(key)
        if node is None:
            return
        cidr = node.get("spec", {}).get("podCIDR")
        if cidr:
            self.used.add(cidr)
            return
        cidr = next(str(s) for s in self.subnets if str(s) not in self.used)
        self.used.add(cidr)
        yield from self._patch(key, cidr)

    def _patch(self, name: str, cidr: str):
        """Process body: updateCIDRsAllocation: PatchNodeCIDRs up to ``cidrUpdateRetries`` times."""
        for attempt in range(CIDR_UPDATE_RETRIES):
            try:
                yield self.client.call(
                    "patch", "nodes", name=name, body={"spec": {"podCIDR": cidr, "podCIDRs": [cidr]}}
                )
                return
            except APIError as err:
                if attempt + 1 == CIDR_UPDATE_RETRIES:
                    node = self.nodes.cache.get(name) or {"metadata": {"name": name}}
                    ref = {
                        "apiVersion": "v1",
                        "kind": "Node",
                        "metadata": {"name": name, "uid": node["metadata"].get("uid", "")},
                    }
                    message = f"Node {name} status is now: CIDRAssignmentFailed"
                    self.recorder.event(ref, "Normal", "CIDRAssignmentFailed", message)
                    if err.reason != "ServerTimeout":  # ReleaseCIDR unless IsServerTimeout (it may yet land)
                        self.used.discard(cidr)  # (upstream's cidrset hands it out again only after wrapping)
                    raise
