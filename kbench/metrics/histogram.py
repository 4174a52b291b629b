"""Percentiles as ClusterLoader2 reads them from a Prometheus histogram: the samples counted into the metric's
buckets, then ``histogram_quantile`` (linear interpolation inside the bucket that holds the rank).

ClusterLoader2's NetworkProgrammingLatency (clusterloader2/pkg/measurement/common/slos/network_programming.go)
queries ``histogram_quantile(q, sum(rate(kubeproxy_network_programming_duration_seconds_bucket[...])) by (le))``
over the test, so its percentiles are those of kube-proxy's buckets, not of the samples: a p50 of samples that all
lie between 1 and 2 s is read somewhere inside (1, 2] by where the rank falls among the bucket's count.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

NETWORK_PROGRAMMING_BUCKETS: tuple[float, ...] = (
    0.25,
    0.5,
    *(float(s) for s in range(1, 60)),
    *(float(s) for s in range(60, 120, 5)),
    *(float(s) for s in range(120, 301, 30)),
)
"""kube-proxy's network_programming_duration_seconds buckets (pkg/proxy/metrics/metrics.go: 0.25 s, 0.5 s, 1-59 s by
1 s, 60-115 s by 5 s, 2-5 min by 30 s; +Inf above)."""


def histogram_quantile(values: Sequence[float], q: float, bounds: Sequence[float]) -> float:
    """Prometheus' ``histogram_quantile(q, ...)`` of ``values`` observed into buckets with upper bounds ``bounds``
    (ascending; +Inf implied above the last). The rank ``q * count`` falls in the first bucket whose cumulative count
    reaches it, and the answer is interpolated linearly from that bucket's lower bound (0 for the first) to its upper
    bound; a rank in +Inf is the last finite bound. NaN without values (promql/quantile.go bucketQuantile)."""
    if not 0 <= q <= 1:
        raise ValueError(f"q: a quantile in [0, 1]; got {q!r}")
    samples = np.asarray(values, dtype=np.float64)
    if samples.size == 0:
        return math.nan
    edges = np.asarray(bounds, dtype=np.float64)
    counts = np.bincount(np.searchsorted(edges, samples, side="left"), minlength=edges.size + 1)  # le: value <= bound
    cumulative = np.cumsum(counts)
    rank = q * samples.size
    b = int(np.searchsorted(cumulative, rank, side="left"))
    if b >= edges.size:  # the +Inf bucket
        return float(edges[-1])
    start = 0.0 if b == 0 else float(edges[b - 1])
    below = 0 if b == 0 else int(cumulative[b - 1])
    return start + (float(edges[b]) - start) * (rank - below) / counts[b]


def cl2_histogram_percentiles(bounds: Sequence[float]):
    """``values -> (p50, p90, p99)`` as CL2 reads them from a histogram with ``bounds`` (for an SLI row)."""
    return lambda values: tuple(histogram_quantile(values, q, bounds) for q in (0.5, 0.9, 0.99))
