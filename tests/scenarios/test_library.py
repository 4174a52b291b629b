"""Every built-in scenario end to end on a small cluster, checking what it is about, not just that it ran."""

from __future__ import annotations

import pandas as pd
import pytest

from kbench.apiserver.objects import seconds
from kbench.controllers.base import pod_ready
from kbench.scenarios import library
from kbench.scheduler.config import SchedulerConfig


def _pods(result, namespace):
    return [
        o for (o, _, _) in result.cluster.api.caches["pods"].objects.values() if o["metadata"]["namespace"] == namespace
    ]


def test_density_starts_every_pod_within_the_slo():
    result = library.density(nodes=20, pods_per_node=5, rate=20).run(progress=False)
    assert result.counts["pods_started"] == 100 and result.passed
    row = result.slis.set_index(["sli", "metric"]).loc[("PodStartupLatency", "pod_startup")]
    assert 0.3 < row["p50"] < row["p99"] < 5.0
    throughput = result.slis.set_index("sli").loc["SchedulingThroughput"]
    assert throughput["max"] == pytest.approx(20, abs=2.5)  # pods are created at 20/s and scheduled as they come


def test_same_seed_same_slis_other_seed_different():
    a = library.density(nodes=10, pods_per_node=3, seed=7).run(progress=False).slis
    b = library.density(nodes=10, pods_per_node=3, seed=7).run(progress=False).slis
    c = library.density(nodes=10, pods_per_node=3, seed=8).run(progress=False).slis
    pd.testing.assert_frame_equal(a, b)
    assert not a[["p50", "p99"]].equals(c[["p50", "p99"]])


def test_node_failure_evicts_after_the_toleration_and_replaces_pods():
    result = library.node_failure(nodes=10, fraction=0.2, replicas=40).run(progress=False)
    cluster = result.cluster
    stopped = {k.name for k in cluster.kubelets if not k.running}
    assert len(stopped) == 2
    pods = _pods(result, "apps")
    live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
    evicted = [p for p in pods if p["metadata"].get("deletionTimestamp")]
    assert len(live) == 40 and all(p["spec"]["nodeName"] not in stopped for p in live)
    assert all(p["status"]["phase"] == "Running" for p in live)
    assert evicted and all(p["spec"]["nodeName"] in stopped for p in evicted)  # stuck Terminating, as upstream
    for name in stopped:  # NotReady (Unknown), tainted
        node = cluster.api.caches["nodes"].get(name)[0]
        assert {(t["key"], t["effect"]) for t in node["spec"]["taints"]} == {
            ("node.kubernetes.io/unreachable", "NoSchedule"),
            ("node.kubernetes.io/unreachable", "NoExecute"),
        }
    # eviction: grace period (50 s) + default toleration (300 s) after the stop
    stop_time = min(seconds(p["metadata"]["deletionTimestamp"]) - 1 for p in evicted)  # grace 1 s
    assert 340 < stop_time - result.cluster.watcher.pods[next(iter(result.cluster.watcher.pods))].create < 420


def test_rolling_update_moves_every_pod_to_the_new_image():
    result = library.rolling_update(nodes=8, replicas=12).run(progress=False)
    pods = [p for p in _pods(result, "apps") if not p["metadata"].get("deletionTimestamp")]
    assert len(pods) == 12 and all(pod_ready(p) for p in pods)
    assert {p["spec"]["containers"][0]["image"] for p in pods} == {"nginx:1.28"}
    assert result.counts["pods_created"] == 24
    npl = result.slis.set_index(["sli", "metric"]).loc["NetworkProgrammingLatency", "network_programming_latency"]
    assert npl["count"] > 0 and npl["p99"] < 30


def test_job_waves_complete_and_are_cleaned_up_by_ttl():
    result = library.job_waves(nodes=6, waves=2, completions=10, parallelism=5, run_for=5, gap=60).run(progress=False)
    assert result.counts["pods_created"] == 20
    assert not result.cluster.api.caches["jobs"].objects  # finished and deleted after ttlSecondsAfterFinished


def test_load_balancer_services_get_cloud_load_balancers():
    result = library.load_balancers(nodes=4, services=3, replicas=2).run(progress=False)
    services = [
        o for (o, _, _) in result.cluster.api.caches["services"].objects.values() if o["metadata"]["namespace"] == "lb"
    ]
    assert len(services) == 3
    assert all(s["status"]["loadBalancer"]["ingress"][0]["ip"] for s in services)
    assert len(result.cluster.cloud.load_balancers) == 3


def test_probe_storm_restarts_containers_and_flaps_endpoints():
    result = library.probe_storm(nodes=3, pods_per_node=2, fails_after=20).run(progress=False)
    assert result.counts["container_restarts"] >= 6 * 3
    statuses = [p["status"]["containerStatuses"][0] for p in _pods(result, "storm")]
    assert any("CrashLoopBackOff" in str(s["state"]) or s["restartCount"] >= 3 for s in statuses)
    npl = result.slis.set_index(["sli", "metric"]).loc["NetworkProgrammingLatency", "network_programming_latency"]
    assert npl["count"] > 6  # readiness changes reached the proxies


def test_scheduler_perf_pods_on_the_whole_cluster():
    result = library.scheduler_perf(nodes=50, pods=200).run(progress=False)
    assert result.counts["pods_bound"] == 200 and result.counts["pods_started"] == 200
    nodes = {p["spec"]["nodeName"] for p in _pods(result, "sched")}
    assert len(nodes) == 50  # spread by NodeResourcesFit LeastAllocated


def test_scheduler_perf_runs_the_scheduler_client_at_scheduler_perfs_rate_and_meets_its_slos_at_its_defaults():
    """scheduler_perf's scheduler client runs at QPS and burst 5000; at the component's defaults (50, 100) the 1,000
    pods of the defaults were bound at 50 a second, and their p99 startup latency came out at 19 s (CL2's SLO: 5 s)."""
    result = library.scheduler_perf().run(progress=False)
    limiter = result.cluster.scheduler.client.limiter
    assert (limiter.qps, limiter.burst) == (5000.0, 5000)
    assert result.counts["pods_started"] == 1000 and result.passed
    startup = result.slis.set_index(["sli", "metric"]).loc["PodStartupLatency", "pod_startup"]
    assert startup["p99"] < 5.0
    given = library.scheduler_perf(nodes=5, pods=5, config={"kube-scheduler": {"clientConnection.qps": 20}})
    config = given.cluster.config["kube-scheduler"]  # a field the caller sets is kept; the others still at 5000
    assert (config.client_connection_qps, config.client_connection_burst) == (20.0, 5000)
    whole = SchedulerConfig(client_connection_qps=40.0)  # a configuration given whole is taken as it is
    given = library.scheduler_perf(nodes=5, pods=5, config={"kube-scheduler": whole})
    assert given.cluster.config["kube-scheduler"] is whole


def test_load_churn_keeps_pods_coming_and_going():
    result = library.load(nodes=10, deployments=3, replicas=4, churn=2, duration=30).run(progress=False)
    assert result.counts["pods_created"] == 12 + 60
    assert not _pods(result, "load-churn")  # created at 2/s, each deleted 30 s after creation: all gone by the end
    assert result.passed


def test_scheduler_perf_topology_spreading_on_the_cluster_respects_max_skew():
    from collections import Counter

    result = library.scheduler_perf("TopologySpreading", nodes=30, pods=90, init_pods=30).run(progress=False)
    pods = [
        o for (o, _, _) in result.cluster.api.caches["pods"].objects.values() if o["metadata"]["namespace"] == "sched"
    ]
    zones = Counter(
        result.cluster.api.caches["nodes"].get(p["spec"]["nodeName"])[0]["metadata"]["labels"][
            "topology.kubernetes.io/zone"
        ]
        for p in pods
    )
    assert sum(zones.values()) == 90 and max(zones.values()) - min(zones.values()) <= 5
    with pytest.raises(ValueError, match="one of SchedulingBasic, TopologySpreading"):
        library.scheduler_perf("SchedulingDaemonset")


def test_pods_that_fit_nowhere_get_upstreams_unschedulable_condition():
    from kbench.scenarios.spec import Scenario

    big = {
        "apiVersion": "v1",
        "kind": "Pod",
        "spec": {
            "containers": [
                {"name": "c", "image": "registry.k8s.io/pause:3.10", "resources": {"requests": {"cpu": "64"}}}
            ]
        },
    }
    scenario = Scenario.from_dict(
        {
            "apiVersion": "kbench.io/v1",
            "kind": "Scenario",
            "cluster": {"nodes": 3},
            "steps": [{"createPods": {"count": 1, "template": big}}, {"wait": {"seconds": 5}}],
        }
    )
    result = scenario.run(progress=False)
    pod = next(
        o for (o, _, _) in result.cluster.api.caches["pods"].objects.values() if o["metadata"]["namespace"] == "default"
    )
    condition = next(c for c in pod["status"]["conditions"] if c["type"] == "PodScheduled")
    assert condition["status"] == "False" and condition["reason"] == "Unschedulable"
    assert condition["message"] == (  # a real cluster's message: DefaultPreemption's appended, double period included
        "0/3 nodes are available: 3 Insufficient cpu. "
        "preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling.."
    )
    assert result.counts["pods_started"] == 0
