"""Disruption controller against upstream v1.35 (pkg/controller/disruption/disruption.go trySync, getExpectedPodCount,
countHealthyPods, buildDisruptedPodMap, updatePdbStatus, failSafe) in virtual time."""

from __future__ import annotations

from kbench.apiserver.objects import copy_object, timestamp
from kbench.cluster import Cluster, ClusterSpec
from kbench.controllers.base import owner_reference
from kbench.controllers.disruption import DELETION_TIMEOUT
from tests.controlplane.helpers import Plane, cluster_call, kcm, record, running_status

LABELS = {"app": "web"}


def start(plane: Plane):
    manager = kcm(plane, "disruption").start()
    plane.run(plane.engine.now + 2.0)
    return manager


def make_pod(plane: Plane, name: str, ready: bool = True, labels=LABELS, owned: dict | None = None) -> None:
    meta = {"name": name, "labels": dict(labels), **({"ownerReferences": [owner_reference(owned)]} if owned else {})}
    spec = {"nodeName": "node-0", "containers": [{"name": "c", "image": "app:1"}]}
    pod = plane.ok("create", "pods", namespace="default", body={"metadata": meta, "spec": spec})
    set_ready(plane, name, ready, pod)


def set_ready(plane: Plane, name: str, ready: bool, pod: dict | None = None) -> None:
    pod = pod or plane.ok("get", "pods", namespace="default", name=name)
    body = {**pod, "status": running_status(pod, plane.engine.now, ready)}
    plane.ok("update", "pods", body=body, subresource="status")


def make_pdb(plane: Plane, selector=None, **bounds) -> None:
    spec = {"selector": {"matchLabels": LABELS} if selector is None else selector, **bounds}
    plane.ok("create", "poddisruptionbudgets", namespace="default", body={"metadata": {"name": "guard"}, "spec": spec})


def guarded(min_available: int) -> Plane:
    """A plane running the disruption controller, three Ready pods and a budget of ``min_available``."""
    plane = Plane(nodes=1)
    start(plane)
    for i in range(3):
        make_pod(plane, f"web-{i}")
    make_pdb(plane, minAvailable=min_available)
    return plane


def status(plane: Plane, settle: float = 2.0) -> dict:
    plane.run(plane.engine.now + settle)
    return plane.ok("get", "poddisruptionbudgets", namespace="default", name="guard").get("status") or {}


def counts(st: dict) -> tuple:
    """(currentHealthy, desiredHealthy, expectedPods, disruptionsAllowed)."""
    return st.get("currentHealthy"), st.get("desiredHealthy"), st.get("expectedPods"), st.get("disruptionsAllowed")


def allowed_condition(st: dict) -> tuple:
    (cond,) = [c for c in st["conditions"] if c["type"] == "DisruptionAllowed"]
    return cond["status"], cond["reason"]


def replicaset(plane: Plane, name: str, replicas: int, parent: dict | None = None) -> dict:
    meta = {"name": name, **({"ownerReferences": [owner_reference(parent)]} if parent else {})}
    spec = {"replicas": replicas, "selector": {"matchLabels": LABELS}, "template": {"metadata": {"labels": LABELS}}}
    body = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": meta, "spec": spec}
    return plane.ok("create", "replicasets", namespace="default", body=body)


def test_min_available_int_counts_ready_pods_and_sets_the_condition():
    plane = Plane(nodes=1)
    start(plane)
    for i in range(3):
        make_pod(plane, f"web-{i}")
    make_pod(plane, "other", labels={"app": "other"})
    make_pdb(plane, minAvailable=2)
    st = status(plane)
    assert counts(st) == (3, 2, 3, 1) and st["observedGeneration"] == 0
    assert allowed_condition(st) == ("True", "SufficientPods")


def test_unready_and_deleted_pods_are_not_healthy_and_ready_again_counts():
    plane = guarded(2)
    assert counts(status(plane)) == (3, 2, 3, 1)
    set_ready(plane, "web-0", False)
    st = status(plane)
    assert counts(st) == (2, 2, 3, 0) and allowed_condition(st) == ("False", "InsufficientPods")
    set_ready(plane, "web-0", True)
    assert counts(status(plane)) == (3, 2, 3, 1)
    plane.ok("delete", "pods", namespace="default", name="web-1")  # bound: terminating, graceful
    assert counts(status(plane)) == (2, 2, 3, 0)  # still listed, not healthy
    plane.ok("delete", "pods", namespace="default", name="web-1", gracePeriodSeconds=0)
    assert counts(status(plane)) == (2, 2, 2, 0)


def test_percentages_use_the_scale_of_the_pods_controllers():
    """minAvailable 50% of a ReplicaSet of 4 (3 pods exist) rounds up to 2; maxUnavailable 30% of a Deployment's 4
    (its ReplicaSet says 10) is 2 (rounded up), so 2 must stay healthy."""
    plane = Plane(nodes=1)
    start(plane)
    rs = replicaset(plane, "web-rs", 4)
    for i in range(3):
        make_pod(plane, f"web-{i}", owned=rs)
    make_pdb(plane, minAvailable="50%")
    assert counts(status(plane)) == (3, 2, 4, 1)

    plane2 = Plane(nodes=1)
    start(plane2)
    body = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "spec": {"replicas": 4}}
    deployment = plane2.ok("create", "deployments", namespace="default", body=body)
    rs = replicaset(plane2, "web-abc", 10, parent=deployment)
    for i in range(3):
        make_pod(plane2, f"web-{i}", owned=rs)
    make_pdb(plane2, maxUnavailable="30%")
    assert counts(status(plane2)) == (3, 2, 4, 1)


def test_max_unavailable_int_and_a_replicaset_whose_deployment_is_gone():
    """maxUnavailable 1 of a ReplicaSet of 3 whose controlling Deployment no longer exists: the ReplicaSet's own
    scale (upstream's scale finder)."""
    plane = Plane(nodes=1)
    start(plane)
    ghost = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "gone", "uid": "uid-gone"}}
    rs = replicaset(plane, "web-abc", 3, parent=ghost)
    for i in range(3):
        make_pod(plane, f"web-{i}", owned=rs)
    make_pdb(plane, maxUnavailable=1)
    assert counts(status(plane)) == (3, 2, 3, 1)


def test_the_status_is_written_only_when_it_changes():
    plane = Plane(nodes=1)
    manager = start(plane)
    for i in range(2):
        make_pod(plane, f"web-{i}")
    make_pdb(plane, minAvailable=1)
    status(plane)
    sent = record(manager.controller("disruption-controller").client)
    pod = copy_object(plane.ok("get", "pods", namespace="default", name="web-0"))
    pod["metadata"]["annotations"] = {"touched": "yes"}
    plane.ok("update", "pods", body=pod)  # queues the PDB; nothing it counts changed
    assert counts(status(plane)) == (2, 1, 2, 1)
    assert not [r for r in sent if r["verb"] == "update"]
    set_ready(plane, "web-1", False)
    status(plane)
    writes = [r for r in sent if r["verb"] == "update"]
    assert [(w["resource"], w["subresource"]) for w in writes] == [("poddisruptionbudgets", "status")]


def test_an_empty_selector_covers_every_pod_of_the_namespace_and_no_pods_is_an_event():
    plane = Plane(nodes=1)
    start(plane)
    make_pdb(plane, selector={}, minAvailable=1)
    assert counts(status(plane)) == (0, 1, 0, 0)
    events = [e for e in plane.objects("events", "default") if e["reason"] == "NoPods"]
    assert events and events[0]["message"] == "No matching pods found"
    make_pod(plane, "a", labels={"x": "1"})
    make_pod(plane, "b", labels={})
    assert counts(status(plane)) == (2, 1, 2, 1)


def test_unmanaged_pods_leave_no_expected_scale_and_a_warning():
    plane = Plane(nodes=1)
    start(plane)
    make_pod(plane, "web-0")
    make_pdb(plane, minAvailable="50%")
    st = status(plane)
    assert counts(st) == (1, 0, 0, 0)  # expectedPods 0: no disruption allowed
    warnings = [e for e in plane.objects("events", "default") if e["reason"] == "UnmanagedPods"]
    assert warnings and warnings[0]["type"] == "Warning"


def test_a_job_pod_under_a_percentage_fails_safe():
    """Jobs have no scale subresource: getScaleController's error, the fail-safe status and its condition."""
    plane = Plane(nodes=1)
    start(plane)
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "batch"}, "spec": {"template": {}}}
    make_pod(plane, "batch-0", owned=plane.ok("create", "jobs", namespace="default", body=job))
    make_pdb(plane, maxUnavailable="10%")
    st = status(plane)
    assert st["disruptionsAllowed"] == 0
    (cond,) = st["conditions"]
    assert (cond["status"], cond["reason"]) == ("False", "SyncFailed")
    assert cond["message"] == "jobs.batch does not implement the scale subresource"
    failed = [e for e in plane.objects("events", "default") if e["reason"] == "CalculateExpectedPodCountFailed"]
    assert failed[0]["message"] == (
        "Failed to calculate the number of expected pods: jobs.batch does not implement the scale subresource"
    )


def test_a_failing_budget_writes_its_fail_safe_status_once():
    """failSafe writes the same status again at every sync; an update that changes nothing is not stored (etcd3
    GuaranteedUpdate), so no event requeues the budget and the writes stop."""
    plane = Plane(nodes=1)
    manager = start(plane)
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "batch"}, "spec": {"template": {}}}
    make_pod(plane, "batch-0", owned=plane.ok("create", "jobs", namespace="default", body=job))
    sent = record(manager.controller("disruption-controller").client)
    make_pdb(plane, maxUnavailable="10%")
    assert status(plane, 30.0)["disruptionsAllowed"] == 0
    assert len([r for r in sent if r["verb"] == "update"]) == 1


def test_a_disrupted_pod_not_ready_at_its_deadline_is_dropped_and_time_goes_on():
    """A disrupted pod that is not Ready when its DELETION_TIMEOUT runs out: dropped at that instant (a recheck at the
    same instant would come back forever) and the run goes on."""
    plane = guarded(1)
    status(plane)
    set_ready(plane, "web-0", False)
    pdb = plane.ok("get", "poddisruptionbudgets", namespace="default", name="guard")
    evicted_at = timestamp(plane.engine.now)
    body = {**pdb, "status": {**pdb["status"], "disruptedPods": {"web-0": evicted_at}}}
    plane.ok("update", "poddisruptionbudgets", body=body, subresource="status")
    steps = plane.engine.steps
    st = status(plane, DELETION_TIMEOUT + 5)
    assert counts(st) == (2, 1, 3, 1) and "disruptedPods" not in st
    assert plane.engine.steps - steps < 10_000  # no sync loop at the deadline


def test_disrupted_pods_are_not_healthy_until_their_deletion_timeout_then_dropped():
    plane = guarded(1)
    status(plane)
    pdb = plane.ok("get", "poddisruptionbudgets", namespace="default", name="guard")
    evicted_at = timestamp(plane.engine.now)
    body = {**pdb, "status": {**pdb["status"], "disruptedPods": {"web-0": evicted_at}, "disruptionsAllowed": 1}}
    plane.ok("update", "poddisruptionbudgets", body=body, subresource="status")  # what the eviction API writes
    st = status(plane)
    assert counts(st) == (2, 1, 3, 1) and st["disruptedPods"] == {"web-0": evicted_at}
    st = status(plane, DELETION_TIMEOUT + 5)  # the recheck: web-0 was never deleted
    assert counts(st) == (3, 1, 3, 2) and "disruptedPods" not in st
    late = [e for e in plane.objects("events", "default") if e["reason"] == "NotDeleted"]
    assert late[0]["message"] == "Pod was expected by PDB default/default to be deleted but it wasn't"


def test_a_pod_under_two_budgets_queues_the_first_with_a_warning():
    plane = Plane(nodes=1)
    start(plane)
    make_pdb(plane, minAvailable=1)
    second = {"metadata": {"name": "second"}, "spec": {"selector": {}, "maxUnavailable": 0}}
    plane.ok("create", "poddisruptionbudgets", namespace="default", body=second)
    plane.run(plane.engine.now + 2.0)
    make_pod(plane, "web-0")
    assert counts(status(plane)) == (1, 1, 1, 0)
    warning = [e for e in plane.objects("events", "default") if e["reason"] == "MultiplePodDisruptionBudgets"][0]
    assert (
        warning["message"] == 'Pod "default"/"web-0" matches multiple PodDisruptionBudgets.  Chose "guard" arbitrarily.'
    )


def test_a_whole_cluster_keeps_a_deployments_budget():
    """kube-controller-manager runs the disruption controller by default: a Deployment's pods, scheduled and started
    by the kubelets, are counted against its budget (expectedPods from the Deployment's scale)."""
    cluster = Cluster(ClusterSpec(nodes=2, zones=1, proxy_nodes=0))
    cluster.settle()
    template = {"metadata": {"labels": LABELS}, "spec": {"containers": [{"name": "c", "image": "app:1"}]}}
    spec = {"replicas": 3, "selector": {"matchLabels": LABELS}, "template": template}
    body = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "spec": spec}
    cluster_call(cluster, "create", "deployments", namespace="default", body=body)
    pdb = {"metadata": {"name": "guard"}, "spec": {"maxUnavailable": 1, "selector": {"matchLabels": LABELS}}}
    cluster_call(cluster, "create", "poddisruptionbudgets", namespace="default", body=pdb)
    end = cluster.engine.now + 120
    st: dict = {}
    while st.get("currentHealthy") != 3 and cluster.engine.now < end:
        cluster.run(cluster.engine.now + 1.0)
        st = cluster_call(cluster, "get", "poddisruptionbudgets", namespace="default", name="guard").get("status") or {}
    assert counts(st) == (3, 2, 3, 1) and allowed_condition(st) == ("True", "SufficientPods")
    pods = cluster_call(cluster, "list", "pods", namespace="default")["items"]
    assert {(p["spec"]["priority"], p["spec"]["preemptionPolicy"]) for p in pods} == {(0, "PreemptLowerPriority")}
