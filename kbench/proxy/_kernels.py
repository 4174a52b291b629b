"""Numba kernels: a small rule machine that runs compiled iptables / nftables rules, and the IPVS lookup.

A program (see ``kbench/proxy/matcher.py``) is struct-of-arrays: rules as rows of ``R`` (match fields, side
effects, action) grouped by chain, CIDR lists, one open-addressing hash table ``H`` for every exact-match set,
ipset and verdict map, ``numgen`` target lists, endpoints, and the IPVS service table. For each packet the
kernel walks the entry chains of each stage (nat, then filter) like the kernel walks hooks: jumps push a
frame, ``goto`` replaces it, a DNAT ends the nat stage and rewrites the destination, DROP / REJECT end the
packet. It counts every rule it evaluates, which is what the first-packet cost model charges.

Addresses are 128-bit ``(hi, lo)`` pairs, IPv4 mapped into ``::ffff:0:0/96``. Random choices (``statistic``,
``numgen``) draw from a splitmix64 state; affinity (``recent``, nft affinity sets, IPVS persistence) lives in
a hash table of (set, client) -> (last seen, value) with per-set timeouts.
"""

from __future__ import annotations

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


@njit(cache=True, inline="always", _nrt=False)
def _mix(a, b, c, d, e):
    h = a * np.uint64(0x9E3779B97F4A7C15) ^ b
    h = (h ^ (h >> np.uint64(29))) * np.uint64(0xBF58476D1CE4E5B9) ^ c
    h = (h ^ (h >> np.uint64(32))) * np.uint64(0x94D049BB133111EB) ^ d
    h = (h ^ (h >> np.uint64(29))) * np.uint64(0x9E3779B97F4A7C15) ^ e
    return h ^ (h >> np.uint64(32))


@njit(cache=True, _nrt=False)
def _in_cidrs(C, start, count, hi, lo):
    for k in range(start, start + count):  # noqa: SIM110 (no generators in Numba)
        if (hi & C[k, 2]) == C[k, 0] and (lo & C[k, 3]) == C[k, 1]:
            return True
    return False


@njit(cache=True, _nrt=False)
def hash_insert(H, offset, mask, k0, k1, k2, k3, k4, v0, v1):
    """Insert or overwrite in the table at rows ``offset .. offset + mask``; it must have a free row."""
    slot = _mix(k0, k1, k2, k3, k4) & np.uint64(mask)
    while True:
        row = offset + np.int64(slot)
        if H[row, 7] == EMPTY or (
            H[row, 0] == k0 and H[row, 1] == k1 and H[row, 2] == k2 and H[row, 3] == k3 and H[row, 4] == k4
        ):
            break
        slot = (slot + np.uint64(1)) & np.uint64(mask)
    H[row, 0], H[row, 1], H[row, 2], H[row, 3], H[row, 4] = k0, k1, k2, k3, k4
    H[row, 5], H[row, 6], H[row, 7] = v0, v1, np.uint64(1)


@njit(cache=True, _nrt=False)
def hash_find(H, TB, C, tid, k0, k1, k2, k3, k4):
    """Row of the key in table ``tid``, or -1. ``TB[tid]`` = (offset, mask, entries, guard start, guard count):
    when every key address of a table lies in its guard CIDRs, an address outside them cannot be in it."""
    if TB[tid, 2] == 0:
        return np.int64(-1)
    if TB[tid, 4] > 0 and not _in_cidrs(C, TB[tid, 3], TB[tid, 4], k0, k1):
        return np.int64(-1)
    offset = TB[tid, 0]
    mask = np.uint64(TB[tid, 1])
    slot = _mix(k0, k1, k2, k3, k4) & mask
    while True:
        row = offset + np.int64(slot)
        if H[row, 7] == EMPTY:
            return np.int64(-1)
        if H[row, 0] == k0 and H[row, 1] == k1 and H[row, 2] == k2 and H[row, 3] == k3 and H[row, 4] == k4:
            return row
        slot = (slot + np.uint64(1)) & mask


@njit(cache=True, _nrt=False)
def _is_local(LOCAL, hi, lo):
    for k in range(LOCAL.shape[0]):  # noqa: SIM110
        if LOCAL[k, 0] == hi and LOCAL[k, 1] == lo:
            return True
    return False


@njit(cache=True, _nrt=False)
def _fold(hi, lo):
    """IPVS ``ntohl(addr_fold)``: the IPv4 address, or the xor of the four IPv6 words."""
    if hi == EMPTY and (lo >> np.uint64(32)) == np.uint64(0xFFFF):
        return lo & np.uint64(0xFFFFFFFF)
    return (hi >> np.uint64(32)) ^ (hi & np.uint64(0xFFFFFFFF)) ^ (lo >> np.uint64(32)) ^ (lo & np.uint64(0xFFFFFFFF))


@njit(cache=True, inline="always", _nrt=False)
def _aff_find(AK, AT, set_id, hi, lo, now, timeout):
    """Slot of a live affinity entry, or -1."""
    mask = np.uint64(AK.shape[0] - 1)
    slot = _mix(set_id, hi, lo, EMPTY, EMPTY) & mask
    for _ in range(AFF_PROBES):
        if AK[slot, 0] == EMPTY:
            return np.int64(-1)
        if AK[slot, 0] == set_id and AK[slot, 1] == hi and AK[slot, 2] == lo:
            return np.int64(slot) if now - AT[slot] <= timeout else np.int64(-1)
        slot = (slot + np.uint64(1)) & mask
    return np.int64(-1)


@njit(cache=True, inline="always", _nrt=False)
def _aff_set(AK, AT, AV, AFF_TIMEOUT, set_id, hi, lo, now, value):
    """Record (set, client) at ``now``: reuse its slot, an empty or expired one, else evict the oldest probed."""
    mask = np.uint64(AK.shape[0] - 1)
    slot = _mix(set_id, hi, lo, EMPTY, EMPTY) & mask
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
    AV[victim] = value


@njit(cache=True, _nrt=False)
def _ipset_match(H, TB, C, tid, kind, dirs, shi, slo, dhi, dlo, pb, dp):
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
    return row >= 0 and _in_cidrs(C, np.int64(H[row, 5]), np.int64(H[row, 6]), chi, clo)


@njit(cache=True, error_model="numpy", _nrt=False)
def run_packets(
    src_hi,
    src_lo,
    proto,
    dst_hi,
    dst_lo,
    dport,
    now,
    R,
    P,
    CH,
    C,
    H,
    TB,
    IPSET_KINDS,
    NG,
    EP,
    LOCAL,
    STAGES,
    AFF_TIMEOUT,
    AK,
    AT,
    AV,
    IV_HEAD,
    IV_NEXT,
    IV_KEY,
    VS,
    RS,
    SH_TAB,
    rng,
    stack_chain,
    stack_pos,
    out_kind,
    out_ep,
    out_masq,
    out_rules,
):
    """Match each packet; write its outcome (OUT_*), endpoint (or -1), masquerade flag and rules evaluated."""
    n_aff = AFF_TIMEOUT.shape[0] - VS.shape[0]
    for i in range(src_hi.shape[0]):
        shi, slo, dhi, dlo = src_hi[i], src_lo[i], dst_hi[i], dst_lo[i]
        pr, dp, t = proto[i], dport[i], now[i]
        pb = np.uint64((pr << 16) | dp)
        masq = False
        ep = -1
        outcome = OUT_NONE
        count = 0
        ctstate = CT_NEW
        done = False
        skip = -1
        for s in range(STAGES.shape[0]):
            if done:
                break
            if STAGES[s, 0] == skip:
                continue  # an entry of this hook already ended it (DNAT in nat, ACCEPT in filter)
            chain = STAGES[s, 1]
            pos = CH[chain, 0]
            end = CH[chain, 0] + CH[chain, 1]
            depth = 0
            result = A_NONE
            while True:
                if pos >= end:
                    if depth == 0:
                        break
                    depth -= 1
                    chain = stack_chain[depth]
                    pos = stack_pos[depth]
                    end = CH[chain, 0] + CH[chain, 1]
                    continue
                r = pos
                pos += 1
                count += 1
                # -- matches -----------------------------------------------------------------------------
                if R[r, NEVER]:
                    continue
                if R[r, PROTO] and R[r, PROTO] != pr:
                    continue
                if R[r, DPORT] and R[r, DPORT] != dp:
                    continue
                # source, then destination (written out twice: a helper taking the arrays costs 2x per rule)
                k = R[r, SRC_KIND]
                if k:
                    if k == ADDR_CIDRS:
                        hit = _in_cidrs(C, R[r, SRC_A], R[r, SRC_B], shi, slo)
                    else:
                        hit = hash_find(H, TB, C, R[r, SRC_A], shi, slo, EMPTY, EMPTY, EMPTY) >= 0
                    if hit == (R[r, SRC_NEG] != 0):
                        continue
                k = R[r, DST_KIND]
                if k:
                    if k == ADDR_CIDRS:
                        hit = _in_cidrs(C, R[r, DST_A], R[r, DST_B], dhi, dlo)
                    else:
                        hit = hash_find(H, TB, C, R[r, DST_A], dhi, dlo, EMPTY, EMPTY, EMPTY) >= 0
                    if hit == (R[r, DST_NEG] != 0):
                        continue
                if R[r, SRC_LOCAL] and _is_local(LOCAL, shi, slo) != (R[r, SRC_LOCAL] == 1):
                    continue
                if R[r, DST_LOCAL] and _is_local(LOCAL, dhi, dlo) != (R[r, DST_LOCAL] == 1):
                    continue
                if R[r, CT] and ((ctstate & R[r, CT]) != 0) == (R[r, CT_NEG] != 0):
                    continue
                if R[r, MARK] and masq != (R[r, MARK] == 1):
                    continue
                if R[r, IPSET] >= 0:
                    tid = R[r, IPSET]
                    hit = _ipset_match(H, TB, C, tid, IPSET_KINDS[tid], R[r, IPSET_DIR], shi, slo, dhi, dlo, pb, dp)
                    if hit == (R[r, IPSET_NEG] != 0):
                        continue
                if R[r, AFF_CHECK]:
                    a = R[r, AFF_CHECK] - 1
                    if _aff_find(AK, AT, np.uint64(a + 1), shi, slo, t, AFF_TIMEOUT[a]) < 0:
                        continue
                if P[r] >= 0.0 and splitmix_unit(rng) >= P[r]:
                    continue
                # -- side effects and action ---------------------------------------------------------------
                if R[r, SET_MASQ] == 1:
                    masq = True
                if R[r, AFF_UPDATE]:
                    _aff_set(AK, AT, AV, AFF_TIMEOUT, np.uint64(R[r, AFF_UPDATE]), shi, slo, t, 0)
                action = R[r, ACTION]
                arg = R[r, ARG]
                if R[r, LOOKUP]:
                    if R[r, LOOKUP] == 3:
                        row = hash_find(H, TB, C, R[r, LOOKUP_TID], dhi, dlo, pb, EMPTY, EMPTY)
                    else:
                        row = hash_find(H, TB, C, R[r, LOOKUP_TID], EMPTY, EMPTY, pb, EMPTY, EMPTY)
                    if row < 0:
                        continue
                    action = np.int64(H[row, 5])
                    arg = np.int64(H[row, 6])
                elif action == A_NUMGEN:
                    n = R[r, ARG2]
                    pick = arg + min(np.int64(splitmix_unit(rng) * n), n - 1)
                    action = NG[pick, 0]
                    arg = NG[pick, 1]
                if action == A_NONE:
                    continue
                if action == A_JUMP:
                    stack_chain[depth] = chain
                    stack_pos[depth] = pos
                    depth += 1
                    chain = arg
                    pos = CH[chain, 0]
                    end = CH[chain, 0] + CH[chain, 1]
                elif action == A_GOTO:
                    chain = arg
                    pos = CH[chain, 0]
                    end = CH[chain, 0] + CH[chain, 1]
                elif action == A_RETURN:
                    if depth == 0:
                        break
                    depth -= 1
                    chain = stack_chain[depth]
                    pos = stack_pos[depth]
                    end = CH[chain, 0] + CH[chain, 1]
                else:
                    result = action
                    if action == A_DNAT:
                        ep = arg
                    break
            if result == A_DNAT:
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
        if not done and ep < 0 and IV_HEAD.shape[0] > 0:
            ep, cmp, refused = _ipvs(
                dhi, dlo, pr, dp, shi, slo, t, n_aff, IV_HEAD, IV_NEXT, IV_KEY, VS, RS, SH_TAB, AK, AT, AV, AFF_TIMEOUT
            )
            count += cmp
            if refused:
                outcome = OUT_REJECT
            elif ep >= 0 and EP[ep, 0] == shi and EP[ep, 1] == slo:
                masq = True  # KUBE-LOOP-BACK: hairpin traffic is masqueraded in POSTROUTING
        if ep >= 0 and outcome == OUT_NONE:
            outcome = OUT_DNAT
        out_kind[i] = outcome
        out_ep[i] = ep
        out_masq[i] = masq
        out_rules[i] = count


@njit(cache=True, _nrt=False)
def _ipvs(dhi, dlo, pr, dp, shi, slo, t, n_aff, IV_HEAD, IV_NEXT, IV_KEY, VS, RS, SH_TAB, AK, AT, AV, AFF_TIMEOUT):
    """``ip_vs_service_find`` + schedule: (endpoint or -1, entries compared, refused: a VS without servers)."""
    folded = _fold(dhi, dlo)
    port = np.uint64(dp)
    h = (np.uint64(pr) ^ folded ^ (port >> np.uint64(8)) ^ port) & np.uint64(255)
    v = IV_HEAD[h]
    cmp = 1
    while v >= 0 and not (IV_KEY[v, 0] == dhi and IV_KEY[v, 1] == dlo and IV_KEY[v, 2] == np.uint64((pr << 16) | dp)):
        v = IV_NEXT[v]
        cmp += 1
    if v < 0:
        return -1, cmp, False
    row, refused = ipvs_schedule(v, shi, slo, t, n_aff, VS, RS, SH_TAB, AK, AT, AV, AFF_TIMEOUT)
    return (RS[row, RS_ENDPOINT] if row >= 0 else -1), cmp, refused


@njit(cache=True, inline="always", _nrt=False)
def ipvs_schedule(v, shi, slo, t, n_aff, VS, RS, SH_TAB, AK, AT, AV, AFF_TIMEOUT):
    """Persistence template, else the scheduler: (the real server's RS row or -1, refused: none available)."""
    start, n = VS[v, VS_START], VS[v, VS_COUNT]
    persist = VS[v, VS_PERSIST]
    rs = -1
    if persist > 0:
        slot = _aff_find(AK, AT, np.uint64(n_aff + v + 1), shi, slo, t, float(persist))
        if slot >= 0 and RS[start + AV[slot], RS_WEIGHT] > 0:
            rs = AV[slot]
    if rs < 0:
        sched = VS[v, VS_SCHED]
        if sched == SCHED_RR:
            rs = _rr(RS, start, n, VS, v)
        elif sched == SCHED_WRR:
            rs = _wrr(RS, start, n, VS, v)
        elif sched == SCHED_LC:
            best = np.int64(0)
            for k in range(n):
                if RS[start + k, RS_WEIGHT] == 0:
                    continue
                overhead = RS[start + k, RS_ACTIVE] << 8
                if rs < 0 or overhead < best:
                    rs, best = k, overhead
        else:
            key = (_fold(shi, slo) * np.uint64(0x61C88647)) & np.uint64(0xFFFFFFFF)
            k = SH_TAB[v, np.int64(key >> np.uint64(24))]
            rs = k if k >= 0 and RS[start + k, RS_WEIGHT] > 0 else -1
    if rs < 0:
        return -1, True
    if persist > 0:
        _aff_set(AK, AT, AV, AFF_TIMEOUT, np.uint64(n_aff + v + 1), shi, slo, t, rs)
    RS[start + rs, RS_ACTIVE] += 1
    return start + rs, False


@njit(cache=True, inline="always", _nrt=False)
def _rr(RS, start, n, VS, v):
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


@njit(cache=True, inline="always", _nrt=False)
def _wrr(RS, start, n, VS, v):
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
