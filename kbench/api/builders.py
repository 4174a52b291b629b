"""Small builders of Kubernetes manifests, for notebooks and tests: each returns the object as a manifest writes it
(plain dicts, the API's field names) and checks it with the parser kbench's components read it with, so a bad
argument fails here, naming the object and the field.

They play the part of upstream's test wrappers (``MakeNode().Capacity(...)``, ``MakePod().Req(...)`` in
pkg/scheduler/testing/wrappers.go), as functions with keyword arguments::

    node("node-0", cpu="4", memory="16Gi", labels={"topology.kubernetes.io/zone": "a"}, taints=["team=ml:NoSchedule"])
    pod("web-0", cpu="500m", labels={"app": "web"}, spread=[spread_constraint(ZONE_LABEL, {"app": "web"})])
    service("web", cluster_ip="10.96.0.10", selector={"app": "web"})
    endpoint_slice("web-1", "web", ["10.0.1.5", ("10.0.2.7", "node-1")])
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from kbench.api.core import TAINT_EFFECTS, ManifestError, Node, Pod
from kbench.api.network import SERVICE_NAME_LABEL, EndpointSlice, Service
from kbench.api.selectors import NODE_OPERATORS

PAUSE_IMAGE = "registry.k8s.io/pause:3.10"
"""The pause image ClusterLoader2's density pods run (the image of :data:`kbench.scenarios.steps.PAUSE_POD`)."""
HOSTNAME_LABEL = "kubernetes.io/hostname"
"""The well-known label a kubelet sets to its node's name."""
ZONE_LABEL = "topology.kubernetes.io/zone"
"""The well-known label of a node's zone (set by the cloud provider)."""
WHEN_UNSATISFIABLE = ("DoNotSchedule", "ScheduleAnyway")
"""core/v1 UnsatisfiableConstraintAction values."""


def node(
    name: str,
    *,
    cpu: str = "8",
    memory: str = "32Gi",
    pods: int = 110,
    labels: Mapping[str, str] | None = None,
    taints: Iterable[str] = (),
    images: Mapping[str, int] | None = None,
) -> dict:
    """A core/v1 Node as a kubelet registers it, with its machine and what the scheduler reads.

    Parameters
    ----------
    name : str
        ``metadata.name``; also the ``kubernetes.io/hostname`` label, with ``kubernetes.io/os: linux`` (the labels
        the kubelet sets on its Node).
    cpu, memory : str
        Quantities; ``status.capacity`` and ``status.allocatable`` (equal: nothing reserved).
    pods : int
        The pods capacity (the kubelet's maxPods, default 110).
    labels : mapping, optional
        More ``metadata.labels`` (they win over the kubelet's).
    taints : iterable of str
        ``spec.taints`` in kubectl's syntax, ``key[=value]:Effect``, e.g. ``"team=ml:PreferNoSchedule"``.
    images : mapping of str to int, optional
        ``status.images``: image name -> size in bytes (what ImageLocality scores).
    """
    capacity = {"cpu": str(cpu), "memory": str(memory), "pods": str(pods)}
    manifest = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": {HOSTNAME_LABEL: name, "kubernetes.io/os": "linux", **(labels or {})}},
        "spec": {"taints": [_taint(t, f"Node {name}: spec.taints[{i}]") for i, t in enumerate(taints)]},
        "status": {
            "capacity": capacity,
            "allocatable": dict(capacity),
            "images": [{"names": [image], "sizeBytes": size} for image, size in (images or {}).items()],
        },
    }
    Node.from_manifest(manifest)
    return manifest


def _taint(text: str, where: str) -> dict:
    """One taint from kubectl's ``key[=value]:Effect`` (kubectl taint's syntax)."""
    body, colon, effect = str(text).rpartition(":")
    key, equals, value = body.partition("=")
    if not colon or not key or effect not in TAINT_EFFECTS:
        raise ManifestError(
            f"{where}: {text!r} is not key[=value]:Effect with Effect one of {', '.join(TAINT_EFFECTS)}"
        )
    return {"key": key, "value": value, "effect": effect} if equals else {"key": key, "effect": effect}


def pod(
    name: str,
    *,
    namespace: str = "default",
    labels: Mapping[str, str] | None = None,
    cpu: str | None = None,
    memory: str | None = None,
    image: str = PAUSE_IMAGE,
    node_name: str | None = None,
    affinity: Mapping[str, Any] | None = None,
    spread: Sequence[Mapping[str, Any]] = (),
) -> dict:
    """A core/v1 Pod of one container (``app``) requesting ``cpu`` and ``memory`` (only those given).

    Parameters
    ----------
    name, namespace : str
        ``metadata.name`` and ``metadata.namespace``.
    labels : mapping, optional
        ``metadata.labels``.
    cpu, memory : str, optional
        The container's resource requests (quantities).
    image : str
        The container's image (default the pause image).
    node_name : str, optional
        ``spec.nodeName``: a pod already bound to that node.
    affinity : mapping, optional
        ``spec.affinity``, e.g. :func:`node_affinity`.
    spread : sequence of mappings
        ``spec.topologySpreadConstraints``, e.g. :func:`spread_constraint`.
    """
    requests = {k: str(v) for k, v in (("cpu", cpu), ("memory", memory)) if v is not None}
    container: dict[str, Any] = {"name": "app", "image": image}
    if requests:
        container["resources"] = {"requests": requests}
    spec: dict[str, Any] = {"containers": [container]}
    if node_name:
        spec["nodeName"] = node_name
    if affinity:
        spec["affinity"] = dict(affinity)
    if spread:
        spec["topologySpreadConstraints"] = [dict(c) for c in spread]
    metadata: dict[str, Any] = {"name": name, "namespace": namespace}
    if labels:
        metadata["labels"] = dict(labels)
    manifest = {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec}
    Pod.from_manifest(manifest)
    return manifest


def node_affinity(key: str, values: Sequence[str], *, operator: str = "In", weight: int | None = None) -> dict:
    """A pod's ``spec.affinity`` with one node-label requirement: required (the pod fits only matching nodes), or
    preferred with ``weight`` (1-100) when given."""
    if operator not in NODE_OPERATORS:
        raise ManifestError(f"node_affinity: operator: must be one of {', '.join(NODE_OPERATORS)}; got {operator!r}")
    requirement: dict[str, Any] = {"key": key, "operator": operator}
    if operator not in ("Exists", "DoesNotExist"):
        requirement["values"] = [str(v) for v in values]
    term = {"matchExpressions": [requirement]}
    if weight is None:
        return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [term]}}}
    if isinstance(weight, bool) or not isinstance(weight, int) or not 1 <= weight <= 100:
        raise ManifestError(f"node_affinity: weight: must be an integer in [1, 100]; got {weight!r}")
    preferred = [{"weight": weight, "preference": term}]
    return {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": preferred}}


def spread_constraint(
    topology_key: str, labels: Mapping[str, str], *, max_skew: int = 1, when_unsatisfiable: str = "DoNotSchedule"
) -> dict:
    """One ``spec.topologySpreadConstraints`` entry: pods matching ``labels`` spread over ``topology_key`` domains
    with at most ``max_skew`` between any two; ``when_unsatisfiable`` DoNotSchedule (a filter) or ScheduleAnyway
    (a score)."""
    if isinstance(max_skew, bool) or not isinstance(max_skew, int) or max_skew < 1:
        raise ManifestError(f"spread_constraint: max_skew: must be an integer >= 1; got {max_skew!r}")
    if when_unsatisfiable not in WHEN_UNSATISFIABLE:
        raise ManifestError(
            f"spread_constraint: when_unsatisfiable: must be one of {', '.join(WHEN_UNSATISFIABLE)}; "
            f"got {when_unsatisfiable!r}"
        )
    return {
        "maxSkew": max_skew,
        "topologyKey": topology_key,
        "whenUnsatisfiable": when_unsatisfiable,
        "labelSelector": {"matchLabels": dict(labels)},
    }


def service(
    name: str,
    *,
    namespace: str = "default",
    type: str = "ClusterIP",
    cluster_ip: str | None = None,
    selector: Mapping[str, str] | None = None,
    port: int = 80,
    target_port: int | str = 8080,
    port_name: str | None = None,
    node_port: int | None = None,
    protocol: str = "TCP",
    session_affinity: str | None = None,
) -> dict:
    """A core/v1 Service with one port (``port`` -> ``target_port``); ``cluster_ip`` and ``node_port`` as the
    apiserver would allocate them (left out: allocated when created through the apiserver); ``selector`` None: a
    Service without a selector, whose EndpointSlices are written by hand (:func:`endpoint_slice`);
    ``session_affinity`` None or ClientIP."""
    entry: dict[str, Any] = {"port": port, "targetPort": target_port, "protocol": protocol}
    if port_name:
        entry["name"] = port_name
    if node_port is not None:
        entry["nodePort"] = node_port
    spec: dict[str, Any] = {"type": type, "ports": [entry]}
    if cluster_ip:
        spec["clusterIP"] = cluster_ip
    if selector:
        spec["selector"] = dict(selector)
    if session_affinity:
        spec["sessionAffinity"] = session_affinity
    manifest = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": namespace}, "spec": spec}
    Service.from_manifest(manifest)
    return manifest


def endpoint_slice(
    name: str,
    service: str,
    endpoints: Iterable[str | tuple[str, str]],
    *,
    namespace: str = "default",
    port: int = 8080,
    port_name: str | None = None,
    protocol: str = "TCP",
    address_type: str = "IPv4",
) -> dict:
    """A discovery.k8s.io/v1 EndpointSlice of ``service`` (its ``kubernetes.io/service-name`` label) with one port.

    ``endpoints`` are addresses, or (address, node name) pairs; their conditions are left unset, which reads as
    ready and serving (what kube-proxy does with an unset condition).
    """
    entries = []
    for endpoint in endpoints:
        address, node_name = (endpoint, None) if isinstance(endpoint, str) else endpoint
        entries.append({"addresses": [address], **({"nodeName": node_name} if node_name else {})})
    entry: dict[str, Any] = {"port": port, "protocol": protocol}
    if port_name:
        entry["name"] = port_name
    manifest = {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {"name": name, "namespace": namespace, "labels": {SERVICE_NAME_LABEL: service}},
        "addressType": address_type,
        "endpoints": entries,
        "ports": [entry],
    }
    EndpointSlice.from_manifest(manifest)
    return manifest
