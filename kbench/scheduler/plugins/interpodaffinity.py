"""InterPodAffinity (``plugins/interpodaffinity``: filtering.go, scoring.go).

Filter, in upstream's order: the pod's required affinity (every term's topology
key on the node and a matching pod in the node's domain, unless no pod matches
anywhere and the pod matches its own terms), then its required anti-affinity,
then existing pods' required anti-affinity against it (symmetry).
Score: per topology domain, + weights of the pod's preferred affinity terms
matched by existing pods, - its preferred anti-affinity, + hardPodAffinityWeight
for existing pods' required affinity it matches, and +/- existing pods'
preferred terms it matches; normalized min-max over the scored nodes.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from kbench.api.core import Pod
from kbench.api.selectors import label_selector_matches, selector_value_error
from kbench.scheduler.interface import NORMALIZE_MINMAX, SKIP, SUCCESS, UNRESOLVABLE, UNSCHEDULABLE, Plugin, Rejection
from kbench.scheduler.plan import PlanBuilder

REASON_AFFINITY = "node(s) didn't match pod affinity rules"
REASON_ANTI = "node(s) didn't match pod anti-affinity rules"
REASON_EXISTING_ANTI = "node(s) didn't satisfy existing pods anti-affinity rules"


@dataclass(frozen=True)
class Term:
    """An AffinityTerm with its namespaces resolved against its owner's namespace."""

    namespaces: frozenset[str]
    namespace_selector: str | None  # JSON, so terms stay hashable
    selector: str | None
    key: str
    weight: int = 0

    def matches(self, pod: Pod, namespace_labels: dict[str, dict[str, str]]) -> bool:
        """AffinityTerm.Matches: the pod is in one of the term's namespaces and matches its selector."""
        in_ns = pod.namespace in self.namespaces or (
            self.namespace_selector is not None
            and label_selector_matches(json.loads(self.namespace_selector), namespace_labels.get(pod.namespace, {}))
        )
        return in_ns and self.selector is not None and label_selector_matches(json.loads(self.selector), pod.labels)


def _dump(value) -> str | None:
    return None if value is None else json.dumps(value, sort_keys=True)


def new_term(raw: dict, owner: Pod, weight: int = 0) -> Term:
    """A PodAffinityTerm of ``owner`` as a :class:`Term` (matchLabelKeys / mismatchLabelKeys merged in)."""
    selector = raw.get("labelSelector")
    if selector is not None:
        extra = [
            {"key": k, "operator": "In", "values": [owner.labels[k]]}
            for k in raw.get("matchLabelKeys") or []
            if k in owner.labels
        ] + [
            {"key": k, "operator": "NotIn", "values": [owner.labels[k]]}
            for k in raw.get("mismatchLabelKeys") or []
            if k in owner.labels
        ]
        if extra:
            selector = {**selector, "matchExpressions": [*(selector.get("matchExpressions") or []), *extra]}
    ns_selector = raw.get("namespaceSelector")
    namespaces = frozenset(raw.get("namespaces") or ())
    if not namespaces and ns_selector is None:
        namespaces = frozenset({owner.namespace})
    return Term(namespaces, _dump(ns_selector), _dump(selector), raw.get("topologyKey", ""), weight)


def terms(pod: Pod, kind: str, required: bool) -> list[Term]:
    """The pod's podAffinity or podAntiAffinity terms (required, or preferred with weights)."""
    section = pod.affinity.get(kind) or {}
    if required:
        return [new_term(t, pod) for t in section.get("requiredDuringSchedulingIgnoredDuringExecution") or []]
    return [
        new_term(t.get("podAffinityTerm") or {}, pod, int(t.get("weight", 0)))
        for t in section.get("preferredDuringSchedulingIgnoredDuringExecution") or []
    ]


def matcher(term: Term, namespace_labels: dict[str, dict[str, str]]) -> Callable[[Pod], bool]:
    """``pod -> term.matches(pod)``, for counting matching pods per node."""
    return lambda pod: term.matches(pod, namespace_labels)


def check_terms(pod: Pod) -> None:
    """Reject a pod whose required terms do not parse (framework.NewPodInfo), with upstream's message."""
    for kind in ("podAffinity", "podAntiAffinity"):
        for raw in (pod.affinity.get(kind) or {}).get("requiredDuringSchedulingIgnoredDuringExecution") or []:
            error = selector_value_error(raw.get("labelSelector"))
            if error:
                index, key, value, message = error
                # upstream labels both lists requiredAffinityTerms in this message
                reason = f'parsing pod: requiredAffinityTerms: values[{index}][{key}]: Invalid value: "{value}": '
                raise Rejection(UNRESOLVABLE, (reason + message,))


def minmax_normalize(raw: np.ndarray) -> np.ndarray:
    """InterPodAffinity NormalizeScore: int64(100 * ((s - min) / (max - min))) in float64; all 0 if max == min."""
    if not len(raw):
        return raw
    low, high = int(raw.min()), int(raw.max())
    if high == low:
        return np.zeros(len(raw), np.int64)
    return (100.0 * ((raw - low).astype(np.float64) / float(high - low))).astype(np.int64)


class InterPodAffinity(Plugin):
    """Filter: required pod (anti-)affinity, both ways; score: preferred terms and existing pods' terms."""

    name = "InterPodAffinity"
    points = ("preFilter", "filter", "preScore", "score")
    normalize = NORMALIZE_MINMAX
    dynamic = True
    walks = {"filter": "interpod_per_node", "score": "interpod_per_node"}
    events = frozenset({("Pod", "Add"), ("Pod", "Update"), ("Pod", "Delete"), ("Node", "Add"), ("Node", "Update")})

    def domain_totals(self, key: str, per_node: np.ndarray) -> np.ndarray:
        """Per value of label ``key``, the sum of ``per_node`` over the nodes with that value."""
        ids, values = self.state.domains(key)
        has = ids >= 0
        return np.bincount(ids[has], weights=per_node[has], minlength=len(values))

    def in_matching_domain(self, key: str, per_node: np.ndarray) -> np.ndarray:
        """Per node: it has label ``key`` and its domain sums a positive ``per_node``."""
        ids = self.state.domains(key)[0]
        totals = self.domain_totals(key, per_node)
        return (ids >= 0) & (totals[np.maximum(ids, 0)] > 0 if len(totals) else False)

    def affinity_ok(self, pod: Pod, affinity: list[Term]) -> np.ndarray:
        """Per node: the pod's required affinity terms are satisfied (satisfyPodAffinity)."""
        ns = self.state.namespaces
        n = self.state.num_nodes
        all_match = self.state.matching_pods_per_node(
            ("ipa-all", tuple(affinity)), lambda p: all(t.matches(p, ns) for t in affinity)
        )
        exists, has_keys, any_match = np.ones(n, bool), np.ones(n, bool), False
        for t in affinity:
            ids = self.state.domains(t.key)[0]
            any_match |= bool(self.domain_totals(t.key, all_match).any())
            has_keys &= ids >= 0
            exists &= self.in_matching_domain(t.key, all_match)
        if not any_match and all(t.matches(pod, ns) for t in affinity):
            exists = has_keys  # the first pod of a group that matches its own affinity
        return exists & has_keys

    def existing_anti_blocked(self, existing: list) -> np.ndarray:
        """Per node: in the domain of an existing pod whose required anti-affinity matches the incoming pod."""
        blocked = np.zeros(self.state.num_nodes, bool)
        for bp, t in existing:
            ids = self.state.domains(t.key)[0]
            value = ids[bp.node]
            if value >= 0:
                blocked |= ids == value
        return blocked

    def prefilter(self, pod: Pod):
        """(status per node, blocked by existing pods' anti-affinity), or SKIP when no term applies."""
        check_terms(pod)
        affinity, anti = terms(pod, "podAffinity", True), terms(pod, "podAntiAffinity", True)
        ns = self.state.namespaces
        existing = [
            (bp, t)
            for bp in self.state.affinity_pods.values()
            for t in terms(bp.pod, "podAntiAffinity", True)
            if t.key in self.state.nodes[bp.node].labels and t.matches(pod, ns)
        ]
        if not affinity and not anti and not existing:
            return SKIP
        codes = np.zeros(self.state.num_nodes, np.int8)
        if affinity:
            codes[~self.affinity_ok(pod, affinity)] = UNRESOLVABLE
        for t in anti:
            matching = self.state.matching_pods_per_node(("ipa", t), matcher(t, ns))
            codes[(codes == SUCCESS) & self.in_matching_domain(t.key, matching)] = UNSCHEDULABLE
        existing_block = self.existing_anti_blocked(existing) & (codes == SUCCESS)
        codes[existing_block] = UNSCHEDULABLE
        return codes, existing_block

    def filter(self, ctx, pod: Pod) -> np.ndarray:
        """The statuses PreFilter computed."""
        return ctx[0]

    def reasons(self, ctx, pod: Pod, node: int) -> tuple[str, ...]:
        """Affinity, existing pods' anti-affinity, or the pod's anti-affinity reason."""
        codes, existing_block = ctx
        if codes[node] == UNRESOLVABLE:
            return (REASON_AFFINITY,)
        return (REASON_EXISTING_ANTI,) if existing_block[node] else (REASON_ANTI,)

    def contributions(self, pod: Pod) -> list[tuple[str, np.ndarray]]:
        """(topology key, score added per node) of every term that counts for the pod's score."""
        ns, hard = self.state.namespaces, self.args["hardPodAffinityWeight"]
        out = []
        for sign, group in ((1, terms(pod, "podAffinity", False)), (-1, terms(pod, "podAntiAffinity", False))):
            for t in group:
                counts = self.state.matching_pods_per_node(("ipa", t), matcher(t, ns))
                if counts.any():
                    out.append((t.key, sign * t.weight * counts))
        for bp in self.state.affinity_pods.values():
            weighted = [(t, hard) for t in terms(bp.pod, "podAffinity", True)] if hard > 0 else []
            weighted += [(t, t.weight) for t in terms(bp.pod, "podAffinity", False)]
            weighted += [(t, -t.weight) for t in terms(bp.pod, "podAntiAffinity", False)]
            for t, weight in weighted:
                if t.matches(pod, ns):
                    one = np.zeros(self.state.num_nodes, np.int64)
                    one[bp.node] = weight
                    out.append((t.key, one))
        return out

    def node_scores(self, pod: Pod):
        """Raw score of every node (independent of which nodes are scored), or SKIP."""
        has_constraints = bool(terms(pod, "podAffinity", False) or terms(pod, "podAntiAffinity", False))
        if self.args["ignorePreferredTermsOfExistingPods"] and not has_constraints:
            return SKIP
        contributions = self.contributions(pod)
        if not contributions:
            return SKIP
        labelled = np.array([bool(node.labels) for node in self.state.nodes], bool)
        by_key: dict[str, np.ndarray] = {}
        for key, per_node in contributions:
            ids, values = self.state.domains(key)
            has = (ids >= 0) & labelled
            totals = np.bincount(ids[has], weights=per_node[has], minlength=len(values)).astype(np.int64)
            by_key[key] = by_key[key] + totals if key in by_key else totals
        if not by_key:
            return SKIP
        raw = np.zeros(self.state.num_nodes, np.int64)
        for key, totals in by_key.items():
            ids = self.state.domains(key)[0]
            raw += np.where(ids >= 0, totals[np.maximum(ids, 0)] if len(totals) else 0, 0)
        return raw

    def prescore(self, pod: Pod, nodes: np.ndarray):
        """Every node's raw score (:meth:`node_scores`), or SKIP."""
        return self.node_scores(pod)

    def score(self, raw: np.ndarray, pod: Pod, nodes: np.ndarray) -> np.ndarray:
        """The raw scores of ``nodes``."""
        return raw[nodes]

    def plan_score(self, pod: Pod, weight: int, plan: PlanBuilder) -> bool:
        """As the default, but a pod with preferred terms of its own has a plan that changes with every bind even
        while PreScore skips (no pod matches its terms yet: the next bind may match)."""
        if terms(pod, "podAffinity", False) or terms(pod, "podAntiAffinity", False):
            plan.dynamic = True
        return super().plan_score(pod, weight, plan)

    def normalize_score(self, raw: np.ndarray, ctx, nodes: np.ndarray) -> np.ndarray:
        """:func:`minmax_normalize`."""
        return minmax_normalize(raw)
