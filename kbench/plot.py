"""Figures for sweeps: one style, axes and legends from the column metadata, legends beside the data.

A figure draws result columns against a parameter. Its panels come from :mod:`kbench.columns`: columns share an
axis only when kind (simulated or measured), quantity and unit agree, so simulated and measured numbers are never
on one axis. Every series has its own colour; log axes are labelled with plain numbers (``100``, ``1k``, ``0.1``).
Every figure is saved as PNG and SVG (and PDF on request) beside the results, and drawn again, as vectors, into
a report's PDF when one is being written (:func:`options` ``pages``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import matplotlib
import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.artist import Artist
from matplotlib.collections import PolyCollection
from matplotlib.ticker import FuncFormatter, LogFormatter, ScalarFormatter

from kbench.columns import column, tick

if TYPE_CHECKING:
    from matplotlib.backends.backend_pdf import PdfPages

    from kbench.params import Axis

FORMATS = ("png", "svg")
PNG_DPI = 150
LINESTYLES = ("-", "--", "-.", ":")
SLO_COLOR = "crimson"
LEGEND: dict[str, Any] = {"loc": "upper left", "bbox_to_anchor": (1.02, 1), "fontsize": "small", "frameon": False}
"""A legend to the right of the (top-right) axes, outside the data."""


@dataclass(frozen=True)
class Options:
    """How figures are drawn and saved; :func:`options` changes them for a block (``kbench plot``, reports)."""

    formats: tuple[str, ...] = FORMATS
    """The files :func:`save` writes."""
    bands: bool = True
    """Draw the band from the lowest to the highest seed where points ran with several seeds."""
    x: str | None = None
    """Draw every figure against this parameter instead of its own x."""
    logx: bool | None = None
    """Log x axis; None: log when the x values are positive and span a decade or more."""
    logy: bool | None = None
    """Log y axis; None: each figure's own choice."""
    pages: PdfPages | None = None
    """Also draw every saved figure into this PDF (as vectors)."""


_options = [Options()]


@contextlib.contextmanager
def options(**changes) -> Iterator[Options]:
    """Within the block, figures are drawn and saved with these :class:`Options` fields changed."""
    _options.append(dataclasses.replace(_options[-1], **changes))
    try:
        yield _options[-1]
    finally:
        _options.pop()


@dataclass(frozen=True)
class Spec:
    """One figure of a sweep, saved as ``stem``: :func:`lines` of ``metrics`` against ``x``."""

    stem: str
    title: str
    metrics: Sequence[str] | Sequence[Sequence[str]]
    x: str
    facet: str | None = None
    along: str | None = None
    split: Sequence[str] | None = None
    logy: bool = False


class _LogTicks(LogFormatter):
    """matplotlib's log-axis labeller (it decides which minor ticks get a label) writing plain numbers."""

    def _num_to_string(self, x: float, vmin: float, vmax: float) -> str:
        return tick(x)


def style(ax: plt.Axes, logx: bool = False, logy: bool = False) -> None:
    """kbench's look for one axes: grid, and scales with plain-number ticks (set per axes: rc_context would reset a
    notebook's inline backend); :func:`legend` draws the figure's legend."""
    ax.grid(True, alpha=0.3)
    ax.spines[["top", "right"]].set_visible(False)
    ax.title.set_fontsize("medium")
    for axis, set_scale, log in ((ax.xaxis, ax.set_xscale, logx), (ax.yaxis, ax.set_yscale, logy)):
        if log:
            set_scale("log")
            axis.set_major_formatter(_LogTicks())
            axis.set_minor_formatter(_LogTicks(labelOnlyBase=False))
        elif isinstance(axis.get_major_formatter(), ScalarFormatter):  # numbers, not categories
            axis.set_major_formatter(FuncFormatter(lambda value, _: tick(value)))


def save(fig: plt.Figure, out_dir: Path, stem: str, formats: Sequence[str] | None = None) -> list[Path]:
    """Write ``fig`` as ``out_dir/stem.<format>`` for each format (PNG at :data:`PNG_DPI`), and into the report
    PDF being written if any; closes the figure and returns the paths."""
    opts = _options[-1]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in formats or opts.formats:
        path = out_dir / f"{stem}.{fmt}"
        fig.savefig(path, bbox_inches="tight", dpi=PNG_DPI if fmt == "png" else "figure")
        paths.append(path)
    if opts.pages is not None:
        opts.pages.savefig(fig, bbox_inches="tight")
    plt.close(fig)
    return paths


def varying(df: pd.DataFrame, params: Sequence[str], exclude: Sequence[str | None] = ()) -> list[str]:
    """The parameters that take more than one value in ``df`` (the ones a legend must name)."""
    return [p for p in params if p not in exclude and p in df and df[p].nunique() > 1]


def palette(n: int) -> list:
    """``n`` distinct colours: tab10, tab20 beyond ten series, sampled from turbo beyond twenty."""
    if n <= 20:
        return list(matplotlib.color_sequences["tab10" if n <= 10 else "tab20"][:n])  # the colormaps' colours
    return [plt.get_cmap("turbo")(i / (n - 1)) for i in range(n)]


def rows_of(metrics: Sequence[str] | Sequence[Sequence[str]]) -> list[list[str]]:
    """Metrics as rows of panels: a flat list split by axis (kind, quantity, unit), or the given rows, each of
    which must share one axis."""
    if metrics and isinstance(metrics[0], str):
        rows: dict[tuple, list[str]] = {}
        for name in cast(Sequence[str], metrics):  # a flat list (mypy does not narrow a sequence by its first item)
            rows.setdefault(column(name).axis, []).append(name)
        return list(rows.values())
    for row in metrics:
        axes = {column(name).axis_label for name in row}
        if len(axes) > 1:
            raise ValueError(f"one panel cannot show {', '.join(row)}: they need different axes ({', '.join(axes)})")
    return [list(row) for row in metrics]


def _log_worthy(values: pd.Series) -> bool:
    values = values.dropna()
    return len(values) > 0 and values.min() > 0 and values.max() >= 10 * values.min()


def lines(
    df: pd.DataFrame,
    x: str,
    metrics: Sequence[str] | Sequence[Sequence[str]],
    params: Sequence[Axis],
    *,
    title: str,
    facet: str | None = None,
    along: str | None = None,
    split: Sequence[str] | None = None,
    logx: bool | None = None,
    logy: bool = False,
    slos: Sequence[tuple[str, float, str]] = (),
) -> plt.Figure:
    """Result columns against a parameter: one line per combination of the other varying parameters.

    Parameters
    ----------
    df : pandas.DataFrame
        A sweep's results, one row per point and seed.
    x : str
        The parameter on the x axis; or, with ``along``, a result column.
    metrics : list of str, or list of lists of str
        Columns to draw: a flat list gets one row of panels per axis (:func:`rows_of`), lists are the rows.
    params : sequence of Axis
        The sweep's parameters (``name``, ``help``).
    title : str
        What the figure shows; `` vs <x>`` is appended.
    facet : str, optional
        A parameter: one column of panels per value.
    along : str, optional
        When ``x`` is a result column: the parameter each line follows, point by point (at its mean x and y).
    split : sequence of str, optional
        The parameters whose values get lines of their own (default: every varying one). Points that differ in
        the others are drawn as repeats, like seeds: their mean and a band.
    logx, logy : bool, optional
        Log axes; ``logx`` None: log when the x values are positive and span a decade or more.
    slos : sequence of (column, threshold, label)
        SLO thresholds, drawn in the panels that show their column.

    Returns
    -------
    matplotlib.figure.Figure
        With one legend, outside the panels. :func:`options` may replace ``x``, ``logx``, ``logy`` and bands.
    """
    opts = _options[-1]
    if opts.x is not None and opts.x != x:
        x, along, facet = opts.x, None, None if facet == opts.x else facet
    logy = logy if opts.logy is None else opts.logy
    rows = rows_of(metrics)
    names = [p.name for p in params]
    line = along or x
    if line not in names:
        raise ValueError(f"x: {line!r} is not a parameter ({', '.join(names)}); give along= for a column on x")
    logx = logx if opts.logx is None else opts.logx
    logx = _log_worthy(df[x]) if logx is None else logx
    hue = varying(df, split if split is not None else names, exclude=[line, facet])
    groups = [
        (key if isinstance(key, tuple) else (key,), group)
        for key, group in (df.groupby(hue, sort=True) if hue else [((), df)])
    ]
    series = [(key, name) for key, _ in groups for row in rows for name in row]
    plan = _Plan(x, along, facet, hue, groups, dict(zip(series, palette(len(series)))), slos, opts.bands)
    panels = sorted(df[facet].unique()) if facet else [None]
    fig, axes = plt.subplots(
        len(rows),
        len(panels),
        figsize=(4.2 * len(panels) + 3, 3.2 * len(rows) + 0.6),
        squeeze=False,
        sharex=True,
        sharey="row",
        dpi=110,
        layout="constrained",
    )
    for r, row in enumerate(rows):
        for ax, panel in zip(axes[r], panels):
            _panel(ax, plan, row, panel)
            style(ax, logx, logy)
        axes[r][0].set_ylabel((_row_name(row) if len(rows) > 1 else "") + column(row[0]).axis_label)
    xlabel = column(x).axis_label if along else next(p.help for p in params if p.name == x)
    for ax in axes[-1]:
        ax.set_xlabel(xlabel)
    versus = f"{column(x).quantity} ({column(x).label}), along {along}" if along else x
    fig.suptitle(f"{title} vs {versus}", fontsize="large")
    legend(fig)
    return fig


@dataclass(frozen=True)
class _Plan:
    """What every panel of one :func:`lines` figure shares: the axes' columns, the line groups and their colours."""

    x: str
    along: str | None
    facet: str | None
    hue: list[str]
    groups: list[tuple[tuple, pd.DataFrame]]
    colors: dict[tuple[tuple, str], Any]
    slos: Sequence[tuple[str, float, str]]
    bands: bool


def _panel(ax: plt.Axes, plan: _Plan, row: Sequence[str], panel: Any) -> None:
    """One panel: each group's series of the ``row`` columns (at facet value ``panel``), and the SLOs they have."""
    for key, group in plan.groups:
        sub = group if panel is None else group[group[plan.facet] == panel]
        name_of = ", ".join(f"{h}={v}" for h, v in zip(plan.hue, key))
        for i, name in enumerate(row):
            label = ", ".join(part for part in (column(name).label, name_of) if part)
            color, linestyle = plan.colors[(key, name)], LINESTYLES[i % len(LINESTYLES)]
            _draw(ax, sub, plan.x, plan.along, name, color, linestyle, label, plan.bands)
    if not ax.get_lines():
        ax.text(
            0.5, 0.5, f"no data: {', '.join(row)} empty", transform=ax.transAxes, ha="center", color="grey", wrap=True
        )
    for i, (_, threshold, label) in enumerate(s for s in plan.slos if s[0] in row):
        ax.axhline(threshold, color=SLO_COLOR, lw=1.2, ls=LINESTYLES[(i + 1) % len(LINESTYLES)], label=f"SLO: {label}")
    if plan.facet:
        ax.set_title(f"{plan.facet}={panel}")


def legend(fig: plt.Figure) -> None:
    """(Re)draw the figure's one legend beside its top-right axes, outside the data: every labelled artist of
    every axes once, and what a band means if one is drawn (call it again after adding to a figure)."""
    entries: dict[str, Artist] = {}
    for ax in fig.axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            entries.setdefault(label, handle)
    bands = [band for ax in fig.axes for band in ax.collections if isinstance(band, PolyCollection)]
    if bands:
        entries["band: range over seeds and repeats"] = bands[0]
    corner = max(fig.axes, key=lambda ax: (ax.get_position().y1, ax.get_position().x1))
    corner.legend(entries.values(), entries.keys(), **LEGEND)


def _row_name(row: Sequence[str]) -> str:
    """The words the labels of a row's columns start with (``read`` for read p50 and read p99), and a newline."""
    words = zip(*(column(name).label.split() for name in row))
    common = [same[0] for same in itertools.takewhile(lambda same: len(set(same)) == 1, words)]
    return " ".join(common) + "\n" if common else ""


def _draw(
    ax: plt.Axes, df: pd.DataFrame, x: str, along: str | None, name: str, color, linestyle: str, label: str, bands: bool
) -> None:
    """One series: the mean over repeats (seeds, parameters not split on) at each x, and their range as a band."""
    if along:
        stats = df.groupby(along).agg(x=(x, "mean"), mean=(name, "mean")).sort_index().dropna()
        stats = stats.assign(min=stats["mean"], max=stats["mean"], count=1).set_index("x")
    else:
        stats = df.groupby(x)[name].agg(["mean", "min", "max", "count"]).sort_index().dropna()
    if stats.empty:
        return
    ax.plot(stats.index, stats["mean"], linestyle, marker="o", ms=3.5, color=color, label=label)
    if bands and (stats["count"] > 1).any():
        ax.fill_between(stats.index, stats["min"], stats["max"], color=color, alpha=0.15, lw=0)


def plotter(
    specs: Sequence[Spec], params: Sequence[Axis], slos: Sequence[tuple[str, float, str]] = ()
) -> Callable[[pd.DataFrame, Path], list[Path]]:
    """A sweep's ``plot``: draws and saves each of ``specs`` (with the sweep's SLOs) and returns the files."""

    def plot(df: pd.DataFrame, out_dir: Path) -> list[Path]:
        files = []
        for spec in specs:
            fig = lines(
                df,
                spec.x,
                spec.metrics,
                params,
                title=spec.title,
                facet=spec.facet,
                along=spec.along,
                split=spec.split,
                logy=spec.logy,
                slos=slos,
            )
            files += save(fig, out_dir, spec.stem)
        return files

    return plot
