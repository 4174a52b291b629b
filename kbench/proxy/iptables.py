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
from kbench.proxy.model import ProxierConfig, ServicePortInfo, SyncWork

LARGE_CLUSTER_ENDPOINTS_THRESHOLD = 1000
"""largeClusterEndpointsThreshold: above it SEP comments are dropped (pkg/proxy/iptables/proxier.go)."""

KUBE_SERVICES, KUBE_EXTERNAL_SERVICES, KUBE_NODEPORTS = "KUBE-SERVICES", "KUBE-EXTERNAL-SERVICES", "KUBE-NODEPORTS"
KUBE_POSTROUTING, KUBE_MARK_MASQ, KUBE_FORWARD = "KUBE-POSTROUTING", "KUBE-MARK-MASQ", "KUBE-FORWARD"
KUBE_PROXY_FIREWALL, KUBE_FIREWALL = "KUBE-PROXY-FIREWALL", "KUBE-FIREWALL"


@functools.lru_cache(maxsize=1 << 18)
def _hash16(text: str) -> str:
    """The first 16 base32 characters of sha256 (they encode only the digest's first 10 bytes). Cached: every
    compile names each endpoint's chain two or three times, and a sync recompiles what changed."""
    return base64.b32encode(hashlib.sha256(text.encode()).digest()[:10]).decode()


def chain_names(sp: ServicePortInfo) -> dict[str, str]:
    """The SVC / SVL / EXT / FW chains of a service port (``portProtoHash``)."""
    h = _hash16(sp.name_string + sp.proto)
    return {
        "cluster": f"KUBE-SVC-{h}",
        "local": f"KUBE-SVL-{h}",
        "external": f"KUBE-EXT-{h}",
        "firewall": f"KUBE-FW-{h}",
    }


def endpoint_chain(sp: ServicePortInfo, address: str) -> str:
    return "KUBE-SEP-" + _hash16(sp.name_string + sp.proto + address)


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
        return len(self.rules["filter"]) + len(self.rules["nat"])


def compile_rules(sps: list[ServicePortInfo], config: ProxierConfig) -> IptablesRules:
    """The rules kube-proxy writes for the service ports (a full sync)."""
    out = IptablesRules(services=len(sps))
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
    localhost_nps = config.localhost_node_ports_enabled
    if localhost_nps:
        fchains.append(KUBE_FIREWALL)
        frules.append(
            f'-A {KUBE_FIREWALL} -m comment --comment "block incoming localnet connections" '
            "-d 127.0.0.0/8 ! -s 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP"
        )
    out.endpoints = sum(len(sp.endpoints) for sp in sps)
    large = out.endpoints > LARGE_CLUSTER_ENDPOINTS_THRESHOLD
    local_cidr = config.local_cidr
    for sp in sps:
        top = len(frules) + len(nrules)
        names = chain_names(sp)
        name, proto, port = sp.name_string, sp.proto, sp.port
        match = f"-m {proto} -p {proto}"
        plan = sp.plan()
        cluster_eps, local_eps, reachable, has_eps = plan.cluster, plan.local, plan.reachable, plan.has_endpoints
        has_internal, has_external, uses_ext = plan.has_internal, plan.has_external, plan.uses_external_chain
        cluster_chain, local_chain, ext_chain, fw_chain = (
            names["cluster"],
            names["local"],
            names["external"],
            names["firewall"],
        )
        internal_chain = local_chain if sp.internal_local else cluster_chain
        external_policy_chain = local_chain if sp.external_local else cluster_chain
        uses_fw = has_eps and bool(sp.load_balancer_ips) and bool(sp.source_ranges)
        lb_chain = fw_chain if uses_fw else ext_chain
        if not has_eps:
            int_target = ext_target = "REJECT"
            int_comment = ext_comment = _q(f"{name} has no endpoints")
        else:
            int_target = ext_target = ""
            if not has_internal:
                int_target, int_comment = "DROP", _q(f"{name} has no local endpoints")
            if not has_external:
                ext_target, ext_comment = "DROP", _q(f"{name} has no local endpoints")

        if has_internal:
            nrules.append(
                f'-A {KUBE_SERVICES} -m comment --comment "{name} cluster IP" {match} '
                f"-d {sp.cluster_ip} --dport {port} -j {internal_chain}"
            )
        else:
            frules.append(
                f"-A {KUBE_SERVICES} -m comment --comment {int_comment} {match} "
                f"-d {sp.cluster_ip} --dport {port} -j {int_target}"
            )
        for ip in sp.external_ips:
            if has_eps:
                nrules.append(
                    f'-A {KUBE_SERVICES} -m comment --comment "{name} external IP" {match} '
                    f"-d {ip} --dport {port} -j {ext_chain}"
                )
            if not has_external:
                frules.append(
                    f"-A {KUBE_EXTERNAL_SERVICES} -m comment --comment {ext_comment} {match} "
                    f"-d {ip} --dport {port} -j {ext_target}"
                )
        for ip in sp.load_balancer_ips:
            if has_eps:
                nrules.append(
                    f'-A {KUBE_SERVICES} -m comment --comment "{name} loadbalancer IP" {match} '
                    f"-d {ip} --dport {port} -j {lb_chain}"
                )
            if uses_fw:
                frules.append(
                    f'-A {KUBE_PROXY_FIREWALL} -m comment --comment "{name} traffic not accepted by '
                    f'{fw_chain}" {match} -d {ip} --dport {port} -j DROP'
                )
        if not has_external:
            for ip in sp.load_balancer_ips:
                frules.append(
                    f"-A {KUBE_EXTERNAL_SERVICES} -m comment --comment {ext_comment} {match} "
                    f"-d {ip} --dport {port} -j {ext_target}"
                )
        if sp.node_port:
            if has_eps:
                if localhost_nps and "localhost_nps_accepted_pkts" in config.nfacct_counters:
                    nrules.append(
                        f"-A {KUBE_NODEPORTS} -m comment --comment {name} {match} -d 127.0.0.0/8 "
                        f"--dport {sp.node_port} -m nfacct --nfacct-name localhost_nps_accepted_pkts "
                        f"-j {ext_chain}"
                    )
                nrules.append(
                    f"-A {KUBE_NODEPORTS} -m comment --comment {name} {match} --dport {sp.node_port} -j {ext_chain}"
                )
            if not has_external:
                frules.append(
                    f"-A {KUBE_EXTERNAL_SERVICES} -m comment --comment {ext_comment} "
                    f"-m addrtype --dst-type LOCAL {match} --dport {sp.node_port} -j {ext_target}"
                )
        if sp.health_check_node_port:
            frules.append(
                f'-A {KUBE_NODEPORTS} -m comment --comment "{name} health check node port" '
                f"-m tcp -p tcp --dport {sp.health_check_node_port} -j ACCEPT"
            )

        # Per-service chains: skipped from the restore input of a partial sync when the Service is unchanged.
        svc_chains: list[str] = []
        svc_rules: list[str] = []
        if has_internal:
            args = f'-m comment --comment "{name} cluster IP" {match} -d {sp.cluster_ip} --dport {port}'
            if config.masquerade_all:
                svc_rules.append(f"-A {internal_chain} {args} -j {KUBE_MARK_MASQ}")
            elif local_cidr:
                svc_rules.append(f"-A {internal_chain} {args} ! -s {local_cidr} -j {KUBE_MARK_MASQ}")
        if uses_ext:
            svc_chains.append(ext_chain)
            if not sp.external_local:
                svc_rules.append(
                    f'-A {ext_chain} -m comment --comment "masquerade traffic for {name} external '
                    f'destinations" -j {KUBE_MARK_MASQ}'
                )
            else:
                if local_cidr:
                    svc_rules.append(
                        f'-A {ext_chain} -m comment --comment "pod traffic for {name} external '
                        f'destinations" -s {local_cidr} -j {cluster_chain}'
                    )
                svc_rules.append(
                    f'-A {ext_chain} -m comment --comment "masquerade LOCAL traffic for {name} '
                    f'external destinations" -m addrtype --src-type LOCAL -j {KUBE_MARK_MASQ}'
                )
                svc_rules.append(
                    f'-A {ext_chain} -m comment --comment "route LOCAL traffic for {name} external '
                    f'destinations" -m addrtype --src-type LOCAL -j {cluster_chain}'
                )
            if has_external:
                svc_rules.append(f"-A {ext_chain} -j {external_policy_chain}")
        if uses_fw:
            svc_chains.append(fw_chain)
            head = f'-A {fw_chain} -m comment --comment "{name} loadbalancer IP"'
            allow_from_node = False
            for cidr in sp.source_ranges:
                svc_rules.append(f"{head} -s {cidr} -j {ext_chain}")
                allow_from_node = allow_from_node or parse_ip(config.node_ip) in parse_cidr(cidr)
            if allow_from_node:
                svc_rules += [f"{head} -s {ip} -j {ext_chain}" for ip in sp.load_balancer_ips]
            svc_rules.append(
                f'-A {fw_chain} -m comment --comment "other traffic to {name} will be dropped by {KUBE_PROXY_FIREWALL}"'
            )
        for used, chain, eps in (
            (plan.uses_cluster_chain, cluster_chain, cluster_eps),
            (plan.uses_local_chain, local_chain, local_eps),
        ):
            if used:
                svc_chains.append(chain)
                _endpoint_rules(svc_rules, sp, chain, eps, large)
        for ep in reachable:
            sep = endpoint_chain(sp, ep.address)
            svc_chains.append(sep)
            args = f"-A {sep}" + ("" if large else f" -m comment --comment {name}")
            svc_rules.append(f"{args} -s {ep.ip} -j {KUBE_MARK_MASQ}")
            if sp.affinity_timeout:
                args += f" -m recent --name {sep} --set"
            svc_rules.append(f"{args} {match} -j DNAT --to-destination {ep.address}")
        out.work.add(sp.service_key, len(frules) + len(nrules) - top, len(svc_chains) + len(svc_rules))
        nchains += svc_chains
        nrules += svc_rules

    cidrs = config.node_port_cidrs("iptables")
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
    else:
        for ip in config.node_port_ips("iptables"):
            if ip in ("127.0.0.1", "::1") and (config.ipv6 or not localhost_nps):
                continue
            nrules.append(f"{tail} -d {ip} -j {KUBE_NODEPORTS}")
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
    lines = len(fchains) + len(frules) + len(nchains) + len(nrules)
    out.work.base = lines - sum(map(sum, out.work.per_service.values()))
    return out


def _endpoint_rules(rules: list[str], sp: ServicePortInfo, chain: str, eps, large: bool) -> None:
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
