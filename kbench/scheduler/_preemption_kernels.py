"""Numba kernel of DefaultPreemption's dry run (``preemption.go`` DryRunPreemption over
``default_preemption.go`` SelectVictimsOnNode) and of pickOneNodeForPreemption, over the bound pods' slots.

For a pod whose other filters do not depend on which pods are bound (its plan's static mask), whether it fits a
node once victims are gone is NodeResourcesFit's arithmetic: the node's free allocatable plus the removed pods'
requests, less what nominated pods of at least its priority hold there (RunFilterPluginsWithNominatedPods).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np
from numba import njit

from kbench.scheduler.state import PODS

CANDIDATE, NO_VICTIMS, STATIC_FAILED, FIT_FAILED, NONE_NEEDED = range(5)
"""Per potential node, the dry run's outcome: a candidate, no pod of lower priority (UnschedulableAndUnresolvable
"No preemption victims found for incoming pod"), a filter other than NodeResourcesFit fails even with every
lower-priority pod gone, NodeResourcesFit still fails (its reasons in ``fit_failed``), or every pod was reprieved
(upstream's error "expected at least one victim pod on node")."""
MAX_INT32 = 2**31 - 1


@njit(cache=True, error_model="numpy")
def group_by_node(slot_node, num_nodes):
    """CSR of the used slots by node: (``starts`` of length nodes + 1, ``slots``)."""
    starts = np.zeros(num_nodes + 1, np.int64)
    for s in range(slot_node.shape[0]):
        if slot_node[s] >= 0:
            starts[slot_node[s] + 1] += 1
    for i in range(num_nodes):
        starts[i + 1] += starts[i]
    fill = starts[:-1].copy()
    slots = np.empty(starts[num_nodes], np.int64)
    for s in range(slot_node.shape[0]):
        i = slot_node[s]
        if i >= 0:
            slots[fill[i]] = s
            fill[i] += 1
    return starts, slots


@njit(cache=True, inline="always", error_model="numpy")
def more_important(priority, start, seq, a, b):
    """util.MoreImportantPod of slots ``a`` and ``b``: higher priority, then the earlier start (then bind order)."""
    if priority[a] != priority[b]:
        return priority[a] > priority[b]
    if start[a] != start[b]:
        return start[a] < start[b]
    return seq[a] < seq[b]


@njit(cache=True, error_model="numpy")
def _sort_by_importance(v, m, priority, start, seq):
    """Insertion sort of ``v[:m]`` (slots), most important first."""
    for x in range(1, m):
        s = v[x]
        y = x - 1
        while y >= 0 and more_important(priority, start, seq, s, v[y]):
            v[y + 1] = v[y]
            y -= 1
        v[y + 1] = s


@njit(cache=True, error_model="numpy")
def _fit_failures(free, count, allocatable, request, fit_on, i):
    """Bitmask of what NodeResourcesFit finds short on node ``i`` (bit r: resource row r; bit PODS: pod slots)."""
    if not fit_on:
        return 0
    mask = 0
    if count + 1 > allocatable[PODS, i]:
        mask |= 1 << PODS
    for r in range(request.shape[0]):
        if r != PODS and request[r] > 0 and request[r] > free[r]:
            mask |= 1 << r
    return mask


@njit(cache=True, error_model="numpy")
def _violating(v, m, slot_group, group_mask, exempt_slot, exempt_bit, allowed, out):
    """filterPodsWithPDBViolation over ``v[:m]`` in order: ``out[x]`` is 1 when evicting it breaks a budget."""
    left = allowed.copy()
    for x in range(m):
        s = v[x]
        mask = group_mask[slot_group[s]]
        for e in range(exempt_slot.shape[0]):  # in a budget's disruptedPods: already counted by the apiserver
            if exempt_slot[e] == s:
                mask &= ~(np.int64(1) << exempt_bit[e])
        out[x] = 0
        b = 0
        while mask != 0:
            if mask & 1:
                left[b] -= 1
                if left[b] < 0:
                    out[x] = 1
            mask >>= 1
            b += 1


@njit(cache=True, error_model="numpy")
def select_victims(i, nodes, pods, preemptor, pdb, work):
    """SelectVictimsOnNode for node ``i``: (outcome, k victims written to ``work[0][:k]``, PDB violations, fit
    failure mask, filter runs). ``nodes`` = (allocatable, requested, pod_count, static_ok, nominated_req,
    nominated_count); ``pods`` = (starts, slots, priority, start, seq, requests, group); ``preemptor`` =
    (priority, request, fit_on); ``pdb`` = (group_mask, exempt_slot, exempt_bit, allowed)."""
    allocatable, requested, pod_count, static_ok, nominated_req, nominated_count = nodes
    starts, slots, priority, start, seq, requests, group = pods
    pod_priority, request, fit_on = preemptor
    victims, potential, flag, free = work
    m = 0
    for x in range(starts[i], starts[i + 1]):
        s = slots[x]
        if priority[s] < pod_priority:
            potential[m] = s
            m += 1
    if m == 0:
        return NO_VICTIMS, 0, 0, 0, 0
    for r in range(free.shape[0]):
        free[r] = allocatable[r, i] - requested[r, i] - nominated_req[r, i]
        for x in range(m):
            free[r] += requests[r, potential[x]]
    count = pod_count[i] - m + nominated_count[i]
    if not static_ok[i]:
        return STATIC_FAILED, 0, 0, 0, 1
    short = _fit_failures(free, count, allocatable, request, fit_on, i)
    if short != 0:
        return FIT_FAILED, 0, 0, short, 1
    _sort_by_importance(potential, m, priority, start, seq)
    _violating(potential, m, group, pdb[0], pdb[1], pdb[2], pdb[3], flag)
    k = 0
    violations = 0
    for phase in (1, 0):  # the violating pods are reprieved first, then the others; each most important first
        for x in range(m):
            if flag[x] != phase:
                continue
            s = potential[x]
            for r in range(free.shape[0]):
                free[r] -= requests[r, s]
            if _fit_failures(free, count + 1, allocatable, request, fit_on, i) == 0:
                count += 1
                continue
            for r in range(free.shape[0]):
                free[r] += requests[r, s]
            victims[k] = s
            k += 1
            violations += phase
    if k == 0:
        return NONE_NEEDED, 0, 0, 0, 1 + m
    _sort_by_importance(victims, k, priority, start, seq)
    return CANDIDATE, k, violations, 0, 1 + m


@njit(cache=True, error_model="numpy")
def dry_run(order, cap, nodes, pods, preemptor, pdb, out):
    """DryRunPreemption over the potential ``order`` (from the random offset), sequentially: candidates that
    violate no budget and those that do, each list capped at ``cap``, stopping once there is a non-violating one
    and ``cap`` in all. ``out`` = (outcome, fit mask and filter runs per position; candidate position and
    violations, victims CSR starts, victims); returns (positions processed, candidates, victims written)."""
    outcome, short, evals, cand_pos, cand_viol, vstart, vflat = out
    nonviolating = 0
    violating = 0
    written = 0
    cands = 0
    victims = np.empty(pods[1].shape[0] + 1, np.int64)
    work = (victims, np.empty_like(victims), np.empty_like(victims), np.empty(nodes[0].shape[0], np.int64))
    vstart[0] = 0
    for p in range(order.shape[0]):
        kind, k, violations, mask, runs = select_victims(order[p], nodes, pods, preemptor, pdb, work)
        outcome[p], short[p], evals[p] = kind, mask, runs
        if kind != CANDIDATE:
            continue
        if violations == 0:
            if nonviolating >= cap:
                continue
            nonviolating += 1
        else:
            if violating >= cap:
                continue
            violating += 1
        cand_pos[cands], cand_viol[cands] = p, violations
        vflat[written : written + k] = victims[:k]
        written += k
        cands += 1
        vstart[cands] = written
        if nonviolating > 0 and nonviolating + violating >= cap:
            return p + 1, cands, written
    return order.shape[0], cands, written


def compile_dry_run(args: tuple) -> None:
    """Compile :func:`dry_run` for the types of ``args`` (or load it from Numba's cache) in a thread of its own, the
    first time only. Compiled on the caller's stack, Numba's type inference of this kernel kept that stack's frames
    alive after it, so a simulation that preempted first on a machine with no cache kept its whole cluster in memory
    until later in the next run (found by ``tests/sim/test_collector.py`` with Numba's cache emptied; a thread's
    stack holds nothing of the simulation)."""
    if dry_run.overloads:
        return
    signature = tuple(numba.typeof(arg) for arg in args)
    with ThreadPoolExecutor(1, thread_name_prefix="kbench-compile") as apart:
        apart.submit(dry_run.compile, signature).result()


@njit(cache=True, error_model="numpy")
def pick_one(ranked, cand_viol, vstart, vflat, priority, start, now):
    """pickOneNodeForPreemption's criteria in upstream's order over the candidates taken in ``ranked`` order
    (position in ``ranked`` of the chosen one): fewest PDB violations, lowest highest victim priority, lowest sum of
    (priority + MaxInt32 + 1), fewest victims, latest earliest start among the highest-priority victims; then the
    first."""
    n = ranked.shape[0]
    keys = np.empty((n, 5), np.float64)
    for j in range(n):
        c = ranked[j]
        a, b = vstart[c], vstart[c + 1]
        top = priority[vflat[a]]
        total = 0
        earliest = np.inf
        for x in range(a, b):
            s = vflat[x]
            total += priority[s] + MAX_INT32 + 1
            t = start[s] if start[s] != np.inf else now
            if priority[s] == top and t < earliest:
                earliest = t
        keys[j, 0], keys[j, 1], keys[j, 2] = -cand_viol[c], -top, -total
        keys[j, 3], keys[j, 4] = -(b - a), earliest
    alive = np.ones(n, np.bool_)
    for f in range(5):
        best = -np.inf
        for j in range(n):
            if alive[j] and keys[j, f] > best:
                best = keys[j, f]
        left = 0
        for j in range(n):
            if alive[j] and keys[j, f] != best:
                alive[j] = False
            left += alive[j]
        if left == 1:
            break
    for j in range(n):
        if alive[j]:
            return j
    return -1
