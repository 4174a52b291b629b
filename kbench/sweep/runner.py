"""Run a sweep's points on local worker processes, storing each point as it finishes."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm.auto import tqdm

from kbench.sweep import results
from kbench.sweep.grid import Sweep, point_id, point_seed


def _worker_init() -> None:
    # One Numba thread per worker: the workers are the parallelism.
    os.environ.setdefault("NUMBA_NUM_THREADS", "1")


def run_point(sweep_name: str, params: dict[str, Any], seed: int, pid: str, run_dir: str) -> dict[str, Any]:
    """Run one point (in a worker), store it, and return its row."""
    from kbench.sweep import get_sweep  # imported here: workers start from a fresh interpreter

    sweep = get_sweep(sweep_name)
    started = time.perf_counter()
    metrics = sweep.run_point(dict(params), seed)
    row = {"sweep": sweep_name, "point_id": pid, **params, "seed": seed, **metrics,
           "wall_point_seconds": time.perf_counter() - started, **results.environment()}
    results.write_point(Path(run_dir), pid, row)
    return row


def run(sweep: Sweep, points: Sequence[dict], run_dir: Path, seed: int = 0, jobs: int | None = None,
        progress: bool = True, meta: dict[str, Any] | None = None) -> pd.DataFrame:
    """Run every point not yet stored in ``run_dir``; returns all rows in grid order.

    Parameters
    ----------
    jobs : int, optional
        Worker processes (default: the machine's CPU count); 1 runs in this process.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    ids = [point_id(sweep.name, p) for p in points]
    results.write_meta(run_dir, {"sweep": sweep.name, "seed": seed, "points": len(points),
                                 "environment": results.environment(), **(meta or {})})
    done = results.finished_points(run_dir)
    todo = [(p, pid) for p, pid in zip(points, ids) if pid not in done]
    jobs = jobs or os.cpu_count() or 1
    bar = tqdm(total=len(points), initial=len(points) - len(todo), desc=f"sweep {sweep.name}", unit="point",
               disable=not progress)
    try:
        if jobs == 1 or len(todo) <= 1:
            for params, pid in todo:
                run_point(sweep.name, params, point_seed(seed, pid), pid, str(run_dir))
                bar.update()
        else:
            with ProcessPoolExecutor(max_workers=min(jobs, len(todo)), mp_context=get_context("spawn"),
                                     initializer=_worker_init) as pool:
                futures = [pool.submit(run_point, sweep.name, params, point_seed(seed, pid), pid, str(run_dir))
                           for params, pid in todo]
                for future in as_completed(futures):
                    future.result()
                    bar.update()
    finally:
        bar.close()
    table = results.read_points(run_dir)
    order = {pid: i for i, pid in enumerate(ids)}
    table = table[table["point_id"].isin(order)].sort_values("point_id", key=lambda s: s.map(order))
    table = table.reset_index(drop=True)
    results.write_results(run_dir, table)
    return table
