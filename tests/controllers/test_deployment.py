"""Deployment controller's conditions and Events against upstream v1.35 (pkg/controller/deployment/progress.go,
sync.go, util/deployment_util.go) in virtual time."""

from __future__ import annotations

import pytest

from kbench.apiserver.objects import seconds
from kbench.controllers.deployment import NO_DEADLINE, max_unavailable, set_condition
from tests.controlplane.helpers import Plane, kcm, running_status, workload


def _plane(replicas: int = 4, **spec) -> Plane:
    plane = Plane(nodes=2)
    kcm(plane, "deployment", "replicaset").start()
    plane.ok("create", "deployments", namespace="default", body=workload("Deployment", "web", replicas, **spec))
    return plane


def _d(plane: Plane) -> dict:
    return plane.ok("get", "deployments", namespace="default", name="web")


def _conditions(plane: Plane) -> dict[str, dict]:
    return {c["type"]: c for c in _d(plane)["status"].get("conditions") or ()}


def _rs_name(plane: Plane) -> str:
    (rs,) = [r for r in plane.objects("replicasets") if r["spec"]["replicas"]]
    return rs["metadata"]["name"]


def test_new_rollout_creates_then_completes_with_upstreams_reasons_and_messages():
    plane = _plane()
    plane.run(3.0)
    name = _rs_name(plane)
    cond = _conditions(plane)
    assert (cond["Available"]["status"], cond["Available"]["reason"]) == ("False", "MinimumReplicasUnavailable")
    assert cond["Available"]["message"] == "Deployment does not have minimum availability."
    assert cond["Progressing"]["status"] == "True"
    assert (cond["Progressing"]["reason"], cond["Progressing"]["message"]) in {
        ("NewReplicaSetCreated", f'Created new replica set "{name}"'),
        ("ReplicaSetUpdated", f'ReplicaSet "{name}" is progressing.'),
    }
    for _ in range(5):
        plane.run_pods()
        plane.run(plane.engine.now + 1)
    conditions = _d(plane)["status"]["conditions"]
    assert [(c["type"], c["status"], c["reason"]) for c in conditions] == [
        ("Available", "True", "MinimumReplicasAvailable"),
        ("Progressing", "True", "NewReplicaSetAvailable"),
    ]
    assert conditions[0]["message"] == "Deployment has minimum availability."
    assert conditions[1]["message"] == f'ReplicaSet "{name}" has successfully progressed.'
    events = [
        (e["reason"], e["message"]) for e in plane.objects("events") if e["involvedObject"]["kind"] == "Deployment"
    ]
    assert events == [("ScalingReplicaSet", f"Scaled up replica set {name} from 0 to 4")]
    assert plane.objects("events")[0]["source"]["component"] == "deployment-controller"


def test_no_progress_for_the_deadline_gives_progress_deadline_exceeded_on_time():
    """No pod ever becomes ready: requeueStuckDeployment brings the sync back at lastUpdateTime + deadline + 1 s,
    which finds it timed out."""
    plane = _plane(2, progressDeadlineSeconds=30)
    plane.run(3.0)
    updated = seconds(_conditions(plane)["Progressing"]["lastUpdateTime"])
    plane.run(updated + 29.0)
    assert _conditions(plane)["Progressing"]["status"] == "True"
    plane.run(updated + 34.0)
    cond = _conditions(plane)["Progressing"]
    assert (cond["status"], cond["reason"]) == ("False", "ProgressDeadlineExceeded")
    assert cond["message"] == f'ReplicaSet "{_rs_name(plane)}" has timed out progressing.'
    assert updated + 30 <= seconds(cond["lastTransitionTime"]) <= updated + 32


def test_progress_refreshes_the_deadline():
    """A pod becoming ready is progress (ReplicaSetUpdated, a new lastUpdateTime): the deadline counts again."""
    plane = _plane(2, progressDeadlineSeconds=30)
    plane.run(20.0)
    pod = plane.objects("pods")[0]  # the other pod never becomes ready
    pod = plane.ok("update", "pods", body={**pod, "spec": {**pod["spec"], "nodeName": plane.nodes[0].name}})
    plane.ok("update", "pods", subresource="status", body={**pod, "status": running_status(pod, plane.engine.now)})
    plane.run(25.0)
    cond = _conditions(plane)["Progressing"]
    assert (cond["reason"], cond["status"]) == ("ReplicaSetUpdated", "True")
    assert seconds(cond["lastUpdateTime"]) == pytest.approx(20, abs=1.5)
    plane.run(45.0)
    assert _conditions(plane)["Progressing"]["status"] == "True"  # 30 s from creation have passed, not from progress
    plane.run(54.0)
    assert _conditions(plane)["Progressing"]["reason"] == "ProgressDeadlineExceeded"


def test_rolling_update_records_scaling_events_and_returns_to_new_replica_set_available():
    plane = _plane(2, strategy={"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}})
    for _ in range(5):
        plane.run_pods()
        plane.run(plane.engine.now + 1)
    old = _rs_name(plane)
    d = _d(plane)
    d["spec"]["template"]["spec"]["containers"][0]["image"] = "app:2"
    plane.ok("update", "deployments", body=d)
    for _ in range(15):
        plane.run_pods()
        plane.run(plane.engine.now + 1)
    new = _rs_name(plane)
    messages = [e["message"] for e in plane.objects("events") if e["reason"] == "ScalingReplicaSet"]
    assert f"Scaled up replica set {new} from 0 to 1" in messages
    assert f"Scaled down replica set {old} from 2 to 1" in messages
    assert f"Scaled down replica set {old} from 1 to 0" in messages
    assert _conditions(plane)["Progressing"]["reason"] == "NewReplicaSetAvailable"


def test_no_progress_deadline_means_no_progressing_condition():
    plane = _plane(1, progressDeadlineSeconds=NO_DEADLINE)
    for _ in range(3):
        plane.run_pods()
        plane.run(plane.engine.now + 1)
    assert set(_conditions(plane)) == {"Available"}


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"replicas": 4}, 1),
        ({"replicas": 10, "strategy": {"rollingUpdate": {"maxUnavailable": "35%"}}}, 3),
        ({"replicas": 2, "strategy": {"rollingUpdate": {"maxSurge": 0, "maxUnavailable": 0}}}, 1),
        ({"replicas": 2, "strategy": {"rollingUpdate": {"maxUnavailable": 5}}}, 2),
        ({"replicas": 4, "strategy": {"type": "Recreate"}}, 0),
        ({"replicas": 0}, 0),
    ],
)
def test_max_unavailable_as_deployment_util(spec, expected):
    assert max_unavailable({"spec": spec}) == expected


def test_set_condition_keeps_transition_time_while_status_holds_and_moves_changes_last():
    status = {"conditions": []}
    set_condition(status, {"type": "Progressing", "status": "True", "reason": "A", "lastTransitionTime": "t1"})
    set_condition(status, {"type": "Available", "status": "False", "reason": "B", "lastTransitionTime": "t1"})
    set_condition(status, {"type": "Progressing", "status": "True", "reason": "C", "lastTransitionTime": "t2"})
    assert [(c["type"], c["reason"], c["lastTransitionTime"]) for c in status["conditions"]] == [
        ("Available", "B", "t1"),
        ("Progressing", "C", "t1"),
    ]
    same = [dict(c) for c in status["conditions"]]
    set_condition(status, {"type": "Available", "status": "False", "reason": "B", "lastTransitionTime": "t3"})
    assert status["conditions"] == same


def _rs(name: str, replicas: int, available: int, created: str) -> dict:
    return {
        "metadata": {"name": name, "creationTimestamp": created},
        "spec": {"replicas": replicas},
        "status": {"availableReplicas": available},
    }


def test_scaling_the_new_replica_set_down_ends_the_rollout_step_as_upstream():
    """rolling.go reconcileNewReplicaSet returns ``scaled`` from its scale-down branch too, so rolloutRolling
    syncs the status without reconciling the old ReplicaSets in that sync."""
    plane = Plane(nodes=1)
    controller = kcm(plane, "deployment").controller("deployment-controller")
    calls: list[tuple[str, int]] = []

    def scale(d, rs, replicas):
        calls.append((rs["metadata"]["name"], replicas))
        yield from ()

    controller._scale = scale
    d = workload("Deployment", "web", 2)  # scaled from 6 to 2 mid-rollout: the new ReplicaSet holds 4
    new, old = _rs("web-new", 4, 4, "1970-01-01T00:00:02Z"), _rs("web-old", 2, 2, "1970-01-01T00:00:01Z")
    list(controller._rolling(d, [new, old], [old], new))
    assert calls == [("web-new", 2)]
    calls.clear()
    new["spec"]["replicas"] = 2  # the next sync: nothing to do for the new one, the old one goes
    list(controller._rolling(d, [new, old], [old], new))
    assert calls == [("web-old", 0)]
