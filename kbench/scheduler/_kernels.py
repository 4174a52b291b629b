"""Numba kernels: one fused filter + score + selectHost pass per pod over struct-of-arrays cluster state.

Inputs are named tuples (``kbench/scheduler/plan.py``): the state arrays (:class:`NodeArrays`: ``allocatable``
and ``requested`` as ``[resource, node]``, ``nonzero`` cpu/memory rows, ``pod_count``) and a pod's
:class:`KernelPlan`, filled by the plugins: a mask of the filters evaluated once for the pod, the
NodeResourcesFit request and scoring terms, BalancedAllocation terms, raw scores of the other score plugins
with their NormalizeScore kind, and PodTopologySpread's per-domain counts (its weights depend on which nodes
are scored, so it is scored here). Nodes are visited from the rotating start until ``num_to_find`` feasible
nodes are found, as ``findNodesThatPassFilters`` does; ties are broken by the same reservoir sampler as
``select.py``. Arithmetic is upstream's: integer Go division, float64 where Go uses float64.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from kbench.scheduler.plan import (
    LEAST_ALLOCATED,
    MOST_ALLOCATED,
    NONZERO_ROW,
    NORMALIZE_DEFAULT,
    NORMALIZE_MINMAX,
    NORMALIZE_REVERSE,
    REQUESTED_TO_CAPACITY_RATIO,
)
from kbench.scheduler.state import PODS
from kbench.sim._kernels import splitmix_unit


@njit(cache=True, inline="always", error_model="numpy")
def go_div(a, b):
    """Go's integer division (truncates toward zero)."""
    q = abs(a) // abs(b)
    return -q if (a < 0) != (b < 0) else q


@njit(cache=True, inline="always", error_model="numpy")
def broken_linear(shape, p):
    """helper.BuildBrokenLinearFunction over shape points (utilization, score) at utilization ``p``."""
    for i in range(shape.shape[0]):
        if p <= shape[i, 0]:
            if i == 0:
                return shape[0, 1]
            u0, s0, u1, s1 = shape[i - 1, 0], shape[i - 1, 1], shape[i, 0], shape[i, 1]
            return s0 + go_div((s1 - s0) * (p - u0), u1 - u0)
    return shape[shape.shape[0] - 1, 1]


@njit(cache=True, inline="always", error_model="numpy")
def fits(allocatable, requested, pod_count, request, i):
    """NodeResourcesFit's Filter on node ``i``: a pod slot and every checked request free.

    Node-level helpers take arrays, not the named tuples: binding a tuple of arrays to a parameter costs a
    reference count update per array, per node."""
    if pod_count[i] + 1 > allocatable[PODS, i]:
        return False
    for r in range(request.shape[0]):
        if r != PODS and request[r] > 0 and request[r] > allocatable[r, i] - requested[r, i]:
            return False
    return True


@njit(cache=True, inline="always", error_model="numpy")
def strategy_score(allocatable, requested, nonzero, kind, rows, sources, requests, weights, shape, i):
    """NodeResourcesFit's Score of node ``i``: its strategy ``kind`` over the weighted resource terms (a
    :class:`FitScore`'s arrays)."""
    total = 0
    wsum = 0
    for t in range(rows.shape[0]):
        r = rows[t]
        a = allocatable[r, i]
        if a == 0:
            continue
        used = (nonzero[r, i] if sources[t] == NONZERO_ROW else requested[r, i]) + requests[t]
        if kind == LEAST_ALLOCATED:
            s = 0 if used > a else (a - used) * 100 // a
        elif kind == MOST_ALLOCATED:
            s = (used if used < a else a) * 100 // a
        else:
            s = broken_linear(shape, 100 if used > a else used * 100 // a)
            if s <= 0:
                continue
        total += s * weights[t]
        wsum += weights[t]
    if wsum == 0:
        return 0
    if kind == REQUESTED_TO_CAPACITY_RATIO:
        return np.int64(math.floor(total / wsum + 0.5))
    return total // wsum


@njit(cache=True, inline="always", error_model="numpy")
def balanced_score(allocatable, requested, rows, requests, i, frac):
    """NodeResourcesBalancedAllocation's Score of node ``i`` over a :class:`BalancedScore`'s rows and requests
    (``frac``: scratch of one float per resource)."""
    count = 0
    total = 0.0
    for t in range(rows.shape[0]):
        a = allocatable[rows[t], i]
        if a == 0:
            continue
        f = (requested[rows[t], i] + requests[t]) / a
        frac[count] = 1.0 if f > 1.0 else f
        total += frac[count]
        count += 1
    std = 0.0
    if count == 2:
        std = abs((frac[0] - frac[1]) / 2)
    elif count > 2:
        mean = total / count
        acc = 0.0
        for k in range(count):
            acc += (frac[k] - mean) * (frac[k] - mean)
        std = math.sqrt(acc / count)
    return np.int64((1 - std) * 100)


@njit(cache=True, error_model="numpy")
def normalize(kind, raw, m, out):
    """NormalizeScore of kind ``kind`` over ``raw[:m]`` into ``out[:m]``."""
    if kind in (NORMALIZE_DEFAULT, NORMALIZE_REVERSE):
        top = 0
        for j in range(m):
            if raw[j] > top:
                top = raw[j]
        for j in range(m):
            if top == 0:
                out[j] = 100 if kind == NORMALIZE_REVERSE else 0
            else:
                v = 100 * raw[j] // top
                out[j] = 100 - v if kind == NORMALIZE_REVERSE else v
    elif kind == NORMALIZE_MINMAX:
        low, high = raw[0], raw[0]
        for j in range(m):
            low = min(low, raw[j])
            high = max(high, raw[j])
        for j in range(m):
            out[j] = 0 if high == low else np.int64(100.0 * ((raw[j] - low) / float(high - low)))
    else:
        for j in range(m):
            out[j] = raw[j]


@njit(cache=True, error_model="numpy")
def spread_weights(cand, m, sp, mark):
    """PodTopologySpread's per-constraint weights ln(domains among the scored nodes + 2)."""
    live = 0
    for j in range(m):
        if sp.has_keys[cand[j]]:
            live += 1
    weights = np.zeros(sp.domains.shape[0])
    for c in range(sp.domains.shape[0]):
        if sp.hostname[c]:
            size = live
        else:
            mark[:] = 0
            size = 0
            for j in range(m):
                i = cand[j]
                if sp.has_keys[i] and mark[sp.domains[c, i]] == 0:
                    mark[sp.domains[c, i]] = 1
                    size += 1
        weights[c] = math.log(size + 2)
    return weights


@njit(cache=True, error_model="numpy")
def spread_scores(cand, m, sp, raw, out, mark):
    """PodTopologySpread over the scored nodes: raw scores into ``raw``, then its NormalizeScore into ``out``."""
    weights = spread_weights(cand, m, sp, mark)
    top, low, any_live = 0, 0, False
    for j in range(m):
        i = cand[j]
        if not sp.has_keys[i]:
            raw[j] = 0
            continue
        total = 0.0
        for c in range(sp.domains.shape[0]):
            n = sp.on_node[c, i] if sp.hostname[c] else sp.counts[c, sp.domains[c, i]]
            total += float(n) * weights[c] + float(sp.max_skew[c] - 1)
        raw[j] = np.int64(math.floor(total + 0.5))
        if not any_live:
            top, low, any_live = raw[j], raw[j], True
        else:
            top = max(top, raw[j])
            low = min(low, raw[j])
    for j in range(m):
        if not sp.has_keys[cand[j]]:
            out[j] = 0
        elif top == 0:
            out[j] = 100
        else:
            out[j] = 100 * (top + low - raw[j]) // top


@njit(cache=True, error_model="numpy")
def reservoir_pick(ties, rng):
    """Index (0-based, in evaluation order) of the tie reservoir sampling keeps (``select.reservoir_pick``)."""
    chosen, seen = 0, 1
    while ties > 1:
        nxt = np.int64(math.floor(seen / splitmix_unit(rng))) + 1
        if nxt > ties:
            break
        chosen, seen = nxt - 1, nxt
    return chosen


@njit(cache=True, error_model="numpy")
def find_feasible(nodes, plan, start, num_to_find, cand):
    """Visit nodes from ``start`` (the subset when restricted) until ``num_to_find`` feasible ones are in
    ``cand``; returns (found, nodes processed)."""
    restricted, subset, static_ok = plan.search.restricted, plan.search.subset, plan.static_ok
    alloc, requested, pod_count = nodes.allocatable, nodes.requested, nodes.pod_count
    fit_on, request = plan.fit_filter.on, plan.fit_filter.request
    n = subset.shape[0] if restricted else alloc.shape[1]
    found = 0
    for k in range(n):
        i = subset[(start + k) % n] if restricted else (start + k) % n
        if not static_ok[i] or (fit_on and not fits(alloc, requested, pod_count, request, i)):
            continue
        if found == num_to_find:
            return found, k
        cand[found] = i
        found += 1
    return found, n


@njit(cache=True, error_model="numpy")
def score_feasible(nodes, plan, found, work):
    """Total weighted score of each of the ``found`` candidates into ``work.totals``."""
    cand, totals = work.cand, work.totals
    raw, norm = work.scratch[0], work.scratch[1]
    frac = np.empty(plan.balanced.rows.shape[0] + 1)
    for j in range(found):
        totals[j] = 0
    alloc, requested, nonzero = nodes.allocatable, nodes.requested, nodes.nonzero
    fs, bal = plan.fit_score, plan.balanced
    if fs.weight > 0:
        kind, rows, sources, requests, weights, shape = fs.kind, fs.rows, fs.sources, fs.requests, fs.weights, fs.shape
        for j in range(found):
            score = strategy_score(alloc, requested, nonzero, kind, rows, sources, requests, weights, shape, cand[j])
            totals[j] += fs.weight * score
    if bal.weight > 0:
        bal_rows, bal_requests = bal.rows, bal.requests
        for j in range(found):
            totals[j] += bal.weight * balanced_score(alloc, requested, bal_rows, bal_requests, cand[j], frac)
    scores = plan.scores
    for p in range(scores.raw.shape[0]):
        for j in range(found):
            raw[j] = scores.raw[p, cand[j]]
        normalize(scores.normalize[p], raw, found, norm)
        for j in range(found):
            totals[j] += scores.weight[p] * norm[j]
    if plan.spread.weight > 0:
        spread_scores(cand, found, plan.spread, raw, norm, work.mark)
        for j in range(found):
            totals[j] += plan.spread.weight * norm[j]


@njit(cache=True, error_model="numpy")
def select_host(cand, totals, found, rng):
    """selectHost: a uniform pick among the top-scored candidates, by reservoir sampling in evaluation order."""
    top = totals[0]
    for j in range(found):
        top = max(top, totals[j])
    ties = 0
    for j in range(found):
        if totals[j] == top:
            ties += 1
    pick = reservoir_pick(ties, rng)
    for j in range(found):
        if totals[j] == top:
            if pick == 0:
                return cand[j]
            pick -= 1
    return -1


@njit(cache=True, error_model="numpy")
def schedule_pod(nodes, plan, start, num_to_find, rng, work, always_score=False):
    """Filter from ``start`` until ``num_to_find`` feasible nodes, score them, pick one.

    Only the nodes in ``plan.search.subset`` are searched when it is restricted (a PreFilterResult). A single
    feasible node is taken without scoring, as upstream does, unless ``always_score``.

    Returns (node or -1, nodes processed, feasible nodes scored); the scored nodes
    are ``work.cand[:found]`` with their totals in ``work.totals[:found]``.
    """
    found, processed = find_feasible(nodes, plan, start, num_to_find, work.cand)
    if found == 0:
        return -1, processed, 0
    if found == 1 and not always_score:
        return work.cand[0], processed, 1
    score_feasible(nodes, plan, found, work)
    return select_host(work.cand, work.totals, found, rng), processed, found


@njit(cache=True, error_model="numpy")
def bind(nodes, node, request):
    """Account one pod of ``request`` (a BindRequest) on ``node``."""
    for r in range(request.requests.shape[0]):
        nodes.requested[r, node] += request.requests[r]
    nodes.nonzero[0, node] += request.nonzero[0]
    nodes.nonzero[1, node] += request.nonzero[1]
    nodes.pod_count[node] += 1


@njit(cache=True, error_model="numpy")
def schedule_batch(nodes, plan, start, num_to_find, rng, request, work, out):
    """Schedule ``len(out.nodes)`` pods of one plan in queue order, binding each (``request``) before the next.
    Stops at the first pod that fits nowhere. Returns the next start index and how many pods were placed."""
    n = nodes.allocatable.shape[1]
    if plan.search.restricted and plan.search.subset.shape[0] == 0:
        out.nodes[0], out.processed[0], out.found[0] = -1, 0, 0
        return start, 0
    for p in range(out.nodes.shape[0]):
        node, processed, found = schedule_pod(nodes, plan, start, num_to_find, rng, work)
        start = (start + processed) % n
        out.nodes[p] = node
        out.processed[p] = processed
        out.found[p] = found
        if node < 0:
            return start, p
        bind(nodes, node, request)
    return start, out.nodes.shape[0]
