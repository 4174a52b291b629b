"""DefaultPreemption: the compiled dry run against the reference on random clusters, and preemption in the
scheduler's loop (nomination, asynchronous eviction and its gate, nominated pods holding room, preemptionPolicy
Never, determinism). Upstream's tables are in test_preemption_golden.py."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kbench.api.core import Node, Pod
from kbench.scheduler.config import parse_config
from kbench.scheduler.preemption import NEVER
from kbench.scheduler.scheduler import Scheduler
from kbench.scheduler.state import ClusterState
from kbench.scheduler.whatif import preemption
from kbench.sim import Engine


def node(name: str, cpu: str = "4", pods: int = 10, taint: bool = False, unschedulable: bool = False) -> dict:
    spec: dict = {"unschedulable": unschedulable}
    if taint:
        spec["taints"] = [{"key": "dedicated", "value": "x", "effect": "NoSchedule"}]
    allocatable = {"cpu": cpu, "memory": "16Gi", "pods": str(pods)}
    return {"metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}}, "spec": spec,
            "status": {"allocatable": allocatable}}  # fmt: skip


def pod(name: str, cpu: str, priority: int, on: str = "", **extra) -> dict:
    spec: dict = {"priority": priority, "containers": [{"name": "c", "resources": {"requests": {"cpu": cpu}}}]}
    if on:
        spec["nodeName"] = on
    if extra.get("port"):
        spec["containers"][0]["ports"] = [{"containerPort": 80, "hostPort": extra["port"]}]
    if extra.get("policy"):
        spec["preemptionPolicy"] = extra["policy"]
    manifest = {"metadata": {"name": name, "labels": extra.get("labels", {})}, "spec": spec}
    status = {}
    if extra.get("start") is not None:
        status["startTime"] = f"2026-01-01T00:{extra['start'] // 60:02d}:{extra['start'] % 60:02d}Z"
    if extra.get("nominated"):
        status["nominatedNodeName"] = extra["nominated"]
    if status:
        manifest["status"] = status
    return manifest


def pdb(name: str, app: str, allowed: int) -> dict:
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": name},
            "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": app}}},
            "status": {"disruptionsAllowed": allowed}}  # fmt: skip


@st.composite
def clusters(draw):
    """Up to 12 nodes with up to 6 pods each (priorities, start times, two apps under budgets), nominated pods,
    a preemptor (sometimes with a host port, which sends the compiled path to the reference)."""
    n = draw(st.integers(1, 12))
    nodes = [node(f"n{i}", draw(st.sampled_from(["2", "4"])), draw(st.integers(2, 6)),
                  draw(st.integers(0, 6)) == 0, draw(st.integers(0, 8)) == 0) for i in range(n)]  # fmt: skip
    pods, k = [], 0
    for i in range(n):
        for _ in range(draw(st.integers(0, 5))):
            labels = {"app": draw(st.sampled_from(["a", "b", "c"]))} if draw(st.integers(0, 3)) else {}
            start = draw(st.one_of(st.none(), st.integers(0, 20)))
            pods.append(pod(f"p{k}", draw(st.sampled_from(["100m", "500m", "1"])), draw(st.integers(0, 3)),
                            f"n{i}", labels=labels, start=start))  # fmt: skip
            k += 1
    for j in range(draw(st.integers(0, 2))):
        pods.append(pod(f"nom{j}", "1", draw(st.integers(0, 5)), nominated=f"n{draw(st.integers(0, n - 1))}"))
    budgets = [pdb(f"b{j}", app, draw(st.integers(0, 2))) for j, app in enumerate(("a", "b")) if draw(st.booleans())]
    port = 8080 if draw(st.integers(0, 5)) == 0 else 0
    preemptor = pod("hi", draw(st.sampled_from(["1", "2", "3"])), draw(st.integers(1, 4)), port=port)
    args = {
        "minCandidateNodesPercentage": draw(st.integers(0, 100)),
        "minCandidateNodesAbsolute": draw(st.integers(1, 5)),
    }
    config = {"profiles": [{"pluginConfig": [{"name": "DefaultPreemption", "args": args}]}]}
    return nodes, preemptor, pods, budgets, config, draw(st.integers(0, n - 1))


def summary(outcome) -> tuple:
    return (
        outcome.node,
        [p.key for p in outcome.victims],
        [(c.node, [p.key for p in c.victims], c.num_pdb_violations) for c in outcome.candidates],
        outcome.message,
        outcome.statuses,
        outcome.evaluations,
    )


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(clusters())
def test_the_compiled_dry_run_equals_the_reference(cluster):
    nodes, preemptor, pods, budgets, config, offset = cluster
    args = dict(pods=pods, pdbs=budgets, config=config, offset=offset, now=3600.0)
    assert summary(preemption(nodes, preemptor, compiled=True, **args)) == summary(
        preemption(nodes, preemptor, compiled=False, **args)
    )


def test_a_budget_is_broken_only_when_no_node_spares_it():
    nodes = [node("n1", "2"), node("n2", "2")]
    pods = [pod("a1", "2", 0, "n1", labels={"app": "a"}), pod("b1", "2", 0, "n2", labels={"app": "b"})]
    spared = preemption(nodes, pod("hi", "2", 5), pods, [pdb("b-a", "a", 0)])
    assert (spared.node, [p.name for p in spared.victims]) == ("n2", ["b1"])
    broken = preemption(nodes, pod("hi", "2", 5), pods, [pdb("b-a", "a", 0), pdb("b-b", "b", 0)])
    assert [c.num_pdb_violations for c in broken.candidates] == [1, 1] and broken.node == "n1"


def _scheduler(nodes: list[dict], evict_after: float | None = None) -> tuple[Engine, Scheduler]:
    """A scheduler on ``nodes``; with ``evict_after``, each victim goes that many seconds after it is asked to."""
    engine = Engine()
    state = ClusterState(Node.from_manifest(m) for m in nodes)
    scheduler = Scheduler(engine, state, parse_config())
    if evict_after is not None:

        def slow(victim, preemptor, node_name):
            done = engine.event()

            def gone(_):
                scheduler.delete_pod(victim.key)
                done.succeed()

            engine.schedule(evict_after, gone)
            return done

        scheduler.preempter = slow
    return engine, scheduler


def _fill(engine: Engine, scheduler: Scheduler, pods: list[dict]) -> None:
    for m in pods:
        scheduler.add_pod(Pod.from_manifest(m))
    engine.run(until=engine.now + 5)


def test_a_high_priority_pod_evicts_lower_ones_and_binds_on_its_nominated_node():
    engine, scheduler = _scheduler([node("n1"), node("n2")])
    _fill(engine, scheduler, [pod(f"low{i}", "1", 0) for i in range(8)])
    scheduler.add_pod(Pod.from_manifest(pod("hi", "3", 10)))
    engine.run(until=engine.now + 30)
    stats, record = scheduler.stats, scheduler.stats.pods["default/hi"]
    assert record.bound is not None and record.node == record.nominated
    assert (stats.preemption_attempts, stats.preemptions, stats.victims) == (1, 1, 3)
    assert sum(r.preempted for r in stats.pods.values()) == 3
    assert len(scheduler.framework.nominator) == 0 and not scheduler.preempting


def test_the_preemptor_waits_for_its_victims_and_nobody_takes_its_room():
    """Victims take 20 s to go (the PreEnqueue gate holds the preemptor); a pod of lower priority arriving meanwhile
    does not get the room the nomination holds."""
    engine, scheduler = _scheduler([node("n1", "2")], evict_after=20.0)
    _fill(engine, scheduler, [pod("low0", "1", 0), pod("low1", "1", 0)])
    scheduler.add_pod(Pod.from_manifest(pod("hi", "2", 10)))
    engine.run(until=engine.now + 10)
    assert scheduler.running_preemption(Pod.from_manifest(pod("hi", "2", 10)))
    assert scheduler.stats.pods["default/hi"].bound is None
    engine.run(until=engine.now + 11)  # the victims are gone, then the middle pod arrives
    scheduler.add_pod(Pod.from_manifest(pod("mid", "1", 5)))
    engine.run(until=engine.now + 30)
    records = scheduler.stats.pods
    assert records["default/hi"].node == "n1" and records["default/mid"].bound is None
    assert "preemption: " in records["default/mid"].message


@pytest.mark.parametrize("policy, preempts", [("Never", False), ("PreemptLowerPriority", True)])
def test_preemption_policy_never_waits_instead(policy, preempts):
    engine, scheduler = _scheduler([node("n1", "2")])
    _fill(engine, scheduler, [pod("low0", "2", 0)])
    scheduler.add_pod(Pod.from_manifest(pod("hi", "2", 10, policy=policy)))
    engine.run(until=engine.now + 30)
    record = scheduler.stats.pods["default/hi"]
    assert (record.bound is not None) == preempts and scheduler.stats.preemptions == int(preempts)
    if not preempts:
        assert record.message == f"0/1 nodes are available: 1 Insufficient cpu. preemption: {NEVER}."


def test_equal_priority_pods_get_upstreams_message_and_no_preemption():
    engine, scheduler = _scheduler([node("n1", "2"), node("n2", "2")])
    _fill(engine, scheduler, [pod("a", "2", 0), pod("b", "2", 0), pod("c", "2", 0)])
    record = next(r for r in scheduler.stats.pods.values() if r.bound is None)
    assert record.message == (
        "0/2 nodes are available: 2 Insufficient cpu. "
        "preemption: 0/2 nodes are available: 2 No preemption victims found for incoming pod.."
    )
    assert scheduler.stats.preemptions == 0 and scheduler.stats.preemption_attempts >= 1


def test_the_same_seed_preempts_the_same_pods():
    def run() -> list:
        engine, scheduler = _scheduler([node(f"n{i}") for i in range(6)])
        _fill(engine, scheduler, [pod(f"low{i}", "1", i % 3) for i in range(24)])
        for i in range(4):
            scheduler.add_pod(Pod.from_manifest(pod(f"hi{i}", "3", 10)))
        engine.run(until=engine.now + 60)
        return sorted((k, r.node, r.preempted, r.nominated) for k, r in scheduler.stats.pods.items())

    first = run()
    assert first == run() and sum(p for _, _, p, _ in first) >= 4


def test_a_higher_preemptor_on_the_same_node_clears_the_lower_nomination():
    engine, scheduler = _scheduler([node("n1", "2")], evict_after=20.0)
    cleared: list[str] = []
    scheduler.on_nomination_cleared = lambda p: cleared.append(p.key)
    _fill(engine, scheduler, [pod("low0", "1", 0), pod("low1", "1", 0)])
    scheduler.add_pod(Pod.from_manifest(pod("mid", "2", 5)))
    engine.run(until=engine.now + 2)
    assert scheduler.stats.pods["default/mid"].nominated == "n1"
    scheduler.add_pod(Pod.from_manifest(pod("hi", "2", 10)))
    engine.run(until=engine.now + 60)
    records = scheduler.stats.pods
    assert cleared == ["default/mid"] and records["default/hi"].node == "n1" and records["default/mid"].bound is None


def test_manifests_naming_a_node_that_is_not_there_are_refused_by_field():
    nodes = [node("n1")]
    with pytest.raises(ValueError, match="Pod default/lost: status.nominatedNodeName 'n9' is not one of the nodes"):
        preemption(nodes, pod("hi", "1", 5), [pod("lost", "1", 5, nominated="n9")])
    with pytest.raises(ValueError, match="Pod default/b: spec.nodeName 'n9' is not one of the nodes"):
        preemption(nodes, pod("hi", "1", 5), [pod("b", "1", 0, "n9")])
