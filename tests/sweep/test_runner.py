"""Running a sweep: stored points, tidy table, figures; same seed, same sim_ results on any executor."""

from __future__ import annotations

import pandas as pd

from kbench.sweep import run_sweep
from kbench.sweep.results import read_meta

SMALL = {"keys": [100, 1000], "members": [3], "clients": [1, 4], "duration": [0.05]}


def test_sweep_writes_points_table_and_figures(tmp_path):
    table, run_dir, figures = run_sweep("etcd", params=SMALL, out=tmp_path, run="a", jobs=1, progress=False)
    assert len(table) == 4 and list(table["keys"]) == [100, 100, 1000, 1000]
    assert len(list((run_dir / "points").glob("*.parquet"))) == 4
    stored = pd.read_parquet(run_dir / "results.parquet")
    assert stored["point_id"].tolist() == table["point_id"].tolist()
    for column in (
        "seed",
        "kbench_version",
        "numba_version",
        "numpy_version",
        "python_version",
        "cpu_model",
        "wall_put_many_ops_per_s",
        "sim_throughput_ops_per_s",
        "sim_write_latency_p99_ms",
    ):
        assert column in stored, column
    assert (stored["sim_throughput_ops_per_s"] > 0).all() and (stored["wall_put_many_ops_per_s"] > 0).all()
    assert {f.name for f in figures} >= {
        "etcd_throughput.png",
        "etcd_throughput.svg",
        "etcd_latency.png",
        "etcd_kernels.png",
    }
    assert all(f.stat().st_size > 1000 for f in figures)
    assert read_meta(run_dir)["sweep"] == "etcd"
    assert (tmp_path / "etcd" / "latest").resolve() == run_dir.resolve()


def test_same_seed_same_simulated_results_across_executors(tmp_path):
    local, _, _ = run_sweep("etcd", params=SMALL, out=tmp_path, run="one", jobs=1, seed=7, progress=False)
    workers, _, _ = run_sweep("etcd", params=SMALL, out=tmp_path, run="two", jobs=2, seed=7, progress=False)
    sim = [c for c in local if c.startswith("sim_")]
    pd.testing.assert_frame_equal(local[["point_id", "seed", *sim]], workers[["point_id", "seed", *sim]])
    other, _, _ = run_sweep("etcd", params=SMALL, out=tmp_path, run="three", jobs=1, seed=8, progress=False)
    assert not other["sim_all_latency_mean_ms"].equals(local["sim_all_latency_mean_ms"])
