"""Run a sweep's points on local worker processes or a Dask cluster, storing each point as it finishes.

Points run in workers and come back as rows; this process stores each one atomically as soon as it
arrives (``points/<id>.parquet``), so a run killed at any moment keeps every finished point and a resumed
run computes only the rest. Workers run one Numba thread each (the workers are the parallelism) and share
one Numba cache directory, so a kernel compiles once per machine.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm.auto import tqdm

from kbench.sweep import results
from kbench.sweep.grid import Sweep, point_id, point_seed


def numba_cache_dir() -> str:
    """The Numba cache every worker shares: ``$NUMBA_CACHE_DIR`` or ``~/.cache/kbench/numba``."""
    return os.environ.get("NUMBA_CACHE_DIR") or str(Path.home() / ".cache" / "kbench" / "numba")


def _worker_init(cache_dir: str | None = None) -> None:
    """One Numba thread per worker and one shared cache directory: through the environment when Numba is not
    imported yet (a fresh worker process), else through its runtime settings (a long-lived Dask worker)."""
    import sys

    if "numba" not in sys.modules:
        os.environ["NUMBA_NUM_THREADS"] = "1"
        if cache_dir:
            os.environ["NUMBA_CACHE_DIR"] = cache_dir
        return
    import numba

    numba.set_num_threads(1)
    if cache_dir:
        numba.config.CACHE_DIR = cache_dir


def run_point(sweep_name: str, params: dict[str, Any], seed: int, pid: str) -> dict[str, Any]:
    """Run one point (in a worker) and return its row."""
    from kbench.profiles import load_profile
    from kbench.sweep import get_sweep  # imported here: workers start from a fresh interpreter

    sweep = get_sweep(sweep_name)
    started = time.perf_counter()
    metrics = sweep.run_point({k: v for k, v in params.items() if k != "replicate"}, seed)
    return {"sweep": sweep_name, "point_id": pid, **params, "seed": seed, **metrics,
            "wall_point_seconds": time.perf_counter() - started,
            "profile_digest": load_profile(params.get("profile", "default")).digest[:16], **results.environment()}


def expand(sweep: Sweep, points: Sequence[dict], seeds: int = 1) -> list[dict]:
    """Each grid point ``seeds`` times, numbered by ``replicate`` (replicate 0 keeps the point's plain id)."""
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise ValueError(f"seeds: must be an integer >= 1; got {seeds!r}")
    return [{**p, "replicate": r} for p in points for r in range(seeds)]


def _id(sweep: Sweep, params: dict) -> str:
    plain = {k: v for k, v in params.items() if k != "replicate" or v}
    return point_id(sweep.name, plain)


def _local(jobs: int, todo: list[tuple[dict, int, str]], sweep_name: str) -> Iterator[dict]:
    if jobs == 1 or len(todo) <= 1:
        for params, seed, pid in todo:
            yield run_point(sweep_name, params, seed, pid)
        return
    with ProcessPoolExecutor(max_workers=min(jobs, len(todo)), mp_context=get_context("spawn"),
                             initializer=_worker_init, initargs=(numba_cache_dir(),)) as pool:
        futures = [pool.submit(run_point, sweep_name, params, seed, pid) for params, seed, pid in todo]
        for future in as_completed(futures):
            yield future.result()


def connect(dask) -> Any:
    """A ``distributed.Client`` from a client or a scheduler address (``tcp://host:8786``); errors say why."""
    from distributed import Client

    if isinstance(dask, Client):
        return dask
    if not isinstance(dask, str) or "://" not in dask:
        raise ValueError(f"dask: expected a scheduler address such as tcp://host:8786 or a distributed.Client; "
                         f"got {dask!r}")
    try:
        return Client(dask, timeout="10s")
    except (OSError, TimeoutError) as err:
        raise ValueError(f"dask: cannot reach a scheduler at {dask} ({type(err).__name__}: {err}); start one "
                         "with `dask scheduler` and `dask worker <address>`, or run without --dask") from None


def _dask(client, todo: list[tuple[dict, int, str]], sweep_name: str) -> Iterator[dict]:
    from distributed import WorkerPlugin
    from distributed import as_completed as dask_completed

    class NumbaSetup(WorkerPlugin):
        """One Numba thread and the shared cache on every worker, present or future."""

        name = "kbench-numba"

        def __init__(self, cache_dir: str) -> None:
            self.cache_dir = cache_dir

        def setup(self, worker) -> None:
            _worker_init(self.cache_dir)

    client.register_plugin(NumbaSetup(numba_cache_dir()))
    futures = [client.submit(run_point, sweep_name, params, seed, pid, pure=False, key=f"kbench-{sweep_name}-{pid}")
               for params, seed, pid in todo]
    for future in dask_completed(futures):
        yield future.result()


def run(sweep: Sweep, points: Sequence[dict], run_dir: Path, seed: int = 0, jobs: int | None = None,
        progress: bool = True, meta: dict[str, Any] | None = None, dask=None, resume: bool = False) -> pd.DataFrame:
    """Run every point not yet stored in ``run_dir``; returns all rows in grid order.

    Parameters
    ----------
    points : list of dict
        Grid points (with ``replicate`` from :func:`expand`).
    jobs : int, optional
        Local worker processes (default: the machine's CPU count); 1 runs in this process.
    dask : distributed.Client or str, optional
        Run on this Dask cluster (a client, or a scheduler address) instead of local processes.
    resume : bool
        ``run_dir`` may already hold points of this sweep (and seed): they are kept, not recomputed.
    """
    run_dir = Path(run_dir)
    ids = [_id(sweep, p) for p in points]
    done = results.check_run_dir(run_dir, sweep.name, seed, resume)
    client = connect(dask) if dask is not None else None
    run_dir.mkdir(parents=True, exist_ok=True)
    results.write_meta(run_dir, {"sweep": sweep.name, "seed": seed, "points": len(points),
                                 "environment": results.environment(), **(meta or {})})
    todo = [(p, point_seed(seed, pid), pid) for p, pid in zip(points, ids) if pid not in done]
    bar = tqdm(total=len(points), initial=len(points) - len(todo), desc=f"sweep {sweep.name}", unit="point",
               disable=not progress)
    try:
        rows = _dask(client, todo, sweep.name) if client is not None else \
            _local(jobs or os.cpu_count() or 1, todo, sweep.name)
        for row in rows:
            results.write_point(run_dir, row["point_id"], row)
            bar.update()
    finally:
        bar.close()
        if client is not None and client is not dask:
            client.close()
    table = results.read_points(run_dir)
    order = {pid: i for i, pid in enumerate(ids)}
    table = table[table["point_id"].isin(order)].sort_values("point_id", key=lambda s: s.map(order))
    table = table.reset_index(drop=True)
    results.write_results(run_dir, table)
    return table
