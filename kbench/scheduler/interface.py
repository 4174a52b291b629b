"""The plugin interface (``pkg/scheduler/framework/interface.go``): statuses, the Plugin base and its Handle.

A plugin is a class in ``kbench/scheduler/plugins/<upstream package>.py`` registered under its upstream name
in :mod:`kbench.scheduler.plugins.registry`. It implements the extension points it has upstream (listed in
``points``) as vectorized NumPy references over :class:`~kbench.scheduler.state.ClusterState`, and supplies its
own inputs to the compiled kernel (:meth:`Plugin.plan_filter`, :meth:`Plugin.plan_score`). The conformance
suite (``tests/conformance/test_plugins.py``) checks every registered plugin.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from kbench.api.core import Pod
from kbench.scheduler.plan import (
    NORMALIZE_DEFAULT,
    NORMALIZE_MINMAX,
    NORMALIZE_NONE,
    NORMALIZE_REVERSE,
    NORMALIZE_SPREAD,
    PlanBuilder,
)
from kbench.scheduler.state import ClusterState

__all__ = [
    "CODE_NAMES",
    "MAX_NODE_SCORE",
    "NORMALIZE_DEFAULT",
    "NORMALIZE_MINMAX",
    "NORMALIZE_NONE",
    "NORMALIZE_REVERSE",
    "NORMALIZE_SPREAD",
    "SKIP",
    "SUCCESS",
    "UNRESOLVABLE",
    "UNSCHEDULABLE",
    "Handle",
    "Plugin",
    "Rejection",
    "default_normalize",
    "fit_error_message",
]

SUCCESS, UNSCHEDULABLE, UNRESOLVABLE = 0, 1, 2
"""Filter status codes: Success, Unschedulable, UnschedulableAndUnresolvable."""
CODE_NAMES = ("Success", "Unschedulable", "UnschedulableAndUnresolvable")
SKIP = object()
"""Returned by prefilter/prescore when the plugin has nothing to do for this pod (upstream's Skip)."""

MAX_NODE_SCORE = 100


def fit_error_message(num_nodes: int, counts: Counter[str]) -> str:
    """FitError.Error(): '0/N nodes are available: <count> <reason>, ...' with the parts sorted as strings
    (``counts``: nodes per reason string, upstream's Diagnosis.NodeToStatus folded by reason)."""
    parts = sorted(f"{count} {reason}" for reason, count in counts.items())
    return f"0/{num_nodes} nodes are available: {', '.join(parts)}."


class Rejection(Exception):
    """A PreFilter verdict that makes every node infeasible (message is PreFilterMsg)."""

    def __init__(self, code: int, reasons: tuple[str, ...]) -> None:
        super().__init__("; ".join(reasons))
        self.code, self.reasons = code, reasons
        self.plugin = ""


@dataclass
class Handle:
    """What a plugin may use besides its args (upstream's framework.Handle).

    Parameters
    ----------
    state : ClusterState
        The scheduler's snapshot of nodes and bound pods.
    default_selector : callable, optional
        ``pod -> labelSelector`` of its Services and controllers (PodTopologySpread's system defaults).
    binder : callable, optional
        ``binder(pod, node_name) -> Event``: the binding request (DefaultBinder's clientset).
    framework : Framework, optional
        The framework running the plugin (RunFilterPluginsWithNominatedPods, the nominator), for PostFilter.
    pdbs : callable, optional
        ``() -> list of PodDisruptionBudget``: the PDB lister (DefaultPreemption).
    """

    state: ClusterState
    default_selector: Callable[[Pod], dict | None] | None = None
    binder: Callable[[Pod, str], Any] | None = None
    framework: Any = None
    pdbs: Callable[[], list] | None = None


def default_normalize(raw: np.ndarray, reverse: bool) -> np.ndarray:
    """helper.DefaultNormalizeScore(MaxNodeScore, reverse, scores)."""
    top = int(raw.max()) if len(raw) else 0
    if top == 0:
        return np.full(len(raw), MAX_NODE_SCORE if reverse else 0, np.int64)
    out = MAX_NODE_SCORE * raw // top
    return MAX_NODE_SCORE - out if reverse else out


class Plugin:
    """Base of the modelled plugins; a subclass implements the extension points it has upstream.

    Class attributes
    ----------------
    name : str
        Upstream's plugin name (the registry key and the KubeSchedulerConfiguration name).
    points : tuple of str
        The extension points it implements upstream (``config.PLUGINS[name]``).
    normalize : int
        Its NormalizeScore kind (``NORMALIZE_*``), for the kernel and :meth:`normalize_score`.
    dynamic : bool
        Its per-node results for a pod change when other pods bind (the pod's compiled plan is used once).
    walks : mapping
        Extension point (``"filter"`` for PreFilter, ``"score"`` for PreScore) -> the unit cost in the profile's
        ``scheduler`` section charged per cluster node when that step walks every node (``scheduler.Costs``).
    events : frozenset of (kind, action)
        Cluster events that may make a pod it rejected schedulable (EventsToRegister, coarsened).

    Reference extension points: :meth:`sort_key` (QueueSort), :meth:`prefilter`, :meth:`prefilter_nodes`,
    :meth:`filter`, :meth:`reasons`, :meth:`prescore`, :meth:`score`, :meth:`normalize_score`, :meth:`post_filter`,
    :meth:`bind`.
    Compiled path: :meth:`plan_filter` and :meth:`plan_score` put the plugin's part of a pod's plan into a
    :class:`~kbench.scheduler.plan.PlanBuilder`.
    The defaults evaluate the reference once per pod (a node mask, or raw scores the kernel normalizes); a plugin
    the kernel evaluates itself (its result changes with each bind, or depends on which nodes are scored)
    overrides them to fill its own slot of the plan, and the kernel gains the code that reads it.
    """

    name: ClassVar[str] = ""
    points: ClassVar[tuple[str, ...]] = ()
    normalize: ClassVar[int] = NORMALIZE_NONE
    dynamic: ClassVar[bool] = False
    walks: ClassVar[Mapping[str, str]] = {}
    events: ClassVar[frozenset[tuple[str, str]]] = frozenset()

    def __init__(self, args: dict[str, Any], handle: Handle) -> None:
        self.args, self.handle, self.state = args, handle, handle.state

    # -- reference extension points ---------------------------------------------------------------
    def sort_key(self, info: Any) -> tuple:
        """QueueSort's Less as a heap key of a queued pod (``less(a, b)`` iff ``sort_key(a) < sort_key(b)``)."""
        raise NotImplementedError(f"{self.name} has no QueueSort extension point")

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
        raise NotImplementedError(f"{self.name} has no Score extension point")

    def post_filter(self, pod: Pod, now: float = 0.0) -> Any:
        """PostFilter after a failed cycle: a preemption :class:`~kbench.scheduler.preemption.Outcome`."""
        raise NotImplementedError(f"{self.name} has no PostFilter extension point")

    def bind(self, pod: Pod, node: str) -> Any:
        """Bind: start binding ``pod`` to ``node``; the returned event fires when it is answered (or SKIP)."""
        raise NotImplementedError(f"{self.name} has no Bind extension point")

    def normalize_score(self, raw: np.ndarray, ctx: Any, nodes: np.ndarray) -> np.ndarray:
        """NormalizeScore over the scored ``nodes`` (DefaultNormalizeScore, its reverse, or none)."""
        if self.normalize in (NORMALIZE_DEFAULT, NORMALIZE_REVERSE):
            return default_normalize(raw, self.normalize == NORMALIZE_REVERSE)
        return raw

    # -- the compiled path --------------------------------------------------------------------------
    def plan_filter(self, ctx: Any, pod: Pod, plan: PlanBuilder) -> None:
        """Put this plugin's Filter into the pod's plan; ``ctx`` is its PreFilter result (never SKIP).

        Default: the per-node verdict, evaluated now, narrows the plan's static mask.
        """
        plan.restrict(self.filter(ctx, pod) == SUCCESS, self.dynamic)

    def plan_score(self, pod: Pod, weight: int, plan: PlanBuilder) -> bool:
        """Put this plugin's Score into the pod's plan; returns False if its PreScore skips.

        Default: the raw score of every node, computed now; the kernel applies :attr:`normalize` over the
        nodes it scores. Valid for plugins whose raw score of a node does not depend on which nodes are scored.
        """
        every = np.arange(self.state.num_nodes)
        ctx = self.prescore(pod, every)
        if ctx is SKIP:
            return False
        plan.add_scores(self.score(ctx, pod, every), self.normalize, weight, self.dynamic)
        return True
