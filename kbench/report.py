"""``kbench report``: one self-contained HTML report of a sweep run (and a PDF), and ``kbench plot``'s re-drawn
figures.

The report holds the run's description and environment, the summary table, every SLO checked per point
(pass / fail), every figure (PNG inline; SVG and PDF files beside it) and the full results table. The PDF
(``report.pdf``, drawn with matplotlib, so available wherever kbench runs) has the same summary, the SLO table
and every figure as vectors, one per page. Every number is written one way (:func:`kbench.columns.number`).
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.backends.backend_pdf import PdfPages

from kbench import plot
from kbench.columns import column, number, plottable
from kbench.sweep import get_sweep
from kbench.sweep.grid import Sweep
from kbench.sweep.results import read_meta


def load_run(path: str | Path) -> tuple[Sweep, Path, pd.DataFrame, dict]:
    """A run directory (or a sweep's directory, meaning its ``latest`` run): sweep, directory, table, meta."""
    run_dir = Path(path)
    if (run_dir / "latest").is_symlink():
        run_dir = run_dir / "latest"
    if not (run_dir / "meta.json").exists() or not (run_dir / "results.parquet").exists():
        raise ValueError(
            f"{path}: not a sweep run (expected meta.json and results.parquet, as written by "
            "`kbench sweep` under results/<sweep>/<run>/)"
        )
    meta = read_meta(run_dir)
    return get_sweep(meta["sweep"]), run_dir.resolve(), pd.read_parquet(run_dir / "results.parquet"), meta


def slo_table(sweep: Sweep, table: pd.DataFrame) -> pd.DataFrame:
    """One row per point and SLO: the value, the threshold and their unit, pass / FAIL / no data; and a FAIL row
    for each point whose run had problems (a wait that timed out, pods never started: the ``problems`` column).

    A point is named by the parameters that vary in the run (and the seed's replicate, with several seeds).
    """
    names = plot.varying(table, [*sweep.param_names, "replicate"]) or [p for p in sweep.param_names if p in table]
    rows = []
    for _, point in table.iterrows():
        label = ", ".join(f"{p}={point[p]}" for p in names)
        for name, threshold, slo in sweep.slos:
            value = point.get(name)
            verdict = "no data" if value is None or pd.isna(value) else ("pass" if value <= threshold else "FAIL")
            rows.append(
                {
                    "point": label,
                    "SLO": slo,
                    "value": value,
                    "threshold": threshold,
                    "unit": column(name).unit,
                    "verdict": verdict,
                }
            )
        if isinstance(point.get("problems"), str) and point["problems"]:
            rows.append(
                {
                    "point": label,
                    "SLO": f"run: {point['problems']}"[:160],
                    "value": float("nan"),
                    "threshold": float("nan"),
                    "unit": "",
                    "verdict": "FAIL",
                }
            )
    return pd.DataFrame(rows, columns=["point", "SLO", "value", "threshold", "unit", "verdict"])


def write_report(path: str | Path) -> list[Path]:
    """Write ``report.html`` and ``report.pdf`` into the run directory; returns them.

    The PDF holds the summary, the SLO table (every point against every SLO) and every figure, drawn again as
    vectors; the HTML the same with the figures as PNG (SVG and PDF files beside it), the environment and every
    result.
    """
    sweep, run_dir, table, meta = load_run(path)
    slos = slo_table(sweep, table)
    summary = table[[c for c in sweep.summary if c in table]]
    pdf_path = run_dir / "report.pdf"
    with PdfPages(pdf_path) as pdf:
        _pdf_text(pdf, sweep, meta, summary, slos)
        with plot.options(formats=("png", "svg", "pdf"), pages=pdf):
            files = sweep.plot(table, run_dir)
    html_path = run_dir / "report.html"
    html_path.write_text(_html(sweep, run_dir, meta, meta.get("environment", {}), summary, slos, files, table))
    return [html_path, pdf_path]


def numbers(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with every number written by :func:`kbench.columns.number` (the report's one number format)."""
    return df.map(number)


def _html(sweep, run_dir, meta, env, summary, slos, files, table) -> str:
    esc = html.escape
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>kbench {esc(sweep.name)} report</title>",
        "<style>body{font-family:sans-serif;max-width:1200px;margin:2em auto;color:#222}"
        "table{border-collapse:collapse;font-size:0.85em}td,th{border:1px solid #ccc;padding:2px 6px}"
        ".FAIL{background:#f8d0d0}.pass{background:#d8f0d8}img{max-width:100%}</style></head><body>",
        f"<h1>kbench sweep <code>{esc(sweep.name)}</code></h1><p>{esc(sweep.description)}</p>",
        f"<p>Run <code>{esc(str(run_dir))}</code>: {len(table)} points, preset {esc(str(meta.get('preset')))}, "
        f"seed {esc(str(meta.get('seed')))}, seeds per point {esc(str(meta.get('seeds', 1)))}. "
        "<b>sim_</b> columns are simulated (virtual time of the modelled cluster); <b>wall_</b> columns are "
        "kbench's own speed on the machine below.</p>",
        "<h2>Summary</h2>",
        numbers(summary).to_html(index=False),
        "<h2>SLOs</h2>",
    ]
    if len(slos):
        parts.append(f"<p>{_slo_count(slos)}.</p><table><tr>{''.join(f'<th>{c}</th>' for c in slos)}</tr>")
        for row in numbers(slos).itertuples(index=False):
            parts.append(f"<tr class='{row.verdict}'>{''.join(f'<td>{esc(v)}</td>' for v in row)}</tr>")
        parts.append("</table>")
    else:
        parts.append("<p>This sweep has no SLO thresholds (its figures compare against references instead).</p>")
    parts.append("<h2>Figures</h2>")
    for png in (f for f in files if f.suffix == ".png"):
        data = base64.b64encode(png.read_bytes()).decode()
        others = " ".join(
            f"<a href='{esc(f.name)}'>{f.suffix[1:].upper()}</a>"
            for f in files
            if f.stem == png.stem and f.suffix != ".png"
        )
        parts.append(
            f"<figure><img alt='{esc(png.stem)}' src='data:image/png;base64,{data}'>"
            f"<figcaption>{esc(png.stem)} ({others})</figcaption></figure>"
        )
    parts += [
        "<h2>Environment</h2><table>",
        *(f"<tr><th>{esc(k)}</th><td>{esc(number(v))}</td></tr>" for k, v in env.items()),
        "</table>",
        "<details><summary>All results</summary>",
        numbers(table).to_html(index=False),
        "</details>",
        f"<details><summary>meta.json</summary><pre>{esc(json.dumps(meta, indent=2, default=str))}</pre>"
        "</details></body></html>",
    ]
    return "\n".join(parts)


def _slo_count(slos: pd.DataFrame, html: bool = True) -> str:
    """``N SLO checks: a met, b failed, c without data`` (no data is never counted as met; the failures in bold
    in ``html``), or ``no SLO thresholds`` for a sweep without any."""
    if not len(slos):
        return "no SLO thresholds"
    count = slos["verdict"].value_counts()
    failed = f"{count.get('FAIL', 0)} failed"
    return (
        f"{len(slos)} SLO checks: {count.get('pass', 0)} met, {f'<b>{failed}</b>' if html else failed}, "
        f"{count.get('no data', 0)} without data"
    )


A4 = (11.7, 8.3)
SLO_ROWS_PER_PAGE = 30
_VERDICT_COLORS = {"pass": "#d8f0d8", "FAIL": "#f8d0d0", "no data": "white"}


def _pdf_text(pdf: PdfPages, sweep: Sweep, meta: dict, summary: pd.DataFrame, slos: pd.DataFrame) -> None:
    """The report's first pages: what was run and its summary, then the SLO table."""
    fig = plt.figure(figsize=A4)
    text = (
        f"kbench sweep {sweep.name}\n{sweep.description}\n\n{len(summary)} points, preset "
        f"{meta.get('preset')}, seed {meta.get('seed')}; "
        + _slo_count(slos, html=False)
        + "\n\n"
        + numbers(summary).to_string(index=False, max_cols=12)
    )
    fig.text(0.03, 0.97, text, va="top", family="monospace", fontsize=7)
    pdf.savefig(fig)
    plt.close(fig)
    pages = range(0, len(slos), SLO_ROWS_PER_PAGE)
    for page, start in enumerate(pages, 1):
        rows = slos.iloc[start : start + SLO_ROWS_PER_PAGE]
        fig, ax = plt.subplots(figsize=A4)
        ax.set_axis_off()
        ax.set_title(f"SLOs, every point ({page}/{len(pages)})", loc="left")
        cells = ax.table(
            cellText=numbers(rows).values.tolist(),
            colLabels=list(rows.columns),
            loc="upper left",
            cellColours=[[_VERDICT_COLORS[v]] * len(rows.columns) for v in rows["verdict"]],
            cellLoc="left",
        )
        cells.auto_set_font_size(False)
        cells.set_fontsize(7)
        cells.auto_set_column_width(range(len(rows.columns)))
        pdf.savefig(fig)
        plt.close(fig)


def replot(
    path: str | Path,
    metrics: Sequence[str] = (),
    x: str | None = None,
    logx: bool | None = None,
    logy: bool | None = None,
    bands: bool = True,
    formats: Sequence[str] = plot.FORMATS,
) -> list[Path]:
    """Re-draw a run's figures: the sweep's own set, or one figure of ``metrics`` (against ``x``, default the
    first numeric parameter that varies in the run); ``x``, ``logx`` and ``logy`` (None: each figure's own) apply
    to either.

    Raises
    ------
    ValueError
        If ``x`` is not a numeric parameter of the sweep or a metric is not a plottable column of the run.
    """
    sweep, run_dir, table, _ = load_run(path)
    numeric = [p.name for p in sweep.params if p.kind in (int, float)]
    if x is not None and x not in numeric:
        raise ValueError(f"--x: {x!r} is not a numeric parameter of sweep {sweep.name!r}; valid: {', '.join(numeric)}")
    valid = plottable(table)
    unknown = [m for m in metrics if m not in valid]
    if unknown:
        raise ValueError(f"--metric: unknown column(s) {', '.join(unknown)}; valid: {', '.join(valid)}")
    with plot.options(formats=tuple(formats), bands=bands, x=x, logx=logx, logy=logy):
        if not metrics:
            return sweep.plot(table, run_dir)
        x = x or next(iter(plot.varying(table, numeric)), numeric[0])
        fig = plot.lines(
            table, x, metrics, sweep.params, title=", ".join(column(m).label for m in metrics), slos=sweep.slos
        )
        return plot.save(fig, run_dir, f"{sweep.name}_{'_'.join(metrics)}_vs_{x}"[:120])


def trend(table: pd.DataFrame, x: str, name: str) -> str:
    """How column ``name`` moves as parameter ``x`` grows, in words computed from ``table`` (the mean over
    seeds and other parameters at each ``x``): e.g. ``rises from 0.0059 s at 100 nodes to 0.0139 s at 400
    nodes``; ``falls ...``; ``stays within 5% ...``; with ``, not steadily`` when it turns on the way; and says
    so when the column has no data (e.g. network programming latency of a run without kube-proxy)."""
    means = table.groupby(x)[name].mean().dropna().sort_index()
    if means.empty:
        return f"has no data at any {x}: no trend to read"
    unit = column(name).unit
    at = [" ".join(filter(None, (number(means.iloc[i]), unit, "at", number(means.index[i]), x))) for i in (0, -1)]
    if len(means) < 2:
        return f"has a single value of {x} ({at[0]}): no trend to read"
    first, last = means.iloc[0], means.iloc[-1]
    if abs(last - first) <= 0.05 * max(abs(first), abs(last)):
        return f"stays within 5% (from {at[0]} to {at[1]})"
    steady = means.is_monotonic_increasing or means.is_monotonic_decreasing
    return f"{'rises' if last > first else 'falls'} from {at[0]} to {at[1]}{'' if steady else ', not steadily'}"
