"""The hollow node's heartbeats: Lease renewals, status posts on a fresh copy, and silence once stopped."""

from __future__ import annotations

import pytest

from kbench.apiserver.objects import timestamp
from kbench.node import HollowNode
from kbench.node.config import KubeletConfiguration
from kbench.node.hollow import ENSURE_LEASE_BACKOFF, LEASE_RENEW_JITTER
from tests.controlplane.helpers import Plane, fail_next, race, reached, record

DEFAULTS = KubeletConfiguration()
RENEW_INTERVAL = DEFAULTS.lease_renew_interval
STATUS_REPORT_FREQUENCY = DEFAULTS.node_status_report_frequency


def _renewals(sent: list[dict]) -> list[float]:
    return [r["at"] for r in sent if (r["verb"], r["resource"]) == ("update", "leases")]


def test_stopped_node_sends_nothing_after_the_stop_and_renews_again_after_restart():
    plane = Plane(nodes=1)
    node = plane.nodes[0]
    sent = record(node.client)
    plane.run(25.0)  # renewals every 10 s
    stop = plane.engine.now
    node.stop()
    plane.run(stop + 400)  # long enough for a status report to have been due
    queued = [r for r in sent if r["at"] > stop]
    assert _renewals(queued) and not reached(queued)  # the renewal queued for 30 s was taken back
    assert max(r["at"] for r in reached(sent)) <= stop
    node.restart()
    plane.run(plane.engine.now + 2 * RENEW_INTERVAL + 1)
    restarted = [t for t in _renewals(reached(sent)) if t > stop]
    assert len(restarted) == 3 and restarted[0] - stop - 400 < 0.1  # at once (after reading the lease), then 10 s


def test_status_post_keeps_conditions_it_does_not_own_and_retries_a_conflict():
    plane = Plane(nodes=1)
    plane.run(1.0)
    node = plane.ok("get", "nodes", name="node-0")
    registered = next(c for c in node["status"]["conditions"] if c["type"] == "Ready")["lastHeartbeatTime"]
    node["status"]["conditions"].append({"type": "NetworkUnavailable", "status": "False", "reason": "RouteCreated"})
    plane.ok("update", "nodes", body=node, subresource="status")  # the route controller's condition
    hollow = plane.nodes[0]
    sent = record(hollow.client)
    race(hollow.client, "update", "nodes", "status", lambda _: plane.touch_node("node-0"))
    plane.run(STATUS_REPORT_FREQUENCY + RENEW_INTERVAL + 1)
    posts = [r for r in sent if (r["verb"], r["resource"]) == ("update", "nodes")]
    assert [r["code"] for r in posts] == [409, 200]  # the stale write is refused; a fresh read and write follow
    final = plane.ok("get", "nodes", name="node-0")
    conditions = {c["type"]: c for c in final["status"]["conditions"]}
    assert conditions["NetworkUnavailable"]["reason"] == "RouteCreated"  # not clobbered by the kubelet
    assert final["metadata"]["labels"]["racing"] == "writer"
    assert conditions["Ready"]["status"] == "True" and conditions["Ready"]["lastHeartbeatTime"] > registered


def test_lease_whose_create_failed_is_created_when_found_missing():
    """backoffEnsureLease: the read that follows a failed create finds no lease and creates it; a create that
    fails again is tried after the backoff."""
    plane = Plane()
    node = HollowNode(plane.api, "node-0")
    fail_next(node.client, "create", "leases", times=2, code=500)
    sent = record(node.client)
    plane.run(2 * RENEW_INTERVAL + 1)
    leases = [r for r in reached(sent) if r["resource"] == "leases"]
    assert [(r["verb"], r["code"]) for r in leases] == [
        ("create", 500),
        ("get", 404),
        ("create", 500),
        ("get", 404),
        ("create", 200),
        ("update", 200),
        ("update", 200),
    ]
    assert leases[1]["at"] == leases[0]["answered"]  # read at once
    assert leases[3]["at"] == pytest.approx(leases[2]["answered"] + ENSURE_LEASE_BACKOFF)
    assert RENEW_INTERVAL <= leases[5]["at"] - leases[4]["answered"] < RENEW_INTERVAL * (1 + LEASE_RENEW_JITTER)
    assert node.renewals == 3


def test_node_stopped_before_it_registered_registers_when_restarted():
    plane = Plane()
    node = HollowNode(plane.api, "node-0", start=5.0)
    plane.run(1.0)
    node.stop()  # its registration, due at 5 s, is taken back
    plane.run(10.0)
    assert plane.objects("nodes") == []
    node.restart()
    plane.run(10.0 + RENEW_INTERVAL + 1)
    ready = next(c for c in plane.ok("get", "nodes", name="node-0")["status"]["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "True" and ready["lastHeartbeatTime"] == timestamp(10.0)  # as of the registration
    assert plane.ok("get", "leases", namespace="kube-node-lease", name="node-0") and node.renewals == 2


def _node(plane: Plane, **fields) -> HollowNode:
    return HollowNode(plane.api, "node-0", config=KubeletConfiguration().replace(fields))


def test_node_lease_duration_sets_the_lease_and_its_renew_interval():
    plane = Plane()
    node = _node(plane, nodeLeaseDurationSeconds=20)
    sent = record(node.client)
    plane.run(31.0)
    renewals = [r for r in reached(sent) if (r["verb"], r["resource"]) == ("update", "leases")]
    assert node.renew_interval == 5.0  # 20 s x 0.25
    assert len(renewals) == 6  # every 5 s (plus the answer's latency) instead of every 10 s
    for before, after in zip(renewals, renewals[1:]):
        assert 5.0 <= after["at"] - before["answered"] < 5.0 * (1 + LEASE_RENEW_JITTER)
    lease = plane.ok("get", "leases", namespace="kube-node-lease", name="node-0")
    assert lease["spec"]["leaseDurationSeconds"] == 20


def test_kube_api_qps_and_burst_pace_the_kubelets_requests():
    """The registration takes the one token of a burst of 1; the Lease create that follows its answer waits for the
    next token, a second later at 1 QPS (the default burst of 100 sends it at once)."""
    answered = {}
    for qps in (1, 50):
        plane = Plane()
        node = _node(plane, kubeAPIQPS=qps, kubeAPIBurst=1 if qps == 1 else 100)
        sent = record(node.client)
        plane.run(2.0)
        answered[qps] = next(r["answered"] for r in sent if (r["verb"], r["resource"]) == ("create", "leases"))
    assert 1.0 <= answered[1] < 1.05
    assert answered[50] < 0.05


def _status_posts(sent: list[dict]) -> list[float]:
    return [r["at"] for r in reached(sent) if (r["verb"], r["resource"]) == ("update", "nodes")]


@pytest.mark.parametrize(
    ("fields", "posts"),
    [
        ({}, 0),  # the defaults: 5 min between reports, none in the first minute after registering
        ({"nodeStatusUpdateFrequency": "10s"}, 6),  # a file that sets only this reports at the same frequency
        ({"nodeStatusUpdateFrequency": "20s"}, 3),  # a check at every other renewal, each posting
        ({"nodeStatusUpdateFrequency": "20s", "nodeStatusReportFrequency": "5m0s"}, 0),
    ],
)
def test_node_status_frequencies_set_how_often_the_status_is_posted(fields, posts):
    plane = Plane()
    config = KubeletConfiguration.from_manifest(
        {"apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration", **fields}
    )
    node = HollowNode(plane.api, "node-0", config=config)
    sent = record(node.client)
    plane.run(62.0)
    times = _status_posts(sent)
    assert len(times) == posts
    period = config.node_status_update_frequency
    # with the renewals they ride on: each renewal interval lengthened by up to 4% (the lease's jitter)
    assert all(period - 0.1 < b - a < period * (1 + LEASE_RENEW_JITTER) + 0.1 for a, b in zip(times, times[1:]))


def test_max_pods_and_pods_per_core_set_the_nodes_pods_capacity():
    plane = Plane()
    HollowNode(plane.api, "a", config=KubeletConfiguration().replace({"maxPods": 250}))
    HollowNode(plane.api, "b", cpu="8", config=KubeletConfiguration().replace({"podsPerCore": 5}))
    plane.run(1.0)
    capacity = {n["metadata"]["name"]: n["status"]["capacity"]["pods"] for n in plane.objects("nodes")}
    assert capacity == {"a": "250", "b": "40"}


def test_lease_renewals_are_jittered_up_to_four_percent():
    """wait.JitterUntil(sync, 10 s, 0.04, sliding): each wait after a renewal's answer is 10 s + U[0, 0.4) s, drawn
    from the node's own seeded stream (same seed, same intervals; nodes differ)."""
    plane = Plane()
    nodes = [HollowNode(plane.api, f"node-{i}") for i in range(2)]
    sent = record(nodes[0].client)
    plane.run(2000.0)
    renewals = [r for r in reached(sent) if r["resource"] == "leases" and r["verb"] == "update"]
    waits = [b["at"] - a["answered"] for a, b in zip(renewals, renewals[1:])]
    assert len(waits) > 150
    assert all(RENEW_INTERVAL <= w < RENEW_INTERVAL * (1 + LEASE_RENEW_JITTER) for w in waits)
    extra = sorted((w - RENEW_INTERVAL) / (RENEW_INTERVAL * LEASE_RENEW_JITTER) for w in waits)  # U[0, 1)
    assert abs(sum(extra) / len(extra) - 0.5) < 0.06
    assert max(abs(x - (i + 0.5) / len(extra)) for i, x in enumerate(extra)) < 0.12  # Kolmogorov-Smirnov, 1%

    def draws(name: str) -> list[float]:
        node = HollowNode(Plane().api, name)
        return [node.renew_wait() for _ in range(3)]

    assert draws("node-0") == draws("node-0") != draws("node-1")


def test_failing_lease_updates_are_retried_as_the_lease_controller_retries_them():
    """sync: retryUpdateLease makes five updates (at once after a 500), the sync then ensures the lease (GET) and
    makes five more, and the next sync comes a renew interval later: never a loop without end (etcd's NOSPACE
    answers every update with a 500 until an operator acts)."""
    plane = Plane(nodes=1)
    node = plane.nodes[0]
    plane.run(RENEW_INTERVAL / 2)  # registered, the lease created, the next renewal queued already (it succeeds)
    fail_next(node.client, "update", "leases", times=20, code=500, reason="InternalError")
    sent = record(node.client)
    plane.run(plane.engine.now + 4 * RENEW_INTERVAL)
    leases = [r for r in reached(sent) if r["resource"] == "leases"]
    one_sync = [("update", 500)] * 5 + [("get", 200)] + [("update", 500)] * 5
    assert [(r["verb"], r["code"]) for r in leases] == [*one_sync, *one_sync, ("update", 200)]
    starts = [leases[i] for i in (0, 11, 22)]  # each sync's first request
    for before, after in zip((leases[10], leases[21]), starts[1:]):  # a sync's last answer, the next sync
        assert RENEW_INTERVAL <= after["at"] - before["answered"] < RENEW_INTERVAL * (1 + LEASE_RENEW_JITTER)
    for sync in (leases[:11], leases[11:22]):  # within a sync each request leaves as the one before is answered
        assert all(later["at"] == earlier["answered"] for earlier, later in zip(sync, sync[1:]))
    assert node.renewals == 3  # the create, the update queued before the failures, the third sync's
