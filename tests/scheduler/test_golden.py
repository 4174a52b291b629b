"""Golden tables ported from upstream's plugin tests: filter statuses and final scores per node."""

from __future__ import annotations

import numpy as np
import pytest

from kbench.scheduler.framework import PLUGIN_CLASSES, normalize
from kbench.scheduler.plugins import CODE_NAMES, SKIP, SUCCESS, Rejection
from tests.scheduler.golden_cases import Case, build, cases

CASES = cases()


def _plugin(case: Case, state):
    return PLUGIN_CLASSES[case.plugin](case.args, state)


def run_filter(case: Case) -> dict[str, dict]:
    state, pod = build(case)
    plugin = _plugin(case, state)
    try:
        ctx = plugin.prefilter(pod)
    except Rejection as rejection:
        if case.plugin != "NodeAffinity":
            return {n.name: {"code": CODE_NAMES[rejection.code], "reasons": list(rejection.reasons)}
                    for n in state.nodes}
        # upstream's NodeAffinity test runs Filter even when PreFilter rejects the pod
        ctx = (pod.affinity.get("nodeAffinity") or {}).get("requiredDuringSchedulingIgnoredDuringExecution")
    if ctx is SKIP:
        return {n.name: {"code": "Success"} for n in state.nodes}
    codes = plugin.filter(ctx, pod)
    return {n.name: ({"code": "Success"} if codes[i] == SUCCESS else
                     {"code": CODE_NAMES[codes[i]], "reasons": list(plugin.reasons(ctx, pod, i))})
            for i, n in enumerate(state.nodes)}


def run_score(case: Case) -> dict[str, int]:
    state, pod = build(case)
    plugin = _plugin(case, state)
    names = case.raw.get("scoredNodes") or [n.name for n in state.nodes]
    nodes = np.array([state.index[n] for n in names], np.int64)
    ctx = plugin.prescore(pod, nodes)
    if ctx is SKIP:
        return dict.fromkeys(names, 0)
    final = normalize(plugin, plugin.score(ctx, pod, nodes), ctx, nodes)
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
        expected = {node: {"code": w["code"], **({"reasons": w["reasons"]} if w.get("reasons") else {})}
                    for node, w in want.items()}
        assert {n: got[n] for n in expected} == expected
        if "wantPreFilter" in case.raw:
            assert prefilter_code(case) == case.raw["wantPreFilter"]["code"]
    else:
        got = run_score(case)
        assert {n: got[n] for n in want} == want
