"""The FGD paper's published runs, beside which kbench's replays are shown (``data/gpushare/README.md`` says
where they come from and how the file was derived from the repository's expected results)."""

from __future__ import annotations

import functools
from pathlib import Path

import pandas as pd

DATA = Path(__file__).resolve().parents[2] / "data" / "gpushare" / "fgd_expected_results.csv.gz"
SOURCE = (
    "hkust-adsl/kubernetes-scheduler-simulator@8f3d641 experiments/analysis/expected_results/"
    "analysis_{allo,frag_ratio}_discrete.csv"
)
TRACES = (
    "default", "cpu050", "cpu100", "cpu200", "cpu250", "gpushare40", "gpushare60", "gpushare80", "gpushare100",
    "gpuspec10", "gpuspec20", "gpuspec25", "gpuspec33", "multigpu20", "multigpu30", "multigpu40", "multigpu50",
)  # fmt: skip
"""The paper's 17 traces (``experiments/run_scripts/generate_run_scripts.py`` ``FILELIST``)."""
SEEDS = 10
"""Runs per trace and policy in the paper's grid (``REPEAT``)."""


def expected() -> pd.DataFrame:
    """Per trace, policy and arrived percent (0-130): GPU allocation mean, min and max over the paper's seeds, and
    the mean fragmentation ratio (a copy: the file is read once per process)."""
    return _read().copy()


@functools.cache
def _read() -> pd.DataFrame:
    return pd.read_csv(DATA)


def at(arrived_pct: int = 130) -> pd.DataFrame:
    """The paper's table at one arrived percent, indexed by (trace, policy)."""
    table = expected()
    return table[table.arrived_pct == arrived_pct].set_index(["trace", "policy"]).drop(columns="arrived_pct")
