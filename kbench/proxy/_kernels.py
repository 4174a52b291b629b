"""Numba kernels: a small rule machine that runs compiled iptables / nftables rules, and the IPVS lookup.

A program (see ``kbench/proxy/program.py``) is struct-of-arrays, grouped in named tuples: :class:`RuleTables`
(rules as rows of ``R`` — match fields, side effects, action — grouped by chain, CIDR lists, one open-addressing
hash table ``H`` for every exact-match set, ipset and verdict map, ``numgen`` target lists, endpoints) and
:class:`IpvsTables` (the IPVS service table). For each packet the kernel walks the entry chains of each stage (nat,
then filter) like the kernel walks hooks: jumps push a frame, ``goto`` replaces it, a DNAT ends the nat stage and
rewrites the destination, DROP / REJECT end the packet. It counts every rule it evaluates, which is what the
first-packet cost model charges.

Addresses are 128-bit ``(hi, lo)`` pairs, IPv4 mapped into ``::ffff:0:0/96``. Random choices (``statistic``,
``numgen``) draw from a splitmix64 state; affinity (``recent``, nft affinity sets, IPVS persistence) lives in
a hash table of (set, client) -> (last seen, value) with per-set timeouts (:class:`Affinity`).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from kbench.sim._kernels import splitmix_unit

# rule columns of R
(
    NEVER,
    PROTO,
    DPORT,
    SRC_KIND,
    SRC_A,
    SRC_B,
    SRC_NEG,
    DST_KIND,
    DST_A,
    DST_B,
    DST_NEG,
    SRC_LOCAL,
    DST_LOCAL,
    CT,
    CT_NEG,
    MARK,
    AFF_CHECK,
    IPSET,
    IPSET_DIR,
    IPSET_NEG,
    LOOKUP,
    LOOKUP_TID,
    SET_MASQ,
    AFF_UPDATE,
    ACTION,
    ARG,
    ARG2,
) = range(27)
NF = 32
"""Row width of ``R`` (int32, padded to 128 bytes; the columns a non-matching rule reads sit in its first 64)."""
# address match kinds
ADDR_CIDRS, ADDR_SET = 1, 2
# actions and verdicts
A_NONE, A_JUMP, A_GOTO, A_RETURN, A_DNAT, A_ACCEPT, A_DROP, A_REJECT, A_NUMGEN = range(9)
# packet outcome
OUT_NONE, OUT_DNAT, OUT_ACCEPT, OUT_DROP, OUT_REJECT = range(5)
# conntrack states as bits
CT_NEW, CT_ESTABLISHED, CT_RELATED, CT_INVALID, CT_DNAT = 1, 2, 4, 8, 16
# ipset kinds
IPSET_IP, IPSET_IP_PORT, IPSET_IP_PORT_IP, IPSET_IP_PORT_NET, IPSET_PORT = range(5)
# IPVS schedulers
SCHED_RR, SCHED_WRR, SCHED_LC, SCHED_SH = range(4)
# IPVS virtual server rows (VS) and real server rows (RS)
VS_START, VS_COUNT, VS_SCHED, VS_POS, VS_CW, VS_MW, VS_DI, VS_PERSIST = range(8)
RS_ENDPOINT, RS_WEIGHT, RS_ACTIVE, RS_HI, RS_LO = range(5)
"""``RS_HI`` / ``RS_LO``: the endpoint's address words (as int64), for the hairpin test."""
HROW = 8
"""Hash table row: five key words, two values, used flag (one 64-byte cache line). Keys are
(address hi, address lo, protocol << 16 | port, second address hi, lo); each set or map has its own table."""
MAX_DEPTH = 16
AFF_PROBES = 64
EMPTY = np.uint64(0)


class PacketArrays(NamedTuple):
    """A batch of first packets, one entry per packet (``program.Packets.arrays``)."""

    src_hi: np.ndarray
    """uint64: source address, high word."""
    src_lo: np.ndarray
    """uint64: source address, low word (IPv4 mapped into ``::ffff:0:0/96``)."""
    proto: np.ndarray
    """int64: IP protocol number."""
    dst_hi: np.ndarray
    """uint64: destination address, high word."""
    dst_lo: np.ndarray
    """uint64: destination address, low word."""
    dport: np.ndarray
    """int64: destination port."""
    time: np.ndarray
    """float64: arrival time (s), for affinity timeouts."""


class RuleTables(NamedTuple):
    """A compiled rule set (read-only while matching)."""

    R: np.ndarray
    """int32 (rules, NF): one row per rule, columns ``NEVER`` .. ``ARG2``; a chain's rules are adjacent."""
    P: np.ndarray
    """float64 (rules,): ``statistic --probability`` of each rule, -1 when it has none."""
    CH: np.ndarray
    """int64 (chains, 2): each chain's first row in ``R`` and its number of rules."""
    C: np.ndarray
    """uint64 (cidrs, 4): CIDR lists the rules and tables refer to: network hi, lo, mask hi, lo."""
    H: np.ndarray
    """uint64 (slots, HROW): every set, map and ipset as an open-addressing table (see ``HROW``)."""
    TB: np.ndarray
    """int64 (tables, 5): per table id: offset and mask in ``H``, entries, guard CIDR start and count in ``C``."""
    IPSET_KINDS: np.ndarray
    """int64 (tables,): the ``IPSET_*`` kind of each table id (ipsets only)."""
    NG: np.ndarray
    """int64 (targets, 2): ``numgen`` verdicts (action, chain) that ``A_NUMGEN`` rules pick from."""
    EP: np.ndarray
    """uint64 (endpoints, 3): each endpoint's address hi, lo and port (DNAT targets)."""
    LOCAL: np.ndarray
    """uint64 (addresses, 2): the node's own addresses (``addrtype LOCAL`` / ``fib type local``)."""
    STAGES: np.ndarray
    """int64 (entries, 3): entry chains in hook order: group (one hook), chain, kind (0 nat, 1 filter)."""
    AFF_TIMEOUT: np.ndarray
    """float64 (sets,): timeout (s) of each affinity set id - 1; IPVS persistence sets follow the rules' sets."""


class IpvsTables(NamedTuple):
    """The IPVS service table; the schedulers update ``VS`` positions and ``RS`` connection counts."""

    IV_HEAD: np.ndarray
    """int64 (256,): first virtual server of each hash bucket, -1 when empty (no IPVS: length 0)."""
    IV_NEXT: np.ndarray
    """int64 (servers,): the next virtual server in the same bucket, -1 at its end."""
    IV_KEY: np.ndarray
    """uint64 (servers, 3): address hi, lo and protocol << 16 | port of each virtual server."""
    VS: np.ndarray
    """int64 (servers, 8): columns ``VS_START`` .. ``VS_PERSIST``: real servers, scheduler and its state."""
    RS: np.ndarray
    """int64 (real servers, 5): columns ``RS_ENDPOINT`` .. ``RS_LO`` (a match state's copy has 8, the rest zeros)."""
    SH_TAB: np.ndarray
    """int64 (servers, 256): the source-hash scheduler's bucket -> real server table."""


class Affinity(NamedTuple):
    """Affinity and persistence entries: an open-addressing table of (set, client) -> (last seen, value)."""

    keys: np.ndarray
    """uint64 (slots, 3): set id (0: free), client address hi, lo."""
    time: np.ndarray
    """float64 (slots,): when the entry was last set."""
    value: np.ndarray
    """int64 (slots,): the remembered choice (IPVS: the real server's index)."""


class Stack(NamedTuple):
    """The chain walk's call stack (``jump`` frames), scratch space of ``MAX_DEPTH`` entries."""

    chain: np.ndarray
    """int64: the chain to return to."""
    pos: np.ndarray
    """int64: the row to continue at."""


class Verdicts(NamedTuple):
    """What happened to each packet (the kernels' output)."""

    kind: np.ndarray
    """int8: ``OUT_*`` code; -1 from a fast path means "not resolved here"."""
    endpoint: np.ndarray
    """int64: the endpoint it was DNATed to, or -1."""
    masq: np.ndarray
    """bool: masquerade requested."""
    rules: np.ndarray
    """int64: rules (and IPVS entries) evaluated."""


# _nrt=False (no reference-counting runtime: these kernels allocate nothing) is a private njit option numba's type
# stubs do not list; hence the targeted ignores below
@njit(cache=True, inline="always", _nrt=False)  # type: ignore[call-overload]
def mix(a, b, c, d, e):
    """The hash of a five-word key (splitmix64-style mixing)."""
    h = a * np.uint64(0x9E3779B97F4A7C15) ^ b
    h = (h ^ (h >> np.uint64(29))) * np.uint64(0xBF58476D1CE4E5B9) ^ c
    h = (h ^ (h >> np.uint64(32))) * np.uint64(0x94D049BB133111EB) ^ d
    h = (h ^ (h >> np.uint64(29))) * np.uint64(0x9E3779B97F4A7C15) ^ e
    return h ^ (h >> np.uint64(32))


@njit(cache=True, _nrt=False)  # type: ignore[call-overload]
def in_cidrs(C, start, count, hi, lo):
    """Whether the address is in one of the CIDRs ``C[start:start + count]``."""
    for k in range(start, start + count):  # noqa: SIM110 (no generators in Numba)
        if (hi & C[k, 2]) == C[k, 0] and (lo & C[k, 3]) == C[k, 1]:
            return True
    return False


@njit(cache=True, _nrt=False)  # type: ignore[call-overload]
def hash_insert(H, offset, mask, k0, k1, k2, k3, k4, v0, v1):
    """Insert or overwrite in the table at rows ``offset .. offset + mask``; it must have a free row."""
    slot = mix(k0, k1, k2, k3, k4) & np.uint64(mask)
    while True:
        row = offset + np.int64(slot)
        if H[row, 7] == EMPTY or (
            H[row, 0] == k0 and H[row, 1] == k1 and H[row, 2] == k2 and H[row, 3] == k3 and H[row, 4] == k4
        ):
            break
        slot = (slot + np.uint64(1)) & np.uint64(mask)
    H[row, 0], H[row, 1], H[row, 2], H[row, 3], H[row, 4] = k0, k1, k2, k3, k4
    H[row, 5], H[row, 6], H[row, 7] = v0, v1, np.uint64(1)


@njit(cache=True, _nrt=False)  # type: ignore[call-overload]
def hash_find(H, TB, C, tid, k0, k1, k2, k3, k4):
    """Row of the key in table ``tid``, or -1. ``TB[tid]`` = (offset, mask, entries, guard start, guard count):
    when every key address of a table lies in its guard CIDRs, an address outside them cannot be in it."""
    if TB[tid, 2] == 0:
        return np.int64(-1)
    if TB[tid, 4] > 0 and not in_cidrs(C, TB[tid, 3], TB[tid, 4], k0, k1):
        return np.int64(-1)
    offset = TB[tid, 0]
    mask = np.uint64(TB[tid, 1])
    slot = mix(k0, k1, k2, k3, k4) & mask
    while True:
        row = offset + np.int64(slot)
        if H[row, 7] == EMPTY:
            return np.int64(-1)
        if H[row, 0] == k0 and H[row, 1] == k1 and H[row, 2] == k2 and H[row, 3] == k3 and H[row, 4] == k4:
            return row
        slot = (slot + np.uint64(1)) & mask


@njit(cache=True, _nrt=False)  # type: ignore[call-overload]
def is_local(LOCAL, hi, lo):
    """Whether the address is one of the node's own."""
    for k in range(LOCAL.shape[0]):  # noqa: SIM110
        if LOCAL[k, 0] == hi and LOCAL[k, 1] == lo:
            return True
    return False


@njit(cache=True, _nrt=False)  # type: ignore[call-overload]
def fold(hi, lo):
    """IPVS ``ntohl(addr_fold)``: the IPv4 address, or the xor of the four IPv6 words."""
    if hi == EMPTY and (lo >> np.uint64(32)) == np.uint64(0xFFFF):
        return lo & np.uint64(0xFFFFFFFF)
    return (hi >> np.uint64(32)) ^ (hi & np.uint64(0xFFFFFFFF)) ^ (lo >> np.uint64(32)) ^ (lo & np.uint64(0xFFFFFFFF))


@njit(cache=True, inline="always", _nrt=False)  # type: ignore[call-overload]
def affinity_find(affinity, set_id, hi, lo, now, timeout):
    """Slot of a live affinity entry, or -1."""
    AK, AT = affinity.keys, affinity.time
    mask = np.uint64(AK.shape[0] - 1)
    slot = mix(set_id, hi, lo, EMPTY, EMPTY) & mask
    for _ in range(AFF_PROBES):
        if AK[slot, 0] == EMPTY:
            return np.int64(-1)
        if AK[slot, 0] == set_id and AK[slot, 1] == hi and AK[slot, 2] == lo:
            return np.int64(slot) if now - AT[slot] <= timeout else np.int64(-1)
        slot = (slot + np.uint64(1)) & mask
    return np.int64(-1)


@njit(cache=True, inline="always", _nrt=False)  # type: ignore[call-overload]
def affinity_set(affinity, AFF_TIMEOUT, set_id, hi, lo, now, value):
    """Record (set, client) at ``now``: reuse its slot, an empty or expired one, else evict the oldest probed."""
    AK, AT = affinity.keys, affinity.time
    mask = np.uint64(AK.shape[0] - 1)
    slot = mix(set_id, hi, lo, EMPTY, EMPTY) & mask
    victim, oldest = slot, np.inf
    for _ in range(AFF_PROBES):
        if AK[slot, 0] == EMPTY or (AK[slot, 0] == set_id and AK[slot, 1] == hi and AK[slot, 2] == lo):
            victim = slot
            break
        if now - AT[slot] > AFF_TIMEOUT[np.int64(AK[slot, 0]) - 1]:
            victim = slot
            break
        if AT[slot] < oldest:
            victim, oldest = slot, AT[slot]
        slot = (slot + np.uint64(1)) & mask
    AK[victim, 0], AK[victim, 1], AK[victim, 2] = set_id, hi, lo
    AT[victim] = now
    affinity.value[victim] = value


@njit(cache=True, _nrt=False)  # type: ignore[call-overload]
def ipset_match(H, TB, C, tid, kind, dirs, shi, slo, dhi, dlo, pb, dp):
    """Whether the packet is in ipset ``tid`` (``dirs``: bit 0 the first address is the destination, bit 1 the
    second)."""
    ahi, alo = (dhi, dlo) if dirs & 1 else (shi, slo)
    if kind == IPSET_PORT:
        return hash_find(H, TB, C, tid, EMPTY, EMPTY, np.uint64(dp), EMPTY, EMPTY) >= 0
    if kind == IPSET_IP:
        return hash_find(H, TB, C, tid, ahi, alo, EMPTY, EMPTY, EMPTY) >= 0
    if kind == IPSET_IP_PORT:
        return hash_find(H, TB, C, tid, ahi, alo, pb, EMPTY, EMPTY) >= 0
    chi, clo = (dhi, dlo) if dirs & 2 else (shi, slo)
    if kind == IPSET_IP_PORT_IP:
        return hash_find(H, TB, C, tid, ahi, alo, pb, chi, clo) >= 0
    row = hash_find(H, TB, C, tid, ahi, alo, pb, EMPTY, EMPTY)
    return row >= 0 and in_cidrs(C, np.int64(H[row, 5]), np.int64(H[row, 6]), chi, clo)


@njit(cache=True, inline="always", _nrt=False)  # type: ignore[call-overload]
def address_passes(R, C, H, TB, r, kind_col, hi, lo):
    """Rule ``r``'s source (``kind_col`` = SRC_KIND) or destination (DST_KIND) match: CIDRs or a set, maybe
    negated (the columns after ``kind_col``: set id or CIDR start, CIDR count, negation)."""
    k = R[r, kind_col]
    if not k:
        return True
    if k == ADDR_CIDRS:
        hit = in_cidrs(C, np.int64(R[r, kind_col + 1]), np.int64(R[r, kind_col + 2]), hi, lo)
    else:
        hit = hash_find(H, TB, C, np.int64(R[r, kind_col + 1]), hi, lo, EMPTY, EMPTY, EMPTY) >= 0
    return hit != (R[r, kind_col + 3] != 0)


@njit(cache=True, inline="always", _nrt=False)  # type: ignore[call-overload]
def header_matches(R, C, H, TB, r, shi, slo, dhi, dlo, pr, dp):
    """Rule ``r``'s protocol, port and address matches (what most rules fail on)."""
    if R[r, NEVER]:
        return False
    if R[r, PROTO] and R[r, PROTO] != pr:
        return False
    if R[r, DPORT] and R[r, DPORT] != dp:
        return False
    return address_passes(R, C, H, TB, r, np.int64(SRC_KIND), shi, slo) and address_passes(
        R, C, H, TB, r, np.int64(DST_KIND), dhi, dlo
    )


@njit(cache=True, inline="always", _nrt=False)  # type: ignore[call-overload]
def state_matches(rules, r, shi, slo, dhi, dlo, dp, pb, t, ctstate, masq, affinity, rng):
    """Rule ``r``'s other matches, in order: local addresses, conntrack state, mark, ipset, affinity, and last its
    ``statistic`` draw, if any."""
    R = rules.R
    if R[r, SRC_LOCAL] and is_local(rules.LOCAL, shi, slo) != (R[r, SRC_LOCAL] == 1):
        return False
    if R[r, DST_LOCAL] and is_local(rules.LOCAL, dhi, dlo) != (R[r, DST_LOCAL] == 1):
        return False
    if R[r, CT] and ((ctstate & R[r, CT]) != 0) == (R[r, CT_NEG] != 0):
        return False
    if R[r, MARK] and masq != (R[r, MARK] == 1):
        return False
    if R[r, IPSET] >= 0:
        tid = np.int64(R[r, IPSET])
        kind = rules.IPSET_KINDS[tid]
        hit = ipset_match(rules.H, rules.TB, rules.C, tid, kind, np.int64(R[r, IPSET_DIR]), shi, slo, dhi, dlo, pb, dp)
        if hit == (R[r, IPSET_NEG] != 0):
            return False
    if R[r, AFF_CHECK]:
        a = R[r, AFF_CHECK] - 1
        if affinity_find(affinity, np.uint64(a + 1), shi, slo, t, rules.AFF_TIMEOUT[a]) < 0:
            return False
    return not (rules.P[r] >= 0.0 and splitmix_unit(rng) >= rules.P[r])


@njit(cache=True, inline="always", _nrt=False)  # type: ignore[call-overload]
def rule_verdict(R, H, TB, C, NG, r, dhi, dlo, pb, rng):
    """(action, argument) of matched rule ``r``: its own, a verdict map's element (``A_NONE`` when the key is not
    in the map) or a ``numgen`` pick."""
    action = np.int64(R[r, ACTION])
    arg = np.int64(R[r, ARG])
    if R[r, LOOKUP]:
        tid = np.int64(R[r, LOOKUP_TID])
        if R[r, LOOKUP] == 3:
            row = hash_find(H, TB, C, tid, dhi, dlo, pb, EMPTY, EMPTY)
        else:
            row = hash_find(H, TB, C, tid, EMPTY, EMPTY, pb, EMPTY, EMPTY)
        if row < 0:
            return np.int64(A_NONE), np.int64(0)
        return np.int64(H[row, 5]), np.int64(H[row, 6])
    if action == A_NUMGEN:
        n = np.int64(R[r, ARG2])
        pick = arg + min(np.int64(splitmix_unit(rng) * n), n - 1)
        return NG[pick, 0], NG[pick, 1]
    return action, arg


@njit(cache=True, error_model="numpy", _nrt=False)  # type: ignore[call-overload]
def walk_chain(entry, rules, shi, slo, dhi, dlo, pr, dp, pb, t, ctstate, masq, affinity, rng, stack):
    """Run the packet through entry chain ``entry`` and the chains it jumps to: (final action or ``A_NONE``, its
    argument, masquerade flag, rules evaluated)."""
    R, C, H, TB, CH = rules.R, rules.C, rules.H, rules.TB, rules.CH
    chain = entry
    pos = CH[chain, 0]
    end = CH[chain, 0] + CH[chain, 1]
    depth = 0
    count = 0
    while True:
        if pos < end:
            r = pos
            pos += 1
            count += 1
            if not header_matches(R, C, H, TB, r, shi, slo, dhi, dlo, pr, dp):
                continue
            if not state_matches(rules, r, shi, slo, dhi, dlo, dp, pb, t, ctstate, masq, affinity, rng):
                continue
            if R[r, SET_MASQ] == 1:
                masq = True
            if R[r, AFF_UPDATE]:
                affinity_set(affinity, rules.AFF_TIMEOUT, np.uint64(R[r, AFF_UPDATE]), shi, slo, t, 0)
            action, arg = rule_verdict(R, H, TB, C, rules.NG, r, dhi, dlo, pb, rng)
            if action == A_NONE:
                continue
            if action in (A_JUMP, A_GOTO):
                if action == A_JUMP:
                    stack.chain[depth], stack.pos[depth] = chain, pos
                    depth += 1
                chain = arg
                pos = CH[chain, 0]
                end = CH[chain, 0] + CH[chain, 1]
                continue
            if action != A_RETURN:
                return action, arg, masq, count
        # the chain ran out, or RETURN: back to the rule after the jump, or out of the entry chain
        if depth == 0:
            return np.int64(A_NONE), np.int64(0), masq, count
        depth -= 1
        chain, pos = stack.chain[depth], stack.pos[depth]
        end = CH[chain, 0] + CH[chain, 1]


@njit(cache=True, inline="always", error_model="numpy", _nrt=False)  # type: ignore[call-overload]
def match_packet(packets, i, rules, ipvs, affinity, rng, stack):
    """Packet ``i`` through every stage, then IPVS: (``OUT_*`` outcome, endpoint or -1, masquerade, rules)."""
    shi, slo, dhi, dlo = packets.src_hi[i], packets.src_lo[i], packets.dst_hi[i], packets.dst_lo[i]
    pr, dp, t = packets.proto[i], packets.dport[i], packets.time[i]
    pb = np.uint64((pr << 16) | dp)
    masq = np.bool_(False)  # (np types: a literal would make walk_chain compile twice)
    ep = np.int64(-1)
    outcome = OUT_NONE
    count = 0
    ctstate = np.int64(CT_NEW)
    done = False
    skip = -1
    STAGES, EP = rules.STAGES, rules.EP
    for s in range(STAGES.shape[0]):
        if done:
            break
        if STAGES[s, 0] == skip:
            continue  # an entry of this hook already ended it (DNAT in nat, ACCEPT in filter)
        result, arg, masq, evaluated = walk_chain(
            STAGES[s, 1], rules, shi, slo, dhi, dlo, pr, dp, pb, t, ctstate, masq, affinity, rng, stack
        )
        count += evaluated
        if result == A_DNAT:
            ep = arg
            dhi, dlo = EP[ep, 0], EP[ep, 1]
            dp = np.int64(EP[ep, 2])
            pb = np.uint64((pr << 16) | dp)
            ctstate |= CT_DNAT
            skip = STAGES[s, 0]
        elif result == A_ACCEPT:
            skip = STAGES[s, 0]
            if STAGES[s, 2] == 1:  # filter: delivered or forwarded as is
                done = True
                if ep < 0:
                    outcome = OUT_ACCEPT
        elif result in (A_DROP, A_REJECT):
            outcome = OUT_DROP if result == A_DROP else OUT_REJECT
            done = True
            ep = -1
    if not done and ep < 0 and ipvs.IV_HEAD.shape[0] > 0:
        n_aff = rules.AFF_TIMEOUT.shape[0] - ipvs.VS.shape[0]
        ep, compared, refused = ipvs_lookup(dhi, dlo, pr, dp, shi, slo, t, n_aff, ipvs, affinity, rules.AFF_TIMEOUT)
        count += compared
        if refused:
            outcome = OUT_REJECT
        elif ep >= 0 and EP[ep, 0] == shi and EP[ep, 1] == slo:
            masq = True  # KUBE-LOOP-BACK: hairpin traffic is masqueraded in POSTROUTING
    if ep >= 0 and outcome == OUT_NONE:
        outcome = OUT_DNAT
    return outcome, ep, masq, count


@njit(cache=True, error_model="numpy", _nrt=False)  # type: ignore[call-overload]
def run_packets(packets, rules, ipvs, affinity, rng, stack, out):
    """Match each packet of ``packets`` (:class:`PacketArrays`) against ``rules`` (:class:`RuleTables`) and
    ``ipvs`` (:class:`IpvsTables`), updating ``affinity``, the one-element splitmix state ``rng`` and the IPVS
    schedulers; write each packet's outcome, endpoint, masquerade flag and rules evaluated to ``out``
    (:class:`Verdicts`). ``stack`` (:class:`Stack`) is scratch space."""
    for i in range(packets.src_hi.shape[0]):
        outcome, ep, masq, count = match_packet(packets, i, rules, ipvs, affinity, rng, stack)
        out.kind[i] = outcome
        out.endpoint[i] = ep
        out.masq[i] = masq
        out.rules[i] = count


@njit(cache=True, _nrt=False)  # type: ignore[call-overload]
def ipvs_lookup(dhi, dlo, pr, dp, shi, slo, t, n_aff, ipvs, affinity, AFF_TIMEOUT):
    """``ip_vs_service_find`` + schedule: (endpoint or -1, entries compared, refused: a VS without servers)."""
    folded = fold(dhi, dlo)
    port = np.uint64(dp)
    h = (np.uint64(pr) ^ folded ^ (port >> np.uint64(8)) ^ port) & np.uint64(255)
    IV_KEY, IV_NEXT = ipvs.IV_KEY, ipvs.IV_NEXT
    v = ipvs.IV_HEAD[h]
    compared = 1
    while v >= 0 and not (IV_KEY[v, 0] == dhi and IV_KEY[v, 1] == dlo and IV_KEY[v, 2] == np.uint64((pr << 16) | dp)):
        v = IV_NEXT[v]
        compared += 1
    if v < 0:
        return -1, compared, False
    row, refused = ipvs_schedule(v, shi, slo, t, n_aff, ipvs, affinity, AFF_TIMEOUT)
    return (ipvs.RS[row, RS_ENDPOINT] if row >= 0 else -1), compared, refused


@njit(cache=True, inline="always", _nrt=False)  # type: ignore[call-overload]
def ipvs_schedule(v, shi, slo, t, n_aff, ipvs, affinity, AFF_TIMEOUT):
    """Persistence template, else the scheduler: (the real server's RS row or -1, refused: none available)."""
    VS, RS = ipvs.VS, ipvs.RS
    start, n = VS[v, VS_START], VS[v, VS_COUNT]
    persist = VS[v, VS_PERSIST]
    rs = -1
    if persist > 0:
        slot = affinity_find(affinity, np.uint64(n_aff + v + 1), shi, slo, t, float(persist))
        if slot >= 0 and RS[start + affinity.value[slot], RS_WEIGHT] > 0:
            rs = affinity.value[slot]
    if rs < 0:
        rs = schedule(ipvs, v, start, n, shi, slo)
    if rs < 0:
        return -1, True
    if persist > 0:
        affinity_set(affinity, AFF_TIMEOUT, np.uint64(n_aff + v + 1), shi, slo, t, rs)
    RS[start + rs, RS_ACTIVE] += 1
    return start + rs, False


@njit(cache=True, inline="always", _nrt=False)  # type: ignore[call-overload]
def schedule(ipvs, v, start, n, shi, slo):
    """Virtual server ``v``'s scheduler: the index of the real server it picks, or -1."""
    VS, RS = ipvs.VS, ipvs.RS
    sched = VS[v, VS_SCHED]
    if sched == SCHED_RR:
        return round_robin(RS, start, n, VS, v)
    if sched == SCHED_WRR:
        return weighted_round_robin(RS, start, n, VS, v)
    if sched == SCHED_LC:
        rs, best = -1, np.int64(0)
        for k in range(n):
            if RS[start + k, RS_WEIGHT] == 0:
                continue
            overhead = RS[start + k, RS_ACTIVE] << 8
            if rs < 0 or overhead < best:
                rs, best = k, overhead
        return rs
    key = (fold(shi, slo) * np.uint64(0x61C88647)) & np.uint64(0xFFFFFFFF)
    k = ipvs.SH_TAB[v, np.int64(key >> np.uint64(24))]
    return k if k >= 0 and RS[start + k, RS_WEIGHT] > 0 else -1


@njit(cache=True, inline="always", _nrt=False)  # type: ignore[call-overload]
def round_robin(RS, start, n, VS, v):
    """``ip_vs_rr_schedule``: the next real server with weight after the last one picked."""
    pos = VS[v, VS_POS]
    for k in range(pos + 1, n):
        if RS[start + k, RS_WEIGHT] > 0:
            VS[v, VS_POS] = k
            return k
    if pos >= 0:
        for k in range(pos + 1):
            if RS[start + k, RS_WEIGHT] > 0:
                VS[v, VS_POS] = k
                return k
    return -1


@njit(cache=True, inline="always", _nrt=False)  # type: ignore[call-overload]
def weighted_round_robin(RS, start, n, VS, v):
    """``ip_vs_wrr_schedule``: real servers in turn, each while its weight reaches the current weight."""
    cl, cw, mw, di = VS[v, VS_POS], VS[v, VS_CW], VS[v, VS_MW], VS[v, VS_DI]
    if mw == 0:
        return -1
    pos, last, stop = cl, cl, -2
    last_pass = restarted = False
    while True:
        for k in range(pos + 1, n):
            if RS[start + k, RS_WEIGHT] >= cw and RS[start + k, RS_WEIGHT] > 0:
                VS[v, VS_POS], VS[v, VS_CW] = k, cw
                return k
            if k == stop:
                VS[v, VS_CW] = cw
                return -1
        pos = -1
        cw -= di
        if cw <= 0:
            cw = mw
            if last_pass or last == -1:
                VS[v, VS_CW] = cw
                return -1
            restarted = True
        last_pass = cw <= di
        if last_pass and restarted and last != -1:
            stop = last
