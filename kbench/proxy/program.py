"""A rule set compiled to arrays, the packets it is matched against, and the rule machine that runs it.

:class:`Program` holds a mode's rules as the kernels' named tuples (``_kernels.RuleTables`` and
``_kernels.IpvsTables``; ``kbench/proxy/lowering.py`` builds them with :class:`ProgramBuilder`) and, when the
rules allow one, a :class:`FastPath` (``kbench/proxy/fastpath.py``). :func:`run_rule_machine` matches a batch of
:class:`Packets` with the rule machine (``_kernels.run_packets``), keeping what persists between batches in a
:class:`MatchState`; :func:`interpreted` runs the kernels as plain Python, the benchmarks' reference.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from types import ModuleType

import numpy as np

from kbench.api.network import parse_ip
from kbench.proxy import _fast_kernels as FK
from kbench.proxy import _kernels as K
from kbench.proxy.ipvs import PROTO_NUMBERS
from kbench.proxy.model import ProxierConfig

MASK64 = (1 << 64) - 1
V4_MAPPED = 0xFFFF << 32


@lru_cache(maxsize=1 << 20)
def encode_text(text: str) -> tuple[int, int]:
    """``encode`` of an address written as text (dotted IPv4 parsed without ipaddress)."""
    parts = text.split(".")
    if len(parts) == 4 and all(p.isdigit() for p in parts):
        a, b, c, d = (int(p) for p in parts)
        if max(a, b, c, d) <= 255:
            return 0, V4_MAPPED | (a << 24) | (b << 16) | (c << 8) | d
    return encode(parse_ip(text))


def encode(ip) -> tuple[int, int]:
    """An address as (hi, lo) 64-bit words; IPv4 mapped into ::ffff:0:0/96."""
    if isinstance(ip, str):
        return encode_text(ip)
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

    arrays: K.PacketArrays
    """The batch as the kernels take it, one entry per packet."""

    def __len__(self) -> int:
        return len(self.arrays.src_hi)

    def take(self, index) -> Packets:
        """The packets at ``index`` (a slice or an index array)."""
        return Packets(K.PacketArrays(*(column[index] for column in self.arrays)))

    @classmethod
    def of(cls, rows, time: float = 0.0) -> Packets:
        """From (source IP, protocol name, destination IP, destination port) tuples."""
        rows = list(rows)
        src = np.array([encode(r[0]) for r in rows], np.uint64).reshape(-1, 2)
        dst = np.array([encode(r[2]) for r in rows], np.uint64).reshape(-1, 2)
        return cls(
            K.PacketArrays(
                src[:, 0].copy(),
                src[:, 1].copy(),
                np.array([PROTO_NUMBERS[r[1].lower()] for r in rows], np.int64),
                dst[:, 0].copy(),
                dst[:, 1].copy(),
                np.array([r[3] for r in rows], np.int64),
                np.full(len(rows), float(time)),
            )
        )

    @classmethod
    def ipv4(
        cls, src: np.ndarray, proto: np.ndarray, dst: np.ndarray, dport: np.ndarray, time: np.ndarray | float = 0.0
    ) -> Packets:
        """From IPv4 addresses as unsigned integers (vectorised, for generated traffic)."""
        n = len(src)
        mapped = np.uint64(V4_MAPPED)
        return cls(
            K.PacketArrays(
                np.zeros(n, np.uint64),
                src.astype(np.uint64) | mapped,
                np.asarray(proto, np.int64),
                np.zeros(n, np.uint64),
                dst.astype(np.uint64) | mapped,
                np.asarray(dport, np.int64),
                np.broadcast_to(np.asarray(time, np.float64), (n,)).copy(),
            )
        )


@dataclass
class FastPath:
    """A fast path resolved at build time (``fastpath.py``): nftables' verdict map or IPVS' service table."""

    kind: str
    """``nftables`` or ``ipvs``."""
    tables: FK.NftFastTables | FK.IpvsFastTables
    records: int
    """Destinations (address, protocol, port) the fast path resolves."""


@dataclass
class Program:
    """A mode's rule set as arrays (layout: ``_kernels.RuleTables`` and ``_kernels.IpvsTables``)."""

    mode: str
    rules: K.RuleTables
    ipvs: K.IpvsTables
    endpoints: list[str]
    """Endpoint ``ip:port`` by id (what ``Verdicts.endpoint`` indexes)."""
    chains: list[str]
    """Chain name by id (``table:chain`` for iptables)."""
    fast: FastPath | None = None
    """The fast path, when the rules allow one."""


def no_ipvs() -> K.IpvsTables:
    """An empty IPVS table (iptables and nftables modes)."""
    return K.IpvsTables(
        IV_HEAD=np.zeros(0, np.int64),
        IV_NEXT=np.zeros(0, np.int64),
        IV_KEY=np.zeros((0, 3), np.uint64),
        VS=np.zeros((0, 8), np.int64),
        RS=np.zeros((0, 5), np.int64),
        SH_TAB=np.zeros((0, 256), np.int64),
    )


@dataclass
class MatchState:
    """What persists between batches: the random stream, the affinity entries and the IPVS schedulers' state."""

    rng: np.ndarray
    """uint64 (1,): the splitmix64 state."""
    affinity: K.Affinity
    ipvs: K.IpvsTables
    """The program's IPVS table, copied (the schedulers update it)."""

    @classmethod
    def fresh(cls, program: Program, seed: int = 0, affinity_capacity: int = 1 << 16) -> MatchState:
        """A new state for ``program``: the stream at ``seed``, no affinity entries, the schedulers as built."""
        cap = 1 << max(4, (affinity_capacity - 1).bit_length())
        affinity = K.Affinity(np.zeros((cap, 3), np.uint64), np.zeros(cap, np.float64), np.zeros(cap, np.int64))
        tables = program.ipvs
        # the virtual and real servers' rows, each on one cache line: the fast path prefetches them (a real server's
        # five words padded to eight; nothing reads the padding)
        vs, rs = cache_lines(len(tables.VS), 8, np.int64), cache_lines(len(tables.RS), 8, np.int64)
        vs[:] = tables.VS
        rs[:, : tables.RS.shape[1]] = tables.RS
        others = {name: a.copy() for name, a in tables._asdict().items() if name not in ("VS", "RS")}
        ipvs = K.IpvsTables(VS=vs, RS=rs, **others)
        return cls(np.array([seed], np.uint64), affinity, ipvs)


def cache_lines(rows: int, columns: int, dtype) -> np.ndarray:
    """A zeroed (rows, columns) array of 8-byte words whose rows start on 64-byte cache lines (a row of 8 or 4
    words is one line or half of one, never two)."""
    raw = np.zeros(rows * columns + 8, dtype)
    start = -raw.ctypes.data % 64 // 8
    return raw[start : start + rows * columns].reshape(rows, columns)


def new_verdicts(n: int) -> K.Verdicts:
    """Output arrays for ``n`` packets."""
    return K.Verdicts(np.empty(n, np.int8), np.empty(n, np.int64), np.empty(n, np.bool_), np.empty(n, np.int64))


def run_rule_machine(program: Program, packets: Packets, state: MatchState) -> K.Verdicts:
    """Every packet through the rule machine (no fast path)."""
    out = new_verdicts(len(packets))
    stack = K.Stack(np.empty(K.MAX_DEPTH, np.int64), np.empty(K.MAX_DEPTH, np.int64))
    K.run_packets(packets.arrays, program.rules, state.ipvs, state.affinity, state.rng, stack, out)
    return out


@contextmanager
def interpreted(*modules: ModuleType) -> Iterator[None]:
    """Inside, every compiled kernel of ``modules`` is its plain-Python function (Numba's ``py_func``): the same
    algorithm interpreted by CPython, the benchmarks' reference. Unsigned overflow wraps as in the kernels."""
    saved = []
    for module in modules:
        for name, value in list(vars(module).items()):
            py_func = getattr(value, "py_func", None)
            if py_func is not None:
                saved.append((module, name, value))
                setattr(module, name, py_func)
    try:
        with np.errstate(over="ignore"):
            yield
    finally:
        for module, name, value in saved:
            setattr(module, name, value)


class ProgramBuilder:
    """Collects a rule set's chains, rows, CIDRs, tables, endpoints and affinity sets; :meth:`build` lays them
    out as a :class:`Program`."""

    def __init__(self, config: ProxierConfig) -> None:
        self.chain_ids: dict = {}
        self.chain_rules: list[list[tuple[list[int], float]]] = []
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
        """Id of the chain ``key`` (added, empty, when new)."""
        if key not in self.chain_ids:
            self.chain_ids[key] = len(self.chain_rules)
            self.chain_rules.append([])
        return self.chain_ids[key]

    def row(self, chain: int, prob: float = -1.0) -> list[int]:
        """A new rule at the end of ``chain`` (its columns, to fill in; ``prob``: its statistic, -1 for none)."""
        r = [0] * K.NF
        r[K.IPSET] = -1
        self.chain_rules[chain].append((r, prob))
        return r

    def cidr_list(self, items: list[str]) -> tuple[int, int]:
        """(start, count) of ``items`` appended to the CIDR rows."""
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
        """An element of table ``tid``: key (address, protocol << 16 | port, second address), values."""
        self.entries[tid].append((a[0], a[1], pb, c[0], c[1], v0, v1))

    def endpoint(self, address: str) -> int:
        """Id of the endpoint ``ip:port`` (added when new)."""
        if address not in self.endpoint_ids:
            self.endpoint_ids[address] = len(self.endpoint_ids)
        return self.endpoint_ids[address]

    def affinity(self, name: str, timeout: float) -> int:
        """1-based id of an affinity set (0 means none in the rule columns)."""
        if name not in self.aff:
            self.aff[name] = len(self.aff_timeout) + 1
            self.aff_timeout.append(float(timeout))
        return self.aff[name]

    def address_match(self, r: list[int], field_: str, negated: bool, cidrs: list[str] | None, tid: int = 0) -> None:
        """Fill rule ``r``'s source (``saddr``) or destination match: ``cidrs``, or set ``tid`` when None."""
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

    def build(self, mode: str, ipvs: K.IpvsTables | None = None) -> Program:
        """The program: rows chain by chain, hash tables, endpoints, and ``ipvs`` (none when omitted)."""
        rows: list[list[int]] = []
        probs: list[float] = []
        ch = np.zeros((max(len(self.chain_rules), 1), 2), np.int64)
        for c, rules in enumerate(self.chain_rules):
            ch[c] = (len(rows), len(rules))
            for r, p in rules:
                rows.append(r)
                probs.append(p)
        H, TB = self._hash_tables()
        eps = sorted(self.endpoint_ids, key=self.endpoint_ids.__getitem__)
        ep_rows = []
        for a in eps:
            host, port = a.rsplit(":", 1)
            ep_rows.append((*encode(host.strip("[]")), int(port)))
        ipvs = ipvs if ipvs is not None else no_ipvs()
        timeouts = self.aff_timeout + [float(p) for p in ipvs.VS[:, K.VS_PERSIST]]
        names = sorted(self.chain_ids, key=self.chain_ids.__getitem__)
        tables = K.RuleTables(
            R=np.array(rows, np.int32).reshape(-1, K.NF),
            P=np.array(probs, np.float64),
            CH=ch,
            C=np.array(self.cidrs, np.uint64).reshape(-1, 4),
            H=H,
            TB=TB,
            IPSET_KINDS=np.array([0, *self.table_kinds], np.int64),
            NG=np.array(self.ng, np.int64).reshape(-1, 2),
            EP=np.array(ep_rows, np.uint64).reshape(-1, 3),
            LOCAL=np.array(self.local, np.uint64).reshape(-1, 2),
            STAGES=np.array(self.stages, np.int64).reshape(-1, 3),
            AFF_TIMEOUT=np.array(timeouts, np.float64),
        )
        return Program(mode, tables, ipvs, eps, [n if isinstance(n, str) else ":".join(n) for n in names])

    def _hash_tables(self) -> tuple[np.ndarray, np.ndarray]:
        """One open-addressing table per set / map, at load <= 1/4 (misses stop within about one probe)."""
        n = len(self.tables) + 1
        TB = np.zeros((n, 5), np.int64)
        offset = 0
        for tid, rows in self.entries.items():
            cap = 1
            while cap < 4 * len(rows):
                cap *= 2
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
