"""Lowering: a mode's rules (iptables-restore text, nftables objects, the IPVS table and its ipsets and iptables
rules) as a :class:`~kbench.proxy.program.Program` for the rule machine.

The iptables rows read the rules back from the restore text (``iptables.parse``), as the tracer does, so what is
matched is what kube-proxy wrote; nftables rows come from the parsed ruleset (``nftrules.program``); IPVS' service
table is laid out bucket by bucket, in the kernel's hash order.
"""

from __future__ import annotations

import numpy as np

from kbench.proxy import _kernels as K
from kbench.proxy import iptables as ipt
from kbench.proxy.ipvs import PROTO_NUMBERS, IpvsRules
from kbench.proxy.model import ProxierConfig
from kbench.proxy.nftables import NftRuleset
from kbench.proxy.nftrules import NftProgram, program
from kbench.proxy.program import Program, ProgramBuilder, encode

CT_BITS = {
    "NEW": K.CT_NEW,
    "ESTABLISHED": K.CT_ESTABLISHED,
    "RELATED": K.CT_RELATED,
    "INVALID": K.CT_INVALID,
    "DNAT": K.CT_DNAT,
}
"""conntrack state names -> the kernels' bits."""
VERDICTS = {
    "jump": K.A_JUMP,
    "goto": K.A_GOTO,
    "return": K.A_RETURN,
    "accept": K.A_ACCEPT,
    "drop": K.A_DROP,
    "reject": K.A_REJECT,
}
"""Verdict names -> the kernels' actions."""
IPSET_KINDS = {
    "hash:ip": K.IPSET_IP,
    "hash:ip,port": K.IPSET_IP_PORT,
    "hash:ip,port,ip": K.IPSET_IP_PORT_IP,
    "hash:ip,port,net": K.IPSET_IP_PORT_NET,
    "bitmap:port": K.IPSET_PORT,
}
"""ipset types -> the kernels' ipset kinds."""
IPTABLES_STAGES = [
    (0, "nat", ["KUBE-SERVICES"]),
    (1, "filter", ["KUBE-SERVICES", "KUBE-EXTERNAL-SERVICES", "KUBE-NODEPORTS", "KUBE-PROXY-FIREWALL"]),
]
"""iptables mode's entry chains: nat PREROUTING's, then filter FORWARD / INPUT's."""
NFTABLES_STAGES = [
    (1, "", ["filter-prerouting-pre-dnat"]),
    (0, "", ["nat-prerouting"]),
    (1, "", ["filter-forward", "filter-input"]),
]
"""nftables mode's entry chains, by hook priority."""
IPVS_STAGES = [
    (0, "nat", ["KUBE-SERVICES"]),
    (1, "filter", ["KUBE-PROXY-FIREWALL", "KUBE-NODE-PORT", "KUBE-IPVS-FILTER"]),
]
"""IPVS mode's iptables entry chains (IPVS itself runs after them)."""


def lower_iptables(rules: ipt.IptablesRules, config: ProxierConfig) -> Program:
    """iptables mode's program."""
    b = ProgramBuilder(config)
    iptables_rows(b, ipt.parse(rules.text()))
    entry_stages(b, IPTABLES_STAGES)
    return b.build("iptables")


def lower_nftables(rules: NftRuleset, config: ProxierConfig) -> tuple[Program, NftProgram]:
    """nftables mode's program, and the parsed ruleset it comes from (what the fast path reads)."""
    b = ProgramBuilder(config)
    parsed = program(rules)
    nft_rows(b, parsed, config.own(config.service_cidrs))
    entry_stages(b, NFTABLES_STAGES)
    return b.build("nftables"), parsed


def lower_ipvs(rules: IpvsRules, config: ProxierConfig) -> Program:
    """IPVS mode's program: its ipsets and iptables rules, and the service table."""
    b = ProgramBuilder(config)
    ipset_entries(b, rules.ipsets, config.own(config.service_cidrs))
    iptables_rows(b, ipt.parse(rules.text()), rules.ipsets)
    entry_stages(b, IPVS_STAGES)
    return b.build("ipvs", ipvs_tables(b, rules))


# -- iptables rules (iptables mode, and the ipset rules of IPVS mode) ---------------------------------------
def iptables_rows(b: ProgramBuilder, rules: list[ipt.Rule], sets: dict | None = None) -> None:
    """Add the parsed ``-A`` rules (and their chains) to ``b``; ``sets``: the ipsets they match (IPVS mode)."""
    seconds = {r.recent[0]: r.recent[2] for r in rules if r.recent and r.recent[1] == "rcheck"}
    for rule in rules:
        b.chain((rule.table, rule.chain))
    for rule in rules:
        r = b.row(b.chain((rule.table, rule.chain)), -1.0 if rule.probability is None else rule.probability)
        if rule.protocol:
            r[K.PROTO] = PROTO_NUMBERS[rule.protocol]
        r[K.DPORT] = rule.dport
        if rule.source:
            b.address_match(r, "saddr", rule.source_negated, [rule.source])
        if rule.destination:
            b.address_match(r, "daddr", rule.destination_negated, [rule.destination])
        for col, local in ((K.SRC_LOCAL, rule.src_type_local), (K.DST_LOCAL, rule.dst_type_local)):
            if local is not None:
                r[col] = 1 if local else 2
        if rule.ctstate is not None:
            r[K.CT] = sum(CT_BITS[s] for s in rule.ctstate[1])
            r[K.CT_NEG] = int(rule.ctstate[0])
        if rule.mark is not None:
            r[K.MARK] = 2 if rule.mark[0] else 1
        if rule.recent is not None:
            name, op, _ = rule.recent
            col = K.AFF_CHECK if op == "rcheck" else K.AFF_UPDATE
            r[col] = b.affinity(name, seconds.get(name, 10800))
        for name, flags, negated in rule.match_sets:
            s = (sets or {})[name]
            parts = flags.split(",")
            r[K.IPSET] = b.table(name, IPSET_KINDS[s.type])
            r[K.IPSET_DIR] = (parts[0] == "dst") | ((len(parts) > 2 and parts[2] == "dst") << 1)
            r[K.IPSET_NEG] = int(negated)
        r[K.NEVER] = int(rule.unsupported)
        target = rule.target
        if target == "MARK":
            r[K.SET_MASQ] = 1 if rule.mark_op == "or" else 2
        elif target == "DNAT":
            r[K.ACTION], r[K.ARG] = K.A_DNAT, b.endpoint(rule.to_destination)
        elif target in ("ACCEPT", "DROP", "REJECT", "RETURN"):
            r[K.ACTION] = VERDICTS[target.lower()]
        elif target and target != "MASQUERADE":
            r[K.ACTION], r[K.ARG] = K.A_JUMP, b.chain((rule.table, target))


def ipset_entries(b: ProgramBuilder, sets: dict, guard: list[str]) -> None:
    """Add IPVS mode's ipsets as tables (``guard``: the ServiceCIDRs holding every hash:ip key)."""
    for key, s in sets.items():
        tid = b.table(key, IPSET_KINDS[s.type], guard if s.type.startswith("hash:ip") else None)
        nets: dict[tuple, list[str]] = {}
        for e in s.entries:
            if s.type == "bitmap:port":
                b.entry(tid, (0, 0), e[0])
            elif s.type == "hash:ip":
                b.entry(tid, encode(e[0]), 0)
            elif s.type == "hash:ip,port":
                b.entry(tid, encode(e[0]), (PROTO_NUMBERS[e[1]] << 16) | e[2])
            elif s.type == "hash:ip,port,ip":
                b.entry(tid, encode(e[0]), (PROTO_NUMBERS[e[1]] << 16) | e[2], encode(e[3]))
            else:
                nets.setdefault(e[:3], []).append(e[3])
        for (ip, proto, port), cidrs in nets.items():
            start, count = b.cidr_list(sorted(cidrs))
            b.entry(tid, encode(ip), (PROTO_NUMBERS[proto] << 16) | port, (0, 0), start, count)


def entry_stages(b: ProgramBuilder, groups: list[tuple[int, str, list]]) -> None:
    """Add the entry chains in hook order: (group, kind, [(table,) chain names]); missing chains are skipped."""
    for group, (kind, table, chains) in enumerate(groups):
        for name in chains:
            key = (table, name) if table else name
            if key in b.chain_ids:
                b.stages.append((group, b.chain_ids[key], kind))


def ipvs_tables(b: ProgramBuilder, state: IpvsRules) -> K.IpvsTables:
    """The service table laid out bucket by bucket, so a lookup walks its bucket's chain through adjacent rows."""
    services = [vs for bucket in state.table.buckets for vs in bucket]
    head = np.full(256, -1, np.int64)
    nxt = np.full(len(services), -1, np.int64)
    v = 0
    for h, bucket in enumerate(state.table.buckets):
        if bucket:
            head[h] = v
            nxt[v : v + len(bucket) - 1] = np.arange(v + 1, v + len(bucket))
            v += len(bucket)
    sched = {"rr": K.SCHED_RR, "wrr": K.SCHED_WRR, "lc": K.SCHED_LC, "sh": K.SCHED_SH}
    vs_rows: list[tuple] = []
    rs_rows: list[tuple] = []
    key, sh = [], []
    for vs in services:
        cl, cw, mw, di = vs.wrr if vs.scheduler == "wrr" else (vs.rr_pos, 0, 0, 1)
        vs_rows.append((len(rs_rows), len(vs.dests), sched[vs.scheduler], cl, cw, mw, di, vs.persistent))
        rs_rows += [
            (b.endpoint(d.address), d.weight, d.active, *(np.array(encode(d.ip), np.uint64).astype(np.int64)))
            for d in vs.dests
        ]
        hi, lo = encode(vs.ip)
        key.append((hi, lo, (PROTO_NUMBERS[vs.protocol] << 16) | vs.port))
        sh.append(vs.sh_table or [-1] * 256)
    return K.IpvsTables(
        IV_HEAD=head,
        IV_NEXT=nxt,
        IV_KEY=np.array(key, np.uint64).reshape(-1, 3),
        VS=np.array(vs_rows, np.int64).reshape(-1, 8),
        RS=np.array(rs_rows, np.int64).reshape(-1, 5),
        SH_TAB=np.array(sh, np.int64).reshape(-1, 256),
    )


# -- nftables -----------------------------------------------------------------------------------------------
def verdict_of(b: ProgramBuilder, verdict: tuple[str, str]) -> tuple[int, int]:
    """(action, chain id or 0) of an nftables verdict."""
    kind, arg = verdict
    if kind in ("jump", "goto"):
        return VERDICTS[kind], b.chain(arg)
    return VERDICTS[kind], 0


def nft_rows(b: ProgramBuilder, prog: NftProgram, guard: list[str]) -> None:
    """Add the parsed nftables program: chains, sets and maps as tables, affinity sets, rules."""
    for name in prog.chains:
        b.chain(name)
    for name, members in prog.sets.items():
        tid = b.table(name, guard=guard)
        for (ip,) in members:
            b.entry(tid, encode(ip), 0)
    for name, timeout in prog.dynamic_sets.items():
        b.affinity(name, timeout)
    for name, elements in prog.maps.items():
        tid = b.table(name, guard=guard)
        for key, verdict in elements.items():
            kind, arg = verdict_of(b, verdict)
            if len(key) == 3:
                b.entry(tid, encode(key[0]), (PROTO_NUMBERS[key[1]] << 16) | int(key[2]), (0, 0), kind, arg)
            else:
                b.entry(tid, (0, 0), (PROTO_NUMBERS[key[0]] << 16) | int(key[1]), (0, 0), kind, arg)
    for name, rules in prog.chains.items():
        cid = b.chain(name)
        for rule in rules:
            r = b.row(cid)
            for m in rule.matches:
                if m[0] == "addr" and m[3] == "set" and m[4] in prog.dynamic_sets:
                    r[K.AFF_CHECK] = b.aff[m[4]]
                elif m[0] == "addr":
                    b.address_match(
                        r, m[1], m[2], None if m[3] == "set" else m[4], b.table(m[4]) if m[3] == "set" else 0
                    )
                elif m[0] == "fib":
                    r[K.SRC_LOCAL if m[1] == "saddr" else K.DST_LOCAL] = 2 if m[2] else 1
                elif m[0] == "l4proto":
                    r[K.PROTO] = PROTO_NUMBERS[m[1]]
                elif m[0] == "ct_new":
                    r[K.CT] = K.CT_NEW
                elif m[0] == "mark":
                    r[K.MARK] = 2
            if rule.set_masq:
                r[K.SET_MASQ] = 1
            if rule.update_set:
                r[K.AFF_UPDATE] = b.aff[rule.update_set]
            if rule.lookup is not None:
                r[K.LOOKUP], r[K.LOOKUP_TID] = rule.lookup[0], b.table(rule.lookup[1])
            elif rule.numgen:
                r[K.ACTION], r[K.ARG], r[K.ARG2] = K.A_NUMGEN, len(b.ng), len(rule.numgen)
                b.ng += [verdict_of(b, v) for v in rule.numgen]
            elif rule.verdict is not None and rule.verdict[0] == "dnat":
                r[K.ACTION], r[K.ARG] = K.A_DNAT, b.endpoint(rule.verdict[1])
            elif rule.verdict is not None:
                r[K.ACTION], r[K.ARG] = verdict_of(b, rule.verdict)
