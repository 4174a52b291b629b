"""Services and EndpointSlices (core/v1, discovery.k8s.io/v1) read from manifests, as kube-proxy sees them.

Errors name the object and the field, e.g.
``Service default/web: spec.ports[0].port: must be 1-65535, got 70000``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field

from kbench.api.core import ManifestError, _list, _map

SERVICE_TYPES = ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName")
POLICIES = ("Cluster", "Local")
PROTOCOLS = ("TCP", "UDP", "SCTP")
DEFAULT_AFFINITY_TIMEOUT = 10800
"""core/v1 DefaultClientIPServiceAffinitySeconds (3 hours)."""
SERVICE_NAME_LABEL = "kubernetes.io/service-name"


def parse_ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """An IP address, accepting IPv4 octets with leading zeros as decimal (k8s.io/utils/net ParseIPSloppy).

    Kubernetes API objects created before v1.20 may hold e.g. ``172.30.0.041``; kube-proxy reads it as
    172.30.0.41, so kbench does too.
    """
    text = str(text)
    if "." in text and ":" not in text:
        parts = text.split(".")
        if len(parts) == 4 and all(p.isdigit() and len(p) <= 3 for p in parts):
            text = ".".join(str(int(p)) for p in parts)
    return ipaddress.ip_address(text)


def parse_cidr(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """A CIDR (surrounding blanks trimmed, host bits cleared), sloppy about IPv4 leading zeros like ParseCIDRSloppy."""
    address, _, bits = str(text).strip().partition("/")
    if not bits.isdigit():
        raise ValueError(f"{text!r} is not a CIDR")
    return ipaddress.ip_network(f"{parse_ip(address)}/{int(bits)}", strict=False)


def _ip(value, where: str) -> str:
    try:
        return str(parse_ip(value))
    except ValueError:
        raise ManifestError(f"{where}: {value!r} is not a valid IP address") from None


def _cidr(value, where: str) -> str:
    try:
        return str(parse_cidr(value))
    except ValueError:
        raise ManifestError(f"{where}: {value!r} is not a valid CIDR") from None


def _port(value, where: str, allow_zero: bool = False) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not (0 if allow_zero else 1) <= value <= 65535:
        raise ManifestError(f"{where}: must be {'0-' if allow_zero else '1-'}65535, got {value!r}")
    return value


def _protocol(value, where: str) -> str:
    value = value or "TCP"
    if value not in PROTOCOLS:
        raise ManifestError(f"{where}: must be one of {', '.join(PROTOCOLS)}; got {value!r}")
    return value


def _identity(manifest, kind: str) -> tuple[Mapping, str, str, str]:
    """(manifest, namespace, name, "Kind ns/name") of a namespaced object; the name is required."""
    m = _map(manifest, kind)
    meta = _map(m.get("metadata"), f"{kind}: metadata")
    name, namespace = meta.get("name"), meta.get("namespace") or "default"
    if not isinstance(name, str) or not name:
        raise ManifestError(f"{kind}: metadata.name: required (a non-empty string)")
    return m, namespace, name, f"{kind} {namespace}/{name}"


@dataclass(frozen=True)
class ServicePort:
    name: str
    protocol: str
    port: int
    target_port: int | str
    node_port: int


@dataclass(eq=False)
class Service:
    """A Service's spec and load-balancer status."""

    namespace: str
    name: str
    type: str
    cluster_ips: tuple[str, ...]
    ports: tuple[ServicePort, ...]
    external_ips: tuple[str, ...] = ()
    load_balancer_ips: tuple[str, ...] = ()
    session_affinity: bool = False
    affinity_timeout: int = DEFAULT_AFFINITY_TIMEOUT
    external_policy: str = "Cluster"
    internal_policy: str = "Cluster"
    source_ranges: tuple[str, ...] = ()
    health_check_node_port: int = 0
    manifest: Mapping = field(default_factory=dict, repr=False)

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @classmethod
    def from_manifest(cls, manifest: Mapping) -> Service:
        m, namespace, name, where = _identity(manifest, "Service")
        spec, status = _map(m.get("spec"), f"{where}: spec"), _map(m.get("status"), f"{where}: status")
        kind = spec.get("type") or "ClusterIP"
        if kind not in SERVICE_TYPES:
            raise ManifestError(f"{where}: spec.type: must be one of {', '.join(SERVICE_TYPES)}; got {kind!r}")
        ips = list(spec.get("clusterIPs") or ([spec["clusterIP"]] if spec.get("clusterIP") else []))
        cluster_ips = tuple(_ip(ip, f"{where}: spec.clusterIPs[{i}]") for i, ip in enumerate(ips) if ip != "None")
        ports, seen = [], set()
        for i, p in enumerate(_list(spec.get("ports"), f"{where}: spec.ports")):
            p = _map(p, f"{where}: spec.ports[{i}]")
            pw = f"{where}: spec.ports[{i}]"
            port = _port(p.get("port"), f"{pw}.port")
            protocol = _protocol(p.get("protocol"), f"{pw}.protocol")
            target = p.get("targetPort", port)
            if isinstance(target, int):
                _port(target, f"{pw}.targetPort")
            node_port = _port(p.get("nodePort", 0) or 0, f"{pw}.nodePort", allow_zero=True)
            pname = str(p.get("name") or "")
            if (pname, protocol) in seen:
                raise ManifestError(f"{pw}.name: duplicate port name {pname!r}")
            seen.add((pname, protocol))
            ports.append(ServicePort(pname, protocol, port, target, node_port))
        affinity = spec.get("sessionAffinity") or "None"
        if affinity not in ("None", "ClientIP"):
            raise ManifestError(f"{where}: spec.sessionAffinity: must be None or ClientIP; got {affinity!r}")
        timeout = (((spec.get("sessionAffinityConfig") or {}).get("clientIP") or {}).get("timeoutSeconds")
                   or DEFAULT_AFFINITY_TIMEOUT)
        policies = {}
        for key in ("externalTrafficPolicy", "internalTrafficPolicy"):
            value = spec.get(key) or "Cluster"
            if value not in POLICIES:
                raise ManifestError(f"{where}: spec.{key}: must be Cluster or Local; got {value!r}")
            policies[key] = value
        ingress = _list((status.get("loadBalancer") or {}).get("ingress"), f"{where}: status.loadBalancer.ingress")
        return cls(
            namespace=namespace, name=name, type=kind, cluster_ips=cluster_ips, ports=tuple(ports),
            external_ips=tuple(_ip(ip, f"{where}: spec.externalIPs[{i}]")
                               for i, ip in enumerate(_list(spec.get("externalIPs"), f"{where}: spec.externalIPs"))),
            load_balancer_ips=tuple(_ip(g["ip"], f"{where}: status.loadBalancer.ingress[{i}].ip")
                                    for i, g in enumerate(ingress) if g.get("ip")),
            session_affinity=affinity == "ClientIP", affinity_timeout=int(timeout),
            external_policy=policies["externalTrafficPolicy"], internal_policy=policies["internalTrafficPolicy"],
            source_ranges=tuple(_cidr(r, f"{where}: spec.loadBalancerSourceRanges[{i}]") for i, r in enumerate(
                _list(spec.get("loadBalancerSourceRanges"), f"{where}: spec.loadBalancerSourceRanges"))),
            health_check_node_port=_port(spec.get("healthCheckNodePort", 0) or 0,
                                         f"{where}: spec.healthCheckNodePort", allow_zero=True),
            manifest=m)


@dataclass(frozen=True)
class Endpoint:
    address: str
    ready: bool
    serving: bool
    terminating: bool
    node_name: str = ""
    zone: str = ""


@dataclass(eq=False)
class EndpointSlice:
    namespace: str
    name: str
    service: str
    address_type: str
    endpoints: tuple[Endpoint, ...]
    ports: tuple[tuple[str, int, str], ...]
    """(name, port, protocol)."""
    manifest: Mapping = field(default_factory=dict, repr=False)

    @property
    def service_key(self) -> str:
        return f"{self.namespace}/{self.service}"

    @classmethod
    def from_manifest(cls, manifest: Mapping) -> EndpointSlice:
        m, namespace, name, where = _identity(manifest, "EndpointSlice")
        service = (_map(m.get("metadata"), where).get("labels") or {}).get(SERVICE_NAME_LABEL)
        if not service:
            raise ManifestError(f"{where}: metadata.labels[{SERVICE_NAME_LABEL!r}]: required (the Service it serves)")
        address_type = m.get("addressType", "IPv4")
        if address_type not in ("IPv4", "IPv6", "FQDN"):
            raise ManifestError(f"{where}: addressType: must be IPv4, IPv6 or FQDN; got {address_type!r}")
        endpoints = []
        for i, e in enumerate(_list(m.get("endpoints"), f"{where}: endpoints")):
            e = _map(e, f"{where}: endpoints[{i}]")
            cond = _map(e.get("conditions"), f"{where}: endpoints[{i}].conditions")
            ready = cond.get("ready")
            ready = True if ready is None else bool(ready)  # unknown state is interpreted as ready
            serving = cond.get("serving")
            serving = True if serving is None else bool(serving)  # as kube-proxy's endpointSliceCache reads it
            for j, address in enumerate(_list(e.get("addresses"), f"{where}: endpoints[{i}].addresses")[:1]):
                endpoints.append(Endpoint(_ip(address, f"{where}: endpoints[{i}].addresses[{j}]"), ready, serving,
                                          bool(cond.get("terminating") or False), str(e.get("nodeName") or ""),
                                          str(e.get("zone") or "")))
        ports = []
        for i, p in enumerate(_list(m.get("ports"), f"{where}: ports")):
            p = _map(p, f"{where}: ports[{i}]")
            ports.append((str(p.get("name") or ""), _port(p.get("port"), f"{where}: ports[{i}].port"),
                          _protocol(p.get("protocol"), f"{where}: ports[{i}].protocol")))
        return cls(namespace, name, service, address_type, tuple(endpoints), tuple(ports), m)
