"""PodTopologySpread (``plugins/podtopologyspread``: filtering.go, scoring.go, common.go, plugin.go).

Counting (both extension points): a node counts only if it carries every
constraint's topology key and passes the constraint's node inclusion policies
(nodeAffinityPolicy Honor: the pod's nodeSelector and required node affinity;
nodeTaintsPolicy Honor: its NoSchedule/NoExecute taints are tolerated); it adds
the pods matching the constraint's selector (plus matchLabelKeys) in the pod's
namespace that are not terminating.

Filter (DoNotSchedule): skew = pods in the node's domain + selfMatch - global
minimum (0 when fewer domains than minDomains) must not exceed maxSkew.
Score (ScheduleAnyway): round(sum of count x ln(domains + 2) + maxSkew - 1)
per node, normalized as 100 x (max + min - s) / max. The weights depend on
which nodes are scored, so the compiled kernel scores it from :class:`SpreadScore`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from kbench.api.core import Pod
from kbench.api.selectors import check_label_selector, label_selector_matches
from kbench.scheduler.interface import NORMALIZE_SPREAD, SKIP, SUCCESS, UNRESOLVABLE, UNSCHEDULABLE, Handle, Plugin
from kbench.scheduler.plan import PlanBuilder, SpreadScore
from kbench.scheduler.plugins.nodeaffinity import required_affinity_matches
from kbench.scheduler.plugins.tainttoleration import taints_tolerated

HOSTNAME = "kubernetes.io/hostname"
REASON_SKEW = "node(s) didn't match pod topology spread constraints"
REASON_LABEL = "node(s) didn't match pod topology spread constraints (missing required label)"
SYSTEM_DEFAULT_CONSTRAINTS = [
    {"maxSkew": 3, "topologyKey": "kubernetes.io/hostname", "whenUnsatisfiable": "ScheduleAnyway"},
    {"maxSkew": 5, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "ScheduleAnyway"},
]
"""PodTopologySpread's system defaults (podtopologyspread/plugin.go systemDefaultConstraints)."""


@dataclass(frozen=True)
class Constraint:
    """One topologySpreadConstraint, resolved for the pod (selector merged with matchLabelKeys)."""

    max_skew: int
    key: str
    selector: dict | None
    min_domains: int
    honor_affinity: bool
    honor_taints: bool


class ScoringArrays(NamedTuple):
    """Per ScheduleAnyway constraint, what scoring reads of every node."""

    constraints: list[Constraint]
    has_keys: np.ndarray
    """Mask: the node carries every constraint's key."""
    domains: list[np.ndarray]
    """Domain id per node (-1: no key)."""
    counts: list[np.ndarray]
    """Matching pods per domain, over the admitted nodes."""
    on_node: list[np.ndarray]
    """Matching pods per node."""


def check_constraint(c: dict, where: str) -> None:
    """Validate one topologySpreadConstraint of a pod; errors name the field."""
    if isinstance(c.get("maxSkew"), bool) or not isinstance(c.get("maxSkew"), int) or c["maxSkew"] < 1:
        raise ValueError(f"{where}.maxSkew: must be an integer >= 1, got {c.get('maxSkew')!r}")
    if not c.get("topologyKey"):
        raise ValueError(f"{where}.topologyKey: required")
    if c.get("whenUnsatisfiable") not in ("DoNotSchedule", "ScheduleAnyway"):
        raise ValueError(
            f"{where}.whenUnsatisfiable: must be DoNotSchedule or ScheduleAnyway, got {c.get('whenUnsatisfiable')!r}"
        )
    check_label_selector(c.get("labelSelector"), f"{where}.labelSelector")


def resolve_constraint(c: dict, pod: Pod) -> Constraint:
    """A constraint with matchLabelKeys merged into its selector (mergeLabelSetWithSelector) and its policies."""
    selector = c.get("labelSelector")
    keys = [k for k in c.get("matchLabelKeys") or [] if k in pod.labels]
    if selector is not None and keys:
        selector = {
            "matchLabels": {**(selector.get("matchLabels") or {}), **{k: pod.labels[k] for k in keys}},
            "matchExpressions": list(selector.get("matchExpressions") or []),
        }
    return Constraint(
        int(c["maxSkew"]),
        c["topologyKey"],
        selector,
        int(c.get("minDomains") or 1),
        c.get("nodeAffinityPolicy", "Honor") == "Honor",
        c.get("nodeTaintsPolicy", "Ignore") == "Honor",
    )


def spread_normalize(raw: np.ndarray, ignored: np.ndarray) -> np.ndarray:
    """PodTopologySpread NormalizeScore: ignored nodes 0; 100 when the top score is 0; else 100(max+min-s)/max."""
    out = np.zeros(len(raw), np.int64)
    live = ~ignored
    if not live.any():
        return out
    top, bottom = int(raw[live].max()), int(raw[live].min())
    if top == 0:
        out[live] = 100
    else:
        out[live] = 100 * (top + bottom - raw[live]) // top
    return out


def spread_score(arrays: ScoringArrays, num_nodes: int, weight: int) -> SpreadScore:
    """The kernel's inputs for the pod's ScheduleAnyway constraints."""
    width = max([len(c) for c in arrays.counts] + [1])
    counts = np.zeros((len(arrays.counts), width), np.int64)
    for i, c in enumerate(arrays.counts):
        counts[i, : len(c)] = c
    return SpreadScore(
        np.array(arrays.domains, np.int64).reshape(len(arrays.domains), num_nodes),
        counts,
        np.array(arrays.on_node, np.int64).reshape(len(arrays.on_node), num_nodes),
        np.array([c.max_skew for c in arrays.constraints], np.int64),
        np.array([c.key == HOSTNAME for c in arrays.constraints], np.int64),
        arrays.has_keys,
        np.int64(weight),
    )


class PodTopologySpread(Plugin):
    """Filter: DoNotSchedule constraints' skew; score: ScheduleAnyway constraints, fewer matching pods first."""

    name = "PodTopologySpread"
    points = ("preFilter", "filter", "preScore", "score")
    normalize = NORMALIZE_SPREAD
    dynamic = True
    walks = {"filter": "spread_filter_per_node", "score": "spread_score_per_node"}
    events = frozenset(
        {("Pod", "Add"), ("Pod", "Update"), ("Pod", "Delete"), ("Node", "Add"), ("Node", "Update"), ("Node", "Delete")}
    )

    def __init__(self, args, handle: Handle) -> None:
        super().__init__(args, handle)
        self.default_selector = handle.default_selector or (lambda pod: None)

    def constraints(self, pod: Pod, action: str) -> list[Constraint]:
        """The pod's constraints with ``whenUnsatisfiable == action``, or the defaults when it has none."""
        raw = list(pod.topology_spread_constraints)
        if not raw:
            system = self.args["defaultingType"] == "System"
            defaults = SYSTEM_DEFAULT_CONSTRAINTS if system else self.args["defaultConstraints"]
            selector = self.default_selector(pod)
            if not defaults or not selector:
                return []
            raw = [{**c, "labelSelector": selector} for c in defaults]
        for i, c in enumerate(raw):
            check_constraint(dict(c), f"Pod {pod.key}: spec.topologySpreadConstraints[{i}]")
        return [resolve_constraint(dict(c), pod) for c in raw if c["whenUnsatisfiable"] == action]

    def matching(self, pod: Pod, c: Constraint) -> np.ndarray:
        """Per node, pods matching the constraint in the pod's namespace, not terminating."""
        if c.selector is None:
            return np.zeros(self.state.num_nodes, np.int64)
        ns, selector = pod.namespace, c.selector
        key = ("spread", ns, json.dumps(selector, sort_keys=True))
        return self.state.matching_pods_per_node(
            key, lambda p: p.namespace == ns and not p.terminating and label_selector_matches(selector, p.labels)
        )

    def eligible(self, pod: Pod, constraints: list[Constraint]) -> tuple[np.ndarray, list[np.ndarray]]:
        """Nodes with every topology key, and per constraint the nodes its inclusion policies admit."""
        has_keys = np.ones(self.state.num_nodes, bool)
        for c in constraints:
            has_keys &= self.state.domains(c.key)[0] >= 0
        per = []
        for c in constraints:
            ok = has_keys.copy()
            if c.honor_affinity:
                ok &= required_affinity_matches(self.state, pod)
            if c.honor_taints:
                ok &= taints_tolerated(self.state, pod)
            per.append(ok)
        return has_keys, per

    def domain_counts(self, pod: Pod, c: Constraint, admitted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(matching pods per domain, whether the domain has an admitted node) over the admitted nodes."""
        ids, values = self.state.domains(c.key)
        counts = np.where(admitted, self.matching(pod, c), 0)
        per_domain = np.bincount(ids[admitted], weights=counts[admitted], minlength=len(values)).astype(np.int64)
        return per_domain, np.bincount(ids[admitted], minlength=len(values)) > 0

    def prefilter(self, pod: Pod):
        """Every node's status for the DoNotSchedule constraints (SKIP if none)."""
        constraints = self.constraints(pod, "DoNotSchedule")
        if not constraints:
            return SKIP
        has_keys, admitted = self.eligible(pod, constraints)
        codes = np.where(has_keys, SUCCESS, UNRESOLVABLE).astype(np.int8)
        for c, ok in zip(constraints, admitted):
            counts, present = self.domain_counts(pod, c, ok)
            domains = int(present.sum())
            minimum = 0 if domains < c.min_domains else (int(counts[present].min()) if domains else 0)
            ids = self.state.domains(c.key)[0]
            self_match = int(label_selector_matches(c.selector, pod.labels)) if c.selector is not None else 0
            skew = np.where(ids >= 0, counts[np.maximum(ids, 0)] if len(counts) else 0, 0) + self_match - minimum
            codes[(codes == SUCCESS) & (skew > c.max_skew)] = UNSCHEDULABLE
        return codes

    def filter(self, codes: np.ndarray, pod: Pod) -> np.ndarray:
        """The statuses PreFilter computed."""
        return codes

    def reasons(self, codes, pod: Pod, node: int) -> tuple[str, ...]:
        """ErrReasonNodeLabelNotMatch for nodes without the keys, else ErrReasonConstraintsNotMatch."""
        return (REASON_LABEL,) if codes[node] == UNRESOLVABLE else (REASON_SKEW,)

    def scoring_arrays(self, pod: Pod) -> ScoringArrays | object:
        """What scoring reads of every node for the ScheduleAnyway constraints, or SKIP."""
        constraints = self.constraints(pod, "ScheduleAnyway")
        if not constraints:
            return SKIP
        has_keys, admitted = self.eligible(pod, constraints)
        doms, counts, on_node = [], [], []
        for c, ok in zip(constraints, admitted):
            doms.append(self.state.domains(c.key)[0])
            counts.append(self.domain_counts(pod, c, ok)[0])
            on_node.append(self.matching(pod, c))
        return ScoringArrays(constraints, has_keys, doms, counts, on_node)

    def prescore(self, pod: Pod, nodes: np.ndarray):
        """The scoring arrays and each constraint's weight ln(domains among the scored nodes + 2), or SKIP."""
        arrays = self.scoring_arrays(pod)
        if not isinstance(arrays, ScoringArrays):
            return SKIP
        scored = nodes[arrays.has_keys[nodes]]
        weights = []
        for c, ids in zip(arrays.constraints, arrays.domains):
            size = len(scored) if c.key == HOSTNAME else len(np.unique(ids[scored]))
            weights.append(math.log(size + 2))
        return arrays, weights

    def score(self, ctx, pod: Pod, nodes: np.ndarray) -> np.ndarray:
        """round(sum over constraints of matching pods x weight + maxSkew - 1) per node with every key."""
        arrays, weights = ctx
        out = np.zeros(len(nodes), np.int64)
        terms = list(zip(arrays.constraints, arrays.domains, arrays.counts, arrays.on_node, weights))
        for j, node in enumerate(nodes.tolist()):
            if not arrays.has_keys[node]:
                continue
            total = 0.0
            for c, ids, cnt, here, w in terms:
                n = here[node] if c.key == HOSTNAME else cnt[ids[node]]
                total += float(n) * w + float(c.max_skew - 1)
            out[j] = math.floor(total + 0.5)  # Go math.Round, values are non-negative
        return out

    def normalize_score(self, raw: np.ndarray, ctx, nodes: np.ndarray) -> np.ndarray:
        """:func:`spread_normalize`; scored nodes without every topology key get 0."""
        return spread_normalize(raw, ~ctx[0].has_keys[nodes])

    def plan_score(self, pod: Pod, weight: int, plan: PlanBuilder) -> bool:
        """The kernel scores spreading itself (its weights depend on the scored nodes): fill its slot."""
        arrays = self.scoring_arrays(pod)
        if not isinstance(arrays, ScoringArrays):
            return False
        plan.spread = spread_score(arrays, self.state.num_nodes, weight)
        plan.dynamic = True
        return True
