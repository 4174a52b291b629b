"""Rule sets compiled to arrays, and the packet matcher that runs them with the Numba kernel.

``program_for(mode, rules, config)`` turns the parsed iptables rules (iptables and IPVS modes) or the parsed
nftables rules into a :class:`Program`; :class:`Matcher` matches batches of packets against it, keeping the
random stream and the affinity / persistence state between batches. ``Matcher.match_python`` runs the same
kernel as plain Python (Numba's ``py_func``), the reference the benchmark compares against.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from kbench.api.network import parse_ip
from kbench.proxy import _fast_kernels as FK
from kbench.proxy import _kernels as K
from kbench.proxy import fastpath
from kbench.proxy import iptables as ipt
from kbench.proxy.ipvs import PROTO_NUMBERS, IpvsRules
from kbench.proxy.model import ProxierConfig
from kbench.proxy.nftables import NftRuleset
from kbench.proxy.nftrules import NftProgram, program

MASK64 = (1 << 64) - 1
V4_MAPPED = 0xFFFF << 32
OUTCOMES = ("", "DNAT", "ACCEPT", "DROP", "REJECT")
CT_BITS = {
    "NEW": K.CT_NEW,
    "ESTABLISHED": K.CT_ESTABLISHED,
    "RELATED": K.CT_RELATED,
    "INVALID": K.CT_INVALID,
    "DNAT": K.CT_DNAT,
}
VERDICTS = {
    "jump": K.A_JUMP,
    "goto": K.A_GOTO,
    "return": K.A_RETURN,
    "accept": K.A_ACCEPT,
    "drop": K.A_DROP,
    "reject": K.A_REJECT,
}
IPSET_KINDS = {
    "hash:ip": K.IPSET_IP,
    "hash:ip,port": K.IPSET_IP_PORT,
    "hash:ip,port,ip": K.IPSET_IP_PORT_IP,
    "hash:ip,port,net": K.IPSET_IP_PORT_NET,
    "bitmap:port": K.IPSET_PORT,
}


@lru_cache(maxsize=1 << 20)
def _encode_text(text: str) -> tuple[int, int]:
    parts = text.split(".")
    if len(parts) == 4 and all(p.isdigit() for p in parts):
        a, b, c, d = (int(p) for p in parts)
        if max(a, b, c, d) <= 255:
            return 0, V4_MAPPED | (a << 24) | (b << 16) | (c << 8) | d
    return encode(parse_ip(text))


def encode(ip) -> tuple[int, int]:
    """An address as (hi, lo) 64-bit words; IPv4 mapped into ::ffff:0:0/96."""
    if isinstance(ip, str):
        return _encode_text(ip)
    value = int(ip) | (V4_MAPPED if ip.version == 4 else 0)
    return value >> 64, value & MASK64


@lru_cache(maxsize=1 << 16)
def encode_cidr(text: str) -> tuple[int, int, int, int]:
    """A CIDR (or a single address) as (network hi, lo, mask hi, lo)."""
    address, _, bits = text.strip().partition("/")
    hi, lo = encode(address)
    v4 = hi == 0 and lo >> 32 == 0xFFFF
    length = (int(bits) if bits else (32 if v4 else 128)) + (96 if v4 else 0)
    mask = ((1 << length) - 1) << (128 - length)
    return hi & (mask >> 64), lo & mask & MASK64, mask >> 64, mask & MASK64


@dataclass
class Packets:
    """A batch of first packets of connections: addresses as (hi, lo) words, IP protocol numbers, times (s)."""

    src_hi: np.ndarray
    src_lo: np.ndarray
    proto: np.ndarray
    dst_hi: np.ndarray
    dst_lo: np.ndarray
    dport: np.ndarray
    time: np.ndarray

    def __len__(self) -> int:
        return len(self.src_hi)

    def take(self, index) -> Packets:
        """The packets at ``index`` (a slice or an index array)."""
        return Packets(*(getattr(self, f.name)[index] for f in dataclasses.fields(Packets)))

    @classmethod
    def of(cls, rows, time: float = 0.0) -> Packets:
        """From (source IP, protocol name, destination IP, destination port) tuples."""
        rows = list(rows)
        src = np.array([encode(r[0]) for r in rows], np.uint64).reshape(-1, 2)
        dst = np.array([encode(r[2]) for r in rows], np.uint64).reshape(-1, 2)
        return cls(
            src[:, 0].copy(),
            src[:, 1].copy(),
            np.array([PROTO_NUMBERS[r[1].lower()] for r in rows], np.int64),
            dst[:, 0].copy(),
            dst[:, 1].copy(),
            np.array([r[3] for r in rows], np.int64),
            np.full(len(rows), float(time)),
        )

    @classmethod
    def ipv4(
        cls, src: np.ndarray, proto: np.ndarray, dst: np.ndarray, dport: np.ndarray, time: np.ndarray | float = 0.0
    ) -> Packets:
        """From IPv4 addresses as unsigned integers (vectorised, for generated traffic)."""
        n = len(src)
        mapped = np.uint64(V4_MAPPED)
        return cls(
            np.zeros(n, np.uint64),
            src.astype(np.uint64) | mapped,
            np.asarray(proto, np.int64),
            np.zeros(n, np.uint64),
            dst.astype(np.uint64) | mapped,
            np.asarray(dport, np.int64),
            np.broadcast_to(np.asarray(time, np.float64), (n,)).copy(),
        )


@dataclass
class Program:
    """A rule set as arrays (see ``_kernels.py`` for the layout)."""

    mode: str
    R: np.ndarray
    P: np.ndarray
    CH: np.ndarray
    C: np.ndarray
    H: np.ndarray
    TB: np.ndarray
    IPSET_KINDS: np.ndarray
    NG: np.ndarray
    EP: np.ndarray
    LOCAL: np.ndarray
    STAGES: np.ndarray
    AFF_TIMEOUT: np.ndarray
    ipvs: dict[str, np.ndarray]
    endpoints: list[str]
    chains: list[str]
    fast: object = None
    """nftables' verdict-map fast path (``fastpath.FastPath``), when the rules allow one."""


class _Builder:
    def __init__(self, config: ProxierConfig) -> None:
        self.chain_ids: dict = {}
        self.chain_rules: list[list[tuple[np.ndarray, float]]] = []
        self.cidrs: list[tuple[int, int, int, int]] = []
        self.entries: dict[int, list[tuple[int, ...]]] = {}
        self.guards: dict[int, list[str]] = {}
        self.tables: dict[str, int] = {}
        self.table_kinds: list[int] = []
        self.endpoint_ids: dict[str, int] = {}
        self.aff: dict[str, int] = {}
        self.aff_timeout: list[float] = []
        self.ng: list[tuple[int, int]] = []
        self.stages: list[tuple[int, int, int]] = []
        self.local = [encode(a) for a in config.local_addresses()]

    def chain(self, key) -> int:
        if key not in self.chain_ids:
            self.chain_ids[key] = len(self.chain_rules)
            self.chain_rules.append([])
        return self.chain_ids[key]

    def row(self, chain: int, prob: float = -1.0) -> list[int]:
        r = [0] * K.NF
        r[K.IPSET] = -1
        self.chain_rules[chain].append((r, prob))
        return r

    def cidr_list(self, items: list[str]) -> tuple[int, int]:
        start = len(self.cidrs)
        self.cidrs += [encode_cidr(c) for c in items]
        return start, len(items)

    def table(self, name: str, kind: int = 0, guard: list[str] | None = None) -> int:
        """Id of a set / map / ipset; ``guard``: CIDRs that hold every key address (lets misses skip hashing)."""
        if name not in self.tables:
            self.tables[name] = len(self.tables) + 1
            self.table_kinds.append(kind)
            self.entries[self.tables[name]] = []
            if guard:
                self.guards[self.tables[name]] = guard
        return self.tables[name]

    def entry(self, tid: int, a: tuple[int, int], pb: int, c: tuple[int, int] = (0, 0), v0: int = 0, v1: int = 0):
        self.entries[tid].append((a[0], a[1], pb, c[0], c[1], v0, v1))

    def endpoint(self, address: str) -> int:
        if address not in self.endpoint_ids:
            self.endpoint_ids[address] = len(self.endpoint_ids)
        return self.endpoint_ids[address]

    def affinity(self, name: str, timeout: float) -> int:
        """1-based id of an affinity set (0 means none in the rule columns)."""
        if name not in self.aff:
            self.aff[name] = len(self.aff_timeout) + 1
            self.aff_timeout.append(float(timeout))
        return self.aff[name]

    def address_match(self, r: np.ndarray, field_: str, negated: bool, cidrs: list[str] | None, tid: int = 0):
        kind, a, b, neg = (
            (K.SRC_KIND, K.SRC_A, K.SRC_B, K.SRC_NEG)
            if field_ == "saddr"
            else (K.DST_KIND, K.DST_A, K.DST_B, K.DST_NEG)
        )
        if cidrs is None:
            r[kind], r[a] = K.ADDR_SET, tid
        else:
            r[kind] = K.ADDR_CIDRS
            r[a], r[b] = self.cidr_list(cidrs)
        r[neg] = int(negated)

    def build(self, mode: str, ipvs: dict | None = None) -> Program:
        rows, probs, ch = [], [], np.zeros((max(len(self.chain_rules), 1), 2), np.int64)
        for c, rules in enumerate(self.chain_rules):
            ch[c] = (len(rows), len(rules))
            for r, p in rules:
                rows.append(r)
                probs.append(p)
        H, TB = self._hash_tables()
        eps = sorted(self.endpoint_ids, key=self.endpoint_ids.get)
        ep_rows = []
        for a in eps:
            host, port = a.rsplit(":", 1)
            ep_rows.append((*encode(host.strip("[]")), int(port)))
        ipvs = ipvs or _no_ipvs()
        timeouts = self.aff_timeout + [float(p) for p in ipvs["VS"][:, K.VS_PERSIST]]
        names = sorted(self.chain_ids, key=self.chain_ids.get)
        return Program(
            mode,
            np.array(rows, np.int32).reshape(-1, K.NF),
            np.array(probs, np.float64),
            ch,
            np.array(self.cidrs, np.uint64).reshape(-1, 4),
            H,
            TB,
            np.array([0, *self.table_kinds], np.int64),
            np.array(self.ng, np.int64).reshape(-1, 2),
            np.array(ep_rows, np.uint64).reshape(-1, 3),
            np.array(self.local, np.uint64).reshape(-1, 2),
            np.array(self.stages, np.int64).reshape(-1, 3),
            np.array(timeouts, np.float64),
            ipvs,
            eps,
            [n if isinstance(n, str) else ":".join(n) for n in names],
        )

    def _hash_tables(self) -> tuple[np.ndarray, np.ndarray]:
        """One open-addressing table per set / map, at load <= 1/4 (misses stop within about one probe)."""
        n = len(self.tables) + 1
        TB = np.zeros((n, 5), np.int64)
        caps = {}
        offset = 0
        for tid, rows in self.entries.items():
            cap = 1
            while cap < 4 * len(rows):
                cap *= 2
            caps[tid] = cap
            guard = [encode_cidr(g) for g in self.guards.get(tid, ())]
            if guard and rows and all(any(r[0] & g[2] == g[0] and r[1] & g[3] == g[1] for g in guard) for r in rows):
                TB[tid, 3:5] = self.cidr_list(self.guards[tid])
            TB[tid, 0:3] = (offset, cap - 1, len(rows))
            offset += cap
        H = np.zeros((max(offset, 1), K.HROW), np.uint64)
        for tid, rows in self.entries.items():
            for k0, k1, k2, k3, k4, v0, v1 in rows:
                K.hash_insert(
                    H,
                    TB[tid, 0],
                    TB[tid, 1],
                    np.uint64(k0),
                    np.uint64(k1),
                    np.uint64(k2),
                    np.uint64(k3),
                    np.uint64(k4),
                    np.uint64(v0 & MASK64),
                    np.uint64(v1 & MASK64),
                )
        return H, TB


def _no_ipvs() -> dict[str, np.ndarray]:
    return {
        "IV_HEAD": np.zeros(0, np.int64),
        "IV_NEXT": np.zeros(0, np.int64),
        "IV_KEY": np.zeros((0, 3), np.uint64),
        "VS": np.zeros((0, 8), np.int64),
        "RS": np.zeros((0, 5), np.int64),
        "SH_TAB": np.zeros((0, 256), np.int64),
    }


# -- iptables rules (iptables mode, and the ipset rules of IPVS mode) ---------------------------------------
def _iptables_rows(b: _Builder, rules: list[ipt.Rule], sets: dict | None = None) -> None:
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
            s = sets[name]
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


def _ipset_entries(b: _Builder, sets: dict, guard: list[str]) -> None:
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


def _stages(b: _Builder, groups: list[tuple[int, str, list]]) -> None:
    for group, (kind, table, chains) in enumerate(groups):
        for name in chains:
            key = (table, name) if table else name
            if key in b.chain_ids:
                b.stages.append((group, b.chain_ids[key], kind))


def _ipvs_arrays(b: _Builder, state: IpvsRules) -> dict[str, np.ndarray]:
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
    vs_rows, rs_rows, key, sh = [], [], [], []
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
    return {
        "IV_HEAD": head,
        "IV_NEXT": nxt,
        "IV_KEY": np.array(key, np.uint64).reshape(-1, 3),
        "VS": np.array(vs_rows, np.int64).reshape(-1, 8),
        "RS": np.array(rs_rows, np.int64).reshape(-1, 5),
        "SH_TAB": np.array(sh, np.int64).reshape(-1, 256),
    }


# -- nftables -----------------------------------------------------------------------------------------------
def _verdict(b: _Builder, verdict: tuple[str, str]) -> tuple[int, int]:
    kind, arg = verdict
    if kind in ("jump", "goto"):
        return VERDICTS[kind], b.chain(arg)
    return VERDICTS[kind], 0


def _nft_rows(b: _Builder, prog: NftProgram, guard: list[str]) -> None:
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
            kind, arg = _verdict(b, verdict)
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
                b.ng += [_verdict(b, v) for v in rule.numgen]
            elif rule.verdict is not None and rule.verdict[0] == "dnat":
                r[K.ACTION], r[K.ARG] = K.A_DNAT, b.endpoint(rule.verdict[1])
            elif rule.verdict is not None:
                r[K.ACTION], r[K.ARG] = _verdict(b, rule.verdict)


def program_for(mode: str, rules, config: ProxierConfig) -> Program:
    """Compile a mode's rule set (``iptables.IptablesRules``, ``nftables.NftRuleset``, ``ipvs.IpvsRules``)."""
    b = _Builder(config)
    if mode == "iptables":
        _iptables_rows(b, ipt.parse(rules.text()))
        _stages(
            b,
            [
                (0, "nat", ["KUBE-SERVICES"]),
                (1, "filter", ["KUBE-SERVICES", "KUBE-EXTERNAL-SERVICES", "KUBE-NODEPORTS", "KUBE-PROXY-FIREWALL"]),
            ],
        )
        return b.build(mode)
    if mode == "nftables":
        assert isinstance(rules, NftRuleset)
        parsed = program(rules)
        _nft_rows(b, parsed, config.own(config.service_cidrs))
        _stages(
            b,
            [
                (1, "", ["filter-prerouting-pre-dnat"]),
                (0, "", ["nat-prerouting"]),
                (1, "", ["filter-forward", "filter-input"]),
            ],
        )
        built = b.build(mode)
        built.fast = fastpath.build_nftables(parsed, built, encode, encode_cidr)
        return built
    _ipset_entries(b, rules.ipsets, config.own(config.service_cidrs))
    _iptables_rows(b, ipt.parse(rules.text()), rules.ipsets)
    _stages(
        b, [(0, "nat", ["KUBE-SERVICES"]), (1, "filter", ["KUBE-PROXY-FIREWALL", "KUBE-NODE-PORT", "KUBE-IPVS-FILTER"])]
    )
    built = b.build(mode, _ipvs_arrays(b, rules))
    built.fast = fastpath.build_ipvs(rules, built, encode, encode_cidr)
    return built


@dataclass
class MatchResult:
    outcome: np.ndarray
    """OUT_* codes: 0 untouched, 1 DNAT, 2 ACCEPT, 3 DROP, 4 REJECT."""
    endpoint: np.ndarray
    masq: np.ndarray
    rules: np.ndarray
    endpoints: list[str] = field(repr=False, default_factory=list)

    def output(self, i: int) -> str:
        """The packet's fate as the tracer writes it: the endpoint, ACCEPT / DROP / REJECT, or ""."""
        kind = int(self.outcome[i])
        return self.endpoints[int(self.endpoint[i])] if kind == K.OUT_DNAT else OUTCOMES[kind] if kind > 1 else ""


class Matcher:
    """Matches packets against a program; state (random stream, affinity, IPVS schedulers) persists across calls."""

    def __init__(self, prog: Program, seed: int = 0, affinity_capacity: int = 1 << 16) -> None:
        self.program = prog
        self.rng = np.array([seed], np.uint64)
        cap = 1 << max(4, (affinity_capacity - 1).bit_length())
        self.aff_keys = np.zeros((cap, 3), np.uint64)
        self.aff_time = np.zeros(cap, np.float64)
        self.aff_value = np.zeros(cap, np.int64)
        self.ipvs = {k: v.copy() for k, v in prog.ipvs.items()}

    def _args(self, packets: Packets, n: int):
        p = self.program
        outs = (np.empty(n, np.int8), np.empty(n, np.int64), np.empty(n, np.bool_), np.empty(n, np.int64))
        iv = self.ipvs
        args = (
            packets.src_hi,
            packets.src_lo,
            packets.proto,
            packets.dst_hi,
            packets.dst_lo,
            packets.dport,
            packets.time,
            p.R,
            p.P,
            p.CH,
            p.C,
            p.H,
            p.TB,
            p.IPSET_KINDS,
            p.NG,
            p.EP,
            p.LOCAL,
            p.STAGES,
            p.AFF_TIMEOUT,
            self.aff_keys,
            self.aff_time,
            self.aff_value,
            iv["IV_HEAD"],
            iv["IV_NEXT"],
            iv["IV_KEY"],
            iv["VS"],
            iv["RS"],
            iv["SH_TAB"],
            self.rng,
            np.empty(K.MAX_DEPTH, np.int64),
            np.empty(K.MAX_DEPTH, np.int64),
            *outs,
        )
        return args, outs

    def match(self, packets: Packets) -> MatchResult:
        return self._match(packets, False)

    def match_python(self, packets: Packets) -> MatchResult:
        """The same algorithms interpreted by CPython (the benchmark's plain reference)."""
        return self._match(packets, True)

    def _match(self, packets: Packets, python: bool) -> MatchResult:
        def run(kernel, *args):
            return (kernel.py_func if python else kernel)(*args)

        fast, p, n = self.program.fast, self.program, len(packets)
        if fast is None:
            args, outs = self._args(packets, n)
            run(K.run_packets, *args)
            return MatchResult(*outs, endpoints=p.endpoints)
        outs = (np.empty(n, np.int8), np.empty(n, np.int64), np.empty(n, np.bool_), np.empty(n, np.int64))
        head = (packets.src_hi, packets.src_lo, packets.proto, packets.dst_hi, packets.dst_lo, packets.dport)
        scratch = (np.empty(n, np.int64), np.empty(n, np.int64))
        if fast.kind == "nftables":
            run(FK.run_nft_fast, *head, fast.H, fast.mask, fast.FC, fast.FE, self.rng, *scratch, *outs)
        else:
            iv = self.ipvs
            run(
                FK.run_ipvs_fast,
                *head,
                packets.time,
                fast.H,
                fast.mask,
                fast.FC,
                p.LOCAL,
                fast.CT,
                len(p.AFF_TIMEOUT) - len(iv["VS"]),
                iv["VS"],
                iv["RS"],
                iv["SH_TAB"],
                self.aff_keys,
                self.aff_time,
                self.aff_value,
                p.AFF_TIMEOUT,
                *scratch,
                *outs,
            )
        rest = np.flatnonzero(outs[0] < 0)
        if len(rest):
            subset = packets.take(rest)
            args, sub = self._args(subset, len(rest))
            run(K.run_packets, *args)
            for full, part in zip(outs, sub):
                full[rest] = part
        return MatchResult(*outs, endpoints=p.endpoints)
