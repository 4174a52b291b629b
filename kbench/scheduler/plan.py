"""A pod's plan for the compiled scheduling path: the kernel inputs each plugin supplies, as named tuples.

The fused kernel (``_kernels.py``) filters and scores every node for one pod from these arrays; the plugins
fill them (see :class:`kbench.scheduler.interface.Plugin` ``plan_filter`` / ``plan_score``) through a
:class:`PlanBuilder`. A plugin whose per-node result is fixed for the pod narrows :attr:`KernelPlan.static_ok`
or adds a row of :class:`StaticScores`; a plugin the kernel evaluates itself, because its result changes with
every bind or depends on which nodes are scored, fills its own slot (:class:`FitFilter`, :class:`FitScore`,
:class:`BalancedScore`, :class:`SpreadScore`). All arrays are ``int64`` unless named a mask (``bool``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from kbench.scheduler.state import ClusterState

NORMALIZE_NONE, NORMALIZE_DEFAULT, NORMALIZE_REVERSE, NORMALIZE_SPREAD, NORMALIZE_MINMAX = range(5)
"""NormalizeScore kinds: none, DefaultNormalizeScore, its reverse, PodTopologySpread's, InterPodAffinity's."""
LEAST_ALLOCATED, MOST_ALLOCATED, REQUESTED_TO_CAPACITY_RATIO = range(3)
"""NodeResourcesFit's scoring strategies (:attr:`FitScore.kind`)."""
NODE_ROW, NONZERO_ROW = 0, 1
"""Where a scored resource's node total comes from (:attr:`FitScore.sources`): the requested row, or the
non-zero cpu/memory row."""
EMPTY = np.zeros(0, np.int64)
NO_SHAPE = np.zeros((1, 2), np.int64)
"""A one-point placeholder for RequestedToCapacityRatio's shape when another strategy is used."""


class NodeArrays(NamedTuple):
    """The scheduler's cluster state as the kernels read and bind into it (``ClusterState`` owns them)."""

    allocatable: np.ndarray
    """``[resource, node]`` allocatable."""
    requested: np.ndarray
    """``[resource, node]`` actual requests of the pods on the node."""
    nonzero: np.ndarray
    """``[2, node]`` cpu and memory requests with the non-zero defaults."""
    pod_count: np.ndarray
    """Pods per node."""


class FitFilter(NamedTuple):
    """NodeResourcesFit's Filter: the pod's checked requests, tested against each node's free allocatable."""

    on: bool
    request: np.ndarray
    """Per resource row, the request to check (0: not checked)."""


class FitScore(NamedTuple):
    """NodeResourcesFit's Score: the scoring strategy over its resource terms (weight 0: not scored)."""

    kind: np.int64
    """LEAST_ALLOCATED, MOST_ALLOCATED or REQUESTED_TO_CAPACITY_RATIO."""
    rows: np.ndarray
    """Resource rows scored."""
    sources: np.ndarray
    """Per row, NODE_ROW or NONZERO_ROW."""
    requests: np.ndarray
    """Per row, the pod's request."""
    weights: np.ndarray
    """Per row, the resource weight."""
    shape: np.ndarray
    """RequestedToCapacityRatio's ``(utilization, score)`` points, scores scaled to 0-100."""
    weight: np.int64
    """The plugin's score weight in the profile."""


class BalancedScore(NamedTuple):
    """NodeResourcesBalancedAllocation's Score over its resource rows (weight 0: skipped)."""

    rows: np.ndarray
    requests: np.ndarray
    weight: np.int64


class StaticScores(NamedTuple):
    """Raw scores fixed for the pod (one row per plugin), normalized by the kernel over the scored nodes."""

    raw: np.ndarray
    """``[plugin, node]`` raw scores."""
    normalize: np.ndarray
    """Per plugin, its NormalizeScore kind (``NORMALIZE_*``)."""
    weight: np.ndarray
    """Per plugin, its score weight."""


class SpreadScore(NamedTuple):
    """PodTopologySpread's Score (ScheduleAnyway constraints); its weights depend on the scored nodes."""

    domains: np.ndarray
    """``[constraint, node]`` domain id (-1: the node lacks the key)."""
    counts: np.ndarray
    """``[constraint, domain]`` matching pods."""
    on_node: np.ndarray
    """``[constraint, node]`` matching pods on the node (hostname constraints)."""
    max_skew: np.ndarray
    hostname: np.ndarray
    """Per constraint, 1 if its topology key is ``kubernetes.io/hostname``."""
    has_keys: np.ndarray
    """Mask: the node carries every constraint's key (others score 0)."""
    weight: np.int64


class Search(NamedTuple):
    """The nodes searched: all, or a PreFilterResult's subset (sorted node indices)."""

    restricted: bool
    subset: np.ndarray


class KernelPlan(NamedTuple):
    """Everything the fused kernel reads about one pod."""

    static_ok: np.ndarray
    """Mask: the node passes every filter evaluated once for the pod."""
    fit_filter: FitFilter
    fit_score: FitScore
    balanced: BalancedScore
    scores: StaticScores
    spread: SpreadScore
    search: Search


class BindRequest(NamedTuple):
    """What binding one pod adds to its node's columns."""

    requests: np.ndarray
    """Per resource row, the pod's actual requests."""
    nonzero: np.ndarray
    """cpu and memory with the non-zero defaults."""


class Placements(NamedTuple):
    """Per pod of a batch, the kernels' outputs: node (-1 none fits), nodes processed, feasible nodes found."""

    nodes: np.ndarray
    processed: np.ndarray
    found: np.ndarray


class Workspace(NamedTuple):
    """Scratch arrays of one kernel call over ``n`` nodes."""

    cand: np.ndarray
    """Feasible nodes found, in evaluation order."""
    totals: np.ndarray
    """Their total scores."""
    scratch: np.ndarray
    """``[2, n]`` raw and normalized scores of one plugin."""
    mark: np.ndarray
    """One flag per topology domain."""

    @staticmethod
    def new(num_nodes: int, num_domains: int) -> Workspace:
        """Scratch for ``num_nodes`` nodes and ``num_domains`` spread domains."""
        return Workspace(
            np.empty(num_nodes, np.int64),
            np.empty(num_nodes, np.int64),
            np.empty((2, num_nodes), np.int64),
            np.zeros(max(num_domains, 1), np.int64),
        )


def no_spread(num_nodes: int) -> SpreadScore:
    """The spread slot of a pod without ScheduleAnyway constraints."""
    return SpreadScore(
        np.zeros((0, num_nodes), np.int64),
        np.zeros((0, 1), np.int64),
        np.zeros((0, num_nodes), np.int64),
        EMPTY,
        EMPTY,
        np.ones(num_nodes, bool),
        np.int64(0),
    )


class PlanBuilder:
    """One pod's plan while the profile's plugins fill it (``Plugin.plan_filter`` / ``Plugin.plan_score``).

    Parameters
    ----------
    num_nodes, num_resources : int
        The cluster state's sizes.
    """

    def __init__(self, num_nodes: int, num_resources: int) -> None:
        self.num_nodes = num_nodes
        self.static_ok = np.ones(num_nodes, bool)
        self.fit_filter = FitFilter(False, np.zeros(num_resources, np.int64))
        self.fit_score = FitScore(np.int64(LEAST_ALLOCATED), EMPTY, EMPTY, EMPTY, EMPTY, NO_SHAPE, np.int64(0))
        self.balanced = BalancedScore(EMPTY, EMPTY, np.int64(0))
        self.spread = no_spread(num_nodes)
        self.raw: list[np.ndarray] = []
        self.normalize: list[int] = []
        self.weight: list[int] = []
        self.dynamic = False
        """True once a plugin's per-node results change as other pods bind: the plan is then used once."""

    def restrict(self, ok: np.ndarray, dynamic: bool) -> None:
        """A filter evaluated now: only nodes where ``ok`` stay feasible."""
        self.static_ok &= ok
        self.dynamic |= dynamic

    def add_scores(self, raw: np.ndarray, normalize: int, weight: int, dynamic: bool) -> None:
        """A score plugin's raw scores of every node, fixed for the pod, with its NormalizeScore kind."""
        self.raw.append(raw)
        self.normalize.append(normalize)
        self.weight.append(weight)
        self.dynamic |= dynamic

    def build(self, subset: np.ndarray | None) -> KernelPlan:
        """The finished kernel inputs; ``subset`` is the PreFilterResult (None: every node)."""
        scores = StaticScores(
            np.array(self.raw, np.int64).reshape(len(self.raw), self.num_nodes),
            np.array(self.normalize, np.int64),
            np.array(self.weight, np.int64),
        )
        search = Search(False, EMPTY) if subset is None else Search(True, subset)
        return KernelPlan(self.static_ok, self.fit_filter, self.fit_score, self.balanced, scores, self.spread, search)


class PlanTable(NamedTuple):
    """The plans of a sequence of heterogeneous pods, stacked (one row per plan) for the sequence kernel
    (``_batch_kernels.schedule_sequence``).

    Ragged parts (a plan's resource terms) are padded; ``fit_terms`` / ``bal_terms`` say how many are used.
    Padding score rows have weight 0. Each row rebuilds into a :class:`KernelPlan` inside the kernel.
    """

    static_ok: np.ndarray
    """``[plan, node]`` mask of the filters evaluated once for the pod."""
    tree: np.ndarray
    """Per plan, its slot in the signature trees (its totals do not depend on the scored nodes), or -1:
    filtered and scored node by node."""
    static_add: np.ndarray
    """``[plan, node]`` the non-resource plugins' weighted scores (tree plans)."""
    fit_on: np.ndarray
    fit_request: np.ndarray
    """``[plan, resource]``."""
    fit_kind: np.int64
    fit_shape: np.ndarray
    fit_weight: np.ndarray
    fit_terms: np.ndarray
    fit_rows: np.ndarray
    fit_sources: np.ndarray
    fit_requests: np.ndarray
    fit_weights: np.ndarray
    bal_terms: np.ndarray
    bal_rows: np.ndarray
    bal_requests: np.ndarray
    bal_weight: np.ndarray
    raw: np.ndarray
    """``[plan, plugin, node]`` static raw scores."""
    normalize: np.ndarray
    weight: np.ndarray
    bind_requests: np.ndarray
    """``[plan, resource]`` what binding adds (:class:`BindRequest` per row)."""
    bind_nonzero: np.ndarray
    reason: np.ndarray
    """``[plan, node]`` id of the reasons of the node's first failing filter evaluated once for the pod (-1:
    none fails), for the diagnosis of a pod that fits nowhere."""
    before_fit: np.ndarray
    """``[plan, node]`` that filter comes before NodeResourcesFit in the profile (its reasons win)."""


class Trees(NamedTuple):
    """One signature segment tree per tree plan (``_batch_kernels``), synced lazily from the bind log."""

    cnt: np.ndarray
    best: np.ndarray
    ties: np.ndarray
    synced: np.ndarray
    """Per tree, how many entries of the bind log it reflects (-1: never built)."""


class BindLog(NamedTuple):
    """The nodes bound so far in a sequence, in order (``length[0]`` used)."""

    nodes: np.ndarray
    length: np.ndarray


@dataclass
class Plan:
    """Everything the scheduler needs to know about one pod on the compiled path."""

    inputs: KernelPlan
    """What the kernel reads."""
    bind: BindRequest
    """What binding the pod adds to its node."""
    dynamic: bool
    """The plan changes when other pods bind (used for one cycle only)."""
    score_plugins: int = 0
    """Score plugins that did not Skip."""
    scans: tuple[str, ...] = ()
    """``"<plugin>/filter"`` / ``"<plugin>/score"`` for each PreFilter / PreScore that walked every node."""

    @property
    def subset(self) -> np.ndarray | None:
        """PreFilterResult nodes (None: all nodes)."""
        return self.inputs.search.subset if self.inputs.search.restricted else None


def static_totals(plan: KernelPlan) -> np.ndarray | None:
    """Per node, the weighted scores of the non-resource plugins, if they do not depend on which nodes are
    scored (each normalized plugin's raw score is the same on every statically feasible node); None otherwise.
    This is what makes a pod batchable by signature."""
    scores = plan.scores
    total = np.zeros(len(plan.static_ok), np.int64)
    for p in range(len(scores.normalize)):
        if scores.normalize[p] == NORMALIZE_NONE:
            total += scores.weight[p] * scores.raw[p]
            continue
        values = scores.raw[p][plan.static_ok]
        if len(values) and (values != values[0]).any():
            return None
        c = int(values[0]) if len(values) else 0
        if scores.normalize[p] == NORMALIZE_DEFAULT:
            total += scores.weight[p] * (100 if c else 0)
        elif scores.normalize[p] == NORMALIZE_REVERSE:
            total += scores.weight[p] * (0 if c else 100)
    return total


def node_arrays(state: ClusterState) -> NodeArrays:
    """The state's arrays as the kernels take them."""
    return NodeArrays(state.allocatable, state.requested, state.nonzero, state.pod_count)
