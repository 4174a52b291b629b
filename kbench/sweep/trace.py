"""The ``trace`` sweep: the FGD paper's GPU-sharing lab, openb traces replayed through its six policies.

Each point replays one openb pod list (``trace``) on the paper's 1,213-GPU-node cluster through one policy
(:mod:`kbench.gpushare.replay`) until the arrived GPU demand reaches ``ratio`` of the cluster's GPUs. The replay's
seed is the point's ``tune_seed``, as the repository's run scripts pass ``-tuneseed 42..51`` to every policy: the six
policies of one trace and tune_seed see the same arrivals and the same node tie order, so they differ only by
policy. The runner's seed does not enter the replay, so the sweep refuses ``--seed`` and ``--seeds``
(``SEEDED = False``): give other ``tune_seed`` values for other draws. Presets: ``quick`` is the default trace x 6
policies x 3 tune seeds (18 replays), ``full`` the paper's grid, its 17 traces x 6 policies x 10 tune seeds
(1,020 replays) at ratio 1.3.

A point's row holds the replay's :meth:`~kbench.gpushare.replay.Replay.summary` as ``sim_*`` columns
(``sim_gpu_alloc_pct``, ``sim_frag_ratio_pct``, ``sim_cpu_alloc_pct``, ``sim_arrived_pct``: % at the end;
``sim_pods``, ``sim_failed_pods``, ``sim_failed_<kind>_pods``, ``sim_unallocated_gpus``), its wall time as
``wall_replay_s``, and its two curves as columns, one per whole percent x of arrived GPU demand from 0 to
100 x ratio: ``sim_gpu_alloc_pct_at_<x>`` and ``sim_frag_ratio_pct_at_<x>`` (NaN where no pod arrived near x), so
every run's curves travel with its row through the runner, Dask and ``--resume``. :func:`curves` turns a result
table into one row per run and arrived percent; the export writes that as ``curves.parquet`` beside
``results.parquet``, the table at 130% beside the paper's (``gpushare_at_130.csv``), one curve figure per trace
(``trace_curves_<trace>``) and the bar chart at 130% (``trace_alloc_at_130``).

``trace`` may be any pod list of the published openb dataset (:data:`TRACES`); the files are read from
``$KBENCH_OPENB_DIR``, else ``../shared/data/openb`` (:func:`kbench.traces.openb.data_dir`), once per worker process
(on a Dask cluster every worker needs them at that path). A worker's first replay also loads (or, the first time on a
machine, compiles: ~15 s) the Numba kernels, which its ``wall_replay_s`` includes.
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from kbench import plot
from kbench.gpushare import paper
from kbench.gpushare.config import POLICIES, policy
from kbench.gpushare.model import KINDS, Nodes
from kbench.gpushare.replay import PAPER_RATIO, Replay, Workload, run
from kbench.params import Param
from kbench.traces import openb

TRACES = (
    *paper.TRACES,
    *("cpu0", "cpu037", "cpu072", "cpu235", "cpu300", "gpushare20", "gpuspec05"),
)
"""The pod lists of the published openb dataset (``openb_pod_list_<trace>.csv``): the paper's 17, then the others."""
POD_LIST = "openb_pod_list_{}.csv"

RATIO = Param("ratio", float, "arrived GPU demand as a share of the cluster's GPUs", minimum=0.01, maximum=3.0)
PARAMS = (
    Param("trace", str, "openb pod list (openb_pod_list_<trace>.csv)", choices=TRACES),
    Param("policy", str, "scheduling policy of the FGD paper", choices=tuple(POLICIES)),
    RATIO,
    Param("tune_seed", int, "the replay's seed (the run scripts' -tuneseed; shared by the policies)", minimum=0),
)

PRESETS = {
    "quick": {"trace": ["default"], "policy": list(POLICIES), "ratio": [PAPER_RATIO], "tune_seed": [42, 43, 44]},
    "full": {
        "trace": list(paper.TRACES),
        "policy": list(POLICIES),
        "ratio": [PAPER_RATIO],
        "tune_seed": list(range(42, 42 + paper.SEEDS)),
    },
}

METRICS = {
    "gpu_alloc_pct": ("GPU allocation", "% of the cluster's GPUs", "gpu_alloc_mean"),
    "frag_ratio_pct": ("fragmentation ratio", "% of idle GPU milli", "frag_ratio_mean"),
}
"""Curve column -> (name, unit, the paper's mean column)."""
CURVE = re.compile(r"sim_(gpu_alloc_pct|frag_ratio_pct)_at_(\d+)")
RUN_KEYS = ("trace", "policy", "ratio", "tune_seed", "replicate")
ARRIVED_LABEL = "arrived GPU demand (% of the cluster's GPUs)"


@functools.lru_cache(maxsize=4)
def _nodes(directory: Path) -> Nodes:
    return Nodes.read(directory)


@functools.lru_cache(maxsize=32)
def _workload(trace: str, directory: Path) -> Workload:
    return Workload.read(trace, directory, _nodes(directory))


def workload(trace: str, directory: str | Path | None = None) -> Workload:
    """The trace's pods on the paper's cluster, read once per process and directory (a CSV read costs ~0.1 s)."""
    return _workload(trace, openb.data_dir(directory))


def available(directory: str | Path | None = None) -> list[str]:
    """The pod lists present in the openb directory; the error says where to get them when it is absent."""
    where = openb.data_dir(directory)
    if not where.is_dir():
        raise ValueError(
            f"openb directory {where}: not found; download the openb CSV files from {openb.SOURCE} and give "
            f"--data-dir or set ${openb.ENV}"
        )
    prefix, suffix = POD_LIST.split("{}")
    return sorted(p.name[len(prefix) : -len(suffix)] for p in where.glob(POD_LIST.format("*")))


def row(replay: Replay) -> dict:
    """A replay as a result row: its summary as ``sim_*``, its wall time, its curves as one column per percent."""
    summary = replay.summary()
    out: dict = {f"sim_{key}": float(summary[key]) for key in ("arrived_pct", *METRICS, "cpu_alloc_pct")}
    out["sim_pods"] = summary["pods"]
    out["sim_failed_pods"] = summary["failed"]
    out.update({f"sim_{key}_pods": v for key, v in summary.items() if key.startswith("failed_")})
    out["sim_unallocated_gpus"] = summary["unallocated_gpus"]
    out["wall_replay_s"] = summary["wall_s"]
    points = replay.curves().reindex(range(round(100 * replay.ratio) + 1))
    for metric in METRICS:
        out.update({f"sim_{metric}_at_{x}": float(v) for x, v in points[metric].items()})
    return out


def run_point(params: dict, seed: int) -> dict:
    """Replay the point's trace through its policy with seed ``tune_seed`` (``seed``, the runner's, is unused:
    the policies share their arrivals as in the paper's runs)."""
    replay = run(workload(params["trace"]), policy(params["policy"]), params["tune_seed"], params["ratio"])
    return row(replay)


def describe(replay: Replay) -> str:
    """A few lines on one replay's end state, and the paper's allocation at 130% beside it when it ran the same."""
    s = replay.summary()
    failed = ", ".join(f"{kind} {s['failed_' + kind]:,}" for kind in KINDS)
    lines = [
        f"trace {s['trace']}, policy {s['policy']}, seed {s['seed']}, ratio {s['ratio']:g}: "
        f"{s['pods']:,} pods arrived ({s['arrived_pct']:.1f}% of the cluster's GPUs), {s['failed']:,} failed "
        f"({failed})",
        f"  GPU allocation {s['gpu_alloc_pct']:.2f}%, fragmentation ratio {s['frag_ratio_pct']:.2f}%, "
        f"CPU allocation {s['cpu_alloc_pct']:.2f}%, {s['unallocated_gpus']:,} GPUs unallocated; "
        f"{s['wall_s']:.2f} s wall",
    ]
    reference = paper.at(130)
    if (s["trace"], s["policy"]) in reference.index and replay.ratio == PAPER_RATIO:
        ref = reference.loc[(s["trace"], s["policy"])]
        ours = replay.curves()["gpu_alloc_pct"].get(130, np.nan)
        lines.append(
            f"  at 130% arrived: GPU allocation {ours:.2f}%; the paper ({int(ref.seeds)} seeds): mean "
            f"{ref.gpu_alloc_mean:.2f}%, {ref.gpu_alloc_min:.2f}-{ref.gpu_alloc_max:.2f}%"
        )
    return "\n".join(lines)


def write_replay(replay: Replay, out: str | Path) -> list[Path]:
    """One replay's files in ``out`` (created): ``summary.json`` and ``summary.csv``, ``curves.parquet`` (one row
    per arrived percent) and ``curves.png`` (beside the paper's mean curve when it ran the same)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    summary = {key: value.item() if isinstance(value, np.generic) else value for key, value in replay.summary().items()}
    files = [out / "summary.json", out / "summary.csv", out / "curves.parquet"]
    files[0].write_text(json.dumps(summary, indent=2) + "\n")
    pd.DataFrame([summary]).to_csv(files[1], index=False)
    runs = replay.curves().reset_index()
    runs.to_parquet(files[2], index=False)
    expected = paper.expected()
    same = (expected.trace == replay.trace) & (expected.policy == replay.policy)
    reference = expected[same] if replay.ratio == PAPER_RATIO else None
    title = f"openb trace {replay.trace}, {replay.policy}, seed {replay.seed}: kbench and the FGD paper's mean (dashed)"
    return files + plot.save(
        curves_figure(runs.assign(policy=replay.policy), title, reference), out, "curves", ("png",)
    )


def curves(table: pd.DataFrame) -> pd.DataFrame:
    """One row per run and arrived percent (``arrived_pct``, ``gpu_alloc_pct``, ``frag_ratio_pct``) from a result
    table's curve columns."""
    keys = [k for k in RUN_KEYS if k in table]
    long = table.melt(id_vars=keys, value_vars=[c for c in table if CURVE.fullmatch(str(c))], var_name="column")
    parts = long["column"].str.extract(CURVE.pattern)
    long = long.assign(metric=parts[0], arrived_pct=parts[1].astype(int)).dropna(subset="value")
    wide = long.pivot_table(index=[*keys, "arrived_pct"], columns="metric", values="value").reset_index()
    return wide.rename_axis(columns=None)


def compare_at(table: pd.DataFrame, arrived_pct: int = 130) -> pd.DataFrame:
    """Per trace and policy at ``arrived_pct``: kbench's GPU allocation (mean, min, max over runs) and mean
    fragmentation ratio beside the paper's (:data:`kbench.gpushare.paper.SOURCE`), and kbench minus paper."""
    runs = curves(table)
    at = runs[runs.arrived_pct == arrived_pct].groupby(["trace", "policy"])
    ours = at["gpu_alloc_pct"].agg(kbench_mean="mean", kbench_min="min", kbench_max="max", runs="count")
    ours["kbench_frag_mean"] = at["frag_ratio_pct"].mean()
    theirs = paper.at(arrived_pct).rename(
        columns={
            "gpu_alloc_mean": "paper_mean",
            "gpu_alloc_min": "paper_min",
            "gpu_alloc_max": "paper_max",
            "frag_ratio_mean": "paper_frag_mean",
            "seeds": "paper_runs",
        }
    )
    out = ours.join(theirs, how="left")
    out["diff"] = out["kbench_mean"] - out["paper_mean"]
    out["frag_diff"] = out["kbench_frag_mean"] - out["paper_frag_mean"]
    rank = {"trace": {name: i for i, name in enumerate(TRACES)}, "policy": {name: i for i, name in enumerate(POLICIES)}}
    return out.reset_index().sort_values(["trace", "policy"], key=lambda s: s.map(rank[s.name])).reset_index(drop=True)


def _ordered(policies) -> list[str]:
    """The paper's policy order, then any others (a --scheduler-config policy)."""
    given = set(policies)
    return [p for p in POLICIES if p in given] + sorted(given - set(POLICIES))


def curves_figure(runs: pd.DataFrame, title: str, reference: pd.DataFrame | None = None) -> plt.Figure:
    """GPU allocation and fragmentation ratio against arrived GPU demand, one colour per policy: the mean over the
    runs in ``runs`` (rows of :func:`curves`), their min-max band, and ``reference`` (rows of
    :func:`kbench.gpushare.paper.expected`) dashed."""
    names = _ordered(runs["policy"].unique())
    colors = dict(zip(names, plot.palette(len(names))))
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2), dpi=110, layout="constrained")
    for ax, (metric, (label, unit, paper_column)) in zip(axes, METRICS.items()):
        for name in names:
            stats = runs[runs.policy == name].groupby("arrived_pct")[metric].agg(["mean", "min", "max", "count"])
            ax.plot(stats.index, stats["mean"], color=colors[name], lw=1.4, label=f"{name} (kbench)")
            if (stats["count"] > 1).any():
                ax.fill_between(stats.index, stats["min"], stats["max"], color=colors[name], alpha=0.15, lw=0)
            if reference is not None:
                ref = reference[reference.policy == name]
                ax.plot(ref.arrived_pct, ref[paper_column], "--", color=colors[name], lw=1, label=f"{name} (paper)")
        ax.set_xlabel(ARRIVED_LABEL)
        ax.set_ylabel(f"{label} ({unit})")
        ax.set_title(label)
        plot.style(ax)
    fig.suptitle(title, fontsize="large")
    plot.legend(fig)
    return fig


def bars_figure(compared: pd.DataFrame, arrived_pct: int = 130) -> plt.Figure:
    """GPU allocation at ``arrived_pct`` per policy, kbench's bar beside the paper's, error bars from the lowest
    to the highest run; one panel per trace (rows of :func:`compare_at`)."""
    traces = list(dict.fromkeys(compared["trace"]))
    cols = min(len(traces), 4)
    rows = -(-len(traces) // cols)
    fig, axes = plt.subplots(
        rows, cols, figsize=(4.4 * cols + 2, 3.4 * rows), dpi=110, squeeze=False, sharey=True, layout="constrained"
    )
    low = np.nanmin(compared[["kbench_min", "paper_min"]].to_numpy(dtype=float))
    for ax, trace in zip(axes.flat, traces):
        sub = compared[compared.trace == trace].set_index("policy").reindex(_ordered(compared.policy.unique()))
        x = np.arange(len(sub))
        for shift, who, color in ((-0.2, "kbench", "tab:blue"), (0.2, "paper", "tab:orange")):
            mean = sub[f"{who}_mean"].to_numpy(dtype=float)
            spread = [mean - sub[f"{who}_min"].to_numpy(dtype=float), sub[f"{who}_max"].to_numpy(dtype=float) - mean]
            ax.bar(x + shift, mean, 0.4, yerr=spread, color=color, capsize=2, label=who)
        ax.set_xticks(x, sub.index, rotation=35, ha="right", fontsize="small")
        ax.set_title(f"trace {trace}")
        plot.style(ax)
        ax.set_ylim(max(0.0, np.floor(low / 5) * 5 - 5) if np.isfinite(low) else 0.0, 100)
    for ax in axes.flat[len(traces) :]:
        ax.set_visible(False)
    for ax in axes[:, 0]:
        ax.set_ylabel(f"GPU allocation at {arrived_pct}%\n(% of the cluster's GPUs)")
    fig.suptitle(f"GPU allocation at {arrived_pct}% arrived GPU demand: kbench beside the FGD paper (bars: min-max)")
    plot.legend(fig)
    return fig


def export(df: pd.DataFrame, out_dir: Path) -> list[Path]:
    """The runs' curves (``curves.parquet``), the table at 130% beside the paper's, the curve figure of each trace
    and the bar chart at 130%."""
    out_dir = Path(out_dir)
    runs = curves(df)
    files = [out_dir / "curves.parquet", out_dir / "gpushare_at_130.csv"]
    runs.to_parquet(files[0], index=False)
    compared = compare_at(df)
    compared.to_csv(files[1], index=False)
    expected = paper.expected()
    for trace, group in runs.groupby("trace", sort=False):
        title = f"openb trace {trace}: kbench (mean, band: min-max over runs) and the FGD paper (dashed)"
        fig = curves_figure(group, title, expected[expected.trace == trace])
        files += plot.save(fig, out_dir, f"trace_curves_{trace}")
    if compared.empty:  # no run reached 130% (ratio < 1.3)
        return files
    return files + plot.save(bars_figure(compared), out_dir, "trace_alloc_at_130")


NAME = "trace"
DESCRIPTION = "GPU-sharing lab: openb traces replayed through the FGD paper's six policies (allocation, fragmentation)"
FIGURES = ()
SEEDED = False
SUMMARY = (
    "trace",
    "policy",
    "tune_seed",
    "ratio",
    "sim_gpu_alloc_pct",
    "sim_frag_ratio_pct",
    "sim_failed_pods",
    "wall_replay_s",
)
