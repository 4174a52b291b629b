"""Coalesced Lease renewals (kbench/apiserver/renewals.py): what each renewal computes is the request path's, and a
whole cluster run's SLIs stay within a stated bound of the exact path's."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import yaml

from benchmarks.bench_controlplane import COALESCE_WINDOW as WINDOW
from benchmarks.bench_controlplane import build_hollow
from kbench.apiserver import APIServer
from kbench.apiserver import renewals as renewals_module
from kbench.apiserver.config import KubeAPIServerConfig
from kbench.apiserver.objects import encode
from kbench.apiserver.registry import compare_and_write_many
from kbench.apiserver.renewals import MAX_WINDOW, CoalescedRenewals, renewed_lease
from kbench.apiserver.server import Request
from kbench.cluster import ClusterSpec
from kbench.etcd.cluster import EtcdCosts
from kbench.profiles import load_profile
from kbench.scenarios import Scenario, library
from kbench.sim import Engine
from kbench.sweep.cluster import scenario
from tests.controlplane.helpers import record
from tests.test_exact_speedups import POINT as EXACT_POINT


def _lease(api: APIServer, name: str) -> dict:
    return api.caches["leases"].objects[f"kube-node-lease/{name}"][0]


def _renewals(api: APIServer) -> CoalescedRenewals:
    assert isinstance(api.renewals, CoalescedRenewals)
    return api.renewals


def test_one_node_renews_at_the_times_and_latencies_of_the_request_path():
    """Alone, a node's renewals meet nothing else: every latency, the lease it ends with and etcd's revision are
    the request path's (only the write waits for its tick)."""
    runs = {}
    for window in (0.0, WINDOW):
        engine, api, (node,) = build_hollow(1, window)
        engine.run(until=300.0)
        runs[window] = (api, node)
    (exact, slow), (coalesced, fast) = runs[0.0], runs[WINDOW]
    assert _renewals(coalesced).coalesced == fast.renewals - 1 == 29
    assert fast.renewals == slow.renewals
    assert _lease(coalesced, "node-0")["spec"] == _lease(exact, "node-0")["spec"]
    assert coalesced.etcd.store.revision == exact.etcd.store.revision
    for key, samples in exact.sli.samples.items():
        assert np.array(coalesced.sli.samples[key]) == pytest.approx(np.array(samples), abs=1e-12), key


def test_a_renewal_is_the_request_the_client_would_send():
    """A renewal, built by Request.of without Connection.build's keyword parsing and without its body (made only if
    the registry plans it): each other field the request path reads is the one Connection.build gives the same
    update."""
    engine, api, (node,) = build_hollow(1, WINDOW)
    engine.run(until=30.0)
    lease, stamp = _lease(api, "node-0"), "2026-01-01T00:00:30.000000Z"
    renewal = _renewals(api).send(node.client, lease, stamp, print, 1.0)[1]
    built = node.client.conn.build("update", "leases", print, engine.now + 1.0, body=renewed_lease(lease, stamp))
    for field in Request.__slots__:
        if field != "body":
            assert getattr(renewal, field) == getattr(built, field), field
    assert renewal.body is None and (renewal.lease, renewal.renew_time) == (lease, stamp)
    assert (renewal.namespace, renewal.name, renewal.scope) == ("kube-node-lease", "node-0", "resource")


def test_a_renewal_of_the_stored_lease_gets_the_registrys_plan_without_the_registry(monkeypatch):
    """CoalescedRenewals.dispatch plans a renewal of the Lease the watch cache holds itself: for every such renewal
    of a run, its object (to its JSON), event kind and precondition are what the registry plans for its body."""
    engine, api, fleet = build_hollow(20, WINDOW)
    planned_write, checked = api.planned_write, []

    def checking(op, kind, obj, expect, now):
        if op.body is None:  # a renewal planned without the registry
            op.body = renewed_lease(op.lease, op.renew_time)
            registry_kind, registry_obj, registry_expect = api.registry.plan(op)
            op.body = None
            assert (kind, expect) == (registry_kind, registry_expect)
            assert encode(obj) == encode(registry_obj)
            checked.append(op.name)
        return planned_write(op, kind, obj, expect, now)

    monkeypatch.setattr(api, "planned_write", checking)
    engine.run(until=120.0)
    assert len(checked) == _renewals(api).coalesced > 200  # every renewal (the first update of each is a create)
    history = api.caches["leases"].history  # and no stored Lease changed since: each event's is as it was written
    assert len(history) >= 100 and all(obj["metadata"]["resourceVersion"] == str(rv) for rv, _, _, obj, _, _ in history)


def test_a_renewal_planned_from_a_stale_lease_is_refused_and_the_node_renews_from_a_fresh_read():
    """Another writer's update of the lease, already in the watch cache when the renewal arrives: the registry's plan
    refuses it (409 Conflict, as on the request path), and the node reads the lease and renews from it
    (retryUpdateLease)."""
    engine, api, (node,) = build_hollow(1, WINDOW)
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


def _step_to_a_booked_renewal(engine: Engine, renewals: CoalescedRenewals, lead: float) -> None:
    """Run until a renewal is booked whose commit tick is at least ``lead`` seconds away."""
    while not any(tick * renewals.window - engine.now >= lead for tick in renewals._commits):
        engine.run(until=engine.now + 0.001)


def test_a_write_between_a_renewals_dispatch_and_its_commit_makes_it_conflict_and_the_node_retries():
    """The coalesced path's own race: another writer's update applied after the renewal was planned but before its
    commit tick wins; the renewal's compare-and-put answers 409 Conflict after its due time, and the node reads the
    lease at once and renews from it."""
    engine, api, (node,) = build_hollow(1, MAX_WINDOW)
    engine.run(until=15.0)
    _step_to_a_booked_renewal(engine, _renewals(api), 0.02)  # the other write applies in about 5 ms
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


def _hollow_run(monkeypatch, batch_min: int, watched: bool, config: KubeAPIServerConfig) -> tuple[dict, int, int]:
    """100 hollow nodes for two simulated minutes, renewals coalesced, a tick of ``batch_min`` writes or more
    offered to the store in one call (``watched``: with a watcher of the store, which refuses such a call), the
    apiserver's ``config``, and
    another writer updating one of five nodes' Leases every 10 ms, so some renewals fail their precondition at their
    tick; the run's every latency, requests, etcd's revision and what a watch of the Leases got when, how many calls
    the store took and how many of their writes failed."""
    taken, failed = [], []

    def counted(store, writes):
        results = compare_and_write_many(store, writes)
        if results is not None:
            taken.append(len(writes))
            failed.extend(error for error, _ in results if error is not None)
        return results

    monkeypatch.setattr(renewals_module, "BATCH_MIN", batch_min)
    monkeypatch.setattr(renewals_module, "compare_and_write_many", counted)
    engine, api, _ = build_hollow(100, WINDOW, config=config)
    seen: list = []

    def delivered(events: list) -> None:
        seen.extend((engine.now, kind, obj["metadata"]["name"], rv) for kind, obj, rv in events)

    api.connect("watcher", ("system:masters",)).request("watch", "leases", lambda *_: None, on_events=delivered)
    writer = api.connect("admin", ("system:masters",))

    def overwrite(i: int) -> None:  # an update without a resourceVersion (no precondition) of one of five Leases
        lease = _lease(api, f"node-{i % 5}")
        meta = {k: v for k, v in lease["metadata"].items() if k != "resourceVersion"}
        body = {**lease, "metadata": meta, "spec": {**lease["spec"], "holderIdentity": "x"}}
        writer.request("update", "leases", lambda *_: None, body=body)
        engine.schedule(0.01, overwrite, i + 1)

    engine.schedule(15.0, overwrite, 0)
    watcher = api.etcd.store.watch(b"/registry/leases/", b"/registry/leases0") if watched else None
    engine.run(until=120.0)
    if watcher is not None:
        assert watcher.take(), "the store's watcher saw the renewals"
    samples = {key: list(values) for key, values in api.sli.samples.items()}
    run = {"samples": samples, "requests": api.requests, "revision": api.etcd.store.revision, "watched": seen}
    return run, len(taken), len(failed)


@pytest.mark.parametrize("cached", [True, False], ids=["leases cached", "leases read from etcd"])
def test_a_tick_committed_in_one_call_of_the_store_or_one_write_at_a_time_gives_the_same_run(monkeypatch, cached):
    """The two ways a tick commits (kbench.apiserver.renewals BATCH_MIN): every tick in one call of the store, every
    write alone, and every call refused by the store (it has a watcher) give the same latencies, revisions and watch
    events, renewals that fail their precondition at the tick among them; with the Leases' watch cache, and without
    it (--watch-cache-sizes leases.coordination.k8s.io#0: the events' CPU and delay are etcd's watch's)."""
    config = (
        KubeAPIServerConfig() if cached else KubeAPIServerConfig(watch_cache_sizes=("leases.coordination.k8s.io#0",))
    )
    assert config.cached("leases.coordination.k8s.io") == cached
    batched, calls, failed = _hollow_run(monkeypatch, 1, False, config)
    assert calls > 100 and failed > 0  # the store took the ticks' calls, and some of their writes failed
    single, calls, _ = _hollow_run(monkeypatch, 10**9, False, config)
    assert calls == 0 and single == batched
    refused, calls, _ = _hollow_run(monkeypatch, 1, True, config)
    assert calls == 0 and refused == batched


@pytest.mark.parametrize("window", [0.0, WINDOW])
def test_a_deleted_lease_is_created_again_and_renewed_from_as_on_the_request_path(window):
    """Someone deletes a node's Lease: its next renewal finds none (404 from the registry: the coalesced path's own
    plan is only for the Lease the watch cache holds), the node reads it (404), creates it again (ensureLease) and
    renews the new one, coalesced or not."""
    engine, api, (node,) = build_hollow(1, window)
    engine.run(until=15.0)
    old = _lease(api, "node-0")
    sent = record(node.client)
    admin = api.connect("admin", ("system:masters",))
    admin.request("delete", "leases", lambda *_: None, namespace="kube-node-lease", name="node-0")
    engine.run(until=60.0)
    reads_and_creates = [(r["verb"], r["code"]) for r in sent if r["resource"] == "leases" and r["verb"] != "update"]
    assert reads_and_creates == [("get", 404), ("create", 200)]
    created = next(r for r in sent if r["verb"] == "create")
    new = _lease(api, "node-0")
    assert new["metadata"]["uid"] != old["metadata"]["uid"]
    assert int(new["metadata"]["resourceVersion"]) > int(created["got_rv"])  # renewed since it was created again
    assert new["spec"]["renewTime"] > created["body"]["spec"]["renewTime"]
    if window:
        assert _renewals(api).coalesced >= 4


def test_a_stopped_node_takes_back_the_renewal_it_had_not_sent():
    engine, api, (node,) = build_hollow(1, WINDOW)
    engine.run(until=25.0)
    rv = int(_lease(api, "node-0")["metadata"]["resourceVersion"])
    node.stop()
    engine.run(until=100.0)
    assert int(_lease(api, "node-0")["metadata"]["resourceVersion"]) == rv  # nothing written after the stop
    node.restart()
    engine.run(until=125.0)
    assert int(_lease(api, "node-0")["metadata"]["resourceVersion"]) > rv


@pytest.mark.parametrize("window", [0.0, MAX_WINDOW])
def test_a_node_stopped_and_restarted_before_its_renewal_commits_renews_once_every_interval(window):
    """The answer to a renewal sent before a stop is dropped even when it comes after the restart (the kubelet
    restarted is a new process): one chain of renewals goes on, from the restart's read of the lease."""
    engine, api, (node,) = build_hollow(1, window)
    sent = record(node.client)
    engine.run(until=15.0)
    if window:
        _step_to_a_booked_renewal(engine, _renewals(api), 0.02)
    else:  # the request path's own window: a renewal sent and not yet answered
        while not any(r["verb"] == "update" and r["at"] <= engine.now and "answered" not in r for r in sent):
            engine.run(until=engine.now + 0.0005)
    node.stop()
    node.restart()
    before = node.renewals
    engine.run(until=engine.now + 120.0)
    assert 11 <= node.renewals - before <= 13  # one renewal every 10-10.4 s, not two chains


def test_a_renewal_that_waits_for_its_token_arrives_with_it_and_can_be_taken_back_meanwhile():
    engine, api, (node,) = build_hollow(1, WINDOW)
    engine.run(until=15.0)
    renewals = _renewals(api)
    limiter = node.client.limiter
    limiter.qps, limiter.tokens, limiter.last = 0.5, -4.0, engine.now  # in debt: the next renewal (at about 20.4 s)
    rv = int(_lease(api, "node-0")["metadata"]["resourceVersion"])  # waits about 5 s for its token
    arrived = renewals.coalesced
    engine.run(until=21.0)  # its send time has come, its token has not
    assert renewals.coalesced == arrived and _lease(api, "node-0")["metadata"]["resourceVersion"] == str(rv)
    engine.run(until=30.0)
    assert renewals.coalesced == arrived + 1 and int(_lease(api, "node-0")["metadata"]["resourceVersion"]) > rv
    limiter.tokens, limiter.last = -10.0, engine.now  # the next one (at about 35.5 s) waits 10 s and more
    engine.run(until=40.0)
    at, handle = node._pending[-1]
    assert at < engine.now  # sent, waiting for its token
    engine.cancel(handle)
    engine.run(until=60.0)
    assert renewals.coalesced == arrived + 1  # taken back while it waited


def test_renewals_queued_and_rejected_by_flow_control_are_answered_as_requests():
    """One apiserver with two seats in all and an etcd whose fsync takes 20 ms: the renewals of 300 nodes queue at
    their priority level and many wait past its limit and are rejected (429). The coalesced path queues, dispatches
    and rejects them as the request path does, and the nodes go on renewing."""
    profile = load_profile().override({"etcd.wal_fsync.median": 0.02, "etcd.wal_fsync.p99": 0.05})
    config = KubeAPIServerConfig(max_requests_inflight=1, max_mutating_requests_inflight=1, request_timeout=1.0)
    stats = {}
    for window in (0.0, WINDOW):
        engine, api, fleet = build_hollow(300, window, profile=profile, config=config, instances=1)
        engine.run(until=60.0)
        updates = np.array(api.sli.samples["update", "leases", "resource"])
        stats[window] = (
            api.sli.rejected,
            len(updates),
            *np.percentile(updates, [50, 99]),
            min(n.renewals for n in fleet),
        )
    exact, coalesced = stats[0.0], stats[WINDOW]
    assert exact[0] > 100 and exact[3] > 0.1  # the level rejected, and queued for 100 ms and more
    assert coalesced[0] == pytest.approx(exact[0], rel=0.05)
    assert coalesced[1] == pytest.approx(exact[1], rel=0.05)
    assert coalesced[2:4] == pytest.approx(exact[2:4], rel=0.1)
    assert coalesced[4] >= 3  # every node renewed


@pytest.mark.parametrize("window", [-0.01, MAX_WINDOW + 0.01, True, "0.1", math.nan])
def test_a_bad_window_is_refused_naming_the_field(window):
    with pytest.raises(ValueError, match=r"coalesce_leases.*window in seconds"):
        ClusterSpec(nodes=10, coalesce_leases=window).check()
    with pytest.raises(ValueError, match=r"cluster\.coalesceLeases: .* >= 0 and <= 0\.1"):
        ClusterSpec.from_dict({"nodes": 10, "coalesceLeases": window})
    with pytest.raises(ValueError, match="coalesce_leases"):
        CoalescedRenewals(APIServer(Engine()), window)


POINT = {**EXACT_POINT, "nodes": 200}
TOLERANCE = 0.05
"""The bound on every SLI quantile (p50, p90, p99, max), relative; latencies get one raft round more
(:data:`ROUND`)."""
_ETCD = EtcdCosts.from_profile(load_profile())
ROUND = _ETCD.wal_fsync.quantile(0.99) + _ETCD.peer_rtt
"""One raft round at the profile's p99 fsync: what booking a renewal's round early may add to or take from another
client's write (it joins the next round, or the one before)."""


def test_every_sli_of_a_cluster_run_is_within_the_bound_of_the_exact_path():
    """The cluster sweep's point at 200 nodes (density, Deployments behind Services, kube-proxy), exact and coalesced
    in the widest window: the same SLI rows and verdicts, each count within 1% (or one), each quantile within
    TOLERANCE, plus one raft round for a latency in seconds."""
    results = {}
    for window in (0.0, MAX_WINDOW):
        sc = scenario(POINT, 0)
        sc.cluster = dataclasses.replace(sc.cluster, coalesce_leases=window)
        results[window] = sc.run(progress=False)
    exact, coalesced = (results[w].slis.set_index(["sli", "metric", "verb", "resource", "scope"]) for w in results)
    assert list(coalesced.index) == list(exact.index)
    assert (coalesced["verdict"] == exact["verdict"]).all()
    for key, row in exact.iterrows():
        other = coalesced.loc[key]
        assert abs(other["count"] - row["count"]) <= max(1, 0.01 * row["count"]), key
        slack = ROUND if row["unit"] == "s" else 0.0
        for q in ("p50", "p90", "p99", "max"):
            assert abs(other[q] - row[q]) <= TOLERANCE * abs(row[q]) + slack, (key, q, row[q], other[q])
    assert _renewals(results[MAX_WINDOW].cluster.api).coalesced > 1000


def _unknown_at(window: float) -> float:
    """When the node lifecycle controller marks a node stopped at 100 s Unknown (its Ready condition), one node
    among three."""
    engine, api, fleet = build_hollow(3, window)
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


def test_a_scenario_file_asks_for_it_and_a_node_failure_runs_as_on_the_exact_path():
    """``coalesceLeases`` in a scenario file reaches the cluster (and is written back by ``to_dict``); the node-failure
    scenario (two nodes cut off, marked Unknown, their pods evicted and replaced) creates, starts and binds the same
    pods and meets its SLOs as on the exact path."""
    text = yaml.safe_dump({**library.node_failure(20, 0.1, 60).to_dict(), "metadata": {"name": "nf"}})
    results = {}
    for window in (0.0, WINDOW):
        sc = Scenario.from_text(text.replace("coalesceLeases: 0.0", f"coalesceLeases: {window}"))
        assert sc.cluster.coalesce_leases == window and sc.to_dict()["cluster"]["coalesceLeases"] == window
        results[window] = sc.run(progress=False)
    exact, coalesced = (results[w].summary() for w in (0.0, WINDOW))
    assert _renewals(results[WINDOW].cluster.api).coalesced > 100
    assert coalesced["sim_slo_passed"] and exact["sim_slo_passed"]
    for key in ("sim_pods_created", "sim_pods_started", "sim_pods_bound", "sim_container_restarts"):
        assert coalesced[key] == exact[key], key
    assert exact["sim_pods_created"] > 60  # the cut-off nodes' pods were replaced
