"""Fast paths: nftables' verdict map and IPVS' service table resolved at build time, checked against the rules.

kube-proxy's nftables table sends a new connection through ``services``' verdict map to a service chain
(masquerade off-cluster sources, ``numgen`` over endpoint chains) and an endpoint chain (hairpin masquerade,
DNAT). For every ``service-ips`` element whose chains have exactly that shape, and whose packets no
``firewall-ips`` element and no post-DNAT filter rule can touch (checked by running the rule machine itself
on each endpoint), the fast path keeps a record: the masquerade test, the endpoints, and the rules the rule
machine evaluates for them. Matching then needs one map lookup and one endpoint read per packet; packets
without a record (NodePorts, external and load-balancer IPs, affinity, firewalls) run through the rule
machine. The tracer agreement tests run both paths.

IPVS mode's iptables rules test a packet's source only against a few CIDRs and ``addrtype LOCAL``, so for each
virtual server the rule machine is run once per source class (which of those CIDRs hold the source, whether
it is local); the fast path then looks the virtual server up by address, takes the class's outcome, adds the
comparisons the kernel's bucket walk makes (the server's position in its bucket) and schedules as the kernel.
Virtual servers that an ipset keyed on the source could touch (load-balancer source ranges) are left out.
"""

from __future__ import annotations

import dataclasses
import ipaddress

import numpy as np

from kbench.proxy import _fast_kernels as FK
from kbench.proxy import _kernels as K
from kbench.proxy import iptables as ipt
from kbench.proxy.ipvs import PROTO_NUMBERS, IpvsRules
from kbench.proxy.nftables import MARK_MASQ
from kbench.proxy.nftrules import NftProgram, NftRule
from kbench.proxy.program import (
    FastPath,
    MatchState,
    Packets,
    Program,
    cache_lines,
    encode,
    encode_cidr,
    no_ipvs,
    run_rule_machine,
)

BASE = {  # the base-chain skeleton the fast path assumes (nftables.py _base)
    "filter-prerouting-pre-dnat": [((("ct_new",),), None, ("jump", "firewall-check"))],
    "firewall-check": [((), (3, "firewall-ips"), None)],
    "nat-prerouting": [((), None, ("jump", "services"))],
}


def _table(rows: list[tuple[int, int, int, int, int]]) -> np.ndarray:
    """The records as an open-addressing table at load <= 1/4."""
    cap = 1
    while cap < 4 * len(rows):
        cap *= 2
    H = cache_lines(cap, K.HROW, np.uint64)
    for hi, lo, pb, v0, v1 in rows:
        K.hash_insert(
            H, 0, cap - 1, np.uint64(hi), np.uint64(lo), np.uint64(pb), K.EMPTY, K.EMPTY, np.uint64(v0), np.uint64(v1)
        )
    return H


def _shape(rules: list[NftRule]) -> list[tuple]:
    return [(tuple(r.matches), r.lookup, r.verdict) for r in rules]


def _record(prog: NftProgram, key, chain: str, endpoint_ids: dict[str, int]):
    """(masquerade kind, CIDR, [(endpoint id, endpoint chain)]) if the service chain has the plain shape."""
    rules = prog.chains.get(chain, [])
    kind, cidr = 0, None
    if len(rules) == 2 and rules[0].verdict == ("jump", MARK_MASQ) and not rules[0].lookup:
        m = rules[0].matches
        if m == [("addr", "daddr", False, "cidrs", [key[0]])]:
            kind = 1
        elif (
            len(m) == 2
            and m[0] == ("addr", "daddr", False, "cidrs", [key[0]])
            and m[1][:4] == ("addr", "saddr", True, "cidrs")
            and len(m[1][4]) == 1
        ):
            kind, cidr = 2, m[1][4][0]
        else:
            return None
        rules = rules[1:]
    if len(rules) != 1 or not rules[0].numgen or rules[0].matches or rules[0].update_set:
        return None
    endpoints = []
    for verdict, target in rules[0].numgen:
        ep_rules = prog.chains.get(target, [])
        if verdict != "goto" or len(ep_rules) != 2:
            return None
        hairpin, dnat = ep_rules
        if (
            hairpin.verdict != ("jump", MARK_MASQ)
            or len(hairpin.matches) != 1
            or hairpin.matches[0][:4] != ("addr", "saddr", False, "cidrs")
            or dnat.matches != [("l4proto", key[1])]
            or dnat.verdict is None
            or dnat.verdict[0] != "dnat"
            or dnat.verdict[1] not in endpoint_ids
            or hairpin.matches[0][4] != [dnat.verdict[1].rsplit(":", 1)[0].strip("[]")]
        ):
            return None
        endpoints.append((endpoint_ids[dnat.verdict[1]], target))
    return kind, cidr, endpoints


def _post_dnat_reads_source(prog: NftProgram, program: Program) -> bool:
    """Whether any rule reachable from the post-DNAT filter chains looks at the source address."""
    stages = program.rules.STAGES
    nat_group = stages[stages[:, 2] == 0][0, 0]
    todo = [program.chains[c] for g, c, _ in stages if g > nat_group]
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for rule in prog.chains.get(name, []):
            if any(m[0] in ("addr", "fib") and m[1] == "saddr" for m in rule.matches):
                return True
            targets = [v for v in (rule.verdict, *rule.numgen) if v and v[0] in ("jump", "goto")]
            if rule.lookup:
                targets += [v for v in prog.maps.get(rule.lookup[1], {}).values() if v[0] in ("jump", "goto")]
            todo += [t for _, t in targets]
    return False


def build_nftables(prog: NftProgram, program: Program) -> FastPath | None:
    """The fast path of a compiled nftables program, or ``None`` if its base chains are not kube-proxy's."""
    if any(_shape(prog.chains.get(c, [])) != shape for c, shape in BASE.items()):
        return None
    services = prog.chains.get("services", [])
    mark = prog.chains.get(MARK_MASQ, [])
    if (
        not services
        or services[0].lookup != (3, "service-ips")
        or services[0].matches
        or len(mark) != 1
        or not mark[0].set_masq
    ):
        return None
    endpoint_ids = {a: i for i, a in enumerate(program.endpoints)}
    firewall = prog.maps.get("firewall-ips", {})
    records, keys = [], []
    for key, (verdict, chain) in prog.maps.get("service-ips", {}).items():
        if verdict == "goto" and key not in firewall:
            rec = _record(prog, key, chain, endpoint_ids)
            if rec is not None:
                records.append(rec)
                keys.append(key)
    if not records or _post_dnat_reads_source(prog, program):
        return None
    # rules evaluated, and the post-DNAT filter check, by the rule machine itself
    probe = _probe(program, [("0.0.0.1", k[1], k[0], int(k[2])) for k in keys])
    stages = program.rules.STAGES
    nat_group = int(stages[stages[:, 2] == 0][0, 0])
    post = dataclasses.replace(program, rules=program.rules._replace(STAGES=stages[stages[:, 0] > nat_group]))
    eps = sorted({ep for _, _, endpoints in records for ep, _ in endpoints})
    post_rows = [
        (
            ("0.0.0.1" if ":" not in program.endpoints[e] else "::2"),
            "tcp",
            program.endpoints[e].rsplit(":", 1)[0].strip("[]"),
            int(program.endpoints[e].rsplit(":", 1)[1]),
        )
        for e in eps
    ]
    clean = {}
    for proto in ("tcp", "udp", "sctp"):
        result = _probe(post, [(s, proto, d, p) for s, _, d, p in post_rows])
        clean[proto] = {e for e, kind in zip(eps, result.kind) if kind == K.OUT_NONE}
    cidrs: dict[str, int] = {}
    FE: list[tuple] = []
    rows = []
    chain_len = {name: len(rules) for name, rules in prog.chains.items()}
    for i, ((kind, cidr, endpoints), key) in enumerate(zip(records, keys)):
        chosen = int(probe.endpoint[i])
        if probe.kind[i] != K.OUT_DNAT or any(ep not in clean[key[1]] for ep, _ in endpoints):
            continue
        if cidr is not None and cidr not in cidrs:
            if len(cidrs) == 256:
                continue
            cidrs[cidr] = len(cidrs)
        chosen_chain = next(c for ep, c in endpoints if ep == chosen)
        # the probe came from 0.0.0.1: the service chain's masquerade rule (if any) jumped, the hairpin one not
        base = int(probe.rules[i]) - chain_len[chosen_chain] - (len(mark) if kind else 0)
        first = len(FE)
        for ep, c in endpoints:
            hi, lo = encode(program.endpoints[ep].rsplit(":", 1)[0].strip("[]"))
            FE.append((ep, base + chain_len[c], np.uint64(hi).astype(np.int64), np.uint64(lo).astype(np.int64)))
        hi, lo = encode(key[0])
        rows.append(
            (
                hi,
                lo,
                (PROTO_NUMBERS[key[1]] << 16) | int(key[2]),
                first << 10 | cidrs.get(cidr, 0) << 2 | kind,
                len(endpoints),
            )
        )
    if not rows:
        return None
    FC = np.array([encode_cidr(c) for c in sorted(cidrs, key=cidrs.__getitem__)] or [(0, 0, 0, 0)], np.uint64)
    endpoints = cache_lines(len(FE), 4, np.int64)
    endpoints[:] = np.array(FE, np.int64).reshape(-1, 4)
    tables = FK.NftFastTables(_table(rows), FC.reshape(-1, 4), endpoints, len(mark))
    return FastPath("nftables", tables, records=len(rows))


def build_ipvs(state: IpvsRules, program: Program) -> FastPath | None:
    """The IPVS fast path of a compiled program (``state`` the rules it was lowered from), or ``None``."""
    parsed = ipt.parse(state.text())
    flags = [(name, f.split(",")) for r in parsed for name, f, _ in r.match_sets]
    if any(parts[0] == "src" for _, parts in flags):
        return None
    blocked = {e[:3] for name, parts in flags if parts[2:3] == ["src"] for e in state.ipsets[name].entries}
    cidrs = sorted({r.source for r in parsed if r.source})
    if len(cidrs) > 8:
        return None
    nets = [encode_cidr(c) for c in cidrs]
    local = {encode(str(a)) for a in program_local(program)}

    def cls(address: str) -> int:
        hi, lo = encode(address)
        bits = sum(1 << i for i, n in enumerate(nets) if hi & n[2] == n[0] and lo & n[3] == n[1])
        return bits | ((1 << len(nets)) if (hi, lo) in local else 0)

    candidates = ["0.0.0.1", "::2", *(str(a) for a in program_local(program))]
    for c in cidrs:
        net = ipaddress.ip_network(c)
        candidates.append(str(net.network_address + (1 if net.num_addresses > 1 else 0)))
    representative: dict[int, str] = {}
    for address in candidates:
        representative.setdefault(cls(address), address)
    services = [vs for bucket in state.table.buckets for vs in bucket]  # lowering.ipvs_tables' order
    position = {id(vs): i + 1 for bucket in state.table.buckets for i, vs in enumerate(bucket)}
    n_classes = 1 << (len(nets) + 1)
    probes, keys = [], []
    for v, vs in enumerate(services):
        if (vs.ip, vs.protocol, vs.port) in blocked:
            continue
        keys.append(v)
        probes += [(representative[c], vs.protocol, vs.ip, vs.port) for c in sorted(representative)]
    if not keys:
        return None
    result = _probe(dataclasses.replace(program, ipvs=no_ipvs()), probes)
    CT = np.full((len(keys) * n_classes, 3), -1, np.int64)
    rows, j = [], 0
    for r, v in enumerate(keys):
        vs = services[v]
        for source in sorted(representative):
            outcome = int(result.kind[j])
            if outcome != K.OUT_DNAT:
                CT[r * n_classes + source] = (outcome, int(result.masq[j]), int(result.rules[j]))
            j += 1
        hi, lo = encode(vs.ip)
        rows.append((hi, lo, (PROTO_NUMBERS[vs.protocol] << 16) | vs.port, (r * n_classes) << 20 | v, position[id(vs)]))
    tables = FK.IpvsFastTables(_table(rows), np.array(nets, np.uint64).reshape(-1, 4), CT, program.rules.LOCAL)
    return FastPath("ipvs", tables, records=len(rows))


def _probe(program: Program, rows: list[tuple[str, str, str, int]]) -> K.Verdicts:
    """What the rule machine, fresh, does with these (source, protocol, destination, port) packets."""
    return run_rule_machine(program, Packets.of(rows), MatchState.fresh(program))


def program_local(program: Program) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """The node's own addresses, as the program's LOCAL rows."""
    out = []
    for hi, lo in program.rules.LOCAL:
        value = (int(hi) << 64) | int(lo)
        out.append(ipaddress.ip_address(value & 0xFFFFFFFF if value >> 32 == 0xFFFF else value))
    return out
