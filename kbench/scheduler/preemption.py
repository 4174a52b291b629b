"""DefaultPreemption's evaluator, as ``pkg/scheduler/framework/preemption/preemption.go`` (Preempt, findCandidates,
DryRunPreemption, SelectCandidate, pickOneNodeForPreemption) and ``plugins/defaultpreemption/default_preemption.go``
(PodEligibleToPreemptOthers, SelectVictimsOnNode, filterPodsWithPDBViolation, calculateNumCandidates) run them in
v1.35, over a plain reference and a compiled dry run (``_preemption_kernels.py``).

The reference removes a node's lower-priority pods from the scheduler's state, runs the profile's filters (with
nominated pods, as RunFilterPluginsWithNominatedPods), re-adds the pods one by one (those whose eviction breaks a
PodDisruptionBudget first, each most important first) and keeps those that still fit. The compiled path does the
same arithmetic for a pod whose other filters do not depend on bound pods (no host ports, topology spread or
inter-pod affinity) and at most 63 budgets; otherwise the reference runs. Where upstream is not deterministic,
kbench is: the dry run is sequential (upstream's parallel workers stop at the same count), pods of equal priority
and start time are ordered by when they were bound, pods without ``status.startTime`` count as starting now
(GetPodStartTime), and the last tie of pickOneNodeForPreemption goes to the first candidate in dry-run order
(upstream: Go's map order).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from kbench.api.core import Pod
from kbench.scheduler import _preemption_kernels as kp
from kbench.scheduler.interface import SUCCESS, UNRESOLVABLE, UNSCHEDULABLE, Rejection, fit_error_message
from kbench.scheduler.state import CORE_RESOURCES, CPU, EPHEMERAL, MEMORY, PODS, ClusterState

NO_VICTIMS = "No preemption victims found for incoming pod"
NO_VICTIMS_REASONS: tuple[str, ...] = (NO_VICTIMS,)
NOT_HELPFUL = "Preemption is not helpful for scheduling"
"""The status of nodes absent from the dry run's statuses when no candidate is found (findCandidates/Preempt)."""
NEVER = "not eligible due to preemptionPolicy=Never."
TERMINATING = "not eligible due to a terminating pod on the nominated node."
MAX_PDBS = 63
"""Budgets the compiled path tracks (one bit each of an int64 mask); more run through the reference."""


@dataclass
class Candidate:
    """A node where the preemptor fits once ``victims`` (most important first) are evicted."""

    node: str
    victims: list[Pod]
    num_pdb_violations: int


@dataclass
class Outcome:
    """PostFilter's result: the node to nominate (``""``: clear the nomination, None: keep it), its victims, the
    status message ("" on success), and the dry run's candidates and per-node statuses."""

    node: str | None
    victims: list[Pod] = field(default_factory=list)
    message: str = ""
    evaluations: int = 0
    """Nodes the filters ran on in the dry run (the cycle's cost)."""
    found: list[Candidate] | Callable[[], list[Candidate]] = field(default_factory=list, repr=False)
    rejected: dict | Callable[[], dict] = field(default_factory=dict, repr=False)

    @property
    def candidates(self) -> list[Candidate]:
        """The dry run's candidates: the non-violating ones, then the others, each in dry-run order (built on
        first use: the scheduler needs only the chosen one)."""
        if callable(self.found):
            self.found = self.found()
        return self.found

    @property
    def statuses(self) -> dict[str, tuple[int, tuple[str, ...]]]:
        """Node name -> (code, reasons) of the potential nodes the dry run rejected (built on first use)."""
        if callable(self.rejected):
            self.rejected = self.rejected()
        return self.rejected


def start_of(pod: Pod, now: float) -> float:
    """GetPodStartTime: ``status.startTime``, or now."""
    return now if pod.start_time is None else pod.start_time


def more_important_pod(a: Pod, b: Pod, now: float = 0.0) -> bool:
    """util.MoreImportantPod: the higher priority, then the earlier start."""
    if a.priority != b.priority:
        return a.priority > b.priority
    return start_of(a, now) < start_of(b, now)


def filter_pods_with_pdb_violation(pods: Sequence[Pod], pdbs: Sequence[Any]) -> tuple[list[Pod], list[Pod]]:
    """filterPodsWithPDBViolation: (violating, non-violating), each in the given order; a pod violates when a budget
    selecting it has no disruption left once the pods before it are counted (pods in its disruptedPods are not)."""
    allowed = [pdb.disruptions_allowed for pdb in pdbs]
    violating: list[Pod] = []
    fine: list[Pod] = []
    for pod in pods:
        violated = False
        for b, pdb in enumerate(pdbs):
            if pod.labels and pdb.selects(pod.namespace, pod.labels) and pod.name not in pdb.disrupted_pods:
                allowed[b] -= 1
                violated |= allowed[b] < 0
        (violating if violated else fine).append(pod)
    return violating, fine


def get_earliest_pod_start_time(pods: Sequence[Pod], now: float) -> float | None:
    """util.GetEarliestPodStartTime: the earliest start among the pods of the highest priority (None: no pods)."""
    if not pods:
        return None
    top = max(p.priority for p in pods)
    return min(start_of(p, now) for p in pods if p.priority == top)


def nodes_where_preemption_might_help(codes: np.ndarray) -> np.ndarray:
    """nodesWherePreemptionMightHelp (v1.35): the nodes whose status is Unschedulable; UnschedulableAndUnresolvable
    ones are not tried."""
    return np.flatnonzero(codes == UNSCHEDULABLE)


def calculate_num_candidates(num_nodes: int, percentage: int, absolute: int) -> int:
    """calculateNumCandidates: ``percentage`` of the nodes, at least ``absolute``, at most all."""
    return min(max(num_nodes * percentage // 100, absolute), num_nodes)


def pick_one_node_for_preemption(candidates: Sequence[Candidate], now: float = 0.0) -> str:
    """pickOneNodeForPreemption with the default criteria, in upstream's order; ties go to the first."""
    if not candidates:
        return ""

    def earliest_top(c: Candidate) -> float:  # criterion 5: the latest start of the highest-priority victims
        start = get_earliest_pod_start_time(c.victims, now)
        assert start is not None  # a candidate has victims
        return start

    criteria = (
        lambda c: -c.num_pdb_violations,
        lambda c: -c.victims[0].priority,
        lambda c: -sum(p.priority + kp.MAX_INT32 + 1 for p in c.victims),
        lambda c: -len(c.victims),
        earliest_top,
    )
    alive = list(candidates)
    for score in criteria:
        best = max(score(c) for c in alive)
        alive = [c for c in alive if score(c) == best]
        if len(alive) == 1:
            break
    return alive[0].node


def fit_reasons(state: ClusterState, mask: int) -> tuple[str, ...]:
    """NodeResourcesFit's reasons for a failure mask of the compiled dry run, in fitsRequest's order."""
    extended = sorted(range(len(CORE_RESOURCES), len(state.resources)), key=lambda r: state.resources[r])
    out = ["Too many pods"] if mask >> PODS & 1 else []
    return (*out, *(f"Insufficient {state.resources[r]}" for r in (CPU, MEMORY, EPHEMERAL, *extended) if mask >> r & 1))


class Evaluator:
    """The preemption evaluator of one framework (its state, filters, nominator and PDB lister).

    Parameters
    ----------
    framework : Framework
    percentage, absolute : int
        DefaultPreemptionArgs minCandidateNodesPercentage and minCandidateNodesAbsolute.
    rng : numpy.random.Generator
        getOffsetRand's stream.
    compiled : bool
        Use the compiled dry run where it applies.
    """

    def __init__(self, framework, percentage: int, absolute: int, rng: np.random.Generator, compiled: bool = True):
        self.fw, self.state = framework, framework.state
        self.percentage, self.absolute, self.rng, self.compiled = percentage, absolute, rng, compiled
        self.offset: int | None = None
        """A fixed dry-run offset (upstream's tests override getOffsetRand the same way); None: drawn."""
        self._masks: dict[tuple, list[int]] = {}

    # -- Preempt --------------------------------------------------------------------------------------------------
    def preempt(self, pod: Pod, now: float = 0.0) -> Outcome:
        """Evaluator.Preempt after a failed cycle of ``pod``."""
        if pod.preemption_policy == "Never":  # before any filter runs
            return Outcome(None, message=f"preemption: {NEVER}")
        codes = self.fw.node_statuses(pod)
        eligible, message = self.eligible(pod, codes)
        if not eligible:
            return Outcome(None, message=message)
        potential = nodes_where_preemption_might_help(codes)
        n = self.state.num_nodes
        if len(potential) == 0:
            return Outcome("", message=self._fit_error({}, n))
        pdbs = list(self.fw.handle.pdbs() if self.fw.handle.pdbs else [])
        offset = int(self.rng.integers(len(potential))) if self.offset is None else self.offset
        cap = calculate_num_candidates(len(potential), self.percentage, self.absolute)
        order = potential[(offset + np.arange(len(potential))) % len(potential)]
        plan = self._compiled_plan(pod, pdbs)
        if plan is None:
            outcome = self._dry_run_reference(pod, order, cap, pdbs, now)
        else:
            outcome = self._dry_run_compiled(pod, plan, order, cap, pdbs, now)
        if outcome.node is None:
            outcome.node, outcome.message = "", self._fit_error(outcome.statuses, n)
        return outcome

    def eligible(self, pod: Pod, codes: np.ndarray) -> tuple[bool, str]:
        """PodEligibleToPreemptOthers, for a pod whose preemptionPolicy is not Never (:meth:`preempt` answers that
        before any filter runs): not while a lower-priority pod evicted by preemption terminates on the pod's
        nominated node (unless that node is now UnschedulableAndUnresolvable)."""
        node = self.fw.nominator.node_of(pod.key)
        if node is not None and codes[node] != UNRESOLVABLE:
            for other in self.state.pods_on[node]:
                if other.priority < pod.priority and terminating_by_preemption(other):
                    return False, f"preemption: {TERMINATING}"
        return True, ""

    def _fit_error(self, statuses: dict[str, tuple[int, tuple[str, ...]]], n: int) -> str:
        """The FitError of a dry run without candidates: its statuses, the absent nodes 'not helpful'."""
        counts: Counter[str] = Counter()
        for _, reasons in statuses.values():
            counts.update(reasons)
        if n > len(statuses):
            counts[NOT_HELPFUL] += n - len(statuses)
        return f"preemption: {fit_error_message(n, counts)}"

    # -- the reference ---------------------------------------------------------------------------------------------
    def _status_on(self, pod: Pod, i: int) -> tuple[int, tuple[str, ...]]:
        """The filters' status of node ``i`` for ``pod`` (with nominated pods) in the current state."""
        try:
            ctx = self.fw.prefilter(pod)
        except Rejection as rejection:
            return rejection.code, rejection.reasons
        code, first, _, overrides = self.fw.filter_nominated(pod, ctx)
        if code[i] == SUCCESS:
            return SUCCESS, ()
        plugin = self.fw.filters[first[i]]
        return int(code[i]), overrides.get(i) or plugin.reasons(ctx.get(plugin.name), pod, i)

    def select_victims_on_node(self, pod: Pod, i: int, pdbs: Sequence[Any]) -> tuple[list[Pod], int, tuple, int]:
        """SelectVictimsOnNode through the filters: (victims, PDB violations, (code, reasons) when the node is no
        candidate, filter runs); the state is restored."""
        state = self.state
        lower = [state.pods[p.key] for p in state.pods_on[i] if p.priority < pod.priority]
        if not lower:
            return [], 0, (UNRESOLVABLE, NO_VICTIMS_REASONS), 0
        seqs = {b.pod.key: int(state.slots.seq[b.slot]) for b in lower}
        lower.sort(key=lambda b: (-b.pod.priority, state.slots.start[b.slot], seqs[b.pod.key]))
        pods = [b.pod for b in lower]
        for p in pods:
            state.remove(p.key)
        victims: list[Pod] = []
        try:
            status = self._status_on(pod, i)
            if status[0] != SUCCESS:
                return [], 0, status, 1
            violating, fine = filter_pods_with_pdb_violation(pods, pdbs)
            for p in violating + fine:
                self._restore(p, i, seqs[p.key])
                if self._status_on(pod, i)[0] != SUCCESS:
                    state.remove(p.key)
                    victims.append(p)
            order = {p.key: k for k, p in enumerate(pods)}
            victims.sort(key=lambda p: order[p.key])
            if not victims:
                return [], 0, none_needed(self.state.nodes[i].name), 1 + len(pods)
            breaking = {p.key for p in violating}
            return victims, sum(p.key in breaking for p in victims), (SUCCESS, ()), 1 + len(pods)
        finally:
            for p in pods:
                if p.key not in state.pods:
                    self._restore(p, i, seqs[p.key])

    def _restore(self, pod: Pod, i: int, seq: int) -> None:
        self.state.bind(pod, i)
        self.state.slots.restore(self.state.pods[pod.key].slot, seq)

    def _dry_run_reference(self, pod: Pod, order: np.ndarray, cap: int, pdbs: Sequence[Any], now: float) -> Outcome:
        """DryRunPreemption through :meth:`select_victims_on_node`, node by node from the offset."""
        rejected: dict[str, tuple[int, tuple[str, ...]]] = {}
        outcome = Outcome(None, rejected=rejected)
        good: list[Candidate] = []
        bad: list[Candidate] = []
        for i in order.tolist():
            victims, violations, status, runs = self.select_victims_on_node(pod, i, pdbs)
            outcome.evaluations += runs
            name = self.state.nodes[i].name
            if status[0] != SUCCESS:
                rejected[name] = status
                continue
            group = bad if violations else good
            if len(group) < cap:
                group.append(Candidate(name, victims, violations))
            if good and len(good) + len(bad) >= cap:
                break
        outcome.found = good + bad
        return self._select(outcome, now)

    def _select(self, outcome: Outcome, now: float) -> Outcome:
        chosen = pick_one_node_for_preemption(outcome.candidates, now)
        for c in outcome.candidates:
            if c.node == chosen:
                outcome.node, outcome.victims = c.node, c.victims
                break
        return outcome

    # -- the compiled dry run --------------------------------------------------------------------------------------
    def _compiled_plan(self, pod: Pod, pdbs: Sequence[Any]):
        """The pod's kernel plan when the compiled dry run applies to it, else None."""
        if not self.compiled or len(pdbs) > MAX_PDBS or self.fw.planner is None:
            return None
        try:
            plan = self.fw.planner(pod)
        except Rejection:
            return None
        return None if plan.dynamic else plan

    def _pdb_inputs(self, pdbs: Sequence[Any]) -> tuple[np.ndarray, ...]:
        """Per label group the bits of the budgets selecting it, the (slot, bit) exemptions of disruptedPods, and
        each budget's disruptionsAllowed."""
        slots = self.state.slots
        key = tuple((pdb.namespace, repr(pdb.selector)) for pdb in pdbs)
        masks = self._masks.setdefault(key, [])
        for namespace, labels in list(slots.groups)[len(masks) :]:
            labels_map = dict(labels)
            bits = sum(1 << b for b, pdb in enumerate(pdbs) if labels_map and pdb.selects(namespace, labels_map))
            masks.append(bits)
        exempt = [
            (self.state.pods[f"{pdb.namespace}/{name}"].slot, b)
            for b, pdb in enumerate(pdbs)
            for name in pdb.disrupted_pods
            if f"{pdb.namespace}/{name}" in self.state.pods
        ]
        return (
            np.array(masks + [0], np.int64),
            np.array([s for s, _ in exempt], np.int64),
            np.array([b for _, b in exempt], np.int64),
            np.array([pdb.disruptions_allowed for pdb in pdbs], np.int64),
        )

    def _nominated_arrays(self, pod: Pod) -> tuple[np.ndarray, np.ndarray]:
        state = self.state
        req = np.zeros_like(state.requested)
        count = np.zeros(state.num_nodes, np.int64)
        nodes, added, counts = self.fw.nominator.held(pod, len(state.resources))
        req[:, nodes], count[nodes] = added, counts
        return req, count

    def _dry_run_compiled(self, pod: Pod, plan, order: np.ndarray, cap: int, pdbs, now: float) -> Outcome:
        """DryRunPreemption and pickOneNodeForPreemption in the kernel."""
        state, slots = self.state, self.state.slots
        starts, grouped = kp.group_by_node(slots.node, state.num_nodes)
        nodes = (
            state.allocatable,
            state.requested,
            state.pod_count,
            plan.inputs.static_ok,
            *self._nominated_arrays(pod),
        )
        pods = (starts, grouped, slots.priority, slots.start, slots.seq, slots.requests, slots.group)
        fit = plan.inputs.fit_filter
        preemptor = (np.int64(pod.priority), fit.request, fit.on)
        m = len(order)
        out = tuple(np.zeros(m, np.int64) for _ in range(5)) + (
            np.zeros(m + 1, np.int64),
            np.zeros(len(grouped) + 1, np.int64),
        )
        outcome_, short, evals, cand_pos, cand_viol, vstart, vflat = out
        args = (order, cap, nodes, pods, preemptor, self._pdb_inputs(pdbs), out)
        kp.compile_dry_run(args)
        processed, cands, _ = kp.dry_run(*args)
        names = [node.name for node in state.nodes]

        def rejected() -> dict:
            """The rejected nodes' statuses; a node a filter other than NodeResourcesFit rejected takes the
            reference's (state-dependent, so built now when there is no candidate, else on first use)."""
            out = {}
            for p in np.flatnonzero(outcome_[:processed] != kp.CANDIDATE).tolist():
                kind, i = outcome_[p], int(order[p])
                if kind == kp.NO_VICTIMS:
                    out[names[i]] = (UNRESOLVABLE, NO_VICTIMS_REASONS)
                elif kind == kp.FIT_FAILED:
                    out[names[i]] = (UNSCHEDULABLE, fit_reasons(state, int(short[p])))
                elif kind == kp.NONE_NEEDED:
                    out[names[i]] = none_needed(names[i])
                else:
                    out[names[i]] = self.select_victims_on_node(pod, i, pdbs)[2]
            return out

        if not cands:
            return Outcome(None, evaluations=int(evals[:processed].sum()), rejected=rejected())
        outcome = Outcome(None, evaluations=int(evals[:processed].sum()), rejected=rejected)
        viol = cand_viol[:cands]
        ranked = np.concatenate([np.flatnonzero(viol == 0), np.flatnonzero(viol > 0)])  # upstream's two lists
        chosen = int(ranked[kp.pick_one(ranked, viol, vstart, vflat, slots.priority, slots.start, now)])
        victims = [slots.pods[s] for s in vflat[: vstart[cands]].tolist()]

        def found() -> list[Candidate]:
            return [Candidate(names[order[cand_pos[c]]], victims[vstart[c] : vstart[c + 1]], int(viol[c]))
                    for c in ranked.tolist()]  # fmt: skip

        outcome.node, outcome.victims = names[order[cand_pos[chosen]]], victims[vstart[chosen] : vstart[chosen + 1]]
        outcome.found = found
        return outcome


def none_needed(node: str) -> tuple[int, tuple[str, ...]]:
    """DryRunPreemption's error for a node SelectVictimsOnNode succeeds on without a victim."""
    return UNSCHEDULABLE, (f'expected at least one victim pod on node "{node}"',)


def terminating_by_preemption(pod: Pod) -> bool:
    """podTerminatingByPreemption: being deleted with the DisruptionTarget condition PreemptionByScheduler."""
    if not pod.terminating:
        return False
    for condition in (pod.manifest.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "DisruptionTarget":
            return condition.get("status") == "True" and condition.get("reason") == "PreemptionByScheduler"
    return False
