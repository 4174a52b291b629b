"""``kbench report``: one self-contained HTML report of a sweep run (and a PDF), and ``kbench plot``'s re-drawn
figures.

The report holds the run's description and environment, the summary table, every SLO checked per point
(pass / fail), every figure (PNG inline; SVG and PDF files beside it) and the full results table. The PDF
(``report.pdf``, drawn with matplotlib, so available wherever kbench runs) has the same summary and
figures, one per page.
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.backends.backend_pdf import PdfPages

from kbench import plot
from kbench.sweep import get_sweep
from kbench.sweep.grid import Sweep
from kbench.sweep.results import read_meta


def load_run(path: str | Path) -> tuple[Sweep, Path, pd.DataFrame, dict]:
    """A run directory (or a sweep's directory, meaning its ``latest`` run): sweep, directory, table, meta."""
    run_dir = Path(path)
    if (run_dir / "latest").is_symlink():
        run_dir = run_dir / "latest"
    if not (run_dir / "meta.json").exists() or not (run_dir / "results.parquet").exists():
        raise ValueError(f"{path}: not a sweep run (expected meta.json and results.parquet, as written by "
                         "`kbench sweep` under results/<sweep>/<run>/)")
    meta = read_meta(run_dir)
    return get_sweep(meta["sweep"]), run_dir.resolve(), pd.read_parquet(run_dir / "results.parquet"), meta


def slo_table(sweep: Sweep, table: pd.DataFrame) -> pd.DataFrame:
    """One row per point and SLO: the value, the threshold, pass / fail (no data: not checked)."""
    rows = []
    for _, point in table.iterrows():
        label = ", ".join(f"{p}={point[p]}" for p in sweep.param_names if p in point)
        for column, threshold, name in sweep.slos:
            value = point.get(column)
            verdict = "no data" if value is None or pd.isna(value) else ("pass" if value <= threshold else "FAIL")
            rows.append({"point": label, "SLO": name, "value": value, "threshold": threshold, "verdict": verdict})
    return pd.DataFrame(rows, columns=["point", "SLO", "value", "threshold", "verdict"])


def figures(sweep: Sweep, run_dir: Path, table: pd.DataFrame) -> list[Path]:
    """Re-draw the sweep's figures as PNG, SVG and PDF into the run directory."""
    with plot.formats(("png", "svg", "pdf")):
        return [f for f in sweep.plot(table, run_dir) if f.suffix in (".png", ".svg", ".pdf")]


def write_report(path: str | Path) -> list[Path]:
    """Write ``report.html`` and ``report.pdf`` into the run directory; returns them."""
    sweep, run_dir, table, meta = load_run(path)
    files = figures(sweep, run_dir, table)
    slos = slo_table(sweep, table)
    summary = table[[c for c in sweep.summary if c in table]]
    env = meta.get("environment", {})
    html_path = run_dir / "report.html"
    html_path.write_text(_html(sweep, run_dir, meta, env, summary, slos, files, table))
    pdf_path = run_dir / "report.pdf"
    _pdf(pdf_path, sweep, meta, summary, slos, [f for f in files if f.suffix == ".png"])
    return [html_path, pdf_path]


def _html(sweep, run_dir, meta, env, summary, slos, files, table) -> str:
    esc = html.escape
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>kbench {esc(sweep.name)} report</title>",
             "<style>body{font-family:sans-serif;max-width:1200px;margin:2em auto;color:#222}"
             "table{border-collapse:collapse;font-size:0.85em}td,th{border:1px solid #ccc;padding:2px 6px}"
             ".FAIL{background:#f8d0d0}.pass{background:#d8f0d8}img{max-width:100%}</style></head><body>",
             f"<h1>kbench sweep <code>{esc(sweep.name)}</code></h1><p>{esc(sweep.description)}</p>",
             f"<p>Run <code>{esc(str(run_dir))}</code>: {len(table)} points, preset {esc(str(meta.get('preset')))}, "
             f"seed {esc(str(meta.get('seed')))}, seeds per point {esc(str(meta.get('seeds', 1)))}. "
             "<b>sim_</b> columns are simulated (virtual time of the modelled cluster); <b>wall_</b> columns are "
             "kbench's own speed on the machine below.</p>",
             "<h2>Summary</h2>", summary.to_html(index=False, float_format=lambda v: f"{v:,.4g}"),
             "<h2>SLOs</h2>"]
    if len(slos):
        failed = int((slos["verdict"] == "FAIL").sum())
        parts.append(f"<p>{len(slos)} checks, <b>{failed} failed</b>.</p><table><tr><th>point</th><th>SLO</th>"
                     "<th>value</th><th>threshold</th><th>verdict</th></tr>")
        for r in slos.itertuples():
            parts.append(f"<tr class='{r.verdict}'><td>{esc(r.point)}</td><td>{esc(r.SLO)}</td>"
                         f"<td>{r.value:,.4g}</td><td>{r.threshold:g}</td><td>{r.verdict}</td></tr>")
        parts.append("</table>")
    else:
        parts.append("<p>This sweep has no SLO thresholds (its figures compare against references instead).</p>")
    parts.append("<h2>Figures</h2>")
    for png in (f for f in files if f.suffix == ".png"):
        data = base64.b64encode(png.read_bytes()).decode()
        others = " ".join(f"<a href='{esc(f.name)}'>{f.suffix[1:].upper()}</a>" for f in files
                          if f.stem == png.stem and f.suffix != ".png")
        parts.append(f"<figure><img alt='{esc(png.stem)}' src='data:image/png;base64,{data}'>"
                     f"<figcaption>{esc(png.stem)} ({others})</figcaption></figure>")
    parts += ["<h2>Environment</h2><table>", *(f"<tr><th>{esc(k)}</th><td>{esc(str(v))}</td></tr>"
                                                for k, v in env.items()), "</table>",
              "<details><summary>All results</summary>",
              table.to_html(index=False, float_format=lambda v: f"{v:,.4g}"), "</details>",
              f"<details><summary>meta.json</summary><pre>{esc(json.dumps(meta, indent=2, default=str))}</pre>"
              "</details></body></html>"]
    return "\n".join(parts)


def _pdf(path: Path, sweep, meta, summary, slos, pngs: list[Path]) -> None:
    with PdfPages(path) as pdf:
        fig = plt.figure(figsize=(11.7, 8.3))
        failed = int((slos["verdict"] == "FAIL").sum()) if len(slos) else 0
        text = (f"kbench sweep {sweep.name}\n{sweep.description}\n\n{len(summary)} points, preset "
                f"{meta.get('preset')}, seed {meta.get('seed')}; SLO checks: {len(slos)}, failed: {failed}\n\n"
                + summary.to_string(index=False, max_cols=12, float_format=lambda v: f"{v:,.4g}"))
        fig.text(0.03, 0.97, text, va="top", family="monospace", fontsize=7)
        pdf.savefig(fig)
        plt.close(fig)
        for png in pngs:
            fig, ax = plt.subplots(figsize=(11.7, 8.3))
            ax.imshow(plt.imread(png))
            ax.set_axis_off()
            ax.set_title(png.stem)
            pdf.savefig(fig)
            plt.close(fig)


def replot(path: str | Path, metrics: list[str] | None = None, x: str | None = None, logx: bool = True,
           logy: bool = False, bands: bool = True, formats: tuple[str, ...] = ("png", "svg")) -> list[Path]:
    """Re-draw a run's figures: the sweep's own set, or one figure of ``metrics`` against ``x``."""
    sweep, run_dir, table, _ = load_run(path)
    if not metrics:
        with plot.formats(formats), plot.bands(bands):
            return sweep.plot(table, run_dir)
    unknown = [m for m in metrics if m not in table]
    numeric = [c for c in table if c.startswith(("sim_", "wall_"))]
    if unknown:
        raise ValueError(f"--metric: unknown column(s) {', '.join(unknown)}; columns: {', '.join(numeric)}")
    x = x or sweep.param_names[0]
    if x not in sweep.param_names:
        raise ValueError(f"--x: {x!r} is not a parameter of sweep {sweep.name!r}; "
                         f"valid: {', '.join(sweep.param_names)}")
    unit = "seconds" if all(m.endswith("_s") for m in metrics) else "value"
    kind = "simulated" if all(m.startswith("sim_") for m in metrics) else "measured"
    fig = plot.lines(table, x, [(m, m, "-") for m in metrics], sweep.param_names,
                     title=f"{sweep.name}: {', '.join(metrics)} vs {x} ({kind})", xlabel=x,
                     ylabel=f"{unit} ({kind})", logx=logx, logy=logy, bands=bands)
    return plot.save(fig, run_dir, f"{sweep.name}_{'_'.join(metrics)}_vs_{x}"[:120], formats)
