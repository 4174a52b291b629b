"""KubeSchedulerConfiguration (kubescheduler.config.k8s.io/v1): defaults, merging and validation.

kbench follows kube-scheduler **v1.35** (see ``KUBERNETES_VERSION``): the default profile of
``pkg/scheduler/apis/config/v1/default_plugins.go`` (multiPoint plugins and
score weights), the argument defaults of ``pkg/scheduler/apis/config/v1/defaults.go``
and the checks of ``pkg/scheduler/apis/config/validation``. Errors name the
field path, e.g. ``profiles[0].plugins.score.enabled[1].weight: Invalid value: -1``.

Upstream plugins that only act on volumes, claims or scheduling gates are
accepted (pods in kbench carry none) and do nothing.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

API_VERSION = "kubescheduler.config.k8s.io/v1"
KUBERNETES_VERSION = "v1.35"
"""The pinned release (plugins, defaults, reason texts, golden tables). One deliberate difference:
v1.35's selectHost pops a score heap whose ties fall in the order parallel filter goroutines finish,
which no seed can reproduce; kbench keeps v1.34's reservoir sampling over the evaluation order, the
same uniform choice among tied nodes, drawn from the seeded stream."""
MAX_NODE_SCORE = 100
MAX_CUSTOM_PRIORITY_SCORE = 10
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
    "DefaultPreemption",
}
"""Accepted, but nothing to do for kbench's pods (no volumes, claims or gates); preemption may follow later."""

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

SCORING_STRATEGIES = ("LeastAllocated", "MostAllocated", "RequestedToCapacityRatio")
DEFAULT_RESOURCES = [{"name": "cpu", "weight": 1}, {"name": "memory", "weight": 1}]
SYSTEM_DEFAULT_CONSTRAINTS = [
    {"maxSkew": 3, "topologyKey": "kubernetes.io/hostname", "whenUnsatisfiable": "ScheduleAnyway"},
    {"maxSkew": 5, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "ScheduleAnyway"},
]
"""PodTopologySpread's system defaults (podtopologyspread/plugin.go systemDefaultConstraints)."""

DEFAULT_ARGS: dict[str, dict[str, Any]] = {
    "NodeResourcesFit": {
        "scoringStrategy": {"type": "LeastAllocated", "resources": DEFAULT_RESOURCES},
        "ignoredResources": [],
        "ignoredResourceGroups": [],
    },
    "NodeResourcesBalancedAllocation": {"resources": DEFAULT_RESOURCES},
    "PodTopologySpread": {"defaultConstraints": [], "defaultingType": "System"},
    "InterPodAffinity": {"hardPodAffinityWeight": 1, "ignorePreferredTermsOfExistingPods": False},
    "NodeAffinity": {"addedAffinity": None},
}


class ConfigError(ValueError):
    """An invalid KubeSchedulerConfiguration; the message names the field."""


def _invalid(path: str, value: Any, detail: str) -> ConfigError:
    return ConfigError(f"{path}: Invalid value: {value!r}: {detail}")


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


@dataclass
class SchedulerConfig:
    """A resolved KubeSchedulerConfiguration."""

    profiles: list[Profile]
    percentage_of_nodes_to_score: int = 0
    pod_initial_backoff_seconds: float = 1.0
    pod_max_backoff_seconds: float = 10.0
    source: Mapping = field(default_factory=dict, repr=False)

    def profile(self, scheduler_name: str = "default-scheduler") -> Profile:
        for p in self.profiles:
            if p.scheduler_name == scheduler_name:
                return p
        names = ", ".join(p.scheduler_name for p in self.profiles)
        raise ConfigError(f"no profile with schedulerName {scheduler_name!r}; profiles: {names}")


def _plugin_set(node: Any, path: str) -> tuple[list[tuple[str, int | None]], list[str]]:
    if node is None:
        return [], []
    if not isinstance(node, Mapping):
        raise ConfigError(f"{path}: must be a mapping with 'enabled' and/or 'disabled'")
    out = []
    for kind in ("enabled", "disabled"):
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
                    raise _invalid(f"{where}.weight", weight, "must be an integer")
                if weight < 0:
                    raise _invalid(f"{where}.weight", weight, "must be a positive integer (plugin weights are >= 1)")
                if weight > MAX_WEIGHT:
                    raise _invalid(f"{where}.weight", weight, f"must not exceed {MAX_WEIGHT}")
            entries.append((name, weight))
        out.append(entries)
    return out[0], [name for name, _ in out[1]]


def _resolve_plugins(plugins: Any, path: str) -> tuple[dict[str, list[str]], dict[str, int]]:
    plugins = plugins or {}
    if not isinstance(plugins, Mapping):
        raise ConfigError(f"{path}: must be a mapping of extension points")
    for point in plugins:
        if point != "multiPoint" and point not in EXTENSION_POINTS:
            raise ConfigError(
                f"{path}.{point}: unknown extension point; allowed: multiPoint, {', '.join(EXTENSION_POINTS)}"
            )
    enabled_mp, disabled_mp = _plugin_set(plugins.get("multiPoint"), f"{path}.multiPoint")
    multipoint = [] if "*" in disabled_mp else [(n, w) for n, w in DEFAULT_MULTIPOINT if n not in disabled_mp]
    for name, weight in enabled_mp:  # user multiPoint plugins replace defaults of the same name
        multipoint = [(n, w) for n, w in multipoint if n != name] + [(name, weight or 0)]
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


def _check_resources(resources: Any, path: str, only_one: bool = False) -> list[dict]:
    """Resource specs; a weight of 0 (or none) defaults to 1 (v1 defaults.go)."""
    if not resources:
        return copy.deepcopy(DEFAULT_RESOURCES)
    if not isinstance(resources, list):
        raise ConfigError(f"{path}: must be a list of {{name, weight}}")
    out, seen = [], set()
    for i, r in enumerate(resources):
        if not isinstance(r, Mapping) or not isinstance(r.get("name"), str) or not r["name"]:
            raise ConfigError(f"{path}[{i}].name: Required value")
        if r["name"] in seen:
            raise ConfigError(f"{path}[{i}].name: Duplicate value: {r['name']!r}")
        seen.add(r["name"])
        weight = r.get("weight") or 1
        if isinstance(weight, bool) or not isinstance(weight, int) or not 0 < weight <= 100:
            raise _invalid(f"{path}[{i}].weight", weight, f"resource weight of {r['name']} not in valid range (0, 100]")
        if only_one and weight != 1:
            raise _invalid(f"{path}[{i}].weight", weight, "must be 1")
        out.append({"name": r["name"], "weight": weight})
    return out


def _check_args(name: str, args: Mapping, path: str) -> dict[str, Any]:
    merged = copy.deepcopy(DEFAULT_ARGS.get(name, {}))
    unknown = set(args) - set(merged) - {"apiVersion", "kind"}
    if unknown:
        raise ConfigError(
            f"{path}: unknown field(s) {sorted(unknown)} for {name}Args; allowed: {', '.join(sorted(merged)) or 'none'}"
        )
    merged.update({k: v for k, v in args.items() if k not in ("apiVersion", "kind")})
    if name == "NodeResourcesFit":
        strategy = merged["scoringStrategy"]
        if not isinstance(strategy, Mapping):
            raise ConfigError(f"{path}.scoringStrategy: must be a mapping")
        strategy = {"resources": DEFAULT_RESOURCES, **strategy}
        if strategy.get("type") not in SCORING_STRATEGIES:
            raise ConfigError(
                f"{path}.scoringStrategy.type: Unsupported value: {strategy.get('type')!r}: "
                f"supported values: {', '.join(repr(s) for s in SCORING_STRATEGIES)}"
            )
        strategy["resources"] = _check_resources(strategy["resources"], f"{path}.scoringStrategy.resources")
        if strategy["type"] == "RequestedToCapacityRatio":
            rtcr = strategy.get("requestedToCapacityRatio") or {}
            shape = rtcr.get("shape")
            where = f"{path}.scoringStrategy.requestedToCapacityRatio.shape"
            if not shape:
                raise ConfigError(f"{where}: Required value: at least one point")
            previous = -1
            for i, point in enumerate(shape):
                util, score = point.get("utilization"), point.get("score")
                if not isinstance(util, int) or not 0 <= util <= 100:
                    raise _invalid(f"{where}[{i}].utilization", util, "not in valid range [0, 100]")
                if util <= previous:
                    raise _invalid(
                        f"{where}[{i}].utilization", util, "utilization values must be sorted in increasing order"
                    )
                if not isinstance(score, int) or not 0 <= score <= MAX_CUSTOM_PRIORITY_SCORE:
                    raise _invalid(f"{where}[{i}].score", score, f"not in valid range [0, {MAX_CUSTOM_PRIORITY_SCORE}]")
                previous = util
        elif strategy.get("requestedToCapacityRatio"):
            raise ConfigError(
                f"{path}.scoringStrategy.requestedToCapacityRatio: Forbidden: "
                f"only valid with type RequestedToCapacityRatio"
            )
        merged["scoringStrategy"] = strategy
    elif name == "NodeResourcesBalancedAllocation":
        merged["resources"] = _check_resources(merged["resources"], f"{path}.resources", only_one=True)
    elif name == "PodTopologySpread":
        if merged["defaultingType"] not in ("System", "List"):
            raise ConfigError(
                f"{path}.defaultingType: Unsupported value: {merged['defaultingType']!r}: "
                f"supported values: 'System', 'List'"
            )
        if merged["defaultingType"] == "System" and merged["defaultConstraints"]:
            raise _invalid(f"{path}.defaultingType", "System", "when .defaultConstraints are not empty")
        for i, c in enumerate(merged["defaultConstraints"]):
            where = f"{path}.defaultConstraints[{i}]"
            if not isinstance(c.get("maxSkew"), int) or c["maxSkew"] < 1:
                raise _invalid(f"{where}.maxSkew", c.get("maxSkew"), "not in valid range (0, inf)")
            if not c.get("topologyKey"):
                raise ConfigError(f"{where}.topologyKey: Required value: can not be empty")
            if c.get("whenUnsatisfiable") not in ("DoNotSchedule", "ScheduleAnyway"):
                raise ConfigError(
                    f"{where}.whenUnsatisfiable: Unsupported value: {c.get('whenUnsatisfiable')!r}: "
                    f"supported values: 'DoNotSchedule', 'ScheduleAnyway'"
                )
            if c.get("labelSelector") is not None:
                raise ConfigError(
                    f"{where}.labelSelector: Forbidden: constraint must not define a selector, as "
                    f"they deduced for each pod"
                )
    elif name == "InterPodAffinity":
        w = merged["hardPodAffinityWeight"]
        if isinstance(w, bool) or not isinstance(w, int) or not 0 <= w <= 100:
            raise _invalid(f"{path}.hardPodAffinityWeight", w, "not in valid range [0, 100]")
    elif name == "NodeAffinity" and merged["addedAffinity"] is not None:
        added = merged["addedAffinity"]
        if not isinstance(added, Mapping):
            raise ConfigError(f"{path}.addedAffinity: must be a NodeAffinity mapping")
    return merged


def _profile(raw: Any, index: int, default_percentage: int) -> Profile:
    path = f"profiles[{index}]"
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
    args = {}
    for i, entry in enumerate(raw.get("pluginConfig") or []):
        where = f"{path}.pluginConfig[{i}]"
        plugin = entry.get("name") if isinstance(entry, Mapping) else None
        if plugin not in PLUGINS:
            raise ConfigError(f"{where}.name: Invalid value: {plugin!r}: unknown plugin")
        if plugin in args:
            raise ConfigError(f"{where}.name: Duplicate value: {plugin!r}")
        entry_args = entry.get("args") or {}
        if not isinstance(entry_args, Mapping):
            raise ConfigError(f"{where}.args: must be a mapping")
        args[plugin] = _check_args(plugin, entry_args, f"{where}.args")
    for plugin in DEFAULT_ARGS:
        args.setdefault(plugin, _check_args(plugin, {}, f"{path}.pluginConfig"))
    pct = raw.get("percentageOfNodesToScore")
    if pct is not None and (isinstance(pct, bool) or not isinstance(pct, int) or not 0 <= pct <= 100):
        raise _invalid(f"{path}.percentageOfNodesToScore", pct, "not in valid range [0-100]")
    return Profile(name, points, weights, args, pct)


def parse_config(source: str | Mapping | None = None) -> SchedulerConfig:
    """Resolve a KubeSchedulerConfiguration (YAML text or mapping; None = all defaults)."""
    raw = yaml.safe_load(source) if isinstance(source, str) else (source or {})
    if not isinstance(raw, Mapping):
        raise ConfigError("KubeSchedulerConfiguration: expected a mapping")
    if raw.get("apiVersion", API_VERSION) != API_VERSION:
        raise ConfigError(
            f"apiVersion: Unsupported value: {raw.get('apiVersion')!r}: supported values: {API_VERSION!r}"
        )
    if raw.get("kind", "KubeSchedulerConfiguration") != "KubeSchedulerConfiguration":
        raise ConfigError(f"kind: Unsupported value: {raw.get('kind')!r}: expected 'KubeSchedulerConfiguration'")
    pct = raw.get("percentageOfNodesToScore", 0)
    if pct is None:
        pct = 0
    if isinstance(pct, bool) or not isinstance(pct, int) or not 0 <= pct <= 100:
        raise _invalid("percentageOfNodesToScore", pct, "not in valid range [0-100]")
    initial, maximum = raw.get("podInitialBackoffSeconds", 1), raw.get("podMaxBackoffSeconds", 10)
    for field_name, v in (("podInitialBackoffSeconds", initial), ("podMaxBackoffSeconds", maximum)):
        if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
            raise _invalid(field_name, v, "must be greater than 0")
    if maximum < initial:
        raise _invalid("podMaxBackoffSeconds", maximum, "must be greater than or equal to PodInitialBackoffSeconds")
    profiles_raw = raw.get("profiles") or [{}]
    if not isinstance(profiles_raw, list):
        raise ConfigError("profiles: must be a list")
    profiles = [_profile(p, i, pct) for i, p in enumerate(profiles_raw)]
    names = [p.scheduler_name for p in profiles]
    for i, n in enumerate(names):
        if n in names[:i]:
            raise ConfigError(f"profiles[{i}].schedulerName: Duplicate value: {n!r}")
    return SchedulerConfig(profiles, pct, float(initial), float(maximum), raw)
