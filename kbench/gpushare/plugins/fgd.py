"""FGDScore (``pkg/simulator/plugin/fgd_score.go``, ``pkg/utils/frag.go``): fragmentation gradient descent.

A node's fragmentation F(n) (``NodeGpuShareFragAmountScore``) sums over the typical pods k (the most frequent
request shapes covering 95% of the workload, frequencies p_k renormalised) p_k times the idle milli-GPU that k cannot
use on n: all of it when k lacks CPU or GPU room, has no access to the model, or asks for no GPU (categories Q1, Q2,
Q4, NoAccess, XL, XR); when k fits (Q3), only the GPUs with less than k's milli left. The score of placing a pod is
sigmoid((F(n) - F(n')) / 1000) * 100 truncated, n' being n after the placement: a sharing pod tries each GPU that
fits and keeps the first best, other pods take GPUs as ``NodeResource.Sub`` packs them (least left first).
Categories are summed as ``FragAmount`` does (one sum per category, then every category but Q3), so the kernel's
floating point is the reference's.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from kbench.gpushare.model import MILLI
from kbench.gpushare.plugins.opengpushare import accessible

Q1_LACK_BOTH, Q2_LACK_GPU, Q3_SATISFIED, Q4_LACK_CPU, XL_SATISFIED, XR_LACK_CPU, NO_ACCESS = range(7)
"""``FragRatioDataMap``."""


@njit(cache=True)
def frag(cpu_left, left, model, t):
    """F(n) of a node with ``cpu_left`` milli-CPU and GPUs ``left`` (``NodeGpuShareFragAmountScore``)."""
    amount = np.zeros(7)
    total = 0
    for g in range(left.shape[0]):
        total += left[g]
    for k in range(t.p.shape[0]):
        p, milli = t.p[k], t.milli[k]
        if p < 0 or p > 1:
            continue
        if milli == 0:
            amount[XL_SATISFIED if cpu_left >= t.cpu[k] else XR_LACK_CPU] += p * total
            continue
        if not accessible(t.mask[k], model):
            amount[NO_ACCESS] += p * total
            continue
        room, short = 0, 0
        for g in range(left.shape[0]):
            if left[g] >= milli:
                room += 1
            else:
                short += left[g]
        if room >= t.gpus[k] and cpu_left >= t.cpu[k]:
            amount[Q2_LACK_GPU] += p * short
            amount[Q3_SATISFIED] += p * (total - short)
        elif room >= t.gpus[k]:
            amount[Q4_LACK_CPU] += p * total
        else:
            amount[Q2_LACK_GPU if cpu_left >= t.cpu[k] else Q1_LACK_BOTH] += p * total
    out = 0.0
    for c in range(7):
        if c != Q3_SATISFIED:
            out += amount[c]
    return out


@njit(cache=True)
def _sigmoid_score(before, after):
    return int(1.0 / (1.0 + math.exp(-((before - after) / 1000))) * 100.0)


@njit(cache=True)
def score(s, n, pod, t, before):
    """(score, GPU): for a sharing pod the GPU it would take, else the first free GPU (the first of
    ``AllocateExclusiveGpuId``'s, -1 for none); ``before`` is F(n)."""
    count, model = s.gpu_count[n], s.model[n]
    left = s.gpu_left[n, :count].copy()
    if pod.gpus == 1 and pod.milli < MILLI:
        best, gpu = 0, -1
        for g in range(count):
            if left[g] < pod.milli or _seen(left, g):
                continue  # an earlier GPU with as much left scores the same and wins the tie
            left[g] -= pod.milli
            sc = _sigmoid_score(before, frag(s.cpu_left[n] - pod.ncpu, left, model, t))
            left[g] += pod.milli
            if gpu < 0 or sc > best:
                best, gpu = sc, g
        return best, gpu
    first_free = -1
    for g in range(count):
        if left[g] == MILLI and pod.gpus > 0:
            first_free = g
            break
    if s.cpu_left[n] < pod.ncpu or count < pod.gpus:
        return _sigmoid_score(before, before), first_free  # Sub fails and returns the node unchanged
    need = pod.gpus
    for g in np.argsort(left, kind="mergesort"):  # SortedMilliGpuLeftIndexList(true)
        if need <= 0:
            break
        if pod.milli <= left[g]:
            left[g] -= pod.milli
            need -= 1
    return _sigmoid_score(before, frag(s.cpu_left[n] - pod.ncpu, left, model, t)), first_free


@njit(cache=True)
def _seen(left, g):
    """Whether a GPU before ``g`` has exactly as much left."""
    for h in range(g):  # noqa: SIM110 (no generators in nopython mode)
        if left[h] == left[g]:
            return True
    return False
