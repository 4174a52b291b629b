"""NodeAffinity (``plugins/nodeaffinity``): nodeSelector and required terms filter, preferred terms score.

The scheduler's ``addedAffinity`` argument is enforced before the pod's own
affinity (its own reason text). Results depend only on node labels, so they are
cached per pod affinity and recomputed only when nodes change.
"""

from __future__ import annotations

import json

import numpy as np

from kbench.api.core import Pod
from kbench.api.selectors import node_selector_matches, node_selector_term_matches
from kbench.scheduler.plugins import NORMALIZE_DEFAULT, SKIP, SUCCESS, UNRESOLVABLE, Plugin, Rejection

REASON_POD = "node(s) didn't match Pod's node affinity/selector"
REASON_ENFORCED = "node(s) didn't match scheduler-enforced node affinity"


def _named_nodes(required: dict) -> set[str] | None:
    """Nodes a required affinity can only match by metadata.name (PreFilterResult), or None if unrestricted."""
    names: set[str] = set()
    for term in required.get("nodeSelectorTerms") or []:
        ins = [
            set(f.get("values") or [])
            for f in term.get("matchFields") or []
            if f.get("key") == "metadata.name" and f.get("operator") == "In"
        ]
        if not ins:
            return None  # a term without a name restriction: any node may match
        names |= set.intersection(*ins)
    return names


def required_affinity_matches(state, pod: Pod) -> np.ndarray:
    """Per node: the pod's nodeSelector and required node affinity match (RequiredNodeAffinity.Match)."""
    required = (pod.affinity.get("nodeAffinity") or {}).get("requiredDuringSchedulingIgnoredDuringExecution")
    key = ("node-affinity", json.dumps([required, pod.node_selector], sort_keys=True))
    return state.per_node(
        key,
        lambda: np.array(
            [
                all(n.labels.get(k) == v for k, v in pod.node_selector.items())
                and node_selector_matches(required, n.labels, n.name)
                for n in state.nodes
            ],
            bool,
        ),
    )


class NodeAffinity(Plugin):
    name = "NodeAffinity"
    normalize = NORMALIZE_DEFAULT

    def __init__(self, args, state):
        super().__init__(args, state)
        added = args.get("addedAffinity") or {}
        self.added_required = added.get("requiredDuringSchedulingIgnoredDuringExecution")
        self.added_preferred = added.get("preferredDuringSchedulingIgnoredDuringExecution") or []

    def _node_affinity(self, pod: Pod) -> dict:
        return pod.affinity.get("nodeAffinity") or {}

    def prefilter(self, pod: Pod):
        required = self._node_affinity(pod).get("requiredDuringSchedulingIgnoredDuringExecution")
        if required is None and not pod.node_selector and self.added_required is None:
            return SKIP
        if required is not None and _named_nodes(required) == set():
            raise Rejection(UNRESOLVABLE, ("pod affinity terms conflict",))
        return required

    def prefilter_nodes(self, required) -> set[str] | None:
        names = None if required in (None, SKIP) else _named_nodes(required)
        if self.added_required is not None:
            added = _named_nodes(self.added_required)
            if added is not None:
                names = added if names is None else names & added
        return names

    def _enforced(self) -> np.ndarray:
        key = ("enforced-node-affinity", json.dumps(self.added_required, sort_keys=True))
        return self.state.per_node(
            key,
            lambda: np.array(
                [node_selector_matches(self.added_required, n.labels, n.name) for n in self.state.nodes], bool
            ),
        )

    def filter(self, required, pod: Pod) -> np.ndarray:
        ok = required_affinity_matches(self.state, pod)
        if self.added_required is not None:
            ok = ok & self._enforced()
        return np.where(ok, SUCCESS, UNRESOLVABLE).astype(np.int8)

    def reasons(self, required, pod: Pod, node: int):
        if self.added_required is not None and not self._enforced()[node]:
            return (REASON_ENFORCED,)
        return (REASON_POD,)

    def prescore(self, pod: Pod, nodes: np.ndarray):
        preferred = self._node_affinity(pod).get("preferredDuringSchedulingIgnoredDuringExecution") or []
        if not preferred and not self.added_preferred:
            return SKIP
        return [*preferred, *self.added_preferred]

    def score(self, preferred, pod: Pod, nodes: np.ndarray) -> np.ndarray:
        def weights():
            out = np.zeros(self.state.num_nodes, np.int64)
            for term in preferred:
                weight = term.get("weight", 0)
                if weight == 0:
                    continue
                pref = term.get("preference") or {}
                out += np.array(
                    [weight if node_selector_term_matches(pref, n.labels, n.name) else 0 for n in self.state.nodes],
                    np.int64,
                )
            return out

        return self.state.per_node(("preferred-node-affinity", json.dumps(preferred, sort_keys=True)), weights)[nodes]
