"""NodeUnschedulable (``plugins/nodeunschedulable``): nodes marked unschedulable, unless the pod tolerates it."""

from __future__ import annotations

import numpy as np

from kbench.api.core import Pod, Taint
from kbench.scheduler.interface import SUCCESS, UNRESOLVABLE, Plugin

UNSCHEDULABLE_TAINT = Taint("node.kubernetes.io/unschedulable", "", "NoSchedule")
REASON = "node(s) were unschedulable"


class NodeUnschedulable(Plugin):
    """Filter: nodes marked unschedulable, unless the pod tolerates their unschedulable taint."""

    name = "NodeUnschedulable"
    points = ("filter",)
    events = frozenset({("Node", "Add"), ("Node", "Update")})

    def filter(self, ctx, pod: Pod) -> np.ndarray:
        """UnschedulableAndUnresolvable on unschedulable nodes, unless the pod tolerates the taint."""
        if any(t.tolerates(UNSCHEDULABLE_TAINT) for t in pod.tolerations):
            return np.zeros(self.state.num_nodes, np.int8)
        return np.where(self.state.unschedulable, UNRESOLVABLE, SUCCESS).astype(np.int8)

    def reasons(self, ctx, pod: Pod, node: int) -> tuple[str, ...]:
        """ErrReasonUnschedulable."""
        return (REASON,)
