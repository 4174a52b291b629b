"""Component configuration as upstream writes it: the base every component's configuration object builds on.

Each component has one configuration object, a frozen dataclass whose fields are declared with :func:`option`:
upstream's name (the JSON path in its component config, e.g. ``clientConnection.qps``, or for a component
configured by flags the flag's camelCase name, e.g. ``kubeAPIQPS`` for ``--kube-api-qps``), upstream's
default with its source, and the values upstream's validation allows. The object is read

- from a component-config manifest (``kind: KubeletConfiguration``, ...) by :meth:`ComponentConfig.from_manifest`;
- from flags (``{"kube-api-qps": 100}`` or ``{"--kube-api-qps": "100"}``) by :meth:`ComponentConfig.from_flags`;
- field by field (sweeps: ``kube-controller-manager.kubeAPIQPS``) by :meth:`ComponentConfig.replace`.

Errors name the component, the field and what is allowed, e.g.
``KubeletConfiguration.kubeAPIQPS: -1 is out of range; expected a number in [0, inf]``. Durations are Go
``time.Duration`` strings (``40s``, ``5m0s``, ``100ms``) as in upstream's manifests and flags, held in seconds.
Profiles keep unit costs (how fast the machines are); configurations keep what an operator sets.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Self

DURATION = "duration"
"""``kind`` of an option holding a Go duration (seconds in Python, ``"40s"`` in manifests and flags)."""
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION = re.compile(r"([0-9]*(?:\.[0-9]*)?)(ns|us|µs|μs|ms|s|m|h)")


class ConfigError(ValueError):
    """A configuration value upstream would refuse; the message names the component and the field."""


def parse_duration(text: Any, where: str) -> float:
    """Seconds of a Go duration string (``time.ParseDuration``: ``1h2m3.5s``, ``300ms``, ``-1.5h``, ``0``)."""
    if isinstance(text, bool) or not isinstance(text, str):
        raise ConfigError(f"{where}: {text!r} is not a duration; expected a string like 40s, 5m0s or 100ms")
    body = text.strip()
    sign = -1.0 if body.startswith("-") else 1.0
    body = body.lstrip("+-")
    if body == "0":
        return 0.0
    total, pos = 0.0, 0
    for match in _DURATION.finditer(body):
        if match.start() != pos or match.group(1) in ("", "."):
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if not body or pos != len(body):
        raise ConfigError(
            f"{where}: {text!r} is not a duration; expected a string like 40s, 5m0s or 100ms "
            "(units ns, us, ms, s, m, h)"
        )
    return sign * total


def is_zero(value: Any) -> bool:
    """A value upstream's defaulting (SetDefaults_*) treats as unset: 0, or a zero Go duration ("0", "0s", "0m0s");
    ``False`` is a value, not unset."""
    if isinstance(value, bool):
        return False
    if isinstance(value, (int, float)):
        return value == 0
    try:
        return isinstance(value, str) and parse_duration(value, "") == 0
    except ConfigError:
        return False


def format_duration(seconds: float) -> str:
    """Go's ``Duration.String()`` of ``seconds``: ``40s``, ``5m0s``, ``1h0m0s``, ``100ms``, ``0s``."""
    nanos = round(seconds * 1e9)
    if nanos == 0:
        return "0s"
    sign, nanos = ("-" if nanos < 0 else ""), abs(nanos)
    if nanos < 1_000_000_000:
        for unit, size in (("ms", 1_000_000), ("µs", 1_000), ("ns", 1)):
            if nanos >= size:
                return f"{sign}{_decimal(nanos, size)}{unit}"
    hours, rest = divmod(nanos, 3_600_000_000_000)
    minutes, rest = divmod(rest, 60_000_000_000)
    text = f"{_decimal(rest, 1_000_000_000)}s"
    if hours or minutes:
        text = f"{minutes}m{text}"
    if hours:
        text = f"{hours}h{text}"
    return sign + text


def _decimal(amount: int, unit: int) -> str:
    whole, frac = divmod(amount, unit)
    digits = str(frac).rjust(len(str(unit)) - 1, "0").rstrip("0") if frac else ""
    return f"{whole}.{digits}" if digits else str(whole)


@dataclass(frozen=True)
class Option:
    """One configuration field: upstream's name, flag, default and source, and what upstream allows."""

    path: str
    """Upstream's name: the dotted JSON path in the component config, or the flag's camelCase name."""
    kind: Any
    """``int``, ``float``, ``bool``, ``str``, :data:`DURATION`, or ``list`` (of strings)."""
    help: str
    source: str
    """Where the default and the rule come from (upstream file or doc)."""
    flag: str | None = None
    """The command-line flag without dashes (``kube-api-qps``), for components configured by flags."""
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple | None = None
    nullable: bool = False
    """``None`` (YAML ``null``) is allowed and means "not set" (upstream's nil pointer)."""

    def allowed(self) -> str:
        """What values are allowed, for error messages and ``kbench config``."""
        if self.choices is not None:
            text = "one of " + ", ".join(str(c) if c != "" else '""' for c in self.choices)
            text = "a list of " + text.removeprefix("one of ") if self.kind is list else text
        elif self.kind is bool:
            text = "true or false"
        elif self.kind is str:
            text = "a string"
        elif self.kind is list:
            text = "a list of strings"
        else:
            lo = "-inf" if self.minimum is None else _bound(self.minimum, self.kind)
            hi = "inf" if self.maximum is None else _bound(self.maximum, self.kind)
            what = {int: "an integer", float: "a number", DURATION: "a duration"}[self.kind]
            text = f"{what} in [{lo}, {hi}]"
        return text + (" or null" if self.nullable else "")

    def check(self, value: Any, where: str) -> Any:
        """``value`` converted (strings as a command line gives them are accepted) and validated."""
        if value is None and self.nullable:
            return None
        converted = self._convert(value, where)
        if self.kind is list:
            bad = [item for item in converted if self.choices is not None and item not in self.choices]
            if bad:
                raise ConfigError(f"{where}: {bad[0]!r} is not allowed; expected {self.allowed()}")
            return tuple(converted)
        if self.choices is not None and converted not in self.choices:
            raise ConfigError(f"{where}: {value!r} is not allowed; expected {self.allowed()}")
        if (self.minimum is not None and converted < self.minimum) or (
            self.maximum is not None and converted > self.maximum
        ):
            raise ConfigError(f"{where}: {value!r} is out of range; expected {self.allowed()}")
        return converted

    def _convert(self, value: Any, where: str) -> Any:
        if self.kind == DURATION:
            return parse_duration(value, where)
        wrong = ConfigError(f"{where}: {value!r} is not {self.allowed()}")
        if self.kind is list:
            items = value.split(",") if isinstance(value, str) else value
            if not isinstance(items, (list, tuple)) or not all(isinstance(i, str) for i in items):
                raise wrong
            return [i.strip() for i in items]
        if self.kind is bool:
            if isinstance(value, str) and value.lower() in ("true", "false"):
                return value.lower() == "true"
            if not isinstance(value, bool):
                raise wrong
            return value
        if self.kind is str:
            if not isinstance(value, str):
                raise wrong
            return value
        if isinstance(value, bool):
            raise wrong
        try:
            number = float(value) if isinstance(value, str) else value
        except ValueError:
            raise wrong from None
        if not isinstance(number, (int, float)) or not math.isfinite(number):
            raise wrong
        if self.kind is int:
            if not float(number).is_integer():
                raise wrong
            return int(number)
        return float(number)

    def show(self, value: Any) -> Any:
        """``value`` as a manifest or flag writes it (durations as Go strings, lists as lists)."""
        if self.kind == DURATION and value is not None:
            return format_duration(value)
        return list(value) if isinstance(value, tuple) else value


def _bound(x: float, kind: Any) -> str:
    if kind == DURATION:
        return format_duration(x)
    return str(int(x)) if float(x).is_integer() else repr(x)


def option(path: str, default: Any, kind: Any, help: str, source: str, **rules: Any) -> Any:
    """A dataclass field that is configuration option ``path`` (see :class:`Option` for ``rules``)."""
    meta = Option(path, kind, help, source, **rules)
    value = tuple(default) if isinstance(default, list) else default
    return dataclasses.field(default=value, metadata={"option": meta})


class ComponentConfig:
    """Base of every component's configuration (subclasses are frozen dataclasses of :func:`option` fields).

    ``component`` is the component's name (``kubelet``); ``kind``/``api_version`` the component-config
    manifest's (``None`` for a component configured by flags only); ``accepted`` the upstream fields a manifest
    (or flags, without dashes) may carry that kbench does not model: accepted and ignored, like upstream plugins
    kbench's pods never use.
    """

    component: ClassVar[str]
    kind: ClassVar[str | None] = None
    api_version: ClassVar[str | None] = None
    accepted: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def options(cls) -> dict[str, tuple[str, Option]]:
        """``{path: (attribute, option)}`` of every option, in declaration order."""
        found = {}
        for f in dataclasses.fields(cls):  # type: ignore[arg-type]
            meta = f.metadata.get("option")
            if meta is not None:
                found[meta.path] = (f.name, meta)
        return found

    @classmethod
    def label(cls) -> str:
        """The name errors give the configuration: its ``kind``, or its component when it is flags only."""
        return cls.kind or cls.component

    @classmethod
    def lookup(cls, name: str, where: str | None = None) -> tuple[str, Option]:
        """The option named by its path, its flag (with or without dashes), or its attribute; errors are
        prefixed by ``where`` (default: the kind or the component)."""
        name = name.lstrip("-")
        for path, (attr, meta) in cls.options().items():
            if name in (path, meta.flag, attr):
                return attr, meta
        allowed = ", ".join(cls.options())
        raise ConfigError(f"{where or cls.label()}.{name}: unknown field; allowed: {allowed}")

    def replace(self, values: Mapping[str, Any], where: str | None = None) -> Self:
        """A copy with ``values`` (keyed by path, flag or attribute) set and the whole object validated."""
        where = where or self.label()
        changes = {}
        for name, value in values.items():
            if str(name).lstrip("-") in self.accepted:  # upstream's, not modelled: accepted and ignored
                continue
            attr, meta = self.lookup(str(name), where)
            changes[attr] = meta.check(value, f"{where}.{meta.path}")
        built = dataclasses.replace(self, **changes)  # type: ignore[type-var]
        built.validate(where)
        return built

    @classmethod
    def from_flags(cls, flags: Mapping[str, Any] | None, where: str | None = None) -> Self:
        """From a map of flags (``{"kube-api-qps": 100}``; dashes and string values as a command line has)."""
        where = where or cls.component
        if flags is None:
            flags = {}
        if not isinstance(flags, Mapping):
            raise ConfigError(f"{where}: expected a mapping of flags, e.g. {{kube-api-qps: 100}}")
        names = {meta.flag: meta.path for _, meta in cls.options().values() if meta.flag}
        for name in flags:
            flag = str(name).lstrip("-")
            if flag not in names and flag not in cls.accepted:
                raise ConfigError(f"{where}: --{flag}: unknown flag; allowed: --{', --'.join(names)}")
        modelled = {k: v for k, v in flags.items() if str(k).lstrip("-") in names}
        return cls().replace({names[str(k).lstrip("-")]: v for k, v in modelled.items()}, where)

    @classmethod
    def from_manifest(cls, doc: Mapping[str, Any], where: str | None = None) -> Self:
        """From a component-config manifest (``apiVersion``/``kind`` checked; unknown fields refused)."""
        where = where or str(cls.kind)
        if not isinstance(doc, Mapping):
            raise ConfigError(f"{where}: expected a mapping (kind: {cls.kind})")
        if doc.get("kind", cls.kind) != cls.kind or doc.get("apiVersion", cls.api_version) != cls.api_version:
            raise ConfigError(
                f"{where}: apiVersion/kind: expected {cls.api_version} {cls.kind}; "
                f"got {doc.get('apiVersion')!r} {doc.get('kind')!r}"
            )
        paths = cls.options()
        values: dict[str, Any] = {}

        def walk(node: Mapping, prefix: str) -> None:
            for key, value in node.items():
                path = f"{prefix}{key}"
                if path in paths:
                    values[path] = value
                elif isinstance(value, Mapping) and any(p.startswith(path + ".") for p in paths):
                    walk(value, path + ".")
                elif not prefix and key in ("apiVersion", "kind"):
                    continue
                elif path not in cls.accepted:
                    raise ConfigError(f"{where}.{path}: unknown field; allowed: {', '.join(paths)}")

        walk(doc, "")
        return cls().replace(values, where)

    def to_manifest(self) -> dict[str, Any]:
        """The configuration as upstream writes it: a nested manifest, or ``{flag: value}`` without a kind."""
        if self.kind is None:
            return {m.flag or m.path: m.show(getattr(self, a)) for a, m in self.options().values()}
        doc: dict[str, Any] = {"apiVersion": self.api_version, "kind": self.kind}
        for attr, meta in self.options().values():
            *parents, leaf = meta.path.split(".")
            node = doc
            for part in parents:
                node = node.setdefault(part, {})
            node[leaf] = meta.show(getattr(self, attr))
        return doc

    def values(self) -> dict[str, Any]:
        """``{path: value}`` of every option (as manifests write it), for result rows and ``kbench config``."""
        return {path: meta.show(getattr(self, attr)) for path, (attr, meta) in self.options().items()}

    def validate(self, where: str) -> None:
        """Rules across fields (upstream's validation package); subclasses raise :class:`ConfigError`."""
