"""Node lifecycle and taint eviction details: writes from fresh copies, conflicts retried, condition taints,
eviction times (the whole failure timeline is in test_node_failure_timeline.py)."""

from __future__ import annotations

import pytest

from kbench.apiserver.objects import copy_object, timestamp
from kbench.controllers import KubeControllerManagerConfiguration
from kbench.controllers.nodelifecycle import (
    HEALTH_UPDATE_RETRY,
    NODE_EVICTION_PERIOD,
    NOT_READY,
    UNREACHABLE,
    UPDATE_TAINT_BACKOFF,
    ZoneTainter,
)
from kbench.controllers.tainteviction import EVICTION_RETRIES, EVICTION_RETRY_SLEEP, min_toleration_seconds
from kbench.node import HollowNode
from tests.controlplane.helpers import Plane, fail_next, kcm, race, read_before, record, running_pod, taint_no_execute

DEFAULTS = KubeControllerManagerConfiguration()
EVICTION_RATE, SECONDARY_EVICTION_RATE = DEFAULTS.node_eviction_rate, DEFAULTS.secondary_node_eviction_rate
NODE_MONITOR_PERIOD = DEFAULTS.node_monitor_period


def _node_requests(sent: list[dict], subresource: str) -> list[dict]:
    """node-0's reads, and its writes of ``subresource`` ("" for the node itself)."""
    return [
        r
        for r in sent
        if r["resource"] == "nodes"
        and r["name"] == "node-0"
        and (r["verb"] == "get" or r["verb"] == "update" and r["subresource"] == subresource)
    ]


def _stop_node_with_a_racing_writer(subresource: str) -> tuple[Plane, list[dict]]:
    """node-0 stops; another writer changes it just before node-lifecycle's first write of ``subresource``."""
    plane = Plane(nodes=3)
    nlc = kcm(plane, "nodelifecycle").start().controller("node-lifecycle-controller")
    plane.run(20.0)
    sent = record(nlc.client)
    race(nlc.client, "update", "nodes", subresource, lambda _: plane.touch_node("node-0"))
    plane.nodes[0].stop()
    plane.run(plane.engine.now + 80)
    return plane, sent


def test_unknown_write_that_conflicts_is_retried_on_a_fresh_read_in_the_same_pass():
    plane, sent = _stop_node_with_a_racing_writer("status")
    first, read, retry = _node_requests(sent, "status")[:3]
    assert (first["verb"], first["code"]) == ("update", 409)  # written from the informer's copy: stale
    assert read["verb"] == "get" and read["at"] == pytest.approx(first["answered"] + HEALTH_UPDATE_RETRY.wait)
    assert (retry["verb"], retry["code"], retry["at"]) == ("update", 200, read["answered"])
    node = plane.ok("get", "nodes", name="node-0")
    assert node["metadata"]["labels"]["racing"] == "writer"  # the other write survives
    assert next(c for c in node["status"]["conditions"] if c["type"] == "Ready")["status"] == "Unknown"


def test_no_schedule_taint_that_conflicts_is_retried_and_lands_before_no_execute():
    _, sent = _stop_node_with_a_racing_writer("")
    writes = _node_requests(sent, "")
    read, first, reread, retry = writes[:4]  # SwapNodeControllerTaint: GET, write, and again after the 409
    assert [r["verb"] for r in writes[:4]] == ["get", "update", "get", "update"] and first["code"] == 409
    assert reread["at"] == pytest.approx(first["answered"] + UPDATE_TAINT_BACKOFF.wait)
    assert retry["code"] == 200 and [(t["key"], t["effect"]) for t in retry["body"]["spec"]["taints"]] == [
        (UNREACHABLE, "NoSchedule")
    ]
    no_execute = next(
        r
        for r in writes
        if r["verb"] == "update" and any(t["effect"] == "NoExecute" for t in r["body"]["spec"]["taints"])
    )
    assert retry["answered"] < no_execute["at"]


def _taints(plane: Plane, name: str = "node-0") -> set[tuple[str, str]]:
    """The node's taints as the apiserver has them now."""
    return {(t["key"], t["effect"]) for t in plane.api.caches["nodes"].get(name)[0]["spec"].get("taints") or []}


def _stop_node_until(plane: Plane, taint: tuple[str, str]) -> None:
    """node-0 stops; run until node-lifecycle has given it ``taint``."""
    plane.run(20.0)
    plane.nodes[0].stop()
    while taint not in _taints(plane):
        plane.run(plane.engine.now + NODE_EVICTION_PERIOD)


def test_no_execute_taint_that_fails_is_queued_again_and_tried_with_the_next_token():
    """RateLimitedTimedQueue.Try: a failed taint goes back to the queue (ProcessAt now + 1 ns); the token it took
    is spent, so the next try waits for the zone's next token (1 / --node-eviction-rate)."""
    plane = Plane(nodes=3)
    nlc = kcm(plane, "nodelifecycle").start().controller("node-lifecycle-controller")
    _stop_node_until(plane, (UNREACHABLE, "NoSchedule"))
    fail_next(nlc.client, "update", "nodes", code=500)  # the next taint write: NoExecute's
    sent = record(nlc.client)
    plane.run(plane.engine.now + NODE_MONITOR_PERIOD + 1 / EVICTION_RATE + 1)
    writes = _node_requests(sent, "")
    failed, retried = [r for r in writes if r["verb"] == "update"]
    assert (failed["code"], retried["code"]) == (500, 200)
    assert _taints(plane) == {(UNREACHABLE, "NoSchedule"), (UNREACHABLE, "NoExecute")}
    wait = read_before(sent, retried)["at"] - read_before(sent, failed)["at"]
    assert 1 / EVICTION_RATE <= wait < 1 / EVICTION_RATE + NODE_EVICTION_PERIOD + 1e-6


def test_no_execute_taint_follows_the_ready_status_at_once_when_tainted():
    """processTaintBaseEviction: a node tainted unreachable that reports Ready False has the NoExecute taint
    swapped to not-ready by the next pass (no queue, no token), and its NoSchedule taint follows."""
    plane = Plane(nodes=3)
    kcm(plane, "nodelifecycle").start()
    _stop_node_until(plane, (UNREACHABLE, "NoExecute"))
    node = plane.ok("get", "nodes", name="node-0")
    ready = next(c for c in node["status"]["conditions"] if c["type"] == "Ready")
    ready.update(status="False", reason="KubeletNotReady", lastHeartbeatTime=timestamp(plane.engine.now))
    plane.ok("update", "nodes", body=node, subresource="status")  # the kubelet is back, but not ready
    plane.run(plane.engine.now + NODE_MONITOR_PERIOD + 0.5)
    assert _taints(plane) == {(NOT_READY, "NoSchedule"), (NOT_READY, "NoExecute")}


def test_no_schedule_taints_follow_conditions_and_unschedulable():
    plane = Plane(nodes=2)
    kcm(plane, "nodelifecycle").start()
    plane.run(5.0)

    def set_condition(kind: str, status: str) -> None:
        node = plane.ok("get", "nodes", name="node-1")
        body = copy_object(node)
        body["status"]["conditions"] = [c for c in body["status"]["conditions"] if c["type"] != kind] + [
            {"type": kind, "status": status}
        ]
        plane.ok("update", "nodes", body=body, subresource="status")
        plane.run(plane.engine.now + 1)

    def taints() -> set[tuple[str, str]]:
        node = plane.ok("get", "nodes", name="node-1")
        return {(t["key"], t["effect"]) for t in node["spec"].get("taints") or []}

    set_condition("MemoryPressure", "True")
    set_condition("NetworkUnavailable", "True")
    assert taints() == {
        ("node.kubernetes.io/memory-pressure", "NoSchedule"),
        ("node.kubernetes.io/network-unavailable", "NoSchedule"),
    }
    plane.ok("patch", "nodes", name="node-1", body={"spec": {"unschedulable": True}})
    plane.run(plane.engine.now + 1)  # node lifecycle taints the node before the next read-modify-write
    set_condition("MemoryPressure", "False")
    assert taints() == {
        ("node.kubernetes.io/unschedulable", "NoSchedule"),
        ("node.kubernetes.io/network-unavailable", "NoSchedule"),
    }
    plane.ok("patch", "nodes", name="node-1", body={"spec": {"unschedulable": None}})
    set_condition("NetworkUnavailable", "False")
    assert taints() == set()


def test_zone_rate_limiter_starts_with_a_token_and_a_swap_keeps_the_debt():
    """RateLimitedTimedQueue.SwapLimiter: a new zone can taint at once; a new rate starts drained when the old
    limiter had no token left (or was rate 0)."""
    tainter = ZoneTainter(EVICTION_RATE)
    tainter.swap_limiter(EVICTION_RATE, 100.0)  # the zone turns out Normal: same rate, same bucket
    assert tainter.limiter.try_accept(100.0) and not tainter.limiter.try_accept(100.0)
    tainter.swap_limiter(SECONDARY_EVICTION_RATE, 100.0)  # the token was spent: the new bucket starts empty
    assert not tainter.limiter.try_accept(100.0 + 1 / SECONDARY_EVICTION_RATE - 1)
    assert tainter.limiter.try_accept(100.0 + 1 / SECONDARY_EVICTION_RATE)
    tainter.swap_limiter(0.0, 200.0)
    assert tainter.limiter is None
    tainter.swap_limiter(EVICTION_RATE, 300.0)  # back from rate 0 (the never limiter has no token)
    assert not tainter.limiter.try_accept(300.0) and tainter.limiter.try_accept(300.0 + 1 / EVICTION_RATE)


TOLERATE_UNREACHABLE_300 = {"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}
TOLERATE_NOT_READY_100 = {"key": NOT_READY, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 100}
TOLERATE_ALL_FOREVER = {"operator": "Exists"}


@pytest.mark.parametrize(
    ("taints", "tolerations", "expected"),
    [
        ([UNREACHABLE], [], 0.0),  # not tolerated: at once
        ([UNREACHABLE], [TOLERATE_UNREACHABLE_300], 300.0),
        ([UNREACHABLE, NOT_READY], [TOLERATE_UNREACHABLE_300, TOLERATE_NOT_READY_100], 100.0),  # the smallest
        ([UNREACHABLE, NOT_READY], [TOLERATE_UNREACHABLE_300], 0.0),  # one taint not tolerated
        ([UNREACHABLE], [TOLERATE_ALL_FOREVER], None),  # forever
        ([UNREACHABLE, NOT_READY], [TOLERATE_NOT_READY_100, TOLERATE_ALL_FOREVER], 100.0),  # forever is no limit
        ([UNREACHABLE], [TOLERATE_ALL_FOREVER, TOLERATE_UNREACHABLE_300], None),  # the first match counts
        ([UNREACHABLE], [{**TOLERATE_UNREACHABLE_300, "tolerationSeconds": -5}], 0.0),
    ],
)
def test_min_toleration_seconds_is_upstreams(taints, tolerations, expected):
    """GetMatchingTolerations + getMinTolerationTime (pkg/controller/tainteviction)."""
    assert min_toleration_seconds([{"key": k, "effect": "NoExecute"} for k in taints], tolerations) == expected


def test_eviction_runs_from_when_the_taint_was_first_seen_and_is_cancelled_when_it_goes():
    plane = Plane(nodes=2)
    manager = kcm(plane, "taint-eviction-controller").start()
    seen = []
    manager.informer("nodes").add_handler(on_update=lambda old, new: seen.append((plane.engine.now, new)))
    for name in ("a", "b"):
        running_pod(plane, name, "node-0")
    sent = record(manager.controller("taint-eviction-controller").client)
    taint_no_execute(plane, "node-0", NOT_READY)  # both pods tolerate it 300 s (DefaultTolerationSeconds)
    plane.run(plane.engine.now + 100)
    taint_no_execute(plane, "node-0", UNREACHABLE)  # swapped: the evictions already scheduled stand
    tainted = next(t for t, node in seen if node["metadata"]["name"] == "node-0" and node["spec"]["taints"])
    plane.run(tainted + 299)
    assert not [r for r in sent if r["verb"] == "delete"]
    plane.run(tainted + 301)
    deletes = [r for r in sent if r["verb"] == "delete"]
    assert {r["name"] for r in deletes} == {"a", "b"}
    assert all(r["at"] == pytest.approx(tainted + 300, abs=1e-6) for r in deletes)  # together, each on its own
    # a taint that goes before its time cancels the eviction
    running_pod(plane, "late", "node-1")
    taint_no_execute(plane, "node-1", UNREACHABLE)
    plane.run(plane.engine.now + 200)
    taint_no_execute(plane, "node-1", None)
    plane.run(plane.engine.now + 200)
    assert not [r for r in sent if r["verb"] == "delete" and r["name"] == "late"]


def test_eviction_that_fails_is_tried_again_by_its_worker():
    """deletePodHandler: up to 5 tries, 10 ms apart."""
    plane = Plane(nodes=1)
    evictor = kcm(plane, "taint-eviction-controller").start().controller("taint-eviction-controller")
    running_pod(plane, "a", "node-0")
    fail_next(evictor.client, "delete", "pods", times=EVICTION_RETRIES - 1)
    sent = record(evictor.client)
    taint_no_execute(plane, "node-0", "example.com/drain")  # not tolerated: evicted at once
    plane.run(plane.engine.now + 1)
    deletes = [r for r in sent if r["verb"] == "delete"]
    assert [r["code"] for r in deletes] == [429] * (EVICTION_RETRIES - 1) + [200]
    assert all(b["at"] == pytest.approx(a["answered"] + EVICTION_RETRY_SLEEP) for a, b in zip(deletes, deletes[1:]))
    assert plane.ok("get", "pods", namespace="default", name="a")["metadata"]["deletionTimestamp"]


def _renew_leases(plane: Plane, nodes: range) -> None:
    """Another writer renews these nodes' Leases (node-lifecycle sees them change while its pass waits on a write)."""
    body = {"spec": {"renewTime": "2000-01-01T00:00:00.000000Z"}}
    for i in nodes:
        plane.admin.request(
            "patch", "leases", lambda *a: None, namespace="kube-node-lease", name=f"node-{i}", body=body
        )


def _failure_history(walk_every_node: bool) -> dict:
    """A fleet in three zones through failures, returns, a removal, a late registration, a zone change and a taint:
    every request node-lifecycle sent, and its state at the end."""
    plane = Plane(nodes=30, zones=3)
    nlc = kcm(plane, "nodelifecycle").start().controller("node-lifecycle-controller")
    nlc.walk_every_node = walk_every_node
    sent = record(nlc.client)
    passes = []  # the health records after each pass
    disruption = nlc._handle_disruption
    nlc._handle_disruption = lambda zones: (passes.append(nlc.fleet.records()), disruption(zones))
    race(nlc.client, "update", "nodes", "status", lambda _: _renew_leases(plane, range(20, 30)))
    plane.run(20.0)
    for node in plane.nodes[0:21:3] + plane.nodes[4:6]:  # 7 of zone-0 10 go down (partially), two elsewhere
        node.stop()
    plane.run(90.0)
    plane.nodes[4].restart()
    plane.ok("delete", "nodes", name="node-7")
    plane.ok("patch", "nodes", name="node-8", body={"metadata": {"labels": {"topology.kubernetes.io/zone": "zone-9"}}})
    plane.ok("patch", "nodes", name="node-10", body={"spec": {"taints": [{"key": "example", "effect": "NoSchedule"}]}})
    plane.run(160.0)
    plane.nodes.append(HollowNode(plane.api, "node-late", zone="zone-1"))
    plane.nodes[5].restart()
    plane.nodes[6].restart()  # queued in its zone, never tainted (the zone is partially disrupted)
    plane.nodes[2].stop()
    plane.run(500.0)
    tainters = {zone: (sorted(t.known), [list(e) for e in t.queue]) for zone, t in nlc.tainters.items()}
    requests = [{k: v for k, v in r.items() if k != "body"} | {"body": repr(r["body"])} for r in sent]
    return {
        "requests": requests,
        "passes": passes,
        "zones": nlc.zone_states,
        "tainters": tainters,
        "order": (list(nlc.zone_states), list(nlc.tainters)),
    }


def test_indexed_passes_decide_as_a_walk_over_every_node():
    indexed, walked = _failure_history(False), _failure_history(True)
    assert len(walked["requests"]) > 50 and walked["zones"]["zone-0"] == "PartialDisruption"
    assert {"node-late", "node-8"} <= set(walked["passes"][-1]) and "node-7" not in walked["passes"][-1]
    assert indexed == walked
