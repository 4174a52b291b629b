"""kbench report and kbench plot over stored runs."""

from __future__ import annotations

import re
import shutil
import zlib

import pytest

from kbench import plot
from kbench.cli import main
from kbench.report import load_run, replot, trend, write_report
from kbench.sweep import run_sweep

SMALL = {"keys": [100, 1000], "members": [3], "clients": [1], "duration": [0.05]}


@pytest.fixture(scope="module")
def cluster_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("results")
    params = {"nodes": [8, 16], "pods_per_node": [2], "churn": [20.0], "services": [1], "proxy_nodes": [0]}
    _, run_dir, _ = run_sweep("cluster", params=params, out=out, run="r", jobs=1, progress=False)
    return run_dir


@pytest.fixture(scope="module")
def etcd_run(tmp_path_factory):
    _, run_dir, _ = run_sweep(
        "etcd",
        params={**SMALL, "clients": [1, 4]},
        out=tmp_path_factory.mktemp("results"),
        run="s",
        jobs=1,
        seeds=2,
        progress=False,
    )
    return run_dir


def pdf_text(data: bytes) -> str:
    """The text a matplotlib PDF shows: the strings of its (compressed) content streams' Tj / TJ operators."""
    text = []
    for stream in re.findall(rb"stream\r?\n(.*?)\r?\nendstream", data, re.S):
        try:
            content = zlib.decompress(stream)
        except zlib.error:
            continue
        for shown in re.findall(rb"\[(.*?)\]\s*TJ|(\((?:[^()\\]|\\.)*\))\s*Tj", content, re.S):
            strings = re.findall(rb"\(((?:[^()\\]|\\.)*)\)", b"".join(shown))
            text.append(b"".join(strings).replace(b"\\", b"").decode("latin-1"))
    return "\n".join(text)


def test_report_is_self_contained_with_slos_figures_and_environment(cluster_run):
    html_path, pdf_path = write_report(cluster_run.parent)  # the sweep's directory means its latest run
    text = html_path.read_text()
    assert "data:image/png;base64," in text and "cluster_pod_startup" in text
    assert "PodStartupLatency pod_startup p99 &lt;= 5 s" in text and "class='pass'" in text
    assert "numba_version" in text and "cpu_model" in text and "sim_pod_startup_p99_s" in text
    assert (cluster_run / "cluster_pod_startup.pdf").exists() and (cluster_run / "cluster_pod_startup.svg").exists()
    assert pdf_path.read_bytes().startswith(b"%PDF") and pdf_path.stat().st_size > 10_000


def test_report_pdf_has_vector_figures_and_the_slo_table_of_every_point(cluster_run):
    _, pdf_path = write_report(cluster_run)
    data = pdf_path.read_bytes()
    assert b"/Subtype /Image" not in data  # figures drawn as paths and text, not pasted rasters
    figures = len(list(cluster_run.glob("cluster_*.svg")))
    assert len(re.findall(rb"/Type /Page\b", data)) == 1 + 1 + figures  # summary, SLO table, each figure
    text = pdf_text(data)
    assert "SLOs, every point (1/1)" in text and "APIResponsiveness namespace scope p99 <= 5 s" in text
    for nodes in (8, 16):
        assert text.count(f"nodes={nodes}") == 5  # one row per SLO
    assert "NetworkProgrammingLatency" in text and "pass" in text and "verdict" in text


def test_report_pdf_of_a_sweep_without_slos_says_so(etcd_run):
    _, pdf_path = write_report(etcd_run)
    text = pdf_text(pdf_path.read_bytes())
    assert "no SLO thresholds" in text and "SLO checks" not in text and "SLOs, every point" not in text


def test_report_marks_failed_slos_and_writes_numbers_one_way(cluster_run, tmp_path):
    run_dir = tmp_path / "r"
    shutil.copytree(cluster_run, run_dir)  # a copy: the module's run stays as it was
    _, _, table, _ = load_run(run_dir)
    table.loc[0, "sim_pod_startup_p99_s"] = 7.5
    table.loc[0, "sim_scheduling_throughput_max"] = 123456.7
    table.loc[1, "sim_npl_p99_s"] = float("nan")  # no data: never met
    table.loc[1, "problems"] = "3 pods never started (still Pending when the run ended): density/pod-0-1, ..."
    table.to_parquet(run_dir / "results.parquet")
    html_path, pdf_path = write_report(run_dir)
    text = html_path.read_text()
    assert "class='FAIL'" in text and "11 SLO checks: 8 met, <b>2 failed</b>, 1 without data" in text
    assert "<td>nodes=16</td><td>run: 3 pods never started" in text
    assert "<td>7.5</td><td>5</td><td>s</td><td>FAIL</td>" in text
    tables = text[text.index("<h2>Summary</h2>") : text.index("<h2>Figures</h2>")]
    assert "123,457" in tables and not re.search(r"\de[+-]\d", tables)  # not 1.235e+05
    pdf = pdf_text(pdf_path.read_bytes())
    assert "FAIL" in pdf and "123,457" in pdf and "11 SLO checks: 8 met, 2 failed, 1 without data" in pdf


def test_plot_redraws_chosen_metrics_with_seed_bands(etcd_run, monkeypatch):
    drawn, save = [], plot.save
    monkeypatch.setattr(plot, "save", lambda fig, *args, **kwargs: drawn.append(fig) or save(fig, *args, **kwargs))
    files = replot(etcd_run, ["sim_throughput_ops_per_s"], x="keys", logy=True, formats=("png", "pdf"))
    assert sorted(f.suffix for f in files) == [".pdf", ".png"] and all(f.stat().st_size > 1000 for f in files)
    replot(etcd_run, ["sim_throughput_ops_per_s"], x="keys", bands=False, formats=("svg",))
    assert [len(ax.collections) for fig in drawn for ax in fig.axes] == [2, 0]  # over 2 seeds, per client count; off
    assert replot(etcd_run, formats=("svg",))  # the sweep's own figures
    with pytest.raises(ValueError, match="--metric: unknown column.*valid: .*sim_throughput_ops_per_s"):
        replot(etcd_run, ["throughput"])
    with pytest.raises(ValueError, match="--metric: unknown column.*sim_slo_passed"):  # not a number
        replot(etcd_run, ["sim_slo_passed"])
    with pytest.raises(ValueError, match="--x: 'nodes' is not a numeric parameter of sweep 'etcd'; valid: keys, "):
        replot(etcd_run, ["sim_throughput_ops_per_s"], x="nodes")


def test_plot_draws_chosen_metrics_against_the_parameter_the_run_varies(etcd_run, tmp_path, monkeypatch):
    run_dir = tmp_path / "r"
    shutil.copytree(etcd_run, run_dir)
    _, _, table, _ = load_run(run_dir)
    table[table["keys"] == 100].to_parquet(run_dir / "results.parquet")  # a run sweeping clients only
    drawn = []
    monkeypatch.setattr(plot, "save", lambda fig, out_dir, stem, formats=None: drawn.append((stem, fig)) or [])
    replot(run_dir, ["sim_throughput_ops_per_s"])
    ((stem, fig),) = drawn
    assert stem == "etcd_sim_throughput_ops_per_s_vs_clients" and fig.axes[0].get_xlabel() == "closed-loop clients"


def test_cli_plot_checks_x_and_metric_even_for_the_default_figures(etcd_run, capsys):
    assert main(["plot", str(etcd_run), "--x", "nope"]) == 2
    assert "--x: 'nope' is not a numeric parameter of sweep 'etcd'; valid: keys, value_size" in capsys.readouterr().err
    assert main(["plot", str(etcd_run), "--x", "profile"]) == 2  # a parameter, but not a number
    assert "valid: keys" in capsys.readouterr().err
    assert main(["plot", str(etcd_run), "--metric", "nope", "--metric", "sim_throughput_ops_per_s"]) == 2
    err = capsys.readouterr().err
    assert "--metric: unknown column(s) nope; valid: " in err and "sim_write_latency_p99_ms" in err


def test_cli_plot_x_and_scales_apply_to_the_default_figures(etcd_run, monkeypatch, capsys):
    drawn = []
    monkeypatch.setattr(plot, "save", lambda fig, out_dir, stem, formats=None: drawn.append((stem, fig)) or [])
    assert main(["plot", str(etcd_run), "--x", "clients", "--linear-x", "--log-y"]) == 0
    assert [stem for stem, _ in drawn] == [
        "etcd_throughput",
        "etcd_latency",
        "etcd_kernels",
        "etcd_latency_vs_throughput",
    ]
    for _, fig in drawn:
        for ax in fig.axes:
            assert (ax.get_xscale(), ax.get_yscale()) == ("linear", "log")
        assert {ax.get_xlabel() for ax in fig.axes} - {""} == {"closed-loop clients"}  # on the bottom row
    drawn.clear()
    assert main(["plot", str(etcd_run)]) == 0  # each figure's own: keys on a log axis (100 to 1000)
    assert {ax.get_xscale() for _, fig in drawn[:3] for ax in fig.axes} == {"log"}
    assert {ax.get_xlabel() for _, fig in drawn[:3] for ax in fig.axes} == {"", "keys in the store"}


def test_cli_report_and_plot_errors(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    assert "not a sweep run (expected meta.json and results.parquet" in capsys.readouterr().err
    assert main(["plot", str(tmp_path), "--formats", "gif"]) == 2
    assert "--formats: choose from png, svg, pdf" in capsys.readouterr().err


def test_trend_is_read_from_the_data():
    import pandas as pd

    df = pd.DataFrame(
        {
            "nodes": [10, 10, 20, 40],
            "sim_api_resource_p99_max_s": [0.2, 0.4, 0.2, 0.1],
            "sim_npl_p99_s": [1.0, 1.0, 1.02, 0.99],
            "sim_etcd_write_p99_s": [1.0, 1.0, 3.0, 2.0],
        }
    )
    assert trend(df, "nodes", "sim_api_resource_p99_max_s") == "falls from 0.3 s at 10 nodes to 0.1 s at 40 nodes"
    assert trend(df, "nodes", "sim_npl_p99_s") == "stays within 5% (from 1 s at 10 nodes to 0.99 s at 40 nodes)"
    assert trend(df, "nodes", "sim_etcd_write_p99_s") == "rises from 1 s at 10 nodes to 2 s at 40 nodes, not steadily"
    assert (
        trend(df[df.nodes == 20], "nodes", "sim_npl_p99_s")
        == "has a single value of nodes (1.02 s at 20 nodes): no trend to read"
    )
    assert (
        trend(df.assign(sim_npl_p99_s=float("nan")), "nodes", "sim_npl_p99_s")
        == "has no data at any nodes: no trend to read"
    )
    counts = pd.DataFrame({"nodes": [10, 20], "sim_scheduled_pods": [100, 200]})  # a column without a unit
    assert trend(counts, "nodes", "sim_scheduled_pods") == "rises from 100 at 10 nodes to 200 at 20 nodes"
