"""PodTopologySpread (``plugins/podtopologyspread``: filtering.go, scoring.go, common.go).

Counting (both extension points): a node counts only if it carries every
constraint's topology key and passes the constraint's node inclusion policies
(nodeAffinityPolicy Honor: the pod's nodeSelector and required node affinity;
nodeTaintsPolicy Honor: its NoSchedule/NoExecute taints are tolerated); it adds
the pods matching the constraint's selector (plus matchLabelKeys) in the pod's
namespace that are not terminating.

Filter (DoNotSchedule): skew = pods in the node's domain + selfMatch - global
minimum (0 when fewer domains than minDomains) must not exceed maxSkew.
Score (ScheduleAnyway): round(sum of count x ln(domains + 2) + maxSkew - 1)
per node, normalized as 100 x (max + min - s) / max.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import numpy as np

from kbench.api.core import Pod
from kbench.api.selectors import check_label_selector, label_selector_matches
from kbench.scheduler.config import SYSTEM_DEFAULT_CONSTRAINTS
from kbench.scheduler.plugins import NORMALIZE_SPREAD, SKIP, SUCCESS, UNRESOLVABLE, UNSCHEDULABLE, Plugin
from kbench.scheduler.plugins.basic import taints_tolerated
from kbench.scheduler.plugins.nodeaffinity import required_affinity_matches

HOSTNAME = "kubernetes.io/hostname"
REASON_SKEW = "node(s) didn't match pod topology spread constraints"
REASON_LABEL = "node(s) didn't match pod topology spread constraints (missing required label)"


@dataclass(frozen=True)
class Constraint:
    max_skew: int
    key: str
    selector: dict | None
    min_domains: int
    honor_affinity: bool
    honor_taints: bool


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


def _constraint(c: dict, pod: Pod) -> Constraint:
    selector = c.get("labelSelector")
    keys = [k for k in c.get("matchLabelKeys") or [] if k in pod.labels]
    if selector is not None and keys:  # mergeLabelSetWithSelector
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


class PodTopologySpread(Plugin):
    name = "PodTopologySpread"
    normalize = NORMALIZE_SPREAD
    dynamic = True

    def __init__(self, args, state, default_selector=None):
        super().__init__(args, state)
        self.default_selector = default_selector or (lambda pod: None)

    def constraints(self, pod: Pod, action: str) -> list[Constraint]:
        """The pod's constraints with ``whenUnsatisfiable == action``, or the defaults when it has none."""
        raw = list(pod.topology_spread_constraints)
        if not raw:
            defaults = (
                SYSTEM_DEFAULT_CONSTRAINTS
                if self.args["defaultingType"] == "System"
                else self.args["defaultConstraints"]
            )
            selector = self.default_selector(pod)
            if not defaults or not selector:
                return []
            raw = [{**c, "labelSelector": selector} for c in defaults]
        for i, c in enumerate(raw):
            check_constraint(c, f"Pod {pod.key}: spec.topologySpreadConstraints[{i}]")
        return [_constraint(c, pod) for c in raw if c["whenUnsatisfiable"] == action]

    def _matching(self, pod: Pod, c: Constraint) -> np.ndarray:
        """Per node, pods matching the constraint in the pod's namespace, not terminating."""
        if c.selector is None:
            return np.zeros(self.state.num_nodes, np.int64)
        ns, selector = pod.namespace, c.selector
        key = ("spread", ns, json.dumps(selector, sort_keys=True))
        return self.state.matching_pods_per_node(
            key, lambda p: p.namespace == ns and not p.terminating and label_selector_matches(selector, p.labels)
        )

    def _eligible(self, pod: Pod, constraints: list[Constraint]) -> tuple[np.ndarray, list[np.ndarray]]:
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

    def _domain_counts(self, pod: Pod, c: Constraint, admitted: np.ndarray) -> np.ndarray:
        ids, values = self.state.domains(c.key)
        counts = np.where(admitted, self._matching(pod, c), 0)
        return np.bincount(ids[admitted], weights=counts[admitted], minlength=len(values)).astype(
            np.int64
        ), np.bincount(ids[admitted], minlength=len(values)) > 0

    def prefilter(self, pod: Pod):
        constraints = self.constraints(pod, "DoNotSchedule")
        if not constraints:
            return SKIP
        has_keys, admitted = self._eligible(pod, constraints)
        codes = np.where(has_keys, SUCCESS, UNRESOLVABLE).astype(np.int8)
        for c, ok in zip(constraints, admitted):
            counts, present = self._domain_counts(pod, c, ok)
            domains = int(present.sum())
            minimum = 0 if domains < c.min_domains else (int(counts[present].min()) if domains else 0)
            ids = self.state.domains(c.key)[0]
            self_match = int(label_selector_matches(c.selector, pod.labels)) if c.selector is not None else 0
            skew = np.where(ids >= 0, counts[np.maximum(ids, 0)] if len(counts) else 0, 0) + self_match - minimum
            codes[(codes == SUCCESS) & (skew > c.max_skew)] = UNSCHEDULABLE
        return codes

    def filter(self, codes: np.ndarray, pod: Pod) -> np.ndarray:
        return codes

    def reasons(self, codes, pod, node):
        return (REASON_LABEL,) if codes[node] == UNRESOLVABLE else (REASON_SKEW,)

    def scoring_arrays(self, pod: Pod):
        """Per constraint: domain id per node, pods per domain (all nodes), pods per node, maxSkew, hostname flag."""
        constraints = self.constraints(pod, "ScheduleAnyway")
        if not constraints:
            return SKIP
        has_keys, admitted = self._eligible(pod, constraints)
        doms, counts, on_node = [], [], []
        for c, ok in zip(constraints, admitted):
            ids = self.state.domains(c.key)[0]
            doms.append(ids)
            counts.append(self._domain_counts(pod, c, ok)[0])
            on_node.append(self._matching(pod, c))
        return constraints, has_keys, doms, counts, on_node

    def prescore(self, pod: Pod, nodes: np.ndarray):
        arrays = self.scoring_arrays(pod)
        if arrays is SKIP:
            return SKIP
        constraints, has_keys, doms, counts, on_node = arrays
        scored = nodes[has_keys[nodes]]
        weights = []
        for c, ids in zip(constraints, doms):
            size = len(scored) if c.key == HOSTNAME else len(np.unique(ids[scored]))
            weights.append(math.log(size + 2))
        return constraints, has_keys, doms, counts, on_node, weights

    def score(self, ctx, pod: Pod, nodes: np.ndarray) -> np.ndarray:
        constraints, has_keys, doms, counts, on_node, weights = ctx
        out = np.zeros(len(nodes), np.int64)
        for j, node in enumerate(nodes.tolist()):
            if not has_keys[node]:
                continue
            total = 0.0
            for c, ids, cnt, here, w in zip(constraints, doms, counts, on_node, weights):
                n = here[node] if c.key == HOSTNAME else cnt[ids[node]]
                total += float(n) * w + float(c.max_skew - 1)
            out[j] = math.floor(total + 0.5)  # Go math.Round, values are non-negative
        return out

    def ignored(self, ctx, nodes: np.ndarray) -> np.ndarray:
        """Scored nodes without every topology key: they get 0 after normalization."""
        return ~ctx[1][nodes]


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
