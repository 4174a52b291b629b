"""PriorityClasses (scheduling.k8s.io/v1) and PodDisruptionBudgets (policy/v1), validated at one entry point.

Validation is upstream's: pkg/apis/scheduling/validation/validation.go (ValidatePriorityClass,
ValidatePriorityClassUpdate) with the system classes of pkg/apis/scheduling/helpers.go and types.go, and
pkg/apis/policy/validation/validation.go (ValidatePodDisruptionBudgetSpec, ValidatePodDisruptionBudgetStatusUpdate).
Errors name the object and the field, with upstream's detail, e.g.
``PriorityClass high: value: Forbidden: maximum allowed value of a user defined priority is 1000000000``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kbench.api.core import PREEMPTION_POLICIES, ManifestError, as_map, metav1_time
from kbench.api.selectors import check_label_selector, label_selector_matches, selector_value_error

HIGHEST_USER_DEFINABLE_PRIORITY = 1_000_000_000
"""pkg/apis/scheduling/types.go HighestUserDefinablePriority: the largest value of a user's PriorityClass."""
SYSTEM_CRITICAL_PRIORITY = 2 * HIGHEST_USER_DEFINABLE_PRIORITY
"""types.go SystemCriticalPriority: the base of the system classes' values."""
SYSTEM_PRIORITY_CLASS_PREFIX = "system-"
"""types.go SystemPriorityClassPrefix: names reserved for the system classes."""
SYSTEM_NODE_CRITICAL, SYSTEM_CLUSTER_CRITICAL = "system-node-critical", "system-cluster-critical"
"""types.go SystemNodeCritical, SystemClusterCritical."""
DEFAULT_PRIORITY_WHEN_NO_DEFAULT_CLASS_EXISTS = 0
"""types.go DefaultPriorityWhenNoDefaultClassExists: a pod's priority when it names no class and none is default."""
SYSTEM_PRIORITY_CLASSES = {
    SYSTEM_NODE_CRITICAL: (
        SYSTEM_CRITICAL_PRIORITY + 1000,
        "Used for system critical pods that must not be moved from their current node.",
    ),
    SYSTEM_CLUSTER_CRITICAL: (
        SYSTEM_CRITICAL_PRIORITY,
        "Used for system critical pods that must run in the cluster, but can be moved to another node if necessary.",
    ),
}
"""helpers.go systemPriorityClasses: name -> (value, description); neither is globalDefault."""
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
UNHEALTHY_POD_EVICTION_POLICIES = ("IfHealthyBudget", "AlwaysAllow")
"""policy/v1 UnhealthyPodEvictionPolicyType values (unset: IfHealthyBudget's behaviour)."""
_PERCENT = re.compile(r"^[0-9]+%$")
"""apps validation IsValidPercent."""


def system_priority_class_manifests() -> list[dict]:
    """The system PriorityClasses as the apiserver creates them at start (pkg/registry/scheduling/rest/
    storage_scheduling.go AddSystemPriorityClasses), preemptionPolicy defaulted (SetDefaults_PriorityClass)."""
    return [
        {
            "apiVersion": "scheduling.k8s.io/v1",
            "kind": "PriorityClass",
            "metadata": {"name": name},
            "value": value,
            "description": description,
            "preemptionPolicy": "PreemptLowerPriority",
        }
        for name, (value, description) in SYSTEM_PRIORITY_CLASSES.items()
    ]


def _name(meta: Mapping, kind: str) -> str:
    name = meta.get("name")
    if not isinstance(name, str) or not name:
        raise ManifestError(f"{kind}: metadata.name: required (a non-empty string)")
    return name


def _int(value: Any, where: str, low: int = INT32_MIN, high: int = INT32_MAX) -> int:
    """An int32 field (a bool is not one)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ManifestError(f"{where}: must be an integer; got {value!r}")
    if not low <= value <= high:
        detail = "must be greater than or equal to 0" if low == 0 and value < 0 else f"must be within {low}..{high}"
        raise ManifestError(f"{where}: Invalid value: {value}: {detail}")
    return value


@dataclass(eq=False)
class PriorityClass:
    """A PriorityClass: the priority (``value``) and preemption policy pods naming it get."""

    name: str
    value: int
    global_default: bool = False
    preemption_policy: str = "PreemptLowerPriority"
    description: str = ""
    manifest: Mapping = field(default_factory=dict, repr=False)

    @classmethod
    def from_manifest(cls, manifest: Mapping) -> PriorityClass:
        """Parse and validate a scheduling.k8s.io/v1 PriorityClass (ValidatePriorityClass)."""
        m = as_map(manifest, "PriorityClass")
        name = _name(as_map(m.get("metadata"), "PriorityClass: metadata"), "PriorityClass")
        where = f"PriorityClass {name}"
        if "value" not in m:
            raise ManifestError(f"{where}: value: Required value (an integer)")
        value = _int(m["value"], f"{where}: value")
        default = m.get("globalDefault", False)
        if not isinstance(default, bool):
            raise ManifestError(f"{where}: globalDefault: must be true or false; got {default!r}")
        policy = m.get("preemptionPolicy") or "PreemptLowerPriority"
        if policy not in PREEMPTION_POLICIES:
            allowed = ", ".join(f'"{p}"' for p in PREEMPTION_POLICIES)
            raise ManifestError(
                f"{where}: preemptionPolicy: Unsupported value: {policy!r}: supported values: {allowed}"
            )
        if name.startswith(SYSTEM_PRIORITY_CLASS_PREFIX):
            if (error := _system_class_error(name, value, default)) is not None:
                raise ManifestError(
                    f"{where}: metadata.name: Forbidden: priority class names with '{SYSTEM_PRIORITY_CLASS_PREFIX}' "
                    f"prefix are reserved for system use only. error: {error}"
                )
        elif value > HIGHEST_USER_DEFINABLE_PRIORITY:
            raise ManifestError(
                f"{where}: value: Forbidden: maximum allowed value of a user defined priority is "
                f"{HIGHEST_USER_DEFINABLE_PRIORITY}"
            )
        return cls(name, value, default, policy, str(m.get("description") or ""), m)

    def check_update(self, old: PriorityClass) -> None:
        """ValidatePriorityClassUpdate: ``value`` and ``preemptionPolicy`` may not change."""
        if self.value != old.value:
            raise ManifestError(f"PriorityClass {self.name}: value: Forbidden: may not be changed in an update.")
        if self.preemption_policy != old.preemption_policy:
            raise ManifestError(
                f"PriorityClass {self.name}: preemptionPolicy: Invalid value: {self.preemption_policy!r}: "
                "field is immutable"
            )


def _system_class_error(name: str, value: int, global_default: bool) -> str | None:
    """IsKnownSystemPriorityClass (helpers.go): None if the class is one of the system classes as defined."""
    if name not in SYSTEM_PRIORITY_CLASSES:
        return f"{name} is not a known system priority class"
    if value != SYSTEM_PRIORITY_CLASSES[name][0]:
        return f"value of {name} PriorityClass must be {SYSTEM_PRIORITY_CLASSES[name][0]}"
    if global_default:
        return f"globalDefault of {name} PriorityClass must be false"
    return None


def _time(value: Any, where: str) -> float:
    """A required metav1.Time as simulated seconds."""
    at = metav1_time(value, where)
    if at is None:
        raise ManifestError(f"{where}: required (an RFC 3339 time like 2026-01-01T00:00:05Z)")
    return at


def _int_or_percent(value: Any, where: str) -> int | str:
    """ValidatePositiveIntOrPercent and IsNotMoreThan100Percent (pkg/apis/apps/validation)."""
    if isinstance(value, str):
        if not _PERCENT.match(value):
            raise ManifestError(f"{where}: Invalid value: {value!r}: must be an integer or percentage (e.g '5%')")
        if int(value[:-1]) > 100:
            raise ManifestError(f"{where}: Invalid value: {value!r}: must not be greater than 100%")
        return value
    return _int(value, where, low=0)


@dataclass(eq=False)
class PodDisruptionBudget:
    """A PodDisruptionBudget: which pods it covers, how many may be down, and the disruption controller's status."""

    name: str
    namespace: str
    selector: Mapping | None
    """spec.selector as written (None: unset)."""
    min_available: int | str | None = None
    max_unavailable: int | str | None = None
    unhealthy_pod_eviction_policy: str = ""
    generation: int = 0
    disruptions_allowed: int = 0
    current_healthy: int = 0
    desired_healthy: int = 0
    expected_pods: int = 0
    observed_generation: int = 0
    disrupted_pods: Mapping[str, float] = field(default_factory=dict)
    """status.disruptedPods: pod name -> when the eviction API let it go (simulated seconds)."""
    manifest: Mapping = field(default_factory=dict, repr=False)

    @property
    def key(self) -> str:
        """namespace/name."""
        return f"{self.namespace}/{self.name}"

    @classmethod
    def from_manifest(cls, manifest: Mapping) -> PodDisruptionBudget:
        """Parse and validate a policy/v1 PodDisruptionBudget (ValidatePodDisruptionBudget and its status's
        non-negative counts)."""
        m = as_map(manifest, "PodDisruptionBudget")
        meta = as_map(m.get("metadata"), "PodDisruptionBudget: metadata")
        name, namespace = _name(meta, "PodDisruptionBudget"), meta.get("namespace") or "default"
        where = f"PodDisruptionBudget {namespace}/{name}"
        spec, status = as_map(m.get("spec"), f"{where}: spec"), as_map(m.get("status"), f"{where}: status")
        if spec.get("minAvailable") is not None and spec.get("maxUnavailable") is not None:
            raise ManifestError(f"{where}: spec: Invalid value: minAvailable and maxUnavailable cannot be both set")
        bounds = {
            k: _int_or_percent(spec[k], f"{where}: spec.{k}")
            for k in ("minAvailable", "maxUnavailable")
            if spec.get(k) is not None
        }
        selector = spec.get("selector")
        _check_selector(selector, f"{where}: spec.selector")
        policy = spec.get("unhealthyPodEvictionPolicy") or ""
        if policy and policy not in UNHEALTHY_POD_EVICTION_POLICIES:
            allowed = ", ".join(f'"{p}"' for p in UNHEALTHY_POD_EVICTION_POLICIES)
            raise ManifestError(
                f"{where}: spec.unhealthyPodEvictionPolicy: Unsupported value: {policy!r}: supported values: {allowed}"
            )
        counts = {
            k: _int(status.get(k, 0), f"{where}: status.{k}", low=0)
            for k in ("disruptionsAllowed", "currentHealthy", "desiredHealthy", "expectedPods")
        }
        disrupted = {
            str(pod): _time(at, f"{where}: status.disruptedPods.{pod}")
            for pod, at in as_map(status.get("disruptedPods"), f"{where}: status.disruptedPods").items()
        }
        return cls(
            name,
            namespace,
            selector,
            bounds.get("minAvailable"),
            bounds.get("maxUnavailable"),
            policy,
            _int(meta.get("generation", 0), f"{where}: metadata.generation", low=0, high=2**63 - 1),
            counts["disruptionsAllowed"],
            counts["currentHealthy"],
            counts["desiredHealthy"],
            counts["expectedPods"],
            _int(status.get("observedGeneration", 0), f"{where}: status.observedGeneration", 0, 2**63 - 1),
            disrupted,
            m,
        )

    def covers(self, namespace: str, labels: Mapping[str, str]) -> bool:
        """Whether the disruption controller counts a pod under this budget (getPodsForPdb, and the lister's
        GetPodPodDisruptionBudgets): same namespace and the selector matches; in policy/v1 an empty selector
        matches every pod of the namespace, an unset one none."""
        return namespace == self.namespace and label_selector_matches(self.selector, labels)

    def selects(self, namespace: str, labels: Mapping[str, str]) -> bool:
        """Whether preemption counts a pod against this budget (filterPodsWithPDBViolation in
        pkg/scheduler/framework/plugins/defaultpreemption/default_preemption.go): a pod without labels matches
        no budget, and a budget with an unset or empty selector matches nothing there."""
        return bool(labels) and _selector_nonempty(self.selector) and self.covers(namespace, labels)


def _selector_nonempty(selector: Mapping | None) -> bool:
    """labels.Selector.Empty()'s opposite: the selector has at least one requirement."""
    return selector is not None and bool(selector.get("matchLabels") or selector.get("matchExpressions"))


def _check_selector(selector: Any, where: str) -> None:
    """metav1 ValidateLabelSelector: operators, their values, and valid label values."""
    try:
        check_label_selector(selector, where)
    except ValueError as err:
        raise ManifestError(str(err)) from None
    if selector is not None and (bad := selector_value_error(selector)) is not None:
        _, key, value, message = bad
        raise ManifestError(f"{where}: Invalid value: {value!r}: {message} (key {key!r})")
