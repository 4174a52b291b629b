"""kbench.validation: the experiment schema (errors name the file and field), how a published row finds its kbench
figure, the comparison table, its figure and report, and a whole experiment run from a built-in scenario."""

from __future__ import annotations

import math
import re

import pandas as pd
import pytest
import yaml

from kbench import validation
from kbench.metrics.slis import COLUMNS


def experiment(**changes) -> dict:
    doc = {
        "experiment": "tiny-density",
        "description": "A density run small enough for a unit test.",
        "builtin": {"scenario": "density", "args": {"nodes": 4, "pods_per_node": 2, "rate": 10}},
        "quick": True,
        "sources": {"made-up": {"url": "https://example.invalid/figures", "note": "test data"}},
        "rows": [
            {
                "sli": "PodStartupLatency",
                "metric": "pod_startup",
                "quantile": "p99",
                "published": 2.0,
                "unit": "s",
                "source": "made-up",
                "role": "out-of-sample",
                "tolerance": 0.25,
            }
        ],
    }
    doc.update(changes)
    return doc


def row(**changes) -> dict:
    return {**experiment()["rows"][0], **changes}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"rows": [row(quantile="p95")]}, "rows[0]: quantile: must be one of p50, p90, p99, max; got 'p95'"),
        ({"rows": [row(source="nowhere")]}, "rows[0]: source: 'nowhere' is not in the file's sources (made-up)"),
        ({"rows": [row(role="calibrated")]}, "rows[0]: role: must be 'out-of-sample' or 'fitted: <unit cost>'"),
        ({"rows": [row(published=-1)]}, "rows[0]: published: must be a positive number; got -1"),
        ({"rows": [row(tolerance=0)]}, "rows[0]: tolerance: must be a positive relative tolerance"),
        ({"rows": [row(colour="red")]}, "rows[0]: colour: unknown field; allowed: known_gap, metric, note"),
        ({"rows": []}, "rows: at least one published figure"),
        ({"preset": "cl2"}, "give exactly one of preset (a data/presets name), builtin (a built-in scenario) or sweep"),
        (
            {"builtin": None, "sweep": {"name": "validation"}},
            "sweep.name: must be one of cluster, etcd, proxy, scheduler",
        ),
        (
            {"rows": [row(column="sim_x")]},
            "rows[0]: column: unknown field (a scenario's rows take sli, metric, quantile",
        ),
        ({"builtin": {"scenario": "nope"}}, "builtin.scenario: must be one of density"),
        ({"quick": "yes"}, "quick: required, a bool; got 'yes'"),
        ({"extra": 1}, "extra: unknown field; allowed: experiment, description"),
        ({"builtin": None, "preset": "nope"}, "preset: must be one of cl2-density-100"),
        ({"sources": {"made-up": "a blog"}}, "sources.made-up: expected a mapping with one of url, path, repository"),
        ({"sources": {"made-up": {"note": "no where"}}}, "sources.made-up: expected a mapping with one of url"),
        ({"qualitative": [{"claim": "faster", "source": "nowhere"}]}, "qualitative[0]: source: 'nowhere' is not in"),
        ({"qualitative": ["faster"]}, "qualitative[0]: expected a mapping with exactly claim and source"),
        ({"qualitative": {"claim": "x"}}, "qualitative: expected a list of {claim, source}"),
    ],
)
def test_schema_errors_name_the_file_and_field(changes, message):
    with pytest.raises(validation.ValidationError) as err:
        validation.from_dict(experiment(**changes), "v.yaml")
    assert str(err.value).startswith("v.yaml: ")
    assert message in str(err.value)


def test_experiments_reads_a_directory_and_refuses_a_name_twice(tmp_path):
    (tmp_path / "a.yaml").write_text(yaml.safe_dump(experiment()))
    known = validation.experiments(tmp_path)
    assert list(known) == ["tiny-density"]
    assert known["tiny-density"].rows[0].key == "PodStartupLatency/pod_startup/p99"
    (tmp_path / "b.yaml").write_text(yaml.safe_dump(experiment()))
    with pytest.raises(validation.ValidationError, match="b.yaml: experiment: 'tiny-density' is also in"):
        validation.experiments(tmp_path)
    (tmp_path / "b.yaml").write_text("rows: [")
    with pytest.raises(validation.ValidationError, match="b.yaml: not valid YAML"):
        validation.experiments(tmp_path)


def slis(*rows) -> pd.DataFrame:
    full = [{c: None for c in COLUMNS} | r for r in rows]
    return pd.DataFrame(full, columns=COLUMNS)


def test_measure_matches_labels_and_takes_the_worst_request():
    table = slis(
        {"sli": "APIResponsiveness", "metric": "request_latency", "verb": "LIST", "resource": "pods", "p99": 0.5},
        {"sli": "APIResponsiveness", "metric": "request_latency", "verb": "LIST", "resource": "nodes", "p99": 0.9},
        {"sli": "APIResponsiveness", "metric": "request_latency", "verb": "GET", "resource": "pods", "p99": 0.1},
    )
    base = dict(row(), sli="APIResponsiveness", metric="request_latency", unit="s")
    exp = validation.from_dict(experiment(rows=[base | {"verb": "LIST", "resource": "pods"}, base]), "v")
    assert validation.measure(table, exp.rows[0]) == 0.5
    assert validation.measure(table, exp.rows[1]) == 0.9  # every request: the worst
    assert exp.rows[0].key == "APIResponsiveness/request_latency LIST pods/p99"
    assert math.isnan(validation.measure(table, validation.from_dict(experiment(), "v").rows[0]))


def test_compare_averages_seeds_and_judges_each_row(tmp_path):
    exp = validation.from_dict(
        experiment(rows=[row(), row(quantile="p50", published=1.0, role="fitted: runtime.sandbox_create")]), "v"
    )
    results = pd.DataFrame(
        {
            "experiment": ["tiny-density", "tiny-density"],
            "sim_[PodStartupLatency/pod_startup/p99]": [2.2, 2.6],  # mean 2.4: ratio 1.2, within 25%
            "sim_[PodStartupLatency/pod_startup/p50]": [0.5, 0.5],  # ratio 0.5: outside
        }
    )
    table = validation.compare(results, {"tiny-density": exp})
    assert table["kbench"].tolist() == pytest.approx([2.4, 0.5])
    assert table["ratio"].tolist() == pytest.approx([1.2, 0.5])
    assert table["within"].tolist() == [True, False]
    assert table["source"].tolist() == ["https://example.invalid/figures"] * 2
    text = validation.report(table, {"tiny-density": exp})
    assert "1 of 1 out-of-sample figures within tolerance; 1 of 2 in all." in text
    assert "| tiny-density | PodStartupLatency/pod_startup/p50 | s | 1 | 0.5 | 0.50 | 25% | NO |" in text
    png = validation.figure(table, tmp_path / "v.png")
    assert png.stat().st_size > 10_000


NEVER_STARTS = """
apiVersion: kbench.io/v1
kind: Scenario
metadata: {name: stuck}
cluster: {nodes: 2}
steps:
  - createObjects:
      count: 2
      template:
        apiVersion: v1
        kind: Pod
        metadata: {name: "big-{i}"}
        spec: {containers: [{name: c, image: app:1, resources: {requests: {cpu: "64"}}}]}
  - waitForPods: {timeout: 20}
drain: 1
"""


def test_a_row_has_no_figure_when_any_seed_failed():
    exp = validation.from_dict(sweep_experiment(), "v.yaml")
    column = exp.rows[0].column_name
    runs = pd.DataFrame([{"experiment": exp.name, column: 1.6}, {"experiment": exp.name, column: math.nan}])
    table = validation.compare(runs, {exp.name: exp})
    assert math.isnan(table["kbench"].iloc[0]) and table["within"].tolist() == [False]


def test_an_experiment_whose_pods_never_start_has_no_figure_and_is_not_within(tmp_path, monkeypatch):
    monkeypatch.setenv("KBENCH_PRESETS", str(tmp_path))
    (tmp_path / "stuck.yaml").write_text(NEVER_STARTS)
    doc = experiment(preset="stuck")
    del doc["builtin"]
    exp = validation.from_dict(doc, "v.yaml")
    figures = exp.run(seed=0)
    assert "2 pods never started" in figures["problems"] and figures["sim_slo_passed"] is False  # it says why
    assert math.isnan(figures["sim_[PodStartupLatency/pod_startup/p99]"])
    table = validation.compare(pd.DataFrame([{"experiment": exp.name, **figures}]), {exp.name: exp})
    assert table["within"].tolist() == [False] and math.isnan(table["ratio"].iloc[0])
    assert "| nan | nan |" in validation.report(table, {exp.name: exp})


def test_an_experiment_runs_from_its_builtin_and_is_measured():
    exp = validation.from_dict(experiment(), "v")
    result = exp.scenario(seed=3).run(progress=False)
    assert result.cluster.spec.seed == 3
    figures = validation.measured(result.slis, exp)
    assert list(figures) == ["sim_[PodStartupLatency/pod_startup/p99]"]
    startup = result.pod_startup["pod_startup"].quantile(0.99)
    assert figures["sim_[PodStartupLatency/pod_startup/p99]"] == pytest.approx(startup, rel=0.05)


SWEEP_ROW = {"published": 1.6, "unit": "ms", "source": "made-up", "role": "fitted: etcd.wal_fsync", "tolerance": 0.25}


def sweep_experiment(**row_changes) -> dict:
    doc = experiment(rows=[{**SWEEP_ROW, "column": "sim_write_latency_p50_ms", "where": {"clients": 1}, **row_changes}])
    del doc["builtin"]
    doc["sweep"] = {"name": "etcd", "params": {"keys": 100, "members": 3, "clients": [1, 4], "duration": 0.05}}
    return doc


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"column": "wall_put_ops_per_s"}, "rows[0]: column: a simulated result column (sim_...)"),
        ({"sli": "PodStartupLatency"}, "rows[0]: sli: unknown field (a sweep's rows take column, where, not sli"),
        ({"where": None}, "rows[0]: where: required, a Mapping"),
    ],
)
def test_sweep_rows_take_a_result_column_and_the_point(changes, message):
    with pytest.raises(validation.ValidationError, match=re.escape(message)):
        validation.from_dict(sweep_experiment(**changes), "v.yaml")


def test_a_sweep_experiment_runs_its_points_and_picks_each_rows_point():
    exp = validation.from_dict(sweep_experiment(), "v.yaml")
    assert [p["clients"] for p in exp.points()] == [1, 4]
    assert exp.rows[0].key == "sim_write_latency_p50_ms[clients=1]" and exp.rows[0].fitted
    figures = exp.run(seed=0)
    from kbench.sweep.registry import get_sweep

    alone = get_sweep("etcd").run_point(exp.points()[0], 0)["sim_write_latency_p50_ms"]
    assert figures == {"sim_[sim_write_latency_p50_ms[clients=1]]": alone}
    table = validation.compare(pd.DataFrame([{"experiment": exp.name, **figures}]), {exp.name: exp})
    assert table["panel"].tolist() == ["etcd sweep"] and table["kbench"].tolist() == [alone]
    both = validation.from_dict(sweep_experiment(where={"keys": 100}), "v.yaml")
    with pytest.raises(validation.ValidationError, match=r"where selects 2 of the sweep's points, not 1"):
        both.run(seed=0)


def test_a_sweep_experiment_whose_point_leaves_pods_unscheduled_has_no_figure_and_says_why():
    doc = experiment(rows=[{**SWEEP_ROW, "unit": "pods/s", "column": "sim_throughput_average", "where": {"nodes": 20}}])
    del doc["builtin"]
    doc["sweep"] = {"name": "scheduler", "params": {"nodes": 20, "pods": 900, "percentage": 0}}
    figures = validation.from_dict(doc, "v.yaml").run(seed=0)
    assert math.isnan(figures["sim_[sim_throughput_average[nodes=20]]"])
    assert "at least pod default/pod-801 is not scheduled after 600 simulated seconds" in figures["problems"]


QUICK = [name for name, exp in validation.experiments().items() if exp.quick]


@pytest.mark.parametrize("name", QUICK)
def test_quick_experiment_within_its_tolerances(name):
    """Every quick published figure of data/validation, run as `kbench validate` runs it: within its tolerance, or
    outside it exactly where the file records a known gap (so a mended gap, or a new one, fails here)."""
    exp = validation.experiments()[name]
    figures = exp.run(seed=0)
    for row in exp.rows:
        ratio = figures[row.column_name] / row.published
        within = abs(ratio - 1) <= row.tolerance
        assert within != bool(row.known_gap), (
            f"{row.key}: kbench/published = {ratio:.2f}, tolerance {row.tolerance:.0%}, known gap: {row.known_gap!r}"
        )
