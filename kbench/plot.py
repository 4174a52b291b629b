"""Figures for sweeps: one style, units on axes, legends, log scales where sizes span decades.

Every figure is saved as PNG and SVG (and PDF on request) beside the results.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

FORMATS = ("png", "svg")
_formats = [FORMATS]
_bands = [True]


@contextlib.contextmanager
def bands(on: bool) -> Iterator[None]:
    """Within the block, :func:`lines` draws (or not) the band over seeds by default."""
    _bands.append(on)
    try:
        yield
    finally:
        _bands.pop()


@contextlib.contextmanager
def formats(which: Sequence[str]) -> Iterator[None]:
    """Within the block, :func:`save` writes these formats by default (e.g. add ``pdf`` for a report)."""
    _formats.append(tuple(which))
    try:
        yield
    finally:
        _formats.pop()


def style(ax: plt.Axes) -> None:
    """kbench's look for one axes (set per axes: rc_context would reset a notebook's inline backend)."""
    ax.grid(True, alpha=0.3)
    ax.spines[["top", "right"]].set_visible(False)
    ax.title.set_fontsize("medium")


def save(fig: plt.Figure, out_dir: Path, stem: str, formats: Sequence[str] | None = None) -> list[Path]:
    """Write ``fig`` as ``out_dir/stem.<format>`` for each format; returns the paths."""
    formats = formats or _formats[-1]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in formats:
        path = out_dir / f"{stem}.{fmt}"
        fig.savefig(path, bbox_inches="tight")
        paths.append(path)
    plt.close(fig)
    return paths


def varying(df: pd.DataFrame, params: Sequence[str], exclude: Sequence[str] = ()) -> list[str]:
    """The parameters that take more than one value in ``df`` (the ones a legend must name)."""
    return [p for p in params if p not in exclude and p in df and df[p].nunique() > 1]


def lines(df: pd.DataFrame, x: str, metrics: Sequence[tuple[str, str, str]], params: Sequence[str], *,
          title: str, xlabel: str, ylabel: str, facet: str | None = None, logx: bool = True,
          logy: bool = False, slo: tuple[float, str] | None = None, bands: bool | None = None) -> plt.Figure:
    """One line per combination of the varying parameters, per metric, against ``x``.

    ``metrics`` are ``(column, label, linestyle)``; ``facet`` splits panels by a parameter; ``slo`` draws a
    threshold line ``(value, label)``. Points run with several seeds are drawn as their mean with a band
    from the lowest to the highest seed.
    """
    bands = _bands[-1] if bands is None else bands
    panels = sorted(df[facet].unique()) if facet else [None]
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 4), squeeze=False, sharey=True, dpi=110)
    hue = varying(df, params, exclude=[x, facet] if facet else [x])
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, panel in zip(axes[0], panels):
        sub = df if panel is None else df[df[facet] == panel]
        groups = sub.groupby(hue, sort=True) if hue else [((), sub)]
        for i, (key, group) in enumerate(groups):
            key = key if isinstance(key, tuple) else (key,)
            name = ", ".join(f"{h}={v}" for h, v in zip(hue, key))
            for column, label, line in metrics:
                legend = " ".join(part for part in (label, name) if part) or column
                stats = group.groupby(x)[column].agg(["mean", "min", "max", "count"]).sort_index()
                color = colors[i % len(colors)]
                ax.plot(stats.index, stats["mean"], line, marker="o", ms=3.5, color=color, label=legend)
                if bands and (stats["count"] > 1).any():
                    ax.fill_between(stats.index, stats["min"], stats["max"], color=color, alpha=0.15, lw=0)
        if slo is not None:
            ax.axhline(slo[0], color="crimson", lw=1.2, ls=":", label=slo[1])
        ax.set_xlabel(xlabel)
        ax.set_title(f"{facet}={panel}" if facet else title)
        if logx:
            ax.set_xscale("log")
        if logy:
            ax.set_yscale("log")
        style(ax)
    axes[0][0].set_ylabel(ylabel)
    axes[0][-1].legend(loc="best", fontsize="small")
    if facet:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
