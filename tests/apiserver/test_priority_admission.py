"""The Priority admission plugin (plugin/pkg/admission/priority/admission.go, v1.35), the system PriorityClasses the
apiserver creates at start (storage_scheduling.go AddSystemPriorityClasses), and the validation of PriorityClasses
and PodDisruptionBudgets on create, through the apiserver."""

from __future__ import annotations

import copy

import pytest

from kbench.apiserver.objects import RESOURCES, APIError
from kbench.apiserver.priority import admit_update
from tests.controlplane.helpers import Plane


def create_class(plane: Plane, name: str, value: int, **fields):
    body = {"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": name}, "value": value}
    return plane.call("create", "priorityclasses", body={**body, **fields})


def create_pod(plane: Plane, name: str = "p", **spec):
    spec.setdefault("containers", [{"name": "c", "image": "app:1"}])
    return plane.call("create", "pods", body={"metadata": {"name": name, "namespace": "default"}, "spec": spec})


def admitted(plane: Plane, name: str = "p", **spec) -> dict:
    pod, error = create_pod(plane, name, **spec)
    assert error is None, error
    return pod["spec"]


def refused(plane: Plane, code: int, resource: str = "pods", **kwargs) -> str:
    result, error = plane.call("create", resource, **kwargs) if resource != "pods" else create_pod(plane, **kwargs)
    assert result is None and error is not None and error.code == code, (result, error)
    return error.message


def test_the_system_classes_exist_when_the_apiserver_starts():
    plane = Plane()
    classes = {pc["metadata"]["name"]: pc for pc in plane.objects("priorityclasses")}
    assert {name: pc["value"] for name, pc in classes.items()} == {
        "system-node-critical": 2_000_001_000,
        "system-cluster-critical": 2_000_000_000,
    }
    assert all(pc["preemptionPolicy"] == "PreemptLowerPriority" and pc["description"] for pc in classes.values())
    assert all(pc["metadata"]["resourceVersion"] and pc["metadata"]["uid"] for pc in classes.values())


def test_a_system_class_cannot_be_deleted_and_a_user_class_can():
    """pkg/registry/scheduling/priorityclass/storage Delete: 403 for a system class, which stays."""
    plane = Plane()
    _, error = plane.call("delete", "priorityclasses", name="system-node-critical")
    assert error.code == 403 and error.message == (
        'priorityclasses.scheduling.k8s.io "system-node-critical" is forbidden: '
        "this is a system priority class and cannot be deleted"
    )
    assert plane.ok("get", "priorityclasses", name="system-node-critical")["value"] == 2_000_001_000
    plane.ok("create", "priorityclasses", body={"metadata": {"name": "low"}, "value": 10})
    plane.ok("delete", "priorityclasses", name="low")


def test_a_pod_without_a_class_gets_priority_0_and_preempt_lower_priority():
    spec = admitted(Plane())
    assert (spec["priority"], spec["preemptionPolicy"]) == (0, "PreemptLowerPriority")
    assert "priorityClassName" not in spec


def test_a_pod_gets_its_class_value_and_policy():
    plane = Plane()
    assert create_class(plane, "batch", 100, preemptionPolicy="Never")[1] is None
    spec = admitted(plane, priorityClassName="batch")
    assert (spec["priority"], spec["preemptionPolicy"]) == (100, "Never")
    system = admitted(plane, "q", priorityClassName="system-node-critical")
    assert system["priority"] == 2_000_001_000  # in any namespace (the kube-system restriction is gone since 1.17)
    assert admitted(plane, "r", priorityClassName="batch", priority=100, preemptionPolicy="Never")["priority"] == 100


def test_a_pod_without_a_class_gets_the_global_default_and_its_name():
    plane = Plane()
    assert create_class(plane, "standard", 50, globalDefault=True, preemptionPolicy="Never")[1] is None
    spec = admitted(plane)
    assert (spec["priorityClassName"], spec["priority"], spec["preemptionPolicy"]) == ("standard", 50, "Never")


def test_of_several_default_classes_the_lowest_value_wins():
    """A race can leave two globalDefault classes; getDefaultPriorityClass picks the lowest value."""
    plane = Plane()
    for name, value in (("high", 900), ("low", 10)):
        body = {"metadata": {"name": name}, "value": value, "globalDefault": True}
        plane.api._bootstrap("priorityclasses", body)  # past admission, as a race would leave them
    assert admitted(plane)["priorityClassName"] == "low"


def test_an_unknown_class_is_refused():
    message = refused(Plane(), 403, priorityClassName="missing")
    assert message == 'pods "p" is forbidden: no PriorityClass with name missing was found'


def test_a_priority_the_pod_sets_that_differs_is_refused():
    plane = Plane()
    create_class(plane, "batch", 100)
    message = refused(plane, 403, priorityClassName="batch", priority=5)
    assert message == (
        'pods "p" is forbidden: the integer value of priority (5) must not be provided in pod spec; priority '
        "admission controller computed 100 from the given PriorityClass name"
    )
    message = refused(plane, 403, preemptionPolicy="Never")
    assert message == (
        'pods "p" is forbidden: the string value of PreemptionPolicy (Never) must not be provided in pod spec; '
        "priority admission controller computed PreemptLowerPriority from the given PriorityClass name"
    )


def test_a_second_global_default_is_refused():
    plane = Plane()
    assert create_class(plane, "first", 1, globalDefault=True)[1] is None
    _, error = create_class(plane, "second", 2, globalDefault=True)
    assert error is not None and error.code == 403
    assert error.message == (
        'priorityclasses.scheduling.k8s.io "second" is forbidden: PriorityClass first is already marked as default. '
        "Only one default can exist"
    )
    assert create_class(plane, "third", 3)[1] is None


@pytest.mark.parametrize(
    ("name", "value", "detail"),
    [
        ("huge", 1_000_000_001, "value: Forbidden: maximum allowed value of a user defined priority is 1000000000"),
        ("system-mine", 1, "metadata.name: Forbidden: priority class names with 'system-' prefix are reserved"),
        (
            "system-node-critical",
            1,
            "reserved for system use only. error: value of system-node-critical PriorityClass ",
        ),
    ],
)
def test_an_invalid_class_is_422_naming_the_field(name, value, detail):
    _, error = create_class(Plane(), name, value)
    assert error is not None and error.code == 422
    assert (
        error.message.startswith(f'PriorityClass.scheduling.k8s.io "{name}" is invalid: ') and detail in error.message
    )


def test_an_invalid_budget_is_422_naming_the_field():
    plane = Plane()
    spec = {"minAvailable": 1, "maxUnavailable": "10%", "selector": {"matchLabels": {"app": "web"}}}
    message = refused(
        plane, 422, "poddisruptionbudgets", namespace="default", body={"metadata": {"name": "g"}, "spec": spec}
    )
    assert message == (
        'PodDisruptionBudget.policy "g" is invalid: spec: Invalid value: minAvailable and maxUnavailable cannot be '
        "both set"
    )
    ok = {"metadata": {"name": "g"}, "spec": {"maxUnavailable": "10%", "selector": spec["selector"]}}
    assert plane.ok("create", "poddisruptionbudgets", namespace="default", body=ok)["spec"]["maxUnavailable"] == "10%"
    missing = refused(plane, 404, "poddisruptionbudgets", namespace="nowhere", body={"metadata": {"name": "g"}})
    assert missing == 'namespaces "nowhere" not found'  # NamespaceLifecycle first


def test_an_update_keeps_value_policy_and_the_single_default():
    """ValidatePriorityClassUpdate (422) and the validating phase on update (403); a pod update keeps what
    admission gave it."""
    plane = Plane()
    caches, classes = plane.api.caches, RESOURCES["priorityclasses"]
    default = create_class(plane, "default-class", 5, globalDefault=True)[0]
    other = create_class(plane, "other", 6)[0]
    admit_update(classes, {**default, "description": "still default"}, default, caches)  # the default itself: fine
    with pytest.raises(APIError, match='"other" is invalid: value: Forbidden: may not be changed in an update.'):
        admit_update(classes, {**other, "value": 7}, other, caches)
    with pytest.raises(APIError, match="preemptionPolicy: Invalid value: 'Never': field is immutable"):
        admit_update(classes, {**other, "preemptionPolicy": "Never"}, other, caches)
    with pytest.raises(APIError, match="PriorityClass default-class is already marked as default"):
        admit_update(classes, {**other, "globalDefault": True}, other, caches)
    stored = create_pod(plane)[0]
    body = copy.deepcopy(stored)
    del body["spec"]["priority"], body["spec"]["preemptionPolicy"]
    sent = body["spec"]
    admit_update(RESOURCES["pods"], body, stored, caches)
    assert (body["spec"]["priority"], body["spec"]["preemptionPolicy"]) == (5, "PreemptLowerPriority")
    assert "priority" not in sent  # a new spec: the request's stays as sent


def test_updates_through_the_apiserver_are_validated_status_included():
    """The registry runs the update checks on the object as it would be stored: a PriorityClass's value stays, and
    a PodDisruptionBudget's status (written by the disruption controller) is validated too, so a bad one is a 422,
    not an object that readers fail to parse later."""
    plane = Plane()
    create_class(plane, "low", 10)
    pc = plane.ok("get", "priorityclasses", name="low")
    _, error = plane.call("update", "priorityclasses", name="low", body={**pc, "value": 11})
    assert error is not None and error.code == 422 and "value" in error.message
    body = {"metadata": {"name": "g"}, "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "a"}}}}
    pdb = plane.ok("create", "poddisruptionbudgets", namespace="default", body=body)
    bad = {**pdb, "status": {"disruptedPods": {"p": "yesterday"}, "disruptionsAllowed": 0}}
    _, error = plane.call(
        "update", "poddisruptionbudgets", namespace="default", name="g", subresource="status", body=bad
    )
    assert error is not None and error.code == 422 and "status.disruptedPods.p" in error.message
    good = {**pdb, "status": {"disruptedPods": {"p": "2026-01-01T00:00:05Z"}, "disruptionsAllowed": 0}}
    plane.ok("update", "poddisruptionbudgets", namespace="default", name="g", subresource="status", body=good)
    assert plane.ok("get", "poddisruptionbudgets", namespace="default", name="g")["status"]["disruptedPods"] == {
        "p": "2026-01-01T00:00:05Z"
    }
