"""NodeResourcesFit and NodeResourcesBalancedAllocation (``plugins/noderesources``).

Fit filters on actual requests (``fit.go`` fitsRequest) and scores with one of
LeastAllocated, MostAllocated or RequestedToCapacityRatio (``least_allocated.go``,
``most_allocated.go``, ``requested_to_capacity_ratio.go``) over the node's
non-zero requested cpu and memory (``resource_allocation.go``).
BalancedAllocation scores ``(1 - std of the requested fractions) * 100`` on
actual requests and skips best-effort pods. All integer arithmetic is Go's
(truncating division); the kernel in ``_kernels.py`` implements the same
formulas and is tested against these.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kbench.api.core import Pod
from kbench.scheduler.plugins import MAX_NODE_SCORE, SKIP, SUCCESS, UNRESOLVABLE, UNSCHEDULABLE, Plugin
from kbench.scheduler.state import CORE_RESOURCES, CPU, EPHEMERAL, MEMORY, PODS, ClusterState

LEAST, MOST, RTCR = range(3)
STRATEGIES = {"LeastAllocated": LEAST, "MostAllocated": MOST, "RequestedToCapacityRatio": RTCR}
MAX_UTILIZATION = 100
NODE_ROW, NONZERO_ROW = 0, 1  # where a scored resource's node total comes from


def is_scalar(name: str) -> bool:
    """Extended resources, hugepages and attachable volumes: everything but cpu, memory, storage, pods."""
    return name not in CORE_RESOURCES


def go_div(a: np.ndarray, b: np.ndarray | int) -> np.ndarray:
    """Go's integer division (truncates toward zero)."""
    q = np.abs(a) // np.abs(b)
    return np.where((np.asarray(a) < 0) != (np.asarray(b) < 0), -q, q)


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


def broken_linear(shape: np.ndarray, p: np.ndarray) -> np.ndarray:
    """helper.BuildBrokenLinearFunction over shape points (utilization, score) at utilizations ``p``."""
    out = np.full(p.shape, shape[-1, 1], np.int64)
    done = np.zeros(p.shape, bool)
    for i in range(len(shape)):
        hit = ~done & (p <= shape[i, 0])
        if i == 0:
            out[hit] = shape[0, 1]
        else:
            u0, s0, u1, s1 = shape[i - 1, 0], shape[i - 1, 1], shape[i, 0], shape[i, 1]
            out[hit] = s0 + go_div((s1 - s0) * (p[hit] - u0), u1 - u0)
        done |= hit
    return out


def strategy_scores(
    kind: int, requested: np.ndarray, alloc: np.ndarray, weights: np.ndarray, shape: np.ndarray | None
) -> np.ndarray:
    """The strategy's node score from per-resource (requested, allocatable); resources with 0 allocatable skip."""
    valid = alloc > 0
    safe = np.where(valid, alloc, 1)
    if kind == LEAST:
        per = np.where(requested > alloc, 0, (alloc - requested) * MAX_NODE_SCORE // safe)
    elif kind == MOST:
        per = np.minimum(requested, alloc) * MAX_NODE_SCORE // safe
    else:
        util = np.where(requested > alloc, MAX_UTILIZATION, requested * MAX_UTILIZATION // safe)
        per = broken_linear(shape, util)
        valid = valid & (per > 0)
    w = np.where(valid, weights[:, None], 0)
    total, wsum = (per * w).sum(axis=0), w.sum(axis=0)
    if kind == RTCR:
        return np.where(wsum > 0, np.floor(total / np.maximum(wsum, 1) + 0.5), 0).astype(np.int64)
    return np.where(wsum > 0, total // np.maximum(wsum, 1), 0)


def balanced_scores(requested: np.ndarray, alloc: np.ndarray) -> np.ndarray:
    """balancedResourceScorer: (1 - std of the requested fractions, each capped at 1) * 100, truncated."""
    valid = alloc > 0
    frac = np.where(valid, np.minimum(requested / np.where(valid, alloc, 1), 1.0), 0.0)
    count = valid.sum(axis=0)
    total = np.zeros(frac.shape[1])
    for row in range(frac.shape[0]):  # Go adds the fractions in resource order
        total = total + frac[row]
    mean = total / np.maximum(count, 1)
    sq = np.zeros(frac.shape[1])
    for row in range(frac.shape[0]):
        sq = sq + np.where(valid[row], (frac[row] - mean) * (frac[row] - mean), 0.0)
    two = np.zeros(frac.shape[1])
    if frac.shape[0] >= 2:
        first = np.argmax(valid, axis=0)
        second = np.argmax(valid & (np.arange(frac.shape[0])[:, None] > first), axis=0)
        cols = np.arange(frac.shape[1])
        two = np.abs((frac[first, cols] - frac[second, cols]) / 2)
    std = np.where(count == 2, two, np.where(count > 2, np.sqrt(sq / np.maximum(count, 1)), 0.0))
    return np.trunc((1 - std) * MAX_NODE_SCORE).astype(np.int64)


class NodeResourcesFit(Plugin):
    """Filter: the pod's requests fit the node's free allocatable; score: the configured strategy."""

    name = "NodeResourcesFit"

    def __init__(self, args, state):
        super().__init__(args, state)
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
        return scoring_terms(self.state, pod, self.resources, nonzero=True)

    def score(self, terms: ResourceTerms, pod: Pod, nodes: np.ndarray) -> np.ndarray:
        requested, alloc = node_totals(self.state, terms, nodes)
        return strategy_scores(self.kind, requested, alloc, terms.weights, self.shape)


class NodeResourcesBalancedAllocation(Plugin):
    """Score: favour nodes whose requested fractions of each resource are close to each other."""

    name = "NodeResourcesBalancedAllocation"

    def prescore(self, pod: Pod, nodes: np.ndarray):
        terms = scoring_terms(self.state, pod, self.args["resources"], nonzero=False)
        if not terms.requests.any():
            return SKIP  # best-effort pods are not balanced (kubernetes#129138)
        return terms

    def score(self, terms: ResourceTerms, pod: Pod, nodes: np.ndarray) -> np.ndarray:
        requested, alloc = node_totals(self.state, terms, nodes)
        return balanced_scores(requested, alloc)
