"""DotProductScore (``pkg/simulator/plugin/dot_product_score.go``, Tetris' packing heuristic): the node whose
free-resource vector is least aligned with the pod's request.

Match groups (``GenerateSchedulingMatchGroups``): with ``dimExtMethod: merge`` one group, (CPU left, milli-GPU left
on the node) against (CPU, milli-GPU asked); with ``share``, one group per partly used GPU that fits a sharing pod
and one for the node's free GPUs, each with the node's CPU left. Vectors are normalised by ``normMethod`` (``max``:
MaxSpecCpu, MaxSpecGpu; ``node``: the node's capacity; ``pod``: the request), the dot product halved (tanh(x/10)
with ``pod``), and the score is 100 * (1 - that) truncated, the best group's; a node without CPU for the pod has no
group and scores 0. The best group's GPU is the plugin's GPU choice.
"""

from __future__ import annotations

import math

from numba import njit

from kbench.gpushare.model import MAX_SPEC_CPU, MAX_SPEC_GPU, MILLI

DIM_MERGE, DIM_SHARE = 0, 1
NORM_MAX, NORM_NODE, NORM_POD = 0, 1, 2


@njit(cache=True)
def _scaled(x, by):
    """``NormalizeVector``: x / by, 0 when ``by`` is not positive."""
    return x / by if by > 0 else 0.0


@njit(cache=True)
def _group(s, n, pod, cpu_node, gpu_node, norm):
    """1 - (normalised dot product) of one match group."""
    request = pod.milli * pod.gpus
    if norm == NORM_MAX:
        cpu_by, gpu_by = float(MAX_SPEC_CPU), float(MAX_SPEC_GPU)
    elif norm == NORM_NODE:
        cpu_by, gpu_by = float(s.cpu_capacity[n]), float(s.gpu_count[n] * MILLI)
    else:
        cpu_by, gpu_by = float(pod.ncpu), float(request)
    dot = _scaled(cpu_node, cpu_by) * _scaled(pod.ncpu, cpu_by) + _scaled(gpu_node, gpu_by) * _scaled(request, gpu_by)
    current = dot / 2.0
    if norm == NORM_POD:
        current = math.tanh(current / 10)
    return 1.0 - current


@njit(cache=True)
def score(s, n, pod, dim, norm):
    """(score, the best group's GPU: a partly used GPU, else the first free GPU, -1 for none or merge)."""
    cpu_left = s.cpu_left[n]
    if cpu_left < pod.ncpu:
        return 0, -1
    request, count = pod.milli * pod.gpus, s.gpu_count[n]
    total, free, first_free = 0, 0, -1
    for g in range(count):
        total += s.gpu_left[n, g]
        if s.gpu_left[n, g] == MILLI:
            free += 1
            first_free = g if first_free < 0 else first_free
    best, gpu = -1.0, -1
    if dim == DIM_MERGE:
        best = max(best, _group(s, n, pod, float(cpu_left), float(total), norm))
    else:
        if request < MILLI:
            for g in range(count):
                left = s.gpu_left[n, g]
                if left >= MILLI or left < request:
                    continue
                current = _group(s, n, pod, float(cpu_left), float(left), norm)
                if best < current:
                    best, gpu = current, g
        if request <= free * MILLI:
            current = _group(s, n, pod, float(cpu_left), float(free * MILLI), norm)
            if best < current:
                best, gpu = current, (first_free if request > 0 else -1)
    if best == -1.0:
        return 0, -1
    return int(100.0 * best), gpu
