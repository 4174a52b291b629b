"""Presets: the published experiments kbench is compared with, each a scenario file in ``data/presets/`` built
from the public job definitions and test configs (control-plane machine size as profile overrides, component
flags and configurations as the scale jobs set them, the ClusterLoader2 test config as steps).

``kbench scenario run <preset>`` runs one by name (:meth:`~kbench.scenarios.spec.Scenario.from_preset`). A
scenario file takes a preset's cluster (profile and every component's configuration, not its workload) with a
top-level ``preset: <name>`` key; its own ``cluster`` fields and configuration documents then change that base.
"""

from __future__ import annotations

import os
from pathlib import Path


def preset_dir() -> Path:
    """Where presets live: ``$KBENCH_PRESETS`` or the checkout's ``data/presets``."""
    return Path(os.environ.get("KBENCH_PRESETS", Path(__file__).resolve().parents[2] / "data" / "presets"))


def preset_names() -> list[str]:
    """The presets' names (their file stems)."""
    return sorted(p.stem for p in preset_dir().glob("*.yaml"))


def preset_path(name: str) -> Path:
    """The file of preset ``name``; an unknown name lists the known ones."""
    path = preset_dir() / f"{name}.yaml" if isinstance(name, str) and "/" not in name else None
    if path is None or not path.is_file():
        raise ValueError(f"preset: {name!r} is not a preset; presets: {', '.join(preset_names()) or '(none)'}")
    return path
