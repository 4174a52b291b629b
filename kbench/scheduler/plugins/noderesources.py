"""NodeResourcesFit and NodeResourcesBalancedAllocation (``plugins/noderesources``: fit.go, balanced_allocation.go).

Fit filters on actual requests (``fit.go`` fitsRequest) and scores with one of
LeastAllocated, MostAllocated or RequestedToCapacityRatio over the node's
non-zero requested cpu and memory (``resource_allocation.go``).
BalancedAllocation scores ``(1 - std of the requested fractions) * 100`` on
actual requests and skips best-effort pods. Both change with every bind, so
the compiled kernel evaluates them itself from :class:`FitFilter`,
:class:`FitScore` and :class:`BalancedScore`; the arithmetic is in
:mod:`~kbench.scheduler.plugins.noderesources_allocation`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kbench.api.core import Pod
from kbench.scheduler.interface import MAX_NODE_SCORE, SKIP, SUCCESS, UNRESOLVABLE, UNSCHEDULABLE, Handle, Plugin
from kbench.scheduler.plan import NO_SHAPE, NODE_ROW, NONZERO_ROW, BalancedScore, FitFilter, FitScore, PlanBuilder
from kbench.scheduler.plugins.noderesources_allocation import STRATEGIES, balanced_scores, strategy_scores
from kbench.scheduler.state import CORE_RESOURCES, CPU, EPHEMERAL, MEMORY, PODS, ClusterState


def is_scalar(name: str) -> bool:
    """Extended resources, hugepages and attachable volumes: everything but cpu, memory, storage, pods."""
    return name not in CORE_RESOURCES


@dataclass
class ResourceTerms:
    """Per scored resource: state row, node-total source, pod request and weight (kernel-ready)."""

    rows: np.ndarray
    sources: np.ndarray
    requests: np.ndarray
    weights: np.ndarray


def scoring_terms(state: ClusterState, pod: Pod, resources: list[dict], nonzero: bool) -> ResourceTerms:
    """resource_allocation.go: which resources count for this pod, and how.

    Scalar resources the pod does not request are left out; cpu and memory use
    the non-zero totals when ``nonzero`` (Fit scoring), actual ones otherwise.
    """
    requests = pod.nonzero_requests if nonzero else pod.requests
    rows, sources, reqs, weights = [], [], [], []
    for spec in resources:
        name = spec["name"]
        req = requests.get(name, 0)
        if is_scalar(name) and req == 0:
            continue
        if name not in state.resources:
            continue  # no node has it: allocatable 0 everywhere, the resource is skipped
        row = state.resources.index(name)
        rows.append(row)
        sources.append(NONZERO_ROW if nonzero and row in (CPU, MEMORY) else NODE_ROW)
        reqs.append(req)
        weights.append(spec["weight"])
    return ResourceTerms(*(np.asarray(v, np.int64) for v in (rows, sources, reqs, weights)))


def node_totals(state: ClusterState, terms: ResourceTerms, nodes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(requested including the pod, allocatable), shape (resources, nodes)."""
    alloc = state.allocatable[terms.rows][:, nodes]
    used = np.where(
        (terms.sources == NONZERO_ROW)[:, None],
        state.nonzero[np.minimum(terms.rows, 1)][:, nodes],
        state.requested[terms.rows][:, nodes],
    )
    return used + terms.requests[:, None], alloc


class NodeResourcesFit(Plugin):
    """Filter: the pod's requests fit the node's free allocatable; score: the configured strategy."""

    name = "NodeResourcesFit"
    points = ("preFilter", "filter", "preScore", "score")
    events = frozenset({("Pod", "Delete"), ("Node", "Add"), ("Node", "Update")})

    def __init__(self, args, handle: Handle) -> None:
        super().__init__(args, handle)
        strategy = args["scoringStrategy"]
        self.kind = STRATEGIES[strategy["type"]]
        self.resources = strategy["resources"]
        shape = (strategy.get("requestedToCapacityRatio") or {}).get("shape") or []
        self.shape = np.array(
            [[p["utilization"], p["score"] * (MAX_NODE_SCORE // 10)] for p in shape], np.int64
        ).reshape(-1, 2)
        self.ignored = set(args.get("ignoredResources") or [])
        self.ignored_groups = set(args.get("ignoredResourceGroups") or [])

    def checked(self, name: str) -> bool:
        """Whether a requested scalar resource is checked: extended resources (v1helper.IsExtendedResourceName)
        can be ignored by name or by group."""
        extended = "/" in name and "kubernetes.io/" not in name and not name.startswith("requests.")
        return not extended or (name not in self.ignored and name.split("/", 1)[0] not in self.ignored_groups)

    def prefilter(self, pod: Pod) -> np.ndarray:
        """The pod's requests as a vector over the state's resources, unchecked scalar resources zeroed."""
        req = self.state.vector(pod.requests)
        for name, amount in pod.requests.items():
            if is_scalar(name) and (amount == 0 or not self.checked(name)):
                req[self.state.resources.index(name)] = 0
        return req

    def filter(self, req: np.ndarray, pod: Pod) -> np.ndarray:
        """Unschedulable when the free allocatable is short; UnschedulableAndUnresolvable when even the
        whole allocatable is (v1.35), as no preemption could make room."""
        s = self.state
        bad = s.pod_count + 1 > s.allocatable[PODS]
        never = np.zeros(s.num_nodes, bool)
        for r in range(len(s.resources)):
            if r != PODS and req[r] > 0:
                bad |= req[r] > s.allocatable[r] - s.requested[r]
                never |= req[r] > s.allocatable[r]
        return np.where(never, UNRESOLVABLE, np.where(bad, UNSCHEDULABLE, SUCCESS)).astype(np.int8)

    def reasons(self, req: np.ndarray, pod: Pod, node: int) -> tuple[str, ...]:
        """ "Too many pods", then "Insufficient <resource>" in fitsRequest's order."""
        s = self.state
        out = []
        if s.pod_count[node] + 1 > s.allocatable[PODS, node]:
            out.append("Too many pods")
        order = [CPU, MEMORY, EPHEMERAL] + sorted(
            range(len(CORE_RESOURCES), len(s.resources)), key=lambda r: s.resources[r]
        )
        for r in order:
            if req[r] > 0 and req[r] > s.allocatable[r, node] - s.requested[r, node]:
                out.append(f"Insufficient {s.resources[r]}")
        return tuple(out)

    def prescore(self, pod: Pod, nodes: np.ndarray) -> ResourceTerms:
        """The scored resources with the pod's non-zero requests."""
        return scoring_terms(self.state, pod, self.resources, nonzero=True)

    def score(self, terms: ResourceTerms, pod: Pod, nodes: np.ndarray) -> np.ndarray:
        """The scoring strategy's score of each node."""
        requested, alloc = node_totals(self.state, terms, nodes)
        return strategy_scores(self.kind, requested, alloc, terms.weights, self.shape)

    def plan_filter(self, req: np.ndarray, pod: Pod, plan: PlanBuilder) -> None:
        """The kernel checks the fit of every node it visits, against the requests as they are then."""
        plan.fit_filter = FitFilter(True, req)

    def plan_score(self, pod: Pod, weight: int, plan: PlanBuilder) -> bool:
        """The kernel scores the strategy over the requests as they are then."""
        t = self.prescore(pod, np.arange(self.state.num_nodes))
        shape = self.shape if len(self.shape) else NO_SHAPE
        kind, weight_ = np.int64(self.kind), np.int64(weight)
        plan.fit_score = FitScore(kind, t.rows, t.sources, t.requests, t.weights, shape, weight_)
        return True


class NodeResourcesBalancedAllocation(Plugin):
    """Score: favour nodes whose requested fractions of each resource are close to each other."""

    name = "NodeResourcesBalancedAllocation"
    points = ("preScore", "score")

    def prescore(self, pod: Pod, nodes: np.ndarray):
        """The scored resources with the pod's actual requests; SKIP for a best-effort pod."""
        terms = scoring_terms(self.state, pod, self.args["resources"], nonzero=False)
        if not terms.requests.any():
            return SKIP  # best-effort pods are not balanced (kubernetes#129138)
        return terms

    def score(self, terms: ResourceTerms, pod: Pod, nodes: np.ndarray) -> np.ndarray:
        """balancedResourceScorer of each node."""
        requested, alloc = node_totals(self.state, terms, nodes)
        return balanced_scores(requested, alloc)

    def plan_score(self, pod: Pod, weight: int, plan: PlanBuilder) -> bool:
        """The kernel scores the balance over the requests as they are then (nothing for best-effort pods)."""
        t = self.prescore(pod, np.arange(self.state.num_nodes))
        if t is SKIP:
            return False
        plan.balanced = BalancedScore(t.rows, t.requests, np.int64(weight))
        return True
