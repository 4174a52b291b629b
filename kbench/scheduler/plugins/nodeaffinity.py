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
from kbench.scheduler.interface import NORMALIZE_DEFAULT, SKIP, SUCCESS, UNRESOLVABLE, Handle, Plugin, Rejection
from kbench.scheduler.state import ClusterState

REASON_POD = "node(s) didn't match Pod's node affinity/selector"
REASON_ENFORCED = "node(s) didn't match scheduler-enforced node affinity"
REASON_CONFLICT = "pod affinity terms conflict"


def named_nodes(required: dict) -> set[str] | None:
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


def required_affinity_matches(state: ClusterState, pod: Pod) -> np.ndarray:
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
    """Filter: nodeSelector, required node affinity and addedAffinity; score: preferred terms' weights."""

    name = "NodeAffinity"
    points = ("preFilter", "filter", "preScore", "score")
    normalize = NORMALIZE_DEFAULT
    events = frozenset({("Node", "Add"), ("Node", "Update")})

    def __init__(self, args, handle: Handle) -> None:
        super().__init__(args, handle)
        added = args.get("addedAffinity") or {}
        self.added_required = added.get("requiredDuringSchedulingIgnoredDuringExecution")
        self.added_preferred = added.get("preferredDuringSchedulingIgnoredDuringExecution") or []

    @staticmethod
    def node_affinity(pod: Pod) -> dict:
        """The pod's ``spec.affinity.nodeAffinity`` (empty if none)."""
        return pod.affinity.get("nodeAffinity") or {}

    def prefilter(self, pod: Pod):
        """The pod's required terms; SKIP if nothing constrains it; rejects terms no node name can satisfy."""
        required = self.node_affinity(pod).get("requiredDuringSchedulingIgnoredDuringExecution")
        if required is None and not pod.node_selector and self.added_required is None:
            return SKIP
        if required is not None and named_nodes(required) == set():
            raise Rejection(UNRESOLVABLE, (REASON_CONFLICT,))
        return required

    def prefilter_nodes(self, required) -> set[str] | None:
        """The nodes named by metadata.name in the pod's and the added required terms (None: all)."""
        names = None if required in (None, SKIP) else named_nodes(required)
        if self.added_required is not None:
            added = named_nodes(self.added_required)
            if added is not None:
                names = added if names is None else names & added
        return names

    def enforced(self) -> np.ndarray:
        """Per node: the scheduler's addedAffinity required terms match."""
        key = ("enforced-node-affinity", json.dumps(self.added_required, sort_keys=True))
        return self.state.per_node(
            key,
            lambda: np.array(
                [node_selector_matches(self.added_required, n.labels, n.name) for n in self.state.nodes], bool
            ),
        )

    def filter(self, required, pod: Pod) -> np.ndarray:
        """UnschedulableAndUnresolvable where the pod's or the added required affinity does not match."""
        ok = required_affinity_matches(self.state, pod)
        if self.added_required is not None:
            ok = ok & self.enforced()
        return np.where(ok, SUCCESS, UNRESOLVABLE).astype(np.int8)

    def reasons(self, required, pod: Pod, node: int) -> tuple[str, ...]:
        """The enforced-affinity reason first, else the pod's."""
        if self.added_required is not None and not self.enforced()[node]:
            return (REASON_ENFORCED,)
        return (REASON_POD,)

    def prescore(self, pod: Pod, nodes: np.ndarray):
        """The pod's and the added preferred terms, or SKIP when there are none."""
        preferred = self.node_affinity(pod).get("preferredDuringSchedulingIgnoredDuringExecution") or []
        if not preferred and not self.added_preferred:
            return SKIP
        return [*preferred, *self.added_preferred]

    def score(self, preferred, pod: Pod, nodes: np.ndarray) -> np.ndarray:
        """Sum of the weights of the preferred terms each node matches."""

        def weights() -> np.ndarray:
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
