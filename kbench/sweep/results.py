"""Where sweep results live: one Parquet file per finished point, written atomically, and their union.

Layout of a run directory (``results/<sweep>/<run>/``)::

    meta.json           sweep, preset, grid, seed, environment
    points/<id>.parquet one row per finished point (written with an atomic rename)
    results.parquet     all rows, in grid order
    *.png, *.svg        the sweep's figures
"""

from __future__ import annotations

import json
import os
import platform
import tempfile
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


def check_run_dir(run_dir: Path, sweep: str, seed: int, resume: bool) -> set[str]:
    """The points already stored in ``run_dir``, after checking it may take this run; nothing is touched.

    A folder of another sweep is refused; one with finished points needs ``resume`` (and the same seed)."""
    done = finished_points(run_dir)
    meta_path = run_dir / "meta.json"
    meta = read_meta(run_dir) if meta_path.exists() else None
    if meta is not None and meta.get("sweep") != sweep:
        raise ValueError(f"{run_dir} holds results of sweep {meta.get('sweep')!r}, not {sweep!r}; "
                         f"choose another --run (or --out)")
    if resume and meta is None and not done:
        raise ValueError(f"--resume: nothing to resume at {run_dir} (no meta.json, no points)")
    if done and not resume:
        raise ValueError(f"{run_dir} already holds {len(done)} finished points of sweep {sweep!r}; pass --resume "
                         "to continue it (finished points are kept, not recomputed) or choose another --run")
    if resume and meta is not None and meta.get("seed") != seed:
        raise ValueError(f"--resume: {run_dir} was run with --seed {meta.get('seed')}; resume with that seed")
    return done


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


def write_meta(run_dir: Path, meta: dict[str, Any]) -> None:
    """Store the run's description as ``meta.json``."""
    atomic_write_bytes(run_dir / "meta.json", json.dumps(meta, indent=2, default=str).encode())


def read_meta(run_dir: Path) -> dict[str, Any]:
    """The run's ``meta.json``."""
    return json.loads((run_dir / "meta.json").read_text())
