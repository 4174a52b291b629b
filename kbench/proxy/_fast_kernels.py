"""Numba kernels of the fast paths (``kbench/proxy/fastpath.py``): nftables' verdict map and IPVS' table.

Each works in two passes over a batch, each pass of independent iterations, so the processor overlaps the
packets' memory accesses: first the map lookup of every packet, then the rest. Packets without a fast
record get outcome -1 and are matched by ``_kernels.run_packets``.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from kbench.proxy._kernels import EMPTY, OUT_DNAT, OUT_REJECT, RS_ENDPOINT, RS_HI, RS_LO, _mix, ipvs_schedule
from kbench.sim._kernels import splitmix_step


@njit(cache=True, inline="always", _nrt=False)
def _lookup(H, mask, k0, k1, k2):
    """(value 0, value 1) of a fast record, or (-1, 0): hash_find written out for the fast loops."""
    slot = _mix(k0, k1, k2, EMPTY, EMPTY) & mask
    while H[slot, 7] != EMPTY:
        if H[slot, 0] == k0 and H[slot, 1] == k1 and H[slot, 2] == k2:
            return np.int64(H[slot, 5]), np.int64(H[slot, 6])
        slot = (slot + np.uint64(1)) & mask
    return np.int64(-1), np.int64(0)


@njit(cache=True, _nrt=False)
def _first_pass(src_hi, proto, dst_hi, dst_lo, dport, H, mask, rec, span):
    for i in range(src_hi.shape[0]):
        rec[i], span[i] = _lookup(H, mask, dst_hi[i], dst_lo[i], np.uint64((proto[i] << 16) | dport[i]))


@njit(cache=True, error_model="numpy", _nrt=False)
def run_nft_fast(
    src_hi, src_lo, proto, dst_hi, dst_lo, dport, H, mask, FC, FE, rng, rec, span, out_kind, out_ep, out_masq, out_rules
):
    """nftables: ``rec`` = first endpoint row << 10 | CIDR index << 2 | masquerade kind, ``span`` = endpoints."""
    _first_pass(src_hi, proto, dst_hi, dst_lo, dport, H, mask, rec, span)
    state = rng[0]
    for i in range(src_hi.shape[0]):
        r = rec[i]
        if r < 0:
            out_kind[i] = -1
            continue
        kind = r & 3  # masquerade: 0 never, 1 always, 2 sources outside CIDR FC[(r >> 2) & 255]
        masq = kind == 1
        if kind == 2:
            c = (r >> 2) & 255
            masq = not ((src_hi[i] & FC[c, 2]) == FC[c, 0] and (src_lo[i] & FC[c, 3]) == FC[c, 1])
        count = span[i]
        state, u = splitmix_step(np.uint64(state))  # (np.uint64: keeps the type when run as plain Python)
        e = (r >> 10) + min(np.int64(u * count), count - 1)
        mark_rules = FE[e, 4]
        rules = FE[e, 1] + (mark_rules if masq else 0)
        if FE[e, 2] == np.int64(src_hi[i]) and FE[e, 3] == np.int64(src_lo[i]):
            masq = True  # hairpin: the endpoint chain's first rule jumps to mark-for-masquerade
            rules += mark_rules
        out_kind[i] = OUT_DNAT
        out_ep[i] = FE[e, 0]
        out_masq[i] = masq
        out_rules[i] = rules
    rng[0] = state


@njit(cache=True, error_model="numpy", _nrt=False)
def run_ipvs_fast(
    src_hi,
    src_lo,
    proto,
    dst_hi,
    dst_lo,
    dport,
    time,
    H,
    mask,
    FC,
    LOCAL,
    CT,
    n_aff,
    VS,
    RS,
    SH_TAB,
    AK,
    AT,
    AV,
    AFF_TIMEOUT,
    rec,
    span,
    out_kind,
    out_ep,
    out_masq,
    out_rules,
):
    """IPVS: ``rec`` = class-table row << 20 | virtual server, ``span`` = its position in the hash bucket (the
    kernel's comparisons). The source's class (which of the rules' source CIDRs hold it, whether it is local)
    picks the precomputed outcome of the iptables rules: CT = (-1 unknown, 0 on to IPVS, or a verdict;
    masquerade; rules evaluated)."""
    _first_pass(src_hi, proto, dst_hi, dst_lo, dport, H, mask, rec, span)
    n_cidrs = FC.shape[0]
    for i in range(src_hi.shape[0]):  # the iptables rules' outcome for the source's class
        r = rec[i]
        if r < 0:
            out_kind[i] = -1
            continue
        shi, slo = src_hi[i], src_lo[i]
        cls = 0
        for c in range(n_cidrs):
            if (shi & FC[c, 2]) == FC[c, 0] and (slo & FC[c, 3]) == FC[c, 1]:
                cls |= 1 << c
        for k in range(LOCAL.shape[0]):
            if LOCAL[k, 0] == shi and LOCAL[k, 1] == slo:
                cls |= 1 << n_cidrs
                break
        row = (r >> 20) + cls
        out_kind[i] = CT[row, 0]
        out_masq[i] = CT[row, 1] != 0
        out_rules[i] = CT[row, 2] + span[i]
        out_ep[i] = -1
    for i in range(src_hi.shape[0]):  # on to IPVS: schedule as the kernel does
        if out_kind[i] != 0:
            if out_kind[i] > 0:
                out_rules[i] -= span[i]
            continue
        shi, slo = src_hi[i], src_lo[i]
        row, refused = ipvs_schedule(
            rec[i] & 0xFFFFF, shi, slo, time[i], n_aff, VS, RS, SH_TAB, AK, AT, AV, AFF_TIMEOUT
        )
        out_kind[i] = OUT_REJECT if refused else OUT_DNAT
        if row >= 0:
            out_ep[i] = RS[row, RS_ENDPOINT]
            if RS[row, RS_HI] == np.int64(shi) and RS[row, RS_LO] == np.int64(slo):
                out_masq[i] = True  # KUBE-LOOP-BACK
