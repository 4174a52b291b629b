"""Speed-ups are exact: the same seed gives the simulated results the code gave before them.

``data/golden/exact_speedups.json`` holds the results of two runs, produced by this module's ``__main__`` at
commit 7567148 (before issue 14's speed work), and again, after speed-ups checked against it, where a change of
behaviour came: the kubelet's status manager ignoring a status it holds (issue 14's fourth round):
- the cluster sweep's point at 500 nodes (density, Deployments behind Services, kube-proxy on 20 nodes): every
  SLI row, every ``sim_`` column, and every request latency and pod startup timestamp, hashed;
- 500 hollow nodes under kube-controller-manager's node lifecycle controller for ten simulated minutes: every
  request latency per verb/resource/scope, hashed; request and renewal counts; etcd's revision.
Both again with Lease renewals coalesced (:mod:`kbench.apiserver.renewals`, the benchmarks' window), recorded on the
code of 6b48f38 (in commit 074e207, issue 14's eighth round) before that path's speed-ups: the coalesced path is an
approximation of the request path, and its own speed-ups must be exact against it.
A fast path that changes any simulated number fails here. A deliberate change of behaviour regenerates the
file (``python -m tests.test_exact_speedups``) in the commit that explains it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from pathlib import Path

import pytest

from benchmarks.bench_controlplane import COALESCE_WINDOW, build_hollow
from kbench.apiserver import APIServer
from kbench.sweep.cluster import scenario

GOLDEN = Path(__file__).resolve().parents[1] / "data" / "golden" / "exact_speedups.json"
POINT = {
    "nodes": 500,
    "pods_per_node": 3,
    "churn": 20.0,
    "services": 5,
    "proxy_nodes": 20,
    "degrade": "none",
    "profile": "default",
}


def _plain(value):
    """JSON-comparable: floats (NumPy's included) and ints as Python numbers, NaN as None, anything else (NumPy
    integers included) as its str."""
    if isinstance(value, float | int) and not isinstance(value, bool):
        value = float(value) if isinstance(value, float) else int(value)
        return None if isinstance(value, float) and math.isnan(value) else value
    return value if isinstance(value, str | bool | type(None)) else str(value)


def cluster_point(coalesce_leases: float = 0.0) -> dict:
    """Every SLI row and every ``sim_`` column of the cluster sweep's point at 500 nodes, seed 0 (its Lease renewals
    coalesced in windows of ``coalesce_leases`` seconds if given)."""
    sc = scenario(POINT, 0)
    sc.cluster = dataclasses.replace(sc.cluster, coalesce_leases=coalesce_leases)
    result = sc.run(progress=False)
    rows = [{k: _plain(v) for k, v in row.items()} for row in result.slis.to_dict("records")]
    summary = {k: _plain(v) for k, v in result.summary().items() if k.startswith("sim_")}
    pods = result.pod_startup.to_dict("list")
    return {
        "slis": rows,
        "summary": summary,
        "latencies": _latencies(result.cluster.api),
        "pod_startup": hashlib.sha256(repr(pods).encode()).hexdigest(),
    }


def hollow_nodes(nodes: int = 500, seconds: float = 600.0, coalesce_leases: float = 0.0) -> dict:
    """APIResponsiveness and counts of ``nodes`` hollow nodes under the node lifecycle controller (their Lease
    renewals coalesced in windows of ``coalesce_leases`` seconds if given)."""
    engine, api, fleet = build_hollow(nodes, coalesce_leases)
    engine.run(until=seconds)
    return {
        "requests": api.requests,
        "renewals": sum(node.renewals for node in fleet),
        "etcd_revision": api.etcd.store.revision,
        "latencies": _latencies(api),
    }


def _latencies(api: APIServer) -> dict[str, list]:
    """Per (verb, resource, scope): the count, and the SHA-256 of every latency's exact repr, in order."""
    return {
        " ".join(key): [len(values), hashlib.sha256(repr(list(values)).encode()).hexdigest()]
        for key, values in sorted(api.sli.samples.items())
    }


def produce() -> dict:
    return {
        "cluster_point": cluster_point(),
        "hollow_nodes": hollow_nodes(),
        "cluster_point_coalesced": cluster_point(COALESCE_WINDOW),
        "hollow_nodes_coalesced": hollow_nodes(coalesce_leases=COALESCE_WINDOW),
    }


@pytest.fixture(scope="module")
def golden() -> dict:
    return json.loads(GOLDEN.read_text())


@pytest.mark.parametrize("window", [0.0, COALESCE_WINDOW], ids=["requests", "coalesced"])
def test_cluster_point_matches_the_results_before_the_speed_work(golden, window):
    now, then = cluster_point(window), golden["cluster_point_coalesced" if window else "cluster_point"]
    assert now["summary"] == then["summary"]
    assert now["slis"] == then["slis"]
    assert now["latencies"] == then["latencies"]
    assert now["pod_startup"] == then["pod_startup"]


@pytest.mark.parametrize("window", [0.0, COALESCE_WINDOW], ids=["requests", "coalesced"])
def test_hollow_nodes_match_the_results_before_the_speed_work(golden, window):
    now = hollow_nodes(coalesce_leases=window)
    assert now == golden["hollow_nodes_coalesced" if window else "hollow_nodes"]


if __name__ == "__main__":
    GOLDEN.write_text(json.dumps(produce(), indent=1, sort_keys=True) + "\n")
