"""Parameter sweeps: grids of points, run on local workers, stored as tidy Parquet, plotted."""

from __future__ import annotations

import os
import time
from importlib import import_module
from pathlib import Path

from kbench.sweep.grid import Param, Sweep

_REGISTRY = {"cluster": "kbench.sweep.cluster", "etcd": "kbench.sweep.etcd", "proxy": "kbench.sweep.proxy",
             "scheduler": "kbench.sweep.scheduler"}


def sweep_names() -> list[str]:
    """Names of the sweeps kbench knows."""
    return sorted(_REGISTRY)


def get_sweep(name: str) -> Sweep:
    """The sweep called ``name``."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown sweep {name!r}; valid: {', '.join(sweep_names())}")
    return import_module(_REGISTRY[name]).SWEEP


def run_sweep(name: str, preset: str = "quick", params: dict | None = None, out: str | Path = "results",
              run: str | None = None, seed: int = 0, jobs: int | None = None, progress: bool = True,
              dask=None, resume: bool = False, seeds: int = 1):
    """Run a sweep from Python (what ``kbench sweep`` does): returns (table, run directory, written files).

    ``params`` replaces whole axes of the preset, e.g. ``{"keys": [1000, 10000]}``; ``dask`` runs the points
    on a Dask cluster (a ``distributed.Client`` or a scheduler address); ``resume`` continues the run
    directory ``run`` (default: the sweep's latest run) without recomputing its finished points; ``seeds``
    runs every point that many times with different seeds (the ``replicate`` column; plots draw bands).
    """
    from kbench.sweep import runner

    sweep = get_sweep(name)
    overrides = {key: list(values) if isinstance(values, (list, tuple)) else [values]
                 for key, values in (params or {}).items()}
    points = runner.expand(sweep, sweep.grid(preset, overrides), seeds)
    if jobs is not None and (isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1):
        raise ValueError(f"jobs must be >= 1, got {jobs}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    latest = Path(out) / sweep.name / "latest"
    if resume and run is None:
        if not latest.is_symlink():
            raise ValueError(f"--resume: no previous run of sweep {sweep.name!r} under {Path(out)}; give --run")
        run = os.readlink(latest)
    run_dir = Path(out) / sweep.name / (run or time.strftime("%Y%m%d-%H%M%S"))
    table = runner.run(sweep, points, run_dir, seed=seed, jobs=jobs, progress=progress, dask=dask, resume=resume,
                       meta={"preset": preset, "overrides": overrides, "seeds": seeds})
    figures = sweep.plot(table, run_dir)
    if sweep.export is not None:
        figures += sweep.export(table, run_dir)
    if latest.is_symlink() or not latest.exists():
        latest.unlink(missing_ok=True)
        latest.symlink_to(run_dir.name)
    return table, run_dir, figures


__all__ = ["Param", "Sweep", "get_sweep", "run_sweep", "sweep_names"]
