"""Golden tables ported from upstream's plugin tests: filter statuses and final scores per node."""

from __future__ import annotations

import numpy as np
import pytest

from kbench.scheduler.config import PLUGINS as CONFIG_PLUGINS
from kbench.scheduler.config import parse_config
from kbench.scheduler.framework import Framework
from kbench.scheduler.interface import CODE_NAMES, SKIP, SUCCESS, Handle, Rejection
from kbench.scheduler.kernel import KernelScheduler
from kbench.scheduler.plugins.registry import new_plugin
from tests.scheduler.golden_cases import Case, build, cases

CASES = cases()


def _plugin(case: Case, state):
    return new_plugin(case.plugin, case.args, Handle(state))


def run_filter(case: Case) -> dict[str, dict]:
    state, pod = build(case)
    plugin = _plugin(case, state)
    try:
        ctx = plugin.prefilter(pod)
    except Rejection as rejection:
        if case.plugin != "NodeAffinity":
            return {
                n.name: {"code": CODE_NAMES[rejection.code], "reasons": list(rejection.reasons)} for n in state.nodes
            }
        # upstream's NodeAffinity test runs Filter even when PreFilter rejects the pod
        ctx = (pod.affinity.get("nodeAffinity") or {}).get("requiredDuringSchedulingIgnoredDuringExecution")
    if ctx is SKIP:
        return {n.name: {"code": "Success"} for n in state.nodes}
    codes = plugin.filter(ctx, pod)
    return {
        n.name: (
            {"code": "Success"}
            if codes[i] == SUCCESS
            else {"code": CODE_NAMES[codes[i]], "reasons": list(plugin.reasons(ctx, pod, i))}
        )
        for i, n in enumerate(state.nodes)
    }


def run_score(case: Case) -> dict[str, int]:
    state, pod = build(case)
    plugin = _plugin(case, state)
    names = case.raw.get("scoredNodes") or [n.name for n in state.nodes]
    nodes = np.array([state.index[n] for n in names], np.int64)
    ctx = plugin.prescore(pod, nodes)
    if ctx is SKIP:
        return dict.fromkeys(names, 0)
    final = plugin.normalize_score(plugin.score(ctx, pod, nodes), ctx, nodes)
    return dict(zip(names, final.tolist()))


def prefilter_code(case: Case) -> str:
    state, pod = build(case)
    try:
        ctx = _plugin(case, state).prefilter(pod)
    except Rejection as rejection:
        return CODE_NAMES[rejection.code]
    return "Skip" if ctx is SKIP else "Success"


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_reference_plugins_match_upstream(case: Case):
    if case.raw.get("skip"):
        pytest.skip(case.raw["skip"])
    want = case.raw["want"]
    if case.extension == "filter":
        got = run_filter(case)
        expected = {
            node: {"code": w["code"], **({"reasons": w["reasons"]} if w.get("reasons") else {})}
            for node, w in want.items()
        }
        assert {n: got[n] for n in expected} == expected
        if "wantPreFilter" in case.raw:
            assert prefilter_code(case) == case.raw["wantPreFilter"]["code"]
    else:
        got = run_score(case)
        assert {n: got[n] for n in want} == want


def _kernel_for(case: Case, state, point: str):
    """A profile with only the plugin under test, at ``point`` ("filter" or "score"), and the kernel on it."""
    plugins = {
        "multiPoint": {"disabled": [{"name": "*"}]},
        "queueSort": {"enabled": [{"name": "PrioritySort"}]},
        "bind": {"enabled": [{"name": "DefaultBinder"}]},
    }
    implements = CONFIG_PLUGINS[case.plugin]
    points = ("preFilter", "filter") if point == "filter" else ("preScore", "score")
    for p in points:
        if p in implements:
            plugins[p] = {"enabled": [{"name": case.plugin, "weight": 1}]}
    config = parse_config(
        {"profiles": [{"plugins": plugins, "pluginConfig": [{"name": case.plugin, "args": case.raw_args}]}]}
    )
    return KernelScheduler(Framework(config.profile(), state, 100))


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_kernel_matches_upstream(case: Case):
    """The same tables through the fused kernel: its feasible set, or its scores with weight 1."""
    if case.raw.get("skip"):
        pytest.skip(case.raw["skip"])
    state, pod = build(case)
    kernel = _kernel_for(case, state, case.extension)
    try:
        plan = kernel.plan(pod)
    except Rejection:
        assert all(w["code"] != "Success" for w in case.raw["want"].values())
        return
    if case.extension == "filter":
        feasible, _ = kernel.evaluate(pod, plan)
        got = {state.nodes[i].name for i in feasible.tolist()}
        assert got == {n for n, w in case.raw["want"].items() if w["code"] == "Success"}
    else:
        names = case.raw.get("scoredNodes") or [n.name for n in state.nodes]
        plan.inputs.static_ok[:] &= np.isin(np.arange(state.num_nodes), [state.index[n] for n in names])
        nodes, totals = kernel.evaluate(pod, plan)
        got = {state.nodes[i].name: int(t) for i, t in zip(nodes.tolist(), totals.tolist())}
        assert {n: got[n] for n in case.raw["want"]} == case.raw["want"]
