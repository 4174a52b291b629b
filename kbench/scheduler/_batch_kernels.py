"""Batch scheduling of pods with one signature in O(log nodes) per pod (the idea of KEP-5598).

When every pod of a batch has the same plan and no plugin whose scores depend
on which nodes are scored (normalizations of non-constant raw scores, topology
spread), a node's feasibility and total score depend only on that node. So they
are computed once per node, kept in a segment tree over node positions
(feasible count; best total and how many nodes reach it), and after each bind
only the chosen node is recomputed. Each cycle still follows upstream exactly:
the window of the first ``num_to_find`` feasible nodes from the rotating start,
the processed count that moves the start, and reservoir sampling over the tied
nodes in window order, so placements are identical to ``_kernels.schedule_pod``
run pod by pod (tested). Inputs are the named tuples of ``kbench/scheduler/plan.py``.

A sequence of heterogeneous pods (:func:`schedule_sequence`) names each pod's plan, a row of a
:class:`~kbench.scheduler.plan.PlanTable` (pods of one signature share it). A plan whose totals depend on each
node alone keeps its own tree, brought up to date when it is next used from the log of the nodes bound since;
the others are filtered and scored node by node (``_kernels.schedule_pod``). A pod that fits nowhere is
diagnosed as ``schedule_one.go`` does (Diagnosis.NodeToStatus): every node's first failing filter, its reasons
counted per reason, so the front builds upstream's FitError message once (:func:`diagnose`).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from kbench.scheduler._kernels import balanced_score, bind, fits, reservoir_pick, schedule_pod, strategy_score
from kbench.scheduler.plan import BalancedScore, BindRequest, FitFilter, FitScore, KernelPlan, StaticScores
from kbench.scheduler.state import PODS

NONE = -1


@njit(cache=True, inline="always", error_model="numpy")
def pull(cnt, best, ties, node):
    """Tree node ``node`` from its two children."""
    left, right = 2 * node, 2 * node + 1
    cnt[node] = cnt[left] + cnt[right]
    if best[left] > best[right]:
        best[node], ties[node] = best[left], ties[left]
    elif best[right] > best[left]:
        best[node], ties[node] = best[right], ties[right]
    else:
        best[node], ties[node] = best[left], ties[left] + ties[right]


@njit(cache=True, error_model="numpy")
def _count_before(cnt, size, pos):
    """Feasible nodes at positions [0, pos)."""
    total = 0
    lo, hi = size, size + pos
    while lo < hi:
        if lo & 1:
            total += cnt[lo]
            lo += 1
        if hi & 1:
            hi -= 1
            total += cnt[hi]
        lo //= 2
        hi //= 2
    return total


@njit(cache=True, error_model="numpy")
def _kth_feasible(cnt, size, k):
    """Position of the k-th feasible node (1-based) counting from position 0."""
    node = 1
    while node < size:
        if cnt[2 * node] >= k:
            node = 2 * node
        else:
            k -= cnt[2 * node]
            node = 2 * node + 1
    return node - size


@njit(cache=True, error_model="numpy")
def _range_best(best, ties, size, a, b):
    """(best total, nodes with it) over positions [a, b)."""
    top, count = NONE, 0
    lo, hi = size + a, size + b
    while lo < hi:
        if lo & 1:
            if best[lo] > top:
                top, count = best[lo], ties[lo]
            elif best[lo] == top:
                count += ties[lo]
            lo += 1
        if hi & 1:
            hi -= 1
            if best[hi] > top:
                top, count = best[hi], ties[hi]
            elif best[hi] == top:
                count += ties[hi]
        lo //= 2
        hi //= 2
    return top, count


@njit(cache=True, error_model="numpy")
def _nth_tie(best, ties, size, a, b, top, t, stack):
    """Position of the t-th (0-based) node with total ``top`` in [a, b), left to right; ``top`` is the
    range's best, so no subtree inside the range holds more."""
    depth = 0
    stack[0, 0], stack[0, 1], stack[0, 2] = 1, 0, size
    depth = 1
    while depth > 0:
        depth -= 1
        node, lo, hi = stack[depth, 0], stack[depth, 1], stack[depth, 2]
        if hi <= a or lo >= b:
            continue
        if a <= lo and hi <= b:
            here = ties[node] if best[node] == top else 0
            if t >= here:
                t -= here
                continue
            while node < size:  # descend inside the range
                left = 2 * node
                inside = ties[left] if best[left] == top else 0
                if t < inside:
                    node = left
                else:
                    t -= inside
                    node = left + 1
            return node - size
        mid = (lo + hi) // 2
        stack[depth, 0], stack[depth, 1], stack[depth, 2] = 2 * node + 1, mid, hi
        stack[depth + 1, 0], stack[depth + 1, 1], stack[depth + 1, 2] = 2 * node, lo, mid
        depth += 2
    return -1


@njit(cache=True, error_model="numpy")
def update_leaves(nodes, plan, static_add, which, frac, tree, size, to_root):
    """Recompute the leaves of nodes ``which``: (feasible, total score), which depend on that node alone for a
    signature plan; with ``to_root``, carry each change up to the root. ``tree`` is (cnt, best, ties)."""
    cnt, best, ties = tree
    alloc, requested, nonzero, pod_count = nodes.allocatable, nodes.requested, nodes.nonzero, nodes.pod_count
    static_ok, fit_on, request = plan.static_ok, plan.fit_filter.on, plan.fit_filter.request
    fs, bal = plan.fit_score, plan.balanced
    kind, rows, sources, requests, weights, shape = fs.kind, fs.rows, fs.sources, fs.requests, fs.weights, fs.shape
    bal_rows, bal_requests = bal.rows, bal.requests
    for i in which:
        feasible = static_ok[i] and (not fit_on or fits(alloc, requested, pod_count, request, i))
        total = NONE  # an infeasible node is never scored
        if feasible:
            total = static_add[i]
            if fs.weight > 0:
                total += fs.weight * strategy_score(
                    alloc, requested, nonzero, kind, rows, sources, requests, weights, shape, i
                )
            if bal.weight > 0:
                total += bal.weight * balanced_score(alloc, requested, bal_rows, bal_requests, i, frac)
        leaf = size + i
        cnt[leaf] = 1 if feasible else 0
        best[leaf] = total
        ties[leaf] = 1 if feasible else 0
        node = leaf // 2
        while to_root and node >= 1:
            pull(cnt, best, ties, node)
            node //= 2


@njit(cache=True, error_model="numpy")
def fill_tree(nodes, plan, static_add, size, frac, cnt, best, ties):
    """Fill the segment tree over node positions: (feasible count, best total, nodes with it) per tree node."""
    cnt[:] = 0
    best[:] = NONE
    ties[:] = 0
    update_leaves(nodes, plan, static_add, np.arange(nodes.allocatable.shape[1]), frac, (cnt, best, ties), size, False)
    for node in range(size - 1, 0, -1):
        pull(cnt, best, ties, node)


@njit(cache=True, error_model="numpy")
def tree_size(n):
    """The tree's leaf count: the smallest power of two >= ``n`` (at least 1)."""
    size = 1
    while size < n:
        size *= 2
    return size


@njit(cache=True, error_model="numpy")
def window(cnt, size, n, start, num_to_find):
    """The cycle's window of the first ``num_to_find`` feasible nodes from ``start``: (found, processed, the two
    position ranges [a1, b1) and [a2, b2) it covers, feasible nodes before ``start``)."""
    feasible_total = cnt[1]
    before = _count_before(cnt, size, start)
    if feasible_total <= num_to_find:
        return feasible_total, n, start, n, 0, start, before
    rank = before + num_to_find + 1
    if rank > feasible_total:
        rank -= feasible_total
    stop = _kth_feasible(cnt, size, rank)  # the first feasible node beyond the window
    processed = (stop - start) % n
    if stop > start:
        return num_to_find, processed, start, stop, 0, 0, before
    return num_to_find, processed, start, n, 0, stop, before


@njit(cache=True, error_model="numpy")
def pick_in_window(cnt, best, ties, size, found, a1, b1, a2, b2, before, rng, stack):
    """selectHost over the window: the only feasible node, or a reservoir pick among the top totals."""
    if found == 1:
        rank = before + 1
        if rank > cnt[1]:
            rank -= cnt[1]
        return _kth_feasible(cnt, size, rank)
    top1, ties1 = _range_best(best, ties, size, a1, b1)
    top2, ties2 = _range_best(best, ties, size, a2, b2)
    top = max(top1, top2)
    c1 = ties1 if top1 == top else 0
    c2 = ties2 if top2 == top else 0
    t = reservoir_pick(c1 + c2, rng)
    if t < c1:
        return _nth_tie(best, ties, size, a1, b1, top, t, stack)
    return _nth_tie(best, ties, size, a2, b2, top, t - c1, stack)


@njit(cache=True, error_model="numpy")
def tree_cycle(cnt, best, ties, size, n, start, num_to_find, rng, stack):
    """One scheduling cycle over an up-to-date tree: (node or -1, nodes processed, feasible nodes found)."""
    if cnt[1] == 0:
        return -1, n, 0
    found, processed, a1, b1, a2, b2, before = window(cnt, size, n, start, num_to_find)
    return pick_in_window(cnt, best, ties, size, found, a1, b1, a2, b2, before, rng, stack), processed, found


@njit(cache=True, error_model="numpy")
def schedule_signature(nodes, plan, static_add, start, num_to_find, rng, request, out):
    """Schedule ``len(out.nodes)`` pods of one signature, binding each; returns (next start, pods placed).

    ``plan`` supplies the static mask and the resource terms (its other slots are unused: their scores are
    ``static_add`` per node)."""
    n = nodes.allocatable.shape[1]
    size = tree_size(n)
    frac = np.empty(plan.balanced.rows.shape[0] + 1)
    stack = np.empty((64, 3), np.int64)
    cnt, best, ties = np.empty(2 * size, np.int64), np.empty(2 * size, np.int64), np.empty(2 * size, np.int64)
    fill_tree(nodes, plan, static_add, size, frac, cnt, best, ties)
    for p in range(out.nodes.shape[0]):
        node, processed, found = tree_cycle(cnt, best, ties, size, n, start, num_to_find, rng, stack)
        out.nodes[p], out.processed[p], out.found[p] = node, processed, found
        if node < 0:
            return start, p
        bind(nodes, node, request)
        update_leaves(nodes, plan, static_add, out.nodes[p : p + 1], frac, (cnt, best, ties), size, True)
        start = (start + processed) % n
    return start, out.nodes.shape[0]


@njit(cache=True, error_model="numpy")
def pod_plan(table, p, spread, search):
    """Row ``p`` of the table as the :class:`KernelPlan` the single-pod kernels read."""
    t, b = table.fit_terms[p], table.bal_terms[p]
    fit_score = FitScore(
        table.fit_kind,
        table.fit_rows[p, :t],
        table.fit_sources[p, :t],
        table.fit_requests[p, :t],
        table.fit_weights[p, :t],
        table.fit_shape,
        table.fit_weight[p],
    )
    return KernelPlan(
        table.static_ok[p],
        FitFilter(table.fit_on[p], table.fit_request[p]),
        fit_score,
        BalancedScore(table.bal_rows[p, :b], table.bal_requests[p, :b], table.bal_weight[p]),
        StaticScores(table.raw[p], table.normalize[p], table.weight[p]),
        spread,
        search,
    )


@njit(cache=True, error_model="numpy")
def sync_tree(nodes, plan, static_add, trees, t, size, log, frac, seen, stamp, dirty):
    """Bring tree ``t`` up to the current state: recompute the nodes bound since it was last used, each once.

    Binds only add to a node within a sequence, so a node that failed NodeResourcesFit (or a static filter) for
    the plan still fails: it is skipped. When many nodes changed the whole tree is pulled once instead of each
    path to the root. ``seen`` / ``stamp`` mark the nodes taken; ``dirty`` is scratch of one slot per node."""
    cnt, best, ties = trees.cnt[t], trees.best[t], trees.ties[t]
    done, length = trees.synced[t], log.length[0]
    trees.synced[t] = length
    if done < 0:
        fill_tree(nodes, plan, static_add, size, frac, cnt, best, ties)
        return
    count = 0
    for j in range(done, length):
        i = log.nodes[j]
        if cnt[size + i] == 0 or seen[i] == stamp:
            continue
        seen[i] = stamp
        dirty[count] = i
        count += 1
    few = count * 8 < size
    update_leaves(nodes, plan, static_add, dirty[:count], frac, (cnt, best, ties), size, few)
    if not few:
        for node in range(size - 1, 0, -1):
            pull(cnt, best, ties, node)


@njit(cache=True, error_model="numpy")
def diagnose(nodes, table, p, plan, row):
    """Count, into ``row``, the reasons of every node's first failing filter: ``row[PODS]`` "Too many pods",
    ``row[r]`` "Insufficient <resource r>", ``row[resources + k]`` the reasons of static failure ``k``."""
    alloc, requested, pod_count = nodes.allocatable, nodes.requested, nodes.pod_count
    fit_on, request = plan.fit_filter.on, plan.fit_filter.request
    reason, before_fit = table.reason[p], table.before_fit[p]
    resources = alloc.shape[0]
    for i in range(alloc.shape[1]):
        k = reason[i]
        if k >= 0 and before_fit[i]:
            row[resources + k] += 1
        elif fit_on and not fits(alloc, requested, pod_count, request, i):
            if pod_count[i] + 1 > alloc[PODS, i]:
                row[PODS] += 1
            for r in range(resources):
                if r != PODS and request[r] > 0 and request[r] > alloc[r, i] - requested[r, i]:
                    row[r] += 1
        elif k >= 0:
            row[resources + k] += 1


@njit(cache=True, error_model="numpy")
def schedule_sequence(nodes, table, plan_of, start, num_to_find, rng, trees, log, work, spread, search, out, diag):
    """Schedule pods in order (pod ``i`` of plan ``plan_of[i]``), binding each; returns the next rotating start.

    Writes ``out`` (node or -1, processed, found) per pod, a diagnosis row of ``diag`` per pod that fits nowhere,
    and appends each bound node to ``log``.
    """
    n = nodes.allocatable.shape[1]
    size = trees.cnt.shape[1] // 2
    frac = np.empty(table.bal_rows.shape[1] + 1)
    stack = np.empty((64, 3), np.int64)
    seen, dirty = np.full(n, -1, np.int64), np.empty(n, np.int64)
    for i in range(plan_of.shape[0]):
        p = plan_of[i]
        plan = pod_plan(table, p, spread, search)
        t = table.tree[p]
        if t >= 0:
            sync_tree(nodes, plan, table.static_add[p], trees, t, size, log, frac, seen, i, dirty)
            node, processed, found = tree_cycle(
                trees.cnt[t], trees.best[t], trees.ties[t], size, n, start, num_to_find, rng, stack
            )
        else:
            node, processed, found = schedule_pod(nodes, plan, start, num_to_find, rng, work)
        out.nodes[i], out.processed[i], out.found[i] = node, processed, found
        start = (start + processed) % n
        if node < 0:
            diagnose(nodes, table, p, plan, diag[i])
            continue
        bind(nodes, node, BindRequest(table.bind_requests[p], table.bind_nonzero[p]))
        log.nodes[log.length[0]] = node
        log.length[0] += 1
    return start
