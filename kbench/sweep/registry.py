"""The sweeps kbench knows, by name: each a module that declares its sweep (:meth:`Sweep.from_module`), imported
when first asked for."""

from __future__ import annotations

from importlib import import_module

from kbench.sweep.grid import Sweep

REGISTRY = {
    "cluster": "kbench.sweep.cluster",
    "etcd": "kbench.sweep.etcd",
    "proxy": "kbench.sweep.proxy",
    "scheduler": "kbench.sweep.scheduler",
    "trace": "kbench.sweep.trace",
    "validation": "kbench.sweep.validation",
}


def sweep_names() -> list[str]:
    """Names of the sweeps kbench knows."""
    return sorted(REGISTRY)


def get_sweep(name: str) -> Sweep:
    """The sweep called ``name``."""
    if name not in REGISTRY:
        raise ValueError(f"unknown sweep {name!r}; valid: {', '.join(sweep_names())}")
    return Sweep.from_module(import_module(REGISTRY[name]))
