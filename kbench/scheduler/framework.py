"""One scheduling cycle, as ``pkg/scheduler/schedule_one.go`` runs it, over the NumPy plugin references.

PreFilter, Filter (every node, plugins in profile order; a node's status is its
first failing plugin's), the feasible nodes taken in upstream's rotating order
until ``numFeasibleNodesToFind``, PreScore (plugins that Skip leave the sum),
Score, NormalizeScore, the weighted sum, and selectHost. This is the reference
the fused kernel is held to, and the source of the per-plugin breakdown.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from kbench.api.core import Pod
from kbench.componentconfig import ConfigError
from kbench.scheduler.interface import (
    CODE_NAMES,
    SKIP,
    SUCCESS,
    UNRESOLVABLE,
    Handle,
    Plugin,
    Rejection,
    fit_error_message,
)
from kbench.scheduler.nominator import Nominator
from kbench.scheduler.plugins.registry import new_plugin
from kbench.scheduler.profile import Profile
from kbench.scheduler.select import new_rng, select_host
from kbench.scheduler.state import ClusterState

MIN_FEASIBLE_NODES_TO_FIND = 100
MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND = 5
NO_NODES_AVAILABLE = "no nodes available to schedule pods"
"""ErrNoNodesAvailable (pkg/scheduler/schedule_one.go): the message of a cycle with no nodes at all."""


def num_feasible_nodes_to_find(percentage: int, num_all_nodes: int) -> int:
    """schedule_one.go numFeasibleNodesToFind (percentage 0 = adaptive: 50 - nodes/125, at least 5%)."""
    if num_all_nodes < MIN_FEASIBLE_NODES_TO_FIND:
        return num_all_nodes
    if percentage == 0:
        percentage = max(50 - num_all_nodes // 125, MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND)
    return max(num_all_nodes * percentage // 100, MIN_FEASIBLE_NODES_TO_FIND)


@dataclass
class CycleResult:
    """The outcome of one scheduling cycle."""

    node: int | None
    message: str = ""
    evaluated: int = 0
    """Nodes filtered (upstream's processed nodes)."""
    feasible: int = 0
    scored: int = 0
    statuses: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    scores: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=dict, repr=False)
    scored_nodes: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64), repr=False)
    rejectors: set[str] = field(default_factory=set)
    """Plugins that rejected some node (Diagnosis.UnschedulablePlugins), for the queue's event hints."""
    score_plugins: int = 0
    """Score plugins that ran (did not Skip)."""
    scans: tuple[str, ...] = ()
    """"<plugin>/filter" or "<plugin>/score" for each PreFilter/PreScore that walked every node
    (PodTopologySpread, InterPodAffinity)."""

    @classmethod
    def rejected(cls, num_nodes: int, rejection: Rejection) -> CycleResult:
        """A cycle that a PreFilter plugin ended: no node, the FitError message over all ``num_nodes``."""
        reasons = "; ".join(rejection.reasons)
        return cls(None, f"0/{num_nodes} nodes are available: {reasons}.", rejectors={rejection.plugin})


class Framework:
    """A profile's plugins over a cluster state, with upstream's rotating start index and a seeded selectHost.

    Parameters
    ----------
    profile : Profile
        From :func:`kbench.scheduler.config.parse_config`.
    state : ClusterState
        Nodes and bound pods.
    percentage_of_nodes_to_score : int
        The configuration's global value (the profile's wins when set).
    seed : int
        Seed of selectHost's stream.
    default_selector : callable, optional
        ``pod -> labelSelector`` from its Services and controllers, for PodTopologySpread's defaults.
    binder : callable, optional
        ``binder(pod, node_name) -> Event``: the binding request the bind plugins make (see :meth:`bind`).
    pdbs : callable, optional
        ``() -> list of PodDisruptionBudget``, the PDB lister DefaultPreemption reads.

    Raises
    ------
    ConfigError
        If the profile enables no bind plugin (upstream's NewFramework refuses it too).
    """

    def __init__(
        self,
        profile: Profile,
        state: ClusterState,
        percentage_of_nodes_to_score: int = 0,
        seed: int = 0,
        default_selector: Callable[[Pod], dict | None] | None = None,
        binder: Callable[[Pod, str], Any] | None = None,
        pdbs: Callable[[], list] | None = None,
    ) -> None:
        self.profile, self.state, self.seed = profile, state, seed
        pct = profile.percentage_of_nodes_to_score
        self.percentage = percentage_of_nodes_to_score if pct is None else pct
        handle = self.handle = Handle(state, default_selector, binder, self, pdbs)
        self.nominator = Nominator()
        self.planner: Callable[[Pod], Any] | None = None
        """The compiled path's plan of a pod (set by :class:`~kbench.scheduler.kernel.KernelScheduler`), which
        DefaultPreemption's compiled dry run reads."""
        self.plugins: dict[str, Plugin] = {
            name: new_plugin(name, profile.args.get(name, {}), handle)
            for name in dict.fromkeys(
                profile.enabled("queueSort")
                + profile.enabled("preFilter")
                + profile.enabled("filter")
                + profile.enabled("score")
                + profile.enabled("postFilter")
                + profile.enabled("bind")
            )
        }
        self.filters = [self.plugins[n] for n in profile.enabled("filter")]
        self.prefilters = [self.plugins[n] for n in profile.enabled("preFilter")]
        self.scorers = [(self.plugins[n], profile.weights[n]) for n in profile.enabled("score")]
        self.binders = [self.plugins[n] for n in profile.enabled("bind")]
        self.post_filters = [self.plugins[n] for n in profile.enabled("postFilter")]
        if not self.binders:  # runtime/framework.go NewFramework
            name = profile.scheduler_name
            raise ConfigError(f"at least one bind plugin is needed for profile with scheduler name {name!r}")
        self.queue_sort = self.plugins[profile.enabled("queueSort")[0]]
        self.rng = new_rng(seed)
        self.next_start = 0

    # -- filtering ------------------------------------------------------------------
    def prefilter(self, pod: Pod) -> dict[str, object]:
        """Run PreFilter; returns each plugin's context (SKIP when it has nothing to check)."""
        out = {}
        for p in self.prefilters:
            try:
                out[p.name] = p.prefilter(pod)
            except Rejection as rejection:
                rejection.plugin = p.name
                raise
        return out

    def filter_all(self, pod: Pod, ctx: dict[str, object]) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        """Every node's status: (code, index of the first failing filter or -1, per-plugin codes)."""
        n = self.state.num_nodes
        code = np.zeros(n, np.int8)
        first = np.full(n, -1, np.int64)
        per_plugin = {}
        for j, plugin in enumerate(self.filters):
            c = ctx.get(plugin.name)
            codes = np.zeros(n, np.int8) if c is SKIP else plugin.filter(c, pod)
            per_plugin[plugin.name] = codes
            fresh = (first < 0) & (codes != SUCCESS)
            first[fresh] = j
            code[fresh] = codes[fresh]
        return code, first, per_plugin

    def filter_nominated(self, pod: Pod, ctx: dict[str, object]) -> tuple[np.ndarray, np.ndarray, dict, dict]:
        """:meth:`filter_all` as RunFilterPluginsWithNominatedPods runs it: on a node where nominated pods of at
        least the pod's priority wait, the filters run with them added, then (if they passed) without them.
        Returns (code, first, per-plugin codes, {node: reasons} of the nodes the nominated pods made fail)."""
        code, first, per_plugin = self.filter_all(pod, ctx)
        if not len(self.nominator):
            return code, first, per_plugin, {}
        if any(p.dynamic and ctx.get(p.name) is not SKIP for p in self.filters):
            by_node: dict[int, list[Pod]] = {}
            for other, i in self.nominator.for_pod(pod):
                by_node.setdefault(i, []).append(other)
            return self._nominated_per_node(pod, by_node, code, first, per_plugin)
        held = self.nominator.held(pod, len(self.state.resources))
        if not len(held[0]):
            return code, first, per_plugin, {}
        return self._nominated_fit(pod, ctx, held, code, first, per_plugin)

    def _nominated_per_node(self, pod: Pod, by_node: dict, code, first, per_plugin):
        """Every filter again on each node with its nominated pods added (filters that read other pods)."""
        reasons = {}
        for i, pods in by_node.items():
            with self.state.added([(p, i) for p in pods]):
                try:
                    ctx = self.prefilter(pod)
                except Rejection as rejection:  # the nominated pods' AddPod made PreFilter reject the pod here
                    rejecting = next((j for j, f in enumerate(self.filters) if f.name == rejection.plugin), 0)
                    code[i], first[i], reasons[i] = rejection.code, rejecting, rejection.reasons  # its filter rejects
                    continue
                with_code, with_first, _ = self.filter_all(pod, ctx)
                if with_code[i] != SUCCESS:
                    plugin = self.filters[with_first[i]]
                    code[i], first[i] = with_code[i], with_first[i]
                    reasons[i] = plugin.reasons(ctx.get(plugin.name), pod, i)
        return code, first, per_plugin, reasons

    def _nominated_fit(self, pod: Pod, ctx: dict, held: tuple, code, first, per_plugin):
        """Only NodeResourcesFit reads other pods: its Filter with the nominated pods' requests added on their
        nodes; each such node's status is then its first failing filter."""
        fit = next((p for p in self.filters if p.name == "NodeResourcesFit" and ctx.get(p.name) is not SKIP), None)
        if fit is None:
            return code, first, per_plugin, {}
        state = self.state
        nodes, added, counts = held
        state.requested[:, nodes] += added
        state.pod_count[nodes] += counts
        try:
            fit_codes = fit.filter(ctx[fit.name], pod)
            found = {i: fit.reasons(ctx[fit.name], pod, i) for i in nodes.tolist() if fit_codes[i] != SUCCESS}
        finally:
            state.requested[:, nodes] -= added
            state.pod_count[nodes] -= counts
        codes = np.stack([(fit_codes if p is fit else per_plugin[p.name])[nodes] for p in self.filters])
        failed = codes != SUCCESS
        at = np.argmax(failed, axis=0)
        any_failed = failed.any(axis=0)
        code[nodes] = np.where(any_failed, codes[at, np.arange(len(nodes))], SUCCESS)
        first[nodes] = np.where(any_failed, at, -1)
        return code, first, per_plugin, {i: r for i, r in found.items() if first[i] == self.filters.index(fit)}

    def nominate(self, pod: Pod, node: int) -> None:
        """AddNominatedPod: ``pod`` counts on ``node`` for pods of no higher priority until bound or cleared."""
        self.nominator.add(pod, node, self.state.vector(pod.requests))

    def node_statuses(self, pod: Pod) -> np.ndarray:
        """Every node's status code after a failed cycle (Diagnosis.NodeToStatus, with nominated pods); a PreFilter
        rejection gives every node its code, and nodes outside a PreFilterResult are UnschedulableAndUnresolvable."""
        n = self.state.num_nodes
        try:
            ctx = self.prefilter(pod)
        except Rejection as rejection:
            return np.full(n, rejection.code, np.int8)
        code = self.filter_nominated(pod, ctx)[0]
        subset = self.subset(ctx)[0]
        if subset is not None:
            outside = np.ones(n, bool)
            outside[subset] = False
            code[outside] = UNRESOLVABLE
        return code

    def subset(self, ctx: dict[str, object]) -> tuple[np.ndarray | None, list[str]]:
        """Nodes allowed by the PreFilterResults (sorted indices; None = all) and the plugins that narrowed."""
        names, plugins = None, []
        for plugin in self.prefilters:
            c = ctx.get(plugin.name)
            allowed = None if c is SKIP else plugin.prefilter_nodes(c)
            if allowed is not None:
                names = allowed if names is None else names & allowed
                plugins.append(plugin.name)
        if names is None:
            return None, plugins
        return np.array(sorted(self.state.index[n] for n in names if n in self.state.index), np.int64), plugins

    def rejectors(self, first: np.ndarray, ctx: dict) -> set[str]:
        """Names of the filters that were some node's first failure, plus the PreFilterResult plugins."""
        names = {self.filters[j].name for j in np.unique(first[first >= 0]).tolist()}
        return names | set(self.subset(ctx)[1])

    def fit_error(self, pod: Pod, ctx: dict, first: np.ndarray, overrides: dict | None = None) -> str:
        """FitError.Error(): '0/N nodes are available: <count> <reason>, ...' sorted as strings (``overrides``:
        reasons of nodes that failed with nominated pods added)."""
        counts: Counter[str] = Counter()
        subset, narrowing = self.subset(ctx)
        if subset is not None:  # nodes outside the PreFilterResult were never filtered
            outside = self.state.num_nodes - len(subset)
            if outside:
                counts[f"node(s) didn't satisfy plugin(s) [{', '.join(sorted(narrowing))}]"] += outside
            first = np.where(np.isin(np.arange(len(first)), subset), first, -1)
        overrides = overrides or {}
        for node in np.flatnonzero(first >= 0).tolist():
            plugin = self.filters[first[node]]
            counts.update(overrides.get(node) or plugin.reasons(ctx.get(plugin.name), pod, node))
        return fit_error_message(self.state.num_nodes, counts)

    # -- one cycle ------------------------------------------------------------------
    def take_feasible(self, feasible: np.ndarray, subset: np.ndarray | None = None) -> tuple[np.ndarray, int]:
        """Nodes scored, in evaluation order from the rotating start, and how many nodes were processed.

        Filtering stops at the first feasible node beyond ``numFeasibleNodesToFind``; the nodes before it
        (feasible or not) were processed, so the next cycle starts there (sequential findNodesThatPassFilters).
        A PreFilterResult ``subset`` is all that is searched.
        """
        candidates = np.arange(len(feasible)) if subset is None else subset
        n = len(candidates)
        if n == 0:
            return candidates, 0
        order = candidates[(self.next_start + np.arange(n)) % n]
        hits = np.flatnonzero(feasible[order])
        want = 1 if not self.scorers else num_feasible_nodes_to_find(self.percentage, n)
        if len(hits) > want:
            return order[hits[:want]], int(hits[want])
        return order[hits], n

    def schedule(self, pod: Pod, detail: bool = False) -> CycleResult:
        """Choose a node for ``pod`` (None with upstream's message when none fits); the state is not changed."""
        n = self.state.num_nodes
        if n == 0:
            return CycleResult(None, NO_NODES_AVAILABLE)
        try:
            ctx = self.prefilter(pod)
        except Rejection as rejection:
            return CycleResult.rejected(n, rejection)
        code, first, per_plugin, overrides = self.filter_nominated(pod, ctx)
        nominated = self.nominator.node_of(pod.key)
        if nominated is not None and code[nominated] == SUCCESS and not detail:  # evaluateNominatedNode
            self.next_start = (self.next_start + 1) % n
            return CycleResult(nominated, evaluated=1, feasible=1)
        nodes, processed = self.take_feasible(code == SUCCESS, self.subset(ctx)[0])
        self.next_start = (self.next_start + processed) % n
        result = CycleResult(None, evaluated=processed, feasible=len(nodes), statuses=per_plugin if detail else {})
        if len(nodes) == 0:
            result.message = self.fit_error(pod, ctx, first, overrides)
            result.rejectors = self.rejectors(first, ctx)
            return result
        if len(nodes) == 1 and not detail:
            result.node = int(nodes[0])
            return result
        totals = self.score(pod, nodes, result.scores)
        result.scored, result.scored_nodes = len(nodes), nodes
        result.node = int(nodes[0]) if len(nodes) == 1 else int(nodes[select_host(totals, self.rng)])
        return result

    def score(self, pod: Pod, nodes: np.ndarray, detail: dict | None = None) -> np.ndarray:
        """Weighted sum of the normalized scores of the plugins that do not Skip."""
        totals = np.zeros(len(nodes), np.int64)
        for plugin, weight in self.scorers:
            ctx = plugin.prescore(pod, nodes)
            if ctx is SKIP:
                continue
            raw = plugin.score(ctx, pod, nodes)
            final = plugin.normalize_score(raw, ctx, nodes)
            totals += weight * final
            if detail is not None:
                detail[plugin.name] = (raw, final, weight * final)
        return totals

    def bind(self, pod: Pod, node: str) -> Any:
        """RunBindPlugins: the first bind plugin that does not Skip binds the pod; returns its event."""
        for plugin in self.binders:
            event = plugin.bind(pod, node)
            if event is not SKIP:
                return event
        raise RuntimeError(f"every bind plugin skipped pod {pod.key}")

    def breakdown(self, pod: Pod) -> pd.DataFrame:
        """Per node: each filter's status (with upstream's reasons), each score plugin's raw, normalized and
        weighted score, and the total, as kube-scheduler-simulator shows them. Every feasible node is scored
        (the rotating percentageOfNodesToScore window is not applied) and the state is not changed."""
        ctx = self.prefilter(pod)
        code, first, per_plugin = self.filter_all(pod, ctx)
        table = pd.DataFrame({"node": [node.name for node in self.state.nodes]})
        for plugin in self.filters:
            codes, c_ctx = per_plugin[plugin.name], ctx.get(plugin.name)
            table[f"filter/{plugin.name}"] = [
                CODE_NAMES[c] if c == SUCCESS else f"{CODE_NAMES[c]}: {', '.join(plugin.reasons(c_ctx, pod, i))}"
                for i, c in enumerate(codes.tolist())
            ]
        table["feasible"] = code == SUCCESS
        nodes = np.flatnonzero(code == SUCCESS)
        detail: dict = {}
        totals = self.score(pod, nodes, detail) if len(nodes) else np.zeros(0, np.int64)
        for name, (raw, final, weighted) in detail.items():
            for label, values in (("raw", raw), ("normalized", final), ("weighted", weighted)):
                column = np.full(len(table), np.nan)
                column[nodes] = values
                table[f"score/{name}/{label}"] = column
        total = np.full(len(table), np.nan)
        total[nodes] = totals
        table["score/total"] = total
        return table
