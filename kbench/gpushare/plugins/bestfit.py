"""BestFitScore (``pkg/simulator/plugin/best_fit_score.go`` ``getBestFitScore``): the node left tightest.

Score = (1 - sum over CPU and GPU of 0.5 * (free - request) / MaxSpec) * 100, truncated; NormalizeScore
(``plugin_utils.go``) then maps the feasible nodes' scores onto 0..100 by min-max with integer arithmetic.
"""

from __future__ import annotations

from numba import njit

from kbench.gpushare.model import MAX_SPEC_CPU, MAX_SPEC_GPU

WEIGHT = 0.5
"""Both resources weigh 0.5."""


@njit(cache=True)
def score(s, n, pod):
    """(score, -1); score -1 when the node has less free than asked (Go's error status, which fails the cycle)."""
    left = 0
    for g in range(s.gpu_count[n]):
        left += s.gpu_left[n, g]
    if s.cpu_left[n] < pod.ncpu or left < pod.milli * pod.gpus:
        return -1, -1
    fit = 0.0
    fit += (float(s.cpu_left[n]) - float(pod.ncpu)) / MAX_SPEC_CPU * WEIGHT
    fit += (float(left) - float(pod.milli * pod.gpus)) / MAX_SPEC_GPU * WEIGHT
    return int((1.0 - fit) * 100.0), -1


@njit(cache=True)
def normalize(scores, m):
    """``NormalizeScore`` over ``scores[:m]`` in place: min-max onto 0..100, all 0 when they are equal."""
    high, low = scores[0], scores[0]
    for k in range(1, m):
        high = max(high, scores[k])
        low = min(low, scores[k])
    for k in range(m):
        scores[k] = 0 if high == low else (scores[k] - low) * 100 // (high - low)
