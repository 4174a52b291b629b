"""Numba kernels of the fast paths (``kbench/proxy/fastpath.py``): nftables' verdict map and IPVS' table.

Each works in two passes over a batch, each pass of independent iterations, so the processor overlaps the
packets' memory accesses: first the map lookup of every packet, then the rest. Packets without a fast
record get outcome -1 and are matched by ``_kernels.run_packets``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from kbench.proxy._kernels import EMPTY, OUT_DNAT, OUT_REJECT, RS_ENDPOINT, RS_HI, RS_LO, ipvs_schedule, mix
from kbench.sim._kernels import splitmix_step


class NftFastTables(NamedTuple):
    """nftables' fast path: one record per plain ``service-ips`` element."""

    H: np.ndarray
    """uint64 (slots, HROW): records by (address, protocol << 16 | port); value 0 = first endpoint row << 10 |
    CIDR index << 2 | masquerade kind (0 never, 1 always, 2 sources outside CIDR ``FC[index]``), value 1 = the
    number of endpoints."""
    FC: np.ndarray
    """uint64 (cidrs, 4): the masquerade rules' pod CIDRs (network hi, lo, mask hi, lo)."""
    FE: np.ndarray
    """int64 (endpoint slots, 5): endpoint id, rules evaluated when nothing masquerades, address hi and lo (as
    int64), rules of one jump to mark-for-masquerade."""


class IpvsFastTables(NamedTuple):
    """IPVS mode's fast path: one record per virtual server no source-keyed ipset can touch."""

    H: np.ndarray
    """uint64 (slots, HROW): records by (address, protocol << 16 | port); value 0 = class-table row << 20 |
    virtual server, value 1 = its position in its hash bucket (the comparisons the bucket walk makes)."""
    FC: np.ndarray
    """uint64 (cidrs, 4): the source CIDRs the iptables rules test."""
    CT: np.ndarray
    """int64 (servers x classes, 3): per source class, the iptables rules' outcome (-1 unknown, 0 on to IPVS, else
    a verdict), masquerade, rules evaluated."""
    LOCAL: np.ndarray
    """uint64 (addresses, 2): the node's own addresses (a source class bit)."""


class Scratch(NamedTuple):
    """Per-packet results of the first pass."""

    rec: np.ndarray
    """int64: the record's value 0, or -1 without a record."""
    span: np.ndarray
    """int64: the record's value 1."""


@njit(cache=True, inline="always", _nrt=False)  # type: ignore[call-overload]
def lookup(H, mask, k0, k1, k2):
    """(value 0, value 1) of a fast record, or (-1, 0): hash_find written out for the fast loops."""
    slot = mix(k0, k1, k2, EMPTY, EMPTY) & mask
    while H[slot, 7] != EMPTY:
        if H[slot, 0] == k0 and H[slot, 1] == k1 and H[slot, 2] == k2:
            return np.int64(H[slot, 5]), np.int64(H[slot, 6])
        slot = (slot + np.uint64(1)) & mask
    return np.int64(-1), np.int64(0)


@njit(cache=True, _nrt=False)  # type: ignore[call-overload]
def first_pass(packets, H, scratch):
    """Look every packet's (destination, protocol, port) up in the records."""
    proto, dst_hi, dst_lo, dport = packets.proto, packets.dst_hi, packets.dst_lo, packets.dport
    rec, span = scratch.rec, scratch.span
    mask = np.uint64(H.shape[0] - 1)
    for i in range(proto.shape[0]):
        rec[i], span[i] = lookup(H, mask, dst_hi[i], dst_lo[i], np.uint64((proto[i] << 16) | dport[i]))


@njit(cache=True, error_model="numpy", _nrt=False)  # type: ignore[call-overload]
def run_nft_fast(packets, fast, rng, scratch, out):
    """nftables: resolve the packets with a record (:class:`NftFastTables`) into ``out``; the others get -1."""
    first_pass(packets, fast.H, scratch)
    src_hi, src_lo, FC, FE = packets.src_hi, packets.src_lo, fast.FC, fast.FE
    rec, span = scratch.rec, scratch.span
    out_kind, out_ep, out_masq, out_rules = out.kind, out.endpoint, out.masq, out.rules
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


@njit(cache=True, inline="always", _nrt=False)  # type: ignore[call-overload]
def source_class(fast, shi, slo):
    """Which of the rules' source CIDRs hold the source (bit c for ``FC[c]``), and whether it is local."""
    FC, LOCAL = fast.FC, fast.LOCAL
    n_cidrs = FC.shape[0]
    cls = 0
    for c in range(n_cidrs):
        if (shi & FC[c, 2]) == FC[c, 0] and (slo & FC[c, 3]) == FC[c, 1]:
            cls |= 1 << c
    for k in range(LOCAL.shape[0]):
        if LOCAL[k, 0] == shi and LOCAL[k, 1] == slo:
            cls |= 1 << n_cidrs
            break
    return cls


@njit(cache=True, error_model="numpy", _nrt=False)  # type: ignore[call-overload]
def run_ipvs_fast(packets, fast, n_aff, ipvs, affinity, AFF_TIMEOUT, scratch, out):
    """IPVS: resolve the packets with a record (:class:`IpvsFastTables`) into ``out``; the others get -1. The
    source's class picks the precomputed outcome of the iptables rules; traffic on to IPVS is scheduled as the
    rule machine does (``ipvs_schedule``), with the comparisons of the bucket walk added."""
    first_pass(packets, fast.H, scratch)
    src_hi, src_lo, CT, RS = packets.src_hi, packets.src_lo, fast.CT, ipvs.RS
    rec, span = scratch.rec, scratch.span
    out_kind, out_ep, out_masq, out_rules = out.kind, out.endpoint, out.masq, out.rules
    for i in range(src_hi.shape[0]):  # the iptables rules' outcome for the source's class
        r = rec[i]
        if r < 0:
            out_kind[i] = -1
            continue
        row = (r >> 20) + source_class(fast, src_hi[i], src_lo[i])
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
        row, refused = ipvs_schedule(rec[i] & 0xFFFFF, shi, slo, packets.time[i], n_aff, ipvs, affinity, AFF_TIMEOUT)
        out_kind[i] = OUT_REJECT if refused else OUT_DNAT
        if row >= 0:
            out_ep[i] = RS[row, RS_ENDPOINT]
            if RS[row, RS_HI] == np.int64(shi) and RS[row, RS_LO] == np.int64(slo):
                out_masq[i] = True  # KUBE-LOOP-BACK
