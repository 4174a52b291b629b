"""NodeName (``plugins/nodename``): a pod naming a node (``spec.nodeName``) fits only that node."""

from __future__ import annotations

import numpy as np

from kbench.api.core import Pod
from kbench.scheduler.interface import SUCCESS, UNRESOLVABLE, Plugin

REASON = "node(s) didn't match the requested node name"


class NodeName(Plugin):
    """Filter: a pod naming a node fits only that node."""

    name = "NodeName"
    points = ("filter",)
    events = frozenset({("Node", "Add")})

    def filter(self, ctx, pod: Pod) -> np.ndarray:
        """UnschedulableAndUnresolvable on every node but the named one."""
        codes = np.zeros(self.state.num_nodes, np.int8)
        if pod.node_name:
            codes[:] = UNRESOLVABLE
            if pod.node_name in self.state.index:
                codes[self.state.index[pod.node_name]] = SUCCESS
        return codes

    def reasons(self, ctx, pod: Pod, node: int) -> tuple[str, ...]:
        """ErrReason."""
        return (REASON,)
