"""Numba kernels: a sequence of heterogeneous pods scheduled one by one, binding each, with the diagnosis of the
pods that fit nowhere.

Each pod names its plan (a row of :class:`~kbench.scheduler.plan.PlanTable`; pods of one signature share it).
A plan whose totals depend on each node alone keeps its own signature segment tree (``_batch_kernels``), synced
lazily from the log of nodes bound since it was last used; the others are filtered and scored node by node
(``_kernels.schedule_pod``). Either way the cycle is upstream's, so placements equal ``Framework.schedule``
run pod by pod. A pod that fits nowhere is diagnosed here as ``schedule_one.go`` does (Diagnosis.NodeToStatus):
every node's first failing filter, its reasons counted per reason, so the front builds the FitError message once.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from kbench.scheduler import _batch_kernels as kb
from kbench.scheduler._kernels import bind, fits, schedule_pod
from kbench.scheduler.plan import BalancedScore, BindRequest, FitFilter, FitScore, KernelPlan, StaticScores
from kbench.scheduler.state import PODS


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
        kb.fill_tree(nodes, plan, static_add, size, frac, cnt, best, ties)
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
    kb.update_leaves(nodes, plan, static_add, dirty[:count], frac, (cnt, best, ties), size, few)
    if not few:
        for node in range(size - 1, 0, -1):
            kb.pull(cnt, best, ties, node)


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
            node, processed, found = kb.tree_cycle(
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
