"""Coalesced Lease renewals (kbench/apiserver/renewals.py): what each renewal computes is the request path's, and a
whole cluster run's SLIs stay within a stated bound of the exact path's."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from kbench.apiserver import APIServer
from kbench.apiserver.renewals import MAX_WINDOW, CoalescedRenewals
from kbench.cluster import ClusterSpec
from kbench.controllers import KubeControllerManagerConfiguration, controller_manager
from kbench.node import HollowNode
from kbench.sim import Engine
from kbench.sweep.cluster import scenario
from tests.controlplane.helpers import record
from tests.test_exact_speedups import POINT as EXACT_POINT

WINDOW = 0.05


def _hollow(window: float, nodes: int = 1) -> tuple[Engine, APIServer, list[HollowNode]]:
    engine = Engine()
    api = APIServer(engine)
    if window:
        CoalescedRenewals(api, window)
    controller_manager(
        api, config=KubeControllerManagerConfiguration.from_flags({"controllers": "nodelifecycle"})
    ).start()
    fleet = [HollowNode(api, f"node-{i}", start=i * 10.0 / nodes) for i in range(nodes)]
    return engine, api, fleet


def _lease(api: APIServer, name: str) -> dict:
    return api.caches["leases"].objects[f"kube-node-lease/{name}"][0]


def test_one_node_renews_at_the_times_and_latencies_of_the_request_path():
    """Alone, a node's renewals meet nothing else: every latency, the lease it ends with and etcd's revision are
    the request path's (only the write waits for its tick)."""
    runs = {}
    for window in (0.0, WINDOW):
        engine, api, (node,) = _hollow(window)
        engine.run(until=300.0)
        runs[window] = (api, node)
    (exact, slow), (coalesced, fast) = runs[0.0], runs[WINDOW]
    assert isinstance(coalesced.renewals, CoalescedRenewals)
    assert coalesced.renewals.coalesced == fast.renewals - 1 == 29
    assert fast.renewals == slow.renewals
    assert _lease(coalesced, "node-0")["spec"] == _lease(exact, "node-0")["spec"]
    assert coalesced.etcd.store.revision == exact.etcd.store.revision
    for key, samples in exact.sli.samples.items():
        assert np.array(coalesced.sli.samples[key]) == pytest.approx(np.array(samples), abs=1e-12), key


def test_a_coalesced_renewal_that_conflicts_reads_the_lease_and_renews_from_it():
    """Another writer's update of the lease makes the coalesced update stale: it gets 409 Conflict at its commit,
    and the node reads the lease and renews from it (retryUpdateLease), as on the request path."""
    engine, api, (node,) = _hollow(WINDOW)
    engine.run(until=15.0)  # registered, created its lease, renewed once
    sent = record(node.client)
    lease = _lease(api, "node-0")
    other = {**lease, "spec": {**lease["spec"], "holderIdentity": "someone-else"}}
    api.connect("admin", ("system:masters",)).request("update", "leases", lambda *_: None, body=other)
    engine.run(until=40.0)
    reads = [r for r in sent if (r["verb"], r["resource"]) == ("get", "leases")]
    assert [r["code"] for r in reads] == [200]  # the conflict's read; the renewal from it then succeeded
    final = _lease(api, "node-0")
    assert final["spec"]["holderIdentity"] == "someone-else"  # renewed from what it read
    assert final["spec"]["renewTime"] > lease["spec"]["renewTime"]
    assert node.renewals >= 3


def test_a_stopped_node_takes_back_the_renewal_it_had_not_sent():
    engine, api, (node,) = _hollow(WINDOW)
    engine.run(until=25.0)
    rv = int(_lease(api, "node-0")["metadata"]["resourceVersion"])
    node.stop()
    engine.run(until=100.0)
    assert int(_lease(api, "node-0")["metadata"]["resourceVersion"]) == rv  # nothing written after the stop
    node.restart()
    engine.run(until=125.0)
    assert int(_lease(api, "node-0")["metadata"]["resourceVersion"]) > rv


def test_a_write_between_a_renewals_dispatch_and_its_commit_makes_it_conflict_and_the_node_retries():
    """The coalesced path's own race: another writer's update applied after the renewal was planned but before its
    commit tick (up to a window late) wins; the renewal's compare-and-put answers 409 Conflict after its due time, and
    the node reads the lease at once and renews from it."""
    engine, api, (node,) = _hollow(MAX_WINDOW)
    engine.run(until=15.0)
    assert isinstance(api.renewals, CoalescedRenewals)
    while not api.renewals._commits:  # step to a renewal booked and not yet committed
        engine.run(until=engine.now + 0.001)
    sent = record(node.client)
    lease = _lease(api, "node-0")
    other = {**lease, "spec": {**lease["spec"], "holderIdentity": "someone-else"}}
    answers: list = []
    api.connect("admin", ("system:masters",)).request("update", "leases", lambda *a: answers.append(a[1]), body=other)
    engine.run(until=engine.now + 2 * MAX_WINDOW)
    assert answers == [None]  # the other writer's update succeeded
    reads = [r for r in sent if (r["verb"], r["resource"]) == ("get", "leases")]
    assert len(reads) == 1 and reads[0]["code"] == 200  # the conflict's read
    engine.run(until=40.0)
    final = _lease(api, "node-0")
    assert final["spec"]["holderIdentity"] == "someone-else"  # renewed from what it read
    assert final["spec"]["renewTime"] > lease["spec"]["renewTime"]


@pytest.mark.parametrize("window", [-0.01, MAX_WINDOW + 0.5, True, "0.1", math.nan])
def test_a_bad_window_is_refused_naming_the_field(window):
    with pytest.raises(ValueError, match=r"coalesce_leases.*window in seconds"):
        ClusterSpec(nodes=10, coalesce_leases=window).check()
    with pytest.raises(ValueError, match=r"cluster\.coalesceLeases: .* >= 0 and <= 1\.0"):
        ClusterSpec.from_dict({"nodes": 10, "coalesceLeases": window})
    with pytest.raises(ValueError, match="coalesce_leases"):
        CoalescedRenewals(APIServer(Engine()), window)


POINT = {**EXACT_POINT, "nodes": 200}
TOLERANCE = 0.05
"""The bound on every SLI (relative, of its p50, p90, p99 and max; plus the window for latencies): what the
coalesced path may move a whole cluster's results by."""


def test_every_sli_of_a_cluster_run_is_within_the_bound_of_the_exact_path():
    """The cluster sweep's point at 200 nodes (density, Deployments behind Services, kube-proxy), exact and
    coalesced: the same SLI rows, each count within 1%, each quantile within TOLERANCE (plus the window for a
    latency in seconds)."""
    results = {}
    for window in (0.0, WINDOW):
        sc = scenario(POINT, 0)
        sc.cluster = dataclasses.replace(sc.cluster, coalesce_leases=window)
        results[window] = sc.run(progress=False)
    exact, coalesced = (results[w].slis.set_index(["sli", "metric", "verb", "resource", "scope"]) for w in results)
    assert list(coalesced.index) == list(exact.index)
    assert (coalesced["verdict"] == exact["verdict"]).all()
    for key, row in exact.iterrows():
        other = coalesced.loc[key]
        assert abs(other["count"] - row["count"]) <= max(1, 0.01 * row["count"]), key
        slack = WINDOW if row["unit"] == "s" else 0.0
        for q in ("p50", "p90", "p99", "max"):
            assert abs(other[q] - row[q]) <= TOLERANCE * abs(row[q]) + slack, (key, q, row[q], other[q])
    renewals = results[WINDOW].cluster.api.renewals
    assert isinstance(renewals, CoalescedRenewals) and renewals.coalesced > 1000


def _unknown_at(window: float) -> float:
    """When the node lifecycle controller marks a node stopped at 100 s Unknown (its Ready condition), one node
    among three."""
    engine, api, fleet = _hollow(window, nodes=3)
    engine.run(until=100.0)
    fleet[0].stop()
    while engine.now < 200.0:
        engine.run(until=engine.now + 0.5)
        node = api.caches["nodes"].objects["node-0"][0]
        ready = next(c for c in node["status"]["conditions"] if c["type"] == "Ready")
        if ready["status"] == "Unknown":
            return engine.now
    raise AssertionError("the stopped node was never marked Unknown")


def test_a_stopped_node_is_marked_unknown_when_it_is_on_the_request_path():
    """The node lifecycle controller sees the last renewal up to a window late; its verdict on a stopped node comes
    in the same monitor pass (checked every 0.5 s) as on the exact path."""
    exact = _unknown_at(0.0)
    assert 140.0 < exact < 160.0  # the grace period after the last renewal
    assert _unknown_at(MAX_WINDOW) == exact
