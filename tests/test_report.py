"""kbench report and kbench plot over stored runs."""

from __future__ import annotations

import shutil

import pytest

from kbench.cli import main
from kbench.report import load_run, replot, write_report
from kbench.sweep import run_sweep

SMALL = {"keys": [100, 1000], "members": [3], "clients": [1], "duration": [0.05]}


@pytest.fixture(scope="module")
def cluster_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("results")
    params = {"nodes": [8, 16], "pods_per_node": [2], "churn": [20.0], "services": [1], "proxy_nodes": [0]}
    _, run_dir, _ = run_sweep("cluster", params=params, out=out, run="r", jobs=1, progress=False)
    return run_dir


def test_report_is_self_contained_with_slos_figures_and_environment(cluster_run):
    html_path, pdf_path = write_report(cluster_run.parent)  # the sweep's directory means its latest run
    text = html_path.read_text()
    assert "data:image/png;base64," in text and "cluster_pod_startup" in text
    assert "PodStartupLatency pod_startup p99 &lt;= 5 s" in text and "class='pass'" in text
    assert "numba_version" in text and "cpu_model" in text and "sim_pod_startup_p99_s" in text
    assert (cluster_run / "cluster_pod_startup.pdf").exists() and (cluster_run / "cluster_pod_startup.svg").exists()
    assert pdf_path.read_bytes().startswith(b"%PDF") and pdf_path.stat().st_size > 10_000


def test_report_marks_failed_slos(cluster_run, tmp_path):
    run_dir = tmp_path / "r"
    shutil.copytree(cluster_run, run_dir)  # a copy: the module's run stays as it was
    _, _, table, _ = load_run(run_dir)
    table.loc[0, "sim_pod_startup_p99_s"] = 7.5
    table.to_parquet(run_dir / "results.parquet")
    text = write_report(run_dir)[0].read_text()
    assert "class='FAIL'" in text and "<b>1 failed</b>" in text


def test_plot_redraws_chosen_metrics_with_seed_bands(tmp_path):
    _, run_dir, _ = run_sweep("etcd", params=SMALL, out=tmp_path, run="s", jobs=1, seeds=2, progress=False)
    files = replot(run_dir, ["sim_throughput_ops_per_s"], x="keys", logy=True, formats=("png", "pdf"))
    assert sorted(f.suffix for f in files) == [".pdf", ".png"] and all(f.stat().st_size > 1000 for f in files)
    assert replot(run_dir, formats=("svg",))  # the sweep's own figures
    with pytest.raises(ValueError, match="--metric: unknown column.*sim_throughput_ops_per_s"):
        replot(run_dir, ["throughput"])
    with pytest.raises(ValueError, match="--x: 'nodes' is not a parameter of sweep 'etcd'; valid: keys"):
        replot(run_dir, ["sim_throughput_ops_per_s"], x="nodes")


def test_cli_report_and_plot_errors(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    assert "not a sweep run (expected meta.json and results.parquet" in capsys.readouterr().err
    assert main(["plot", str(tmp_path), "--formats", "gif"]) == 2
    assert "--formats: choose from png, svg, pdf" in capsys.readouterr().err
