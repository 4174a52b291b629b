"""Pods and Nodes read from Kubernetes manifests (core/v1), validated at one entry point.

Only the fields kbench's components use are parsed; the manifest is kept as is.
Errors name the object and the field path, e.g.
``Pod default/web-0: spec.containers[0].resources.requests.cpu: 'x' is not a quantity``.
Resource amounts are integers as kube-scheduler keeps them: milli-CPU for
``cpu``, base units (bytes, counts) otherwise.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import orjson
import yaml

from kbench.api.quantity import resource_amount
from kbench.api.times import seconds

TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
TOLERATION_OPERATORS = ("Exists", "Equal")
PROTOCOLS = ("TCP", "UDP", "SCTP")
DEFAULT_MILLI_CPU_REQUEST = 100
"""Non-zero CPU request for scoring a container without one (pkg/scheduler/util: DefaultMilliCPURequest)."""
DEFAULT_MEMORY_REQUEST = 200 * 1024 * 1024
"""Non-zero memory request for scoring a container without one (pkg/scheduler/util: DefaultMemoryRequest)."""


class ManifestError(ValueError):
    """A manifest that cannot be used; the message names the object and the field."""


def as_map(value: Any, where: str) -> Mapping:
    """``value`` as a manifest field that holds an object: ``{}`` when unset; else an error naming ``where``."""
    if value is None:
        return {}
    if type(value) is not dict and not isinstance(value, Mapping):  # (a dict, the common case, skips the ABC check)
        raise ManifestError(f"{where}: expected a mapping, got {type(value).__name__}")
    return value


def as_list(value: Any, where: str) -> list:
    """``value`` as a manifest field that holds a list: ``[]`` when unset; else an error naming ``where``."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise ManifestError(f"{where}: expected a list, got {type(value).__name__}")
    return value


def _str_map(value: Any, where: str) -> dict[str, str]:
    out = {}
    for k, v in as_map(value, where).items():
        if not isinstance(k, str) or not isinstance(v, (str, int, float, bool)) or isinstance(v, bool):
            raise ManifestError(f"{where}.{k}: expected a string value, got {v!r}")
        out[k] = str(v)
    return out


def _resources(value: Any, where: str) -> dict[str, int]:
    out = {}
    for name, amount in as_map(value, where).items():
        try:
            out[str(name)] = resource_amount(str(name), amount, f"{where}.{name}")
        except ValueError as err:
            raise ManifestError(str(err)) from None
        if out[str(name)] < 0:
            raise ManifestError(f"{where}.{name}: must not be negative, got {amount!r}")
    return out


@dataclass(frozen=True, slots=True)
class Taint:
    """A node taint (core/v1 Taint): ``key=value:effect``."""

    key: str
    value: str
    effect: str


@dataclass(frozen=True, slots=True)
class Toleration:
    """A pod toleration (core/v1 Toleration); ``toleration_seconds`` bounds how long a NoExecute taint is tolerated."""

    key: str = ""
    operator: str = "Equal"
    value: str = ""
    effect: str = ""
    toleration_seconds: int | None = None

    def tolerates(self, taint: Taint) -> bool:
        """k8s.io/api/core/v1 Toleration.ToleratesTaint."""
        if self.effect and self.effect != taint.effect:
            return False
        if self.key and self.key != taint.key:
            return False
        if self.operator == "Exists":
            return True
        return self.value == taint.value  # Equal (and empty operator)


@dataclass(frozen=True, slots=True)
class ContainerPort:
    """A container port (core/v1 ContainerPort); a ``host_port`` above 0 claims that port on the node."""

    container_port: int
    host_port: int = 0
    protocol: str = "TCP"
    host_ip: str = ""


@dataclass(frozen=True, slots=True)
class Container:
    """A container (or init container) with its resource requests (milli-CPU for cpu, base units otherwise)."""

    name: str
    image: str
    requests: Mapping[str, int]
    ports: tuple[ContainerPort, ...] = ()
    restartable: bool = False
    """An init container with restartPolicy Always (a sidecar)."""


def _container(c: Any, where: str, init: bool) -> Container:
    c = as_map(c, where)
    ports = []
    for i, p in enumerate(as_list(c.get("ports"), f"{where}.ports")):
        p = as_map(p, f"{where}.ports[{i}]")
        protocol = p.get("protocol", "TCP")
        if protocol not in PROTOCOLS:
            raise ManifestError(f"{where}.ports[{i}].protocol: must be one of {', '.join(PROTOCOLS)}; got {protocol!r}")
        for key in ("containerPort", "hostPort"):
            port = p.get(key, 0)
            if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
                raise ManifestError(f"{where}.ports[{i}].{key}: must be a port number 0-65535, got {port!r}")
        ports.append(ContainerPort(p.get("containerPort", 0), p.get("hostPort", 0), protocol, p.get("hostIP", "")))
    resources = as_map(c.get("resources"), f"{where}.resources")
    return Container(
        str(c.get("name", "")),
        str(c.get("image", "")),
        _resources(resources.get("requests"), f"{where}.resources.requests"),
        tuple(ports),
        init and c.get("restartPolicy") == "Always",
    )


def _toleration(t: Any, where: str) -> Toleration:
    t = as_map(t, where)
    operator = t.get("operator", "Equal") or "Equal"
    if operator not in TOLERATION_OPERATORS:
        raise ManifestError(f"{where}.operator: must be one of {', '.join(TOLERATION_OPERATORS)}; got {operator!r}")
    effect = t.get("effect", "") or ""
    if effect and effect not in TAINT_EFFECTS:
        raise ManifestError(f"{where}.effect: must be one of {', '.join(TAINT_EFFECTS)} or empty; got {effect!r}")
    seconds = t.get("tolerationSeconds")
    return Toleration(
        str(t.get("key", "") or ""),
        operator,
        str(t.get("value", "") or ""),
        effect,
        None if seconds is None else int(seconds),
    )


PREEMPTION_POLICIES = ("PreemptLowerPriority", "Never")
"""core/v1 PreemptionPolicy values (PreemptLowerPriority is the default)."""
_SIGNATURE_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS
"""Pod.signature's encoding: keys sorted at every level (by their encoded text), so equal specs give one string."""
_CONTAINER_LISTS = ("containers", "initContainers", "ephemeralContainers")


def _signed_spec(spec: Mapping) -> dict:
    """The spec as Pod.signature encodes it: without nodeName, the volumes' names and the containers' volumeMounts."""
    out = {k: v for k, v in spec.items() if k != "nodeName"}
    volumes = out.get("volumes")
    if isinstance(volumes, list):
        out["volumes"] = [_without(v, "name") for v in volumes]
    for key in _CONTAINER_LISTS:
        containers = out.get(key)
        if isinstance(containers, list):
            out[key] = [_without(c, "volumeMounts") for c in containers]
    return out


def _without(item: Any, key: str) -> Any:
    """A mapping without ``key`` (anything else as it is)."""
    return {k: v for k, v in item.items() if k != key} if isinstance(item, Mapping) and key in item else item


def metav1_time(value: Any, where: str) -> float | None:
    """A metav1.Time (RFC 3339) as simulated seconds, or None when unset."""
    if value in (None, ""):
        return None
    try:
        return seconds(str(value))
    except (ValueError, IndexError):
        raise ManifestError(f"{where}: must be an RFC 3339 time like 2026-01-01T00:00:05Z; got {value!r}") from None


@dataclass(eq=False)
class Pod:
    """A Pod as kbench's components see it."""

    name: str
    namespace: str
    labels: dict[str, str]
    node_name: str
    priority: int
    containers: tuple[Container, ...]
    init_containers: tuple[Container, ...]
    overhead: dict[str, int]
    node_selector: dict[str, str]
    affinity: Mapping
    tolerations: tuple[Toleration, ...]
    topology_spread_constraints: tuple[Mapping, ...]
    scheduler_name: str = "default-scheduler"
    uid: str = ""
    terminating: bool = False
    """metadata.deletionTimestamp is set."""
    preemption_policy: str = "PreemptLowerPriority"
    """spec.preemptionPolicy (PreemptLowerPriority or Never; the Priority admission plugin copies the class's)."""
    start_time: float | None = None
    """status.startTime in simulated seconds (set by the kubelet when it accepts the pod), None before."""
    nominated_node_name: str = ""
    """status.nominatedNodeName: where a preemption made room for this pod."""
    manifest: Mapping = field(default_factory=dict, repr=False)

    @property
    def key(self) -> str:
        """namespace/name."""
        return f"{self.namespace}/{self.name}"

    @classmethod
    def from_manifest(cls, manifest: Mapping) -> Pod:
        """Parse and validate a core/v1 Pod manifest."""
        m = as_map(manifest, "Pod")
        meta, spec = as_map(m.get("metadata"), "Pod: metadata"), as_map(m.get("spec"), "Pod: spec")
        name = meta.get("name") or meta.get("generateName") or ""
        namespace = meta.get("namespace") or "default"
        where = f"Pod {namespace}/{name}"
        if not isinstance(name, str) or not name:
            raise ManifestError("Pod: metadata.name: required (a non-empty string)")
        containers = tuple(
            _container(c, f"{where}: spec.containers[{i}]", False)
            for i, c in enumerate(as_list(spec.get("containers"), f"{where}: spec.containers"))
        )
        inits = tuple(
            _container(c, f"{where}: spec.initContainers[{i}]", True)
            for i, c in enumerate(as_list(spec.get("initContainers"), f"{where}: spec.initContainers"))
        )
        priority = spec.get("priority", 0) or 0
        if isinstance(priority, bool) or not isinstance(priority, int):
            raise ManifestError(f"{where}: spec.priority: must be an integer, got {priority!r}")
        policy = spec.get("preemptionPolicy") or "PreemptLowerPriority"
        if policy not in PREEMPTION_POLICIES:
            allowed = ", ".join(PREEMPTION_POLICIES)
            raise ManifestError(f"{where}: spec.preemptionPolicy: must be one of {allowed}; got {policy!r}")
        status = as_map(m.get("status"), f"{where}: status")
        return cls(
            name=name,
            namespace=namespace,
            labels=_str_map(meta.get("labels"), f"{where}: metadata.labels"),
            node_name=str(spec.get("nodeName") or ""),
            priority=priority,
            containers=containers,
            init_containers=inits,
            overhead=_resources(spec.get("overhead"), f"{where}: spec.overhead"),
            node_selector=_str_map(spec.get("nodeSelector"), f"{where}: spec.nodeSelector"),
            affinity=as_map(spec.get("affinity"), f"{where}: spec.affinity"),
            tolerations=tuple(
                _toleration(t, f"{where}: spec.tolerations[{i}]")
                for i, t in enumerate(as_list(spec.get("tolerations"), f"{where}: spec.tolerations"))
            ),
            topology_spread_constraints=tuple(
                as_map(c, f"{where}: spec.topologySpreadConstraints[{i}]")
                for i, c in enumerate(
                    as_list(spec.get("topologySpreadConstraints"), f"{where}: spec.topologySpreadConstraints")
                )
            ),
            scheduler_name=str(spec.get("schedulerName") or "default-scheduler"),
            uid=str(meta.get("uid") or f"{namespace}/{name}"),
            terminating=bool(meta.get("deletionTimestamp")),
            preemption_policy=policy,
            start_time=metav1_time(status.get("startTime"), f"{where}: status.startTime"),
            nominated_node_name=str(status.get("nominatedNodeName") or ""),
            manifest=m,
        )

    def _requests(self, nonzero: bool) -> dict[str, int]:
        # k8s.io/component-helpers/resource PodRequests: containers summed; each init container
        # runs alone beside the sidecars started before it; sidecars add to the total; overhead on top.
        def requests(c: Container) -> Mapping[str, int]:
            if not nonzero:
                return c.requests
            r = dict(c.requests)
            r.setdefault("cpu", DEFAULT_MILLI_CPU_REQUEST)
            r.setdefault("memory", DEFAULT_MEMORY_REQUEST)
            return r

        total: dict[str, int] = {}
        for c in self.containers:
            for k, v in requests(c).items():
                total[k] = total.get(k, 0) + v
        sidecars: dict[str, int] = {}
        init_peak: dict[str, int] = {}
        for c in self.init_containers:
            reqs = requests(c)
            if c.restartable:
                for k, v in reqs.items():
                    total[k] = total.get(k, 0) + v
                    sidecars[k] = sidecars.get(k, 0) + v
            else:
                for k in set(reqs) | set(sidecars):
                    init_peak[k] = max(init_peak.get(k, 0), reqs.get(k, 0) + sidecars.get(k, 0))
        for k, v in init_peak.items():
            total[k] = max(total.get(k, 0), v)
        for k, v in self.overhead.items():
            total[k] = total.get(k, 0) + v
        return total

    @cached_property
    def signature(self) -> str:
        """What scheduling depends on: namespace, labels and spec without the node name, the volumes' names and
        the containers' volume mounts (pods of one template share it).

        ServiceAccount admission gives every pod its own token volume, ``kube-api-access-<random>``, mounted in each
        container by that name; no scheduling plugin reads a volume's name or a mount (upstream's volume plugins
        read the volumes' sources, which stay), so pods of one template still share a signature and a plan."""
        spec = _signed_spec(self.manifest.get("spec") or {})
        try:
            out = orjson.dumps([self.namespace, self.labels, spec], default=str, option=_SIGNATURE_OPTIONS)
        except orjson.JSONEncodeError:  # what orjson cannot encode: an integer beyond 64 bits, very deep nesting
            out = b"null"
        if b"null" in out:  # orjson writes NaN and infinities as null, as it writes None: json.dumps tells them apart
            return json.dumps([self.namespace, self.labels, spec], sort_keys=True, default=str)
        return out.decode()

    @cached_property
    def requests(self) -> dict[str, int]:
        """Effective resource requests (what NodeResourcesFit filters on)."""
        return self._requests(nonzero=False)

    @cached_property
    def nonzero_requests(self) -> dict[str, int]:
        """Requests with the non-zero defaults for containers missing cpu or memory (for scoring)."""
        return self._requests(nonzero=True)

    @property
    def inter_pod_affinity(self) -> bool:
        """It has podAffinity or podAntiAffinity terms (what other pods' placement reads)."""
        return bool(self.affinity.get("podAffinity") or self.affinity.get("podAntiAffinity"))

    @cached_property
    def host_ports(self) -> tuple[ContainerPort, ...]:
        """Ports that claim a host port: regular containers' and sidecars' (plain init containers end first)."""
        running = (*(c for c in self.init_containers if c.restartable), *self.containers)
        return tuple(p for c in running for p in c.ports if p.host_port > 0)


@dataclass(eq=False)
class Node:
    """A Node as kbench's components see it."""

    name: str
    labels: dict[str, str]
    taints: tuple[Taint, ...]
    unschedulable: bool
    allocatable: dict[str, int]
    images: tuple[tuple[tuple[str, ...], int], ...]
    manifest: Mapping = field(default_factory=dict, repr=False)

    @classmethod
    def from_manifest(cls, manifest: Mapping) -> Node:
        """Parse and validate a core/v1 Node manifest."""
        m = as_map(manifest, "Node")
        meta, spec, status = (as_map(m.get(k), f"Node: {k}") for k in ("metadata", "spec", "status"))
        name = meta.get("name")
        if not isinstance(name, str) or not name:
            raise ManifestError("Node: metadata.name: required (a non-empty string)")
        where = f"Node {name}"
        taints = []
        for i, t in enumerate(as_list(spec.get("taints"), f"{where}: spec.taints")):
            t = as_map(t, f"{where}: spec.taints[{i}]")
            if t.get("effect") not in TAINT_EFFECTS:
                raise ManifestError(
                    f"{where}: spec.taints[{i}].effect: must be one of {', '.join(TAINT_EFFECTS)}; "
                    f"got {t.get('effect')!r}"
                )
            if not t.get("key"):
                raise ManifestError(f"{where}: spec.taints[{i}].key: required")
            taints.append(Taint(str(t["key"]), str(t.get("value", "") or ""), t["effect"]))
        images = []
        for i, img in enumerate(as_list(status.get("images"), f"{where}: status.images")):
            img = as_map(img, f"{where}: status.images[{i}]")
            size = img.get("sizeBytes", 0)
            if isinstance(size, bool) or not isinstance(size, int) or size < 0:
                raise ManifestError(f"{where}: status.images[{i}].sizeBytes: must be a non-negative integer")
            images.append(
                (tuple(str(n) for n in as_list(img.get("names"), f"{where}: status.images[{i}].names")), size)
            )
        allocatable = status.get("allocatable")
        if allocatable is None:
            allocatable = status.get("capacity")
        return cls(
            name=name,
            labels=_str_map(meta.get("labels"), f"{where}: metadata.labels"),
            taints=tuple(taints),
            unschedulable=bool(spec.get("unschedulable", False)),
            allocatable=_resources(allocatable, f"{where}: status.allocatable"),
            images=tuple(images),
            manifest=m,
        )


def load_manifests(
    source: str | Iterable[Mapping], origin: str = "manifests", kinds: Collection[str] | None = None, first: int = 0
) -> list[Mapping]:
    """The Kubernetes objects of a multi-document YAML string (safe loading) or of the given mappings.

    Parameters
    ----------
    source : str or iterable of mappings
        YAML text, or objects already loaded.
    origin : str
        Names the source in errors (a file name).
    kinds : collection of str, optional
        The kinds the caller reads; another kind is an error naming it and listing these.
    first : int
        The number errors give the first document (a scenario file's manifests start at document 1).

    Returns
    -------
    list of Mapping
        Every object in order: empty documents dropped, ``kind: List`` documents (what ``kubectl get -o yaml``
        writes) replaced by their ``items``.

    Raises
    ------
    ManifestError
        Invalid YAML (with the line and column), a document that is not an object, or a kind not in ``kinds``.
    """
    if isinstance(source, str):
        try:
            docs = list(yaml.safe_load_all(source))
        except yaml.YAMLError as err:
            mark = getattr(err, "problem_mark", None)
            at = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
            reason = " ".join(str(getattr(err, "problem", None) or err).split())
            raise ManifestError(f"{origin}: {at}not valid YAML: {reason}") from None
    else:
        docs = list(source)
    out: list[Mapping] = []
    for i, doc in enumerate(docs, start=first):
        _objects(doc, f"{origin}: document {i}", kinds, out)
    return out


def _objects(doc: Any, where: str, kinds: Collection[str] | None, out: list[Mapping]) -> None:
    if doc is None:
        return
    if not isinstance(doc, Mapping):
        raise ManifestError(f"{where}: expected a Kubernetes object (a mapping), got {type(doc).__name__}")
    kind = doc.get("kind")
    if kind == "List":  # k8s.io/apimachinery metav1.List: what kubectl get -o yaml writes
        for j, item in enumerate(as_list(doc.get("items"), f"{where}: items")):
            _objects(item, f"{where}: items[{j}]", kinds, out)
        return
    if kinds is not None and kind not in kinds:
        raise ManifestError(f"{where}: kind: {kind!r} is not one of {', '.join(sorted(kinds))} (or List)")
    out.append(doc)
