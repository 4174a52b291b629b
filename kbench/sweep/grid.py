"""Sweep definitions: named, typed parameters, presets, and the grid of points they span."""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pandas as pd

from kbench import plot
from kbench.components import CONFIGS, FieldParam, split_field
from kbench.params import Param
from kbench.profiles import available

PROFILE = Param("profile", str, "calibration profile in data/profiles", choices=tuple(available()))
"""Every sweep's ``profile``: the calibration profile a point runs with."""


@dataclass(frozen=True)
class Sweep:
    """A named sweep: its parameters, presets, the function that runs one point, and its figures.

    ``run_point(params, seed)`` returns the point's metrics as a flat dict of ``sim_*`` (simulated) and
    ``wall_*`` (measured) columns. ``figures`` are drawn by :meth:`plot`; ``export(df, out_dir)``, if given,
    writes other report files (e.g. scheduler_perf JSON) and returns them; ``slos`` are the thresholds a
    report checks each point against. A sweep module declares these as module attributes (see
    :meth:`from_module`).
    """

    name: str
    description: str
    params: tuple[Param, ...]
    presets: Mapping[str, Mapping[str, Sequence]]
    run_point: Callable[[dict, int], dict]
    figures: tuple[plot.Spec, ...]
    summary: tuple[str, ...] = field(default=())
    export: Callable[[pd.DataFrame, Path], list[Path]] | None = None
    slos: tuple[tuple[str, float, str], ...] = field(default=())
    """``(column, threshold, label)``: an SLO met when the column is at most the threshold (reports)."""
    seeded: bool = True
    """Points draw from the runner's seed; a sweep whose randomness is a parameter (``SEEDED = False``) refuses
    ``--seed`` and ``--seeds``, which would change nothing."""
    components: bool = False
    """Points build a whole cluster, so any component field (``kube-controller-manager.kubeAPIQPS``, see
    :mod:`kbench.components`) can be an axis besides ``params``; ``run_point`` gets it under that name."""

    @classmethod
    def from_module(cls, module: ModuleType) -> Sweep:
        """The sweep a module defines: ``NAME``, ``DESCRIPTION``, ``PARAMS``, ``PRESETS``, ``run_point``,
        ``FIGURES``, ``SUMMARY``, and optionally ``export``, ``SLOS``, ``SEEDED`` and ``COMPONENTS`` (points build
        clusters)."""
        return cls(
            name=module.NAME,
            description=module.DESCRIPTION,
            params=module.PARAMS,
            presets=module.PRESETS,
            run_point=module.run_point,
            figures=module.FIGURES,
            summary=module.SUMMARY,
            export=getattr(module, "export", None),
            slos=getattr(module, "SLOS", ()),
            seeded=getattr(module, "SEEDED", True),
            components=getattr(module, "COMPONENTS", False),
        )

    def axes(self, df: pd.DataFrame) -> list[Param | FieldParam]:
        """The parameters of a result table: the declared ones, then each component field it has as a column."""
        fields = [FieldParam(c) for c in df.columns if self.components and "." in str(c)]
        return [*self.params, *fields]

    def plot(self, df: pd.DataFrame, out_dir: Path) -> list[Path]:
        """Draw and save every figure of the sweep for result table ``df``; returns the written files."""
        return plot.plotter(self.figures, self.axes(df), self.slos)(df, out_dir)

    @property
    def param_names(self) -> list[str]:
        """Names of the declared parameters, in order."""
        return [p.name for p in self.params]

    def param(self, name: str) -> Param | FieldParam:
        """The parameter called ``name``: one of ``params``, or a component field when ``components``."""
        for p in self.params:
            if p.name == name:
                return p
        if self.components and "." in name:
            split_field(name)  # names the components and fields allowed
            return FieldParam(name)
        fields = "; or <component>.<field> of " + ", ".join(CONFIGS) if self.components else ""
        raise ValueError(f"sweep {self.name!r} has no parameter {name!r}; valid: {', '.join(self.param_names)}{fields}")

    def parse_overrides(self, items: Sequence[str]) -> dict[str, list]:
        """``["keys=1000,10000", "members=3"]`` -> validated value lists."""
        out: dict[str, list] = {}
        for item in items:
            name, sep, values = item.partition("=")
            if not sep:
                raise ValueError(
                    f"--param {item!r}: expected name=value[,value...]; names: {', '.join(self.param_names)}"
                )
            out[name.strip()] = self.param(name.strip()).parse(values)
        return out

    def grid(self, preset: str = "quick", overrides: Mapping[str, Sequence] | None = None) -> list[dict]:
        """Every combination of the preset's values, with ``overrides`` replacing whole axes."""
        if preset not in self.presets:
            raise ValueError(f"sweep {self.name!r}: unknown preset {preset!r}; valid: {', '.join(self.presets)}")
        axes = dict(self.presets[preset])
        for name, values in (overrides or {}).items():
            axes[name] = [self.param(name).check(v) for v in values]
        missing = [p.name for p in self.params if p.name not in axes]
        if missing:
            raise ValueError(f"sweep {self.name!r}, preset {preset!r}: no values for {', '.join(missing)}")
        names = self.param_names + [n for n in axes if n not in self.param_names]  # then component fields
        return [dict(zip(names, combo)) for combo in itertools.product(*(axes[n] for n in names))]


def point_id(sweep: str, params: Mapping[str, Any]) -> str:
    """A stable identifier of one point (its file name and the root of its seed)."""
    blob = json.dumps({"sweep": sweep, **params}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def point_seed(base_seed: int, pid: str) -> int:
    """The seed of one point: independent of the order points run in, stable across machines."""
    return int(hashlib.sha256(f"{base_seed}:{pid}".encode()).hexdigest()[:15], 16)
