"""``kbench trace run`` and the ``trace`` sweep on a tiny openb directory: files, numbers, errors, presets."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest
import yaml

import kbench
from kbench.cli import main
from kbench.columns import column
from kbench.gpushare import config, paper
from kbench.sweep import get_sweep
from kbench.sweep import trace as sweep_trace
from tests.gpushare.helpers import write_openb


@pytest.fixture
def openb_dir(tmp_path: Path) -> Path:
    """A tiny openb directory (:func:`tests.gpushare.helpers.write_openb`)."""
    return write_openb(tmp_path)


def cli(argv: list[str]) -> int:
    """``main``'s exit code, also when argparse exits."""
    try:
        return main(argv)
    except SystemExit as stop:
        return int(stop.code or 0)


def test_trace_run_writes_summary_curves_and_figure(openb_dir, tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["trace", "run", "--trace", "tiny", "--policy", "BestFit", "--ratio", "0.5", "--seed", "3"]
    assert cli([*argv, "--data-dir", str(openb_dir), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "trace tiny, policy BestFit, seed 3, ratio 0.5: 3 pods arrived (50.0% of the cluster's GPUs), 0 failed" in (
        printed
    )
    summary = json.loads((out / "summary.json").read_text())
    assert summary["pods"] == 3 and summary["failed"] == 0 and summary["policy"] == "BestFit"
    assert summary["gpu_alloc_pct"] == pytest.approx(50.0) and summary["arrived_pct"] == pytest.approx(50.0)
    assert summary["cpu_alloc_pct"] == pytest.approx(100 * 24000 / 96000)
    assert summary["unallocated_gpus"] == 1  # the half GPU cannot share the whole one's GPU
    assert pd.read_csv(out / "summary.csv").loc[0, "pods"] == 3
    curves = pd.read_parquet(out / "curves.parquet")
    assert list(curves.columns) == ["arrived_pct", "gpu_alloc_pct", "frag_ratio_pct"]
    assert curves.iloc[0]["arrived_pct"] == 0 and curves.iloc[0]["gpu_alloc_pct"] == 0
    assert curves.iloc[-1]["arrived_pct"] == 50 and curves.iloc[-1]["gpu_alloc_pct"] == pytest.approx(50.0)
    assert (out / "curves.png").stat().st_size > 10_000


def test_trace_run_takes_a_scheduler_configuration(openb_dir, tmp_path, capsys):
    path = tmp_path / "scheduler.yaml"
    path.write_text(yaml.safe_dump(config.manifest(config.policy("GpuPacking"))))
    argv = ["trace", "run", "--trace", "tiny", "--ratio", "0.5", "--scheduler-config", str(path)]
    assert cli([*argv, "--data-dir", str(openb_dir)]) == 0
    assert "policy GpuPacking" in capsys.readouterr().out


def _bad_yaml(tmp_path: Path) -> Path:
    manifest = config.manifest(config.policy("FGD"))
    manifest["profiles"][0]["pluginConfig"][-1]["args"]["normMethod"] = "median"
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(manifest))
    return path


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--policy", "Greedy"], "argument --policy: invalid choice: 'Greedy' (choose from 'Random', 'DotProd'"),
        (
            ["--trace", "nope"],
            "--trace 'nope': no openb_pod_list_nope.csv; pod lists present: default, gpushare100, tiny",
        ),
        (["--policy", "FGD", "--scheduler-config", "x.yaml"], "argument --scheduler-config: not allowed with"),
        (["--scheduler-config", "BAD"], ".pluginConfig[1].args.normMethod: Unsupported value: 'median'"),
        (["--scheduler-config", "missing.yaml"], "--scheduler-config missing.yaml: [Errno 2] No such file"),
        (["--ratio", "0"], "--ratio: parameter 'ratio': 0.0 is out of range; ratio: arrived GPU demand"),
        (["--ratio", "-1"], "--ratio: parameter 'ratio': -1.0 is out of range"),
        (["--ratio", "nan"], "--ratio: parameter 'ratio': nan is not a finite float"),
        (["--ratio", "x"], "argument --ratio: invalid float value: 'x'"),
        (["--seed", "-1"], "--seed: a non-negative integer, got -1"),
        (["--data-dir", "NOWHERE"], "openb directory NOWHERE: not found; download the openb CSV files from"),
    ],
)
def test_trace_run_bad_input_is_a_clear_error_with_exit_code_2(args, message, openb_dir, tmp_path, capsys):
    args = [str(_bad_yaml(tmp_path)) if a == "BAD" else a for a in args]
    if "--data-dir" not in args:
        args += ["--data-dir", str(openb_dir)]
    args = [str(tmp_path / "nowhere") if a == "NOWHERE" else a for a in args]
    assert cli(["trace", "run", *args]) == 2
    err = capsys.readouterr().err
    assert message.replace("NOWHERE", str(tmp_path / "nowhere")) in err
    assert "Traceback" not in err


def test_presets_are_the_quick_grid_and_the_papers_1020_runs():
    sweep = get_sweep("trace")
    quick, full = sweep.grid("quick"), sweep.grid("full")
    assert len(quick) == 1 * 6 * 3 and {p["trace"] for p in quick} == {"default"}
    assert len(full) == 17 * 6 * 10 == 1020
    assert {p["trace"] for p in full} == set(paper.TRACES) and {p["policy"] for p in full} == set(config.POLICIES)
    assert sorted({p["tune_seed"] for p in full}) == list(range(42, 52)) and {p["ratio"] for p in full} == {1.3}
    with pytest.raises(ValueError, match="parameter 'ratio': 0.0 is out of range"):
        sweep.parse_overrides(["ratio=0"])
    with pytest.raises(ValueError, match="parameter 'policy': 'Greedy' is not allowed"):
        sweep.parse_overrides(["policy=Greedy"])


def test_a_point_row_has_the_summary_curves_and_wall_time(openb_dir, monkeypatch):
    monkeypatch.setenv("KBENCH_OPENB_DIR", str(openb_dir))
    row = get_sweep("trace").run_point({"trace": "default", "policy": "FGD", "ratio": 0.5, "tune_seed": 42}, 0)
    assert row["sim_pods"] == 3 and row["sim_failed_pods"] == 0 and row["sim_unallocated_gpus"] == 1
    assert [row[f"sim_failed_{kind}_pods"] for kind in ("cpu", "share", "one", "multi")] == [0, 0, 0, 0]
    assert row["sim_gpu_alloc_pct"] == pytest.approx(50.0) and row["sim_arrived_pct"] == pytest.approx(50.0)
    assert row["sim_cpu_alloc_pct"] == pytest.approx(25.0) and 0 <= row["sim_frag_ratio_pct"] <= 100
    assert row["wall_replay_s"] > 0
    for metric in ("gpu_alloc_pct", "frag_ratio_pct"):
        points = [c for c in row if c.startswith(f"sim_{metric}_at_")]
        assert points == [f"sim_{metric}_at_{x}" for x in range(51)]  # one per whole percent, 0 to 100 x ratio
    assert row["sim_gpu_alloc_pct_at_0"] == 0 and row["sim_gpu_alloc_pct_at_50"] == pytest.approx(50.0)
    assert math.isnan(row["sim_gpu_alloc_pct_at_25"])  # no pod arrived near 25%: 0, 16.7, 33.3, 50
    assert all(column(c).kind in ("simulated", "measured") for c in row)


def test_the_sweep_runs_resumes_and_exports_curves_and_the_table_beside_the_paper(openb_dir, monkeypatch, tmp_path):
    monkeypatch.setenv("KBENCH_OPENB_DIR", str(openb_dir))
    params = {"trace": ["gpushare100"], "policy": ["FGD", "Random"], "tune_seed": [42, 43]}
    table, run_dir, files = kbench.run_sweep("trace", params=params, out=tmp_path, jobs=1, progress=False)
    assert len(table) == 4 and set(table["policy"]) == {"FGD", "Random"}
    names = {f.name for f in files}
    assert {"curves.parquet", "gpushare_at_130.csv", "trace_curves_gpushare100.png", "trace_alloc_at_130.png"} <= names
    curves = pd.read_parquet(run_dir / "curves.parquet")
    assert len(curves.groupby(["policy", "tune_seed"])) == 4 and curves["arrived_pct"].max() == 130
    compared = pd.read_csv(run_dir / "gpushare_at_130.csv").set_index("policy")
    assert list(compared["runs"]) == [2, 2] and list(compared["kbench_mean"]) == [100.0, 100.0]  # 30 of 39 fit
    assert compared.loc["FGD", "paper_mean"] == paper.at(130).loc[("gpushare100", "FGD"), "gpu_alloc_mean"]
    assert compared.loc["FGD", "diff"] == pytest.approx(
        compared.loc["FGD", "kbench_mean"] - compared.loc["FGD", "paper_mean"]
    )
    again, _, _ = kbench.run_sweep("trace", out=tmp_path, run=run_dir.name, resume=True, jobs=1, progress=False)
    pd.testing.assert_frame_equal(again, table)


def test_a_worker_reads_each_trace_once(openb_dir):
    first = sweep_trace.workload("tiny", openb_dir)
    assert sweep_trace.workload("tiny", openb_dir) is first
    assert sweep_trace.available(openb_dir) == ["default", "gpushare100", "tiny"]


@pytest.mark.parametrize(
    ("given", "message"), [({"seeds": 2}, "seeds: the trace sweep takes"), ({"seed": 3}, "seed: the")]
)
def test_the_sweep_refuses_runner_seeds_that_would_change_nothing(given, message, tmp_path):
    with pytest.raises(ValueError, match=message):
        kbench.run_sweep("trace", out=tmp_path, jobs=1, progress=False, **given)
    assert not (tmp_path / "trace").exists() or not any((tmp_path / "trace").iterdir())
