"""NodeResources scorers' arithmetic (``plugins/noderesources``: resource_allocation.go, least_allocated.go,
most_allocated.go, requested_to_capacity_ratio.go, balanced_allocation.go; ``plugins/helper/shape_score.go``).

Vectorized over ``(resources, nodes)`` arrays of requested (including the pod) and allocatable amounts, with
Go's integer arithmetic (truncating division); the kernel in ``_kernels.py`` implements the same formulas
node by node and is tested against these.
"""

from __future__ import annotations

import numpy as np

from kbench.scheduler.interface import MAX_NODE_SCORE
from kbench.scheduler.plan import LEAST_ALLOCATED as LEAST
from kbench.scheduler.plan import MOST_ALLOCATED as MOST
from kbench.scheduler.plan import REQUESTED_TO_CAPACITY_RATIO as RTCR

STRATEGIES = {"LeastAllocated": LEAST, "MostAllocated": MOST, "RequestedToCapacityRatio": RTCR}
MAX_UTILIZATION = 100


def go_div(a: np.ndarray, b: np.ndarray | int) -> np.ndarray:
    """Go's integer division (truncates toward zero)."""
    q = np.abs(a) // np.abs(b)
    return np.where((np.asarray(a) < 0) != (np.asarray(b) < 0), -q, q)


def broken_linear(shape: np.ndarray, p: np.ndarray) -> np.ndarray:
    """helper.BuildBrokenLinearFunction over shape points (utilization, score) at utilizations ``p``."""
    out = np.full(p.shape, shape[-1, 1], np.int64)
    done = np.zeros(p.shape, bool)
    for i in range(len(shape)):
        hit = ~done & (p <= shape[i, 0])
        if i == 0:
            out[hit] = shape[0, 1]
        else:
            u0, s0, u1, s1 = shape[i - 1, 0], shape[i - 1, 1], shape[i, 0], shape[i, 1]
            out[hit] = s0 + go_div((s1 - s0) * (p[hit] - u0), u1 - u0)
        done |= hit
    return out


def strategy_scores(
    kind: int, requested: np.ndarray, alloc: np.ndarray, weights: np.ndarray, shape: np.ndarray
) -> np.ndarray:
    """The strategy's node score from per-resource (requested, allocatable); resources with 0 allocatable skip."""
    valid = alloc > 0
    safe = np.where(valid, alloc, 1)
    if kind == LEAST:
        per = np.where(requested > alloc, 0, (alloc - requested) * MAX_NODE_SCORE // safe)
    elif kind == MOST:
        per = np.minimum(requested, alloc) * MAX_NODE_SCORE // safe
    else:
        util = np.where(requested > alloc, MAX_UTILIZATION, requested * MAX_UTILIZATION // safe)
        per = broken_linear(shape, util)
        valid = valid & (per > 0)
    w = np.where(valid, weights[:, None], 0)
    total, wsum = (per * w).sum(axis=0), w.sum(axis=0)
    if kind == RTCR:
        return np.where(wsum > 0, np.floor(total / np.maximum(wsum, 1) + 0.5), 0).astype(np.int64)
    return np.where(wsum > 0, total // np.maximum(wsum, 1), 0)


def balanced_scores(requested: np.ndarray, alloc: np.ndarray) -> np.ndarray:
    """balancedResourceScorer: (1 - std of the requested fractions, each capped at 1) * 100, truncated."""
    valid = alloc > 0
    frac = np.where(valid, np.minimum(requested / np.where(valid, alloc, 1), 1.0), 0.0)
    count = valid.sum(axis=0)
    total = np.zeros(frac.shape[1])
    for row in range(frac.shape[0]):  # Go adds the fractions in resource order
        total = total + frac[row]
    mean = total / np.maximum(count, 1)
    sq = np.zeros(frac.shape[1])
    for row in range(frac.shape[0]):
        sq = sq + np.where(valid[row], (frac[row] - mean) * (frac[row] - mean), 0.0)
    two = np.zeros(frac.shape[1])
    if frac.shape[0] >= 2:
        first = np.argmax(valid, axis=0)
        second = np.argmax(valid & (np.arange(frac.shape[0])[:, None] > first), axis=0)
        cols = np.arange(frac.shape[1])
        two = np.abs((frac[first, cols] - frac[second, cols]) / 2)
    std = np.where(count == 2, two, np.where(count > 2, np.sqrt(sq / np.maximum(count, 1)), 0.0))
    return np.trunc((1 - std) * MAX_NODE_SCORE).astype(np.int64)
