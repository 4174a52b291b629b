"""Services and EndpointSlices (core/v1, discovery.k8s.io/v1) read from manifests, as kube-proxy sees them.

Each object is checked as the apiserver's validation checks it (pkg/apis/core/validation, pkg/apis/discovery/
validation) where kube-proxy depends on the field; errors name the object and the field, e.g.
``Service default/web: spec.ports[0].port: must be 1-65535, got 70000``.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache

from kbench.api.core import PROTOCOLS, ManifestError, as_list, as_map

SERVICE_TYPES = ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName")
POLICIES = ("Cluster", "Local")
DEFAULT_AFFINITY_TIMEOUT = 10800
"""core/v1 DefaultClientIPServiceAffinitySeconds (3 hours)."""
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
SERVICE_NODE_PORT_RANGE = (30000, 32767)
"""kube-apiserver ``--service-node-port-range`` default (pkg/kubeapiserver/options: DefaultServiceNodePortRange)."""
ADDRESS_TYPES = ("IPv4", "IPv6", "FQDN")
"""discovery validation supportedAddressTypes."""
MAX_ADDRESSES = 100
"""discovery validation maxAddresses (per endpoint)."""
_FQDN = re.compile(r"(?=.{1,253}$)[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)+")
"""apimachinery IsFullyQualifiedDomainName: a lower-case DNS-1123 subdomain of at least two labels."""
_LINK_LOCAL_MULTICAST_V4 = ipaddress.ip_network("224.0.0.0/24")


def allocates_node_ports(spec: Mapping) -> bool:
    """The apiserver allocates NodePorts to a Service of this spec: NodePort Services, and LoadBalancer ones
    unless ``allocateLoadBalancerNodePorts`` is false (pkg/registry/core/service/storage: needsNodePort)."""
    kind = spec.get("type") or "ClusterIP"
    return kind == "NodePort" or (kind == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts") is not False)


def parse_ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """An IP address, accepting IPv4 octets with leading zeros as decimal (k8s.io/utils/net ParseIPSloppy).

    Kubernetes API objects created before v1.20 may hold e.g. ``172.30.0.041``; kube-proxy reads it as
    172.30.0.41, so kbench does too. Addresses are immutable: each text is parsed once (every kube-proxy of a
    cluster reads every endpoint's address at each change of its Service).
    """
    return _parse_ip(str(text))


@lru_cache(maxsize=1 << 16)
def _parse_ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
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


def _address(value, where: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    try:
        address = parse_ip(value)
    except ValueError:
        raise ManifestError(f"{where}: {value!r} is not a valid IP address") from None
    return getattr(address, "ipv4_mapped", None) or address  # Go's To4(): ::ffff:a.b.c.d is IPv4


def _ip(value, where: str) -> str:
    return str(_address(value, where))


def _special(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    """core validation ValidateNonSpecialIP: why an endpoint address is refused, or ""."""
    if address.is_unspecified:
        return f"may not be unspecified ({address})"
    if address.is_loopback:
        return "may not be in the loopback range (127.0.0.0/8, ::1/128)"
    if address.is_link_local:
        return "may not be in the link-local range (169.254.0.0/16, fe80::/10)"
    if (
        address in _LINK_LOCAL_MULTICAST_V4
        if address.version == 4
        else address.packed[0] == 0xFF and address.packed[1] & 0x0F == 0x02
    ):  # Go's IsLinkLocalMulticast
        return "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)"
    return ""


def _endpoint_address(value, address_type: str, where: str) -> str:
    """discovery validation validateEndpoints: an address of the slice's addressType and not a special IP."""
    if address_type == "FQDN":
        name = value[:-1] if isinstance(value, str) and value.endswith(".") else value
        if not isinstance(name, str) or not _FQDN.fullmatch(name):
            raise ManifestError(
                f"{where}: {value!r} must be a fully qualified domain name (lower case, at least "
                "two labels, e.g. db.example.com) for addressType FQDN"
            )
        return name
    address = _address(value, where)
    if f"IPv{address.version}" != address_type:
        raise ManifestError(f"{where}: {value!r} must be a valid {address_type} address (the slice's addressType)")
    special = _special(address)
    if special:
        raise ManifestError(f"{where}: {value!r} {special}")
    return str(address)


def _condition(value, where: str) -> bool | None:
    """An EndpointConditions field (``*bool``): true, false or unset; a string does not decode."""
    if value is None or isinstance(value, bool):
        return value
    raise ManifestError(f"{where}: must be true, false or null (a boolean); got {value!r}")


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
    m = as_map(manifest, kind)
    meta = as_map(m.get("metadata"), f"{kind}: metadata")
    name, namespace = meta.get("name"), meta.get("namespace") or "default"
    if not isinstance(name, str) or not name:
        raise ManifestError(f"{kind}: metadata.name: required (a non-empty string)")
    return m, namespace, name, f"{kind} {namespace}/{name}"


@dataclass(frozen=True)
class ServicePort:
    """A Service port (core/v1 ServicePort); ``target_port`` is a number or a container port's name."""

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
        """namespace/name."""
        return f"{self.namespace}/{self.name}"

    @property
    def headless(self) -> bool:
        """``clusterIP: None`` (or ``clusterIPs: [None]``, which the apiserver defaults ``clusterIP`` from): no
        virtual IP, nothing for kube-proxy to program."""
        spec = self.manifest.get("spec") or {}
        return (spec.get("clusterIP") or (spec.get("clusterIPs") or [None])[0]) == "None"

    @property
    def allocates_node_ports(self) -> bool:
        """The apiserver allocates NodePorts for this Service (:func:`allocates_node_ports`)."""
        return allocates_node_ports(self.manifest.get("spec") or {})

    @classmethod
    def from_manifest(cls, manifest: Mapping) -> Service:
        """Parse and validate a core/v1 Service manifest."""
        m, namespace, name, where = _identity(manifest, "Service")
        spec, status = as_map(m.get("spec"), f"{where}: spec"), as_map(m.get("status"), f"{where}: status")
        kind = spec.get("type") or "ClusterIP"
        if kind not in SERVICE_TYPES:
            raise ManifestError(f"{where}: spec.type: must be one of {', '.join(SERVICE_TYPES)}; got {kind!r}")
        ips = list(spec.get("clusterIPs") or ([spec["clusterIP"]] if spec.get("clusterIP") else []))
        cluster_ips = tuple(_ip(ip, f"{where}: spec.clusterIPs[{i}]") for i, ip in enumerate(ips) if ip != "None")
        ports = _service_ports(spec, where)
        affinity = spec.get("sessionAffinity") or "None"
        if affinity not in ("None", "ClientIP"):
            raise ManifestError(f"{where}: spec.sessionAffinity: must be None or ClientIP; got {affinity!r}")
        timeout = ((spec.get("sessionAffinityConfig") or {}).get("clientIP") or {}).get(
            "timeoutSeconds"
        ) or DEFAULT_AFFINITY_TIMEOUT
        policies = _traffic_policies(spec, where)
        ingress = as_list((status.get("loadBalancer") or {}).get("ingress"), f"{where}: status.loadBalancer.ingress")
        return cls(
            namespace=namespace,
            name=name,
            type=kind,
            cluster_ips=cluster_ips,
            ports=ports,
            external_ips=tuple(
                _ip(ip, f"{where}: spec.externalIPs[{i}]")
                for i, ip in enumerate(as_list(spec.get("externalIPs"), f"{where}: spec.externalIPs"))
            ),
            load_balancer_ips=tuple(
                _ip(g["ip"], f"{where}: status.loadBalancer.ingress[{i}].ip")
                for i, g in enumerate(ingress)
                if g.get("ip")
            ),
            session_affinity=affinity == "ClientIP",
            affinity_timeout=int(timeout),
            external_policy=policies["externalTrafficPolicy"],
            internal_policy=policies["internalTrafficPolicy"],
            source_ranges=tuple(
                _cidr(r, f"{where}: spec.loadBalancerSourceRanges[{i}]")
                for i, r in enumerate(
                    as_list(spec.get("loadBalancerSourceRanges"), f"{where}: spec.loadBalancerSourceRanges")
                )
            ),
            health_check_node_port=_port(
                spec.get("healthCheckNodePort", 0) or 0, f"{where}: spec.healthCheckNodePort", allow_zero=True
            ),
            manifest=m,
        )


def _service_ports(spec: Mapping, where: str) -> tuple[ServicePort, ...]:
    """A Service's spec.ports, validated; a (name, protocol) pair may appear once."""
    ports, seen = [], set()
    for i, p in enumerate(as_list(spec.get("ports"), f"{where}: spec.ports")):
        p = as_map(p, f"{where}: spec.ports[{i}]")
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
    return tuple(ports)


def _traffic_policies(spec: Mapping, where: str) -> dict[str, str]:
    """spec.externalTrafficPolicy and spec.internalTrafficPolicy, each Cluster (the default) or Local."""
    policies = {}
    for key in ("externalTrafficPolicy", "internalTrafficPolicy"):
        value = spec.get(key) or "Cluster"
        if value not in POLICIES:
            raise ManifestError(f"{where}: spec.{key}: must be Cluster or Local; got {value!r}")
        policies[key] = value
    return policies


@dataclass(frozen=True)
class Endpoint:
    """One endpoint of a slice as kube-proxy reads it: its first address, conditions, node and zone."""

    address: str
    ready: bool
    serving: bool
    terminating: bool
    node_name: str = ""
    zone: str = ""


@dataclass(eq=False)
class EndpointSlice:
    """An EndpointSlice (discovery.k8s.io/v1) and the Service it belongs to (``service``, "" without one)."""

    namespace: str
    name: str
    service: str
    address_type: str
    endpoints: tuple[Endpoint, ...]
    ports: tuple[tuple[str, int, str], ...]
    """(name, port, protocol)."""
    manifest: Mapping = field(default_factory=dict, repr=False)

    @property
    def key(self) -> str:
        """namespace/name of the slice."""
        return f"{self.namespace}/{self.name}"

    @property
    def service_key(self) -> str:
        """namespace/name of the Service the slice belongs to."""
        return f"{self.namespace}/{self.service}"

    @classmethod
    def from_manifest(cls, manifest: Mapping) -> EndpointSlice:
        """Parse and validate a discovery.k8s.io/v1 EndpointSlice; ``service`` is "" without the
        ``kubernetes.io/service-name`` label (the apiserver allows that; kube-proxy ignores such a slice)."""
        m, namespace, name, where = _identity(manifest, "EndpointSlice")
        service = str((as_map(m.get("metadata"), where).get("labels") or {}).get(SERVICE_NAME_LABEL) or "")
        address_type = m.get("addressType")
        if address_type not in ADDRESS_TYPES:
            raise ManifestError(
                f"{where}: addressType: must be one of {', '.join(ADDRESS_TYPES)}; got {address_type!r}"
            )
        endpoints = []
        for i, e in enumerate(as_list(m.get("endpoints"), f"{where}: endpoints")):
            e = as_map(e, f"{where}: endpoints[{i}]")
            cond = as_map(e.get("conditions"), f"{where}: endpoints[{i}].conditions")
            ready, serving, terminating = (
                _condition(cond.get(k), f"{where}: endpoints[{i}].conditions.{k}")
                for k in ("ready", "serving", "terminating")
            )
            addresses = as_list(e.get("addresses"), f"{where}: endpoints[{i}].addresses")
            if not 1 <= len(addresses) <= MAX_ADDRESSES:
                raise ManifestError(
                    f"{where}: endpoints[{i}].addresses: must hold 1 to {MAX_ADDRESSES} addresses; got {len(addresses)}"
                )
            addresses = [
                _endpoint_address(a, address_type, f"{where}: endpoints[{i}].addresses[{j}]")
                for j, a in enumerate(addresses)
            ]
            # endpointslicecache.go: the first address; unset ready and serving read as true, terminating as false
            endpoints.append(
                Endpoint(
                    addresses[0],
                    ready is not False,
                    serving is not False,
                    terminating is True,
                    str(e.get("nodeName") or ""),
                    str(e.get("zone") or ""),
                )
            )
        ports = []
        for i, p in enumerate(as_list(m.get("ports"), f"{where}: ports")):
            p = as_map(p, f"{where}: ports[{i}]")
            ports.append(
                (
                    str(p.get("name") or ""),
                    _port(p.get("port"), f"{where}: ports[{i}].port"),
                    _protocol(p.get("protocol"), f"{where}: ports[{i}].protocol"),
                )
            )
        return cls(namespace, name, service, address_type, tuple(endpoints), tuple(ports), m)
