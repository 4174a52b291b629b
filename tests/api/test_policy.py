"""PriorityClass and PodDisruptionBudget parsing against upstream's validation (pkg/apis/scheduling/validation,
pkg/apis/policy/validation) and its selector rules."""

from __future__ import annotations

import pytest

from kbench.api.core import ManifestError
from kbench.api.policy import (
    HIGHEST_USER_DEFINABLE_PRIORITY,
    SYSTEM_CLUSTER_CRITICAL,
    SYSTEM_NODE_CRITICAL,
    PodDisruptionBudget,
    PriorityClass,
    system_priority_class_manifests,
)


def pc(name: str = "high", value=1000) -> dict:
    return {"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": name}, "value": value}


def test_priority_class_fields_and_defaults():
    parsed = PriorityClass.from_manifest({**pc(), "globalDefault": True, "description": "batch"})
    assert (parsed.name, parsed.value, parsed.global_default) == ("high", 1000, True)
    assert (parsed.preemption_policy, parsed.description) == ("PreemptLowerPriority", "batch")
    assert PriorityClass.from_manifest({**pc(), "preemptionPolicy": "Never"}).preemption_policy == "Never"
    assert PriorityClass.from_manifest(pc(value=HIGHEST_USER_DEFINABLE_PRIORITY)).value == 1_000_000_000
    assert PriorityClass.from_manifest(pc(value=-5)).value == -5


def test_system_classes_are_upstreams_and_valid():
    classes = {m["metadata"]["name"]: PriorityClass.from_manifest(m) for m in system_priority_class_manifests()}
    assert {k: v.value for k, v in classes.items()} == {
        SYSTEM_NODE_CRITICAL: 2_000_001_000,
        SYSTEM_CLUSTER_CRITICAL: 2_000_000_000,
    }
    assert not any(c.global_default for c in classes.values())


@pytest.mark.parametrize(
    ("manifest", "message"),
    [
        (pc(value=HIGHEST_USER_DEFINABLE_PRIORITY + 1), "value: Forbidden: maximum allowed value of a user defined "),
        (pc("system-mine"), "metadata.name: Forbidden: priority class names with 'system-' prefix are reserved for "),
        (pc("system-mine"), "error: system-mine is not a known system priority class"),
        (pc(SYSTEM_NODE_CRITICAL, 5), "error: value of system-node-critical PriorityClass must be 2000001000"),
        (
            {**pc(SYSTEM_CLUSTER_CRITICAL, 2_000_000_000), "globalDefault": True},
            "globalDefault of system-cluster-critical PriorityClass must be false",
        ),
        ({**pc(), "preemptionPolicy": "Always"}, 'supported values: "PreemptLowerPriority", "Never"'),
        ({"metadata": {"name": "x"}}, "PriorityClass x: value: Required value"),
        (pc(value="10"), "value: must be an integer; got '10'"),
        (pc(value=True), "value: must be an integer"),
        (pc(value=2**31), "value: Invalid value: 2147483648: must be within"),
        ({**pc(), "globalDefault": "yes"}, "globalDefault: must be true or false"),
        ({"value": 1}, "PriorityClass: metadata.name: required"),
    ],
)
def test_priority_class_errors_name_the_field(manifest, message):
    with pytest.raises(ManifestError, match=message.replace("(", r"\(")):
        PriorityClass.from_manifest(manifest)


def test_priority_class_update_keeps_value_and_policy():
    old = PriorityClass.from_manifest(pc())
    PriorityClass.from_manifest({**pc(), "description": "changed", "globalDefault": True}).check_update(old)
    with pytest.raises(ManifestError, match="value: Forbidden: may not be changed in an update."):
        PriorityClass.from_manifest(pc(value=1)).check_update(old)
    with pytest.raises(ManifestError, match="preemptionPolicy: Invalid value: 'Never': field is immutable"):
        PriorityClass.from_manifest({**pc(), "preemptionPolicy": "Never"}).check_update(old)


def pdb(spec: dict, status: dict | None = None, namespace: str = "team") -> dict:
    body = {"metadata": {"name": "guard", "namespace": namespace, "generation": 3}, "spec": spec}
    if status is not None:
        body["status"] = status
    return body


SELECT = {"matchLabels": {"app": "web"}}


def test_pdb_fields_and_status():
    status = {
        "disruptionsAllowed": 1,
        "currentHealthy": 3,
        "desiredHealthy": 2,
        "expectedPods": 3,
        "observedGeneration": 3,
        "disruptedPods": {"web-0": "2026-01-01T00:01:00Z"},
    }
    parsed = PodDisruptionBudget.from_manifest(pdb({"minAvailable": "50%", "selector": SELECT}, status))
    assert (parsed.name, parsed.namespace, parsed.key, parsed.generation) == ("guard", "team", "team/guard", 3)
    assert (parsed.min_available, parsed.max_unavailable, parsed.selector) == ("50%", None, SELECT)
    assert (parsed.disruptions_allowed, parsed.current_healthy, parsed.desired_healthy) == (1, 3, 2)
    assert (parsed.expected_pods, parsed.observed_generation) == (3, 3)
    assert dict(parsed.disrupted_pods) == {"web-0": 60.0} and "web-0" in parsed.disrupted_pods
    assert PodDisruptionBudget.from_manifest(pdb({"maxUnavailable": 0})).max_unavailable == 0
    unset = PodDisruptionBudget.from_manifest({"metadata": {"name": "bare"}})
    assert (unset.namespace, unset.min_available, unset.max_unavailable, unset.selector) == (
        "default",
        None,
        None,
        None,
    )


@pytest.mark.parametrize(
    ("spec", "status", "message"),
    [
        ({"minAvailable": 1, "maxUnavailable": 1}, None, "spec: Invalid value: minAvailable and maxUnavailable cannot"),
        ({"minAvailable": -1}, None, "spec.minAvailable: Invalid value: -1: must be greater than or equal to 0"),
        ({"maxUnavailable": "101%"}, None, "spec.maxUnavailable: Invalid value: '101%': must not be greater than 100%"),
        ({"minAvailable": "half"}, None, r"must be an integer or percentage \(e.g '5%'\)"),
        ({"minAvailable": "-5%"}, None, "spec.minAvailable: Invalid value: '-5%': must be an integer or percentage"),
        ({"minAvailable": 1.5}, None, "spec.minAvailable: must be an integer; got 1.5"),
        ({"selector": {"matchExpressions": [{"key": "a", "operator": "Near"}]}}, None, r"operator: must be one of In"),
        ({"selector": {"matchLabels": {"app": "no spaces"}}}, None, "spec.selector: Invalid value: 'no spaces'"),
        ({"unhealthyPodEvictionPolicy": "Never"}, None, 'supported values: "IfHealthyBudget", "AlwaysAllow"'),
        ({}, {"currentHealthy": -1}, "status.currentHealthy: Invalid value: -1: must be greater than or equal to 0"),
        ({}, {"disruptedPods": {"web-0": "yesterday"}}, "status.disruptedPods.web-0: must be an RFC 3339 time"),
    ],
)
def test_pdb_errors_name_the_field(spec, status, message):
    with pytest.raises(ManifestError, match=message):
        PodDisruptionBudget.from_manifest(pdb(spec, status))


def test_the_controller_counts_an_empty_selector_as_every_pod_of_the_namespace():
    """policy/v1: an empty selector matches all pods of the namespace, an unset one none (getPodsForPdb and the
    lister's GetPodPodDisruptionBudgets)."""
    empty = PodDisruptionBudget.from_manifest(pdb({"selector": {}}))
    assert empty.covers("team", {"app": "web"}) and empty.covers("team", {})
    assert not empty.covers("other", {"app": "web"})
    assert not PodDisruptionBudget.from_manifest(pdb({})).covers("team", {"app": "web"})


def test_preemption_selects_only_labelled_pods_with_a_non_empty_selector():
    """filterPodsWithPDBViolation: a pod without labels matches no PDB; a nil or empty selector matches nothing."""
    web = PodDisruptionBudget.from_manifest(pdb({"selector": SELECT}))
    assert web.selects("team", {"app": "web", "tier": "x"})
    assert not web.selects("team", {"app": "api"}) and not web.selects("other", {"app": "web"})
    assert not PodDisruptionBudget.from_manifest(pdb({"selector": {}})).selects("team", {"app": "web"})
    assert not PodDisruptionBudget.from_manifest(pdb({})).selects("team", {"app": "web"})
    absent = {"matchExpressions": [{"key": "critical", "operator": "DoesNotExist"}]}
    budget = PodDisruptionBudget.from_manifest(pdb({"selector": absent}))
    assert budget.selects("team", {"app": "web"}) and not budget.selects("team", {})
    assert budget.covers("team", {})  # the controller still counts the unlabelled pod
