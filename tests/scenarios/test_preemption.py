"""The preemption scenario: its file is the built-in at its defaults, its shape, that every high-priority pod runs
by preemption (the budget respected unless nothing else is possible), and that it fails naming the high-priority pods
that never start."""

from __future__ import annotations

from pathlib import Path

import pytest

from kbench.cluster import ClusterSpec
from kbench.scenarios import library, preemption
from kbench.scenarios.preemption import fill_timeout
from kbench.scenarios.spec import Scenario, ScenarioError

FILE = Path(__file__).resolve().parents[2] / "data" / "scenarios" / "cluster" / "preemption.yaml"


def test_the_file_is_the_builtin_at_its_defaults():
    assert Scenario.from_yaml(FILE).documents() == preemption().documents()


def test_low_priority_pods_fill_every_node_and_a_share_is_under_the_budget():
    scenario = preemption(nodes=10, high_pods=4, protected=0.3, grace_period=2)
    kinds = {(o["kind"], o["metadata"]["name"]): o for o in scenario.objects}
    assert kinds[("PriorityClass", "high")]["value"] > kinds[("PriorityClass", "low")]["value"]
    protected, free = kinds[("Deployment", "low-protected")], kinds[("Deployment", "low-free")]
    assert (protected["spec"]["replicas"], free["spec"]["replicas"]) == (12, 28)  # four per node
    assert protected["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] == 2
    budget = kinds[("PodDisruptionBudget", "low-protected")]["spec"]
    assert budget == {"maxUnavailable": 0, "selector": {"matchLabels": {"app": "low-protected"}}}
    high = next(s.args["template"] for s in scenario.steps if s.action == "createObjects")
    assert high["spec"]["replicas"] == 4 and high["spec"]["template"]["spec"]["priorityClassName"] == "high"
    assert scenario.measure["podStartupLatency"].threshold == 5 + 2  # the SLO plus the victims' grace period
    assert scenario.cluster.node_capacity == {"cpu": "4", "memory": "32Gi"}


def test_the_fill_waits_as_long_as_the_controller_needs_to_create_the_low_pods():
    """4 low-priority pods a node, created at kubeAPIQPS (20/s by default): a big cluster is given twice that time,
    at least 600 s; a faster controller less."""
    assert fill_timeout(ClusterSpec(nodes=50), 50) == 600.0
    assert fill_timeout(ClusterSpec(nodes=5000), 5000) == 2 * 4 * 5000 / 20
    fast = ClusterSpec(nodes=5000, config={"kube-controller-manager": {"kubeAPIQPS": 100}})
    assert fill_timeout(fast, 5000) == 600.0
    wait = preemption(nodes=5000).steps[0]
    assert (wait.action, wait.args) == ("waitForPods", {"namespace": "low", "timeout": 2000.0})


def test_bad_values_are_refused_by_name():
    with pytest.raises(ValueError, match="protected"):
        preemption(protected=1.5)
    with pytest.raises(ScenarioError, match=r"steps\[2\]\.watchDisruptionBudgets\.timeout: expected a number >= 0"):
        library.density(nodes=1).add_steps([{"watchDisruptionBudgets": {"timeout": -1}}])
    with pytest.raises(ScenarioError, match=r"watchDisruptionBudgets\.selector: unknown field; allowed: namespace"):
        library.density(nodes=1).add_steps([{"watchDisruptionBudgets": {"selector": {}}}])


def test_high_priority_pods_that_never_start_fail_the_run_by_name():
    """Five 3-CPU pods on four 4-CPU nodes: one never fits, even by preemption."""
    result = preemption(nodes=4, high_pods=5, timeout=20).run(progress=False)
    assert not result.passed
    assert any(p.startswith("steps[3] waitForPods: timed out after 20 s;") and "high/" in p for p in result.problems)
    assert (result.counts["pdb_violations"], result.counts["pdbs_violated"]) == (0, 0)  # 4 protected pods spared


@pytest.mark.parametrize("protected, violated", [(0.0, False), (1.0, True)])
def test_every_high_priority_pod_runs_by_preemption(protected, violated):
    """Three high-priority pods on four full nodes: three preemptions of three victims each; with every low pod
    under the budget, preemption has no choice but to violate it (and the run reports it, not fails)."""
    result = preemption(nodes=4, high_pods=3, protected=protected, timeout=120).run(progress=False)
    assert result.passed, result.failing()
    assert (result.counts["preemptions"], result.counts["victims"]) == (3, 9)
    assert (result.counts["pdb_violations"], result.counts["pdbs_violated"]) == ((9, 1) if violated else (0, 0))
    scheduled = result.slis.set_index(["sli", "metric"]).loc[("PodStartupLatency", "create_to_schedule")]
    assert scheduled["count"] == 3 and scheduled["p99"] > 1.0  # the victims' 1 s grace period, waited out
    scheduler = result.cluster.scheduler
    events = [o for o, _, _ in result.cluster.api.caches["events"].objects.values() if o.get("reason") == "Preempted"]
    assert len(events) == 9 and all(e["message"].startswith("Preempted by pod ") for e in events)
    high = [o for o, _, _ in result.cluster.api.caches["pods"].objects.values() if o["metadata"]["namespace"] == "high"]
    assert all(p["status"].get("nominatedNodeName") == p["spec"]["nodeName"] for p in high)
    started = [b.pod.start_time for b in scheduler.state.pods.values()]  # the kubelets' startTime reached the cache
    assert started and all(t is not None for t in started)
