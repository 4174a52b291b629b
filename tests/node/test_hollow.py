"""The hollow node's heartbeats: Lease renewals, status posts on a fresh copy, and silence once stopped."""

from __future__ import annotations

from kbench.node.hollow import RENEW_INTERVAL, STATUS_REPORT_FREQUENCY
from tests.controlplane.helpers import Plane, race, reached, record


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
