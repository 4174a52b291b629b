"""Plugin args of a KubeSchedulerConfiguration profile: defaults and validation.

Defaults from ``pkg/scheduler/apis/config/v1/defaults.go`` (``SetDefaults_<Plugin>Args``), checks and their
messages from ``pkg/scheduler/apis/config/validation/validation_pluginargs.go``. Errors name the field path,
e.g. ``profiles[0].pluginConfig[0].args.scoringStrategy.type: Unsupported value: 'Best': ...``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import Any

from kbench.componentconfig import ConfigError

MAX_CUSTOM_PRIORITY_SCORE = 10
SCORING_STRATEGIES = ("LeastAllocated", "MostAllocated", "RequestedToCapacityRatio")
DEFAULT_RESOURCES = [{"name": "cpu", "weight": 1}, {"name": "memory", "weight": 1}]
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
    "DefaultPreemption": {"minCandidateNodesPercentage": 10, "minCandidateNodesAbsolute": 100},
}
"""Each plugin's args with upstream's defaults (plugins not listed take none)."""


def invalid(path: str, value: Any, detail: str) -> ConfigError:
    """field.Invalid: ``<path>: Invalid value: <value>: <detail>``."""
    return ConfigError(f"{path}: Invalid value: {value!r}: {detail}")


def check_resources(resources: Any, path: str, only_one: bool = False) -> list[dict]:
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
            raise invalid(f"{path}[{i}].weight", weight, f"resource weight of {r['name']} not in valid range (0, 100]")
        if only_one and weight != 1:
            raise invalid(f"{path}[{i}].weight", weight, "must be 1")
        out.append({"name": r["name"], "weight": weight})
    return out


def check_shape(shape: Any, where: str) -> None:
    """RequestedToCapacityRatio's shape: utilizations increasing in [0, 100], scores in [0, 10]."""
    if not shape:
        raise ConfigError(f"{where}: Required value: at least one point")
    previous = -1
    for i, point in enumerate(shape):
        util, score = point.get("utilization"), point.get("score")
        if not isinstance(util, int) or not 0 <= util <= 100:
            raise invalid(f"{where}[{i}].utilization", util, "not in valid range [0, 100]")
        if util <= previous:
            raise invalid(f"{where}[{i}].utilization", util, "utilization values must be sorted in increasing order")
        if not isinstance(score, int) or not 0 <= score <= MAX_CUSTOM_PRIORITY_SCORE:
            raise invalid(f"{where}[{i}].score", score, f"not in valid range [0, {MAX_CUSTOM_PRIORITY_SCORE}]")
        previous = util


def check_fit(args: dict[str, Any], path: str) -> None:
    """ValidateNodeResourcesFitArgs (scoringStrategy)."""
    strategy = args["scoringStrategy"]
    if not isinstance(strategy, Mapping):
        raise ConfigError(f"{path}.scoringStrategy: must be a mapping")
    strategy = {"resources": DEFAULT_RESOURCES, **strategy}
    if strategy.get("type") not in SCORING_STRATEGIES:
        raise ConfigError(
            f"{path}.scoringStrategy.type: Unsupported value: {strategy.get('type')!r}: "
            f"supported values: {', '.join(repr(s) for s in SCORING_STRATEGIES)}"
        )
    strategy["resources"] = check_resources(strategy["resources"], f"{path}.scoringStrategy.resources")
    if strategy["type"] == "RequestedToCapacityRatio":
        shape = (strategy.get("requestedToCapacityRatio") or {}).get("shape")
        check_shape(shape, f"{path}.scoringStrategy.requestedToCapacityRatio.shape")
    elif strategy.get("requestedToCapacityRatio"):
        raise ConfigError(
            f"{path}.scoringStrategy.requestedToCapacityRatio: Forbidden: only valid with type RequestedToCapacityRatio"
        )
    args["scoringStrategy"] = strategy


def check_balanced(args: dict[str, Any], path: str) -> None:
    """ValidateNodeResourcesBalancedAllocationArgs (resources, each weight 1)."""
    args["resources"] = check_resources(args["resources"], f"{path}.resources", only_one=True)


def check_default_constraint(c: Mapping, where: str) -> None:
    """One of PodTopologySpreadArgs.defaultConstraints."""
    if not isinstance(c.get("maxSkew"), int) or c["maxSkew"] < 1:
        raise invalid(f"{where}.maxSkew", c.get("maxSkew"), "not in valid range (0, inf)")
    if not c.get("topologyKey"):
        raise ConfigError(f"{where}.topologyKey: Required value: can not be empty")
    if c.get("whenUnsatisfiable") not in ("DoNotSchedule", "ScheduleAnyway"):
        raise ConfigError(
            f"{where}.whenUnsatisfiable: Unsupported value: {c.get('whenUnsatisfiable')!r}: "
            f"supported values: 'DoNotSchedule', 'ScheduleAnyway'"
        )
    if c.get("labelSelector") is not None:
        raise ConfigError(
            f"{where}.labelSelector: Forbidden: constraint must not define a selector, as they deduced for each pod"
        )


def check_spread(args: dict[str, Any], path: str) -> None:
    """ValidatePodTopologySpreadArgs (defaultingType, defaultConstraints)."""
    if args["defaultingType"] not in ("System", "List"):
        raise ConfigError(
            f"{path}.defaultingType: Unsupported value: {args['defaultingType']!r}: supported values: 'System', 'List'"
        )
    if args["defaultingType"] == "System" and args["defaultConstraints"]:
        raise invalid(f"{path}.defaultingType", "System", "when .defaultConstraints are not empty")
    for i, c in enumerate(args["defaultConstraints"]):
        check_default_constraint(c, f"{path}.defaultConstraints[{i}]")


def check_interpod(args: dict[str, Any], path: str) -> None:
    """ValidateInterPodAffinityArgs (hardPodAffinityWeight)."""
    w = args["hardPodAffinityWeight"]
    if isinstance(w, bool) or not isinstance(w, int) or not 0 <= w <= 100:
        raise invalid(f"{path}.hardPodAffinityWeight", w, "not in valid range [0, 100]")


def check_node_affinity(args: dict[str, Any], path: str) -> None:
    """ValidateNodeAffinityArgs (addedAffinity is a NodeAffinity)."""
    if args["addedAffinity"] is not None and not isinstance(args["addedAffinity"], Mapping):
        raise ConfigError(f"{path}.addedAffinity: must be a NodeAffinity mapping")


def check_preemption(args: dict[str, Any], path: str) -> None:
    """ValidateDefaultPreemptionArgs: percentage in [0, 100], absolute >= 0, not both zero."""
    pct, absolute = args["minCandidateNodesPercentage"], args["minCandidateNodesAbsolute"]
    for name, value in (("minCandidateNodesPercentage", pct), ("minCandidateNodesAbsolute", absolute)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise invalid(f"{path}.{name}", value, "must be an integer")
    if not 0 <= pct <= 100:
        raise invalid(f"{path}.minCandidateNodesPercentage", pct, "not in valid range [0, 100]")
    if absolute < 0:
        raise invalid(f"{path}.minCandidateNodesAbsolute", absolute, "not in valid range [0, inf)")
    if pct == 0 and absolute == 0:
        raise invalid(
            f"{path}.minCandidateNodesPercentage", pct, "cannot be zero at the same time as minCandidateNodesAbsolute"
        )


VALIDATORS: dict[str, Callable[[dict[str, Any], str], None]] = {
    "NodeResourcesFit": check_fit,
    "NodeResourcesBalancedAllocation": check_balanced,
    "PodTopologySpread": check_spread,
    "InterPodAffinity": check_interpod,
    "NodeAffinity": check_node_affinity,
    "DefaultPreemption": check_preemption,
}
"""validation_pluginargs.go: each plugin's args check (it may also complete nested defaults)."""


def check_args(name: str, args: Mapping, path: str) -> dict[str, Any]:
    """Plugin ``name``'s args with upstream's defaults filled in, validated; errors name the field under ``path``."""
    merged = copy.deepcopy(DEFAULT_ARGS.get(name, {}))
    unknown = set(args) - set(merged) - {"apiVersion", "kind"}
    if unknown:
        raise ConfigError(
            f"{path}: unknown field(s) {sorted(unknown)} for {name}Args; allowed: {', '.join(sorted(merged)) or 'none'}"
        )
    merged.update({k: v for k, v in args.items() if k not in ("apiVersion", "kind")})
    check = VALIDATORS.get(name)
    if check is not None:
        check(merged, path)
    return merged
