"""The ``validation`` sweep: every published experiment of ``data/validation/`` run by its preset, one point per
experiment (``quick``: the experiments small enough for CI; ``full``: every one, the 5,000-node runs included).

Each point runs the experiment's scenario (reporting its summary: every SLI, the verdict, kbench's speed) or its
points of another sweep, and one ``sim_<row key>`` column per published figure (:mod:`kbench.validation`). The
export writes the comparison table (``validation.csv``), the figure (kbench against published, one panel per SLI)
and ``validation.md``; ``kbench validate`` runs it and prints the table.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from kbench import validation
from kbench.params import Param
from kbench.sweep import progress

KNOWN = validation.experiments()

PARAMS = (Param("experiment", str, "a published experiment in data/validation", choices=tuple(KNOWN) or None),)

PRESETS = {
    "quick": {"experiment": [name for name, exp in KNOWN.items() if exp.quick]},
    "full": {"experiment": list(KNOWN)},
}


def run_point(params: dict, seed: int) -> dict:
    """Run the experiment (its scenario, or its points of a sweep); its figure for every published row."""
    return KNOWN[params["experiment"]].run(seed, on_advance=progress.report)


def export(df: pd.DataFrame, out_dir: Path) -> list[Path]:
    """The comparison table, its report and its figure."""
    table = validation.compare(df, KNOWN)
    out_dir = Path(out_dir)
    table.to_csv(out_dir / "validation.csv", index=False)
    (out_dir / "validation.md").write_text(validation.report(table, KNOWN))
    return [out_dir / "validation.csv", out_dir / "validation.md", validation.figure(table, out_dir / "validation.png")]


NAME = "validation"
DESCRIPTION = "kbench beside published measurements: every experiment of data/validation run by its preset"
FIGURES = ()
SUMMARY = ("experiment", "wall_point_seconds")
