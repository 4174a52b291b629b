"""kbench: a discrete-event performance benchmark suite for Kubernetes control planes and node layers.

What it offers, from Python (each name is imported when first used, so ``import kbench`` stays quick):

- a whole modelled cluster: :class:`Cluster` built from a :class:`ClusterSpec` (its shape, and every component's
  configuration: :class:`KubeAPIServerConfig`, :class:`KubeControllerManagerConfiguration`,
  :class:`SchedulerConfig` (KubeSchedulerConfiguration), :class:`KubeletConfiguration`,
  :class:`KubeProxyConfiguration`, :class:`CloudControllerManagerConfiguration`; see :mod:`kbench.components`);
- scenarios on it: :class:`Scenario` (from YAML) and the built-ins in :data:`SCENARIOS`, whose ``run()`` returns a
  :class:`RunResult` of ClusterLoader2's SLIs with a verdict;
- sweeps: :func:`run_sweep` over the sweeps named by :func:`sweep_names` (tidy Parquet results and figures);
- calibration profiles of unit costs: :func:`load_profile`.

The command line is ``kbench`` (:mod:`kbench.cli`).
"""

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version
from typing import Any

try:
    __version__ = version("kbench")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

_EXPORTS = {
    "Cluster": "kbench.cluster",
    "ClusterSpec": "kbench.cluster",
    "Scenario": "kbench.scenarios.spec",
    "SCENARIOS": "kbench.scenarios.library",
    "RunResult": "kbench.metrics.slis",
    "run_sweep": "kbench.sweep",
    "get_sweep": "kbench.sweep",
    "sweep_names": "kbench.sweep",
    "load_profile": "kbench.profiles",
    "KubeAPIServerConfig": "kbench.apiserver.config",
    "KubeControllerManagerConfiguration": "kbench.controllers.config",
    "SchedulerConfig": "kbench.scheduler.config",
    "KubeletConfiguration": "kbench.node.config",
    "KubeProxyConfiguration": "kbench.proxy.config",
    "CloudControllerManagerConfiguration": "kbench.cloud.config",
}
__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    """The public names of :data:`__all__`, imported on first use (PEP 562)."""
    if name not in _EXPORTS:
        raise AttributeError(f"module 'kbench' has no attribute {name!r}")
    value = getattr(import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
