"""Shared pieces of the sweep tests: a small etcd sweep on the command line, for runs killed and resumed."""

from __future__ import annotations

import sys
from pathlib import Path


def etcd_sweep_cli(out: Path, *args: str, duration: str = "0.3") -> list[str]:
    """``kbench sweep etcd`` over six small points (keys x clients) writing under ``out``, then ``args``."""
    return [
        sys.executable,
        "-m",
        "kbench.cli",
        "sweep",
        "etcd",
        *("--param", "keys=100,1000,10000", "--param", "members=3", "--param", "clients=1,8"),
        *("--param", f"duration={duration}", "--no-progress", "--out", str(out)),
        *args,
    ]
