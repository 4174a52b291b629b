"""What every kube-proxy mode starts from: the proxier's arguments and the node's view of Service ports.

Follows upstream kube-proxy (kubernetes v1.35): ``pkg/proxy/serviceport.go`` (BaseServicePortInfo:
``UsesClusterEndpoints``, ``UsesLocalEndpoints``, ``ExternallyAccessible``), ``pkg/proxy/endpointslicecache.go``
(endpoints per service port, IP family filter, conditions, sorted by ``ip:port``) and ``pkg/proxy/topology.go``
(``CategorizeEndpoints``; topology hints are not modelled, so every ready endpoint is a cluster endpoint).
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from kbench.api.core import ManifestError, as_list, as_map
from kbench.api.network import (
    SERVICE_NAME_LABEL,
    SERVICE_NODE_PORT_RANGE,
    EndpointSlice,
    Service,
    parse_cidr,
    parse_ip,
)
from kbench.proxy.config import MODES, NODE_PORT_PRIMARY, KubeProxyConfiguration

FAMILIES = ("IPv4", "IPv6")
ZERO_CIDR = {"IPv4": "0.0.0.0/0", "IPv6": "::/0"}
NFACCT_COUNTERS = ("ct_state_invalid_dropped_pkts", "localhost_nps_accepted_pkts")
"""pkg/proxy/metrics: IPTablesCTStateInvalidDroppedNFAcctCounter, LocalhostNodePortAcceptedNFAcctCounter."""
FAKE_PROXIER = KubeProxyConfiguration().replace({"clusterCIDR": "10.0.0.0/8"})
"""The configuration of upstream's test proxiers (NewFakeProxier: ``NewDetectLocalByCIDR("10.0.0.0/8")``, the
other settings at their defaults): what a :class:`ProxierConfig` runs with unless given one."""

NODE_KEYS = {
    "nodeName": "node_name",
    "nodeIPs": "node_ips",
    "ipFamily": "ip_family",
    "serviceCIDRs": "service_cidrs",
    "nfacctCounters": "nfacct_counters",
    "randomFully": "random_fully",
}
"""Golden-file / ``kbench proxy --proxier`` keys for what the node provides -> :class:`ProxierConfig` fields."""
CONFIGURATION_KEYS = {
    "masqueradeAll": ("iptables.masqueradeAll", "nftables.masqueradeAll"),
    "nodePortAddresses": ("nodePortAddresses",),
    "localhostNodePorts": ("iptables.localhostNodePorts",),
    "masqueradeMark": ("iptables.masqueradeBit", "nftables.masqueradeBit"),
    "conntrackTCPLiberal": ("conntrack.tcpBeLiberal",),
    "ipvsScheduler": ("ipvs.scheduler",),
    "localDetector": ("clusterCIDR",),
}
"""Keys for NewProxier's arguments -> the KubeProxyConfiguration fields that give them in every mode."""


def family_of(ip) -> str:
    """``IPv4`` or ``IPv6``: the family of an address."""
    return "IPv6" if parse_ip(ip).version == 6 else "IPv4"


@dataclass(frozen=True)
class ProxierConfig:
    """What one node's proxier is built with (upstream's ``NewProxier`` arguments): the node's
    :class:`~kbench.proxy.config.KubeProxyConfiguration` and what the node and its kernel provide.

    The operator's settings are read from ``configuration`` (the properties below), as the running mode's
    section gives them; only the node's facts are held here: its name and IPs, the proxier's IP family, the
    ServiceCIDRs, the nfacct counters and ``--random-fully`` support the kernel offers.
    """

    node_name: str = "node-0"
    node_ips: tuple[str, ...] = ("192.168.0.2",)
    ip_family: str = "IPv4"
    service_cidrs: tuple[str, ...] = ()
    nfacct_counters: tuple[str, ...] = NFACCT_COUNTERS
    random_fully: bool = True
    configuration: KubeProxyConfiguration = FAKE_PROXIER

    @classmethod
    def from_dict(cls, spec: Mapping | None) -> ProxierConfig:
        """Read the camelCase keys of the golden files / ``kbench proxy --proxier`` YAML: the node's facts
        (:data:`NODE_KEYS`) and NewProxier's settings (:data:`CONFIGURATION_KEYS`, e.g.
        ``localDetector: {clusterCIDR: ...}``; a missing ``localDetector`` keeps NewFakeProxier's)."""
        spec = as_map(spec, "proxier")
        node: dict[str, object] = {}
        settings: dict[str, object] = {}
        for key, value in spec.items():
            if key in NODE_KEYS:
                node[NODE_KEYS[key]] = tuple(value) if isinstance(value, list) else value
            elif key in CONFIGURATION_KEYS:
                for path in CONFIGURATION_KEYS[key]:
                    settings[path] = _setting(key, value)
            else:
                allowed = ", ".join([*NODE_KEYS, *CONFIGURATION_KEYS])
                raise ManifestError(f"proxier.{key}: unknown setting; allowed: {allowed}")
        return cls(**node, configuration=FAKE_PROXIER.replace(settings, "proxier"))  # type: ignore[arg-type]

    def __post_init__(self) -> None:
        if self.ip_family not in FAMILIES:
            raise ManifestError(f"proxier.ipFamily: must be IPv4 or IPv6; got {self.ip_family!r}")
        if not self.node_ips:
            raise ManifestError("proxier.nodeIPs: at least one node IP is required")
        for i, ip in enumerate(self.node_ips):
            try:
                parse_ip(ip)
            except ValueError:
                raise ManifestError(f"proxier.nodeIPs[{i}]: {ip!r} is not a valid IP address") from None
        for i, cidr in enumerate(self.service_cidrs):
            try:
                parse_cidr(cidr)
            except ValueError:
                raise ManifestError(f"proxier.serviceCIDRs[{i}]: {cidr!r} is not a valid CIDR") from None

    def for_mode(self, mode: str) -> ProxierConfig:
        """This node's proxier running in ``mode`` (its configuration's ``mode`` set to it)."""
        if mode not in MODES:
            raise ValueError(f"mode: must be one of {', '.join(MODES)}; got {mode!r}")
        configuration = self.configuration.for_mode(mode)
        return self if configuration is self.configuration else replace(self, configuration=configuration)

    # -- the operator's settings, as the running mode reads them -------------------------------------------
    @property
    def mode(self) -> str:
        """The proxy mode (the configuration's, blank meaning iptables)."""
        return self.configuration.proxy_mode

    @property
    def masquerade_all(self) -> bool:
        """Masquerade all ClusterIP traffic (the running mode's ``masqueradeAll``)."""
        return self.configuration.masquerade_all

    @property
    def masquerade_mark(self) -> str:
        """The masquerade fwmark (``1 << masqueradeBit``, as ``0x4000``)."""
        return self.configuration.masquerade_mark

    @property
    def localhost_node_ports(self) -> bool:
        """``iptables.localhostNodePorts``."""
        return self.configuration.localhost_node_ports

    @property
    def node_port_addresses(self) -> tuple[str, ...] | None:
        """``nodePortAddresses`` (``None``: the mode's default)."""
        return self.configuration.node_port_addresses

    @property
    def conntrack_tcp_liberal(self) -> bool:
        """``conntrack.tcpBeLiberal``."""
        return self.configuration.conntrack_tcp_be_liberal

    @property
    def ipvs_scheduler(self) -> str:
        """The IPVS scheduler (``ipvs.scheduler``, blank meaning rr)."""
        return self.configuration.scheduler

    # -- derived, per IP family ------------------------------------------------------------------------------
    @property
    def ipv6(self) -> bool:
        """Whether the proxier is the IPv6 one."""
        return self.ip_family == "IPv6"

    def own(self, values: Iterable[str]) -> list[str]:
        """The values (IPs or CIDRs) of the proxier's IP family, in order."""
        return [v for v in values if family_of(str(v).split("/")[0].strip()) == self.ip_family]

    @property
    def node_ip(self) -> str:
        """The proxier's primary node IP (the first of its family)."""
        own = self.own(self.node_ips)
        return own[0] if own else ZERO_CIDR[self.ip_family].split("/")[0]

    @property
    def local_cidr(self) -> str | None:
        """The pod CIDR of the local-traffic detector (``clusterCIDR``) of this family, if any."""
        own = self.own(self.configuration.cluster_cidrs)
        return own[0] if own else None

    def local_addresses(self) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
        """Addresses the node owns (``addrtype LOCAL`` / ``fib type local``): its IPs and loopback."""
        return [parse_ip(ip) for ip in self.node_ips] + [ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")]

    @functools.lru_cache(maxsize=256)  # noqa: B019 (configs are few, frozen and long-lived; compiles call this often)
    def node_port_cidrs(self, mode: str) -> tuple[str, ...] | None:
        """``NewNodePortAddresses``: the CIDRs of this family accepting NodePorts, or ``None`` for all addresses."""
        given = self.node_port_addresses
        if (given is None and mode == "nftables") or given == (NODE_PORT_PRIMARY,):
            given = (f"{self.node_ip}/{128 if self.ipv6 else 32}",)
        cidrs = tuple(str(parse_cidr(c)) for c in self.own(given or ()))
        if not cidrs or ZERO_CIDR[self.ip_family] in cidrs:
            return None
        return cidrs

    @functools.lru_cache(maxsize=256)  # noqa: B019 (as node_port_cidrs)
    def node_port_ips(self, mode: str) -> tuple[str, ...]:
        """``GetNodeIPs``: the node's addresses inside the NodePort CIDRs (the fake host's interfaces: its IPs, lo)."""
        cidrs = self.node_port_cidrs(mode)
        addrs = [parse_ip(ip) for ip in ("127.0.0.1", "::1", *self.node_ips)]
        if cidrs is None:
            return tuple(str(a) for a in addrs if family_of(a) == self.ip_family)
        nets = [parse_cidr(c) for c in cidrs]
        return tuple(str(a) for a in addrs if any(a.version == n.version and a in n for n in nets))

    @property
    def localhost_node_ports_enabled(self) -> bool:
        """NewProxier turns localhostNodePorts off unless the NodePort addresses include 127.0.0.1 (IPv4 only)."""
        if self.ipv6 or not self.localhost_node_ports:
            return False
        cidrs = self.node_port_cidrs("iptables")
        return cidrs is None or any(ipaddress.ip_address("127.0.0.1") in parse_cidr(c) for c in cidrs)


@dataclass(frozen=True)
class EndpointInfo:
    """One endpoint of a service port as kube-proxy sees it (``proxy.Endpoint``): address, port, conditions, and
    whether it is on this node."""

    ip: str
    port: int
    ready: bool
    serving: bool
    terminating: bool
    local: bool
    zone: str = ""

    @property
    def address(self) -> str:
        """``ip:port`` as net.JoinHostPort writes it (IPv6 in brackets)."""
        return f"[{self.ip}]:{self.port}" if ":" in self.ip else f"{self.ip}:{self.port}"


@dataclass(frozen=True)
class TrafficPlan:
    """Where a service port's traffic goes: its endpoint categories and which policy chains it needs."""

    cluster: list[EndpointInfo]
    local: list[EndpointInfo]
    reachable: list[EndpointInfo]
    has_endpoints: bool
    """Usable endpoints anywhere in the cluster."""
    uses_cluster_chain: bool
    uses_local_chain: bool
    has_internal: bool
    """ClusterIP traffic has endpoints (internalTrafficPolicy Local needs local ones)."""
    has_external: bool
    """External traffic has endpoints (externalTrafficPolicy Local needs local ones)."""
    uses_external_chain: bool


@dataclass
class ServicePortInfo:
    """One Service port as kube-proxy programs it (``proxy.ServicePort``), with its endpoints."""

    namespace: str
    name: str
    port_name: str
    protocol: str
    cluster_ip: str
    port: int
    node_port: int = 0
    external_ips: tuple[str, ...] = ()
    load_balancer_ips: tuple[str, ...] = ()
    source_ranges: tuple[str, ...] = ()
    affinity_timeout: int = 0
    """Seconds of ClientIP session affinity; 0 when sessionAffinity is None."""
    external_local: bool = False
    internal_local: bool = False
    health_check_node_port: int = 0
    endpoints: list[EndpointInfo] = field(default_factory=list)

    @property
    def service_key(self) -> str:
        """``namespace/name`` of the Service."""
        return f"{self.namespace}/{self.name}"

    @property
    def name_string(self) -> str:
        """``ServicePortName.String()``: ``ns/name:port`` (no colon for an unnamed port)."""
        return f"{self.namespace}/{self.name}" + (f":{self.port_name}" if self.port_name else "")

    @property
    def proto(self) -> str:
        """The protocol in lower case, as iptables and nft write it."""
        return self.protocol.lower()

    @property
    def externally_accessible(self) -> bool:
        """``ExternallyAccessible``: a NodePort, load-balancer IPs or external IPs."""
        return bool(self.node_port or self.load_balancer_ips or self.external_ips)

    @property
    def same_on_every_node(self) -> bool:
        """Whether every node with the same configuration compiles this port alike: reached only at its ClusterIP
        (a NodePort, external IPs and load-balancer IPs are programmed by the node's own addresses) and over its
        Cluster endpoints (internalTrafficPolicy Local uses the node's own). Its endpoints' ``local`` then goes
        unread (:meth:`categorize`) and no node address is read for it: the kube-proxies of a cluster can share its
        counts (:class:`~kbench.proxy.informed.NodeProxy`; ``tests/proxy/test_shared.py`` checks the three modes)."""
        return not self.externally_accessible and not self.internal_local

    @property
    def uses_cluster_endpoints(self) -> bool:
        """``UsesClusterEndpoints``."""
        # Even with externalTrafficPolicy Local, Cluster endpoints serve the short-circuited pod/node traffic.
        return not self.internal_local or self.externally_accessible

    @property
    def uses_local_endpoints(self) -> bool:
        """``UsesLocalEndpoints``: internalTrafficPolicy Local, or externalTrafficPolicy Local when external."""
        return self.internal_local or (self.external_local and self.externally_accessible)

    def plan(self) -> TrafficPlan:
        """Which policy chains the port needs and where its traffic goes: the prologue the iptables and
        nftables proxiers' ``syncProxyRules`` share (hasEndpoints, usesClusterPolicyChain, hasInternalEndpoints,
        ...)."""
        cluster, local, reachable, has_eps = self.categorize()
        return TrafficPlan(
            cluster,
            local,
            reachable,
            has_eps,
            uses_cluster_chain=bool(cluster) and self.uses_cluster_endpoints,
            uses_local_chain=bool(local) and self.uses_local_endpoints,
            has_internal=has_eps and (bool(local) or not self.internal_local),
            has_external=has_eps and (bool(local) or not self.external_local),
            uses_external_chain=has_eps and self.externally_accessible,
        )

    def categorize(self) -> tuple[list[EndpointInfo], list[EndpointInfo], list[EndpointInfo], bool]:
        """``CategorizeEndpoints``: (cluster, local, all locally reachable, any usable endpoint anywhere)."""
        eps = self.endpoints
        cluster: list[EndpointInfo] = []
        local: list[EndpointInfo] = []
        has_any = False
        if self.uses_cluster_endpoints:
            cluster = [e for e in eps if e.ready] or [e for e in eps if e.serving and e.terminating]
            has_any = bool(cluster)
        if not self.uses_local_endpoints:
            return cluster, local, cluster, has_any
        local_ready = local_terminating = False
        for e in eps:
            if e.ready:
                has_any, local_ready = True, local_ready or e.local
            elif e.serving and e.terminating:
                has_any, local_terminating = True, local_terminating or e.local
        if local_ready:
            local = [e for e in eps if e.local and e.ready]
        elif local_terminating:
            local = [e for e in eps if e.local and e.serving and e.terminating]
        if not self.uses_cluster_endpoints:
            return cluster, local, local, has_any
        if not local_terminating or local_ready:
            return cluster, local, cluster, has_any
        merged = {e.address: e for e in cluster} | {e.address: e for e in local}
        return cluster, local, sorted(merged.values(), key=lambda e: e.address), has_any


@dataclass
class ServicePortChainNames:
    """One service port's chains in the iptables and nftables modes (their proxier.go ``servicePortInfo``:
    clusterPolicyChainName, localPolicyChainName, externalChainName, firewallChainName) and which of them each
    traffic policy uses; each mode's ``ServicePortChains`` adds its own verdicts."""

    sp: ServicePortInfo
    plan: TrafficPlan
    cluster: str
    """The Cluster traffic policy chain (KUBE-SVC-* / service-*)."""
    local: str
    """The Local traffic policy chain (KUBE-SVL-* / local-*)."""
    external: str
    """External traffic's chain (KUBE-EXT-* / external-*)."""
    firewall: str
    """loadBalancerSourceRanges' chain (KUBE-FW-* / firewall-*)."""

    @property
    def internal_policy(self) -> str:
        """The chain ClusterIP traffic goes to (internalTrafficPolicy)."""
        return self.local if self.sp.internal_local else self.cluster

    @property
    def external_policy(self) -> str:
        """The chain the external chain hands traffic to (externalTrafficPolicy)."""
        return self.local if self.sp.external_local else self.cluster

    def policy_chains(self) -> list[tuple[str, list[EndpointInfo]]]:
        """The Cluster and Local policy chains in use, in that order, each with the endpoints it spreads traffic
        over."""
        plan = self.plan
        used = ((plan.uses_cluster_chain, self.cluster, plan.cluster), (plan.uses_local_chain, self.local, plan.local))
        return [(chain, eps) for in_use, chain, eps in used if in_use]


@dataclass
class SyncWork:
    """What a sync writes (``iptables-restore`` lines, nftables objects, IPVS objects), split the way partial
    syncs need it: ``base`` every sync, ``per_service[key] = [every sync, only when the Service changed]``, changed
    only through :meth:`add`, :meth:`replace` and :meth:`remove`, which keep the totals over the Services (a sync's
    count costs its changed Services, not every Service)."""

    base: int = 0
    per_service: dict[str, list[int]] = field(default_factory=dict)
    always: int = field(init=False)
    """The Services' lines written every sync (the sum of ``per_service``'s first counts)."""
    on_change: int = field(init=False)
    """The Services' lines written when they changed (the sum of the second counts)."""

    def __post_init__(self) -> None:
        self.always = sum(a for a, _ in self.per_service.values())
        self.on_change = sum(c for _, c in self.per_service.values())

    def add(self, key: str, always: int, on_change: int) -> None:
        """Count Service ``key``'s lines: ``always`` written every sync, ``on_change`` only when it changed."""
        counts = self.per_service.setdefault(key, [0, 0])
        counts[0] += always
        counts[1] += on_change
        self.always += always
        self.on_change += on_change

    def replace(self, key: str, counts: Sequence[int]) -> None:
        """Service ``key``'s counts are now ``counts`` (every sync, when changed)."""
        self.remove(key)
        self.add(key, counts[0], counts[1])

    def remove(self, key: str) -> None:
        """Service ``key`` is gone: its lines are no longer written."""
        always, on_change = self.per_service.pop(key, (0, 0))
        self.always -= always
        self.on_change -= on_change

    def written(self, changed: Iterable[str] | None = None) -> int:
        """Lines / objects of a full sync (``changed`` None) or of a partial sync of the changed Services."""
        total = self.base + self.always
        if changed is None:
            return total + self.on_change
        return total + sum(self.per_service[k][1] for k in set(changed) if k in self.per_service)


def service_ports(
    services: Iterable[Service],
    slices: Iterable[EndpointSlice],
    config: ProxierConfig,
    ignored: list[str] | None = None,
) -> list[ServicePortInfo]:
    """The node's service ports of the proxier's IP family, sorted by name, each with its endpoints.

    What kube-proxy skips is skipped: ExternalName and headless Services, a Service with no ClusterIP of the
    proxier's family and the other family's external IPs, load-balancer IPs and source ranges
    (servicechangetracker.go, serviceport.go), EndpointSlices of another address type or with no
    ``kubernetes.io/service-name`` label (endpointschangetracker.go), and endpoints of a Service or port that
    does not exist (endpointslicecache.go). Each but the first two is described in ``ignored``, when given,
    as is a ClusterIP or NodePort left for the apiserver to allocate (manifests that never reached one).
    """

    def note(message: str) -> None:
        if ignored is not None:
            ignored.append(message)

    family = config.ip_family
    by_port: dict[tuple[str, str, str], ServicePortInfo] = {}
    known: set[str] = set()
    for svc in services:
        known.add(svc.key)
        where = f"Service {svc.key}"
        if svc.type == "ExternalName" or not svc.cluster_ips:
            if svc.type != "ExternalName" and not svc.headless:
                note(f"{where}: spec.clusterIP: not set (the apiserver would allocate one); no rules until it has one")
            continue
        cluster_ips = config.own(svc.cluster_ips)
        if not cluster_ips:
            note(
                f"{where}: spec.clusterIPs: no {family} address ({', '.join(svc.cluster_ips)}); "
                f"an {family} kube-proxy ignores the Service"
            )
            continue
        external_ips, load_balancer_ips, source_ranges = (
            _of_family(config, values, where, name, note)
            for name, values in (
                ("spec.externalIPs", svc.external_ips),
                ("status.loadBalancer.ingress", svc.load_balancer_ips),
                ("spec.loadBalancerSourceRanges", svc.source_ranges),
            )
        )
        # apiservice.ExternalPolicyLocal: only an externally accessible Service has an external policy
        external_local = svc.external_policy == "Local" and (
            svc.type in ("NodePort", "LoadBalancer") or bool(svc.external_ips)
        )
        for i, p in enumerate(svc.ports):
            if not p.node_port and svc.allocates_node_ports:
                note(
                    f"{where}: spec.ports[{i}].nodePort: not set (the apiserver would allocate one); "
                    "no NodePort rules until it has one"
                )
            by_port[(svc.key, p.name, p.protocol)] = ServicePortInfo(
                namespace=svc.namespace,
                name=svc.name,
                port_name=p.name,
                protocol=p.protocol,
                cluster_ip=cluster_ips[0],
                port=p.port,
                node_port=p.node_port if svc.type in ("NodePort", "LoadBalancer") else 0,
                external_ips=external_ips,
                load_balancer_ips=load_balancer_ips,
                source_ranges=source_ranges,
                affinity_timeout=svc.affinity_timeout if svc.session_affinity else 0,
                external_local=external_local,
                internal_local=svc.internal_policy == "Local",
                # apiservice.NeedsHealthCheck: LoadBalancer with externalTrafficPolicy Local
                health_check_node_port=svc.health_check_node_port
                if svc.type == "LoadBalancer" and external_local
                else 0,
            )
    proxied = {key[0] for key in by_port}
    seen: dict[tuple[str, str, str], dict[str, EndpointInfo]] = {}
    for sl in slices:
        where = f"EndpointSlice {sl.key}"
        if sl.address_type != family:
            note(f"{where}: addressType: an {family} kube-proxy ignores {sl.address_type} slices")
            continue
        if not sl.service:
            note(f"{where}: metadata.labels[{SERVICE_NAME_LABEL!r}]: not set; kube-proxy ignores the slice")
            continue
        if sl.service_key not in known:
            note(
                f"{where}: metadata.labels[{SERVICE_NAME_LABEL!r}]: no Service {sl.service_key}; kube-proxy "
                "programs its endpoints only once the Service exists"
            )
        for i, (pname, port, protocol) in enumerate(sl.ports):
            key = (sl.service_key, pname, protocol)
            if key not in by_port:
                if sl.service_key in proxied:
                    note(
                        f"{where}: ports[{i}]: Service {sl.service_key} has no {protocol} port named {pname!r}; "
                        "kube-proxy ignores these endpoints"
                    )
                continue
            eps = seen.setdefault(key, {})
            for e in sl.endpoints:
                info = EndpointInfo(
                    e.address, port, e.ready, e.serving, e.terminating, e.node_name == config.node_name, e.zone
                )
                eps.setdefault(info.address, info)
    for key, eps in seen.items():
        by_port[key].endpoints = sorted(eps.values(), key=lambda e: e.address)
    return sorted(by_port.values(), key=lambda sp: (sp.name_string, sp.protocol))


def _setting(key: str, value: object) -> object:
    """A NewProxier-style setting as the configuration field that gives it (``localDetector``: its CIDR,
    ``masqueradeMark``: its bit)."""
    if key == "localDetector":
        return as_map(value, "proxier.localDetector").get("clusterCIDR") or ""
    if key == "masqueradeMark":
        try:
            mark = int(str(value), 0) if isinstance(value, (str, int)) and not isinstance(value, bool) else 0
        except ValueError:
            mark = 0
        if mark <= 0 or mark & (mark - 1):
            raise ManifestError(f"proxier.masqueradeMark: {value!r} must be a single bit, e.g. 0x4000")
        return mark.bit_length() - 1
    return value


def _of_family(
    config: ProxierConfig, values: tuple[str, ...], where: str, name: str, note: Callable[[str], None]
) -> tuple[str, ...]:
    """The values (of field ``name``) of the proxier's family; the others are noted as ignored."""
    own = tuple(config.own(values))
    if len(own) < len(values):
        note(
            f"{where}: {name}: an {config.ip_family} kube-proxy ignores {', '.join(v for v in values if v not in own)}"
        )
    return own


def check_objects(services: list[Service], node_port_range: tuple[int, int] = SERVICE_NODE_PORT_RANGE) -> None:
    """Refuse what the apiserver refuses across Services: two Services of one name, a ClusterIP or NodePort
    taken twice (within one Service: a protocol's nodePort twice, or the healthCheckNodePort a nodePort of its
    own), a NodePort outside ``--service-node-port-range`` (the registry's allocators, pkg/registry/core/
    service/ipallocator and portallocator) and a NodePort on a ClusterIP Service (ValidateService)."""
    low, high = node_port_range
    keys: set[str] = set()
    ip_owner: dict[str, str] = {}
    port_owner: dict[int, str] = {}
    for svc in services:
        where = f"Service {svc.key}"
        if svc.key in keys:
            raise ManifestError(f"{where}: metadata.name: duplicate Service")
        keys.add(svc.key)
        for i, ip in enumerate(svc.cluster_ips):
            if ip_owner.setdefault(ip, svc.key) != svc.key:
                raise ManifestError(
                    f"{where}: spec.clusterIPs[{i}]: {ip} is already the ClusterIP of Service {ip_owner[ip]}"
                )
        node_ports = [(f"spec.ports[{i}].nodePort", p.node_port) for i, p in enumerate(svc.ports) if p.node_port]
        if svc.type == "ClusterIP" and node_ports:
            raise ManifestError(f"{where}: {node_ports[0][0]}: may not be used when `type` is 'ClusterIP'")
        own: set[tuple[str, int]] = set()  # ValidateService: a (protocol, nodePort) once; TCP and UDP may share
        for i, p in enumerate(svc.ports):
            if p.node_port and (p.protocol, p.node_port) in own:
                raise ManifestError(f"{where}: spec.ports[{i}].nodePort: Duplicate value: {p.node_port}")
            own.add((p.protocol, p.node_port))
        if svc.health_check_node_port:
            node_ports.append(("spec.healthCheckNodePort", svc.health_check_node_port))
        for name, port in node_ports:
            if not low <= port <= high:
                raise ManifestError(
                    f"{where}: {name}: {port}: provided port is not in the valid range. The range "
                    f"of valid ports is {low}-{high} (kube-apiserver --service-node-port-range)"
                )
            owner = port_owner.setdefault(port, svc.key)
            if owner != svc.key or (name == "spec.healthCheckNodePort" and any(port == n for _, n in own)):
                raise ManifestError(f"{where}: {name}: {port}: provided port is already allocated (to Service {owner})")


def read_objects(manifests: Iterable[Mapping]) -> tuple[list[Service], list[EndpointSlice]]:
    """The Services and EndpointSlices among manifests already loaded by :func:`load_manifests` (other kinds
    are not kube-proxy's), each validated, and the Services checked together (:func:`check_objects`)."""
    services, slices = [], []
    for m in manifests:
        if m.get("kind") == "Service":
            services.append(Service.from_manifest(m))
        elif m.get("kind") == "EndpointSlice":
            slices.append(EndpointSlice.from_manifest(m))
    check_objects(services)
    return services, slices


def objects_of(spec: Mapping) -> tuple[list[Service], list[EndpointSlice]]:
    """Services and EndpointSlices from a golden-file case (``services:`` and ``endpointSlices:`` lists)."""
    return (
        [Service.from_manifest(m) for m in as_list(spec.get("services"), "services")],
        [EndpointSlice.from_manifest(m) for m in as_list(spec.get("endpointSlices"), "endpointSlices")],
    )
