"""Numba kernels: one fused filter + score + selectHost pass per pod over struct-of-arrays cluster state.

Inputs are the state arrays (``alloc`` and ``requested`` as ``[resource, node]``,
``nonzero`` cpu/memory rows, ``pod_count``) and a pod's plan (see
``kbench/scheduler/kernel.py``): a mask of the non-resource filters, the
NodeResourcesFit request and scoring terms, BalancedAllocation terms, raw scores
of the other score plugins with their NormalizeScore kind, and
PodTopologySpread's per-domain counts (its weights depend on which nodes are
scored, so it is scored here). Nodes are visited from the rotating start until
``num_to_find`` feasible nodes are found, as ``findNodesThatPassFilters`` does;
ties are broken by the same reservoir sampler as ``select.py``. Arithmetic is
upstream's: integer Go division, float64 where Go uses float64.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from kbench.sim._kernels import splitmix_unit

PODS = 3
LEAST, MOST, RTCR = 0, 1, 2
NORM_NONE, NORM_DEFAULT, NORM_REVERSE, NORM_SPREAD, NORM_MINMAX = 0, 1, 2, 3, 4
NONZERO_ROW = 1


@njit(cache=True, inline="always", error_model="numpy")
def _go_div(a, b):
    q = abs(a) // abs(b)
    return -q if (a < 0) != (b < 0) else q


@njit(cache=True, inline="always", error_model="numpy")
def _broken_linear(shape, p):
    for i in range(shape.shape[0]):
        if p <= shape[i, 0]:
            if i == 0:
                return shape[0, 1]
            u0, s0, u1, s1 = shape[i - 1, 0], shape[i - 1, 1], shape[i, 0], shape[i, 1]
            return s0 + _go_div((s1 - s0) * (p - u0), u1 - u0)
    return shape[shape.shape[0] - 1, 1]


@njit(cache=True, inline="always", error_model="numpy")
def _fits(alloc, requested, pod_count, fit_req, i):
    if pod_count[i] + 1 > alloc[PODS, i]:
        return False
    for r in range(fit_req.shape[0]):
        if r != PODS and fit_req[r] > 0 and fit_req[r] > alloc[r, i] - requested[r, i]:
            return False
    return True


@njit(cache=True, inline="always", error_model="numpy")
def _strategy_score(kind, rows, src, reqs, wts, shape, alloc, requested, nonzero, i):
    total = 0
    wsum = 0
    for t in range(rows.shape[0]):
        r = rows[t]
        a = alloc[r, i]
        if a == 0:
            continue
        used = (nonzero[r, i] if src[t] == NONZERO_ROW else requested[r, i]) + reqs[t]
        if kind == LEAST:
            s = 0 if used > a else (a - used) * 100 // a
        elif kind == MOST:
            s = (used if used < a else a) * 100 // a
        else:
            s = _broken_linear(shape, 100 if used > a else used * 100 // a)
            if s <= 0:
                continue
        total += s * wts[t]
        wsum += wts[t]
    if wsum == 0:
        return 0
    if kind == RTCR:
        return np.int64(math.floor(total / wsum + 0.5))
    return total // wsum


@njit(cache=True, inline="always", error_model="numpy")
def _balanced_score(rows, reqs, alloc, requested, i, frac):
    count = 0
    total = 0.0
    for t in range(rows.shape[0]):
        a = alloc[rows[t], i]
        if a == 0:
            continue
        f = (requested[rows[t], i] + reqs[t]) / a
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
def _normalize(kind, raw, m, out):
    if kind in (NORM_DEFAULT, NORM_REVERSE):
        top = 0
        for j in range(m):
            if raw[j] > top:
                top = raw[j]
        for j in range(m):
            if top == 0:
                out[j] = 100 if kind == NORM_REVERSE else 0
            else:
                v = 100 * raw[j] // top
                out[j] = 100 - v if kind == NORM_REVERSE else v
    elif kind == NORM_MINMAX:
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
def _spread_scores(cand, m, sp_dom, sp_cnt, sp_here, sp_skew, sp_host, sp_keys, raw, out, mark):
    """PodTopologySpread over the scored nodes: weights ln(domains + 2), then its NormalizeScore into out."""
    live = 0
    for j in range(m):
        if sp_keys[cand[j]]:
            live += 1
    weights = np.zeros(sp_dom.shape[0])
    for c in range(sp_dom.shape[0]):
        if sp_host[c]:
            size = live
        else:
            mark[:] = 0
            size = 0
            for j in range(m):
                i = cand[j]
                if sp_keys[i] and mark[sp_dom[c, i]] == 0:
                    mark[sp_dom[c, i]] = 1
                    size += 1
        weights[c] = math.log(size + 2)
    top, low, any_live = 0, 0, False
    for j in range(m):
        i = cand[j]
        if not sp_keys[i]:
            raw[j] = 0
            continue
        total = 0.0
        for c in range(sp_dom.shape[0]):
            n = sp_here[c, i] if sp_host[c] else sp_cnt[c, sp_dom[c, i]]
            total += float(n) * weights[c] + float(sp_skew[c] - 1)
        raw[j] = np.int64(math.floor(total + 0.5))
        if not any_live:
            top, low, any_live = raw[j], raw[j], True
        else:
            top = max(top, raw[j])
            low = min(low, raw[j])
    for j in range(m):
        if not sp_keys[cand[j]]:
            out[j] = 0
        elif top == 0:
            out[j] = 100
        else:
            out[j] = 100 * (top + low - raw[j]) // top


@njit(cache=True, error_model="numpy")
def _reservoir_pick(ties, rng):
    chosen, seen = 0, 1
    while ties > 1:
        nxt = np.int64(math.floor(seen / splitmix_unit(rng))) + 1
        if nxt > ties:
            break
        chosen, seen = nxt - 1, nxt
    return chosen


@njit(cache=True, error_model="numpy")
def schedule_pod(
    alloc,
    requested,
    nonzero,
    pod_count,
    static_ok,
    fit_on,
    fit_req,
    fit_kind,
    fit_rows,
    fit_src,
    fit_reqs,
    fit_wts,
    shape,
    fit_weight,
    bal_rows,
    bal_reqs,
    bal_weight,
    ex_raw,
    ex_norm,
    ex_weight,
    sp_dom,
    sp_cnt,
    sp_here,
    sp_skew,
    sp_host,
    sp_keys,
    sp_weight,
    restricted,
    subset,
    start,
    num_to_find,
    rng,
    cand,
    totals,
    scratch,
    mark,
    always_score=False,
):
    """Filter from ``start`` until ``num_to_find`` feasible nodes, score them, pick one.

    Only the nodes in ``subset`` are searched when ``restricted`` (a PreFilterResult). A single
    feasible node is taken without scoring, as upstream does, unless ``always_score``.

    Returns (node or -1, nodes processed, feasible nodes scored); the scored nodes
    are ``cand[:found]`` with their totals in ``totals[:found]``.
    """
    n = subset.shape[0] if restricted else alloc.shape[1]
    found = 0
    processed = n
    for k in range(n):
        i = subset[(start + k) % n] if restricted else (start + k) % n
        if not static_ok[i] or (fit_on and not _fits(alloc, requested, pod_count, fit_req, i)):
            continue
        if found == num_to_find:
            processed = k
            break
        cand[found] = i
        found += 1
    if found == 0:
        return -1, processed, 0
    if found == 1 and not always_score:
        return cand[0], processed, 1
    raw = scratch[0]
    norm = scratch[1]
    frac = np.empty(bal_rows.shape[0] + 1)
    for j in range(found):
        totals[j] = 0
    if fit_weight > 0:
        for j in range(found):
            totals[j] += fit_weight * _strategy_score(
                fit_kind, fit_rows, fit_src, fit_reqs, fit_wts, shape, alloc, requested, nonzero, cand[j]
            )
    if bal_weight > 0:
        for j in range(found):
            totals[j] += bal_weight * _balanced_score(bal_rows, bal_reqs, alloc, requested, cand[j], frac)
    for p in range(ex_raw.shape[0]):
        for j in range(found):
            raw[j] = ex_raw[p, cand[j]]
        _normalize(ex_norm[p], raw, found, norm)
        for j in range(found):
            totals[j] += ex_weight[p] * norm[j]
    if sp_weight > 0:
        _spread_scores(cand, found, sp_dom, sp_cnt, sp_here, sp_skew, sp_host, sp_keys, raw, norm, mark)
        for j in range(found):
            totals[j] += sp_weight * norm[j]
    top = totals[0]
    for j in range(found):
        top = max(top, totals[j])
    ties = 0
    for j in range(found):
        if totals[j] == top:
            ties += 1
    pick = _reservoir_pick(ties, rng)
    for j in range(found):
        if totals[j] == top:
            if pick == 0:
                return cand[j], processed, found
            pick -= 1
    return -1, processed, found


@njit(cache=True, error_model="numpy")
def schedule_batch(
    alloc,
    requested,
    nonzero,
    pod_count,
    static_ok,
    fit_on,
    fit_req,
    fit_kind,
    fit_rows,
    fit_src,
    fit_reqs,
    fit_wts,
    shape,
    fit_weight,
    bal_rows,
    bal_reqs,
    bal_weight,
    ex_raw,
    ex_norm,
    ex_weight,
    sp_dom,
    sp_cnt,
    sp_here,
    sp_skew,
    sp_host,
    sp_keys,
    sp_weight,
    restricted,
    subset,
    start,
    num_to_find,
    rng,
    bind_req,
    bind_nonzero,
    out_nodes,
    out_processed,
    out_found,
):
    """Schedule ``len(out_nodes)`` pods of one plan in queue order, binding each (requests, non-zero
    requests, pod count) before the next. Stops at the first pod that fits nowhere. Returns the next
    start index and how many pods were placed."""
    n = alloc.shape[1]
    if restricted and subset.shape[0] == 0:
        out_nodes[0], out_processed[0], out_found[0] = -1, 0, 0
        return start, 0
    cand = np.empty(n, np.int64)
    totals = np.empty(n, np.int64)
    scratch = np.empty((2, n), np.int64)
    mark = np.zeros(max(sp_cnt.shape[1], 1), np.int64)
    for p in range(out_nodes.shape[0]):
        node, processed, found = schedule_pod(
            alloc,
            requested,
            nonzero,
            pod_count,
            static_ok,
            fit_on,
            fit_req,
            fit_kind,
            fit_rows,
            fit_src,
            fit_reqs,
            fit_wts,
            shape,
            fit_weight,
            bal_rows,
            bal_reqs,
            bal_weight,
            ex_raw,
            ex_norm,
            ex_weight,
            sp_dom,
            sp_cnt,
            sp_here,
            sp_skew,
            sp_host,
            sp_keys,
            sp_weight,
            restricted,
            subset,
            start,
            num_to_find,
            rng,
            cand,
            totals,
            scratch,
            mark,
        )
        start = (start + processed) % n
        out_nodes[p] = node
        out_processed[p] = processed
        out_found[p] = found
        if node < 0:
            return start, p
        for r in range(bind_req.shape[0]):
            requested[r, node] += bind_req[r]
        nonzero[0, node] += bind_nonzero[0]
        nonzero[1, node] += bind_nonzero[1]
        pod_count[node] += 1
    return start, out_nodes.shape[0]
