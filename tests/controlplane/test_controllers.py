"""kube-controller-manager's controllers in virtual time."""

from __future__ import annotations

import pytest

from kbench.apiserver.objects import seconds
from kbench.controllers import (
    DeploymentController,
    EndpointSliceController,
    GarbageCollector,
    JobController,
    NamespaceController,
    NodeIpamController,
    NodeLifecycleController,
    ReplicaSetController,
    ServiceAccountController,
    TaintEvictionController,
    TTLAfterFinishedController,
    controller_manager,
)
from kbench.controllers.cluster import CIDR_UPDATE_RETRIES
from kbench.controllers.nodelifecycle import (
    EVICTION_RATE,
    NODE_EVICTION_PERIOD,
    NODE_MONITOR_GRACE_PERIOD,
    NODE_MONITOR_PERIOD,
)
from kbench.node import HollowNode
from kbench.node.hollow import RENEW_INTERVAL
from tests.controlplane.helpers import Plane, fail_next, read_before, record, running_status, workload


def _ready(node) -> str:
    return next(c["status"] for c in node["status"]["conditions"] if c["type"] == "Ready")


def test_node_stops_renewing_unknown_taint_eviction_and_replacement():
    plane = Plane(nodes=3)
    kcm = controller_manager(
        plane.api, controllers=(NodeLifecycleController, TaintEvictionController, ReplicaSetController)
    ).start()
    plane.run(5.0)
    plane.ok("create", "replicasets", namespace="default", body=workload("ReplicaSet", "web", 3))
    plane.run(10.0)
    plane.run_pods()
    doomed = {p["metadata"]["name"] for p in plane.objects("pods") if p["spec"]["nodeName"] == "node-0"}
    assert len(doomed) == 1
    plane.run(30.0)
    stop = plane.engine.now
    plane.nodes[0].stop()
    plane.run(stop + 20.0)
    last_renewal = seconds(plane.ok("get", "leases", namespace="kube-node-lease", name="node-0")["spec"]["renewTime"])
    assert stop - RENEW_INTERVAL < last_renewal <= stop  # nothing is sent after the stop
    seen_unknown = seen_taint = None
    while plane.engine.now < stop + 500:
        plane.run(plane.engine.now + 1.0)
        node = kcm.informers["nodes"].cache["node-0"]
        if seen_unknown is None and _ready(node) == "Unknown":
            seen_unknown = plane.engine.now
        if seen_taint is None and any(
            t["key"] == "node.kubernetes.io/unreachable" and t["effect"] == "NoExecute"
            for t in node["spec"].get("taints") or []
        ):
            seen_taint = plane.engine.now
        pods = plane.objects("pods")
        if any(p["metadata"]["name"] in doomed and p["metadata"].get("deletionTimestamp") for p in pods):
            break
    evicted = plane.engine.now
    # Ready goes Unknown within a monitor period after the grace period of silence
    assert last_renewal + NODE_MONITOR_GRACE_PERIOD <= seen_unknown <= last_renewal + NODE_MONITOR_GRACE_PERIOD + 11
    # the NoExecute taint comes from the next pass, which observes Unknown (tests/controlplane/
    # test_node_failure_timeline.py times every step exactly)
    assert NODE_MONITOR_PERIOD - 1 <= seen_taint - seen_unknown < NODE_MONITOR_PERIOD + 2
    # the pod's DefaultTolerationSeconds (300 s) runs from the taint
    assert evicted == pytest.approx(seen_taint + 300, abs=2)
    plane.run(plane.engine.now + 5)
    active = [p for p in plane.objects("pods") if not p["metadata"].get("deletionTimestamp")]
    assert len(active) == 3 and doomed.isdisjoint(p["metadata"]["name"] for p in active)
    # recovery: the node renews again, Ready comes back and the taints go
    plane.nodes[0].restart()
    plane.run(plane.engine.now + 15)
    node = kcm.informers["nodes"].cache["node-0"]
    assert _ready(node) == "True" and not node["spec"].get("taints")


def _tainted_at(nlc) -> dict[str, float]:
    """Node -> when its NoExecute taint was added."""
    return {
        n["metadata"]["name"]: seconds(t["timeAdded"])
        for n in nlc.nodes.cache.values()
        for t in n["spec"].get("taints") or []
        if t["effect"] == "NoExecute"
    }


def test_normal_zone_taints_every_stopped_node_at_the_eviction_rate():
    plane = Plane(nodes=8, zones=1)
    kcm = controller_manager(plane.api, controllers=(NodeLifecycleController,)).start()
    nlc = kcm.controllers[0]
    plane.run(20.0)
    sent = record(kcm.client)
    for node in plane.nodes[:3]:  # 3 of 8: under the 55% threshold, the zone stays Normal
        node.stop()
    plane.run(plane.engine.now + 300)
    assert nlc.zone_states["zone-0"] == "Normal"
    assert sorted(_tainted_at(nlc)) == ["node-0", "node-1", "node-2"]
    # each taint is read and written at a tainting tick; a tick takes a node only with a token: the first at once,
    # then one each 1 / --node-eviction-rate (0.1 nodes/s, burst 1) s, at the first 100 ms tick after that
    ticks = [
        read_before(sent, r)["at"]
        for r in sent
        if r["verb"] == "update"
        and r["resource"] == "nodes"
        and any(t["effect"] == "NoExecute" for t in r["body"]["spec"]["taints"])
    ]
    assert len(ticks) == 3
    assert all(
        1 / EVICTION_RATE <= b - a < 1 / EVICTION_RATE + NODE_EVICTION_PERIOD + 0.01 for a, b in zip(ticks, ticks[1:])
    )


def test_zone_disruption_slows_taints():
    plane = Plane(nodes=8, zones=1)
    nlc = controller_manager(plane.api, controllers=(NodeLifecycleController,)).start().controllers[0]
    plane.run(20.0)
    for node in plane.nodes[:6]:  # 6 of 8 not ready: over the 55% threshold in a small zone
        node.stop()
    plane.run(plane.engine.now + 600)
    assert nlc.zone_states["zone-0"] == "PartialDisruption"
    tainted = _tainted_at(nlc)
    # a zone of <= 50 nodes gets eviction rate 0 once partially disrupted; the node that went first may have
    # been taken by the tainting pass while the zone still counted as Normal (as upstream's asynchronous pass)
    assert len(tainted) <= 1


def test_job_with_backoff_limit_2_fails_after_three_failed_pods_with_backoff():
    plane = Plane()
    controller_manager(plane.api, controllers=(JobController, TTLAfterFinishedController)).start()
    plane.ok(
        "create",
        "jobs",
        namespace="default",
        body=workload("Job", "batch", 0, backoffLimit=2, ttlSecondsAfterFinished=30),
    )
    created = []
    for _ in range(400):
        plane.run(plane.engine.now + 1)
        for p in plane.objects("pods"):
            if p.get("status", {}).get("phase") != "Failed":
                if p["metadata"]["name"] not in {n for n, _ in created}:
                    created.append((p["metadata"]["name"], plane.engine.now))
                plane.ok("update", "pods", subresource="status", body={**p, "status": {"phase": "Failed"}})
        job = plane.ok("get", "jobs", namespace="default", name="batch")
        if job.get("status", {}).get("conditions"):
            break
    cond = job["status"]["conditions"][-1]
    assert (cond["type"], cond["reason"]) == ("Failed", "BackoffLimitExceeded")
    assert job["status"]["failed"] == 3 and len(created) == 3
    gaps = [b[1] - a[1] for a, b in zip(created, created[1:])]
    assert gaps[0] == pytest.approx(10, abs=2) and gaps[1] == pytest.approx(20, abs=2)  # 10 s, 20 s backoff
    plane.run(plane.engine.now + 40)
    _, err = plane.call("get", "jobs", namespace="default", name="batch")
    assert err.code == 404  # ttlSecondsAfterFinished


def test_job_completes_with_parallelism():
    plane = Plane()
    controller_manager(plane.api, controllers=(JobController,)).start()
    plane.ok("create", "jobs", namespace="default", body=workload("Job", "w", 0, completions=4, parallelism=2))
    peak = 0
    for _ in range(60):
        plane.run(plane.engine.now + 1)
        pods = [p for p in plane.objects("pods") if p.get("status", {}).get("phase") != "Succeeded"]
        peak = max(peak, len(pods))
        for p in pods:
            plane.ok("update", "pods", subresource="status", body={**p, "status": {"phase": "Succeeded"}})
    job = plane.ok("get", "jobs", namespace="default", name="w")
    assert job["status"]["succeeded"] == 4 and job["status"]["conditions"][-1]["type"] == "Complete"
    assert peak == 2


def test_endpointslice_splits_at_101_endpoints_and_carries_the_trigger_time():
    plane = Plane(nodes=1)
    controller_manager(plane.api, controllers=(EndpointSliceController, ReplicaSetController)).start()
    plane.ok(
        "create",
        "services",
        namespace="default",
        body={
            "metadata": {"name": "web"},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]},
        },
    )
    plane.ok("create", "replicasets", namespace="default", body=workload("ReplicaSet", "web", 101))
    plane.run(30.0)
    assert len(plane.objects("pods")) == 101
    ready_at = plane.engine.now
    plane.run_pods()
    plane.run(plane.engine.now + 10)
    slices = plane.objects("endpointslices")
    assert sorted(len(s["endpoints"]) for s in slices) == [1, 100]
    assert all(s["ports"] == [{"name": "", "port": 8080, "protocol": "TCP"}] for s in slices)
    assert all(s["metadata"]["labels"]["kubernetes.io/service-name"] == "web" for s in slices)
    assert all(
        e["conditions"] == {"ready": True, "serving": True, "terminating": False}
        for s in slices
        for e in s["endpoints"]
    )
    trigger = seconds(slices[0]["metadata"]["annotations"]["endpoints.kubernetes.io/last-change-trigger-time"])
    assert ready_at <= trigger <= plane.engine.now  # the pods' Ready change, not their creation


def test_deployment_rolling_update_respects_surge_and_unavailable():
    plane = Plane(nodes=2)
    controller_manager(plane.api, controllers=(DeploymentController, ReplicaSetController)).start()
    body = workload(
        "Deployment",
        "web",
        4,
        strategy={"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
    )
    plane.ok("create", "deployments", namespace="default", body=body)
    for _ in range(20):
        plane.run(plane.engine.now + 1)
        plane.run_pods()
    d = plane.ok("get", "deployments", namespace="default", name="web")
    assert d["status"]["availableReplicas"] == 4 and d["status"]["updatedReplicas"] == 4
    d["spec"]["template"]["spec"]["containers"][0]["image"] = "app:2"
    plane.ok("update", "deployments", body=d)
    peak = 0
    for _ in range(60):
        plane.run(plane.engine.now + 1)
        plane.run_pods()
        live = [p for p in plane.objects("pods") if not p["metadata"].get("deletionTimestamp")]
        peak = max(peak, len(live))
        ready = sum(p.get("status", {}).get("phase") == "Running" for p in live)
        assert ready >= 4  # maxUnavailable 0: never fewer Running than replicas (pods start Ready at once here)
    sets = plane.objects("replicasets")
    assert peak <= 5  # replicas + maxSurge
    assert sorted(rs["spec"]["replicas"] for rs in sets) == [0, 4]
    images = {
        p["spec"]["containers"][0]["image"] for p in plane.objects("pods") if not p["metadata"].get("deletionTimestamp")
    }
    assert images == {"app:2"}


def test_namespace_deletion_cascades_and_default_service_accounts_appear():
    plane = Plane()
    controller_manager(plane.api, controllers=(NamespaceController, ServiceAccountController)).start()
    plane.ok("create", "namespaces", body={"metadata": {"name": "team"}})
    plane.run(plane.engine.now + 2)
    assert plane.ok("get", "serviceaccounts", namespace="team", name="default")
    for i in range(3):
        plane.ok(
            "create",
            "pods",
            body={
                "metadata": {"name": f"p{i}", "namespace": "team"},
                "spec": {"containers": [{"name": "c", "image": "x"}]},
            },
        )
    plane.ok("delete", "namespaces", name="team")
    plane.run(plane.engine.now + 10)
    _, err = plane.call("get", "namespaces", name="team")
    assert err.code == 404 and plane.objects("pods", "team") == []


def test_garbage_collector_deletes_what_lost_its_owner():
    plane = Plane()
    controller_manager(plane.api, controllers=(ReplicaSetController, GarbageCollector)).start()
    plane.ok("create", "replicasets", namespace="default", body=workload("ReplicaSet", "web", 2))
    plane.run(10.0)
    assert len(plane.objects("pods")) == 2
    plane.ok("delete", "replicasets", namespace="default", name="web")
    plane.run(plane.engine.now + 5)
    assert plane.objects("pods") == []


def test_conflicting_writer_is_retried_by_the_controller():
    plane = Plane()
    kcm = controller_manager(plane.api, controllers=(ReplicaSetController,)).start()
    ctrl = kcm.controllers[0]
    retried = []
    requeue = ctrl.queue.add_rate_limited
    ctrl.queue.add_rate_limited = lambda key: (retried.append(key), requeue(key))
    plane.ok("create", "replicasets", namespace="default", body=workload("ReplicaSet", "web", 1))
    plane.run(5.0)
    p = plane.objects("pods")[0]
    plane.ok("update", "pods", subresource="status", body={**p, "status": running_status(p, plane.engine.now)})
    rs = plane.ok("get", "replicasets", namespace="default", name="web")
    # a racing writer bumps the ReplicaSet between the controller's read and its status write
    plane.ok("update", "replicasets", body={**rs, "metadata": {**rs["metadata"], "labels": {"touched": "1"}}})
    plane.run(plane.engine.now + 5)
    final = plane.ok("get", "replicasets", namespace="default", name="web")
    assert final["status"]["readyReplicas"] == 1
    assert retried == ["default/web"]  # the controller's status write got 409 Conflict and was requeued ...
    assert ctrl.queue.failures == {}  # ... and the retry succeeded


def test_node_ipam_writes_only_the_cidr_so_a_concurrent_node_write_costs_no_cidr():
    plane = Plane()
    kcm = controller_manager(plane.api, controllers=(NodeIpamController,))
    ipam = kcm.controllers[0]
    # another writer (the kubelet posting status, say) changes the node as the allocator first sees it
    kcm.informer("nodes").add_handler(on_add=lambda node: plane.touch_node(node["metadata"]["name"]))
    kcm.start()
    plane.nodes.append(HollowNode(plane.api, "node-0"))
    plane.run(5.0)
    node = plane.ok("get", "nodes", name="node-0")
    assert node["spec"]["podCIDRs"] == ["10.0.0.0/24"] and node["metadata"]["labels"]["racing"] == "writer"
    assert ipam.used == {"10.0.0.0/24"}  # no CIDR lost to a conflict


@pytest.mark.parametrize(("reason", "released"), [("InternalError", True), ("ServerTimeout", False)])
def test_node_ipam_releases_a_cidr_it_could_not_write(reason, released):
    """RangeAllocator: PatchNodeCIDRs tried cidrUpdateRetries (3) times, then ReleaseCIDR unless the server timed
    out (the write may yet land); the requeued sync takes the next CIDR (upstream's cidrset moves on too)."""
    plane = Plane()
    kcm = controller_manager(plane.api, controllers=(NodeIpamController,))
    ipam = kcm.controllers[0]
    fail_next(kcm.client, "patch", "nodes", times=CIDR_UPDATE_RETRIES, code=500, reason=reason)
    sent = record(kcm.client)
    kcm.start()
    plane.nodes.append(HollowNode(plane.api, "node-0"))
    plane.run(5.0)
    assert [r["code"] for r in sent if r["verb"] == "patch"] == [500] * CIDR_UPDATE_RETRIES + [200]
    assert plane.ok("get", "nodes", name="node-0")["spec"]["podCIDRs"] == ["10.0.1.0/24"]
    assert ipam.used == ({"10.0.1.0/24"} if released else {"10.0.0.0/24", "10.0.1.0/24"})


def test_leader_election_failover_after_the_lease_expires():
    plane = Plane()
    first = controller_manager(plane.api, "kcm-a", controllers=(ServiceAccountController,)).start()
    plane.run(1.0)
    second = controller_manager(plane.api, "kcm-b", controllers=(ServiceAccountController,)).start()
    plane.run(20.0)
    assert first.leading and not second.leading
    lease = plane.ok("get", "leases", namespace="kube-system", name="kube-controller-manager")
    assert lease["spec"]["holderIdentity"] == "kcm-a" and lease["spec"]["leaseDurationSeconds"] == 15
    killed = plane.engine.now
    first.stop()
    while not second.leading:
        plane.run(plane.engine.now + 0.5)
    took_over = plane.engine.now - killed
    assert 15 <= took_over <= 15 + 2 * 3.2 + 1  # the lease duration, plus up to a jittered retry period
    lease = plane.ok("get", "leases", namespace="kube-system", name="kube-controller-manager")
    assert lease["spec"]["holderIdentity"] == "kcm-b" and lease["spec"]["leaseTransitions"] == 1
    plane.ok("create", "namespaces", body={"metadata": {"name": "late"}})
    plane.run(plane.engine.now + 3)
    assert plane.ok("get", "serviceaccounts", namespace="late", name="default")
