"""The whole timeline of a node failure, moment by moment, against upstream v1.35's numbers.

A five-node cluster runs a Deployment; one node stops at a known time t0. Each moment is derived from the
configuration and from when the components actually ran (monitor passes, informer deliveries), never a loose bound:

- the stopped node sends nothing after t0, so its last Lease renewal R is at or before t0;
- node-lifecycle's probe time is the first monitor pass after the renewal reached its informer; the node goes
  Unknown at the first pass later than probe + ``--node-monitor-grace-period`` (50 s);
- ``node.kubernetes.io/unreachable:NoSchedule`` lands as soon as the controller sees Unknown, before its next pass
  (doNoScheduleTaintingPass on the node update), with no 409 Conflict on the way;
- the NoExecute taint follows one pass later (processTaintBaseEviction acts on the Ready status the pass observed)
  at the first 100 ms tainting tick, the zone's limiter having a token;
- the taint eviction controller deletes each pod ``tolerationSeconds`` (300 s, DefaultTolerationSeconds) after it
  saw the NoExecute taint;
- the Deployment's replacements run on the other nodes.
"""

from __future__ import annotations

import math

import pytest

from kbench.apiserver.objects import seconds
from kbench.cluster import Cluster, ClusterSpec
from kbench.controllers import KubeControllerManagerConfiguration
from kbench.controllers.nodelifecycle import NODE_EVICTION_PERIOD, UNREACHABLE
from kbench.node.config import KubeletConfiguration
from kbench.scenarios.library import deployment
from tests.controlplane.helpers import cluster_call, reached, read_before, record

REPLICAS = 10
TOLERATION_SECONDS = 300  # plugin/pkg/admission/defaulttolerationseconds
DEFAULTS = KubeControllerManagerConfiguration()
NODE_MONITOR_GRACE_PERIOD, NODE_MONITOR_PERIOD = DEFAULTS.node_monitor_grace_period, DEFAULTS.node_monitor_period


def _ready(node) -> str:
    return next(c["status"] for c in node["status"]["conditions"] if c["type"] == "Ready")


def _taints(node) -> set[tuple[str, str]]:
    return {(t["key"], t["effect"]) for t in node["spec"].get("taints") or []}


def _pods(cluster: Cluster) -> list[dict]:
    return [o for (o, _, _) in cluster.api.caches["pods"].objects.values() if o["metadata"]["namespace"] == "apps"]


@pytest.mark.parametrize("mode", ["partition", "shutdown"])
def test_node_failure_timeline_matches_upstream(mode):
    cluster = Cluster(ClusterSpec(nodes=5, zones=1, proxy_nodes=0))
    kubelet_requests = {k.name: record(k.client) for k in cluster.kubelets}
    nlc = cluster.kcm.controller("node-lifecycle-controller")
    kcm_requests = record(nlc.client)  # node-lifecycle's client (each controller has its own)
    eviction_requests = record(cluster.kcm.controller("taint-eviction-controller").client)
    passes: list[float] = []
    monitor = nlc.monitor_node_health

    def timed_pass():
        passes.append(cluster.engine.now)
        yield from monitor()

    nlc.monitor_node_health = timed_pass
    seen: list[tuple[float, str, object]] = []  # what the controller-manager's informers delivered, and when
    cluster.kcm.informer("leases").add_handler(
        on_update=lambda old, new: seen.append((cluster.engine.now, "lease", new))
    )
    cluster.kcm.informer("nodes").add_handler(on_update=lambda old, new: seen.append((cluster.engine.now, "node", new)))

    cluster.settle()
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "apps"}}
    cluster_call(cluster, "create", "namespaces", body=namespace)
    while cluster.api.caches["serviceaccounts"].get("apps/default") is None:
        cluster.run(cluster.engine.now + 0.1)
    cluster_call(cluster, "create", "deployments", namespace="apps", body=deployment("web", REPLICAS, probe=False))
    cluster.run(cluster.engine.now + 30)
    pods = _pods(cluster)
    assert len(pods) == REPLICAS and all(p["status"]["phase"] == "Running" for p in pods)
    victim = max(cluster.kubelets, key=lambda k: sum(p["spec"]["nodeName"] == k.name for p in pods))
    doomed = {p["metadata"]["name"] for p in pods if p["spec"]["nodeName"] == victim.name}
    assert doomed

    cluster.run(cluster.engine.now + 7.3)  # the stop falls between two renewals
    t0 = cluster.engine.now
    victim.stop(shutdown=mode == "shutdown")
    cluster.run(t0 + 400)

    # 1. the stopped node sends nothing after t0; its last renewal R was due then, the next one was not
    sent = kubelet_requests[victim.name]
    assert max(r["at"] for r in reached(sent)) <= t0
    renewals = [r for r in reached(sent) if r["verb"] == "update" and r["resource"] == "leases"]
    last = renewals[-1]
    assert last["at"] <= t0 < last["answered"] + KubeletConfiguration().lease_renew_interval
    renew_time = last["body"]["spec"]["renewTime"]

    # 2. Unknown at the first monitor pass later than the probe time + the grace period
    lease_seen = next(
        t
        for t, kind, obj in seen
        if kind == "lease" and obj["metadata"]["name"] == victim.name and obj["spec"]["renewTime"] == renew_time
    )
    probe = min(p for p in passes if p > lease_seen)
    went_unknown = min(p for p in passes if p > probe + NODE_MONITOR_GRACE_PERIOD)
    assert went_unknown - probe <= NODE_MONITOR_GRACE_PERIOD + NODE_MONITOR_PERIOD
    writes = [
        r
        for r in kcm_requests
        if r["verb"] == "update" and r["resource"] == "nodes" and r["name"] == victim.name and r["at"] > t0
    ]
    unknown = writes[0]
    assert unknown["subresource"] == "status" and _ready(unknown["body"]) == "Unknown"
    assert unknown["at"] == went_unknown and unknown["code"] == 200

    # 3. NoSchedule as soon as the controller sees Unknown, before its next pass; nothing conflicts
    next_pass = min(p for p in passes if p > went_unknown)
    unknown_seen = next(
        t
        for t, kind, obj in seen
        if kind == "node" and obj["metadata"]["name"] == victim.name and _ready(obj) == "Unknown"
    )
    no_schedule = writes[1]
    assert _taints(no_schedule["body"]) == {(UNREACHABLE, "NoSchedule")}
    read = read_before(kcm_requests, no_schedule)  # SwapNodeControllerTaint reads the node first
    assert read["at"] == unknown_seen and no_schedule["at"] == read["answered"] < no_schedule["answered"] < next_pass
    assert all(r["code"] == 200 for r in kcm_requests if r["name"] == victim.name and r["at"] > t0)

    # 4. NoExecute: queued by the next pass (it observes Unknown), taken at the first 100 ms tainting tick
    no_execute = writes[2]
    assert _taints(no_execute["body"]) == {(UNREACHABLE, "NoSchedule"), (UNREACHABLE, "NoExecute")}
    read = read_before(kcm_requests, no_execute)
    assert next_pass <= read["at"] < next_pass + NODE_EVICTION_PERIOD
    assert no_execute["at"] == read["answered"]

    # 5. each pod is deleted tolerationSeconds after the taint eviction controller saw the taint
    tainted_seen = next(
        t
        for t, kind, obj in seen
        if kind == "node" and obj["metadata"]["name"] == victim.name and (UNREACHABLE, "NoExecute") in _taints(obj)
    )
    deletes = {r["name"]: r["at"] for r in eviction_requests if r["verb"] == "delete" and r["resource"] == "pods"}
    assert set(deletes) == doomed
    for at in deletes.values():
        assert at == pytest.approx(tainted_seen + TOLERATION_SECONDS, abs=1e-6)
    assert len(writes) == 3  # nothing else was written to the node

    # 6. replacements run on the other nodes
    cluster.run(cluster.engine.now + 30)
    live = [p for p in _pods(cluster) if not p["metadata"].get("deletionTimestamp")]
    assert len(live) == REPLICAS and all(p["status"]["phase"] == "Running" for p in live)
    assert all(p["spec"]["nodeName"] != victim.name for p in live)
    replaced = [p for p in live if p["metadata"]["name"] not in {q["metadata"]["name"] for q in pods}]
    assert len(replaced) == len(doomed)
    assert all(seconds(p["metadata"]["creationTimestamp"]) >= math.floor(min(deletes.values())) for p in replaced)
    node = cluster.api.caches["nodes"].get(victim.name)[0]
    assert _ready(node) == "Unknown" and _taints(node) == {(UNREACHABLE, "NoSchedule"), (UNREACHABLE, "NoExecute")}
