"""GpuClusteringScore (``pkg/simulator/plugin/gpu_clustering_score.go``): put pods of one GPU shape together.

A GPU pod scores 25 * (8000 - milli-GPU left) / 8000 (integer arithmetic) plus 75 on a node whose pods all share
its tag (``share-gpu`` or ``<n>-gpu``), 50 on a node that also holds other tags, 25 on a node without GPU pods and
0 on a node with only other tags. A pod without GPUs scores 0 everywhere.
"""

from __future__ import annotations

from numba import njit

from kbench.gpushare.model import MAX_SPEC_GPU
from kbench.gpushare.plugins.opengpushare import tag

QUARTER = 25
"""``framework.MaxNodeScore / 4``."""


@njit(cache=True)
def score(s, n, pod):
    """(score, -1)."""
    t = tag(pod)
    if t < 0:
        return 0, -1
    left, tags = 0, 0
    for g in range(s.gpu_count[n]):
        left += s.gpu_left[n, g]
    for i in range(s.affinity.shape[1]):
        if s.affinity[n, i] > 0:
            tags += 1
    base = QUARTER * (MAX_SPEC_GPU - left) // MAX_SPEC_GPU
    if s.affinity[n, t] > 0:
        return base + (3 * QUARTER if tags == 1 else 2 * QUARTER), -1
    return base + (QUARTER if tags == 0 else 0), -1
