"""GpuPackingScore (``pkg/simulator/plugin/gpu_packing_score.go`` ``getPackingScore``): shared GPUs first, then
free GPUs of used nodes, then free nodes.

- every GPU of the node free: max(33 - free GPUs, free GPUs);
- the pod needs free GPUs (taking GPUs with the least left first): max(50 - free GPUs taken, 33);
- it fits on used GPUs: max(100 - (sum of their percent left) / 10, 50).
A pod without GPU milli scores 0.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from kbench.gpushare.model import MAX_GPUS, MILLI

THIRD, HALF, FULL = 33, 50, 100
"""``MaxNodeScore / 3``, ``MaxNodeScore / 2``, ``MaxNodeScore``."""


@njit(cache=True)
def score(s, n, pod):
    """(score, -1)."""
    if pod.milli <= 0:
        return 0, -1
    count = s.gpu_count[n]
    left = s.gpu_left[n, :count]
    free = 0
    for g in range(count):
        if left[g] == MILLI:
            free += 1
    if free == count:
        return max(THIRD - free, free), -1
    order = np.argsort(left, kind="mergesort")  # SortedMilliGpuLeftIndexList(true): stable, least left first
    need, taken_free, percent = pod.gpus, 0, 0
    used = np.empty(MAX_GPUS, np.int64)
    k = 0
    for g in order:
        if need == 0:
            break
        if pod.milli <= left[g]:
            need -= 1
            used[k] = g
            k += 1
            if left[g] == MILLI:
                taken_free += 1
    if taken_free > 0:
        return max(HALF - taken_free, THIRD), -1
    for i in range(k):
        percent += left[used[i]] * 100 // MILLI
    return max(FULL - percent // 10, HALF), -1
