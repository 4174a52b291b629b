"""NodePorts (``plugins/nodeports``): the pod's host ports must be free on the node."""

from __future__ import annotations

import numpy as np

from kbench.api.core import Pod
from kbench.scheduler.interface import SKIP, UNSCHEDULABLE, Plugin

REASON = "node(s) didn't have free ports for the requested pod ports"


def ports_conflict(used: list[tuple[str, str, int]], ip: str, protocol: str, port: int) -> bool:
    """HostPortInfo.CheckConflict: 0.0.0.0 on either side conflicts with any IP on the same protocol/port."""
    if port <= 0:
        return False
    ip, protocol = ip or "0.0.0.0", protocol or "TCP"
    for used_ip, used_protocol, used_port in used:
        if (
            used_port == port
            and used_protocol == protocol
            and (ip == "0.0.0.0" or used_ip == "0.0.0.0" or used_ip == ip)
        ):
            return True
    return False


class NodePorts(Plugin):
    """Filter: the pod's host ports must be free on the node."""

    name = "NodePorts"
    points = ("preFilter", "filter")
    dynamic = True
    events = frozenset({("Pod", "Delete"), ("Node", "Add")})

    def prefilter(self, pod: Pod):
        """The pod's host ports, or SKIP when it has none."""
        return pod.host_ports or SKIP

    def filter(self, ports, pod: Pod) -> np.ndarray:
        """Unschedulable where one of the ports is taken."""
        codes = np.zeros(self.state.num_nodes, np.int8)
        for i in range(self.state.num_nodes):
            used = self.state.used_ports(i)
            if used and any(ports_conflict(used, p.host_ip, p.protocol, p.host_port) for p in ports):
                codes[i] = UNSCHEDULABLE
        return codes

    def reasons(self, ctx, pod: Pod, node: int) -> tuple[str, ...]:
        """ErrReason."""
        return (REASON,)
