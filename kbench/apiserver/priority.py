"""The Priority admission plugin (plugin/pkg/admission/priority/admission.go, v1.35) and the validation of the objects
preemption reads (the PriorityClass and PodDisruptionBudget registries' strategies: pkg/registry/scheduling/
priorityclass/strategy.go, pkg/registry/policy/poddisruptionbudget/strategy.go).

Pods (mutating phase, on create): ``priorityClassName`` gives ``spec.priority`` and ``spec.preemptionPolicy`` the
class's value and policy; a pod naming none gets the ``globalDefault`` class's (the lowest value if a race left
several) and its name, or priority 0 (DefaultPriorityWhenNoDefaultClassExists) and PreemptLowerPriority when there is
none. An unknown class, or a ``priority`` / ``preemptionPolicy`` the pod sets that differs from the computed one, is
403 Forbidden with upstream's message. On update a pod keeps the priority and policy it was given.

PriorityClasses (validating phase, after the object's validation): at most one ``globalDefault`` (403). The object's
validation (422 Invalid) is :mod:`kbench.api.policy`'s, with ``value`` and ``preemptionPolicy`` immutable on update.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from kbench.api.core import ManifestError
from kbench.api.policy import (
    DEFAULT_PRIORITY_WHEN_NO_DEFAULT_CLASS_EXISTS,
    SYSTEM_PRIORITY_CLASSES,
    PodDisruptionBudget,
    PriorityClass,
)
from kbench.apiserver.objects import APIError, Resource
from kbench.apiserver.watchcache import WatchCache

PARSERS: dict[str, Callable[[Mapping], PriorityClass | PodDisruptionBudget]] = {
    "priorityclasses": PriorityClass.from_manifest,
    "poddisruptionbudgets": PodDisruptionBudget.from_manifest,
}
"""The resources whose objects the apiserver validates here, and their parsers."""


def forbidden(resource: Resource, name: str, detail: str) -> APIError:
    """403 Forbidden, as admission.NewForbidden (apierrors.NewForbidden on the request's group resource)."""
    return APIError(403, "Forbidden", f'{resource.group_resource} "{name}" is forbidden: {detail}')


def refuse_system_class_delete(resource: Resource, name: str) -> None:
    """The priorityclasses storage's Delete (pkg/registry/scheduling/priorityclass/storage): a system class is
    never deleted."""
    if resource.name == "priorityclasses" and name in SYSTEM_PRIORITY_CLASSES:
        raise forbidden(resource, name, "this is a system priority class and cannot be deleted")


def default_priority_class(classes: WatchCache) -> Mapping | None:
    """getDefaultPriorityClass: the ``globalDefault`` class; of several (a race), the one with the lowest value."""
    found = None
    for pc, _, _ in classes.objects.values():
        if pc.get("globalDefault") and (found is None or found["value"] > pc["value"]):
            found = pc
    return found


def admit_pod_priority(pod: dict, classes: WatchCache, pods: Resource) -> None:
    """admitPod on create: resolve the pod's priority and preemption policy from its PriorityClass (its ``spec`` is
    the request's private copy)."""
    spec, name = pod["spec"], pod["metadata"]["name"]
    class_name = spec.get("priorityClassName") or ""
    if not class_name:
        pc = default_priority_class(classes)
        if pc is not None:
            spec["priorityClassName"] = pc["metadata"]["name"]
        priority = pc["value"] if pc else DEFAULT_PRIORITY_WHEN_NO_DEFAULT_CLASS_EXISTS
        policy = (pc or {}).get("preemptionPolicy") or "PreemptLowerPriority"
    else:
        found = classes.get(class_name)
        if found is None:
            raise forbidden(pods, name, f"no PriorityClass with name {class_name} was found")
        priority, policy = found[0]["value"], found[0].get("preemptionPolicy") or "PreemptLowerPriority"
    for key, computed, what in (("priority", priority, "integer value of priority"),
                                ("preemptionPolicy", policy, "string value of PreemptionPolicy")):  # fmt: skip
        if spec.get(key) is not None and spec[key] != computed:
            raise forbidden(
                pods,
                name,
                f"the {what} ({spec[key]}) must not be provided in pod spec; priority admission controller computed "
                f"{computed} from the given PriorityClass name",
            )
    spec["priority"], spec["preemptionPolicy"] = priority, policy


def validate(resource: Resource, obj: Mapping, caches: Mapping[str, WatchCache]) -> None:
    """A create's validation (422) and validating admission (403) of a PriorityClass or PodDisruptionBudget."""
    parsed = _parsed(resource, obj)
    if isinstance(parsed, PriorityClass):
        validate_priority_class(resource, parsed, caches["priorityclasses"], update=False)


def admit_update(resource: Resource, obj: dict, old: Mapping, caches: Mapping[str, WatchCache]) -> None:
    """An update: a pod's main resource keeps the priority and policy admission gave it (admitPod on update); a
    PriorityClass or PodDisruptionBudget, main resource or status, is validated as it would be stored
    (ValidatePriorityClassUpdate's immutable fields, ValidatePodDisruptionBudgetStatusUpdate's counts and
    disruptedPods) and a PriorityClass meets the validating phase."""
    if resource.name == "pods":
        spec, before = obj.get("spec") or {}, old.get("spec") or {}
        missing = {k: before[k] for k in ("priority", "preemptionPolicy") if spec.get(k) is None and k in before}
        if missing:  # a new spec: the request's body stays as sent
            obj["spec"] = {**spec, **missing}
        return
    parsed = _parsed(resource, obj)
    if isinstance(parsed, PriorityClass):
        try:
            parsed.check_update(PriorityClass.from_manifest(old))
        except ManifestError as err:
            raise _invalid(resource, parsed.name, err) from None
        validate_priority_class(resource, parsed, caches["priorityclasses"], update=True)


def validate_priority_class(resource: Resource, pc: PriorityClass, classes: WatchCache, update: bool) -> None:
    """validatePriorityClass: a class becoming ``globalDefault`` while another one is, is refused."""
    if not pc.global_default:
        return
    current = default_priority_class(classes)
    if current is not None and (not update or current["metadata"]["name"] != pc.name):
        raise forbidden(
            resource,
            pc.name,
            f"PriorityClass {current['metadata']['name']} is already marked as default. Only one default can exist",
        )


def _parsed(resource: Resource, obj: Mapping) -> PriorityClass | PodDisruptionBudget | None:
    """The object's validation (its parser's), a failure as 422 Invalid; None for a resource not validated here."""
    parse = PARSERS.get(resource.name)
    if parse is None:
        return None
    try:
        return parse(obj)
    except ManifestError as err:
        raise _invalid(resource, obj.get("metadata", {}).get("name", ""), err) from None


def _invalid(resource: Resource, name: str, err: ManifestError) -> APIError:
    """apierrors.NewInvalid's message, ``<Kind>.<group> "<name>" is invalid: <field>: <detail>``, from a parser's
    error (``<Kind> <object>: <field>: <detail>``)."""
    detail = str(err).partition(": ")[2] or str(err)
    return APIError(422, "Invalid", f'{resource.kind}.{resource.group} "{name}" is invalid: {detail}')
