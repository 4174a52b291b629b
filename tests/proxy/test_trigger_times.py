"""kube-proxy's network programming latency trigger times in virtual time, against upstream's
EndpointsChangeTracker (pkg/proxy/endpointschangetracker.go EndpointSliceUpdate / checkoutTriggerTimes) and
EndpointSliceCache (pkg/proxy/endpointslicecache.go esDataChanged):

- an EndpointSlice add or update that changes the cached slice appends its ``last-change-trigger-time`` to its
  Service's list, if later than the tracker's start; every one is observed after the next successful sync;
- a removal carries no trigger time (the deleted slice's annotation dates from its last update) and drops the
  Service's pending ones; a Service change carries none;
- an event that does not change the cached slice is no change: no trigger time, no sync.
"""

from __future__ import annotations

import pytest

from kbench.apiserver import APIServer
from kbench.apiserver.objects import timestamp
from kbench.client import Client
from kbench.cluster import Cluster, ClusterSpec
from kbench.controllers.endpointslice import TRIGGER
from kbench.proxy.informed import NodeProxy
from kbench.sim import Engine

FEW_SECONDS = 5.0
SERVICE = {
    "metadata": {"name": "web"},
    "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]},
}
DEPLOYMENT = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web"},
    "spec": {
        "replicas": 2,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "pause"}]}},
    },
}


def _call(engine: Engine, client: Client, verb: str, resource: str, **kwargs):
    """Run one request to completion and return its result."""
    box: dict = {}
    client.request(verb, resource, lambda result, error, delay: box.setdefault("r", (result, error)), **kwargs)
    while "r" not in box:
        engine.run(until=engine.now + 0.01)
    result, error = box["r"]
    assert error is None, error
    return result


def _slice(name: str, trigger: float, addresses: tuple[str, ...] = ("10.128.1.2",)) -> dict:
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": name,
            "labels": {"kubernetes.io/service-name": "web"},
            "annotations": {TRIGGER: timestamp(trigger, micro=True)},
        },
        "addressType": "IPv4",
        "endpoints": [{"addresses": [a], "conditions": {"ready": True}, "nodeName": "node-1"} for a in addresses],
        "ports": [{"name": "", "port": 8080, "protocol": "TCP"}],
    }


def test_deleting_a_deployment_then_its_service_adds_no_stale_sample(monkeypatch):
    """3 nodes, a Service over a 2-pod Deployment; 100 s later the Deployment is deleted, 100 s after that the
    Service (whose EndpointSlice the garbage collector then deletes). Before the fix the slice deletion gave every
    kube-proxy a sample of ~100 s (now minus the deleted slice's last trigger time)."""
    seen: list[tuple[str, bool, str | None]] = []
    handle = NodeProxy._slice

    def spy(self, es, deleted=False):
        seen.append((self.config.node_name, deleted, (es["metadata"].get("annotations") or {}).get(TRIGGER)))
        handle(self, es, deleted)

    monkeypatch.setattr(NodeProxy, "_slice", spy)
    cluster = Cluster(ClusterSpec(nodes=3))
    cluster.settle()
    engine, admin = cluster.engine, cluster.admin
    _call(engine, admin, "create", "services", namespace="default", body=SERVICE)
    _call(engine, admin, "create", "deployments", namespace="default", body=DEPLOYMENT)
    engine.run(until=engine.now + 100.0)
    for proxy in cluster.proxies:  # adds and updates: one sample per slice version carrying a trigger time
        updates = [s for s in seen if s[0] == proxy.config.node_name and not s[1] and s[2]]
        assert len(updates) >= 2 and len(proxy.latencies) == len(updates)
        assert min(proxy.latencies) >= 0 and max(proxy.latencies) < FEW_SECONDS
    before = [list(p.latencies) for p in cluster.proxies]

    _call(engine, admin, "delete", "deployments", namespace="default", name="web")
    engine.run(until=engine.now + 100.0)
    assert not _call(engine, admin, "list", "pods", namespace="default")["items"]
    for proxy, earlier in zip(cluster.proxies, before, strict=True):
        assert proxy.latencies[: len(earlier)] == earlier  # the samples already taken are unchanged
        assert len(proxy.latencies) > len(earlier) and max(proxy.latencies) < FEW_SECONDS
    after_deployment = [list(p.latencies) for p in cluster.proxies]

    _call(engine, admin, "delete", "services", namespace="default", name="web")
    engine.run(until=engine.now + 100.0)
    assert not _call(engine, admin, "list", "endpointslices", namespace="default")["items"]
    assert sum(1 for s in seen if s[1]) == len(cluster.proxies)  # every kube-proxy saw the slice deleted
    for proxy, earlier in zip(cluster.proxies, after_deployment, strict=True):
        assert "default/web" not in proxy.proxy.work.per_service  # the deletion reached kube-proxy...
        assert proxy.latencies == earlier  # ...without a sample: a removal carries no trigger time


@pytest.fixture
def node():
    """A kube-proxy on a bare apiserver (no controllers): the test writes the Service and its slices."""
    engine = Engine()
    api = APIServer(engine)
    admin = Client(api, "admin", ("system:masters",), qps=1e9, burst=10**9)
    proxy = NodeProxy(api, "node-1", "192.168.0.11")
    _call(engine, admin, "create", "services", namespace="default", body=SERVICE)
    engine.run(until=5.0)
    return engine, admin, proxy


def _write(engine, admin, verb: str, body: dict) -> dict:
    kwargs = {"name": body["metadata"]["name"]} if verb != "create" else {}
    if verb == "delete":
        return _call(engine, admin, verb, "endpointslices", namespace="default", **kwargs)
    return _call(engine, admin, verb, "endpointslices", namespace="default", body=body, **kwargs)


def _sync_now(engine, admin) -> None:
    """A change without a trigger time (a new slice without the annotation): kube-proxy syncs at once and the
    changes written in the next second (minSyncPeriod) wait for one sync together."""
    untimed = _slice(f"web-untimed-{engine.now:.0f}", 0.0, ("10.128.9.2",))
    del untimed["metadata"]["annotations"]
    _write(engine, admin, "create", untimed)


def test_every_trigger_time_before_a_sync_is_observed_not_only_the_earliest(node):
    engine, admin, proxy = node
    _write(engine, admin, "create", _slice("web-a", engine.now))
    engine.run(until=engine.now + 5.0)
    assert len(proxy.latencies) == 1
    _sync_now(engine, admin)
    syncs = len(proxy.proxy.syncs)
    first = engine.now
    _write(engine, admin, "update", _slice("web-a", first, ("10.128.1.2", "10.128.1.3")))
    _write(engine, admin, "create", _slice("web-b", first + 0.01, ("10.128.2.2",)))
    engine.run(until=engine.now + 5.0)
    assert len(proxy.proxy.syncs) == syncs + 1  # both changes wait out minSyncPeriod (1 s): one sync...
    sync = proxy.proxy.syncs[-1]
    end = sync.start + sync.duration
    assert proxy.latencies[1:] == pytest.approx([end - first, end - first - 0.01], abs=2e-6)  # ...both observed


def test_a_removal_drops_the_services_pending_trigger_times(node):
    """EndpointSliceUpdate with removeSlice: ``delete(ect.lastChangeTriggerTimes, namespacedName)``, so an update
    of another slice of the Service, pending in the same sync, is not observed either."""
    engine, admin, proxy = node
    _write(engine, admin, "create", _slice("web-a", engine.now))
    _write(engine, admin, "create", _slice("web-b", engine.now, ("10.128.2.2",)))
    engine.run(until=engine.now + 5.0)
    samples = len(proxy.latencies)
    assert samples == 2
    _sync_now(engine, admin)
    syncs = len(proxy.proxy.syncs)
    _write(engine, admin, "update", _slice("web-b", engine.now, ("10.128.2.3",)))
    _write(engine, admin, "delete", _slice("web-a", 0.0))
    engine.run(until=engine.now + 5.0)
    assert len(proxy.proxy.syncs) == syncs + 1 and len(proxy.latencies) == samples
    ports = proxy.ports("default/web")
    assert {e.ip for sp in ports for e in sp.endpoints} == {"10.128.2.3", "10.128.9.2"}  # the changes were synced


def test_an_unchanged_slice_is_no_change_and_a_removed_unknown_slice_neither(node):
    """esDataChanged: the cached object again (a relist) or the removal of a slice not in the cache needs no
    sync and carries no trigger time."""
    engine, admin, proxy = node
    held = _write(engine, admin, "create", _slice("web-a", engine.now))
    engine.run(until=engine.now + 5.0)
    samples, syncs = len(proxy.latencies), len(proxy.proxy.syncs)
    proxy._slice(proxy.slices.cache.get("default/web-a"))
    proxy._slice({**held, "metadata": {**held["metadata"], "name": "web-gone"}}, deleted=True)
    engine.run(until=engine.now + 5.0)
    assert (len(proxy.latencies), len(proxy.proxy.syncs)) == (samples, syncs)


def test_trigger_times_before_the_tracker_started_are_not_observed(node):
    """``t.After(ect.trackerStartTime)``: a kube-proxy started after a slice's last change syncs it but observes
    no latency for it."""
    engine, admin, early = node
    _write(engine, admin, "create", _slice("web-a", engine.now))
    engine.run(until=engine.now + 5.0)
    late = NodeProxy(early.client.server, "node-2", "192.168.0.12")
    engine.run(until=engine.now + 5.0)
    assert len(early.latencies) == 1
    assert "default/web" in late.proxy.work.per_service and late.latencies == []
