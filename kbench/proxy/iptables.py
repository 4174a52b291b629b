"""iptables mode: the ``iptables-restore`` input kube-proxy writes, and that text parsed back into rules.

A port of upstream's ``syncProxyRules`` (kubernetes v1.35 ``pkg/proxy/iptables/proxier.go``): per service port,
nat ``KUBE-SERVICES`` gets one rule per ClusterIP / external IP / load-balancer IP jumping to ``KUBE-SVC-*``
(``KUBE-SVL-*`` for Local policy), ``KUBE-EXT-*`` or ``KUBE-FW-*``; ``KUBE-NODEPORTS`` is reached last via
``addrtype LOCAL``; a service chain masquerades off-cluster sources, then picks endpoint i of n with
``statistic --mode random --probability 1/(n-i)`` (``%0.10f``), the last without a match; ``KUBE-SEP-*``
masquerades hairpin traffic and DNATs; ClientIP affinity uses ``recent``; filter rules REJECT traffic to
services without endpoints and DROP external traffic without local endpoints or outside
``loadBalancerSourceRanges``. Chain names hash as upstream (``servicePortPolicyClusterChain``,
``servicePortEndpointChainName``).

A partial sync (``MinimizeIPTablesRestore``, KEP-3453) writes the top-level chains in full and the
per-service chains only of changed Services; ``IptablesRules.work`` counts both.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import re
from dataclasses import dataclass, field

from kbench.api.network import parse_cidr, parse_ip
from kbench.proxy.model import ProxierConfig, ServicePortChainNames, ServicePortInfo, SyncWork

LARGE_CLUSTER_ENDPOINTS_THRESHOLD = 1000
"""largeClusterEndpointsThreshold: above it SEP comments are dropped (pkg/proxy/iptables/proxier.go)."""

KUBE_SERVICES, KUBE_EXTERNAL_SERVICES, KUBE_NODEPORTS = "KUBE-SERVICES", "KUBE-EXTERNAL-SERVICES", "KUBE-NODEPORTS"
KUBE_POSTROUTING, KUBE_MARK_MASQ, KUBE_FORWARD = "KUBE-POSTROUTING", "KUBE-MARK-MASQ", "KUBE-FORWARD"
KUBE_PROXY_FIREWALL, KUBE_FIREWALL = "KUBE-PROXY-FIREWALL", "KUBE-FIREWALL"


@functools.lru_cache(maxsize=1 << 18)
def hash16(text: str) -> str:
    """The first 16 base32 characters of sha256 (they encode only the digest's first 10 bytes). Cached: every
    compile names each endpoint's chain two or three times, and a sync recompiles what changed."""
    return base64.b32encode(hashlib.sha256(text.encode()).digest()[:10]).decode()


def chain_names(sp: ServicePortInfo) -> dict[str, str]:
    """The SVC / SVL / EXT / FW chains of a service port (``portProtoHash``)."""
    h = hash16(sp.name_string + sp.proto)
    return {
        "cluster": f"KUBE-SVC-{h}",
        "local": f"KUBE-SVL-{h}",
        "external": f"KUBE-EXT-{h}",
        "firewall": f"KUBE-FW-{h}",
    }


def endpoint_chain(sp: ServicePortInfo, address: str) -> str:
    """``servicePortEndpointChainName``: the KUBE-SEP-* chain of one endpoint of a service port."""
    return "KUBE-SEP-" + hash16(sp.name_string + sp.proto + address)


def probability(n: int) -> str:
    """``computeProbability``: ``%0.10f`` of 1/n."""
    return f"{1.0 / n:0.10f}"


def _q(text: str) -> str:
    return f'"{text}"'


@dataclass
class IptablesRules:
    """One sync's output: the full rule set per table and what the restore input held."""

    chains: dict[str, list[str]] = field(default_factory=lambda: {"filter": [], "nat": []})
    rules: dict[str, list[str]] = field(default_factory=lambda: {"filter": [], "nat": []})
    work: SyncWork = field(default_factory=SyncWork)
    """Lines of the ``iptables-restore`` input (chain declarations and rules), per Service."""
    services: int = 0
    endpoints: int = 0

    def text(self) -> str:
        """The full rule set as ``iptables-restore`` input (``*filter`` then ``*nat``), like ``iptables-save``."""
        out = []
        for table in ("filter", "nat"):
            out.append(f"*{table}")
            out += [f":{c} - [0:0]" for c in self.chains[table]]
            out += self.rules[table]
            out.append("COMMIT")
        return "\n".join(out) + "\n"

    @property
    def rule_count(self) -> int:
        """Rules in both tables (chain declarations not counted)."""
        return len(self.rules["filter"]) + len(self.rules["nat"])


def compile_rules(sps: list[ServicePortInfo], config: ProxierConfig) -> IptablesRules:
    """The rules kube-proxy writes for the service ports (a full sync), in ``syncProxyRules``' order: the
    top-level chains and their fixed rules, each service port's rules and chains, the NodePorts tail call and
    KUBE-FORWARD."""
    out = IptablesRules(services=len(sps))
    out.endpoints = sum(len(sp.endpoints) for sp in sps)
    large = out.endpoints > LARGE_CLUSTER_ENDPOINTS_THRESHOLD
    write_top_level_chains(out, config)
    for sp in sps:
        write_service_port(out, sp, config, large)
    write_node_ports_tail_call(out, config)
    write_forward_rules(out, config)
    lines = sum(len(out.chains[t]) + len(out.rules[t]) for t in ("filter", "nat"))
    out.work.base = lines - out.work.always - out.work.on_change
    return out


def write_top_level_chains(out: IptablesRules, config: ProxierConfig) -> None:
    """ "Make sure we keep stats for the top-level chains", then "Install the kubernetes-specific postrouting
    rules" (KUBE-POSTROUTING, KUBE-MARK-MASQ) and, with localhost NodePorts, KUBE-FIREWALL's localnet block."""
    fchains, frules, nchains, nrules = out.chains["filter"], out.rules["filter"], out.chains["nat"], out.rules["nat"]
    mark = config.masquerade_mark
    fchains += [KUBE_SERVICES, KUBE_EXTERNAL_SERVICES, KUBE_FORWARD, KUBE_NODEPORTS, KUBE_PROXY_FIREWALL]
    nchains += [KUBE_SERVICES, KUBE_NODEPORTS, KUBE_POSTROUTING, KUBE_MARK_MASQ]
    nrules.append(f"-A {KUBE_POSTROUTING} -m mark ! --mark {mark}/{mark} -j RETURN")
    nrules.append(f"-A {KUBE_POSTROUTING} -j MARK --xor-mark {mark}")
    nrules.append(
        f'-A {KUBE_POSTROUTING} -m comment --comment "kubernetes service traffic requiring SNAT" '
        f"-j MASQUERADE" + (" --random-fully" if config.random_fully else "")
    )
    nrules.append(f"-A {KUBE_MARK_MASQ} -j MARK --or-mark {mark}")
    if config.localhost_node_ports_enabled:
        fchains.append(KUBE_FIREWALL)
        frules.append(
            f'-A {KUBE_FIREWALL} -m comment --comment "block incoming localnet connections" '
            "-d 127.0.0.0/8 ! -s 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP"
        )


@dataclass
class ServicePortChains(ServicePortChainNames):
    """One service port's chains (KUBE-SVC-*, KUBE-SVL-*, KUBE-EXT-*, KUBE-FW-*) and where each kind of its traffic
    goes (the variables syncProxyRules sets up before writing a service port's rules)."""

    uses_firewall: bool
    internal_target: str = ""
    """What ClusterIP traffic jumps to without internal endpoints: REJECT or DROP ("" when it has some)."""
    internal_comment: str = ""
    external_target: str = ""
    """What external traffic jumps to without external endpoints: REJECT or DROP ("" when it has some)."""
    external_comment: str = ""

    @classmethod
    def of(cls, sp: ServicePortInfo) -> ServicePortChains:
        """The chains of ``sp`` and its REJECT / DROP targets (no endpoints, or no local ones)."""
        names = chain_names(sp)
        plan = sp.plan()
        uses_firewall = plan.has_endpoints and bool(sp.load_balancer_ips) and bool(sp.source_ranges)
        out = cls(sp, plan, names["cluster"], names["local"], names["external"], names["firewall"], uses_firewall)
        if not plan.has_endpoints:
            out.internal_target = out.external_target = "REJECT"
            out.internal_comment = out.external_comment = _q(f"{sp.name_string} has no endpoints")
        if plan.has_endpoints and not plan.has_internal:
            out.internal_target, out.internal_comment = "DROP", _q(f"{sp.name_string} has no local endpoints")
        if plan.has_endpoints and not plan.has_external:
            out.external_target, out.external_comment = "DROP", _q(f"{sp.name_string} has no local endpoints")
        return out

    @property
    def load_balancer_target(self) -> str:
        """Where load-balancer IP traffic goes: KUBE-FW-* with source ranges, else KUBE-EXT-*."""
        return self.firewall if self.uses_firewall else self.external


def write_service_port(out: IptablesRules, sp: ServicePortInfo, config: ProxierConfig, large: bool) -> None:
    """One service port: its rules in the top-level chains, then its own chains, which a partial sync writes only
    when the Service changed (``out.work``)."""
    top = len(out.rules["filter"]) + len(out.rules["nat"])
    chains = ServicePortChains.of(sp)
    capture_cluster_ip(out, chains)
    capture_external_ips(out, chains)
    capture_load_balancer_ips(out, chains)
    capture_node_port(out, chains, config)
    capture_health_check_node_port(out, chains)
    svc_chains: list[str] = []
    svc_rules: list[str] = []
    write_internal_traffic(svc_rules, chains, config)
    write_external_traffic(svc_chains, svc_rules, chains, config)
    write_firewall_chain(svc_chains, svc_rules, chains, config)
    write_policy_chains(svc_chains, svc_rules, chains, large)
    write_endpoint_chains(svc_chains, svc_rules, chains, large)
    out.work.add(
        sp.service_key, len(out.rules["filter"]) + len(out.rules["nat"]) - top, len(svc_chains) + len(svc_rules)
    )
    out.chains["nat"] += svc_chains
    out.rules["nat"] += svc_rules


def capture_cluster_ip(out: IptablesRules, c: ServicePortChains) -> None:
    """ "Capture the clusterIP": to the internal policy chain, or REJECT / DROP in filter KUBE-SERVICES."""
    sp = c.sp
    match = destination_match(sp, sp.cluster_ip)
    if c.plan.has_internal:
        out.rules["nat"].append(
            f'-A {KUBE_SERVICES} -m comment --comment "{sp.name_string} cluster IP" {match} -j {c.internal_policy}'
        )
    else:
        out.rules["filter"].append(
            f"-A {KUBE_SERVICES} -m comment --comment {c.internal_comment} {match} -j {c.internal_target}"
        )


def capture_external_ips(out: IptablesRules, c: ServicePortChains) -> None:
    """ "Capture externalIPs": to KUBE-EXT-*, or REJECT / DROP in KUBE-EXTERNAL-SERVICES."""
    capture_external_addresses(out, c, c.sp.external_ips, "external IP", c.external)


def capture_load_balancer_ips(out: IptablesRules, c: ServicePortChains) -> None:
    """ "Capture load-balancer ingress": to KUBE-FW-* / KUBE-EXT-*, the KUBE-PROXY-FIREWALL drop behind source
    ranges, or REJECT / DROP in KUBE-EXTERNAL-SERVICES."""
    sp = c.sp
    if c.uses_firewall:
        for ip in sp.load_balancer_ips:
            out.rules["filter"].append(
                f'-A {KUBE_PROXY_FIREWALL} -m comment --comment "{sp.name_string} traffic not accepted by '
                f'{c.firewall}" {destination_match(sp, ip)} -j DROP'
            )
    capture_external_addresses(out, c, sp.load_balancer_ips, "loadbalancer IP", c.load_balancer_target)


def capture_external_addresses(
    out: IptablesRules, c: ServicePortChains, addresses: tuple[str, ...], kind: str, target: str
) -> None:
    """External traffic to ``addresses`` (``kind`` in the comment): to ``target`` in nat KUBE-SERVICES when the
    Service has endpoints, REJECT / DROP in filter KUBE-EXTERNAL-SERVICES when it has no external ones."""
    sp = c.sp
    for ip in addresses:
        match = destination_match(sp, ip)
        if c.plan.has_endpoints:
            out.rules["nat"].append(
                f'-A {KUBE_SERVICES} -m comment --comment "{sp.name_string} {kind}" {match} -j {target}'
            )
        if not c.plan.has_external:
            out.rules["filter"].append(
                f"-A {KUBE_EXTERNAL_SERVICES} -m comment --comment {c.external_comment} {match} -j {c.external_target}"
            )


def destination_match(sp: ServicePortInfo, ip: str) -> str:
    """The protocol, destination address and port match of ``sp``'s traffic to ``ip``."""
    return f"-m {sp.proto} -p {sp.proto} -d {ip} --dport {sp.port}"


def capture_node_port(out: IptablesRules, c: ServicePortChains, config: ProxierConfig) -> None:
    """ "Capture nodeports": KUBE-NODEPORTS to KUBE-EXT-* (and the counted localhost rule), or REJECT / DROP in
    KUBE-EXTERNAL-SERVICES."""
    sp = c.sp
    if not sp.node_port:
        return
    match = f"-m {sp.proto} -p {sp.proto}"
    if c.plan.has_endpoints:
        if config.localhost_node_ports_enabled and "localhost_nps_accepted_pkts" in config.nfacct_counters:
            out.rules["nat"].append(
                f"-A {KUBE_NODEPORTS} -m comment --comment {sp.name_string} {match} -d 127.0.0.0/8 "
                f"--dport {sp.node_port} -m nfacct --nfacct-name localhost_nps_accepted_pkts -j {c.external}"
            )
        out.rules["nat"].append(
            f"-A {KUBE_NODEPORTS} -m comment --comment {sp.name_string} {match} --dport {sp.node_port} -j {c.external}"
        )
    if not c.plan.has_external:
        out.rules["filter"].append(
            f"-A {KUBE_EXTERNAL_SERVICES} -m comment --comment {c.external_comment} "
            f"-m addrtype --dst-type LOCAL {match} --dport {sp.node_port} -j {c.external_target}"
        )


def capture_health_check_node_port(out: IptablesRules, c: ServicePortChains) -> None:
    """ "Capture healthCheckNodePorts": accept them in filter KUBE-NODEPORTS."""
    if c.sp.health_check_node_port:
        out.rules["filter"].append(
            f'-A {KUBE_NODEPORTS} -m comment --comment "{c.sp.name_string} health check node port" '
            f"-m tcp -p tcp --dport {c.sp.health_check_node_port} -j ACCEPT"
        )


def write_internal_traffic(rules: list[str], c: ServicePortChains, config: ProxierConfig) -> None:
    """ "Set up internal traffic handling": masquerade ClusterIP traffic from off the pod network (or all of it)."""
    if not c.plan.has_internal:
        return
    sp = c.sp
    args = (
        f'-m comment --comment "{sp.name_string} cluster IP" -m {sp.proto} -p {sp.proto} -d {sp.cluster_ip} '
        f"--dport {sp.port}"
    )
    if config.masquerade_all:
        rules.append(f"-A {c.internal_policy} {args} -j {KUBE_MARK_MASQ}")
    elif config.local_cidr:
        rules.append(f"-A {c.internal_policy} {args} ! -s {config.local_cidr} -j {KUBE_MARK_MASQ}")


def write_external_traffic(chains: list[str], rules: list[str], c: ServicePortChains, config: ProxierConfig) -> None:
    """ "Set up external traffic handling" in KUBE-EXT-*: masquerade (Cluster policy) or short-circuit pod and
    node traffic to the cluster chain (Local policy), then the external policy chain."""
    if not c.plan.uses_external_chain:
        return
    name = c.sp.name_string
    chains.append(c.external)
    if not c.sp.external_local:
        rules.append(
            f'-A {c.external} -m comment --comment "masquerade traffic for {name} external destinations" '
            f"-j {KUBE_MARK_MASQ}"
        )
    else:
        if config.local_cidr:
            rules.append(
                f'-A {c.external} -m comment --comment "pod traffic for {name} external destinations" '
                f"-s {config.local_cidr} -j {c.cluster}"
            )
        rules.append(
            f'-A {c.external} -m comment --comment "masquerade LOCAL traffic for {name} external destinations" '
            f"-m addrtype --src-type LOCAL -j {KUBE_MARK_MASQ}"
        )
        rules.append(
            f'-A {c.external} -m comment --comment "route LOCAL traffic for {name} external destinations" '
            f"-m addrtype --src-type LOCAL -j {c.cluster}"
        )
    if c.plan.has_external:
        rules.append(f"-A {c.external} -j {c.external_policy}")


def write_firewall_chain(chains: list[str], rules: list[str], c: ServicePortChains, config: ProxierConfig) -> None:
    """ "Set up firewall chain" KUBE-FW-*: allowed source ranges (and the load balancer's own IPs when the node is
    in them) go on to KUBE-EXT-*; the rest is dropped by KUBE-PROXY-FIREWALL."""
    if not c.uses_firewall:
        return
    chains.append(c.firewall)
    head = f'-A {c.firewall} -m comment --comment "{c.sp.name_string} loadbalancer IP"'
    allow_from_node = False
    for cidr in c.sp.source_ranges:
        rules.append(f"{head} -s {cidr} -j {c.external}")
        allow_from_node = allow_from_node or parse_ip(config.node_ip) in parse_cidr(cidr)
    if allow_from_node:
        rules += [f"{head} -s {ip} -j {c.external}" for ip in c.sp.load_balancer_ips]
    rules.append(
        f'-A {c.firewall} -m comment --comment "other traffic to {c.sp.name_string} will be dropped by '
        f'{KUBE_PROXY_FIREWALL}"'
    )


def write_policy_chains(chains: list[str], rules: list[str], c: ServicePortChains, large: bool) -> None:
    """The Cluster (KUBE-SVC-*) and Local (KUBE-SVL-*) policy chains that are in use, each spreading its traffic
    over its endpoints."""
    for chain, eps in c.policy_chains():
        chains.append(chain)
        write_service_to_endpoint_rules(rules, c.sp, chain, eps, large)


def write_endpoint_chains(chains: list[str], rules: list[str], c: ServicePortChains, large: bool) -> None:
    """ "Generate the per-endpoint chains" KUBE-SEP-*: masquerade hairpin traffic, record affinity, DNAT."""
    sp = c.sp
    for ep in c.plan.reachable:
        sep = endpoint_chain(sp, ep.address)
        chains.append(sep)
        args = f"-A {sep}" + ("" if large else f" -m comment --comment {sp.name_string}")
        rules.append(f"{args} -s {ep.ip} -j {KUBE_MARK_MASQ}")
        if sp.affinity_timeout:
            args += f" -m recent --name {sep} --set"
        rules.append(f"{args} -m {sp.proto} -p {sp.proto} -j DNAT --to-destination {ep.address}")


def write_node_ports_tail_call(out: IptablesRules, config: ProxierConfig) -> None:
    """ "Finally, tail-call to the nodePorts chain": KUBE-SERVICES' last rule, for local destinations or the
    NodePort addresses."""
    nrules = out.rules["nat"]
    cidrs = config.node_port_cidrs("iptables")
    localhost_nps = config.localhost_node_ports_enabled
    tail = (
        f'-A {KUBE_SERVICES} -m comment --comment "kubernetes service nodeports; NOTE: this must be the last '
        f'rule in this chain"'
    )
    if cidrs is None:
        dest = "-m addrtype --dst-type LOCAL"
        if config.ipv6:
            dest += " ! -d ::1/128"
        elif not localhost_nps:
            dest += " ! -d 127.0.0.0/8"
        nrules.append(f"{tail} {dest} -j {KUBE_NODEPORTS}")
        return
    for ip in config.node_port_ips("iptables"):
        if ip in ("127.0.0.1", "::1") and (config.ipv6 or not localhost_nps):
            continue
        nrules.append(f"{tail} -d {ip} -j {KUBE_NODEPORTS}")


def write_forward_rules(out: IptablesRules, config: ProxierConfig) -> None:
    """KUBE-FORWARD: "Drop the packets in INVALID state" (unless conntrack is liberal), accept marked traffic and
    what conntrack already accepted."""
    frules, mark = out.rules["filter"], config.masquerade_mark
    if not config.conntrack_tcp_liberal:
        acct = (
            " -m nfacct --nfacct-name ct_state_invalid_dropped_pkts"
            if "ct_state_invalid_dropped_pkts" in config.nfacct_counters
            else ""
        )
        frules.append(f"-A {KUBE_FORWARD} -m conntrack --ctstate INVALID{acct} -j DROP")
    frules.append(
        f'-A {KUBE_FORWARD} -m comment --comment "kubernetes forwarding rules" -m mark --mark {mark}/{mark} -j ACCEPT'
    )
    frules.append(
        f'-A {KUBE_FORWARD} -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack '
        "--ctstate RELATED,ESTABLISHED -j ACCEPT"
    )


def write_service_to_endpoint_rules(rules: list[str], sp: ServicePortInfo, chain: str, eps, large: bool) -> None:
    """``writeServiceToEndpointRules``: affinity checks first, then the probability cascade."""
    for ep in eps if sp.affinity_timeout else ():
        sep = endpoint_chain(sp, ep.address)
        comment = "" if large else f' -m comment --comment "{sp.name_string} -> {ep.address}"'
        rules.append(
            f"-A {chain}{comment} -m recent --name {sep} --rcheck --seconds {sp.affinity_timeout} --reap -j {sep}"
        )
    n = len(eps)
    for i, ep in enumerate(eps):
        comment = "" if large else f' -m comment --comment "{sp.name_string} -> {ep.address}"'
        stat = f" -m statistic --mode random --probability {probability(n - i)}" if i < n - 1 else ""
        rules.append(f"-A {chain}{comment}{stat} -j {endpoint_chain(sp, ep.address)}")


# -- parsing the restore text back into rules ---------------------------------------------------------------
@dataclass
class Rule:
    """One ``-A`` line: its matches and target, as the tracer and the compiled matcher read them."""

    table: str
    chain: str
    text: str
    protocol: str = ""
    source: str = ""
    source_negated: bool = False
    destination: str = ""
    destination_negated: bool = False
    dport: int = 0
    src_type_local: bool | None = None
    dst_type_local: bool | None = None
    probability: float | None = None
    recent: tuple[str, str, int] | None = None
    """(name, "set" | "rcheck", seconds)."""
    mark: tuple[bool, str] | None = None
    """(negated, value/mask)."""
    ctstate: tuple[bool, frozenset[str]] | None = None
    match_sets: list[tuple[str, str, bool]] = field(default_factory=list)
    """ipset matches: (set name, direction flags like ``dst,dst``, negated)."""
    unsupported: bool = False
    """A match kbench does not evaluate (physdev, ipvs): such a rule never matches."""
    target: str = ""
    to_destination: str = ""
    mark_op: str = ""
    """``or`` / ``xor`` for ``-j MARK --or-mark/--xor-mark``."""


def parse(text: str) -> list[Rule]:
    """The ``-A`` rules of an ``iptables-restore`` text, in order (tables by their ``*table`` headers)."""
    rules, table = [], ""
    for line in text.splitlines():
        if line.startswith("*"):
            table = line[1:].strip()
        elif line.startswith("-A "):
            rules.append(parse_rule(table, line))
    return rules


_WORD = re.compile(r'"[^"]*"|\S+')


def parse_rule(table: str, line: str) -> Rule:
    """One ``-A`` line of ``table`` as a :class:`Rule` (options kbench does not evaluate are skipped)."""
    words = line.split() if '"' not in line else [w.strip('"') for w in _WORD.findall(line)]
    rule = Rule(table, words[1], line)
    i, negate = 2, False
    while i < len(words):
        w = words[i]
        nxt = words[i + 1] if i + 1 < len(words) else ""
        if w == "!":
            negate, i = True, i + 1
            continue
        if w == "-m":
            if nxt in ("physdev", "ipvs"):
                rule.unsupported = True
            i += 2
        elif w == "-p":
            rule.protocol, i = nxt, i + 2
        elif w == "-s":
            rule.source, rule.source_negated, i = nxt, negate, i + 2
        elif w == "-d":
            rule.destination, rule.destination_negated, i = nxt, negate, i + 2
        elif w == "--dport":
            rule.dport, i = int(nxt), i + 2
        elif w in ("--src-type", "--dst-type"):
            local = (nxt == "LOCAL") != negate
            if w == "--src-type":
                rule.src_type_local = local
            else:
                rule.dst_type_local = local
            i += 2
        elif w == "--probability":
            rule.probability, i = float(nxt), i + 2
        elif w == "--name":
            rule.recent, i = (nxt, "", 0), i + 2
        elif w in ("--set", "--rcheck") and rule.recent is not None:
            rule.recent, i = (rule.recent[0], w[2:], rule.recent[2]), i + 1
        elif w == "--seconds" and rule.recent is not None:
            rule.recent, i = (rule.recent[0], rule.recent[1], int(nxt)), i + 2
        elif w == "--mark":
            rule.mark, i = (negate, nxt), i + 2
        elif w == "--ctstate":
            rule.ctstate, i = (negate, frozenset(nxt.split(","))), i + 2
        elif w == "--match-set":
            rule.match_sets.append((nxt, words[i + 2], negate))
            i += 3
        elif w == "-j":
            rule.target, i = nxt, i + 2
        elif w == "--to-destination":
            rule.to_destination, i = nxt, i + 2
        elif w in ("--or-mark", "--xor-mark"):
            rule.mark_op, i = w[2:-5], i + 2
        else:  # --comment text, --mode random, --reap, --nfacct-name, --random-fully: no effect on matching
            i += 2 if w in ("--comment", "--mode", "--nfacct-name") else 1
        negate = False
    return rule
