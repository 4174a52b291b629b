"""Heterogeneous pods scheduled one by one through compiled kernels, binding each, with upstream's FitError.

:func:`schedule_sequence` places pods in queue order exactly as ``Framework.schedule`` + bind would one at a time,
including the pods that fit nowhere (each gets upstream's message, ``0/N nodes are available: ...``). Pods of
one plan key share one plan, stacked with the others into a :class:`~kbench.scheduler.plan.PlanTable` that one
kernel call walks (``_batch_kernels.schedule_sequence``): signature trees for plans whose totals depend on each
node alone, the fused per-pod kernel for the rest, and the diagnosis of a pod that fits nowhere counted in the
kernel (:mod:`~kbench.scheduler.plantable`).

Pods whose plan changes with every bind (host ports, topology spread, inter-pod affinity), that a
PreFilterResult restricts to some nodes, or that PreFilter rejects go through the per-pod path
(:meth:`KernelScheduler.schedule`); :attr:`SequenceResult.fallbacks` counts them per reason.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from kbench.api.core import Pod
from kbench.scheduler import _batch_kernels as kb
from kbench.scheduler.interface import Rejection
from kbench.scheduler.kernel import KernelScheduler
from kbench.scheduler.plan import BindLog, Placements, Plan, PlanTable, Search, Trees, Workspace, no_spread, node_arrays
from kbench.scheduler.plantable import message, plan_table

DYNAMIC = "plan changes with every bind (host ports, topology spread or inter-pod affinity)"
SUBSET = "a PreFilterResult restricts the nodes searched"
REJECTED = "PreFilter rejects the pod"
NO_NODES = "no nodes"


@dataclass
class SequenceResult:
    """Per pod of a sequence: where it went, and upstream's FitError message for those that fit nowhere."""

    nodes: np.ndarray
    """Node index per pod (-1: fits nowhere or rejected)."""
    messages: dict[int, str] = field(default_factory=dict)
    """Position in the sequence -> FitError message, for every pod not placed."""
    fallbacks: Counter[str] = field(default_factory=Counter)
    """Pods scheduled through the per-pod path, per reason."""


@dataclass
class Compiled:
    """The plans of the pods ``begin:end`` (up to the next pod for the per-pod path), stacked."""

    begin: int
    end: int
    fallback: str
    """Why pod ``end`` (if any) goes through the per-pod path."""
    plan_of: np.ndarray
    """Per pod of the segment, its plan (row of the table)."""
    table: PlanTable
    reasons: list[tuple[str, tuple[str, ...]]]
    """Static failure id -> (its filter plugin, its reason strings)."""
    special: np.ndarray
    """Per plan, its pods have host ports or inter-pod affinity terms (registered as ``record_bound`` does; only
    with a profile that leaves NodePorts or InterPodAffinity out)."""


def schedule_sequence(scheduler: KernelScheduler, pods: list[Pod]) -> SequenceResult:
    """Schedule ``pods`` in order, binding each placed one in the state (as ``Framework.schedule`` + bind would).

    Each run of pods up to the next one for the per-pod path is compiled and scheduled in one kernel call (the
    per-pod pod may change what later plans hold: a pod with inter-pod affinity, a new resource).

    Returns
    -------
    SequenceResult
        Placements, FitError messages, and the pods that went through the per-pod path.
    """
    m = len(pods)
    result = SequenceResult(np.full(m, -1, np.int64))
    i = 0
    while i < m:
        compiled = compile_sequence(scheduler, pods, i)
        if compiled.end > i:
            _record(scheduler, pods, compiled, result, _run(scheduler, compiled))
        if compiled.end < m:
            result.fallbacks[compiled.fallback] += 1
            _one_by_one(scheduler, pods[compiled.end], compiled.end, result)
        i = compiled.end + 1
    return result


def _run(scheduler: KernelScheduler, compiled: Compiled) -> tuple[Placements, np.ndarray]:
    """One kernel call over the segment: its placements and diagnosis counts."""
    fw, n, m = scheduler.fw, scheduler.fw.state.num_nodes, len(compiled.plan_of)
    table = compiled.table
    out = Placements(np.empty(m, np.int64), np.empty(m, np.int64), np.empty(m, np.int64))
    diag = np.zeros((m, len(fw.state.resources) + len(compiled.reasons)), np.int64)
    trees, log = new_trees(table, n), BindLog(np.zeros(m, np.int64), np.zeros(1, np.int64))
    fw.next_start = int(
        kb.schedule_sequence(
            node_arrays(fw.state),
            table,
            compiled.plan_of,
            fw.next_start,
            scheduler.num_to_find(n),
            fw.rng,
            trees,
            log,
            Workspace.new(n, 1),
            no_spread(n),
            Search(False, np.zeros(0, np.int64)),
            out,
            diag,
        )
    )
    return out, diag


def _record(scheduler, pods, compiled: Compiled, result: SequenceResult, run: tuple[Placements, np.ndarray]) -> None:
    """Register the pods the kernel bound in the state, in order, and build the FitError message of each pod
    that fits nowhere from its diagnosis counts."""
    state, begin = scheduler.fw.state, compiled.begin
    out, diag = run
    result.nodes[begin : compiled.end] = out.nodes
    placed = np.flatnonzero(out.nodes >= 0)
    special = compiled.special[compiled.plan_of[placed]]
    plain: list[int] = []
    for j, one_by_one in zip((begin + placed).tolist(), special.tolist()):
        if one_by_one:
            _record_plain(state, pods, result.nodes, plain, compiled)
            state.record_bound([pods[j]], result.nodes[j : j + 1])
        else:
            plain.append(j)
    _record_plain(state, pods, result.nodes, plain, compiled)
    messages: dict[bytes, str] = {}
    for j in np.flatnonzero(out.nodes < 0).tolist():
        key = diag[j].tobytes()
        if key not in messages:
            messages[key] = message(state, compiled.reasons, diag[j])
        result.messages[begin + j] = messages[key]


def _record_plain(state, pods: list[Pod], nodes: np.ndarray, positions: list[int], compiled: Compiled) -> None:
    """Register the pods at ``positions`` (then forget them), with their plans' request vectors."""
    if positions:
        plans = compiled.plan_of[np.array(positions) - compiled.begin]
        requests = compiled.table.bind_requests[plans].T
        state.record_placed([pods[j] for j in positions], nodes[positions].tolist(), requests)
        positions.clear()


def _one_by_one(scheduler: KernelScheduler, pod: Pod, i: int, result: SequenceResult) -> None:
    """The per-pod path for pod ``i``: schedule, and bind."""
    cycle = scheduler.schedule(pod)
    if cycle.node is None:
        result.messages[i] = cycle.message
        return
    scheduler.fw.state.bind(pod, cycle.node)
    result.nodes[i] = cycle.node


def compile_sequence(scheduler: KernelScheduler, pods: list[Pod], begin: int) -> Compiled:
    """Plans for ``pods[begin:]`` up to the first pod for the per-pod path (one plan per plan key), stacked;
    rebuilt until no plan adds a resource row."""
    state = scheduler.fw.state
    while True:
        version = state.node_version
        plan_of: list[int] = []
        ids: dict[tuple[str, str], int | str] = {}
        by_spec: dict[tuple, int | str] = {}
        plans: list[tuple[Plan, Pod]] = []
        fallback = ""
        for pod in pods[begin:]:
            cheap = scheduler.spec_key(pod)
            p = by_spec.get(cheap)
            if p is None:
                key = scheduler.plan_key(pod)
                p = ids.get(key)
                if p is None:
                    p = ids[key] = _admit(scheduler, pod, plans)
                by_spec[cheap] = p
            if isinstance(p, str):
                fallback = p
                break
            plan_of.append(p)
        if state.node_version == version:
            break
    table, reasons = plan_table(scheduler.fw, plans)
    special = np.array([bool(p.host_ports or p.inter_pod_affinity) for _, p in plans], bool)
    end = begin + len(plan_of)
    return Compiled(begin, end, fallback, np.array(plan_of, np.int64), table, reasons, special)


def _admit(scheduler: KernelScheduler, pod: Pod, plans: list[tuple[Plan, Pod]]) -> int | str:
    """The pod's plan id in ``plans`` (appended), or why it goes through the per-pod path."""
    if scheduler.fw.state.num_nodes == 0:
        return NO_NODES
    try:
        plan = scheduler.cached_plan(pod)
    except Rejection:
        return REJECTED
    if plan.dynamic:
        return DYNAMIC
    if plan.subset is not None:
        return SUBSET
    plans.append((plan, pod))
    return len(plans) - 1


def new_trees(table: PlanTable, num_nodes: int) -> Trees:
    """Empty signature trees for the table's tree plans."""
    size, count = int(kb.tree_size(num_nodes)), int(table.tree.max(initial=-1)) + 1
    empty = np.zeros((count, 2 * size), np.int64)
    return Trees(empty, empty.copy(), empty.copy(), np.full(count, -1, np.int64))
