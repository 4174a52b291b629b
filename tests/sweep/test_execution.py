"""Where sweeps run and what survives: a Dask LocalCluster gives the local executor's results; a run killed
with SIGKILL resumes without recomputing, losing or duplicating points; bad run folders and unreachable
schedulers are refused before anything is written."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest

from kbench.sweep import run_sweep
from kbench.sweep.results import claim
from tests.sweep.helpers import etcd_sweep_cli

SMALL = {"keys": [100, 1000], "members": [3], "clients": [1, 4], "duration": [0.05]}


def _sim(table):
    return table[["point_id", "seed", *sorted(c for c in table if c.startswith("sim_"))]]


def test_dask_local_cluster_gives_the_local_executors_results(tmp_path):
    from distributed import Client, LocalCluster

    local, _, _ = run_sweep("etcd", params=SMALL, out=tmp_path, run="local", jobs=1, seed=3, progress=False)
    with (
        LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        remote, run_dir, _ = run_sweep(
            "etcd", params=SMALL, out=tmp_path, run="dask", seed=3, progress=False, dask=client
        )
        threads = client.run(lambda: __import__("numba").get_num_threads())
    pd.testing.assert_frame_equal(_sim(local), _sim(remote))
    assert len(list((run_dir / "points").glob("*.parquet"))) == 4
    assert set(threads.values()) == {1}  # one Numba thread per worker


def test_unreachable_dask_scheduler_is_a_clear_error_and_writes_nothing(tmp_path):
    with pytest.raises(ValueError, match=r"dask: cannot reach a scheduler at tcp://127.0.0.1:9 .*dask scheduler"):
        run_sweep("etcd", params=SMALL, out=tmp_path, run="x", progress=False, dask="tcp://127.0.0.1:9")
    assert not (tmp_path / "etcd" / "x").exists()
    with pytest.raises(ValueError, match="dask: expected a scheduler address"):
        run_sweep("etcd", params=SMALL, out=tmp_path, run="y", progress=False, dask="localhost")


def test_sigkill_then_resume_keeps_every_finished_point_once(tmp_path):
    env = {**os.environ, "MPLBACKEND": "Agg"}
    cli = etcd_sweep_cli(tmp_path, "--jobs", "1", "--run", "r", duration="0.2")
    proc = subprocess.Popen(cli, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    points = tmp_path / "etcd" / "r" / "points"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(list(points.glob("*.parquet"))) < 2:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    finished = {p.name: p.stat().st_mtime_ns for p in points.glob("*.parquet")}
    assert 2 <= len(finished) < 6, "the run should be killed part-way"

    refused = subprocess.run(cli, env=env, capture_output=True, text=True)
    assert refused.returncode == 2 and "pass --resume" in refused.stderr

    resumed = subprocess.run([*cli, "--resume"], env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    after = {p.name: p.stat().st_mtime_ns for p in points.glob("*.parquet")}
    assert len(after) == 6
    assert all(after[name] == mtime for name, mtime in finished.items())  # not recomputed
    table = pd.read_parquet(tmp_path / "etcd" / "r" / "results.parquet")
    assert len(table) == 6 and table["point_id"].is_unique

    clean, _, _ = run_sweep(
        "etcd",
        params={"keys": [100, 1000, 10000], "members": [3], "clients": [1, 8], "duration": [0.2]},
        out=tmp_path,
        run="clean",
        jobs=2,
        progress=False,
    )
    pd.testing.assert_frame_equal(_sim(table), _sim(clean))  # same seed, same sim_ results


def test_results_folder_of_another_sweep_is_refused_untouched(tmp_path):
    run_dir = tmp_path / "proxy" / "mine"
    claim(run_dir, "meta.json", b'{"sweep": "etcd", "seed": 0}')
    before = (run_dir / "meta.json").read_bytes()
    with pytest.raises(ValueError, match="holds results of sweep 'etcd', not 'proxy'"):
        run_sweep("proxy", params={"services": [100]}, out=tmp_path, run="mine", progress=False, resume=True)
    assert (run_dir / "meta.json").read_bytes() == before and sorted(p.name for p in run_dir.iterdir()) == ["meta.json"]


def test_resume_checks_the_grid_and_needs_a_run(tmp_path):
    run_sweep("etcd", params=SMALL, out=tmp_path, run="a", jobs=1, seed=1, progress=False)
    before = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "etcd" / "a").rglob("*")}
    with pytest.raises(ValueError, match="was run with another grid; seed: the run has 1, this command 2"):
        run_sweep("etcd", params=SMALL, out=tmp_path, run="a", seed=2, progress=False, resume=True)
    with pytest.raises(
        ValueError,
        match=r"preset: the run has 'quick', this command 'full'; overrides: the run "
        r"has \{clients=1,4, duration=0.05, keys=100,1000, members=3\}, this "
        r"command \{keys=100\}; seeds: the run has 1, this command 2",
    ):
        run_sweep("etcd", "full", {"keys": [100]}, out=tmp_path, run="a", seeds=2, progress=False, resume=True)
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "etcd" / "a").rglob("*")} == before
    with pytest.raises(ValueError, match="no previous run of sweep 'proxy'"):
        run_sweep("proxy", out=tmp_path, progress=False, resume=True)
    table, run_dir, _ = run_sweep("etcd", out=tmp_path, progress=False, resume=True)  # the run's own grid
    assert run_dir.name == "a" and len(table) == 4  # --resume without --run continues the latest


def test_seeds_replicate_points_with_distinct_seeds(tmp_path):
    table, _, files = run_sweep(
        "etcd", params={**SMALL, "keys": [100]}, out=tmp_path, run="s", jobs=1, seeds=3, progress=False
    )
    assert sorted(table["replicate"]) == [0, 0, 1, 1, 2, 2]
    assert table.groupby("clients")["seed"].nunique().eq(3).all()
    assert table["profile_digest"].nunique() == 1 and table["seed"].notna().all()
    assert Path(files[0]).exists()
