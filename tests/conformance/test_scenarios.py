"""Conformance of every built-in scenario (registered in ``kbench.scenarios.library.SCENARIOS``): it runs at a
tiny size with every SLI it expects computed, the same seed gives the same results, what ``show`` prints is
what runs, and the verdict fails, naming the pods, when pods never start. A new built-in gets these checks by
being registered (and given a tiny size here)."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml

from kbench.scenarios import library
from kbench.scenarios.spec import Scenario

TINY = {
    "density": {"nodes": 5, "pods_per_node": 3},
    "load": {"nodes": 5, "deployments": 2, "replicas": 3, "duration": 20},
    "node-failure": {"nodes": 10, "fraction": 0.2, "replicas": 20},
    "rolling-update": {"nodes": 5, "replicas": 6},
    "job-waves": {"nodes": 5, "waves": 2, "completions": 6, "parallelism": 3, "gap": 40},
    "load-balancers": {"nodes": 5, "services": 2, "replicas": 2},
    "probe-storm": {"nodes": 4, "pods_per_node": 2},
    "preemption": {"nodes": 4, "high_pods": 2},
    "scheduler-perf": {"nodes": 20, "pods": 40, "init_pods": 10},
}
NEVER_STARTS = {"runtime.containerd.sandbox_create.median": 1e6, "runtime.containerd.sandbox_create.p99": 2e6}
"""A CRI runtime whose RunPodSandbox takes weeks: every pod is scheduled and none ever runs."""
SCENARIOS = sorted(library.SCENARIOS)


def test_every_registered_scenario_has_a_tiny_size():
    assert sorted(TINY) == SCENARIOS
    for name, params in TINY.items():
        assert set(params) <= {p.name for p in library.SCENARIOS[name].params}, name


@pytest.fixture(scope="module", params=SCENARIOS)
def tiny(request):
    name = request.param
    return name, library.SCENARIOS[name](**TINY[name]).run(progress=False)


def test_runs_at_a_tiny_size_with_every_sli_met_and_nothing_left_waiting(tiny):
    name, result = tiny
    assert result.passed, (name, result.failing())
    assert result.counts["pods_started"] > 0 and result.counts["pods_never_started"] == 0
    verdicts = set(result.slis["verdict"])
    assert verdicts <= {"met", "not measured", "no SLO"}, (name, verdicts)
    assert "met" in verdicts  # at least one SLI was measured against its SLO
    measured = result.slis[result.slis["verdict"] == "met"]
    assert (measured["count"] > 0).all() and measured["p99"].notna().all()


def test_the_same_seed_gives_the_same_results(tiny):
    name, result = tiny
    again = library.SCENARIOS[name](**TINY[name]).run(progress=False)
    pd.testing.assert_frame_equal(result.slis, again.slis)
    assert result.counts == again.counts and result.events == again.events


@pytest.mark.parametrize("name", SCENARIOS)
def test_what_show_prints_is_what_runs(name):
    sc = library.SCENARIOS[name](**TINY[name])
    assert sc.name == name  # @builtin's name and the one its builder gives built_in_scenario are the same
    text = yaml.safe_dump_all(sc.documents(), sort_keys=False)
    again = Scenario.from_text(text, f"{name}.yaml")
    assert again.documents() == sc.documents()
    assert again.cluster == sc.cluster and again.steps == sc.steps and again.objects == sc.objects


@pytest.mark.parametrize("name", SCENARIOS)
def test_the_verdict_fails_naming_the_pods_when_pods_never_start(name):
    sc = library.SCENARIOS[name](**TINY[name], overrides=NEVER_STARTS)
    result = sc.run(progress=False)
    assert not result.passed
    assert result.counts["pods_started"] == 0
    assert any("never started" in p or "not Running" in p or "not ready" in p for p in result.problems), result.problems
    assert result.verdict().startswith("FAILED")
    assert result.summary()["sim_slo_passed"] is False
