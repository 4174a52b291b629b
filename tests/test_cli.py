"""The kbench command line."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pandas as pd
import pytest

from kbench.cli import entry, main
from kbench.sim import collector


def test_help_lists_sweeps_and_parameters():
    out = subprocess.run([sys.executable, "-m", "kbench.cli", "sweep", "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    assert "etcd: etcd MVCC kernels" in out.stdout and "members: etcd members (one of 1, 3, 5)" in out.stdout
    top = subprocess.run([sys.executable, "-m", "kbench.cli", "--help"], capture_output=True, text=True)
    assert top.returncode == 0 and "sweep" in top.stdout


def test_sweep_runs_and_prints_a_summary(tmp_path, capsys):
    code = main(
        [
            "sweep",
            "etcd",
            "--param",
            "keys=100",
            "--param",
            "members=1",
            "--param",
            "clients=2",
            "--param",
            "duration=0.05",
            "--out",
            str(tmp_path),
            "--jobs",
            "1",
            "--no-progress",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "sim_throughput_ops_per_s" in out and "1 points in" in out
    assert list((tmp_path / "etcd" / "latest").glob("*.png"))


def test_bad_parameters_exit_2_with_the_valid_choices(tmp_path, capsys):
    assert main(["sweep", "etcd", "--param", "members=2", "--out", str(tmp_path)]) == 2
    assert "members: etcd members (one of 1, 3, 5)" in capsys.readouterr().err
    assert main(["sweep", "etcd", "--jobs", "0", "--out", str(tmp_path)]) == 2
    assert "jobs must be >= 1" in capsys.readouterr().err
    assert not (tmp_path / "etcd").exists()


def test_scenario_run_writes_slis_and_perfdata(tmp_path, capsys):
    code = main(
        [
            "scenario",
            "run",
            "density",
            "--set",
            "nodes=5",
            "--set",
            "pods_per_node=2",
            "--out",
            str(tmp_path),
            "--no-progress",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0 and "every SLO met" in out and "pod_startup" in out
    assert (tmp_path / "slis.csv").exists() and (tmp_path / "pod_startup.parquet").exists()
    assert (tmp_path / "PodStartupLatency_PodStartupLatency.json").exists()


def test_scenario_show_and_list(capsys):
    assert main(["scenario", "list"]) == 0
    assert "node-failure:" in capsys.readouterr().out
    assert main(["scenario", "show", "job-waves", "--set", "waves=1"]) == 0
    assert "kind: Job" in capsys.readouterr().out


def test_scenario_takes_a_preset_by_name(capsys):
    assert main(["scenario", "list"]) == 0
    assert "presets (data/presets" in capsys.readouterr().out.split("node-failure:")[1]
    assert main(["scenario", "show", "density-100-v1.0"]) == 0
    assert "name: density-100-v1.0" in capsys.readouterr().out
    assert main(["scenario", "show", "density-100-v1.0", "--set", "nodes=3"]) == 2
    assert "--set applies to built-in scenarios; give a scenario file with preset: <name>" in capsys.readouterr().err
    assert main(["scenario", "show"]) == 2
    assert "or a preset (cl2-density-100" in capsys.readouterr().err


def test_scenario_bad_input_exits_2(tmp_path, capsys):
    assert main(["scenario", "run", "no-such-thing"]) == 2
    err = capsys.readouterr().err
    assert "no such file, built-in or preset; built-ins: density, load" in err and "presets: cl2-density-100" in err
    assert main(["scenario", "run", "density", "--set", "nodez=3"]) == 2
    assert "scenario 'density': no parameter 'nodez'; valid: nodes, pods_per_node, rate" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: kbench.io/v1\nkind: Scenario\nsteps: [{wait: {seconds: -1}}]\n")
    assert main(["scenario", "run", str(bad)]) == 2
    assert f"{bad}: document 0: steps[0].wait.seconds: expected a number >= 0" in capsys.readouterr().err


def test_sweep_execution_options_are_checked(tmp_path, capsys):
    assert main(["sweep", "etcd", "--dask", "localhost:8786", "--out", str(tmp_path)]) == 2
    assert "dask: expected a scheduler address such as tcp://host:8786" in capsys.readouterr().err
    assert main(["sweep", "etcd", "--seeds", "0", "--out", str(tmp_path)]) == 2
    assert "seeds: must be an integer >= 1" in capsys.readouterr().err
    assert main(["sweep", "nope"]) == 2
    assert "unknown sweep 'nope'; valid: cluster, etcd, proxy, scheduler" in capsys.readouterr().err
    assert main(["sweep", "cluster", "--param", "degrade=broken", "--out", str(tmp_path)]) == 2
    assert "degrade: control-plane degradation (one of none, one-apiserver" in capsys.readouterr().err
    assert main(["run", "--sweeps", "cluster,nope", "--out", str(tmp_path)]) == 2
    assert "unknown sweep 'nope'" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())  # nothing written by refused commands


def test_run_runs_each_sweep_as_kbench_sweep_would_with_its_shared_options(tmp_path, monkeypatch, capsys):
    from kbench import cli

    seen = []
    monkeypatch.setattr(cli, "_sweep", lambda args: seen.append(vars(args)) or 0)
    assert main(["run", "--sweeps", "etcd,proxy", "--out", str(tmp_path), "--jobs", "1", "--no-progress"]) == 0
    shared = {"preset": "quick", "out": tmp_path, "seed": 0, "jobs": 1, "no_progress": True}
    unset = {"param": [], "run": None, "dask": None, "resume": False, "seeds": None, "config": None}
    assert seen == [{"command": "sweep", "name": name, **shared, **unset} for name in ("etcd", "proxy")]
    assert "kbench run: 2 sweeps (etcd, proxy)" in capsys.readouterr().out


def test_validate_refuses_an_unknown_experiment_and_a_resume_without_a_run(tmp_path, capsys):
    assert main(["validate", "--experiment", "nosuch", "--out", str(tmp_path), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "parameter 'experiment': 'nosuch' is not allowed" in err and "cl2-density-100" in err
    assert main(["validate", "--resume", "--out", str(tmp_path), "--no-progress"]) == 2
    assert "--resume: no previous run of sweep 'validation'" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())  # nothing written by refused commands


def test_validate_prints_the_table_of_the_run_it_made(tmp_path, monkeypatch, capsys):
    """The table comes from the run the sweep wrote (--run), not from whatever ``latest`` points at."""
    from kbench import cli

    parent = tmp_path / "validation"
    (parent / "old").mkdir(parents=True)
    (parent / "latest").symlink_to("old")
    row = {
        "experiment": "e",
        "metric": "PodStartupLatency/pod_startup/p99",
        "unit": "s",
        "published": 2.0,
        "kbench": 3.0,
        "ratio": 1.5,
        "tolerance": 0.25,
        "within": False,
        "role": "out-of-sample",
        "source": "s",
        "known_gap": "the node side is too slow",
    }
    seen = []

    def fake(args):
        seen.append(vars(args))
        (parent / args.run).mkdir()
        pd.DataFrame([row]).to_csv(parent / args.run / "validation.csv", index=False)
        return 0, parent / args.run

    monkeypatch.setattr(cli, "_run_sweep", fake)
    assert main(["validate", "--experiment", "e", "--run", "mine", "--out", str(tmp_path), "--jobs", "1"]) == 0
    assert seen[0]["name"] == "validation" and seen[0]["preset"] == "quick" and seen[0]["param"] == ["experiment=e"]
    out = capsys.readouterr().out
    assert "outside tolerance: e PodStartupLatency/pod_startup/p99: the node side is too slow" in out
    assert f"0 of 1 out-of-sample figures within tolerance (0 of 1 in all); report: {parent / 'mine'}" in out


@pytest.mark.parametrize(("argv", "code"), [(["scenario", "list"], 0), (["scenario", "run", "no-such"], 2)])
def test_the_kbench_command_exits_with_mains_status_and_skips_the_last_collection(monkeypatch, capsys, argv, code):
    """The installed ``kbench`` command is :func:`entry`: main's exit status, after
    ``collector.skip_final_collection`` (which tests/sim/test_collector.py checks in a process of its own)."""
    scripts = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["kbench"] == "kbench.cli:entry"
    skipped: list[bool] = []
    monkeypatch.setattr(collector, "skip_final_collection", lambda: skipped.append(True))
    monkeypatch.setattr(sys, "argv", ["kbench", *argv])
    with pytest.raises(SystemExit) as exited:
        entry()
    assert exited.value.code == code and skipped == [True]
    assert ("density: CL2 density" in capsys.readouterr().out) == (code == 0)
