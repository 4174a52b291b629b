"""kube-controller-manager's controllers in virtual time."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kbench.apiserver.objects import seconds
from kbench.client import Client
from kbench.componentconfig import ConfigError
from kbench.controllers import KubeControllerManagerConfiguration, SimpleControllerClientBuilder, controller_manager
from kbench.controllers.config import KUBEADM_FLAGS
from kbench.controllers.nodeipam import CIDR_UPDATE_RETRIES
from kbench.controllers.nodelifecycle import NODE_EVICTION_PERIOD
from kbench.node import HollowNode
from kbench.node.config import KubeletConfiguration
from tests.controlplane.helpers import (
    Plane,
    fail_next,
    kcm,
    kcm_config,
    race,
    read_before,
    record,
    running_status,
    workload,
)
from tests.controlplane.test_apiserver import pod

DEFAULTS = KubeControllerManagerConfiguration()
EVICTION_RATE = DEFAULTS.node_eviction_rate
NODE_MONITOR_GRACE_PERIOD, NODE_MONITOR_PERIOD = DEFAULTS.node_monitor_grace_period, DEFAULTS.node_monitor_period


def _ready(node) -> str:
    return next(c["status"] for c in node["status"]["conditions"] if c["type"] == "Ready")


def test_node_stops_renewing_unknown_taint_eviction_and_replacement():
    plane = Plane(nodes=3)
    manager = kcm(plane, "nodelifecycle", "taint-eviction-controller", "replicaset").start()
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
    assert stop - KubeletConfiguration().lease_renew_interval < last_renewal <= stop  # nothing is sent after the stop
    seen_unknown = seen_taint = None
    while plane.engine.now < stop + 500:
        plane.run(plane.engine.now + 1.0)
        node = manager.informers["nodes"].cache["node-0"]
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
    node = manager.informers["nodes"].cache["node-0"]
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
    nlc = kcm(plane, "nodelifecycle").start().controller("node-lifecycle-controller")
    plane.run(20.0)
    sent = record(nlc.client)
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
    nlc = kcm(plane, "nodelifecycle").start().controller("node-lifecycle-controller")
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
    kcm(plane, "job", "ttl-after-finished").start()
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
        if any(c["type"] == "Failed" for c in job.get("status", {}).get("conditions", [])):
            break
    # v1.35 (JobManagedBy, JobPodReplacementPolicy): FailureTarget first, Failed once no pod is terminating
    conditions = [(c["type"], c["reason"], c["status"]) for c in job["status"]["conditions"]]
    assert conditions == [
        ("FailureTarget", "BackoffLimitExceeded", "True"),
        ("Failed", "BackoffLimitExceeded", "True"),
    ]
    assert job["status"]["failed"] == 3 and len(created) == 3
    gaps = [b[1] - a[1] for a, b in zip(created, created[1:])]
    assert gaps[0] == pytest.approx(10, abs=2) and gaps[1] == pytest.approx(20, abs=2)  # 10 s, 20 s backoff
    plane.run(plane.engine.now + 40)
    _, err = plane.call("get", "jobs", namespace="default", name="batch")
    assert err.code == 404  # ttlSecondsAfterFinished


def test_job_completes_with_parallelism():
    plane = Plane()
    kcm(plane, "job").start()
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
    kcm(plane, "endpointslice", "replicaset").start()
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


def test_endpointslice_selects_label_values_as_strings():
    """A Service's selector value is compared with the pods' labels as a string (label_selector_matches), through the
    pods' label index as by a scan: 1 selects the label "1", a list its text; a label that is not a string matches no
    selector (Kubernetes would refuse both; kbench's apiserver stores them)."""
    plane = Plane(nodes=1)
    kcm(plane, "endpointslice").start()
    pods = {"one": "1", "int": 1, "text": "['x']", "listed": ["x"]}
    for name, value in pods.items():
        plane.ok("create", "pods", body=pod(name, {"app": value}, node=plane.nodes[0].name))
    for name, value in (("number", 1), ("list", ["x"])):
        plane.ok(
            "create",
            "services",
            namespace="default",
            body={"metadata": {"name": name}, "spec": {"selector": {"app": value}, "ports": [{"port": 80}]}},
        )
    plane.run_pods()
    plane.run(plane.engine.now + 10)
    endpoints = {
        s["metadata"]["labels"]["kubernetes.io/service-name"]: [e["targetRef"]["name"] for e in s["endpoints"]]
        for s in plane.objects("endpointslices")
    }
    assert endpoints == {"number": ["one"], "list": ["text"]}


SELECTOR_VALUES = st.one_of(st.sampled_from(["a", "b", "1"]), st.just(1), st.none(), st.just(["a"]))
SELECTORS = st.dictionaries(st.sampled_from(["app", "tier"]), SELECTOR_VALUES, max_size=2)


@settings(max_examples=25, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from(["default", "other"]), SELECTORS), max_size=6),
    st.lists(st.dictionaries(st.sampled_from(["app", "tier", "x"]), SELECTOR_VALUES, max_size=3), max_size=6),
)
def test_endpointslice_finds_a_pods_services_as_a_scan_does(services, pods):
    """The Services a pod event queues (serviceSelectorCache), found through the Services' selector index, are those
    a scan of every cached Service finds, in its order: selector values compared as they are, null matching a pod
    without the label, list values, Services without a selector, two namespaces."""
    plane = Plane()
    plane.ok("create", "namespaces", body={"metadata": {"name": "other"}})
    manager = kcm(plane, "endpointslice").start()
    for i, (ns, selector) in enumerate(services):
        body = {"metadata": {"name": f"s{i}"}, "spec": {"selector": selector, "ports": [{"port": 80}]}}
        plane.ok("create", "services", namespace=ns, body=body)
    plane.run(plane.engine.now + 2)
    controller = manager.controller("endpointslice-controller")
    cache = controller.services.cache
    assert len(cache) == len(services)
    for labels in pods:
        for ns in ("default", "other"):
            pod_ = {"metadata": {"name": "p", "namespace": ns, "labels": labels}}
            scan = [
                key
                for key, svc in cache.items()
                if (sel := svc.get("spec", {}).get("selector"))
                and svc["metadata"]["namespace"] == ns
                and all(labels.get(k) == v for k, v in sel.items())
            ]
            assert list(controller._services_of(pod_)) == scan


def test_endpointslice_finds_a_services_slices_as_a_scan_does():
    """The slices a sync reads, found through the slices' service-name index, are those a scan of every cached
    slice finds, in its order: the label's value equal to the Service's name in its namespace, whatever other slices
    carry (a number, a list, no label, another namespace)."""
    plane = Plane()
    plane.ok("create", "namespaces", body={"metadata": {"name": "other"}})
    manager = kcm(plane, "endpointslice").start()
    labels = [("default", "web"), ("default", "api"), ("default", 1), ("default", ["web"]), ("default", None)]
    labels += [("other", "web"), ("default", "web"), ("default", "1")]
    for i, (ns, name) in enumerate(labels):
        meta = {"name": f"s{i}", "labels": {} if name is None else {"kubernetes.io/service-name": name}}
        body = {"metadata": meta, "addressType": "IPv4", "endpoints": [], "ports": []}
        plane.ok("create", "endpointslices", namespace=ns, body=body)
    plane.run(plane.engine.now + 2)
    slices = manager.controller("endpointslice-controller").slices
    assert len(slices.cache) == len(labels)
    for ns, name in (("default", "web"), ("default", "api"), ("default", "1"), ("other", "web"), ("other", "api")):
        scan = [
            es
            for es in slices.cache.values()
            if es["metadata"]["namespace"] == ns and es["metadata"]["labels"].get("kubernetes.io/service-name") == name
        ]
        assert slices.by_index("service", ((ns, name),)) == scan
    assert [es["metadata"]["name"] for es in slices.by_index("service", (("default", "web"),))] == ["s0", "s6"]


def test_endpointslice_makes_an_endpoint_once_a_pod_version():
    """A sync's endpoints are made once a version of each pod (uid, resourceVersion) and equal what the pod gives
    then: the same version shares its endpoint, a new version (the pod became ready) gets its own, and versions
    beyond twice the cached pods (and 1,024) are dropped."""
    plane = Plane()
    manager = kcm(plane, "endpointslice").start()
    controller = manager.controller("endpointslice-controller")
    base = {"metadata": {"name": "p", "namespace": "default", "uid": "u1", "resourceVersion": "5"}}
    base |= {"spec": {"nodeName": "node-0"}, "status": {"podIP": "10.128.0.2", "conditions": []}}
    first = controller._endpoint_of(base)
    assert first == controller._endpoint(base) and first["conditions"]["ready"] is False
    assert controller._endpoint_of(dict(base)) is first
    ready = {**base, "metadata": {**base["metadata"], "resourceVersion": "6"}}
    ready["status"] = {**base["status"], "conditions": [{"type": "Ready", "status": "True"}]}
    second = controller._endpoint_of(ready)
    assert second == controller._endpoint(ready) and second["conditions"]["ready"] is True
    assert controller._endpoint_of(base) is first
    for rv in range(1100):
        controller._endpoint_of({**base, "metadata": {**base["metadata"], "resourceVersion": f"v{rv}"}})
    assert len(controller._endpoints) <= 2 * len(controller.pods.cache) + 1025


def test_deployment_rolling_update_respects_surge_and_unavailable():
    plane = Plane(nodes=2)
    kcm(plane, "deployment", "replicaset").start()
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
    kcm(plane, "namespace", "serviceaccount").start()
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


def test_namespace_controller_deletes_content_with_deletecollection_pods_first_gracefully():
    """namespaced_resources_deleter.go: a DeleteCollection per resource that serves it (propagation Background, no
    grace period), a list and a delete of each Service (no DeleteCollection), pods first (OrderedNamespaceDeletion):
    a bound pod terminates gracefully and nothing else is deleted until the kubelet has removed it."""
    plane = Plane()
    manager = kcm(plane, "namespace", "serviceaccount")
    manager.start()
    sent = record(manager.controller("namespace-controller").client)
    plane.ok("create", "namespaces", body={"metadata": {"name": "team"}})
    plane.run(plane.engine.now + 2)  # the default ServiceAccount appears
    pods = ({"name": "free"}, {"name": "bound"})
    for meta in pods:
        spec = {"containers": [{"name": "c", "image": "x"}], **({"nodeName": "n1"} if meta["name"] == "bound" else {})}
        plane.ok("create", "pods", body={"metadata": {**meta, "namespace": "team"}, "spec": spec})
    plane.ok("create", "services", namespace="team", body={"metadata": {"name": "s"}, "spec": {}})
    plane.ok("create", "replicasets", namespace="team", body=workload("ReplicaSet", "web", 0, namespace="team"))
    plane.ok("delete", "namespaces", name="team")
    plane.run(plane.engine.now + 5)
    bound = plane.ok("get", "pods", namespace="team", name="bound")["metadata"]
    assert bound["deletionGracePeriodSeconds"] == 30 and [p["metadata"]["name"] for p in plane.objects("pods", "team")]
    assert {(e["verb"], e["resource"]) for e in sent} == {("deletecollection", "pods"), ("list", "pods")}
    assert plane.objects("services", "team") and plane.objects("replicasets", "team")
    plane.ok("delete", "pods", namespace="team", name="bound", gracePeriodSeconds=0)  # the kubelet's
    plane.run(plane.engine.now + 5)
    _, err = plane.call("get", "namespaces", name="team")
    assert err.code == 404 and plane.objects("services", "team") == [] and plane.objects("replicasets", "team") == []
    verbs = {(e["verb"], e["resource"]) for e in sent}
    assert ("deletecollection", "replicasets") in verbs and ("delete", "services") in verbs
    assert ("deletecollection", "services") not in verbs and all(e["code"] == 200 for e in sent)
    table = plane.api.sli.table().set_index(["verb", "resource", "scope"])
    assert table.loc[("deletecollection", "pods", "namespace"), "count"] >= 1


def test_garbage_collector_deletes_what_lost_its_owner():
    plane = Plane()
    kcm(plane, "replicaset", "garbagecollector").start()
    plane.ok("create", "replicasets", namespace="default", body=workload("ReplicaSet", "web", 2))
    plane.run(10.0)
    assert len(plane.objects("pods")) == 2
    plane.ok("delete", "replicasets", namespace="default", name="web")
    plane.run(plane.engine.now + 5)
    assert plane.objects("pods") == []


def test_conflicting_writer_is_retried_by_the_controller():
    """updateReplicaSetStatus: a status update refused with 409 Conflict is retried once on a fresh GET within the
    sync (statusUpdateRetries 1), so the ReplicaSet is not requeued and the other writer's change survives."""
    plane = Plane()
    ctrl = kcm(plane, "replicaset").start().controller("replicaset-controller")
    retried = []
    requeue = ctrl.queue.add_rate_limited
    ctrl.queue.add_rate_limited = lambda key: (retried.append(key), requeue(key))
    plane.ok("create", "replicasets", namespace="default", body=workload("ReplicaSet", "web", 1))
    plane.run(5.0)
    sent = record(ctrl.client)
    race(ctrl.client, "update", "replicasets", "status", lambda _: plane.touch("replicasets", "web", "default"))
    p = plane.objects("pods")[0]
    plane.ok("update", "pods", subresource="status", body={**p, "status": running_status(p, plane.engine.now)})
    plane.run(plane.engine.now + 5)
    calls = [(r["verb"], r["resource"], r["code"]) for r in sent if r["resource"] == "replicasets"]
    assert calls[:3] == [("update", "replicasets", 409), ("get", "replicasets", 200), ("update", "replicasets", 200)]
    final = plane.ok("get", "replicasets", namespace="default", name="web")
    assert final["status"]["readyReplicas"] == 1 and final["metadata"]["labels"]["racing"] == "writer"
    assert retried == [] and ctrl.queue.failures == {}


def test_node_ipam_writes_only_the_cidr_so_a_concurrent_node_write_costs_no_cidr():
    plane = Plane()
    manager = kcm(plane, "nodeipam")
    ipam = manager.controller("node-ipam-controller")
    # another writer (the kubelet posting status, say) changes the node as the allocator first sees it
    manager.informer("nodes").add_handler(on_add=lambda node: plane.touch_node(node["metadata"]["name"]))
    manager.start()
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
    manager = kcm(plane, "nodeipam")
    ipam = manager.controller("node-ipam-controller")
    fail_next(ipam.client, "patch", "nodes", times=CIDR_UPDATE_RETRIES, code=500, reason=reason)
    sent = record(ipam.client)
    manager.start()
    plane.nodes.append(HollowNode(plane.api, "node-0"))
    plane.run(5.0)
    assert [r["code"] for r in sent if r["verb"] == "patch"] == [500] * CIDR_UPDATE_RETRIES + [200]
    assert plane.ok("get", "nodes", name="node-0")["spec"]["podCIDRs"] == ["10.0.1.0/24"]
    assert ipam.used == ({"10.0.1.0/24"} if released else {"10.0.0.0/24", "10.0.1.0/24"})


def test_leader_election_failover_after_the_lease_expires():
    plane = Plane()
    first = kcm(plane, "serviceaccount", identity="kcm-a").start()
    plane.run(1.0)
    second = kcm(plane, "serviceaccount", identity="kcm-b").start()
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


# -- configuration ----------------------------------------------------------------------------------------------
def test_configuration_defaults_are_upstreams_and_flags_set_them():
    assert (DEFAULTS.kube_api_qps, DEFAULTS.kube_api_burst, DEFAULTS.controllers) == (20.0, 30, ("*",))
    assert (DEFAULTS.node_monitor_grace_period, DEFAULTS.node_startup_grace_period) == (50.0, 60.0)
    assert (DEFAULTS.concurrent_gc_syncs, DEFAULTS.concurrent_namespace_syncs, DEFAULTS.max_endpoints_per_slice) == (
        20,
        10,
        100,
    )
    config = KubeControllerManagerConfiguration.from_flags(
        {"--kube-api-qps": "100", "concurrent-replicaset-syncs": 2, "node-monitor-grace-period": "40s"}
    )
    assert (config.kube_api_qps, config.concurrent_replicaset_syncs, config.node_monitor_grace_period) == (100, 2, 40)
    assert config.to_manifest()["node-monitor-grace-period"] == "40s"
    assert DEFAULTS.replace({"kubeAPIQPS": 5}).kube_api_qps == 5  # sweeps: kube-controller-manager.kubeAPIQPS


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ({"controllers": "*,-nodelifecyle"}, r"controllers: '-nodelifecyle' is not in the list of known controllers"),
        ({"kube-api-qps": 0}, r"kubeAPIQPS: 0.0 must be greater than 0"),
        (
            {"max-endpoints-per-slice": 1001},
            r"maxEndpointsPerSlice: 1001 is out of range; expected an integer in \[1, 1000\]",
        ),
        ({"allocate-node-cidrs": True}, r"clusterCIDR: '' is not an IPv4 CIDR"),
        (
            {"allocate-node-cidrs": True, "cluster-cidr": "10.0.0.0/8", "node-cidr-mask-size": 30},
            r"nodeCIDRMaskSize: 30",
        ),
        ({"leader-elect-renew-deadline": "20s"}, r"leaderElectLeaseDuration: 15.0s must be greater than"),
        ({"node-eviction-rate": -1}, r"nodeEvictionRate: -1 is out of range"),
    ],
)
def test_configuration_refuses_what_upstream_refuses(flags, message):
    with pytest.raises(ConfigError, match=message):
        KubeControllerManagerConfiguration.from_flags(flags)


def test_controllers_flag_enables_by_name_or_alias_and_star_minus_disables():
    """IsControllerEnabled: the first explicit entry decides; * turns on what is on by default."""
    config = DEFAULTS.replace({"controllers": ["*", "-replicaset", "bootstrapsigner"]})
    assert not config.enabled("replicaset-controller") and config.enabled("deployment-controller")
    assert config.enabled("bootstrap-signer-controller") and not DEFAULTS.enabled("bootstrap-signer-controller")
    assert DEFAULTS.replace({"controllers": ["job"]}).enabled("job-controller")
    assert not DEFAULTS.replace({"controllers": ["job"]}).enabled("deployment-controller")
    names = [c.name for c in controller_manager(Plane().api, config=config).controllers]
    assert "replicaset-controller" not in names and "deployment-controller" in names


def test_node_ipam_runs_only_with_allocate_node_cidrs():
    """startNodeIpamController returns early unless --allocate-node-cidrs (upstream's default is false)."""
    plane = Plane()
    names = [c.name for c in controller_manager(plane.api).controllers]
    assert "node-ipam-controller" not in names and "node-lifecycle-controller" in names
    kubeadm = KubeControllerManagerConfiguration.from_flags(KUBEADM_FLAGS)
    assert "node-ipam-controller" in [c.name for c in controller_manager(plane.api, config=kubeadm).controllers]
    assert "garbage-collector-controller" not in [
        c.name
        for c in controller_manager(plane.api, config=DEFAULTS.replace({"enableGarbageCollector": False})).controllers
    ]


def test_controllers_read_their_settings_from_the_configuration():
    plane = Plane()
    config = kcm_config(
        concurrent_replicaset_syncs=2,
        concurrent_ttl_after_finished_syncs=3,
        max_endpoints_per_slice=7,
        cluster_cidr="10.8.0.0/16",
        node_cidr_mask_size=26,
    )
    manager = controller_manager(plane.api, config=config)
    assert manager.controller("replicaset-controller").workers == 2
    assert manager.controller("ttl-after-finished-controller").workers == 3
    assert manager.controller("endpointslice-controller").max_endpoints == 7
    assert str(next(manager.controller("node-ipam-controller").subnets)) == "10.8.0.0/26"
    lease = manager.elector
    assert (lease.lease, lease.lease_duration, lease.renew_deadline, lease.retry_period) == (
        "kube-controller-manager",
        15.0,
        10.0,
        2.0,
    )


# -- one client (one token bucket) per controller -----------------------------------------------------------------
def test_every_controller_has_its_own_client_and_bucket_on_one_connection():
    """SimpleControllerClientBuilder.ClientOrDie: a new clientset per controller, at --kube-api-qps / --kube-api-burst
    (the namespace controller's at 20x / 100x, the garbage collector's at 2x QPS), all on the process's connection."""
    manager = kcm(Plane(), kube_api_qps=50, kube_api_burst=60)
    clients = [c.client for c in manager.controllers] + [manager.informer_client, manager.elector.client]
    assert len({id(c.limiter) for c in clients}) == len(clients)
    assert {c.conn for c in clients} == {manager.builder.connection}
    rates = {c.name: (c.client.limiter.qps, c.client.limiter.burst) for c in manager.controllers}
    assert rates["replicaset-controller"] == (50, 60) and rates["node-lifecycle-controller"] == (50, 60)
    assert rates["namespace-controller"] == (1000, 6000) and rates["garbage-collector-controller"] == (100, 60)
    assert set(manager.builder.clients) >= {
        "shared-informers",
        "leader-election",
        "node-controller",
        "replicaset-controller",
    }


def _slice_write_delay() -> float:
    """Seconds from a pod's Ready change until its EndpointSlice write is answered, while the ReplicaSet controller
    creates 300 pods (far more than its bucket's burst of 30 at 20 QPS)."""
    plane = Plane(nodes=1)
    manager = kcm(plane, "replicaset", "endpointslice").start()
    svc = {"metadata": {"name": "web"}, "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}}
    plane.ok("create", "services", namespace="default", body=svc)
    plane.ok("create", "replicasets", namespace="default", body=workload("ReplicaSet", "web", 1))
    plane.run(3.0)
    plane.run_pods()
    plane.run(5.0)
    sent = record(manager.controller("endpointslice-controller").client)
    plane.ok("create", "replicasets", namespace="default", body=workload("ReplicaSet", "bulk", 300))
    plane.run(plane.engine.now + 3.0)  # the ReplicaSet controller's batches of 32, 64, 128 are queued on its bucket
    web = next(p for p in plane.objects("pods") if p["metadata"]["name"].startswith("web-"))
    changed = plane.engine.now
    plane.ok("update", "pods", subresource="status", body={**web, "status": running_status(web, changed, ready=False)})
    plane.run(changed + 30)
    return next(r["answered"] for r in sent if r["verb"] == "update" and r["resource"] == "endpointslices") - changed


def test_endpointslice_writes_do_not_wait_behind_replicaset_pod_creations(monkeypatch):
    """Upstream gives each controller its own client, so its own token bucket: the EndpointSlice write goes out as
    soon as the pod's change arrives. With one bucket for the whole process (kbench before, and the comparison the
    client builder's new_client allows) it waits behind the ReplicaSet controller's pod creations."""
    own = _slice_write_delay()
    one: dict = {}
    monkeypatch.setattr(
        SimpleControllerClientBuilder,
        "new_client",
        lambda self, config: one.setdefault(
            id(self), Client(self.server, config.user, qps=config.qps, burst=config.burst, connection=self.connection)
        ),
    )
    shared = _slice_write_delay()
    assert own < 0.1 and shared > 1.0


def test_kube_api_qps_paces_each_controller():
    """The ReplicaSet controller's 200 pod creations leave at its bucket's pace: never more than the burst (30) plus
    --kube-api-qps per second of any stretch; at 100 QPS they are done sooner than at 20."""

    def creations(qps: float) -> list[float]:
        plane = Plane()
        manager = kcm(plane, "replicaset", kube_api_qps=qps)
        sent = record(manager.controller("replicaset-controller").client)
        manager.start()
        plane.run(1.0)
        plane.ok("create", "replicasets", namespace="default", body=workload("ReplicaSet", "web", 200))
        plane.run(40.0)
        left = sorted(  # the pods only: the controller's Events are creates on the same client too
            r["answered"] - plane.api.costs.network_rtt
            for r in sent
            if (r["verb"], r["resource"]) == ("create", "pods")
        )
        assert len(left) == 200
        return left

    for qps in (20, 100):
        left = creations(qps)
        for i in range(0, 200, 10):
            for j in range(i + 1, 200, 10):
                assert j - i + 1 <= 30 + qps * (left[j] - left[i]) + 1, (qps, i, j)
    slow, fast = creations(20), creations(100)
    assert fast[-1] - fast[0] < (slow[-1] - slow[0]) / 2
