#!/usr/bin/env python3
"""kbench's set-up and task runner; needs only Python 3.11+ (standard library).

    python3 dev.py run     # install kbench + JupyterLab into .venv, run the main job (kbench run: quick sweeps)
    python3 dev.py test    # install the test tools (and etcd where possible), run every test
    python3 dev.py bench   # the benchmark regression gate (pytest-benchmark; see README)
    python3 dev.py bench --refresh-baseline   # store this machine's run as data/baselines/baseline.json
    python3 dev.py bench --measure-floors 3   # write data/baselines/floors.yaml from 3 runs' ratios
    python3 dev.py lab     # open the notebooks in JupyterLab

The virtual environment lives in .venv; an install is redone only when
pyproject.toml changes. Works without Debian's python3-venv package: pip is then
bootstrapped into the environment from PyPI.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
PY = VENV / "bin" / "python"
EXTRAS = {"run": "notebooks", "lab": "notebooks", "test": "test", "bench": "test"}


def sh(*cmd: str | Path, **kw) -> None:
    print("+", " ".join(map(str, cmd)), flush=True)
    subprocess.run([str(c) for c in cmd], check=True, **kw)


def _bootstrap_pip() -> None:
    """Install pip into a venv made --without-pip, from PyPI's pip wheel."""
    with urllib.request.urlopen("https://pypi.org/pypi/pip/json", timeout=60) as resp:
        info = json.load(resp)
    wheel = next(u for u in info["urls"] if u["filename"].endswith(".whl"))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / wheel["filename"]
        with urllib.request.urlopen(wheel["url"], timeout=120) as resp:
            path.write_bytes(resp.read())
        sh(PY, f"{path}/pip", "install", "--no-index", str(path))


def ensure_venv() -> None:
    if PY.exists():
        return
    if sys.version_info < (3, 11):
        sys.exit(f"kbench needs Python 3.11 or newer; this is {sys.version.split()[0]}")
    try:
        sh(sys.executable, "-m", "venv", VENV)
    except subprocess.CalledProcessError:  # Debian without python3-venv: no ensurepip
        shutil.rmtree(VENV, ignore_errors=True)
        sh(sys.executable, "-m", "venv", "--without-pip", VENV)
        _bootstrap_pip()


def ensure_installed(extras: str) -> None:
    ensure_venv()
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + extras.encode()).hexdigest()
    stamp = VENV / f".kbench-{extras.replace(',', '-')}.stamp"
    if stamp.exists() and stamp.read_text() == digest:
        return
    sh(PY, "-m", "pip", "install", "--disable-pip-version-check", "-q", "-e", f"{ROOT}[{extras}]")
    stamp.write_text(digest)


def ensure_etcd() -> None:
    """The differential tests need Debian's etcd-server; install it when we can, say so when we cannot."""
    if shutil.which("etcd") or Path("/usr/bin/etcd").exists():
        return
    if os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        sh("apt-get", "update", "-q", env=env)
        sh("apt-get", "install", "-y", "-q", "etcd-server", env=env)
    else:
        print(
            "note: etcd is not installed (Debian: sudo apt-get install etcd-server); "
            "the differential tests against a real etcd will be skipped",
            flush=True,
        )


def bench(rest: list[str], env: dict) -> None:
    """pytest-benchmark over benchmarks/ (history autosaved in .benchmarks/), then the gate (benchmarks/gate.py):
    every ratio to the plain reference at or above its floor (data/baselines/floors.yaml), and, when
    data/baselines/baseline.json was recorded on this machine, every median within its tolerance (20% unless the
    benchmark widens it) of the baseline's, or its in-run reference slower by more than that too with the ratio
    held (the machine drifted). The gate prints
    the benchmarks that regressed and exits 1.

    --refresh-baseline: store this run as this machine's baseline (floors still checked).
    --measure-floors N: run the benchmarks N times and write floors.yaml from the lowest ratios."""
    baseline = ROOT / "data" / "baselines" / "baseline.json"
    storage = ROOT / ".benchmarks"
    storage.mkdir(exist_ok=True)
    pytest = [PY, "-m", "pytest", "benchmarks", f"--benchmark-storage=file://{storage}"]
    gate = [PY, "-m", "benchmarks.gate"]
    if "--measure-floors" in rest:
        at = rest.index("--measure-floors")
        try:
            count = int(rest[at + 1])
        except (IndexError, ValueError):
            sys.exit("--measure-floors needs a number of runs, e.g. --measure-floors 3")
        rest = rest[:at] + rest[at + 2 :]
        runs = [storage / f"floors-{i}.json" for i in range(count)]
        for path in runs:
            sh(*pytest, "--benchmark-autosave", f"--benchmark-json={path}", *rest, cwd=ROOT, env=env)
        sh(*gate, "floors", *runs, cwd=ROOT, env=env)
        return
    refresh = "--refresh-baseline" in rest
    rest = [a for a in rest if a != "--refresh-baseline"]
    out = baseline if refresh else storage / "last.json"
    code = subprocess.run(
        [str(c) for c in [*pytest, "--benchmark-autosave", f"--benchmark-json={out}", *rest]], cwd=ROOT, env=env
    ).returncode
    gated = subprocess.run(
        [str(c) for c in [*gate, "check", out, *(["--no-baseline"] if refresh else [])]], cwd=ROOT, env=env
    ).returncode
    if code or gated:
        sys.exit(code or gated)


def main(argv: list[str]) -> None:
    if not argv or argv[0] not in EXTRAS:
        sys.exit(__doc__)
    task, rest = argv[0], argv[1:]
    ensure_installed(EXTRAS[task])
    env = {**os.environ, "MPLBACKEND": os.environ.get("MPLBACKEND", "Agg")}
    if task == "run":
        sh(VENV / "bin" / "kbench", "run", *rest, cwd=ROOT, env=env)
    elif task == "test":
        ensure_etcd()
        sh(PY, "-m", "pytest", *rest, cwd=ROOT, env=env)
    elif task == "bench":
        bench(rest, env)
    else:
        sh(VENV / "bin" / "jupyter", "lab", "notebooks", *rest, cwd=ROOT)


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except subprocess.CalledProcessError as err:  # the command has reported why; exit with its status
        sys.exit(err.returncode)
