"""kube-scheduler as a component: its client takes clientConnection from the configuration; binding goes
through DefaultBinder to the apiserver."""

from __future__ import annotations

from kbench.api.core import Pod
from kbench.apiserver import APIServer
from kbench.client import Client
from kbench.profiles import load_profile
from kbench.scheduler.component import KubeScheduler
from kbench.scheduler.config import SchedulerConfig
from kbench.scheduler.framework import CycleResult
from kbench.scheduler.scheduler import Costs
from kbench.sim import Engine, Streams


def _cluster(config: SchedulerConfig | None = None) -> tuple[Engine, Client, KubeScheduler]:
    engine = Engine()
    api = APIServer(engine)
    admin = Client(api, "admin", ("system:masters",), qps=1e6, burst=10**6)
    return engine, admin, KubeScheduler(api, load_profile(), Streams(0), config)


def test_client_rate_limit_is_the_configured_client_connection():
    _, _, default = _cluster()
    assert (default.client.limiter.qps, default.client.limiter.burst) == (50.0, 100)
    config = SchedulerConfig().replace({"clientConnection.qps": 20, "clientConnection.burst": 40})
    _, _, tuned = _cluster(config)
    assert (tuned.client.limiter.qps, tuned.client.limiter.burst) == (20.0, 40)


def test_a_pending_pod_is_bound_through_the_apiserver():
    engine, admin, scheduler = _cluster()
    answers = []

    def create(resource: str, body: dict, **kwargs) -> None:
        admin.request("create", resource, lambda result, error, delay: answers.append(error), body=body, **kwargs)

    create("serviceaccounts", {"metadata": {"name": "default", "namespace": "default"}}, namespace="default")
    engine.run(until=1.0)  # ServiceAccount admission reads it before a pod is admitted
    allocatable = {"cpu": "4", "memory": "8Gi", "pods": "10"}
    create("nodes", {"metadata": {"name": "n0"}, "status": {"allocatable": allocatable}})
    create(
        "pods",
        {"metadata": {"name": "p", "namespace": "default"}, "spec": {"containers": [{"name": "c", "image": "pause"}]}},
        namespace="default",
    )
    engine.run(until=5.0)
    assert answers == [None, None, None]
    assert scheduler.pods.cache["default/p"]["spec"]["nodeName"] == "n0"
    record = scheduler.stats.pods["default/p"]
    assert record.node == "n0" and record.bound is not None and record.bound > record.assumed


def test_cycle_costs_are_the_profiles_scheduler_section():
    """Costs reads the scheduler section through UnitCosts; a walk is priced by the unit cost its plugin names."""
    profile = load_profile()
    costs = Costs.from_profile(profile)
    assert costs.cycle_overhead == profile.value("scheduler.cycle_overhead")
    assert costs.bind_latency == profile.value("scheduler.bind_latency")
    result = CycleResult(0, evaluated=10, scored=4, score_plugins=2, scans=("PodTopologySpread/score",))
    assert costs.parts(result, 100) == {
        "overhead": costs.cycle_overhead,
        "filter": 10 * costs.filter_per_node,
        "score": 8 * costs.score_per_node,
        "PodTopologySpread/score": 100 * costs.spread_score_per_node,
    }
    faster = Costs.from_profile(profile.override({"scheduler.cycle_overhead.value": 0.0001}))
    assert faster.cycle_overhead == 0.0001


def test_preempting_a_victim_already_gone_neither_deletes_nor_records_an_event():
    """PreemptPod: a 404 on the DisruptionTarget patch returns (no delete, no Preempted event)."""
    engine, _, scheduler = _cluster()
    sent = []
    request = scheduler.client.request

    def logged(verb, resource, callback, delay=0.0, **kwargs):
        sent.append((verb, resource, kwargs.get("subresource", "")))
        return request(verb, resource, callback, delay=delay, **kwargs)

    scheduler.client.request = logged
    manifest = {"metadata": {"name": "gone", "namespace": "default"}, "spec": {"containers": [{"name": "c"}]}}
    victim, preemptor = Pod.from_manifest(manifest), Pod.from_manifest({**manifest, "metadata": {"name": "high"}})
    done = scheduler._preempt(victim, preemptor, "n0")
    engine.run(until=5.0)
    writes = [s for s in sent if s[0] in ("patch", "delete", "update")]
    assert done.processed and writes == [("patch", "pods", "status")]
    assert not [
        e for e, _, _ in scheduler.client.server.caches["events"].objects.values() if e.get("reason") == "Preempted"
    ]
