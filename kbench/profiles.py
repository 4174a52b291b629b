"""Calibration profiles: the unit costs behind every simulated time, each with its citation.

A profile is a YAML file in ``data/profiles/``. Sections group the parameters of
one component; a parameter is a mapping that holds a number (``value``) or a
distribution spec (``dist`` and its fields, see :mod:`kbench.sim.dist`) and a
citation: ``source`` (a public benchmark, doc, KEP or paper) or ``assumed``
(the reason). A parameter without a citation is an error::

    etcd:
      wal_fsync: {dist: lognormal, median: 0.0008, p99: 0.004, source: "etcd op-guide ..."}
      members: {value: 3, source: "..."}

Copy a profile to ask "what if": ``load_profile("default").override({"etcd.wal_fsync.median": 0.02})``.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any, ClassVar, Self

import yaml

from kbench.sim.dist import Distribution, from_spec

_CITATIONS = ("source", "assumed")


def profile_dir() -> Path:
    """Where named profiles live: ``$KBENCH_PROFILES`` or the checkout's ``data/profiles``."""
    return Path(os.environ.get("KBENCH_PROFILES", Path(__file__).resolve().parents[1] / "data" / "profiles"))


def available() -> list[str]:
    """Names of the profiles in :func:`profile_dir`."""
    return sorted(p.stem for p in profile_dir().glob("*.yaml"))


def _is_param(node: Any) -> bool:
    return isinstance(node, Mapping) and any(key in node for key in ("value", "dist", *_CITATIONS))


class Profile:
    """A validated calibration profile.

    Parameters
    ----------
    data : mapping
        The parsed YAML document.
    origin : str
        File name (or description) used in error messages.
    """

    def __init__(self, data: Mapping, origin: str) -> None:
        if not isinstance(data, Mapping) or not isinstance(data.get("name"), str):
            raise ValueError(f"{origin}: a profile is a mapping with a string 'name' and component sections")
        self.origin = origin
        self.data = copy.deepcopy(dict(data))
        self._check(self.data, "")

    @property
    def name(self) -> str:
        """The profile's name (``default``, or ``default+overrides``)."""
        return self.data["name"]

    @property
    def digest(self) -> str:
        """SHA-256 of the profile's content (recorded with every result)."""
        return hashlib.sha256(json.dumps(self.data, sort_keys=True).encode()).hexdigest()

    def _check(self, node: Mapping, prefix: str) -> None:
        for key, child in node.items():
            path = f"{prefix}{key}"
            if key in ("name", "description"):
                continue
            if _is_param(child):
                cited = [c for c in _CITATIONS if isinstance(child.get(c), str) and child[c].strip()]
                if not cited:
                    raise ValueError(f"{self.origin}: {path}: every parameter needs a 'source' or 'assumed' citation")
                if "dist" in child:
                    from_spec(child, where=f"{self.origin}: {path}")
                elif "value" not in child:
                    raise ValueError(f"{self.origin}: {path}: a parameter needs 'value' or 'dist'")
            elif isinstance(child, Mapping):
                self._check(child, path + ".")
            else:
                raise ValueError(
                    f"{self.origin}: {path}: expected a section or a parameter with a citation, got {child!r}"
                )

    def _param(self, path: str) -> Mapping:
        node: Any = self.data
        for part in path.split("."):
            if not isinstance(node, Mapping) or part not in node:
                raise KeyError(f"{self.origin}: no parameter {path!r}")
            node = node[part]
        if not _is_param(node):
            raise KeyError(f"{self.origin}: {path!r} is a section, not a parameter")
        return node

    def value(self, path: str) -> Any:
        """The ``value`` of parameter ``path`` (e.g. ``"etcd.members"``)."""
        param = self._param(path)
        if "value" not in param:
            raise KeyError(f"{self.origin}: {path} is a distribution; use dist()")
        return param["value"]

    def dist(self, path: str) -> Distribution:
        """Parameter ``path`` as a distribution (a plain ``value`` is a constant)."""
        param = self._param(path)
        return from_spec(param if "dist" in param else param["value"], where=f"{self.origin}: {path}")

    def override(self, changes: Mapping[str, Any]) -> Profile:
        """A copy with ``{"section.param.field": value}`` changes applied and marked as assumed."""
        data = copy.deepcopy(self.data)
        for dotted, new in changes.items():
            *parents, field = dotted.split(".")
            node = data
            for part in parents:
                if not isinstance(node, dict) or part not in node:
                    raise KeyError(f"{self.origin}: override {dotted!r}: no {part!r}")
                node = node[part]
            if _is_param(node):
                node[field] = new
                node.pop("source", None)
                node["assumed"] = f"override of the {self.name} profile"
            elif isinstance(node, dict) and _is_param(node.get(field)):
                node[field] = {"value": new, "assumed": f"override of the {self.name} profile"}
            else:
                raise KeyError(f"{self.origin}: override {dotted!r} does not name a parameter or its field")
        data["name"] = f"{self.name}+overrides"
        return Profile(data, f"{self.origin} (with overrides)")


class UnitCosts:
    """Base of a component's unit costs: a dataclass whose fields are parameters of one profile section.

    Every component reads its costs through this one pattern: ``Costs.from_profile(profile)`` reads field
    ``f`` from ``<section>.f`` (a field annotated ``Distribution`` as :meth:`Profile.dist`, ``int`` and ``float``
    fields as their type), so a missing or mistyped parameter fails when the component is built, naming it.
    """

    section: ClassVar[str]

    @classmethod
    def from_profile(cls, profile: Profile | None = None, section: str | None = None) -> Self:
        """The costs in ``section`` (default: the class's) of ``profile`` (default: the default profile)."""
        profile = profile or load_profile("default")
        section = section or cls.section
        values: dict[str, Any] = {}
        for f in fields(cls):  # type: ignore[arg-type]
            path = f"{section}.{f.name}"
            kind = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
            values[f.name] = profile.dist(path) if kind == "Distribution" else _number(profile, path, kind)
        return cls(**values)


def _number(profile: Profile, path: str, kind: str) -> int | float:
    """Parameter ``path`` as an ``int`` or ``float`` (``kind``); anything else, or a fraction for an int, is an
    error naming the parameter."""
    value = profile.value(path)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{profile.origin}: {path}: expected a number; got {value!r}")
    if kind == "int" and value != int(value):
        raise ValueError(f"{profile.origin}: {path}: expected a whole number; got {value!r}")
    return int(value) if kind == "int" else float(value)


def load_profile(name: str | os.PathLike = "default") -> Profile:
    """Load a profile by name (from :func:`profile_dir`) or by path; YAML is loaded safely."""
    path = Path(name)
    if path.suffix not in (".yaml", ".yml"):
        path = profile_dir() / f"{name}.yaml"
        if not path.exists():
            raise ValueError(f"profile {str(name)!r} not found in {profile_dir()}; available: {', '.join(available())}")
    if not path.exists():
        raise ValueError(f"profile file {str(path)!r} does not exist")
    return _load(path.resolve(), path.stat().st_mtime_ns)


@functools.lru_cache(maxsize=32)
def _load(path: Path, mtime_ns: int) -> Profile:
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ValueError(f"{path}: not valid YAML: {err}") from None
    return Profile(data, str(path))
