"""Golden tables ported from upstream's preemption tests (tests/scheduler/golden/preemption, see its README section),
run through kbench.scheduler.whatif.preemption with the evaluator's plain reference (compiled=False) and its
compiled dry run (compiled=True).

Every case of a PostFilter-level table runs both ways and must give upstream's expected outcome both ways.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from kbench.api.core import Node, Pod
from kbench.api.policy import PodDisruptionBudget
from kbench.api.times import seconds
from kbench.scheduler import preemption as api
from kbench.scheduler.config import parse_config
from kbench.scheduler.interface import CODE_NAMES
from kbench.scheduler.profile import PLUGINS
from kbench.scheduler.whatif import preemption as what_if

GOLDEN = Path(__file__).parent / "golden" / "preemption"
NOW = 3600.0
"""Simulated now: later than every start time in the tables (upstream's time.Now() is later than its epochTime<N>)."""
OUTCOME_FILES = ("postfilter", "dry_run", "select_best_candidate", "pod_eligible_to_preempt_others", "preempt")
"""Tables checked through preemption()'s outcome; the others hold one upstream helper's inputs and results."""
DEFAULT_ARGS = {"minCandidateNodesPercentage": 10, "minCandidateNodesAbsolute": 100}
"""DefaultPreemptionArgs' defaults (pkg/scheduler/apis/config/v1/defaults.go SetDefaults_DefaultPreemptionArgs)."""
NOT_ELIGIBLE = "preemption: not eligible"


def load(stem: str) -> dict:
    """One golden file."""
    return yaml.safe_load((GOLDEN / f"{stem}.yaml").read_text())


def params(*stems: str) -> list:
    """pytest params (file, case) of the given files, with ids ``file::case name``."""
    return [
        pytest.param(doc, case, id=f"{stem}::{case['name']}")
        for stem in stems
        for doc in [load(stem)]
        for case in doc["cases"]
    ]


def config(plugins: list[str], args: dict | None) -> dict:
    """A KubeSchedulerConfiguration with upstream's test framework: PrioritySort, ``plugins`` at PreFilter and
    Filter (where they implement them), DefaultPreemption at PostFilter with ``args``, DefaultBinder."""
    points: dict[str, dict] = {
        "multiPoint": {"disabled": [{"name": "*"}]},
        "queueSort": {"enabled": [{"name": "PrioritySort"}]},
        "postFilter": {"enabled": [{"name": "DefaultPreemption"}]},
        "bind": {"enabled": [{"name": "DefaultBinder"}]},
    }
    for point in ("preFilter", "filter"):
        points[point] = {"enabled": [{"name": p} for p in plugins if point in PLUGINS[p]]}
    profile = {"plugins": points, "pluginConfig": [{"name": "DefaultPreemption", "args": args or {}}]}
    return {"profiles": [profile]}


def case_config(doc: dict, case: dict) -> dict:
    """The case's configuration (its plugins, else the file's)."""
    return config(case.get("plugins", doc.get("plugins", [])), case.get("args"))


def run(doc: dict, case: dict, compiled: bool):
    """preemption() on the case."""
    return what_if(
        case["nodes"],
        case["pod"],
        pods=case.get("pods") or (),
        pdbs=case.get("pdbs") or (),
        config=case_config(doc, case),
        offset=case.get("offset", 0),
        compiled=compiled,
        now=NOW,
    )


def key(victim: Pod | str) -> str:
    """A victim as namespace/name (Candidate.victims holds Pods; the contract gives Outcome.victims as keys)."""
    return victim if isinstance(victim, str) else victim.key


def sorted_candidates(candidates) -> list[dict]:
    """Candidates as upstream compares them: by node name, victims by name (namespace/name here)."""
    rows = [
        {
            "node": c.node,
            "victims": sorted(key(v) for v in c.victims),
            "numPDBViolations": c.num_pdb_violations,
        }
        for c in candidates
    ]
    return sorted(rows, key=lambda row: row["node"])


def check_outcome(case: dict, outcome) -> None:
    """Every expectation the case states, as upstream's test checks it."""
    want = case["want"]
    if "candidates" in want:
        assert sorted_candidates(outcome.candidates) == want["candidates"]
    if "order" in want:
        assert [c.node for c in outcome.candidates] == want["order"]
    if "node" in want:
        assert outcome.node == want["node"]
    if "nodeIn" in want:
        assert outcome.node in want["nodeIn"]
        assert api.pick_one_node_for_preemption(outcome.candidates, now=NOW) in want["nodeIn"]
    if "victims" in want:
        assert sorted(key(v) for v in outcome.victims) == want["victims"]
    if "message" in want:
        assert outcome.message == want["message"]
    if "eligible" in want:
        assert outcome.message.startswith(NOT_ELIGIBLE) != want["eligible"], outcome.message


@pytest.mark.parametrize("compiled", [False, True], ids=["reference", "compiled"])
@pytest.mark.parametrize(("doc", "case"), params(*OUTCOME_FILES))
def test_preemption_matches_upstream(doc: dict, case: dict, compiled: bool):
    if case.get("skip"):
        pytest.skip(case["skip"])
    check_outcome(case, run(doc, case, compiled))


@pytest.mark.parametrize(("doc", "case"), [p for p in params("dry_run") if "numCandidates" in p.values[1]["want"]])
def test_num_candidates_matches_upstream(doc: dict, case: dict):
    """calculateNumCandidates for the cases whose names state the limit ("DefaultPreemptionArgs limits to 2")."""
    args = {**DEFAULT_ARGS, **(case.get("args") or {})}
    got = api.calculate_num_candidates(
        len(case["nodes"]), args["minCandidateNodesPercentage"], args["minCandidateNodesAbsolute"]
    )
    assert got == case["want"]["numCandidates"]


@pytest.mark.parametrize(("doc", "case"), params("more_important_pod"))
def test_more_important_pod_matches_upstream(doc: dict, case: dict):
    got = api.more_important_pod(Pod.from_manifest(case["p1"]), Pod.from_manifest(case["p2"]))
    assert got is case["want"]


@pytest.mark.parametrize(("doc", "case"), params("filter_pods_with_pdb_violation"))
def test_filter_pods_with_pdb_violation_matches_upstream(doc: dict, case: dict):
    pods = [Pod.from_manifest(p) for p in case["pods"]]
    pdbs = [PodDisruptionBudget.from_manifest(p) for p in case["pdbs"]]
    violating, non_violating = api.filter_pods_with_pdb_violation(pods, pdbs)
    assert [p.name for p in violating] == case["want"]["violating"]
    assert [p.name for p in non_violating] == case["want"]["nonViolating"]


def test_golden_tables_load():
    """Every table loads; its manifests are valid kbench objects and its configurations valid; the helper tables
    nodesWherePreemptionMightHelp and GetEarliestPodStartTime hold for kbench's functions."""
    stems = sorted(path.stem for path in GOLDEN.glob("*.yaml"))
    assert len(stems) == 9
    for stem in stems:
        doc = load(stem)
        assert doc["source"] and doc["cases"], stem
        names = [case["name"] for case in doc["cases"]]
        assert len(set(names)) == len(names), stem
        for case in doc["cases"]:
            assert "want" in case, (stem, case["name"])
            if stem in OUTCOME_FILES:
                check_case_objects(doc, case)
    for case in load("nodes_where_preemption_might_help")["cases"]:
        # the older table holds for v1.35's rule: every node not UnschedulableAndUnresolvable is tried
        names = list(case["statuses"])
        codes = np.array([CODE_NAMES.index(case["statuses"][n]["code"]) for n in names], np.int8)
        assert {names[i] for i in api.nodes_where_preemption_might_help(codes).tolist()} == set(case["want"])
    now = seconds("2026-01-01T00:00:10Z")  # the table's currentTime
    for case in load("get_earliest_pod_start_time")["cases"]:
        earliest = api.get_earliest_pod_start_time([Pod.from_manifest(p) for p in case["pods"]], now)
        assert earliest == (None if case["want"] is None else seconds(case["want"])), case["name"]


def check_case_objects(doc: dict, case: dict) -> None:
    """A PostFilter-level case's nodes, pods and budgets parse, its pods sit on its nodes, its config parses."""
    nodes = {Node.from_manifest(n).name for n in case["nodes"]}
    Pod.from_manifest(case["pod"])
    for manifest in case.get("pods") or []:
        assert Pod.from_manifest(manifest).node_name in nodes, (case["name"], manifest)
    for manifest in case.get("pdbs") or []:
        PodDisruptionBudget.from_manifest(manifest)
    parse_config(case_config(doc, case))
