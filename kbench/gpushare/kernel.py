"""The replay kernel: pods arrive one at a time and are filtered, scored, placed, given GPUs and bound.

One scheduling cycle as kube-scheduler v1.20 runs the repository's profile (``percentageOfNodesToScore: 100``):
every node is filtered (:func:`~kbench.gpushare.plugins.opengpushare.fits`), every feasible node scored by each
enabled plugin, BestFitScore normalised, the weighted sum taken, and the host picked as the repository's fork of
kube-scheduler picks it (``vendor/k8s.io/kubernetes/pkg/scheduler/core/generic_scheduler.go`` ``selectHost``:
"for reproducibility", the smallest node name among the best, where upstream draws at random; the names carry a
random prefix drawn once per run, so ``rank`` is that order). RandomScore's
PreScore and random GPU selection draw ``u[j, 0]`` and ``u[j, 1]`` from a seeded NumPy stream (the repository
uses Go's math/rand). Reserve gives the GPUs, bind takes the resources. A
pod is dropped, as the paper's simulator drops it, when no node fits, when a score plugin fails the cycle (with one
feasible node Go skips scoring, so it cannot), or when the selecting plugin finds no GPU.

F(n) of every node is kept as nodes change, so the cluster's fragmentation is reported after every pod as the
repository's ``ClusterGpuFragReport`` does, and every plugin's score of a node for a pod shape (RandomScore's
aside) is cached until that node changes: pods of one shape score alike on an unchanged node. The cache holds 24
bytes per plugin, node and pod shape (9 MB for the openb list with the most shapes, gpuspec33's 320, on 1,213
nodes).

Numba's on-disk cache of :func:`replay` is keyed by this file alone, not by the plugin files it calls: after
editing a plugin, touch this file (or clear the cache), or the cached replay keeps the old plugin.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from kbench.gpushare.arrays import Pod
from kbench.gpushare.model import MAX_GPUS, MILLI
from kbench.gpushare.plugins import bestfit, dotproduct, fgd, gpuclustering, gpupacking, opengpushare

RANDOM, DOTPROD, CLUSTERING, PACKING, BESTFIT, FGD = range(6)
"""Plugin codes in :data:`kbench.gpushare.config.SCORE_PLUGINS` order."""
ARRIVED, USED, FRAG, CPU_USED = range(4)
"""Columns of the per-pod report: GPU milli arrived, GPU milli allocated, F summed over nodes, milli-CPU allocated."""


@njit(cache=True)
def pod_at(p, i):
    """Pod ``i`` of the columns ``p``."""
    return Pod(p.cpu[i], p.ncpu[i], p.memory[i], p.gpus[i], p.milli[i], p.mask[i])


@njit(cache=True)
def node_frag(s, n, t):
    """F(n) of node ``n`` as it stands."""
    return fgd.frag(s.cpu_left[n], s.gpu_left[n, : s.gpu_count[n]], s.model[n], t)


@njit(cache=True)
def _plugin(code, s, n, pod, dim, norm, t, before):
    if code == DOTPROD:
        return dotproduct.score(s, n, pod, dim, norm)
    if code == CLUSTERING:
        return gpuclustering.score(s, n, pod)
    if code == PACKING:
        return gpupacking.score(s, n, pod)
    if code == BESTFIT:
        return bestfit.score(s, n, pod)
    return fgd.score(s, n, pod, t, before)


@njit(cache=True)
def _score_all(code, s, pod, shape, feasible, m, u, dim, norm, t, frags, cache, version, raw, gpus):
    """Plugin ``code``'s scores (``raw``) and GPU choices (``gpus``) of the ``m`` feasible nodes; False when a
    score is outside 0..100 (Go's framework fails the cycle on it, or on the error status BestFit returns as -1).
    ``cache[n, shape]`` holds a node's (score, GPU, version) for a pod shape: valid while the node is unchanged."""
    pick = int(u * m)
    for k in range(m):
        n = feasible[k]
        if code == RANDOM:
            raw[k], gpus[k] = (100 if k == pick else 0), -1
        elif cache[n, shape, 2] == version[n]:
            raw[k], gpus[k] = cache[n, shape, 0], cache[n, shape, 1]
        else:
            raw[k], gpus[k] = _plugin(code, s, n, pod, dim, norm, t, frags[n])
            cache[n, shape, 0], cache[n, shape, 1], cache[n, shape, 2] = raw[k], gpus[k], version[n]
        if raw[k] < 0 or raw[k] > 100:
            return False
    if code == BESTFIT:
        bestfit.normalize(raw, m)
    return True


@njit(cache=True)
def _select(total, m, feasible, rank):
    """selectHost of the repository's kube-scheduler: the best, the smallest ``rank`` (name) among equals."""
    chosen = 0
    for k in range(1, m):
        if total[k] > total[chosen] or (total[k] == total[chosen] and rank[feasible[k]] < rank[feasible[chosen]]):
            chosen = k
    return chosen


@njit(cache=True)
def _reserve(s, n, pod, sel, plugin_gpu, u, out):
    """The pod's GPUs on node ``n`` into ``out``; how many (-1: the selecting plugin found none, so Reserve fails)."""
    if pod.milli <= 0:
        return 0
    if sel == opengpushare.SEL_PLUGIN and plugin_gpu < 0:
        return -1
    if pod.milli >= MILLI:
        return opengpushare.exclusive(s, n, pod, out)
    out[0] = plugin_gpu if sel == opengpushare.SEL_PLUGIN else opengpushare.shared(s, n, pod, sel, u)
    return 1


@njit(cache=True)
def replay(s, rank, pods, order, u, codes, weights, sel, sel_code, dim, norm, t, out_node, out_gpus, report):
    """Schedule ``pods[order[j]]`` for every j in turn, binding into ``s``; ``rank`` is the nodes' tie order.

    ``out_node[j]`` gets the node (-1: dropped), ``out_gpus[j]`` its GPUs (-1 padded), ``report[j]`` the
    cluster after it (columns :data:`ARRIVED`, :data:`USED`, :data:`FRAG`, :data:`CPU_USED`).
    """
    nodes = s.cpu_left.shape[0]
    frags = np.empty(nodes)
    for n in range(nodes):
        frags[n] = node_frag(s, n, t)
    shapes = pods.shape.max() + 1 if pods.shape.shape[0] else 1
    cache = np.full((codes.shape[0], nodes, shapes, 3), -1, np.int64)
    version = np.zeros(nodes, np.int64)
    feasible, raw, gpus = np.empty(nodes, np.int64), np.empty(nodes, np.int64), np.empty(nodes, np.int64)
    total, picks, chosen_gpus = np.empty(nodes, np.int64), np.empty(nodes, np.int64), np.empty(MAX_GPUS, np.int64)
    arrived, used, cpu_used = 0, 0, 0
    for j in range(order.shape[0]):
        i = order[j]
        pod = pod_at(pods, i)
        arrived += pod.milli * pod.gpus
        m = 0
        for n in range(nodes):
            if opengpushare.fits(s, n, pod):
                feasible[m] = n
                m += 1
        out_node[j] = -1
        out_gpus[j, :] = -1
        if m > 0:
            total[:m] = 0
            picks[:m] = -1
            scored = True
            for c in range(codes.shape[0]):
                scored &= _score_all(codes[c], s, pod, pods.shape[i], feasible, m, u[j, 0], dim, norm, t, frags,
                                     cache[c], version, raw, gpus)  # fmt: skip
                for k in range(m):
                    total[k] += weights[c] * raw[k]
                    if codes[c] == sel_code:
                        picks[k] = gpus[k]
            k = _select(total, m, feasible, rank)
            n = feasible[k]
            taken = _reserve(s, n, pod, sel, picks[k], u[j, 1], chosen_gpus) if scored or m == 1 else -1
            if taken >= 0:
                opengpushare.bind(s, n, pod, chosen_gpus, taken, 1)
                version[n] += 1
                frags[n] = node_frag(s, n, t)
                used += pod.milli * pod.gpus
                cpu_used += pod.cpu
                out_node[j] = n
                out_gpus[j, :taken] = chosen_gpus[:taken]
        report[j, ARRIVED], report[j, USED], report[j, FRAG], report[j, CPU_USED] = arrived, used, frags.sum(), cpu_used
