"""Parameter sweeps: grids of points, run on local workers, stored as tidy Parquet, plotted."""

from __future__ import annotations

import os
from pathlib import Path

from kbench.sweep import results, runner
from kbench.sweep.grid import Param, Sweep
from kbench.sweep.registry import get_sweep, sweep_names


def run_sweep(
    name: str,
    preset: str | None = None,
    params: dict | None = None,
    out: str | Path = "results",
    run: str | None = None,
    seed: int | None = None,
    jobs: int | None = None,
    progress: bool = True,
    dask=None,
    resume: bool = False,
    seeds: int | None = None,
):
    """Run a sweep from Python (what ``kbench sweep`` does): returns (table, run directory, written files).

    ``preset`` (default ``quick``) and ``params``, which replaces whole axes of the preset, e.g.
    ``{"keys": [1000, 10000]}``, make the grid; ``seed`` (default 0) seeds it and ``seeds`` (default 1) runs
    every point that many times with different seeds (the ``replicate`` column; plots draw bands). ``dask``
    runs the points on a Dask cluster (a ``distributed.Client`` or a scheduler address). A new run gets a
    folder of its own (``run``, or a new time-named one) and is the sweep's ``latest`` from the moment it
    starts. ``resume`` continues the run ``run`` (default: ``latest``) with its own grid, computing only the
    points it has not stored; grid values given with it must match the run's.

    Raises
    ------
    ValueError
        Bad names or values, a folder that is not this sweep's to write, an unreachable Dask scheduler.
    kbench.sweep.runner.Interrupted
        Ctrl-C: the finished points stay stored; resume with ``resume=True, run=<its folder name>``.
    """
    sweep = get_sweep(name)
    if jobs is not None and (isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1):
        raise ValueError(f"jobs must be >= 1, got {jobs}")
    parent = Path(out) / sweep.name
    given = {
        "preset": preset,
        "seed": seed,
        "seeds": seeds,
        "overrides": None
        if params is None
        else {key: list(v) if isinstance(v, (list, tuple)) else [v] for key, v in params.items()},
    }
    run_dir: Path | None = None  # the resumed run's folder; a new run claims one below
    if resume:
        if run is None:
            if not (parent / "latest").is_symlink():
                raise ValueError(f"--resume: no previous run of sweep {sweep.name!r} under {Path(out)}; give --run")
            run = os.readlink(parent / "latest")
        run_dir = parent / run
        grid = results.resumable(run_dir, sweep.name, given)
    else:
        defaults = {"preset": "quick", "seed": 0, "seeds": 1, "overrides": {}}
        grid = {key: defaults[key] if value is None else value for key, value in given.items()}
    points = runner.expand(sweep, sweep.grid(grid["preset"], grid["overrides"]), grid["seeds"])
    seed = grid["seed"]
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if seed and not sweep.seeded:
        raise ValueError(f"seed: the {sweep.name} sweep takes its randomness from a parameter, not --seed; got {seed}")
    client = runner.connect(dask) if dask is not None else None
    try:
        if run_dir is None:
            run_dir = results.claim_run_dir(
                parent, run, {"sweep": sweep.name, **grid, "points": len(points), "environment": results.environment()}
            )
        results.set_latest(parent, run_dir)
        table = runner.run(sweep, points, run_dir, seed=seed, jobs=jobs, progress_bar=progress, client=client)
    finally:
        if client is not None and client is not dask:
            client.close()
    figures = sweep.plot(table, run_dir)
    if sweep.export is not None:
        figures += sweep.export(table, run_dir)
    return table, run_dir, figures


__all__ = ["Param", "Sweep", "get_sweep", "run_sweep", "sweep_names"]
