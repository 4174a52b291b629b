"""Run a sweep's points on local worker processes or a Dask cluster, storing each point as it finishes.

Points run in workers and come back as rows; this process stores each one atomically as soon as it
arrives (``points/<id>.parquet``), so a run killed at any moment keeps every finished point and a resumed
run computes only the rest. Workers run one Numba thread each (the workers are the parallelism) and share
one Numba cache directory, so a kernel compiles once per machine.
"""

from __future__ import annotations

import atexit
import os
import signal
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from contextlib import contextmanager
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm.auto import tqdm

from kbench.sim import collector
from kbench.sweep import progress, results
from kbench.sweep.grid import Sweep, point_id, point_seed


def numba_cache_dir() -> str:
    """The Numba cache every worker shares: ``$NUMBA_CACHE_DIR`` or ``~/.cache/kbench/numba``."""
    return os.environ.get("NUMBA_CACHE_DIR") or str(Path.home() / ".cache" / "kbench" / "numba")


def _worker_init(cache_dir: str | None = None, messages=None) -> None:
    """One Numba thread per worker and one shared cache directory: through the environment when Numba is not
    imported yet (a fresh worker process), else through its runtime settings (a long-lived Dask worker).
    ``messages``: the queue progress messages go to (local workers, which leave Ctrl-C to the sweep's process:
    it stops them and says how to resume, and which exit without collecting their last point's cluster:
    :func:`kbench.sim.collector.skip_final_collection`)."""
    import sys

    if messages is not None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        progress.set_sink(messages.put)
        atexit.register(collector.skip_final_collection)
    if "numba" not in sys.modules:
        os.environ["NUMBA_NUM_THREADS"] = "1"
        if cache_dir:
            os.environ["NUMBA_CACHE_DIR"] = cache_dir
        return
    import numba

    numba.set_num_threads(1)
    if cache_dir:
        vars(numba.config)["CACHE_DIR"] = cache_dir  # numba keeps its settings as module globals mypy cannot see


def run_point(sweep_name: str, params: dict[str, Any], seed: int, pid: str) -> dict[str, Any]:
    """Run one point (in a worker) and return its row."""
    from kbench.profiles import load_profile
    from kbench.sweep.registry import get_sweep  # imported here: workers start from a fresh interpreter

    sweep = get_sweep(sweep_name)
    started = time.perf_counter()
    with progress.running(pid):
        metrics = sweep.run_point({k: v for k, v in params.items() if k != "replicate"}, seed)
    return {
        "sweep": sweep_name,
        "point_id": pid,
        **params,
        "seed": seed,
        **metrics,
        "wall_point_seconds": time.perf_counter() - started,
        "profile_digest": load_profile(params.get("profile", "default")).digest[:16],
        **results.environment(),
    }


def expand(sweep: Sweep, points: Sequence[dict], seeds: int = 1) -> list[dict]:
    """Each grid point ``seeds`` times, numbered by ``replicate`` (replicate 0 keeps the point's plain id)."""
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise ValueError(f"seeds: must be an integer >= 1; got {seeds!r}")
    if seeds > 1 and not sweep.seeded:
        raise ValueError(
            f"seeds: the {sweep.name} sweep takes its randomness from a parameter, not --seeds; got {seeds}"
        )
    return [{**p, "replicate": r} for p in points for r in range(seeds)]


def point_ids(sweep: Sweep, points: Sequence[dict]) -> list[str]:
    """Each point's id (replicate 0 keeps the plain point's id)."""
    return [point_id(sweep.name, {k: v for k, v in p.items() if k != "replicate" or v}) for p in points]


class Interrupted(Exception):
    """The sweep was stopped (Ctrl-C) after storing ``stored`` of ``total`` points in ``run_dir``."""

    def __init__(self, run_dir: Path, stored: int, total: int) -> None:
        super().__init__(f"interrupted: {stored} of {total} points stored in {run_dir}")
        self.run_dir, self.stored, self.total = run_dir, stored, total


@contextmanager
def _ctrl_c() -> Iterator[threading.Event]:
    """While the sweep's process waits on its workers, Ctrl-C sets an event the wait loop checks, instead of raising
    KeyboardInterrupt wherever the main thread happens to be (where a finalizer or a library may swallow it and the
    run would go on). Outside the main thread, or when SIGINT is ignored, nothing changes."""
    stopped = threading.Event()
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        yield stopped
        return
    previous = signal.signal(signal.SIGINT, lambda *_: stopped.set())
    try:
        yield stopped
    finally:
        signal.signal(signal.SIGINT, previous)


@contextmanager
def _sigint_ignored() -> Iterator[None]:
    """SIGINT ignored meanwhile (in the main thread): processes started now begin with it ignored, as an ignored
    signal survives exec, so a worker still starting up never dies of the user's Ctrl-C with a traceback."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _local(jobs: int, todo: list[tuple[dict, int, str]], sweep_name: str, board: progress.Board) -> Iterator[dict]:
    if jobs == 1 or len(todo) <= 1:
        progress.set_sink(board.update)
        try:
            for params, seed, pid in todo:
                yield run_point(sweep_name, params, seed, pid)
        finally:
            progress.set_sink(None)
        return
    context = get_context("spawn")
    messages = context.Queue()

    def relay_messages() -> None:
        for message in iter(messages.get, None):
            board.update(message)

    relay = threading.Thread(target=relay_messages, daemon=True)
    relay.start()
    pool = ProcessPoolExecutor(
        max_workers=min(jobs, len(todo)),
        mp_context=context,
        initializer=_worker_init,
        initargs=(numba_cache_dir(), messages),
    )
    try:
        with _ctrl_c() as stopped:
            with _sigint_ignored():  # the workers start now and inherit it: a Ctrl-C is the sweep's, not theirs
                pending = {pool.submit(run_point, sweep_name, params, seed, pid) for params, seed, pid in todo}
            while pending:
                done, pending = wait(pending, timeout=0.1, return_when=FIRST_COMPLETED)
                for future in done:
                    yield future.result()
                if stopped.is_set():
                    raise KeyboardInterrupt
    except BaseException:  # Ctrl-C or a failed point: stop the running points now, not when they finish
        for process in list(getattr(pool, "_processes", {}).values()):  # no public API terminates a pool's workers
            process.terminate()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        messages.put(None)
        relay.join()


async def _identity(address: str) -> dict:
    """The ``identity`` answer of the Dask server at ``address``."""
    from distributed.comm import connect as dask_connect

    comm = await dask_connect(address, timeout=f"{CONNECT_TIMEOUT}s")
    try:
        await comm.write({"op": "identity"})
        return await comm.read()
    finally:
        comm.abort()


CONNECT_TIMEOUT = 10.0
"""Seconds a Dask scheduler has to answer before ``--dask`` gives up."""


def connect(dask) -> Any:
    """A ``distributed.Client`` from a client or a scheduler address (``tcp://host:8786``); errors say why.

    The address is first asked who it is (Dask's ``identity`` call, with a deadline), so a port that is not a
    Dask scheduler (an HTTP server, a silent socket) is a clear error in seconds, not a hang."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    from distributed import Client

    if isinstance(dask, Client):
        return dask
    if not isinstance(dask, str) or "://" not in dask:
        raise ValueError(
            f"dask: expected a scheduler address such as tcp://host:8786 or a distributed.Client; got {dask!r}"
        )
    hint = "start one with `dask scheduler` and `dask worker <address>`, or run without --dask"
    with ThreadPoolExecutor(1) as thread:  # its own event loop, also under Jupyter's running one
        try:
            identity = thread.submit(asyncio.run, asyncio.wait_for(_identity(dask), CONNECT_TIMEOUT)).result()
        except (OSError, TimeoutError, MemoryError, ValueError, TypeError) as err:  # MemoryError: a frame length
            raise ValueError(
                f"dask: cannot reach a scheduler at {dask} ({type(err).__name__}: {err or 'no answer'} "
                f"within {CONNECT_TIMEOUT:g} s); {hint}"
            ) from None  # read from a non-Dask server
    kind = identity.get("type") if isinstance(identity, dict) else None
    if kind != "Scheduler":
        raise ValueError(f"dask: {dask} answered, but it is not a Dask scheduler ({kind or 'unknown'}); {hint}")
    try:
        return Client(dask, timeout=f"{CONNECT_TIMEOUT}s")
    except (OSError, TimeoutError) as err:
        raise ValueError(f"dask: cannot reach a scheduler at {dask} ({type(err).__name__}: {err}); {hint}") from None


def _dask(client, todo: list[tuple[dict, int, str]], sweep_name: str, board: progress.Board) -> Iterator[dict]:
    from distributed import WorkerPlugin, get_worker
    from distributed import as_completed as dask_completed

    class NumbaSetup(WorkerPlugin):
        """One Numba thread and the shared cache on every worker, present or future; progress messages go to
        Dask's event topic."""

        name = "kbench-numba"

        def __init__(self, cache_dir: str) -> None:
            self.cache_dir = cache_dir

        def setup(self, worker) -> None:
            _worker_init(self.cache_dir)
            progress.set_sink(lambda message: get_worker().log_event(progress.TOPIC, message))

    client.register_plugin(NumbaSetup(numba_cache_dir()))
    client.subscribe_topic(progress.TOPIC, lambda event: board.update(tuple(event[1])))
    futures = [
        client.submit(run_point, sweep_name, params, seed, pid, pure=False, key=f"kbench-{sweep_name}-{pid}")
        for params, seed, pid in todo
    ]
    try:
        for future in dask_completed(futures):
            yield future.result()
    finally:
        client.cancel(futures)
        client.unsubscribe_topic(progress.TOPIC)


def run(
    sweep: Sweep,
    points: Sequence[dict],
    run_dir: Path,
    seed: int = 0,
    jobs: int | None = None,
    progress_bar: bool = True,
    client=None,
) -> pd.DataFrame:
    """Run every point not yet stored in ``run_dir`` (claimed by the caller); returns all rows in grid order.

    Parameters
    ----------
    points : list of dict
        Grid points (with ``replicate`` from :func:`expand`).
    jobs : int, optional
        Local worker processes (default: the machine's CPU count); 1 runs in this process.
    client : distributed.Client, optional
        Run on this Dask cluster instead of local processes.

    Raises
    ------
    Interrupted
        On Ctrl-C: what was stored stays, and the run can be resumed.
    """
    run_dir = Path(run_dir)
    ids = point_ids(sweep, points)
    done = results.finished_points(run_dir)
    todo = [(p, point_seed(seed, pid), pid) for p, pid in zip(points, ids) if pid not in done]
    bar = tqdm(
        total=len(points),
        initial=len(points) - len(todo),
        desc=f"sweep {sweep.name}",
        unit="point",
        disable=not progress_bar,
    )
    board = progress.Board(bar, progress.labels(points, ids))
    try:
        rows = (
            _dask(client, todo, sweep.name, board)
            if client is not None
            else _local(jobs or os.cpu_count() or 1, todo, sweep.name, board)
        )
        for row in rows:
            results.write_point(run_dir, row["point_id"], row)
            board.done(row["point_id"])
            bar.update()
    except KeyboardInterrupt:
        raise Interrupted(run_dir, len(results.finished_points(run_dir)), len(points)) from None
    finally:
        bar.close()
    table = results.read_points(run_dir)
    order = {pid: i for i, pid in enumerate(ids)}
    table = table[table["point_id"].isin(order)].sort_values("point_id", key=lambda s: s.map(order))
    table = table.reset_index(drop=True)
    results.write_results(run_dir, table)
    return table
