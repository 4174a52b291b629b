"""kube-controller-manager's Events, as upstream v1.35 records them: each controller's recorder writes through its
own client (so the correlator's aggregation and spam filter apply per controller)."""

from __future__ import annotations

from kbench.apiserver.objects import copy_object
from kbench.client.record import COMBINED_PREFIX, DEFAULT_AGGREGATE_MAX_EVENTS, DEFAULT_SPAM_BURST
from kbench.controllers.nodelifecycle import NOT_READY
from tests.controlplane.helpers import Plane, kcm, record, running_pod, taint_no_execute, workload


def _events(plane: Plane, reason: str | None = None) -> list[dict]:
    return [
        obj for obj, _, _ in plane.api.caches["events"].objects.values() if reason is None or obj["reason"] == reason
    ]


def test_replicaset_records_successful_create_for_each_pod_it_creates():
    plane = Plane(nodes=1)
    manager = kcm(plane, "replicaset").start()
    sent = record(manager.controller("replicaset-controller").client)
    plane.run(1.0)
    rs = plane.ok("create", "replicasets", namespace="default", body=workload("ReplicaSet", "web", 5))
    plane.run(5.0)
    pods = {p["metadata"]["name"] for p in plane.objects("pods")}
    events = _events(plane, "SuccessfulCreate")
    assert len(pods) == 5 and {e["message"] for e in events} == {f"Created pod: {name}" for name in pods}
    for e in events:
        assert e["involvedObject"]["kind"] == "ReplicaSet" and e["involvedObject"]["uid"] == rs["metadata"]["uid"]
        assert e["source"] == {"component": "replicaset-controller"} and e["type"] == "Normal" and e["count"] == 1
    # the events went through the controller's own client
    assert sum(r["resource"] == "events" for r in sent) == 5


def test_replicaset_scale_down_records_successful_delete():
    plane = Plane(nodes=1)
    kcm(plane, "replicaset").start()
    plane.run(1.0)
    plane.ok("create", "replicasets", namespace="default", body=workload("ReplicaSet", "web", 3))
    plane.run(5.0)
    rs = copy_object(plane.ok("get", "replicasets", namespace="default", name="web"))
    rs["spec"]["replicas"] = 1
    plane.ok("update", "replicasets", body=rs)
    plane.run(10.0)
    left = {p["metadata"]["name"] for p in plane.objects("pods") if not p["metadata"].get("deletionTimestamp")}
    deleted = {e["message"].removeprefix("Deleted pod: ") for e in _events(plane, "SuccessfulDelete")}
    assert len(left) == 1 and len(deleted) == 2 and not deleted & left


def test_a_large_replicaset_is_aggregated_and_spam_filtered():
    """40 pods of one ReplicaSet: 9 distinct "Created pod" events, then one combined event whose count grows,
    and after 25 writes about the ReplicaSet the spam filter holds the rest (1 per 300 s)."""
    plane = Plane(nodes=1)
    manager = kcm(plane, "replicaset").start()
    sent = record(manager.controller("replicaset-controller").client)
    plane.run(1.0)
    plane.ok("create", "replicasets", namespace="default", body=workload("ReplicaSet", "big", 40))
    plane.run(10.0)
    assert len(plane.objects("pods")) == 40
    events = _events(plane, "SuccessfulCreate")
    combined = [e for e in events if e["message"].startswith(COMBINED_PREFIX)]
    assert len(events) == DEFAULT_AGGREGATE_MAX_EVENTS and len(combined) == 1
    assert combined[0]["count"] == DEFAULT_SPAM_BURST - (DEFAULT_AGGREGATE_MAX_EVENTS - 1)
    writes = [r for r in sent if r["resource"] == "events"]
    assert len(writes) == DEFAULT_SPAM_BURST and sum(r["verb"] == "patch" for r in writes) == 15


def test_node_controller_records_registered_node_and_node_not_ready():
    plane = Plane(nodes=2)
    kcm(plane, "nodelifecycle").start()
    plane.run(10.0)
    registered = _events(plane, "RegisteredNode")
    assert sorted(e["message"] for e in registered) == [
        f"Node node-{i} event: Registered Node node-{i} in Controller" for i in range(2)
    ]
    assert all(
        e["involvedObject"]["kind"] == "Node" and e["source"]["component"] == "node-controller" for e in registered
    )
    assert all(e["metadata"]["namespace"] == "default" for e in registered)  # a cluster-scoped object's events
    plane.nodes[0].stop()
    plane.run(90.0)  # past --node-monitor-grace-period (50 s)
    (not_ready,) = _events(plane, "NodeNotReady")
    assert not_ready["message"] == "Node node-0 status is now: NodeNotReady"
    assert not_ready["involvedObject"]["name"] == "node-0"
    plane.ok("delete", "nodes", name="node-1")
    plane.run(100.0)
    assert [e["message"] for e in _events(plane, "RemovingNode")] == [
        "Node node-1 event: Removing Node node-1 from Controller"
    ]


def test_taint_eviction_records_marking_for_deletion_and_cancelling():
    plane = Plane(nodes=2)
    kcm(plane, "taint-eviction-controller").start()
    for name, node in (("a", "node-0"), ("b", "node-1")):
        running_pod(plane, name, node)
    taint_no_execute(plane, "node-0", "example.com/drain")  # not tolerated: evicted at once
    taint_no_execute(plane, "node-1", NOT_READY)  # tolerated 300 s, then the taint goes
    plane.run(plane.engine.now + 10)
    taint_no_execute(plane, "node-1", None)
    plane.run(plane.engine.now + 10)
    messages = sorted(e["message"] for e in _events(plane, "TaintManagerEviction"))
    assert messages == ["Cancelling deletion of Pod default/b", "Marking for deletion Pod default/a"]
    assert {e["source"]["component"] for e in _events(plane, "TaintManagerEviction")} == {"taint-eviction-controller"}
