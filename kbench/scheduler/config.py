"""KubeSchedulerConfiguration (kubescheduler.config.k8s.io/v1): defaults, merging and validation.

kbench follows kube-scheduler **v1.35** (see ``KUBERNETES_VERSION``): the default profile of
``pkg/scheduler/apis/config/v1/default_plugins.go`` (multiPoint plugins and
score weights, :mod:`kbench.scheduler.profile`), the defaults of ``pkg/scheduler/apis/config/v1/defaults.go``
and the checks of ``pkg/scheduler/apis/config/validation``. :class:`SchedulerConfig`
is kube-scheduler's component configuration (:mod:`kbench.componentconfig`): its
scalar settings are options (``clientConnection.qps``, ``percentageOfNodesToScore``,
...); its profiles are resolved here, with upstream's messages naming the field path,
e.g. ``KubeSchedulerConfiguration.profiles[0].plugins.score.enabled[1].weight: Invalid value: -1``.

Upstream plugins that only act on volumes, claims or scheduling gates are
accepted (pods in kbench carry none) and do nothing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import yaml

from kbench.componentconfig import ComponentConfig, ConfigError, option
from kbench.scheduler.pluginargs import invalid
from kbench.scheduler.profile import (
    DEFAULT_MULTIPOINT,
    EXTENSION_POINTS,
    INERT,
    PLUGINS,
    Profile,
    default_profiles,
    resolve_profiles,
)

__all__ = [
    "DEFAULT_MULTIPOINT",
    "EXTENSION_POINTS",
    "INERT",
    "KUBERNETES_VERSION",
    "PLUGINS",
    "ConfigError",
    "Profile",
    "SchedulerConfig",
    "parse_config",
]

API_VERSION = "kubescheduler.config.k8s.io/v1"
KUBERNETES_VERSION = "v1.35"
"""The pinned release (plugins, defaults, reason texts, golden tables). One deliberate difference:
v1.35's selectHost pops a score heap whose ties fall in the order parallel filter goroutines finish,
which no seed can reproduce; kbench keeps v1.34's reservoir sampling over the evaluation order, the
same uniform choice among tied nodes, drawn from the seeded stream."""
DEFAULTS = "pkg/scheduler/apis/config/v1/defaults.go SetDefaults_KubeSchedulerConfiguration"
VALIDATION = "pkg/scheduler/apis/config/validation/validation.go ValidateKubeSchedulerConfiguration"
POINTERS = ("parallelism", "percentageOfNodesToScore", "podInitialBackoffSeconds", "podMaxBackoffSeconds")
"""Fields upstream holds as pointers: null means "not set" and takes the default."""


@dataclass(frozen=True)
class SchedulerConfig(ComponentConfig):
    """kube-scheduler's KubeSchedulerConfiguration: scalar settings as options, and the resolved profiles.

    ``SchedulerConfig()`` is upstream's defaulted configuration. Read one with :meth:`from_manifest` (or
    :func:`parse_config` for YAML text); set scalar fields with :meth:`replace` (``{"clientConnection.qps": 20}``).
    """

    component: ClassVar[str] = "kube-scheduler"
    kind: ClassVar[str | None] = "KubeSchedulerConfiguration"
    api_version: ClassVar[str | None] = API_VERSION
    accepted: ClassVar[frozenset[str]] = frozenset(
        {
            "leaderElection",
            "enableProfiling",
            "enableContentionProfiling",
            "delayCacheUntilActive",
            "clientConnection.kubeconfig",
            "clientConnection.contentType",
            "clientConnection.acceptContentTypes",
        }
    )

    parallelism: int = option(
        "parallelism",
        16,
        int,
        "Goroutines filtering and scoring nodes in parallel. Not modelled: the per-node unit costs of the "
        "profile's scheduler section are fitted at the default 16.",
        f"{DEFAULTS}; {VALIDATION} (should be an integer value greater than zero)",
        minimum=1,
    )
    percentage_of_nodes_to_score: int = option(
        "percentageOfNodesToScore",
        0,
        int,
        "Share of the nodes to find feasible before scoring (0: adaptive, 50 - nodes/125 %, at least 5 %); "
        "a profile's own value wins.",
        f"{DEFAULTS} (config.DefaultPercentageOfNodesToScore); {VALIDATION} (not in valid range [0-100])",
        minimum=0,
        maximum=100,
    )
    pod_initial_backoff_seconds: int = option(
        "podInitialBackoffSeconds",
        1,
        int,
        "Backoff of an unschedulable pod after its first failed attempt, doubled per attempt.",
        f"{DEFAULTS}; {VALIDATION} (must be greater than 0)",
        minimum=1,
    )
    pod_max_backoff_seconds: int = option(
        "podMaxBackoffSeconds",
        10,
        int,
        "The longest backoff (at least podInitialBackoffSeconds).",
        f"{DEFAULTS}; {VALIDATION}",
        minimum=1,
    )
    client_connection_qps: float = option(
        "clientConnection.qps",
        50.0,
        float,
        "Client-side QPS of kube-scheduler's apiserver client (0 means the default 50; kbench's client is always "
        "rate-limited, so no negative value).",
        f"{DEFAULTS} (the scheduler's own opinion: 0.0 -> 50)",
        minimum=0,
    )
    client_connection_burst: int = option(
        "clientConnection.burst",
        100,
        int,
        "Client-side burst of kube-scheduler's apiserver client (0 means the default 100).",
        f"{DEFAULTS} (0 -> 100); component-base ValidateClientConnectionConfiguration (must be non-negative)",
        minimum=0,
    )
    profiles: tuple[Profile, ...] = field(default_factory=default_profiles)

    def __post_init__(self) -> None:
        """Upstream's defaulting of the client connection: zero QPS or burst mean the scheduler's defaults."""
        if self.client_connection_qps == 0:
            object.__setattr__(self, "client_connection_qps", 50.0)
        if self.client_connection_burst == 0:
            object.__setattr__(self, "client_connection_burst", 100)

    def validate(self, where: str) -> None:
        """Cross-field rules of ValidateKubeSchedulerConfiguration."""
        if self.pod_max_backoff_seconds < self.pod_initial_backoff_seconds:
            raise invalid(
                f"{where}.podMaxBackoffSeconds",
                self.pod_max_backoff_seconds,
                "must be greater than or equal to PodInitialBackoffSeconds",
            )

    @classmethod
    def from_manifest(cls, doc: Mapping[str, Any], where: str | None = None) -> SchedulerConfig:
        """From a KubeSchedulerConfiguration manifest: scalar settings as options, profiles resolved."""
        where = where or str(cls.kind)
        if not isinstance(doc, Mapping):
            raise ConfigError(f"{where}: expected a mapping (kind: {cls.kind})")
        scalars = {k: v for k, v in doc.items() if k != "profiles" and not (k in POINTERS and v is None)}
        base = super().from_manifest(scalars, where)
        return dataclasses.replace(base, profiles=resolve_profiles(doc.get("profiles"), where))

    def to_manifest(self) -> dict[str, Any]:
        """The configuration as a manifest that reads back equal (profiles resolved, see Profile.to_manifest)."""
        return {**super().to_manifest(), "profiles": [p.to_manifest() for p in self.profiles]}

    def profile(self, scheduler_name: str = "default-scheduler") -> Profile:
        """The profile of ``scheduler_name``; errors list the profiles."""
        for p in self.profiles:
            if p.scheduler_name == scheduler_name:
                return p
        names = ", ".join(p.scheduler_name for p in self.profiles)
        raise ConfigError(f"no profile with schedulerName {scheduler_name!r}; profiles: {names}")


def parse_config(source: str | Mapping | None = None, where: str | None = None) -> SchedulerConfig:
    """A KubeSchedulerConfiguration from YAML text or a mapping (None: all defaults)."""
    raw = yaml.safe_load(source) if isinstance(source, str) else source
    return SchedulerConfig.from_manifest(raw if raw is not None else {}, where)
