"""Where sweep results live: one Parquet file per finished point, written atomically, and their union.

Layout of a run directory (``results/<sweep>/<run>/``)::

    meta.json           sweep, preset, overrides, seed, seeds, environment (created exclusively: the claim)
    points/<id>.parquet one row per finished point (written with an atomic rename)
    results.parquet     all rows, in grid order
    *.png, *.svg        the sweep's figures
"""

from __future__ import annotations

import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

import kbench


def cpu_model() -> str:
    """The CPU's model name (Linux), else the platform's processor string."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment() -> dict[str, Any]:
    """Versions and machine facts recorded with every result."""
    import numba  # not at import time: worker processes set Numba's environment first

    return {
        "kbench_version": kbench.__version__,
        "python_version": platform.python_version(),
        "numba_version": numba.__version__,
        "numpy_version": np.__version__,
        "pandas_version": pd.__version__,
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
    }


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so readers see the old file or the whole new one, never a part."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _parquet_bytes(df: pd.DataFrame) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), sink)
    return sink.getvalue().to_pybytes()


def write_point(run_dir: Path, pid: str, row: dict[str, Any]) -> Path:
    """Store one finished point as ``points/<pid>.parquet``."""
    path = run_dir / "points" / f"{pid}.parquet"
    atomic_write_bytes(path, _parquet_bytes(pd.DataFrame([row])))
    return path


class RunFolderTaken(ValueError):
    """The folder already belongs to a run: nothing was written to it."""


def claim(folder: Path, name: str, data: bytes) -> None:
    """Make ``folder`` this run's by creating ``folder/name`` exclusively: two runs never share a folder, even
    when they start in the same second. Raises :class:`RunFolderTaken` (and writes nothing) if it exists."""
    folder.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(folder / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        raise RunFolderTaken(f"{folder} already belongs to a run ({name} exists)") from None
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def new_run_folder(parent: Path, name: str, data: bytes) -> Path:
    """A new folder under ``parent`` named by the time (``20261205-113000``, then ``-2``, ``-3`` ... when
    that name is taken), claimed with ``name``."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    i = 0
    while True:
        i += 1
        folder = parent / (stamp if i == 1 else f"{stamp}-{i}")
        if folder.exists():
            continue
        try:
            claim(folder, name, data)
        except RunFolderTaken:  # another run took it between the two calls
            continue
        return folder


def set_latest(parent: Path, folder: Path) -> None:
    """Point ``parent/latest`` at ``folder`` (atomically); a run is the latest from the moment it starts.
    A ``latest`` that is not a link (the user's own folder) is left alone."""
    latest = parent / "latest"
    if latest.exists() and not latest.is_symlink():
        return
    tmp = parent / f".latest.{os.getpid()}"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(folder.name)
    os.replace(tmp, latest)


def claim_run_dir(parent: Path, run: str | None, meta: dict[str, Any]) -> Path:
    """The new run's folder (``parent/run``, or a new time-named one) with its ``meta.json`` written; a folder
    that holds a run already (its ``meta.json`` or stored points) is refused untouched."""
    data = json.dumps(meta, indent=2, default=str).encode()
    if run is None:
        return new_run_folder(parent, "meta.json", data)
    run_dir = parent / run
    done = finished_points(run_dir)
    existing = read_meta(run_dir) if (run_dir / "meta.json").exists() else None
    if existing is not None and existing.get("sweep") != meta["sweep"]:
        raise ValueError(
            f"{run_dir} holds results of sweep {existing.get('sweep')!r}, not {meta['sweep']!r}; "
            f"choose another --run (or --out)"
        )
    if done or existing is not None:
        raise ValueError(
            f"{run_dir} already holds a run of sweep {meta['sweep']!r} ({len(done)} finished points); "
            "pass --resume to continue it (finished points are kept, not recomputed) or choose "
            "another --run"
        )
    try:
        claim(run_dir, "meta.json", data)
    except RunFolderTaken as err:
        raise ValueError(f"{err}; choose another --run") from None
    return run_dir


GRID = ("preset", "overrides", "seed", "seeds")
"""What a run's points are made of; ``--resume`` continues only the same grid."""


def resumable(run_dir: Path, sweep: str, given: dict[str, Any]) -> dict[str, Any]:
    """The grid to resume in ``run_dir``: its own, after checking that what the user gave (``None``: not given)
    matches it, that it is a run of ``sweep``, and that every stored point is readable. Nothing is touched."""
    if not (run_dir / "meta.json").exists():
        raise ValueError(f"--resume: nothing to resume at {run_dir} (no meta.json)")
    try:
        meta = read_meta(run_dir)
    except (OSError, ValueError) as err:
        raise ValueError(f"--resume: {run_dir / 'meta.json'} is unreadable ({err}); start a new run") from None
    if meta.get("sweep") != sweep:
        raise ValueError(
            f"{run_dir} holds results of sweep {meta.get('sweep')!r}, not {sweep!r}; choose another --run (or --out)"
        )
    stored = {key: meta.get(key) for key in GRID}
    differ = [
        f"{key}: the run has {_show(stored[key])}, this command {_show(given[key])}"
        for key in GRID
        if given.get(key) is not None and _canonical(given[key]) != _canonical(stored[key])
    ]
    if differ:
        raise ValueError(
            f"--resume: {run_dir} was run with another grid; "
            + "; ".join(differ)
            + ". Resume with the run's own values (leave them out) or start a new run"
        )
    for path in sorted((run_dir / "points").glob("*.parquet")):
        try:
            pq.read_metadata(path)
        except (OSError, pa.ArrowException) as err:
            raise ValueError(
                f"--resume: {path} is damaged ({err}); delete it and resume again to recompute that point"
            ) from None
    return stored


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _show(value: Any) -> str:
    if isinstance(value, dict):
        return (
            "{"
            + ", ".join(f"{k}={','.join(map(str, v)) if isinstance(v, list) else v}" for k, v in sorted(value.items()))
            + "}"
        )
    return repr(value)


def finished_points(run_dir: Path) -> set[str]:
    """Ids of the points already stored in ``run_dir``."""
    return {p.stem for p in (run_dir / "points").glob("*.parquet")}


def read_points(run_dir: Path) -> pd.DataFrame:
    """All stored points of a run (unordered)."""
    files = sorted((run_dir / "points").glob("*.parquet"))
    if not files:
        return pd.DataFrame()
    return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)


def write_results(run_dir: Path, df: pd.DataFrame) -> Path:
    """Store the run's table as ``results.parquet``."""
    path = run_dir / "results.parquet"
    atomic_write_bytes(path, _parquet_bytes(df))
    return path


def read_meta(run_dir: Path) -> dict[str, Any]:
    """The run's ``meta.json``."""
    return json.loads((run_dir / "meta.json").read_text())
