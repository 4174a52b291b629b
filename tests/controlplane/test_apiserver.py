"""kube-apiserver: verbs, resourceVersion rules, selectors, watch cache, admission, deletion, SLI."""

from __future__ import annotations

import pytest

from kbench.apiserver.config import KubeAPIServerConfig
from kbench.apiserver.objects import seconds
from kbench.client import Client
from tests.controlplane.helpers import Plane

POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "p", "namespace": "default", "labels": {"app": "a"}},
    "spec": {"containers": [{"name": "c", "image": "img"}]},
}


def pod(name: str, labels=None, node: str = "") -> dict:
    return {
        **POD,
        "metadata": {"name": name, "namespace": "default", "labels": labels or {"app": "a"}},
        "spec": {**POD["spec"], **({"nodeName": node} if node else {})},
    }


def test_objects_live_in_etcd_under_upstream_keys_with_their_size():
    plane = Plane()
    created = plane.ok("create", "pods", body=pod("web-0"))
    kv = plane.api.etcd.store.range(b"/registry/pods/default/web-0").kvs[0]
    assert kv.mod_revision == int(created["metadata"]["resourceVersion"])
    assert len(kv.value) > 100 and b'"name":"web-0"' in kv.value and b"resourceVersion" not in kv.value
    assert plane.api.etcd.store.range(b"/registry/minions/", b"/registry/minions0").count == 0
    plane.ok("create", "nodes", body={"metadata": {"name": "n1"}, "status": {}})
    assert plane.api.etcd.store.range(b"/registry/minions/n1").count == 1
    plane.ok("create", "services", namespace="default", body={"metadata": {"name": "s"}, "spec": {}})
    assert plane.api.etcd.store.range(b"/registry/services/specs/default/s").count == 1


def test_stale_resource_version_is_409_and_the_retry_wins():
    plane = Plane()
    v1 = plane.ok("create", "pods", body=pod("p"))
    first = {**v1, "metadata": {**v1["metadata"], "labels": {"app": "x"}}}
    second = {**v1, "metadata": {**v1["metadata"], "labels": {"app": "y"}}}
    a, b = {}, {}
    plane.admin.request("update", "pods", lambda r, e, d: a.update(r=r, e=e), body=first)
    plane.admin.request("update", "pods", lambda r, e, d: b.update(r=r, e=e), body=second)
    plane.run(plane.engine.now + 1)
    assert a["e"] is None and b["e"].code == 409 and b["e"].reason == "Conflict"
    assert "the object has been modified" in b["e"].message
    latest = plane.ok("get", "pods", namespace="default", name="p")
    retry = {**latest, "metadata": {**latest["metadata"], "labels": {"app": "y"}}}
    assert plane.ok("update", "pods", body=retry)["metadata"]["labels"] == {"app": "y"}


def test_create_get_list_errors_and_generate_name():
    plane = Plane()
    plane.ok("create", "pods", body=pod("p"))
    _, err = plane.call("create", "pods", body=pod("p"))
    assert (err.code, err.reason) == (409, "AlreadyExists")
    _, err = plane.call("get", "pods", namespace="default", name="missing")
    assert (err.code, err.message) == (404, 'pods "missing" not found')
    made = plane.ok("create", "pods", body={**POD, "metadata": {"generateName": "web-", "namespace": "default"}})
    suffix = made["metadata"]["name"].removeprefix("web-")
    assert len(suffix) == 5 and set(suffix) <= set("bcdfghjklmnpqrstvwxz2456789")
    _, err = plane.call("create", "pods", body={**POD, "metadata": {"namespace": "default"}})
    assert err.code == 422 and "name or generateName is required" in err.message


def test_list_with_label_and_field_selectors():
    plane = Plane()
    for i in range(6):
        plane.ok("create", "pods", body=pod(f"p{i}", {"app": "a" if i % 2 else "b", "tier": "web"}, f"n{i % 3}"))
    names = lambda items: sorted(p["metadata"]["name"] for p in items)  # noqa: E731
    assert names(plane.ok("list", "pods", namespace="default", label_selector="app=a")["items"]) == ["p1", "p3", "p5"]
    assert names(plane.ok("list", "pods", label_selector="app!=a,tier in (web)")["items"]) == ["p0", "p2", "p4"]
    assert names(plane.ok("list", "pods", field_selector="spec.nodeName=n1")["items"]) == ["p1", "p4"]
    _, err = plane.call("list", "pods", field_selector="spec.hostname=x")
    assert err.code == 400 and "not a known field selector" in err.message


def test_watch_from_a_resource_version_and_410_when_it_left_the_window():
    plane = Plane()
    rv = int(plane.ok("create", "pods", body=pod("p0"))["metadata"]["resourceVersion"])
    for i in range(1, 4):
        plane.ok("create", "pods", body=pod(f"p{i}", node="n1" if i == 2 else ""))
    events = []
    plane.admin.request(
        "watch",
        "pods",
        lambda r, e, d: None,
        namespace="default",
        resourceVersion=str(rv),
        on_events=events.extend,
        field_selector="spec.nodeName=n1",
    )
    plane.run(plane.engine.now + 1)
    assert [(k, o["metadata"]["name"]) for k, o, _ in events] == [("ADDED", "p2")]
    plane.run(plane.engine.now + 100)  # the 75 s window moves past rv
    plane.ok("create", "pods", body=pod("p9"))
    _, err = plane.call("watch", "pods", resourceVersion=str(rv), on_events=events.extend)
    assert err.code == 410 and err.reason == "Expired" and "too old resource version" in err.message


def test_admission_namespace_lifecycle_service_account_default_tolerations():
    plane = Plane()
    _, err = plane.call("create", "pods", body={**pod("p"), "metadata": {"name": "p", "namespace": "nope"}})
    assert (err.code, err.message) == (404, 'namespaces "nope" not found')
    plane.ok("create", "namespaces", body={"metadata": {"name": "team"}})
    _, err = plane.call("create", "pods", body={**pod("p"), "metadata": {"name": "p", "namespace": "team"}})
    assert err.code == 403 and 'serviceaccount "default" not found' in err.message
    made = plane.ok("create", "pods", body=pod("p"))
    assert made["spec"]["serviceAccountName"] == "default"
    assert {(t["key"], t["tolerationSeconds"]) for t in made["spec"]["tolerations"]} == {
        ("node.kubernetes.io/not-ready", 300),
        ("node.kubernetes.io/unreachable", 300),
    }
    plane.ok("delete", "namespaces", name="team")
    _, err = plane.call(
        "create", "serviceaccounts", namespace="team", body={"metadata": {"name": "x", "namespace": "team"}}
    )
    assert err.code == 403 and "being terminated" in err.message


def test_default_toleration_seconds_flags_set_the_tolerations_admission_adds():
    flags = {"default-not-ready-toleration-seconds": 30, "default-unreachable-toleration-seconds": 60}
    plane = Plane(config=KubeAPIServerConfig.from_flags(flags))
    made = plane.ok("create", "pods", body=pod("p"))
    assert {(t["key"], t["tolerationSeconds"]) for t in made["spec"]["tolerations"]} == {
        ("node.kubernetes.io/not-ready", 30),
        ("node.kubernetes.io/unreachable", 60),
    }
    own = {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 5}
    kept = plane.ok("create", "pods", body={**pod("q"), "spec": {**POD["spec"], "tolerations": [own]}})
    assert [t["tolerationSeconds"] for t in kept["spec"]["tolerations"]] == [5, 30]  # its own is kept


def test_status_subresource_keeps_spec_and_main_update_keeps_status():
    plane = Plane()
    made = plane.ok("create", "pods", body=pod("p"))
    with_status = {**made, "spec": {"containers": []}, "status": {"phase": "Running"}}
    after = plane.ok("update", "pods", body=with_status, subresource="status")
    assert after["status"] == {"phase": "Running"} and after["spec"]["containers"]
    changed = {**after, "status": {"phase": "Failed"}, "metadata": {**after["metadata"], "labels": {"app": "z"}}}
    after = plane.ok("update", "pods", body=changed)
    assert after["status"] == {"phase": "Running"} and after["metadata"]["labels"] == {"app": "z"}


def test_finalizers_and_graceful_pod_deletion():
    plane = Plane()
    plane.ok(
        "create",
        "services",
        namespace="default",
        body={"metadata": {"name": "s", "finalizers": ["example.com/cleanup"]}, "spec": {}},
    )
    gone = plane.ok("delete", "services", namespace="default", name="s")
    assert gone["metadata"]["deletionTimestamp"] and plane.objects("services", "default")
    svc = plane.ok("get", "services", namespace="default", name="s")
    plane.ok("update", "services", body={**svc, "metadata": {**svc["metadata"], "finalizers": []}})
    assert plane.objects("services", "default") == []
    plane.ok("create", "pods", body=pod("bound", node="n1"))
    t = plane.engine.now
    terminating = plane.ok("delete", "pods", namespace="default", name="bound")
    assert seconds(terminating["metadata"]["deletionTimestamp"]) == pytest.approx(t + 30, abs=0.1)
    assert terminating["metadata"]["deletionGracePeriodSeconds"] == 30
    plane.ok("delete", "pods", namespace="default", name="bound", gracePeriodSeconds=0)  # the kubelet's
    _, err = plane.call("get", "pods", namespace="default", name="bound")
    assert err.code == 404


def test_connections_spread_over_instances_and_sli_is_recorded():
    plane = Plane(instances=3)
    users = [Client(plane.api, f"u{i}", qps=100, burst=100) for i in range(6)]
    assert [u.conn.instance.index for u in users] == [1, 2, 0, 1, 2, 0]  # the admin client took instance 0
    plane.ok("create", "pods", body=pod("p"))
    plane.ok("list", "pods")
    table = plane.api.sli.table().set_index(["verb", "resource", "scope"])
    assert table.loc[("create", "pods", "resource"), "count"] == 1
    assert table.loc[("list", "pods", "cluster"), "p99_s"] < 1.0
    assert table.loc[("create", "serviceaccounts", "resource"), "p50_s"] > plane.api.costs.request_overhead


def test_client_rate_limit_spaces_requests():
    plane = Plane()
    slow = Client(plane.api, "slow", qps=5, burst=2)
    times = []
    for _ in range(6):
        slow.request("get", "namespaces", lambda r, e, d: times.append(plane.engine.now + d), name="default")
    plane.run(5.0)
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert gaps[0] < 0.01 and all(g == pytest.approx(0.2, abs=0.01) for g in gaps[2:])


def test_bad_requests_name_the_field():
    plane = Plane()
    with pytest.raises(ValueError, match="resource: unknown 'podz'"):
        plane.admin.request("get", "podz", lambda *a: None, name="x")
    with pytest.raises(ValueError, match="verb: must be one of get, list, watch"):
        plane.admin.request("proxy", "pods", lambda *a: None)
    with pytest.raises(ValueError, match="instances: must be a positive integer; got 0"):
        Plane(instances=0)


@pytest.mark.parametrize(("interval", "compacted"), [("10s", True), ("0s", False)])
def test_etcd_compaction_interval_flag_sets_how_often_the_apiserver_compacts(interval, compacted):
    """--etcd-compaction-interval: compact every interval to the revision seen one interval earlier; 0 disables."""
    config = KubeAPIServerConfig.from_flags({"etcd-compaction-interval": interval})
    plane = Plane(config=config)
    for i in range(5):
        plane.ok("create", "serviceaccounts", namespace="default", body={"metadata": {"name": f"sa-{i}"}})
    plane.run(25.0)
    assert (plane.api.etcd.store.compact_revision > 0) == compacted
    if not compacted:
        plane.run(KubeAPIServerConfig().etcd_compaction_interval * 3)
        assert plane.api.etcd.store.compact_revision == -1


def test_a_create_leaves_the_request_body_as_sent():
    """Admission and the allocators set fields of the stored object, not of the caller's body (a template created
    twice under other flags got the first create's tolerations)."""
    plane = Plane()
    body = pod("p")
    service = {"metadata": {"name": "s", "namespace": "default"}, "spec": {"type": "NodePort", "ports": [{"port": 80}]}}
    made = plane.ok("create", "pods", body=body)
    made_service = plane.ok("create", "services", body=service)
    assert "tolerations" not in body["spec"] and "serviceAccountName" not in body["spec"]
    assert len(made["spec"]["tolerations"]) == 2 and made["spec"]["serviceAccountName"] == "default"
    assert service["spec"] == {"type": "NodePort", "ports": [{"port": 80}]}
    assert made_service["spec"]["ports"][0]["nodePort"] and made_service["spec"]["clusterIP"]


def test_watch_cache_sizes_zero_and_watch_cache_off_disable_caching():
    """v1.35: a size of 0 disables a resource's watch cache, any other size keeps it; --watch-cache=false disables
    every cache."""
    sizes = KubeAPIServerConfig.from_flags(
        {"watch-cache-sizes": "pods#0,deployments.apps#100,leases.coordination.k8s.io#0"}
    )
    cached = {r: sizes.cached(r) for r in ("pods", "deployments.apps", "leases.coordination.k8s.io", "nodes")}
    assert cached == {"pods": False, "deployments.apps": True, "leases.coordination.k8s.io": False, "nodes": True}
    off = KubeAPIServerConfig.from_flags({"watch-cache": "false"})
    assert not any(off.cached(r) for r in ("pods", "nodes", "deployments.apps"))
    api = Plane(config=sizes).api
    assert api.caches["pods"].compacted is not None and api.caches["leases"].compacted is not None
    assert api.caches["deployments"].compacted is None and api.caches["nodes"].compacted is None


def _answer_time(plane: Plane, verb: str, resource: str, **kwargs) -> float:
    """Seconds from sending a request to its answer reaching the client."""
    sent, box = plane.engine.now, []
    plane.admin.request(verb, resource, lambda r, e, d: box.append(plane.engine.now + d - sent), **kwargs)
    plane.run(plane.engine.now + 1.0)
    return box[0]


def test_a_resource_without_a_watch_cache_is_read_from_etcd():
    """Its gets and lists pay a linearizable etcd range (ReadIndex, the member's CPU per key and byte); its lists
    carry etcd's revision."""
    times = {}
    for flags in ({}, {"watch-cache-sizes": "pods#0"}):
        plane = Plane(config=KubeAPIServerConfig.from_flags(flags))
        made = plane.ok("create", "pods", body=pod("p"))
        plane.ok("create", "serviceaccounts", namespace="default", body={"metadata": {"name": "other"}})
        times[bool(flags)] = _answer_time(plane, "get", "pods", namespace="default", name="p")
        listed = plane.ok("list", "pods", namespace="default")
    size = plane.api.caches["pods"].get("default/p")[2]
    p, member = plane.api.etcd.costs, plane.admin.conn.instance.index % 3
    etcd_read = (
        p.client_rtt + p.peer_rtt * (1 + (member != 0)) + p.read_cpu + p.linearizable_cpu + p.read_cpu_per_key
    ) + p.read_cpu_per_byte * size
    assert times[True] - times[False] == pytest.approx(etcd_read)
    assert listed["metadata"]["resourceVersion"] == str(plane.api.etcd.store.revision)
    assert int(listed["metadata"]["resourceVersion"]) > int(made["metadata"]["resourceVersion"])


def test_a_watch_without_a_watch_cache_reaches_back_to_etcds_compaction():
    """From etcd, a watch may start anywhere since the last compaction (the cacher keeps 75 s); its events come
    through etcd's watch, later by etcd's delivery time."""
    flags = {"watch-cache-sizes": "pods#0", "etcd-compaction-interval": "200s"}
    plane = Plane(config=KubeAPIServerConfig.from_flags(flags))
    rv = int(plane.ok("create", "pods", body=pod("p0"))["metadata"]["resourceVersion"])
    plane.run(plane.engine.now + 100)  # past the cacher's 75 s window, before the first compaction
    plane.ok("create", "pods", body=pod("p1"))
    events: list = []
    plane.ok("watch", "pods", resourceVersion=str(rv), on_events=events.extend)
    plane.run(plane.engine.now + 1)
    assert [o["metadata"]["name"] for _, o, _ in events] == ["p1"]
    plane.ok("create", "pods", body=pod("p2"))
    plane.run(450.0)  # compactions at 200 s (to nothing seen yet) and 400 s (to the revision seen at 200 s)
    assert plane.api.etcd.store.compact_revision > rv + 1  # etcd no longer holds rv + 1, where the watch would start
    _, err = plane.call("watch", "pods", resourceVersion=str(rv), on_events=events.extend)
    assert err.code == 410 and err.reason == "Expired"
    cached = Plane().api.caches["pods"].delay(100)
    etcd = plane.api.etcd.costs
    assert plane.api.caches["pods"].delay(100) == pytest.approx(cached + etcd.watch_delivery + etcd.client_rtt / 2)
