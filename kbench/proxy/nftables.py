"""nftables mode: table ``ip kube-proxy`` with its verdict maps, as kube-proxy writes it, and as ``nft`` lists it.

A port of upstream's ``syncProxyRules`` (kubernetes v1.35 ``pkg/proxy/nftables/proxier.go``): the base chains
hook prerouting / input / forward / output / postrouting; ``services`` looks the packet up in the
``service-ips`` (``ip . proto . port``) and ``service-nodeports`` (``proto . port``) verdict maps; a service chain
masquerades off-cluster sources, checks the per-endpoint affinity sets (dynamic, with timeout), then picks an
endpoint with ``numgen random mod N vmap``; ``no-endpoint-services`` / ``no-endpoint-nodeports`` reject or drop
what has no endpoints; ``firewall-ips`` sends load-balancer traffic with ``loadBalancerSourceRanges`` to a
per-service firewall chain; ``cluster-ips-check`` rejects unused ports of ClusterIPs and drops unallocated ones.
Chain names are ``<prefix>-<8 chars of base32(sha256(name))>-<name>`` (``hashAndTruncate``).

Each sync sends a transaction with only the changed Services' objects (plus the maps' element flushes), which is
why nftables sync cost grows with the change, not the cluster (KEP-3866).
"""

from __future__ import annotations

import base64
import functools
import hashlib
from dataclasses import dataclass, field

from kbench.api.network import parse_cidr, parse_ip
from kbench.proxy.model import ProxierConfig, ServicePortChainNames, ServicePortInfo, SyncWork

TABLE = "kube-proxy"
MARK_MASQ, REJECT_CHAIN = "mark-for-masquerade", "reject-chain"
PRIORITY_NAMES = {-300: "raw", -150: "mangle", -100: "dstnat", 0: "filter", 100: "srcnat", 300: "security"}


@functools.lru_cache(maxsize=1 << 18)
def hash_and_truncate(name: str) -> str:
    """knftables' hashAndTruncate (cached, as iptables' chain hash): 8 base32 characters = 5 digest bytes."""
    digest = base64.b32encode(hashlib.sha256(name.encode()).digest()[:5]).decode()
    full = f"{digest}-{name}"
    return full if len(full) <= 200 else full[:197] + "..."


def service_base(sp: ServicePortInfo) -> str:
    """``servicePortChainNameBase``: ``ns/name/proto/port``."""
    return f"{sp.namespace}/{sp.name}/{sp.proto}/{sp.port_name}"


def endpoint_base(sp: ServicePortInfo, ip: str, port: int) -> str:
    """``servicePortEndpointChainNameBase``: the service base plus ``__ip/port`` (IPv6 colons as dots)."""
    return f"{service_base(sp)}__{ip.replace(':', '.')}/{port}"


@dataclass
class NftSet:
    """An nftables set or verdict map of the kube-proxy table, with its elements."""

    name: str
    type: str
    is_map: bool = False
    flags: str = ""
    timeout: int = 0
    comment: str = ""
    elements: list[tuple[tuple[str, ...], str, str]] = field(default_factory=list)
    """(key parts, verdict ("" for a set), comment)."""

    def body(self) -> str:
        """The ``{ type ... ; flags ... ; }`` part of its ``add set`` / ``add map`` command."""
        parts = [f"type {self.type}" + (" : verdict" if self.is_map else "")]
        if self.flags:
            parts.append(f"flags {self.flags}")
        if self.timeout:
            parts.append(f"timeout {self.timeout}s")
        if self.comment:
            parts.append(f'comment "{self.comment}"')
        return "{ " + " ; ".join(parts) + " ; }"


@dataclass
class NftChain:
    """An nftables chain of the kube-proxy table and its rules (as ``nft`` writes them)."""

    name: str
    hook: tuple[str, str, int] | None = None
    """(type, hook, priority) of a base chain."""
    comment: str = ""
    rules: list[str] = field(default_factory=list)


@dataclass
class NftRuleset:
    """One sync's kube-proxy table: sets, maps and chains, and the work the transaction writes."""

    family: str
    sets: dict[str, NftSet] = field(default_factory=dict)
    chains: dict[str, NftChain] = field(default_factory=dict)
    work: SyncWork = field(default_factory=SyncWork)
    """Objects (sets, chains, rules, elements) of the transaction, per Service."""
    services: int = 0
    endpoints: int = 0
    objects: int = 0
    """Objects created so far (chains, rules, sets, elements)."""

    def chain(self, name: str, hook=None, comment: str = "") -> NftChain:
        """The chain ``name``, added when new (``hook``: (type, hook, priority) of a base chain)."""
        c = self.chains.get(name)
        if c is None:
            c = self.chains[name] = NftChain(name, hook, comment)
            self.objects += 1
        return c

    def add_set(self, *args, **kwargs) -> NftSet:
        """Add a set or map (:class:`NftSet`'s arguments)."""
        s = NftSet(*args, **kwargs)
        self.sets[s.name] = s
        self.objects += 1
        return s

    def rule(self, chain: str, text: str) -> None:
        """Append a rule to ``chain``."""
        self.chain(chain).rules.append(text)
        self.objects += 1

    def element(self, name: str, key: tuple[str, ...], verdict: str = "", comment: str = "") -> None:
        """Add an element to set or map ``name`` (``verdict`` for a map)."""
        self.sets[name].elements.append((key, verdict, comment))
        self.objects += 1

    @property
    def rule_count(self) -> int:
        """Rules in all chains."""
        return sum(len(c.rules) for c in self.chains.values())

    def dump(self) -> str:
        """The ruleset as ``nft -f`` commands, the format of knftables' ``Fake.Dump()``."""
        pre = f"add {{}} {self.family} {TABLE}"
        out = [f'add table {self.family} {TABLE} {{ comment "rules for kube-proxy" ; }}']
        for s in self.sets.values():
            out.append(f"{pre.format('map' if s.is_map else 'set')} {s.name} {s.body()}")
        for c in self.chains.values():
            opts = []
            if c.hook:
                opts.append(f"type {c.hook[0]} hook {c.hook[1]} priority {c.hook[2]}")
            if c.comment:
                opts.append(f'comment "{c.comment}"')
            out.append(f"{pre.format('chain')} {c.name}" + (" { " + " ; ".join(opts) + " ; }" if opts else ""))
        for c in self.chains.values():
            out += [f"{pre.format('rule')} {c.name} {r}" for r in c.rules]
        for s in self.sets.values():
            for key, verdict, comment in s.elements:
                text = (
                    " . ".join(key)
                    + (f' comment "{comment}"' if comment else "")
                    + (f" : {verdict}" if verdict else "")
                )
                out.append(f"{pre.format('element')} {s.name} {{ {text} }}")
        return "\n".join(out) + "\n"

    def list_ruleset(self) -> str:
        """The ruleset as ``nft list ruleset`` prints it."""
        out = [f"table {self.family} {TABLE} {{", '\tcomment "rules for kube-proxy"']
        for s in self.sets.values():
            out.append(f"\n\t{'map' if s.is_map else 'set'} {s.name} {{")
            out.append(f"\t\ttype {s.type}" + (" : verdict" if s.is_map else ""))
            if s.flags:
                out.append(f"\t\tflags {s.flags.replace(',', ', ')}")
            if s.timeout:
                out.append(f"\t\ttimeout {_duration(s.timeout)}")
            if s.comment:
                out.append(f'\t\tcomment "{s.comment}"')
            if s.elements:
                items = [
                    " . ".join(k) + (f' comment "{c}"' if c else "") + (f" : {v}" if v else "")
                    for k, v, c in s.elements
                ]
                out.append("\t\telements = { " + ",\n\t\t\t     ".join(items) + " }")
            out.append("\t}")
        for c in self.chains.values():
            out.append(f"\n\tchain {c.name} {{")
            if c.comment:
                out.append(f'\t\tcomment "{c.comment}"')
            if c.hook:
                out.append(f"\t\ttype {c.hook[0]} hook {c.hook[1]} priority {_priority(c.hook[2])}; policy accept;")
            out += [f"\t\t{r}" for r in c.rules]
            out.append("\t}")
        out.append("}")
        return "\n".join(out) + "\n"


def _duration(seconds: int) -> str:
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return "".join(f"{v}{u}" for v, u in ((h, "h"), (m, "m"), (s, "s")) if v) or "0s"


def _priority(value: int) -> str:
    """nft prints standard priorities by name, others relative to the nearest one (``dstnat - 10``)."""
    base = min(PRIORITY_NAMES, key=lambda p: (abs(value - p), p))
    delta = value - base
    return PRIORITY_NAMES[base] + ("" if not delta else f" {'+' if delta > 0 else '-'} {abs(delta)}")


def compile_rules(sps: list[ServicePortInfo], config: ProxierConfig) -> NftRuleset:
    """The ``kube-proxy`` table for the service ports (a full sync): the base chains, sets and maps, then each
    service port's map elements and chains, in ``syncProxyRules``' order."""
    ip = "ip6" if config.ipv6 else "ip"
    addr_type = "ipv6_addr" if config.ipv6 else "ipv4_addr"
    rs = NftRuleset(ip, services=len(sps), endpoints=sum(len(sp.endpoints) for sp in sps))
    _base(rs, config, ip, addr_type)
    rs.objects = rs.work.base = (
        len(rs.chains) + rs.rule_count + len(rs.sets) + sum(len(s.elements) for s in rs.sets.values())
    )
    for sp in sps:
        before = rs.objects
        chains = ServicePortChains.of(sp, ip, addr_type)
        add_service_elements(rs, chains)
        write_policy_chains(rs, chains, config)
        write_external_chain(rs, chains, config)
        write_firewall_chain(rs, chains, config)
        write_endpoint_chains(rs, chains)
        rs.work.add(sp.service_key, 0, rs.objects - before)
    return rs


@dataclass
class ServicePortChains(ServicePortChainNames):
    """One service port's chain names (service-*, local-*, external-*, firewall-*) and the verdicts of its traffic
    without (local) endpoints."""

    ip: str
    """``ip`` or ``ip6``."""
    addr_type: str
    """``ipv4_addr`` or ``ipv6_addr``."""

    @classmethod
    def of(cls, sp: ServicePortInfo, ip: str, addr_type: str) -> ServicePortChains:
        """The chains of ``sp`` (``servicePortChainNameBase`` hashed and truncated)."""
        base = hash_and_truncate(service_base(sp))
        return cls(
            sp, sp.plan(), f"service-{base}", f"local-{base}", f"external-{base}", f"firewall-{base}", ip, addr_type
        )

    @property
    def uses_firewall(self) -> bool:
        """Load-balancer IPs with source ranges."""
        return bool(self.sp.load_balancer_ips) and bool(self.sp.source_ranges)

    @property
    def no_endpoints_verdict(self) -> str:
        """What traffic without endpoints gets: reject when the Service has none anywhere, else drop."""
        return "drop" if self.plan.has_endpoints else f"goto {REJECT_CHAIN}"


def add_service_elements(rs: NftRuleset, c: ServicePortChains) -> None:
    """The service port's elements of the dispatch maps: ``service-ips`` / ``service-nodeports`` to its chains,
    ``no-endpoint-*`` verdicts, ``firewall-ips`` for load balancers with source ranges."""
    sp, plan = c.sp, c.plan
    proto, port, verdict = sp.proto, str(sp.port), c.no_endpoints_verdict
    rs.element("cluster-ips", (sp.cluster_ip,))
    if plan.has_internal:
        rs.element("service-ips", (sp.cluster_ip, proto, port), f"goto {c.internal_policy}")
    else:
        rs.element("no-endpoint-services", (sp.cluster_ip, proto, port), verdict, sp.name_string)
    for eip in (*sp.external_ips, *sp.load_balancer_ips):
        if plan.has_endpoints:
            rs.element("service-ips", (eip, proto, port), f"goto {c.external}")
        if not plan.has_external:
            rs.element("no-endpoint-services", (eip, proto, port), verdict, sp.name_string)
    if c.uses_firewall:
        for lb in sp.load_balancer_ips:
            rs.element("firewall-ips", (lb, proto, port), f"goto {c.firewall}")
    if sp.node_port:
        if plan.has_endpoints:
            rs.element("service-nodeports", (proto, str(sp.node_port)), f"goto {c.external}")
        if not plan.has_external:
            rs.element("no-endpoint-nodeports", (proto, str(sp.node_port)), verdict, sp.name_string)


def write_policy_chains(rs: NftRuleset, c: ServicePortChains, config: ProxierConfig) -> None:
    """The Cluster and Local policy chains in use: masquerade ClusterIP traffic from off the pod network (internal
    policy chain), affinity, then ``numgen`` over the endpoint chains (``writeServiceToEndpointRules``)."""
    sp, ip = c.sp, c.ip
    for chain, eps in c.policy_chains():
        if c.plan.has_internal and chain == c.internal_policy:
            if config.masquerade_all:
                rs.rule(chain, f"{ip} daddr {sp.cluster_ip} jump {MARK_MASQ}")
            elif config.local_cidr:
                rs.rule(chain, f"{ip} daddr {sp.cluster_ip} {ip} saddr != {config.local_cidr} jump {MARK_MASQ}")
        if sp.affinity_timeout:
            for ep in eps:
                eb = hash_and_truncate(endpoint_base(sp, ep.ip, ep.port))
                rs.rule(chain, f"{ip} saddr @affinity-{eb} goto endpoint-{eb}")
        targets = " , ".join(
            f"{i} : goto endpoint-{hash_and_truncate(endpoint_base(sp, ep.ip, ep.port))}" for i, ep in enumerate(eps)
        )
        rs.rule(chain, f"numgen random mod {len(eps)} vmap {{ {targets} }}")


def write_external_chain(rs: NftRuleset, c: ServicePortChains, config: ProxierConfig) -> None:
    """external-*: masquerade (Cluster policy) or short-circuit pod and local traffic (Local policy), then the
    external policy chain."""
    if not c.plan.uses_external_chain:
        return
    chain = c.external
    if not c.sp.external_local:
        rs.rule(chain, f"jump {MARK_MASQ}")
        rs.rule(chain, f"goto {c.cluster}")
        return
    if config.local_cidr:
        rs.rule(chain, f'{c.ip} saddr {config.local_cidr} goto {c.cluster} comment "short-circuit pod traffic"')
    rs.rule(chain, f'fib saddr type local jump {MARK_MASQ} comment "masquerade local traffic"')
    rs.rule(chain, f'fib saddr type local goto {c.cluster} comment "short-circuit local traffic"')
    if c.plan.has_external:
        rs.rule(chain, f"goto {c.external_policy}")


def write_firewall_chain(rs: NftRuleset, c: ServicePortChains, config: ProxierConfig) -> None:
    """firewall-*: drop sources outside the ranges (and the load balancer's own IPs when the node is in them)."""
    if not c.uses_firewall:
        return
    sources = list(c.sp.source_ranges)
    node_ip = parse_ip(config.node_ip)
    if any(node_ip in parse_cidr(cidr) for cidr in c.sp.source_ranges):
        sources += c.sp.load_balancer_ips
    rs.rule(c.firewall, f"{c.ip} saddr != {{ {' , '.join(sources)} }} drop")


def write_endpoint_chains(rs: NftRuleset, c: ServicePortChains) -> None:
    """endpoint-*: masquerade hairpin traffic, record affinity, DNAT."""
    sp, ip = c.sp, c.ip
    for ep in c.plan.reachable:
        eb = hash_and_truncate(endpoint_base(sp, ep.ip, ep.port))
        chain = f"endpoint-{eb}"
        rs.rule(chain, f"{ip} saddr {ep.ip} jump {MARK_MASQ}")
        if sp.affinity_timeout:
            rs.add_set(f"affinity-{eb}", c.addr_type, flags="dynamic,timeout", timeout=sp.affinity_timeout)
            rs.rule(chain, f"update @affinity-{eb} {{ {ip} saddr }}")
        rs.rule(chain, f"meta l4proto {sp.proto} dnat to {ep.address}")


def _base(rs: NftRuleset, config: ProxierConfig, ip: str, addr_type: str) -> None:
    """The fixed skeleton: sets, maps, base chains and their rules (``setupNFTables``)."""
    rs.add_set("cluster-ips", addr_type, comment="Active ClusterIPs")
    node_port_cidrs = config.node_port_cidrs("nftables")
    if node_port_cidrs is not None:
        rs.add_set("nodeport-ips", addr_type, comment="IPs that accept NodePort traffic")
    key3, key2 = f"{addr_type} . inet_proto . inet_service", "inet_proto . inet_service"
    rs.add_set("firewall-ips", key3, True, comment="destinations that are subject to LoadBalancerSourceRanges")
    rs.add_set(
        "no-endpoint-nodeports",
        key2,
        True,
        comment="vmap to drop or reject packets to service nodeports with no endpoints",
    )
    rs.add_set(
        "no-endpoint-services", key3, True, comment="vmap to drop or reject packets to services with no endpoints"
    )
    rs.add_set("service-ips", key3, True, comment="ClusterIP, ExternalIP and LoadBalancer IP traffic")
    rs.add_set("service-nodeports", key2, True, comment="NodePort traffic")
    for name, hook in (
        ("filter-prerouting-pre-dnat", ("filter", "prerouting", -110)),
        ("filter-output-pre-dnat", ("filter", "output", -110)),
        ("filter-forward", ("filter", "forward", 0)),
        ("filter-input", ("filter", "input", 0)),
        ("filter-output", ("filter", "output", 0)),
        ("nat-output", ("nat", "output", -100)),
        ("nat-postrouting", ("nat", "postrouting", 100)),
        ("nat-prerouting", ("nat", "prerouting", -100)),
    ):
        rs.chain(name, hook)
    for name in (
        "cluster-ips-check",
        "firewall-check",
        MARK_MASQ,
        "masquerading",
        "nodeport-endpoints-check",
        "services",
        "service-endpoints-check",
    ):
        rs.chain(name)
    rs.chain(REJECT_CHAIN, comment="helper for @no-endpoint-services / @no-endpoint-nodeports").rules.append("reject")
    mark = config.masquerade_mark
    rules = {name: rs.chains[name].rules for name in rs.chains}
    rules["cluster-ips-check"].append(
        f'{ip} daddr @cluster-ips reject comment "Reject traffic to invalid ports of ClusterIPs"'
    )
    service_cidrs = config.own(config.service_cidrs)
    if service_cidrs:
        rules["cluster-ips-check"].append(
            f'{ip} daddr {{ {", ".join(service_cidrs)} }} drop comment "Drop traffic to unallocated ClusterIPs"'
        )
    for chain, target in (
        ("filter-prerouting-pre-dnat", "firewall-check"),
        ("filter-output-pre-dnat", "firewall-check"),
        ("filter-forward", "service-endpoints-check"),
        ("filter-forward", "cluster-ips-check"),
        ("filter-input", "nodeport-endpoints-check"),
        ("filter-input", "service-endpoints-check"),
        ("filter-output", "service-endpoints-check"),
        ("filter-output", "cluster-ips-check"),
    ):
        rules[chain].append(f"ct state new jump {target}")
    rules["firewall-check"].append(f"{ip} daddr . meta l4proto . th dport vmap @firewall-ips")
    rules[MARK_MASQ].append(f"mark set mark or {mark}")
    rules["masquerading"] += [f"mark and {mark} == 0 return", f"mark set mark xor {mark}", "masquerade fully-random"]
    rules["nat-output"].append("jump services")
    rules["nat-postrouting"].append("jump masquerading")
    rules["nat-prerouting"].append("jump services")
    if node_port_cidrs is None:
        local = f"fib daddr type local {ip} daddr != {'::1' if config.ipv6 else '127.0.0.0/8'}"
    else:
        local = f"{ip} daddr @nodeport-ips"
        for addr in config.node_port_ips("nftables"):
            if not parse_ip(addr).is_loopback:  # localhost NodePorts are not supported in nftables mode
                rs.element("nodeport-ips", (addr,))
    rules["nodeport-endpoints-check"].append(f"{local} meta l4proto . th dport vmap @no-endpoint-nodeports")
    rules["services"].append(f"{ip} daddr . meta l4proto . th dport vmap @service-ips")
    rules["services"].append(f"{local} meta l4proto . th dport vmap @service-nodeports")
    rules["service-endpoints-check"].append(f"{ip} daddr . meta l4proto . th dport vmap @no-endpoint-services")
