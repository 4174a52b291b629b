"""Taint eviction controller against upstream v1.35 (pkg/controller/tainteviction/taint_eviction.go
processPodOnNode) in virtual time."""

from __future__ import annotations

from kbench.apiserver.objects import copy_object
from kbench.controllers.nodelifecycle import NOT_READY
from tests.controlplane.helpers import Plane, kcm


def _taints(plane: Plane, *keys: str) -> None:
    node = copy_object(plane.ok("get", "nodes", name="node-0"))
    node["spec"]["taints"] = [{"key": key, "effect": "NoExecute"} for key in keys]
    plane.ok("update", "nodes", body=node)


def _live(plane: Plane) -> bool:
    return any(not p["metadata"].get("deletionTimestamp") for p in plane.objects("pods"))


def test_a_zero_second_toleration_keeps_the_deletion_already_scheduled():
    """A pod tolerating every taint, one for 0 s, with a deletion already scheduled: upstream keeps that deletion
    (CreatedAt + 0 is before now + 0: keepExisting), so the pod is deleted at the first schedule, not at once."""
    plane = Plane(nodes=1)
    kcm(plane, "taint-eviction-controller").start()
    tolerations = [
        {"key": NOT_READY, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 60},
        {"key": "example.com/now", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 0},
    ]
    spec = {"containers": [{"name": "c", "image": "app:1"}], "tolerations": tolerations}
    plane.ok("create", "pods", namespace="default", body={"metadata": {"name": "a"}, "spec": spec})
    plane.run_pods(nodes=["node-0"])
    start = plane.engine.now
    _taints(plane, NOT_READY)  # deletion scheduled 60 s on
    plane.run(start + 10)
    _taints(plane, NOT_READY, "example.com/now")  # tolerated for 0 s
    plane.run(start + 30)
    assert _live(plane)
    plane.run(start + 65)
    assert not _live(plane)


def test_a_taint_not_tolerated_replaces_the_scheduled_deletion_with_one_now():
    plane = Plane(nodes=1)
    kcm(plane, "taint-eviction-controller").start()
    tolerations = [{"key": NOT_READY, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 60}]
    spec = {"containers": [{"name": "c", "image": "app:1"}], "tolerations": tolerations}
    plane.ok("create", "pods", namespace="default", body={"metadata": {"name": "a"}, "spec": spec})
    plane.run_pods(nodes=["node-0"])
    start = plane.engine.now
    _taints(plane, NOT_READY)
    plane.run(start + 10)
    _taints(plane, NOT_READY, "example.com/drain")
    plane.run(start + 15)
    assert not _live(plane)


def test_updates_leaving_taints_tolerations_and_node_alone_queue_no_pod():
    """NodeUpdated and PodUpdated: a node update with the same NoExecute taints, or a pod update with the same
    tolerations and node, queues no pod; a toleration added queues the pod, and a change of the node's NoExecute taints
    queues its pods."""
    plane = Plane(nodes=1)
    controller = kcm(plane, "taint-eviction-controller").start().controller("taint-eviction-controller")
    spec = {"containers": [{"name": "c", "image": "app:1"}]}
    plane.ok("create", "pods", namespace="default", body={"metadata": {"name": "a"}, "spec": spec})
    plane.run_pods(nodes=["node-0"])
    plane.run(plane.engine.now + 1)
    queued: list[str] = []
    add = controller.queue.add
    controller.queue.add = lambda key: (queued.append(key), add(key))[-1]
    node = copy_object(plane.ok("get", "nodes", name="node-0"))
    node["metadata"].setdefault("labels", {})["example.com/seen"] = "yes"
    node["spec"]["taints"] = [{"key": "example.com/soft", "effect": "NoSchedule"}]  # not NoExecute
    plane.ok("update", "nodes", body=node)
    pod = copy_object(plane.ok("get", "pods", namespace="default", name="a"))
    pod["metadata"].setdefault("labels", {})["example.com/seen"] = "yes"
    plane.ok("update", "pods", namespace="default", body=pod)
    plane.run(plane.engine.now + 1)
    assert queued == []
    pod = copy_object(plane.ok("get", "pods", namespace="default", name="a"))
    pod["spec"]["tolerations"] += [{"key": "example.com/other", "operator": "Exists", "effect": "NoExecute"}]
    plane.ok("update", "pods", namespace="default", body=pod)  # a toleration added: the pod is processed again
    plane.run(plane.engine.now + 1)
    assert queued == ["default/a"]
    _taints(plane, "example.com/drain")
    plane.run(plane.engine.now + 1)
    assert queued == ["default/a", "default/a"] and not _live(plane)
