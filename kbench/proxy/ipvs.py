"""IPVS mode: the kernel's virtual-server table and schedulers, and what kube-proxy programs into them.

Kernel (Linux ``net/netfilter/ipvs``): ``ip_vs_ctl.c`` keeps virtual servers in a 256-bucket hash table keyed by
``ip_vs_svc_hashkey`` (protocol, address, port; the netns pointer term is taken as 0), new entries at the head of
their bucket, and each service's real servers in a list, new ones at the head. Schedulers follow ``ip_vs_rr.c``
(continue after the last pick, skipping weight 0), ``ip_vs_wrr.c`` (current weight stepping down by the gcd),
``ip_vs_lc.c`` (least ``activeconns << 8 | inactconns``, first in list order on ties) and ``ip_vs_sh.c``
(256-slot table filled round-robin by weight, looked up with ``hash_32``). A virtual server without real servers
answers ICMP port unreachable (``ip_vs_leave``), reported here as REJECT.

kube-proxy (kubernetes v1.35 ``pkg/proxy/ipvs/proxier.go``): one virtual server per ClusterIP, external IP,
load-balancer IP and node IP (NodePort) of each service port, weight-1 real servers (Local policy: local endpoints,
falling back to cluster endpoints, PR 97081), ``persistent`` with the affinity timeout for ClientIP affinity, plus
ipsets and a constant set of iptables rules that match them (``writeIptablesRules``).
"""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass, field

from kbench.api.network import parse_cidr, parse_ip
from kbench.proxy.model import ProxierConfig, ServicePortInfo, SyncWork

SVC_TAB_BITS = 8
SVC_TAB_SIZE = 1 << SVC_TAB_BITS
SH_TAB_BITS = 8
SH_TAB_SIZE = 1 << SH_TAB_BITS
GOLDEN_RATIO_32 = 0x61C88647
PROTO_NUMBERS = {"tcp": 6, "udp": 17, "sctp": 132}


def _fold(address) -> int:
    """``ntohl(addr_fold)``: the IPv4 address, or the xor of an IPv6 address's four 32-bit words."""
    value = int(address)
    if address.version == 4:
        return value
    return (value >> 96) ^ ((value >> 64) & 0xFFFFFFFF) ^ ((value >> 32) & 0xFFFFFFFF) ^ (value & 0xFFFFFFFF)


def svc_hashkey(protocol: int, address, port: int) -> int:
    """``ip_vs_svc_hashkey`` with the netns term 0."""
    return (protocol ^ _fold(address) ^ (port >> SVC_TAB_BITS) ^ port) & (SVC_TAB_SIZE - 1)


def hash_32(value: int, bits: int) -> int:
    """include/linux/hash.h ``hash_32``: multiply by GOLDEN_RATIO_32 (mod 2^32), keep the top ``bits``."""
    return ((value * GOLDEN_RATIO_32) & 0xFFFFFFFF) >> (32 - bits)


def sh_hashkey(address, port: int = 0, offset: int = 0) -> int:
    """``ip_vs_sh_hashkey`` (the port counts only with the sh-port flag, which kube-proxy does not set)."""
    return (offset + hash_32((port + _fold(address)) & 0xFFFFFFFF, SH_TAB_BITS)) & (SH_TAB_SIZE - 1)


@dataclass
class RealServer:
    """An IPVS real server (an endpoint) with its weight and connection counters."""

    ip: str
    port: int
    weight: int = 1
    active: int = 0
    inactive: int = 0

    @property
    def address(self) -> str:
        """``ip:port`` as ipvsadm and the tracers write it (IPv6 in brackets)."""
        return f"[{self.ip}]:{self.port}" if ":" in self.ip else f"{self.ip}:{self.port}"

    @property
    def available(self) -> bool:
        """Schedulable: weight above 0 (the kernel's schedulers skip weight-0 servers)."""
        return self.weight > 0


@dataclass
class VirtualServer:
    """One IPVS service; ``dests`` in kernel list order (the latest added first)."""

    protocol: str
    ip: str
    port: int
    scheduler: str = "rr"
    persistent: int = 0
    """Persistence timeout in seconds (kube-proxy's ClientIP affinity); 0 when not persistent."""
    bind: bool = True
    """Address put on the dummy interface kube-ipvs0 (ClusterIPs, and external / LB IPs the node does not own)."""
    service: str = ""
    dests: list[RealServer] = field(default_factory=list)
    rr_pos: int = -1
    wrr: list[int] = field(default_factory=lambda: [-1, 0, 0, 1])
    """ip_vs_wrr_mark: current list position (-1: the list head), cw, mw, di."""
    sh_table: list[int] = field(default_factory=list)

    @property
    def address(self):
        """The virtual address, parsed."""
        return parse_ip(self.ip)

    def add_dest(self, dest: RealServer) -> None:
        """``__ip_vs_update_dest``: ``list_add_rcu`` at the head, then the scheduler's add/update hook."""
        self.dests.insert(0, dest)
        self.dests_changed()

    def dests_changed(self) -> None:
        """The scheduler's update hook after the real servers changed (wrr: gcd and max weight; sh: its table)."""
        if self.scheduler == "wrr":
            weights = [d.weight for d in self.dests]
            di = 0
            for w in weights:
                if w > 0:
                    di = math.gcd(w, di) if di else w
            di = di or 1
            mw = max(weights, default=0) - (di - 1)
            cw = self.wrr[1]
            if cw > mw or not cw:
                cw = mw
            elif di > 1:
                cw = (cw // di) * di + 1
            self.wrr = [-1, cw, mw, di]
        elif self.scheduler == "sh":
            self.sh_table = sh_fill([d.weight for d in self.dests])
        elif self.rr_pos >= len(self.dests):
            self.rr_pos = -1

    def schedule(self, source=None) -> int | None:
        """The index (in ``dests``) of the real server the scheduler picks, or ``None`` (no destination)."""
        ok = [d.available for d in self.dests]
        if self.scheduler == "rr":
            pick = rr_pick(ok, self.rr_pos)
            if pick is not None:
                self.rr_pos = pick
        elif self.scheduler == "wrr":
            pick = wrr_pick([d.weight for d in self.dests], self.wrr)
        elif self.scheduler == "lc":
            pick = lc_pick(self.dests)
        else:
            pick = self.sh_table[sh_hashkey(parse_ip(source))] if self.sh_table else -1
            pick = pick if pick >= 0 and ok[pick] else None
        if pick is not None:
            self.dests[pick].active += 1
        return pick


def rr_pick(ok: list[bool], pos: int) -> int | None:
    """``ip_vs_rr_schedule``: the first usable server after ``pos``, wrapping once (to ``pos`` itself)."""
    for i in range(pos + 1, len(ok)):
        if ok[i]:
            return i
    if pos < 0:
        return None
    for i in range(pos + 1):
        if ok[i]:
            return i
    return None


def wrr_pick(weights: list[int], mark: list[int]) -> int | None:
    """``ip_vs_wrr_schedule``; ``mark`` = [cl, cw, mw, di] is updated in place."""
    cl, cw, mw, di = mark
    if mw == 0:
        return None
    pos, last, stop = cl, cl, None
    last_pass = restarted = False
    while True:
        for i in range(pos + 1, len(weights)):
            if weights[i] >= cw and weights[i] > 0:
                mark[0], mark[1] = i, cw
                return i
            if i == stop:
                mark[1] = cw
                return None
        pos = -1
        cw -= di
        if cw <= 0:
            cw = mw
            if last_pass or last == -1:
                mark[1] = cw
                return None
            restarted = True
        last_pass = cw <= di
        if last_pass and restarted and last != -1:
            stop = last


def lc_pick(dests: list[RealServer]) -> int | None:
    """``ip_vs_lc_schedule``: least ``ip_vs_dest_conn_overhead``, the first on ties."""
    best, best_overhead = None, 0
    for i, d in enumerate(dests):
        if d.weight == 0:
            continue
        overhead = (d.active << 8) + d.inactive
        if best is None or overhead < best_overhead:
            best, best_overhead = i, overhead
    return best


def sh_fill(weights: list[int]) -> list[int]:
    """``ip_vs_sh_reassign``: bucket i gets the current server, which keeps ``weight`` consecutive buckets."""
    if not weights:
        return [-1] * SH_TAB_SIZE
    table, cur, count = [], 0, 0
    for _ in range(SH_TAB_SIZE):
        table.append(cur)
        count += 1
        if count >= weights[cur]:
            cur, count = (cur + 1) % len(weights), 0
    return table


class IpvsTable:
    """``ip_vs_svc_table``: 256 buckets of virtual servers, each bucket newest first."""

    def __init__(self) -> None:
        self.buckets: list[list[VirtualServer]] = [[] for _ in range(SVC_TAB_SIZE)]
        self.services: list[VirtualServer] = []

    def add(self, vs: VirtualServer) -> None:
        """``ip_vs_svc_hash``: at the head of its bucket."""
        self.buckets[svc_hashkey(PROTO_NUMBERS[vs.protocol], vs.address, vs.port)].insert(0, vs)
        self.services.append(vs)

    def find(self, protocol: str, address, port: int) -> tuple[VirtualServer | None, int]:
        """``__ip_vs_service_find``: the virtual server and how many bucket entries were compared."""
        number = PROTO_NUMBERS[protocol]
        compared = 0
        for vs in self.buckets[svc_hashkey(number, address, port)]:
            compared += 1
            if vs.port == port and vs.protocol == protocol and vs.address == address:
                return vs, compared
        return None, compared


@dataclass
class IpSet:
    """An ipset as kube-proxy fills it; ``contains`` resolves ``-m set --match-set NAME FLAGS``."""

    name: str
    type: str
    comment: str
    entries: set[tuple] = field(default_factory=set)

    def contains(self, flags: str, packet) -> bool:
        """Whether ``packet`` matches ``-m set --match-set <name> <flags>`` (flags: src / dst per key part)."""
        dirs = flags.split(",")
        pick = {"src": packet.source, "dst": packet.destination}
        if self.type == "bitmap:port":
            return packet.dport in {e[0] for e in self.entries}
        if self.type == "hash:ip":
            return (str(pick[dirs[0]]),) in self.entries
        key = (str(pick[dirs[0]]), packet.protocol, packet.dport)
        if self.type == "hash:ip,port":
            return key in self.entries
        if self.type == "hash:ip,port,ip":
            return (*key, str(pick[dirs[2]])) in self.entries
        third = pick[dirs[2]]  # hash:ip,port,net
        return any(
            e[:3] == key and third.version == ipaddress.ip_network(e[3]).version and third in ipaddress.ip_network(e[3])
            for e in self.entries
        )

    def entry_text(self, entry: tuple) -> str:
        """The entry as ``ipset list`` prints it, e.g. ``172.30.0.41,tcp:80``."""
        if self.type in ("bitmap:port", "hash:ip"):
            return str(entry[0])
        text = f"{entry[0]},{entry[1]}:{entry[2]}"
        return text + (f",{entry[3]}" if len(entry) > 3 else "")


IPSETS = (
    ("KUBE-LOOP-BACK", "hash:ip,port,ip", "Kubernetes endpoints dst ip:port, source ip for solving hairpin purpose"),
    ("KUBE-CLUSTER-IP", "hash:ip,port", "Kubernetes service cluster ip + port for masquerade purpose"),
    ("KUBE-EXTERNAL-IP", "hash:ip,port", "Kubernetes service external ip + port for masquerade and filter purpose"),
    (
        "KUBE-EXTERNAL-IP-LOCAL",
        "hash:ip,port",
        "Kubernetes service external ip + port with externalTrafficPolicy=local",
    ),
    ("KUBE-LOAD-BALANCER", "hash:ip,port", "Kubernetes service lb portal"),
    (
        "KUBE-LOAD-BALANCER-LOCAL",
        "hash:ip,port",
        "Kubernetes service load balancer ip + port with externalTrafficPolicy=local",
    ),
    (
        "KUBE-LOAD-BALANCER-FW",
        "hash:ip,port",
        "Kubernetes service load balancer ip + port for load balancer with sourceRange",
    ),
    (
        "KUBE-LOAD-BALANCER-SOURCE-IP",
        "hash:ip,port,ip",
        "Kubernetes service load balancer ip + port + source IP for packet filter purpose",
    ),
    (
        "KUBE-LOAD-BALANCER-SOURCE-CIDR",
        "hash:ip,port,net",
        "Kubernetes service load balancer ip + port + source cidr for packet filter purpose",
    ),
    ("KUBE-NODE-PORT-TCP", "bitmap:port", "Kubernetes nodeport TCP port for masquerade purpose"),
    ("KUBE-NODE-PORT-LOCAL-TCP", "bitmap:port", "Kubernetes nodeport TCP port with externalTrafficPolicy=local"),
    ("KUBE-NODE-PORT-UDP", "bitmap:port", "Kubernetes nodeport UDP port for masquerade purpose"),
    ("KUBE-NODE-PORT-LOCAL-UDP", "bitmap:port", "Kubernetes nodeport UDP port with externalTrafficPolicy=local"),
    (
        "KUBE-NODE-PORT-SCTP-HASH",
        "hash:ip,port",
        "Kubernetes nodeport SCTP port for masquerade purpose with type 'hash ip:port'",
    ),
    (
        "KUBE-NODE-PORT-LOCAL-SCTP-HASH",
        "hash:ip,port",
        "Kubernetes nodeport SCTP port with externalTrafficPolicy=local with type 'hash ip:port'",
    ),
    ("KUBE-HEALTH-CHECK-NODE-PORT", "bitmap:port", "Kubernetes health check node port"),
    ("KUBE-IPVS-IPS", "hash:ip", "Addresses on the ipvs interface"),
)
"""pkg/proxy/ipvs/ipset.go: the sets kube-proxy keeps (IPv4 names; IPv6 ones add ``6-`` after ``KUBE-``)."""

# (table, chain, set, match flags, protocol, target) of writeIptablesRules's ipsetWithIptablesChain, in order
_IPSET_CHAINS = (
    ("nat", "KUBE-POSTROUTING", "KUBE-LOOP-BACK", "dst,dst,src", "", "MASQUERADE"),
    ("nat", "KUBE-SERVICES", "KUBE-LOAD-BALANCER", "dst,dst", "", "KUBE-LOAD-BALANCER"),
    ("nat", "KUBE-LOAD-BALANCER", "KUBE-LOAD-BALANCER-LOCAL", "dst,dst", "", "RETURN"),
    ("nat", "KUBE-NODE-PORT", "KUBE-NODE-PORT-LOCAL-TCP", "dst", "tcp", "RETURN"),
    ("nat", "KUBE-NODE-PORT", "KUBE-NODE-PORT-TCP", "dst", "tcp", "KUBE-MARK-MASQ"),
    ("nat", "KUBE-NODE-PORT", "KUBE-NODE-PORT-LOCAL-UDP", "dst", "udp", "RETURN"),
    ("nat", "KUBE-NODE-PORT", "KUBE-NODE-PORT-UDP", "dst", "udp", "KUBE-MARK-MASQ"),
    ("nat", "KUBE-NODE-PORT", "KUBE-NODE-PORT-LOCAL-SCTP-HASH", "dst,dst", "sctp", "RETURN"),
    ("nat", "KUBE-NODE-PORT", "KUBE-NODE-PORT-SCTP-HASH", "dst,dst", "sctp", "KUBE-MARK-MASQ"),
    ("filter", "KUBE-PROXY-FIREWALL", "KUBE-LOAD-BALANCER-FW", "dst,dst", "", "KUBE-SOURCE-RANGES-FIREWALL"),
    ("filter", "KUBE-SOURCE-RANGES-FIREWALL", "KUBE-LOAD-BALANCER-SOURCE-CIDR", "dst,dst,src", "", "RETURN"),
    ("filter", "KUBE-SOURCE-RANGES-FIREWALL", "KUBE-LOAD-BALANCER-SOURCE-IP", "dst,dst,src", "", "RETURN"),
)


@dataclass
class IpvsRules:
    """One sync's IPVS state: virtual servers, ipsets and the iptables rules that match the sets."""

    table: IpvsTable
    ipsets: dict[str, IpSet]
    """By set name (``KUBE-6-`` names in an IPv6 proxier)."""
    rules: dict[str, list[str]]
    chains: dict[str, list[str]]
    work: SyncWork = field(default_factory=SyncWork)
    """Per Service: virtual servers checked on every sync, and the virtual servers, real servers and set entries
    written when it changed; ``base`` is the iptables restore."""
    services: int = 0
    endpoints: int = 0

    def text(self) -> str:
        """The iptables rules as ``iptables-restore`` input."""
        out = []
        for table in ("filter", "nat"):
            out += [f"*{table}", *(f":{c} - [0:0]" for c in self.chains[table]), *self.rules[table], "COMMIT"]
        return "\n".join(out) + "\n"

    @property
    def rule_count(self) -> int:
        """iptables rules in both tables (virtual servers and ipset entries not counted)."""
        return len(self.rules["filter"]) + len(self.rules["nat"])

    def ipvsadm(self) -> str:
        """The virtual servers as ``ipvsadm -Ln`` lists them."""
        out = [
            "IP Virtual Server version 1.2.1 (size=4096)",
            "Prot LocalAddress:Port Scheduler Flags",
            "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn",
        ]
        for vs in self.table.services:
            host = f"[{vs.ip}]" if ":" in vs.ip else vs.ip
            flags = f" persistent {vs.persistent}" if vs.persistent else ""
            out.append(f"{vs.protocol.upper():<4} {host}:{vs.port} {vs.scheduler}{flags}")
            out += [f"  -> {d.address:<28} Masq    {d.weight:<6} {d.active:<10} {d.inactive}" for d in vs.dests]
        return "\n".join(out) + "\n"


def compile_rules(sps: list[ServicePortInfo], config: ProxierConfig) -> IpvsRules:
    """Virtual servers, ipsets and iptables rules for the service ports (``syncProxyRules`` in IPVS mode)."""
    prefix = "KUBE-6-" if config.ipv6 else "KUBE-"
    sets = {n: IpSet(n.replace("KUBE-", prefix, 1), t, c) for n, t, c in IPSETS}
    table = IpvsTable()
    node_addresses = {str(a) for a in config.local_addresses()}
    node_port_ips = [ip for ip in config.node_port_ips("ipvs") if not parse_ip(ip).is_loopback]
    objects = 0
    work = SyncWork()
    for sp in sps:
        cluster_eps, local_eps, _, has_eps = sp.categorize()
        proto = sp.proto
        before = objects, len(table.services), sum(len(s.entries) for s in sets.values())

        def add(
            ip: str,
            port: int,
            bind: bool,
            local_policy: bool,
            sp=sp,
            proto=proto,
            local_eps=local_eps,
            cluster_eps=cluster_eps,
        ) -> None:
            nonlocal objects
            vs = VirtualServer(proto, ip, port, config.ipvs_scheduler, sp.affinity_timeout, bind, sp.service_key)
            eps = (local_eps or cluster_eps) if local_policy else cluster_eps
            for ep in eps:
                vs.add_dest(RealServer(ep.ip, ep.port))
            table.add(vs)
            objects += 1 + len(eps)

        sets["KUBE-CLUSTER-IP"].entries.add((sp.cluster_ip, proto, sp.port))
        sets["KUBE-IPVS-IPS"].entries.add((sp.cluster_ip,))
        add(sp.cluster_ip, sp.port, True, sp.internal_local)
        for ip in sp.external_ips:
            kind = "KUBE-EXTERNAL-IP-LOCAL" if sp.external_local else "KUBE-EXTERNAL-IP"
            sets[kind].entries.add((ip, proto, sp.port))
            bind = ip not in node_addresses
            if bind:
                sets["KUBE-IPVS-IPS"].entries.add((ip,))
            add(ip, sp.port, bind, sp.external_local)
        for ip in sp.load_balancer_ips:
            sets["KUBE-LOAD-BALANCER"].entries.add((ip, proto, sp.port))
            if sp.external_local:
                sets["KUBE-LOAD-BALANCER-LOCAL"].entries.add((ip, proto, sp.port))
            if sp.source_ranges:
                sets["KUBE-LOAD-BALANCER-FW"].entries.add((ip, proto, sp.port))
                for cidr in sp.source_ranges:
                    sets["KUBE-LOAD-BALANCER-SOURCE-CIDR"].entries.add((ip, proto, sp.port, cidr))
                if any(parse_ip(config.node_ip) in parse_cidr(c) for c in sp.source_ranges):
                    sets["KUBE-LOAD-BALANCER-SOURCE-IP"].entries.add((ip, proto, sp.port, ip))
            bind = ip not in node_addresses
            if bind:
                sets["KUBE-IPVS-IPS"].entries.add((ip,))
            add(ip, sp.port, bind, sp.external_local)
        if sp.node_port:
            kind = "SCTP-HASH" if proto == "sctp" else proto.upper()
            local = "LOCAL-" if sp.external_local else ""
            if proto == "sctp":
                for ip in node_port_ips:
                    sets[f"KUBE-NODE-PORT-{local}{kind}"].entries.add((ip, proto, sp.node_port))
            else:
                sets[f"KUBE-NODE-PORT-{local}{kind}"].entries.add((sp.node_port,))
            for ip in node_port_ips:
                add(ip, sp.node_port, False, sp.external_local)
        if sp.health_check_node_port:
            sets["KUBE-HEALTH-CHECK-NODE-PORT"].entries.add((sp.health_check_node_port,))
        for ep in cluster_eps + [e for e in local_eps if e not in cluster_eps]:
            sets["KUBE-LOOP-BACK"].entries.add((ep.ip, proto, ep.port, ep.ip))
        entries = sum(len(s.entries) for s in sets.values()) - before[2]
        work.add(sp.service_key, len(table.services) - before[1], objects - before[0] + entries)
    rules, chains = _iptables_rules(sets, config)
    work.base = sum(len(v) for v in rules.values()) + sum(len(v) for v in chains.values())
    return IpvsRules(
        table, {s.name: s for s in sets.values()}, rules, chains, work, len(sps), sum(len(sp.endpoints) for sp in sps)
    )


def _iptables_rules(sets: dict[str, IpSet], config: ProxierConfig) -> tuple[dict, dict]:
    """``writeIptablesRules``: the rules are constant; each ipset rule exists only while its set has entries."""
    mark = config.masquerade_mark
    nat: list[str] = []
    filt: list[str] = []
    name = {n: s.name for n, s in sets.items()}

    def match(key: str, flags: str) -> str:
        return f'-m comment --comment "{sets[key].comment}" -m set --match-set {name[key]} {flags}'

    nat.append(f"-A KUBE-SERVICES -s {'::1/128' if config.ipv6 else '127.0.0.0/8'} -j RETURN")
    if sets["KUBE-CLUSTER-IP"].entries:
        if config.masquerade_all:
            nat.append(f"-A KUBE-SERVICES {match('KUBE-CLUSTER-IP', 'dst,dst')} -j KUBE-MARK-MASQ")
        elif config.local_cidr:
            nat.append(
                f"-A KUBE-SERVICES {match('KUBE-CLUSTER-IP', 'dst,dst')} ! -s {config.local_cidr} -j KUBE-MARK-MASQ"
            )
        else:
            nat.append(f"-A KUBE-SERVICES {match('KUBE-CLUSTER-IP', 'src,dst')} -j KUBE-MARK-MASQ")
    for table, chain, key, flags, proto, target in _IPSET_CHAINS:
        if sets[key].entries:
            rule = f"-A {chain}" + (f" -p {proto}" if proto else "") + f" {match(key, flags)} -j {target}"
            (nat if table == "nat" else filt).append(rule)
    for key in ("KUBE-EXTERNAL-IP", "KUBE-EXTERNAL-IP-LOCAL"):
        if sets[key].entries:
            if key == "KUBE-EXTERNAL-IP":
                nat.append(f"-A KUBE-SERVICES {match(key, 'dst,dst')} -j KUBE-MARK-MASQ")
            nat.append(
                f"-A KUBE-SERVICES {match(key, 'dst,dst')} -m physdev ! --physdev-is-in "
                "-m addrtype ! --src-type LOCAL -j ACCEPT"
            )
            nat.append(f"-A KUBE-SERVICES {match(key, 'dst,dst')} -m addrtype --dst-type LOCAL -j ACCEPT")
    nat.append("-A KUBE-SERVICES -m addrtype --dst-type LOCAL -j KUBE-NODE-PORT")
    nat.append("-A KUBE-LOAD-BALANCER -j KUBE-MARK-MASQ")
    filt.append("-A KUBE-SOURCE-RANGES-FIREWALL -j DROP")
    for key in ("KUBE-CLUSTER-IP", "KUBE-LOAD-BALANCER"):
        if sets[key].entries:
            nat.append(f"-A KUBE-SERVICES -m set --match-set {name[key]} dst,dst -j ACCEPT")
    filt.append(
        f'-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark {mark}/{mark} -j ACCEPT'
    )
    filt.append(
        '-A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack '
        "--ctstate RELATED,ESTABLISHED -j ACCEPT"
    )
    filt.append(f"-A KUBE-NODE-PORT {match('KUBE-HEALTH-CHECK-NODE-PORT', 'dst')} -j ACCEPT")
    for key in ("KUBE-LOAD-BALANCER", "KUBE-CLUSTER-IP", "KUBE-EXTERNAL-IP", "KUBE-EXTERNAL-IP-LOCAL"):
        filt.append(f"-A KUBE-IPVS-FILTER -m set --match-set {name[key]} dst,dst -j RETURN")
    filt.append(f"-A KUBE-IPVS-FILTER -m set --match-set {name['KUBE-HEALTH-CHECK-NODE-PORT']} dst -j RETURN")
    filt.append(
        f"-A KUBE-IPVS-FILTER -m conntrack --ctstate NEW -m set --match-set {name['KUBE-IPVS-IPS']} dst -j REJECT"
    )
    nat.append(f"-A KUBE-POSTROUTING -m mark ! --mark {mark}/{mark} -j RETURN")
    nat.append(f"-A KUBE-POSTROUTING -j MARK --xor-mark {mark}")
    nat.append(
        '-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE'
        + (" --random-fully" if config.random_fully else "")
    )
    nat.append(f"-A KUBE-MARK-MASQ -j MARK --or-mark {mark}")
    chains = {
        "nat": ["KUBE-SERVICES", "KUBE-POSTROUTING", "KUBE-NODE-PORT", "KUBE-LOAD-BALANCER", "KUBE-MARK-MASQ"],
        "filter": [
            "KUBE-FORWARD",
            "KUBE-NODE-PORT",
            "KUBE-PROXY-FIREWALL",
            "KUBE-SOURCE-RANGES-FIREWALL",
            "KUBE-IPVS-FILTER",
            "KUBE-IPVS-OUT-FILTER",
        ],
    }
    return {"nat": nat, "filter": filt}, chains
