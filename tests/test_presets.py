"""data/presets and data/validation: every preset loads as a scenario, every experiment file follows the schema of
data/validation/README.md (required keys, kbench's SLI and metric names or a sweep's result columns, sources that
exist, presets and sweep points that exist)."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
import yaml

from kbench.metrics.pod_startup import CL2_METHODS, PHASES
from kbench.metrics.slis import API_SLO
from kbench.scenarios.library import SCENARIOS
from kbench.scenarios.spec import Scenario

DATA = Path(__file__).resolve().parents[1] / "data"
PRESETS = sorted((DATA / "presets").glob("*.yaml"))
EXPERIMENTS = sorted((DATA / "validation").glob("*.yaml"))
METRICS = {  # kbench/metrics/slis.py collect(): SLI -> its metrics
    "PodStartupLatency": {*PHASES, *(f"{method}_{t}" for method, ts in CL2_METHODS.items() for t in ts)},
    "APIResponsiveness": {"request_latency"},
    "SchedulingThroughput": {"pods_per_second"},
    "NetworkProgrammingLatency": {"network_programming_latency", "cl2_network_programming_latency"},
    "EtcdRequestLatency": {"write"},
    "ResourceUsageSummary": {"cpu"},
}
QUANTILES = {"p50", "p90", "p99", "max"}
TOP = {"experiment", "description", "preset", "builtin", "sweep", "quick", "sources", "rows", "qualitative"}
ROW = {"sli", "metric", "quantile", "published", "unit", "source", "role", "tolerance", "note", "verb", "resource"}
ROW |= {"scope", "known_gap"}
SWEEP_ROW = {"column", "where", "published", "unit", "source", "role", "tolerance", "note", "known_gap"}
FORMS = ("preset", "builtin", "sweep")
QUICK_NODES = 100
"""A quick experiment's cluster is at most this big (the CI budget of ~60 s wall)."""


def load(path: Path) -> dict:
    doc = yaml.safe_load(path.read_text())
    assert isinstance(doc, dict), f"{path.name}: not a mapping"
    return doc


def test_there_are_presets_and_experiments():
    assert len(PRESETS) >= 5 and len(EXPERIMENTS) >= 5


@pytest.mark.parametrize("path", PRESETS, ids=lambda p: p.stem)
def test_preset_loads_is_named_after_its_file_and_cites_its_sources(path):
    scenario = Scenario.from_yaml(path)
    assert scenario.name == path.stem
    assert scenario.steps, f"{path.name}: no steps"
    header = path.read_text().split("apiVersion:", 1)[0]
    cited = "commit" in header or "https://" in header
    assert "Sources" in header and cited, f"{path.name}: the header cites no sources (commits or URLs)"


@pytest.mark.parametrize("path", EXPERIMENTS, ids=lambda p: p.stem)
def test_experiment_follows_the_schema(path):
    doc = load(path)
    assert set(doc) <= TOP, f"{path.name}: unknown keys {sorted(set(doc) - TOP)}"
    assert doc["experiment"] == path.stem
    assert isinstance(doc["description"], str) and len(doc["description"]) > 80
    assert isinstance(doc["quick"], bool)
    assert sum(form in doc for form in FORMS) == 1, f"{path.name}: give exactly one of {', '.join(FORMS)}"
    sources = doc["sources"]
    assert isinstance(sources, dict) and sources
    for key, source in sources.items():
        assert source.get("url") or source.get("repository"), f"{path.name}: source {key} names no url or repository"
        assert source.get("retrieved") and source.get("note"), f"{path.name}: source {key} needs retrieved and note"
    assert doc["rows"], f"{path.name}: no published figure"
    for i, row in enumerate(doc["rows"]):
        where = f"{path.name}: rows[{i}]"
        if "sweep" in doc:
            assert set(row) <= SWEEP_ROW, f"{where}: unknown keys {sorted(set(row) - SWEEP_ROW)}"
            assert row["column"].startswith("sim_") and isinstance(row["where"], dict) and row["where"], where
        else:
            assert set(row) <= ROW, f"{where}: unknown keys {sorted(set(row) - ROW)}"
            assert row["metric"] in METRICS[row["sli"]], f"{where}: {row['sli']} has no metric {row['metric']!r}"
            assert row["quantile"] in QUANTILES
        assert isinstance(row["published"], (int, float)) and math.isfinite(row["published"]) and row["published"] > 0
        assert row["source"] in sources, f"{where}: source {row['source']!r} is not in sources"
        assert row["role"] == "out-of-sample" or row["role"].startswith("fitted: "), where
        tolerance = row.get("tolerance", 0.25)
        assert 0 < tolerance <= 1, where
        assert tolerance == 0.25 or row.get("note"), f"{where}: a tolerance other than 0.25 is explained in note"
        gap = row.get("known_gap")
        assert gap is None or (isinstance(gap, str) and len(gap) > 40), (
            f"{where}: a known_gap gives its concrete reason"
        )
        if row.get("sli") == "APIResponsiveness":
            assert row.get("verb") and row.get("resource") and row.get("scope") in API_SLO, where
    for claim in doc.get("qualitative") or []:
        assert claim["claim"] and claim["source"] in sources, f"{path.name}: qualitative {claim}"


def quoted(note: str) -> set[float]:
    """The numbers a note quotes ('1,353', '.90s', '1519.802112'), also read as milliseconds in seconds."""
    numbers = {float(n.replace(",", "")) for n in re.findall(r"\d[\d,]*\.?\d*|\.\d+", note)}
    return numbers | {round(n / 1000, 3) for n in numbers}


@pytest.mark.parametrize("path", EXPERIMENTS, ids=lambda p: p.stem)
def test_every_published_figure_is_quoted_in_its_sources_note(path):
    """The note quotes the sentence or table each figure comes from, so a reader can check the figure against it."""
    doc = load(path)
    for i, row in enumerate(doc["rows"]):
        note = str(doc["sources"][row["source"]]["note"])
        assert row["published"] in quoted(note), f"{path.name}: rows[{i}]: {row['published']} is not in {note!r}"


@pytest.mark.parametrize("path", EXPERIMENTS, ids=lambda p: p.stem)
def test_experiment_runs_a_preset_that_exists(path):
    doc = load(path)
    if "sweep" in doc:
        from kbench.validation import from_dict

        points = from_dict(doc, path.name).points()  # the sweep exists and takes these params
        for i, row in enumerate(doc["rows"]):
            hits = [p for p in points if all(p.get(k) == v for k, v in row["where"].items())]
            assert len(hits) == 1, f"{path.name}: rows[{i}]: where selects {len(hits)} of {len(points)} points"
        return
    if "builtin" in doc:
        builtin = doc["builtin"]
        assert builtin["scenario"] in SCENARIOS
        scenario = SCENARIOS[builtin["scenario"]](**builtin.get("args", {}))
    else:
        scenario = Scenario.from_yaml(DATA / "presets" / f"{doc['preset']}.yaml")
    assert not doc["quick"] or scenario.cluster.nodes <= QUICK_NODES, f"{path.name}: too big to be quick"


def test_a_source_or_preset_that_is_missing_is_caught(tmp_path):
    """The schema checks fail on a row naming a source the file does not list (they can fail)."""
    bad = load(EXPERIMENTS[0])
    bad["rows"][0]["source"] = "nowhere"
    (tmp_path / f"{bad['experiment']}.yaml").write_text(yaml.safe_dump(bad))
    with pytest.raises(AssertionError, match="is not in sources"):
        test_experiment_follows_the_schema(tmp_path / f"{bad['experiment']}.yaml")
