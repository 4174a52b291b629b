"""Open-Gpu-Share (``pkg/simulator/plugin/open_gpu_share.go``): the GPU filter and the GPU choice at Reserve.

Filter: a pod without GPU milli passes; otherwise the node must have GPUs of a model the pod may use and, as
``GpuNodeInfo.AllocateGpuId`` (``pkg/type/open-gpu-share/cache/gpunodeinfo.go``) finds, ``gpus`` GPUs with at
least ``milli`` left (a multi-GPU pod asks for whole GPUs, so each GPU serves it once). NodeResourcesFit, which the
repository's profile leaves on, checks CPU (the real request), memory and the pod count first.

Reserve picks the GPUs of a sharing pod by ``gpuSelMethod`` (best fit, worst fit, random, or the score plugin's own
choice) and those of a whole-GPU pod by ``AllocateExclusiveGpuId`` (``pkg/type/resource.go``): the first free GPUs
by index.
"""

from __future__ import annotations

from numba import njit

from kbench.gpushare.arrays import ANY
from kbench.gpushare.model import MILLI

SEL_BEST, SEL_WORST, SEL_RANDOM, SEL_PLUGIN = 0, 1, 2, 3
"""Reserve's GPU choice for a sharing pod: ``allocateGpuIdBasedOn{BestFit,WorstFit,RandomFit}`` or the plugin's."""


@njit(cache=True, inline="always")
def accessible(mask, model):
    """``IsNodeAccessibleToPodByType``: no model named fits all; a list fits nodes of a listed model only."""
    if mask == ANY:
        return True
    return model >= 0 and (mask >> model) & 1 == 1


@njit(cache=True, inline="always")
def fits(s, n, pod):
    """NodeResourcesFit (CPU, memory, pods) then the Open-Gpu-Share Filter."""
    if s.cpu_left[n] < pod.cpu or s.memory_left[n] < pod.memory or s.pods_left[n] < 1:
        return False
    if pod.milli <= 0:
        return True
    if pod.gpus <= 0 or s.gpu_count[n] == 0 or not accessible(pod.mask, s.model[n]):
        return False
    room = 0
    for g in range(s.gpu_count[n]):
        if s.gpu_left[n, g] >= pod.milli:
            room += 1
    return room >= pod.gpus


@njit(cache=True)
def exclusive(s, n, pod, out):
    """``AllocateExclusiveGpuId``: the first free GPUs by index into ``out``; how many."""
    k = 0
    for g in range(s.gpu_count[n]):
        if k * MILLI >= pod.milli * pod.gpus:
            break
        if s.gpu_left[n, g] == MILLI:
            out[k] = g
            k += 1
    return k


@njit(cache=True)
def shared(s, n, pod, method, u):
    """The GPU of a sharing pod by best fit (least left), worst fit (most left) or at random (``u`` in [0, 1)),
    the first by index among equals."""
    chosen, fitting = -1, 0
    for g in range(s.gpu_count[n]):
        left = s.gpu_left[n, g]
        if left < pod.milli:
            continue
        fitting += 1
        best = method == SEL_BEST and left < s.gpu_left[n, chosen]
        worst = method == SEL_WORST and left > s.gpu_left[n, chosen]
        if chosen < 0 or best or worst:
            chosen = g
    if method == SEL_RANDOM and fitting > 1:
        pick = int(u * fitting)
        for g in range(s.gpu_count[n]):
            if s.gpu_left[n, g] >= pod.milli:
                if pick == 0:
                    return g
                pick -= 1
    return chosen


@njit(cache=True, inline="always")
def tag(pod):
    """``GetGpuAffinityFromPodAnnotation`` as a slot: -1 no GPU, 0 ``share-gpu``, n ``<n>-gpu``."""
    if pod.gpus == 0:
        return -1
    return 0 if pod.gpus == 1 and pod.milli < MILLI else pod.gpus


@njit(cache=True)
def bind(s, n, pod, gpus, k, sign):
    """Take (``sign`` 1) or give back (-1) the pod's resources on node ``n``, GPUs ``gpus[:k]``."""
    s.cpu_left[n] -= sign * pod.cpu
    s.memory_left[n] -= sign * pod.memory
    s.pods_left[n] -= sign
    for i in range(k):
        s.gpu_left[n, gpus[i]] -= sign * pod.milli
    t = tag(pod)
    if t >= 0:
        s.affinity[n, t] += sign
