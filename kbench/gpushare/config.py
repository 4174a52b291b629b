"""The lab's scheduler configuration: a KubeSchedulerConfiguration as the FGD paper's simulator writes it.

The repository's ``scripts/generate_config_and_run.py`` (``SCHEDULER_CONFIG_TEMPLATE``) enables the Open-Gpu-Share
filter and reserve plugin, disables every default score plugin and enables the policy's score plugin with weight
1000; ``pluginConfig`` gives each score plugin ``dimExtMethod`` and ``normMethod`` and Open-Gpu-Share its
``gpuSelMethod``, which becomes the score plugin's own name when that plugin is DotProductScore or FGDScore with a
``dimExtMethod`` other than ``merge``. :data:`POLICIES` are the paper's six runs
(``experiments/run_scripts/generate_run_scripts.py`` ``MethodList``). Default filters that act on what these pods
carry (NodeResourcesFit: CPU, memory, pod count) always run, as in the repository, whose profile leaves them on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from kbench.componentconfig import ConfigError

SCORE_PLUGINS = ("RandomScore", "DotProductScore", "GpuClusteringScore", "GpuPackingScore", "BestFitScore", "FGDScore")
"""The repository's score plugins (``pkg/type/const.go``), in its order."""
GPU_SHARE = "Open-Gpu-Share"
GPU_SEL_METHODS = ("best", "worst", "random")
"""``gpuSelMethod`` values besides a score plugin's name (``SelBestFitGpu``, ``SelWorstFitGpu``, ``SelRandomGpu``)."""
SELF_SELECTING = ("DotProductScore", "FGDScore")
"""Score plugins that register their own GPU selection (``allocateGpuIdFunc[plugin.Name()]``)."""
DIM_EXT_METHODS = ("merge", "share")
"""``dimExtMethod``: one GPU dimension, or a vector per partly used GPU, each with the node's CPU (``divide`` and
``extend`` are not modelled: no run of the paper uses them)."""
NORM_METHODS = ("max", "node", "pod")
API_VERSIONS = ("kubescheduler.config.k8s.io/v1beta1", "kubescheduler.config.k8s.io/v1")


@dataclass(frozen=True)
class Policy:
    """A resolved profile: weighted score plugins and the Open-Gpu-Share arguments."""

    scores: tuple[tuple[str, int], ...]
    gpu_sel: str = "best"
    dim_ext: str = "share"
    norm: str = "max"

    @property
    def name(self) -> str:
        """The paper's name when this is one of :data:`POLICIES`, else the plugins and weights."""
        for name, policy in POLICIES.items():
            if policy == self:
                return name
        return "+".join(f"{plugin}:{weight}" for plugin, weight in self.scores)


def _policy(plugin: str, gpu_sel: str, dim_ext: str = "share", norm: str = "max") -> Policy:
    if plugin in SELF_SELECTING and dim_ext != "merge":
        gpu_sel = plugin
    return Policy(((plugin, 1000),), gpu_sel, dim_ext, norm)


POLICIES: dict[str, Policy] = {
    "Random": _policy("RandomScore", "random"),
    "DotProd": _policy("DotProductScore", "best", "merge", "max"),
    "GpuClustering": _policy("GpuClusteringScore", "best"),
    "GpuPacking": _policy("GpuPackingScore", "best"),
    "BestFit": _policy("BestFitScore", "best"),
    "FGD": _policy("FGDScore", "best", "share", "max"),
}
"""The paper's six policies as its run scripts configure them."""


def policy(name: str) -> Policy:
    """One of :data:`POLICIES` by name; the error lists them."""
    try:
        return POLICIES[name]
    except KeyError:
        raise ConfigError(f"policy: Unsupported value: {name!r}: supported values: {', '.join(POLICIES)}") from None


def _choice(value: Any, allowed: tuple[str, ...], where: str) -> str:
    if value not in allowed:
        raise ConfigError(f"{where}: Unsupported value: {value!r}: supported values: {', '.join(allowed)}")
    return str(value)


def _enabled(plugins: Mapping, point: str, where: str) -> list[dict]:
    section = plugins.get(point) or {}
    enabled = section.get("enabled") or []
    if not isinstance(enabled, list):
        raise ConfigError(f"{where}.plugins.{point}.enabled: Invalid value: {enabled!r}: a list of plugins")
    return enabled


def _scores(plugins: Mapping, where: str) -> tuple[tuple[str, int], ...]:
    scores = []
    for i, entry in enumerate(_enabled(plugins, "score", where)):
        path = f"{where}.plugins.score.enabled[{i}]"
        name = _choice((entry or {}).get("name"), SCORE_PLUGINS, f"{path}.name")
        weight = entry.get("weight", 1)
        if not isinstance(weight, int) or isinstance(weight, bool) or weight <= 0:
            raise ConfigError(f"{path}.weight: Invalid value: {weight!r}: a positive integer")
        scores.append((name, weight))
    if not scores:
        raise ConfigError(f"{where}.plugins.score.enabled: Required value: one of {', '.join(SCORE_PLUGINS)}")
    return tuple(scores)


def _args(profile: Mapping, where: str) -> tuple[Mapping[str, Any], str]:
    """Open-Gpu-Share's args and their field path."""
    for i, entry in enumerate(profile.get("pluginConfig") or []):
        if (entry or {}).get("name") == GPU_SHARE:
            return entry.get("args") or {}, f"{where}.pluginConfig[{i}].args"
    return {}, f"{where}.pluginConfig"


def parse(source: str | Mapping) -> Policy:
    """A Policy from a KubeSchedulerConfiguration (YAML text or mapping) with one profile as the repository's."""
    doc = yaml.safe_load(source) if isinstance(source, str) else source
    if not isinstance(doc, Mapping):
        raise ConfigError(f"KubeSchedulerConfiguration: Invalid value: {doc!r}: a mapping")
    _choice(doc.get("apiVersion"), API_VERSIONS, "KubeSchedulerConfiguration.apiVersion")
    profiles = doc.get("profiles") or []
    if len(profiles) != 1:
        raise ConfigError(f"KubeSchedulerConfiguration.profiles: Invalid value: {len(profiles)} profiles: exactly one")
    where = "KubeSchedulerConfiguration.profiles[0]"
    plugins = profiles[0].get("plugins") or {}
    for point in ("filter", "reserve"):
        names = [(e or {}).get("name") for e in _enabled(plugins, point, where)]
        if GPU_SHARE not in names:
            raise ConfigError(f"{where}.plugins.{point}.enabled: Required value: {GPU_SHARE}")
    scores = _scores(plugins, where)
    args, path = _args(profiles[0], where)
    gpu_sel = _choice(args.get("gpuSelMethod", "best"), GPU_SEL_METHODS + SELF_SELECTING, f"{path}.gpuSelMethod")
    dim_ext = _choice(args.get("dimExtMethod", "share"), DIM_EXT_METHODS, f"{path}.dimExtMethod")
    norm = _choice(args.get("normMethod", "max"), NORM_METHODS, f"{path}.normMethod")
    if gpu_sel in SELF_SELECTING and gpu_sel not in dict(scores):
        raise ConfigError(f"{path}.gpuSelMethod: Invalid value: {gpu_sel!r}: the plugin is not an enabled score plugin")
    return Policy(scores, gpu_sel, dim_ext, norm)


def manifest(policy: Policy) -> dict[str, Any]:
    """The KubeSchedulerConfiguration of ``policy``, as the repository's template writes it."""
    args = {"dimExtMethod": policy.dim_ext, "normMethod": policy.norm}
    return {
        "apiVersion": API_VERSIONS[0],
        "kind": "KubeSchedulerConfiguration",
        "percentageOfNodesToScore": 100,
        "profiles": [
            {
                "schedulerName": "simon-scheduler",
                "plugins": {
                    "filter": {"enabled": [{"name": GPU_SHARE}]},
                    "score": {
                        "disabled": [{"name": "*"}],
                        "enabled": [{"name": n, "weight": w} for n, w in policy.scores],
                    },
                    "reserve": {"enabled": [{"name": GPU_SHARE}]},
                },
                "pluginConfig": [{"name": n, "args": dict(args)} for n, _ in policy.scores]
                + [{"name": GPU_SHARE, "args": {"gpuSelMethod": policy.gpu_sel, **args}}],
            }
        ],
    }
