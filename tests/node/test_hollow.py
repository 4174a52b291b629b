"""The hollow node's heartbeats: Lease renewals, status posts on a fresh copy, and silence once stopped."""

from __future__ import annotations

import pytest

from kbench.apiserver.objects import timestamp
from kbench.node import HollowNode
from kbench.node.config import KubeletConfiguration
from kbench.node.hollow import ENSURE_LEASE_BACKOFF
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
    race(hollow.client, "update", "nodes", "status", lambda: plane.touch_node("node-0"))
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
    assert leases[5]["at"] == pytest.approx(leases[4]["answered"] + RENEW_INTERVAL)
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
