"""kube-scheduler plugins, as vectorized NumPy references over :class:`~kbench.scheduler.state.ClusterState`.

Each plugin follows its upstream counterpart (``pkg/scheduler/framework/plugins/<dir>``)
at the pinned release. ``filter`` returns a status code per node (all nodes at
once); ``reasons`` gives the upstream reason strings of one failing node;
``score`` returns raw scores for the given nodes and ``normalize`` names the
NormalizeScore the framework applies. The fused Numba kernel takes these
plugins' per-node arrays (or, for the resource plugins, their parameters) and
must reach the same placements.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from kbench.api.core import Pod
from kbench.scheduler.state import ClusterState

SUCCESS, UNSCHEDULABLE, UNRESOLVABLE = 0, 1, 2
CODE_NAMES = ("Success", "Unschedulable", "UnschedulableAndUnresolvable")
SKIP = object()
"""Returned by prefilter/prescore when the plugin has nothing to do for this pod (upstream's Skip)."""

NORMALIZE_NONE, NORMALIZE_DEFAULT, NORMALIZE_REVERSE, NORMALIZE_SPREAD, NORMALIZE_MINMAX = range(5)
MAX_NODE_SCORE = 100


class Rejection(Exception):
    """A PreFilter verdict that makes every node infeasible (message is PreFilterMsg)."""

    def __init__(self, code: int, reasons: tuple[str, ...]) -> None:
        super().__init__("; ".join(reasons))
        self.code, self.reasons = code, reasons
        self.plugin = ""


class Plugin:
    """Base of the modelled plugins; subclasses implement the extension points they have upstream."""

    name = ""
    normalize = NORMALIZE_NONE
    dynamic = False
    """True if the plugin's per-node results for a pod change when other pods bind."""

    def __init__(self, args: dict[str, Any], state: ClusterState) -> None:
        self.args, self.state = args, state

    def prefilter(self, pod: Pod) -> Any:
        """Per-pod precomputation (or SKIP); raises :class:`Rejection` to reject the pod outright."""
        return None

    def prefilter_nodes(self, ctx: Any) -> set[str] | None:
        """PreFilterResult: the only nodes worth filtering (None: all)."""
        return None

    def filter(self, ctx: Any, pod: Pod) -> np.ndarray:
        """Status code per node (int8; 0 = Success)."""
        return np.zeros(self.state.num_nodes, np.int8)

    def reasons(self, ctx: Any, pod: Pod, node: int) -> tuple[str, ...]:
        """Upstream's reason strings for a node this plugin filtered out."""
        return ()

    def prescore(self, pod: Pod, nodes: np.ndarray) -> Any:
        """Per-pod scoring precomputation over the nodes to be scored, or SKIP."""
        return None

    def score(self, ctx: Any, pod: Pod, nodes: np.ndarray) -> np.ndarray:
        """Raw scores (int64) for ``nodes``."""
        raise NotImplementedError


def default_normalize(raw: np.ndarray, reverse: bool) -> np.ndarray:
    """framework helper DefaultNormalizeScore(MaxNodeScore, reverse, scores)."""
    top = int(raw.max()) if len(raw) else 0
    if top == 0:
        return np.full(len(raw), MAX_NODE_SCORE if reverse else 0, np.int64)
    out = MAX_NODE_SCORE * raw // top
    return MAX_NODE_SCORE - out if reverse else out
