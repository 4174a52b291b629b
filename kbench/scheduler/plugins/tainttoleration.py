"""TaintToleration (``plugins/tainttoleration``): NoSchedule/NoExecute taints filter, PreferNoSchedule ones score."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from kbench.api.core import Pod, Taint, Toleration
from kbench.scheduler.interface import NORMALIZE_REVERSE, SUCCESS, UNRESOLVABLE, Plugin
from kbench.scheduler.state import ClusterState

REASON = "node(s) had untolerated taint(s)"


def untolerated(taints: tuple[Taint, ...], tolerations: tuple[Toleration, ...], effects: tuple[str, ...]) -> Iterator:
    """The taints with one of ``effects`` that no toleration tolerates (v1helper.FindMatchingUntoleratedTaint)."""
    for taint in taints:
        if taint.effect in effects and not any(t.tolerates(taint) for t in tolerations):
            yield taint


def taints_tolerated(state: ClusterState, pod: Pod) -> np.ndarray:
    """Per node: every NoSchedule/NoExecute taint is tolerated by the pod."""
    return state.per_node(
        ("taints", pod.tolerations),
        lambda: np.array(
            [
                next(untolerated(n.taints, pod.tolerations, ("NoSchedule", "NoExecute")), None) is None
                for n in state.nodes
            ],
            bool,
        ),
    )


class TaintToleration(Plugin):
    """Filter: NoSchedule/NoExecute taints must be tolerated; score: fewer untolerated PreferNoSchedule taints."""

    name = "TaintToleration"
    points = ("filter", "preScore", "score")
    normalize = NORMALIZE_REVERSE
    events = frozenset({("Node", "Add"), ("Node", "Update")})

    def filter(self, ctx, pod: Pod) -> np.ndarray:
        """UnschedulableAndUnresolvable where a NoSchedule/NoExecute taint is not tolerated."""
        return np.where(taints_tolerated(self.state, pod), SUCCESS, UNRESOLVABLE).astype(np.int8)

    def reasons(self, ctx, pod: Pod, node: int) -> tuple[str, ...]:
        """The filter's reason."""
        return (REASON,)

    def prescore(self, pod: Pod, nodes: np.ndarray):
        """The pod's tolerations that count for scoring (effect PreferNoSchedule or empty)."""
        return tuple(t for t in pod.tolerations if t.effect in ("", "PreferNoSchedule"))

    def score(self, tolerations, pod: Pod, nodes: np.ndarray) -> np.ndarray:
        """Untolerated PreferNoSchedule taints per node (normalized in reverse)."""
        counts = self.state.per_node(
            ("prefer-no-schedule", tolerations),
            lambda: np.array(
                [sum(1 for _ in untolerated(n.taints, tolerations, ("PreferNoSchedule",))) for n in self.state.nodes],
                np.int64,
            ),
        )
        return counts[nodes]
