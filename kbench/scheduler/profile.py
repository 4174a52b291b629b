"""KubeSchedulerProfile: a profile's plugins per extension point, score weights and plugin args, resolved.

The default profile is ``pkg/scheduler/apis/config/v1/default_plugins.go``'s multiPoint plugins with their score
weights; a profile's ``plugins`` are merged over it as upstream expands multiPoint (mergePlugins), and checked
as ``pkg/scheduler/apis/config/validation/validation.go`` checks them, with its messages naming the field path,
e.g. ``profiles[0].plugins.score.enabled[1].weight: Invalid value: -1``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kbench.componentconfig import ConfigError
from kbench.scheduler.pluginargs import DEFAULT_ARGS, check_args, invalid

MAX_NODE_SCORE = 100
MAX_WEIGHT = (2**63 - 1) // MAX_NODE_SCORE
EXTENSION_POINTS = (
    "preEnqueue",
    "queueSort",
    "preFilter",
    "filter",
    "postFilter",
    "preScore",
    "score",
    "reserve",
    "permit",
    "preBind",
    "bind",
    "postBind",
)

# Plugin -> the extension points it implements (pkg/scheduler/framework/plugins).
PLUGINS: dict[str, tuple[str, ...]] = {
    "PrioritySort": ("queueSort",),
    "NodeUnschedulable": ("filter",),
    "NodeName": ("filter",),
    "TaintToleration": ("filter", "preScore", "score"),
    "NodeAffinity": ("preFilter", "filter", "preScore", "score"),
    "NodePorts": ("preFilter", "filter"),
    "NodeResourcesFit": ("preFilter", "filter", "preScore", "score"),
    "VolumeRestrictions": ("preFilter", "filter"),
    "NodeVolumeLimits": ("filter",),
    "VolumeBinding": ("preFilter", "filter", "reserve", "preBind", "preScore", "score"),
    "VolumeZone": ("preFilter", "filter"),
    "PodTopologySpread": ("preFilter", "filter", "preScore", "score"),
    "InterPodAffinity": ("preFilter", "filter", "preScore", "score"),
    "DefaultPreemption": ("postFilter",),
    "NodeResourcesBalancedAllocation": ("preScore", "score"),
    "ImageLocality": ("score",),
    "DefaultBinder": ("bind",),
    "SchedulingGates": ("preEnqueue",),
    "DynamicResources": ("preEnqueue", "preFilter", "filter", "postFilter", "reserve", "preBind"),
}
INERT = {
    "VolumeRestrictions",
    "NodeVolumeLimits",
    "VolumeBinding",
    "VolumeZone",
    "SchedulingGates",
    "DynamicResources",
}
"""Accepted, but nothing to do for kbench's pods (no volumes, claims or gates)."""

# Default profile: multiPoint plugins in order, with score weights (default_plugins.go; DynamicResources
# is inserted before DefaultPreemption as the DynamicResourceAllocation gate is on by default since v1.34).
DEFAULT_MULTIPOINT: tuple[tuple[str, int], ...] = (
    ("SchedulingGates", 0),
    ("PrioritySort", 0),
    ("NodeUnschedulable", 0),
    ("NodeName", 0),
    ("TaintToleration", 3),
    ("NodeAffinity", 2),
    ("NodePorts", 0),
    ("NodeResourcesFit", 1),
    ("VolumeRestrictions", 0),
    ("NodeVolumeLimits", 0),
    ("VolumeBinding", 0),
    ("VolumeZone", 0),
    ("PodTopologySpread", 2),
    ("InterPodAffinity", 2),
    ("DynamicResources", 0),
    ("DefaultPreemption", 0),
    ("NodeResourcesBalancedAllocation", 1),
    ("ImageLocality", 1),
    ("DefaultBinder", 0),
)


@dataclass
class Profile:
    """One scheduler profile, resolved: plugins per extension point, score weights, plugin args."""

    scheduler_name: str
    points: dict[str, list[str]]
    weights: dict[str, int]
    args: dict[str, dict[str, Any]]
    percentage_of_nodes_to_score: int | None = None

    def enabled(self, point: str) -> list[str]:
        """Plugins run at ``point``, in order, without the inert ones."""
        return [p for p in self.points.get(point, []) if p not in INERT]

    def to_manifest(self) -> dict[str, Any]:
        """The profile as a KubeSchedulerProfile that resolves to it: every extension point's plugins listed
        explicitly (defaults disabled), score weights, and every plugin's args with defaults filled in."""
        plugins: dict[str, Any] = {"multiPoint": {"disabled": [{"name": "*"}]}}
        for point in EXTENSION_POINTS:
            enabled = [
                {"name": n, **({"weight": self.weights[n]} if point == "score" else {})} for n in self.points[point]
            ]
            plugins[point] = {"enabled": enabled, "disabled": [{"name": "*"}]}
        doc: dict[str, Any] = {
            "schedulerName": self.scheduler_name,
            "plugins": plugins,
            "pluginConfig": [{"name": name, "args": args} for name, args in self.args.items()],
        }
        if self.percentage_of_nodes_to_score is not None:
            doc["percentageOfNodesToScore"] = self.percentage_of_nodes_to_score
        return doc


def _plugin_entries(node: Any, kind: str, path: str) -> list[tuple[str, int | None]]:
    """The (name, weight) entries of a PluginSet's ``enabled`` or ``disabled`` list, checked."""
    entries = []
    for i, p in enumerate(node.get(kind) or []):
        where = f"{path}.{kind}[{i}]"
        if not isinstance(p, Mapping) or not isinstance(p.get("name"), str):
            raise ConfigError(f"{where}.name: Required value: a plugin name")
        name = p["name"]
        if name != "*" and name not in PLUGINS:
            raise ConfigError(
                f"{where}.name: Invalid value: {name!r}: plugin {name!r} does not exist; "
                f"known plugins: {', '.join(sorted(PLUGINS))}"
            )
        weight = p.get("weight")
        if kind == "enabled" and weight is not None:
            if isinstance(weight, bool) or not isinstance(weight, int):
                raise invalid(f"{where}.weight", weight, "must be an integer")
            if weight < 0:
                raise invalid(f"{where}.weight", weight, "must be a positive integer (plugin weights are >= 1)")
            if weight > MAX_WEIGHT:
                raise invalid(f"{where}.weight", weight, f"must not exceed {MAX_WEIGHT}")
        entries.append((name, weight))
    return entries


def _plugin_set(node: Any, path: str) -> tuple[list[tuple[str, int | None]], list[str]]:
    """A PluginSet: its enabled (name, weight) and its disabled names."""
    if node is None:
        return [], []
    if not isinstance(node, Mapping):
        raise ConfigError(f"{path}: must be a mapping with 'enabled' and/or 'disabled'")
    enabled = _plugin_entries(node, "enabled", path)
    return enabled, [name for name, _ in _plugin_entries(node, "disabled", path)]


def _multipoint(plugins: Mapping, path: str) -> list[tuple[str, int | None]]:
    """The multiPoint plugins: defaults less the disabled ones, then the user's (replacing same-named ones)."""
    enabled, disabled = _plugin_set(plugins.get("multiPoint"), f"{path}.multiPoint")
    multipoint: list[tuple[str, int | None]] = (
        [] if "*" in disabled else [(n, w) for n, w in DEFAULT_MULTIPOINT if n not in disabled]
    )
    for name, weight in enabled:
        multipoint = [(n, w) for n, w in multipoint if n != name] + [(name, weight or 0)]
    return multipoint


def _resolve_plugins(plugins: Any, path: str) -> tuple[dict[str, list[str]], dict[str, int]]:
    """Plugins per extension point and score weights (mergePlugins over multiPoint, as upstream expands them)."""
    plugins = plugins or {}
    if not isinstance(plugins, Mapping):
        raise ConfigError(f"{path}: must be a mapping of extension points")
    for point in plugins:
        if point != "multiPoint" and point not in EXTENSION_POINTS:
            raise ConfigError(
                f"{path}.{point}: unknown extension point; allowed: multiPoint, {', '.join(EXTENSION_POINTS)}"
            )
    multipoint = _multipoint(plugins, path)
    weights = {name: weight or 1 for name, weight in multipoint if "score" in PLUGINS[name]}
    points: dict[str, list[str]] = {}
    for point in EXTENSION_POINTS:
        enabled, disabled = _plugin_set(plugins.get(point), f"{path}.{point}")
        for i, (name, _) in enumerate(enabled):
            if point not in PLUGINS[name]:
                raise ConfigError(
                    f"{path}.{point}.enabled[{i}].name: Invalid value: {name!r}: "
                    f"plugin {name!r} does not extend {point} plugin"
                )
        explicit = [name for name, _ in enabled]
        base = [] if "*" in disabled else [n for n, _ in multipoint if point in PLUGINS[n] and n not in disabled]
        points[point] = [n for n in base if n not in explicit] + explicit
        if point == "score":
            for name, weight in enabled:
                weights[name] = weight or weights.get(name) or 1
    weights = {name: w for name, w in weights.items() if name in points["score"]}
    return points, weights


def _plugin_config(entries: Any, path: str) -> dict[str, dict[str, Any]]:
    """Every plugin's args: the profile's pluginConfig, and upstream's defaults for the others."""
    args = {}
    for i, entry in enumerate(entries or []):
        where = f"{path}.pluginConfig[{i}]"
        plugin = entry.get("name") if isinstance(entry, Mapping) else None
        if plugin not in PLUGINS:
            raise ConfigError(f"{where}.name: Invalid value: {plugin!r}: unknown plugin")
        if plugin in args:
            raise ConfigError(f"{where}.name: Duplicate value: {plugin!r}")
        entry_args = entry.get("args") or {}
        if not isinstance(entry_args, Mapping):
            raise ConfigError(f"{where}.args: must be a mapping")
        args[plugin] = check_args(plugin, entry_args, f"{where}.args")
    for plugin in DEFAULT_ARGS:
        args.setdefault(plugin, check_args(plugin, {}, f"{path}.pluginConfig"))
    return args


def resolve_profile(raw: Any, path: str) -> Profile:
    """A KubeSchedulerProfile manifest resolved (validateKubeSchedulerProfile); errors name fields under ``path``."""
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{path}: must be a mapping")
    name = raw.get("schedulerName", "default-scheduler")
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{path}.schedulerName: Required value")
    points, weights = _resolve_plugins(raw.get("plugins"), f"{path}.plugins")
    if len(points["queueSort"]) != 1:
        raise ConfigError(
            f"{path}.plugins.queueSort.enabled: Invalid value: {points['queueSort']}: only one queue "
            f"sort plugin can be enabled"
        )
    args = _plugin_config(raw.get("pluginConfig"), path)
    pct = raw.get("percentageOfNodesToScore")
    if pct is not None and (isinstance(pct, bool) or not isinstance(pct, int) or not 0 <= pct <= 100):
        raise invalid(f"{path}.percentageOfNodesToScore", pct, "not in valid range [0-100]")
    return Profile(name, points, weights, args, pct)


def resolve_profiles(raw: Any, where: str) -> tuple[Profile, ...]:
    """The profiles of a manifest (one default profile if none), with unique scheduler names."""
    if raw is None or raw == []:
        raw = [{}]  # v1 defaults.go: an empty list gets one default profile
    if not isinstance(raw, list):
        raise ConfigError(f"{where}.profiles: must be a list")
    profiles = tuple(resolve_profile(p, f"{where}.profiles[{i}]") for i, p in enumerate(raw))
    names = [p.scheduler_name for p in profiles]
    for i, n in enumerate(names):
        if n in names[:i]:
            raise ConfigError(f"{where}.profiles[{i}].schedulerName: Duplicate value: {n!r}")
    return profiles


def default_profiles() -> tuple[Profile, ...]:
    """The one default profile (``default-scheduler`` with default_plugins.go's plugins)."""
    return resolve_profiles(None, "KubeSchedulerConfiguration")
