"""Percentiles as CL2 reads them from kube-proxy's histogram (Prometheus histogram_quantile), by hand."""

from __future__ import annotations

import math

import pytest

import kbench
from kbench.metrics.histogram import NETWORK_PROGRAMMING_BUCKETS, histogram_quantile


def test_the_rank_is_interpolated_inside_its_bucket():
    values = [1.2, 1.4, 1.6, 1.8]  # all in the (1, 2] bucket
    assert histogram_quantile(values, 0.5, (1, 2, 3)) == pytest.approx(1.5)  # rank 2 of 4 in the bucket
    assert histogram_quantile(values, 0.99, (1, 2, 3)) == pytest.approx(1.99)
    assert histogram_quantile([0.1, 0.2], 0.5, (1, 2)) == pytest.approx(0.5)  # the first bucket starts at 0
    assert histogram_quantile([2.0, 2.0], 1.0, (1, 2, 3)) == pytest.approx(2.0)  # le: a value on a bound is in it
    assert histogram_quantile([1.5, 9.0], 0.99, (1, 2, 3)) == 3.0  # the +Inf bucket: the last finite bound
    assert math.isnan(histogram_quantile([], 0.5, (1, 2)))
    with pytest.raises(ValueError, match="q: a quantile in"):
        histogram_quantile([1.0], 1.5, (1, 2))


def test_kube_proxys_buckets_are_upstreams():
    b = NETWORK_PROGRAMMING_BUCKETS
    assert b[:4] == (0.25, 0.5, 1.0, 2.0) and b[61] == 60.0 and b[-1] == 300.0 and len(b) == 2 + 59 + 12 + 7
    assert list(b) == sorted(set(b))


def test_a_run_reports_network_programming_latency_as_cl2_reads_it():
    result = kbench.SCENARIOS["load"](nodes=5, deployments=2, replicas=2, churn=1.0, duration=10.0).run(progress=False)
    rows = result.slis[result.slis["sli"] == "NetworkProgrammingLatency"].set_index("metric")
    exact, cl2 = rows.loc["network_programming_latency"], rows.loc["cl2_network_programming_latency"]
    samples = [x for proxy in result.cluster.proxies for x in proxy.latencies]
    assert cl2["count"] == exact["count"] == len(samples) > 0 and cl2["verdict"] == "no SLO"
    assert cl2["p50"] == pytest.approx(histogram_quantile(samples, 0.5, NETWORK_PROGRAMMING_BUCKETS))
