"""Run folders: nothing written to the wrong place, nothing lost. A run is the latest from the moment it
starts, so a resume after a crash continues it (not an older, finished run); runs started in the same second
get folders of their own; Ctrl-C stops cleanly and says how to resume; a damaged point file is named."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from kbench.cli import main
from kbench.sweep import results, run_sweep
from tests.sweep.helpers import etcd_sweep_cli

SMALL = {"keys": [100, 1000], "members": [3], "clients": [1, 4], "duration": [0.05]}
ENV = {**os.environ, "MPLBACKEND": "Agg"}


def _snapshot(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()}


def _wait_for_points(points: Path, count: int, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and len(list(points.glob("*.parquet"))) < count and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be stopped part-way"


def test_resume_without_run_continues_the_run_that_was_killed_not_an_older_one(tmp_path):
    _, finished, _ = run_sweep("etcd", params={**SMALL, "keys": [100]}, out=tmp_path, jobs=1, progress=False)
    before = _snapshot(finished)
    proc = subprocess.Popen(
        etcd_sweep_cli(tmp_path, "--jobs", "1"), env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    latest = tmp_path / "etcd" / "latest"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and os.readlink(latest) == finished.name:
        time.sleep(0.02)
    killed = tmp_path / "etcd" / os.readlink(latest)
    assert killed != finished  # the new run is the latest as soon as it starts
    _wait_for_points(killed / "points", 1, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()

    resumed = subprocess.run(
        [
            sys.executable,
            "-m",
            "kbench.cli",
            "sweep",
            "etcd",
            "--resume",
            "--no-progress",
            "--jobs",
            "1",
            "--out",
            str(tmp_path),
        ],
        env=ENV,
        capture_output=True,
        text=True,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert len(pd.read_parquet(killed / "results.parquet")) == 6  # the killed run's own grid, completed
    assert _snapshot(finished) == before  # the older run is untouched


def test_runs_started_in_the_same_second_get_folders_of_their_own(tmp_path, monkeypatch):
    monkeypatch.setattr(time, "strftime", lambda fmt, *a: "20261205-120000")
    made: list[Path] = []
    threads = [
        threading.Thread(target=lambda i=i: made.append(results.new_run_folder(tmp_path, "meta.json", b"%d" % i)))
        for i in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(made)) == 8
    assert sorted(p.name for p in made) == sorted(["20261205-120000", *(f"20261205-120000-{i}" for i in range(2, 9))])
    assert sorted((p / "meta.json").read_bytes() for p in made) == sorted(b"%d" % i for i in range(8))

    a, first, _ = run_sweep("etcd", params={**SMALL, "keys": [100]}, out=tmp_path, jobs=1, progress=False)
    b, second, _ = run_sweep("etcd", params={**SMALL, "keys": [1000]}, out=tmp_path, jobs=1, progress=False)
    assert first != second and first.parent == second.parent
    assert pd.read_parquet(first / "results.parquet")["keys"].unique().tolist() == [100]
    assert pd.read_parquet(second / "results.parquet")["keys"].unique().tolist() == [1000]


def test_a_run_folder_is_never_reused_without_resume(tmp_path):
    run_dir = tmp_path / "etcd" / "r"
    results.claim(run_dir, "meta.json", json.dumps({"sweep": "etcd", "seed": 0}).encode())  # started, no point
    before = _snapshot(run_dir)
    with pytest.raises(ValueError, match="already holds a run of sweep 'etcd' .* pass --resume"):
        run_sweep("etcd", params=SMALL, out=tmp_path, run="r", progress=False)
    assert _snapshot(run_dir) == before
    with pytest.raises(results.RunFolderTaken):
        results.claim(run_dir, "meta.json", b"{}")


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_ctrl_c_stops_without_a_traceback_and_says_how_to_resume(tmp_path, jobs):
    proc = subprocess.Popen(
        etcd_sweep_cli(tmp_path, "--jobs", jobs, "--run", "r"),
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        # Ctrl-C as a terminal gives it, even under a harness that started these tests with SIGINT ignored (which
        # the child would inherit, and Python then installs no KeyboardInterrupt handler)
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    _wait_for_points(tmp_path / "etcd" / "r" / "points", 1, proc)
    os.killpg(proc.pid, signal.SIGINT)  # what the terminal sends to the whole foreground group on Ctrl-C
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    assert f"resume with: kbench sweep etcd --out {tmp_path} --run r --resume" in err
    stored = len(list((tmp_path / "etcd" / "r" / "points").glob("*.parquet")))
    assert f"{stored} of 6 points stored" in err
    assert (
        main(["sweep", "etcd", "--out", str(tmp_path), "--run", "r", "--resume", "--no-progress", "--jobs", "1"]) == 0
    )
    assert len(pd.read_parquet(tmp_path / "etcd" / "r" / "results.parquet")) == 6


def test_a_damaged_point_file_is_named_on_resume(tmp_path, capsys):
    _, run_dir, _ = run_sweep("etcd", params=SMALL, out=tmp_path, run="r", jobs=1, progress=False)
    damaged = sorted((run_dir / "points").glob("*.parquet"))[1]
    damaged.write_bytes(damaged.read_bytes()[:100])
    before = _snapshot(run_dir)
    assert main(["sweep", "etcd", "--out", str(tmp_path), "--run", "r", "--resume", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert f"{damaged} is damaged" in err and "delete it and resume again to recompute that point" in err
    assert _snapshot(run_dir) == before
    damaged.unlink()
    assert (
        main(["sweep", "etcd", "--out", str(tmp_path), "--run", "r", "--resume", "--no-progress", "--jobs", "1"]) == 0
    )
    assert len(pd.read_parquet(run_dir / "results.parquet")) == 4


def test_a_scenario_never_overwrites_an_earlier_run(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = ["scenario", "run", "density", "--set", "nodes=3", "--set", "pods_per_node=1", "--no-progress"]
    assert main(args) == 0 and main(args) == 0
    runs = sorted(p for p in (tmp_path / "results" / "scenario" / "density").iterdir() if not p.is_symlink())
    assert len(runs) == 2 and all((r / "slis.csv").exists() and (r / "scenario.yaml").exists() for r in runs)
    assert (tmp_path / "results" / "scenario" / "density" / "latest").resolve() == runs[-1].resolve()
    before = _snapshot(runs[0])
    capsys.readouterr()
    assert main([*args, "--out", str(runs[0])]) == 2
    assert f"--out {runs[0]}: already holds files" in capsys.readouterr().err
    assert _snapshot(runs[0]) == before
