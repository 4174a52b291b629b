"""Figures: axes and legends from the column metadata, one kind per axis, legends outside, readable ticks."""

from __future__ import annotations

import itertools
import re

import matplotlib
import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PolyCollection

from kbench import plot
from kbench.columns import column, number, plottable, tick
from kbench.sweep import get_sweep, sweep_names
from kbench.sweep.etcd import FIGURES as ETCD_FIGURES
from kbench.sweep.grid import Param
from tests.gpushare.helpers import write_openb

matplotlib.use("Agg")

PARAMS = (
    Param("keys", int, "keys in the store"),
    Param("members", int, "etcd members"),
    Param("clients", int, "closed-loop clients"),
)
TINY = {
    "cluster": {"nodes": 8, "pods_per_node": 2, "services": 1, "proxy_nodes": 0},
    "etcd": {"keys": 100, "duration": 0.02, "clients": 2},
    "proxy": {"services": 20, "endpoints": 2},
    "scheduler": {"nodes": 20, "pods": 20},
    "trace": {"ratio": 0.5},
    "validation": {"experiment": "density-100-v1.0-10pct"},
}


def table(seeds: int = 1) -> pd.DataFrame:
    """etcd-like results: 3 keys x 2 members x 3 clients, reads fast and writes slow."""
    rng = np.random.default_rng(0)
    rows = []
    for keys, members, clients, replicate in itertools.product((100, 1000, 10_000), (1, 3), (1, 10, 100), range(seeds)):
        rows.append(
            {
                "keys": keys,
                "members": members,
                "clients": clients,
                "replicate": replicate,
                "sim_read_latency_p50_ms": 0.3 + clients / 100 + rng.random() / 100,
                "sim_read_latency_p99_ms": 0.5 + clients / 50,
                "sim_write_latency_p50_ms": 2.0 * members,
                "sim_write_latency_p99_ms": 5.0 * members + clients / 10,
                "sim_throughput_ops_per_s": 800.0 * clients,
                "wall_put_ops_per_s": 4e5 + keys,
            }
        )
    return pd.DataFrame(rows)


def data_lines(ax) -> list:
    return [line for line in ax.get_lines() if not line.get_label().startswith("SLO")]


@pytest.mark.parametrize("name", sweep_names())
def test_every_result_column_of_every_sweep_has_metadata_and_its_figures_draw(name, tmp_path, monkeypatch):
    monkeypatch.setenv("KBENCH_OPENB_DIR", str(write_openb(tmp_path)))  # the trace sweep's files, tiny
    sweep = get_sweep(name)
    params = {**sweep.grid("quick")[0], **TINY[name]}
    row = {**sweep.run_point(params, 0), "wall_point_seconds": 1.0}
    names = [c for c in row if c.startswith(("sim_", "wall_"))]
    assert names and all(column(c).kind in ("simulated", "measured") for c in names)  # raises on an unknown one
    df = pd.DataFrame([{**params, **row}])
    with plot.options(formats=("svg",)):  # every figure the sweep declares: its columns and parameters exist
        files = sweep.plot(df, tmp_path)
    if not sweep.figures:  # the validation sweep draws its figure (kbench against published) in its export
        assert sweep.export is not None
        files = [f for f in sweep.export(df, tmp_path) if f.suffix == ".png"]
        assert files and files[0].stat().st_size > 1000
        return
    assert files and all(f.suffix == ".svg" and f.stat().st_size > 1000 for f in files)


def test_units_come_from_the_column_table_not_a_suffix():
    assert column("wall_put_ops_per_s").axis_label == "throughput (ops/s, measured)"  # ends in _s: not seconds
    assert column("sim_write_latency_p99_ms").axis_label == "latency (ms, simulated)"
    assert column("sim_pod_startup_p99_s").axis_label == "latency (s, simulated)"
    assert column("wall_sim_seconds_per_s").axis_label == "speed (simulated s per wall s, measured)"
    assert column("sim_api_resource_p99_max_s").label == "API resource scope p99 (worst)"
    with pytest.raises(ValueError, match="column 'rules': not a sim_/wall_ result column"):
        column("rules")
    assert plottable(pd.DataFrame({"sim_a_s": [1.0], "sim_slo_passed": [True], "wall_b": ["x"], "n": [1]})) == [
        "sim_a_s"
    ]


def test_simulated_and_measured_columns_never_share_an_axis():
    fig = plot.lines(
        table(),
        "keys",
        ["sim_write_latency_p99_ms", "wall_put_ops_per_s", "sim_read_latency_p99_ms"],
        PARAMS,
        title="t",
    )
    labels = [ax.get_ylabel() for ax in fig.axes if ax.get_ylabel()]
    assert labels == ["latency (ms, simulated)", "put\nthroughput (ops/s, measured)"]
    assert {line.get_label().split(",")[0] for line in data_lines(fig.axes[1])} == {"put"}
    with pytest.raises(ValueError, match="one panel cannot show sim_read_latency_p99_ms, wall_put_ops_per_s"):
        plot.lines(table(), "keys", [["sim_read_latency_p99_ms", "wall_put_ops_per_s"]], PARAMS, title="t")


def test_a_line_joins_only_points_that_differ_in_x():
    df = table()
    fig = plot.lines(df, "keys", ["sim_read_latency_p50_ms"], PARAMS, title="t")
    lines = data_lines(fig.axes[0])
    assert len(lines) == 2 * 3  # one per members x clients
    for line in lines:
        members, clients = (int(v) for v in re.findall(r"=(\d+)", line.get_label()))
        want = df[(df.members == members) & (df.clients == clients)].sort_values("keys")
        assert list(line.get_xdata()) == list(want["keys"])
        assert np.allclose(line.get_ydata(), want["sim_read_latency_p50_ms"])


def test_etcd_latency_draws_reads_and_writes_apart():
    spec = next(s for s in ETCD_FIGURES if s.stem == "etcd_latency")
    fig = plot.lines(table(), spec.x, spec.metrics, PARAMS, title=spec.title, facet=spec.facet)
    for ax in fig.axes:
        kinds = {line.get_label().split()[0] for line in data_lines(ax)}
        assert kinds in ({"read"}, {"write"})
    assert not any("all_latency" in name for s in ETCD_FIGURES for row in plot.rows_of(s.metrics) for name in row)


def test_a_line_along_a_parameter_averages_seeds_at_each_point():
    df = table(seeds=3)
    fig = plot.lines(
        df,
        "sim_throughput_ops_per_s",
        ["sim_read_latency_p50_ms"],
        PARAMS,
        title="t",
        along="clients",
        split=["members"],
    )
    line = next(line for line in data_lines(fig.axes[0]) if line.get_label().endswith("members=1"))
    assert list(line.get_xdata()) == [800.0, 8000.0, 80000.0]  # one point per client count, in client order
    want = df[df.members == 1].groupby("clients")["sim_read_latency_p50_ms"].mean()  # over seeds and keys
    assert np.allclose(line.get_ydata(), want.sort_index()) and df["replicate"].nunique() == 3


def test_repeats_get_a_band_named_in_the_legend_unless_bands_are_off():
    df = table(seeds=3)
    fig = plot.lines(df, "keys", ["sim_read_latency_p50_ms"], PARAMS, title="t", split=["members"])
    bands = [c for c in fig.axes[0].collections if isinstance(c, PolyCollection)]
    assert len(bands) == 2  # one per line: members 1 and 3, over seeds and clients
    low, high = bands[0].get_paths()[0].vertices[:, 1].min(), bands[0].get_paths()[0].vertices[:, 1].max()
    assert (low, high) == pytest.approx(
        (df[df.members == 1]["sim_read_latency_p50_ms"].min(), df[df.members == 1]["sim_read_latency_p50_ms"].max())
    )
    assert "band: range over seeds and repeats" in [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    with plot.options(bands=False):
        fig = plot.lines(df, "keys", ["sim_read_latency_p50_ms"], PARAMS, title="t", split=["members"])
    assert not fig.axes[0].collections and len(data_lines(fig.axes[0])) == 2
    assert not any(t.get_text().startswith("band") for t in fig.axes[0].get_legend().get_texts())


def test_series_differ_by_colour_and_the_legend_sits_outside_the_data():
    fig = plot.lines(
        table(),
        "keys",
        [
            ["sim_read_latency_p50_ms", "sim_read_latency_p99_ms"],
            ["sim_write_latency_p50_ms", "sim_write_latency_p99_ms"],
        ],
        PARAMS,
        title="t",
        facet="members",
        slos=[("sim_write_latency_p99_ms", 10.0, "write p99 <= 10 ms")],
    )
    lines = [line for ax in fig.axes for line in data_lines(ax)]
    assert len({line.get_label() for line in lines}) == 12
    colours = {line.get_label(): matplotlib.colors.to_hex(line.get_color()) for line in lines}
    assert len(set(colours.values())) == 12
    fig.canvas.draw()
    legend = next(ax.get_legend() for ax in fig.axes if ax.get_legend())
    assert len(legend.get_texts()) == 13  # 12 series and the SLO
    assert not any(legend.get_window_extent().overlaps(ax.get_window_extent()) for ax in fig.axes)


def test_log_ticks_are_plain_numbers():
    df = table().assign(sim_throughput_ops_per_s=lambda d: d["clients"] * 8.02 + 70)
    fig = plot.lines(df, "keys", ["sim_throughput_ops_per_s"], PARAMS, title="t", logy=True)
    ax = fig.axes[0]
    fig.canvas.draw()
    texts = [t.get_text() for axis in (ax.xaxis, ax.yaxis) for t in axis.get_ticklabels(which="both")]
    shown = [t for t in texts if t]
    assert "1k" in shown and "100" in shown
    assert all(re.fullmatch(r"[\d.,]+[kMG]?", t) for t in shown), shown
    assert (tick(1000), tick(2500), tick(0.1), tick(3e6), tick(80.2)) == ("1k", "2.5k", "0.1", "3M", "80.2")


def test_numbers_are_written_one_way():
    assert [number(v) for v in (12345.6, 5.0, 0.0012345, 2.68e7, 32009, float("nan"), 1e-5, "x")] == [
        "12,346",
        "5",
        "0.001234",
        "26,800,000",
        "32,009",
        "-",
        "1e-05",
        "x",
    ]
    assert [number(v) for v in (np.float32("nan"), np.float32(2.5), pd.NA, None, np.int64(32009))] == [
        "-",
        "2.5",
        "-",
        "-",
        "32,009",
    ]  # NumPy scalars as their Python twins


def test_options_redraw_any_figure_against_another_parameter_and_scales():
    with plot.options(x="clients", logx=False, logy=True):
        fig = plot.lines(table(), "keys", ["sim_read_latency_p50_ms"], PARAMS, title="t", facet="members")
    for ax in fig.axes:
        assert (ax.get_xscale(), ax.get_yscale(), ax.get_xlabel()) == ("linear", "log", "closed-loop clients")
    assert fig.get_suptitle() == "t vs clients"


def test_the_report_pdf_gets_each_saved_figure(tmp_path):
    from matplotlib.backends.backend_pdf import PdfPages

    with PdfPages(tmp_path / "r.pdf") as pdf, plot.options(pages=pdf, formats=("svg",)):
        files = plot.plotter(ETCD_FIGURES[:2], PARAMS)(table(), tmp_path)
        assert pdf.get_pagecount() == 2
    assert [f.name for f in files] == ["etcd_throughput.svg", "etcd_latency.svg"]


def test_a_panel_without_data_says_so():
    df = table().assign(sim_throughput_ops_per_s=np.nan)
    fig = plot.lines(df, "keys", ["sim_throughput_ops_per_s", "sim_read_latency_p50_ms"], PARAMS, title="t")
    assert [t.get_text() for t in fig.axes[0].texts] == ["no data: sim_throughput_ops_per_s empty"]
    assert not fig.axes[1].texts and data_lines(fig.axes[1])
