"""Numba kernels of the fast paths (``kbench/proxy/fastpath.py``): nftables' verdict map and IPVS' table.

Each works in passes over a batch, each pass of independent iterations: first the map lookup of every packet,
then the rest. A pass over random rows (the map, the endpoints, the virtual servers) asks for the row of the
packet ``AHEAD`` places on (:func:`prefetch`), so about that many cache misses are under way at once instead of
the few the processor finds by itself; the tables' rows are aligned to cache lines, one line a row. Packets
without a fast record get outcome -1 and are matched by ``_kernels.run_packets``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from llvmlite import ir  # type: ignore[import-untyped]
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic, overload

from kbench.proxy._kernels import (
    EMPTY,
    OUT_DNAT,
    OUT_REJECT,
    RS_ENDPOINT,
    RS_HI,
    RS_LO,
    VS_POS,
    VS_START,
    ipvs_schedule,
    mix,
)
from kbench.sim._kernels import splitmix_step

AHEAD = 12
"""Packets between a row's prefetch and its use."""
VS_AHEAD, RS_AHEAD = 24, 10
"""IPVS' scheduling loop: packets between the prefetch of a virtual server's row and its use, and between the
prefetch of the real server's row its round robin picks next (read from that virtual server's row, in cache by then)
and its use. At 30,000 Services x 10 endpoints (AMD EPYC, 2 cores) these, the outcome rows prefetched too and the
servers' rows aligned to cache lines (``MatchState.fresh``) match 24.8-26.2 M packets/s against 14.1-16.0 M before
(medians of nine batches of 1 M, three runs each, alternated); the two distances are the best of those tried."""


class NftFastTables(NamedTuple):
    """nftables' fast path: one record per plain ``service-ips`` element."""

    H: np.ndarray
    """uint64 (slots, HROW): records by (address, protocol << 16 | port); value 0 = first endpoint row << 10 |
    CIDR index << 2 | masquerade kind (0 never, 1 always, 2 sources outside CIDR ``FC[index]``), value 1 = the
    number of endpoints."""
    FC: np.ndarray
    """uint64 (cidrs, 4): the masquerade rules' pod CIDRs (network hi, lo, mask hi, lo)."""
    FE: np.ndarray
    """int64 (endpoint slots, 4), rows aligned to cache lines: endpoint id, rules evaluated when nothing
    masquerades, address hi and lo (as int64)."""
    mark_rules: int
    """Rules of one jump to mark-for-masquerade."""


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
    """int64: the packet's hash slot, then the record's value 0, or -1 without a record."""
    span: np.ndarray
    """int64: the record's value 1; nftables: then the endpoint row drawn."""


def prefetch(table: np.ndarray, row: int) -> None:
    """Start loading the cache line of ``table[row, 0]`` (a hint: nothing changes; in plain Python it does nothing)."""


@intrinsic
def _prefetch_line(typingctx, table, row):
    """LLVM's prefetch of ``&table[row, 0]``: for reading, kept in every cache level."""

    def codegen(context, builder, signature, args):
        array = context.make_array(signature.args[0])(context, builder, args[0])
        pointer = cgutils.get_item_pointer2(
            context,
            builder,
            array.data,
            cgutils.unpack_tuple(builder, array.shape),
            cgutils.unpack_tuple(builder, array.strides),
            signature.args[0].layout,
            [args[1], context.get_constant(types.intp, 0)],
            wraparound=False,
        )
        byte_pointer = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        function = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [byte_pointer, i32, i32, i32]), "llvm.prefetch.p0i8"
        )
        builder.call(function, [builder.bitcast(pointer, byte_pointer), i32(0), i32(3), i32(1)])
        return context.get_dummy_value()

    return types.none(table, types.intp), codegen


@overload(prefetch, inline="always")
def _prefetch_overload(table, row):
    def impl(table, row):
        _prefetch_line(table, np.intp(row))

    return impl


@njit(cache=True, _nrt=False)  # type: ignore[call-overload]
def first_pass(packets, H, scratch):
    """Look every packet's (destination, protocol, port) up in the records: hash every key, then probe each slot
    with the slot of the packet ``AHEAD`` on in flight."""
    proto, dst_hi, dst_lo, dport = packets.proto, packets.dst_hi, packets.dst_lo, packets.dport
    rec, span = scratch.rec, scratch.span
    mask = np.uint64(H.shape[0] - 1)
    n = proto.shape[0]
    for i in range(n):
        rec[i] = np.int64(mix(dst_hi[i], dst_lo[i], np.uint64((proto[i] << 16) | dport[i]), EMPTY, EMPTY) & mask)
    for i in range(n):
        if i + AHEAD < n:
            prefetch(H, rec[i + AHEAD])
        k0, k1, k2 = dst_hi[i], dst_lo[i], np.uint64((proto[i] << 16) | dport[i])
        slot = np.uint64(rec[i])
        rec[i], span[i] = -1, 0
        while H[slot, 7] != EMPTY:  # hash_find written out for the fast loops
            if H[slot, 0] == k0 and H[slot, 1] == k1 and H[slot, 2] == k2:
                rec[i], span[i] = np.int64(H[slot, 5]), np.int64(H[slot, 6])
                break
            slot = (slot + np.uint64(1)) & mask


@njit(cache=True, error_model="numpy", _nrt=False)  # type: ignore[call-overload]
def run_nft_fast(packets, fast, rng, scratch, out):
    """nftables: resolve the packets with a record (:class:`NftFastTables`) into ``out``; the others get -1."""
    first_pass(packets, fast.H, scratch)
    src_hi, src_lo, FC, FE, mark_rules = packets.src_hi, packets.src_lo, fast.FC, fast.FE, fast.mark_rules
    rec, span = scratch.rec, scratch.span
    out_kind, out_ep, out_masq, out_rules = out.kind, out.endpoint, out.masq, out.rules
    n = src_hi.shape[0]
    state = rng[0]
    for j in range(min(AHEAD, n)):  # numgen draws in packet order, AHEAD packets before their use
        if rec[j] >= 0:
            state, span[j] = draw_endpoint(rec[j], span[j], state)
    for i in range(n):
        j = i + AHEAD
        if j < n and rec[j] >= 0:
            state, span[j] = draw_endpoint(rec[j], span[j], state)
            prefetch(FE, span[j])
        r = rec[i]
        if r < 0:
            out_kind[i] = -1
            continue
        kind = r & 3  # masquerade: 0 never, 1 always, 2 sources outside CIDR FC[(r >> 2) & 255]
        masq = kind == 1
        if kind == 2:
            c = (r >> 2) & 255
            masq = not ((src_hi[i] & FC[c, 2]) == FC[c, 0] and (src_lo[i] & FC[c, 3]) == FC[c, 1])
        e = span[i]
        rules = FE[e, 1] + (mark_rules if masq else 0)
        if FE[e, 2] == np.int64(src_hi[i]) and FE[e, 3] == np.int64(src_lo[i]):
            masq = True  # hairpin: the endpoint chain's first rule jumps to mark-for-masquerade
            rules += mark_rules
        out_kind[i] = OUT_DNAT
        out_ep[i] = FE[e, 0]
        out_masq[i] = masq
        out_rules[i] = rules
    rng[0] = state


@njit(cache=True, inline="always", error_model="numpy", _nrt=False)  # type: ignore[call-overload]
def draw_endpoint(r, count, state):
    """numgen: the endpoint row of a packet whose record's value 0 is ``r``, among its ``count``; and the random
    stream's next state."""
    state, u = splitmix_step(np.uint64(state))  # (np.uint64: keeps the type when run as plain Python)
    return state, (r >> 10) + min(np.int64(u * count), count - 1)


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
    src_hi, src_lo, CT, VS, RS = packets.src_hi, packets.src_lo, fast.CT, ipvs.VS, ipvs.RS
    rec, span = scratch.rec, scratch.span
    out_kind, out_ep, out_masq, out_rules = out.kind, out.endpoint, out.masq, out.rules
    n = src_hi.shape[0]
    for i in range(n):  # the row of the iptables rules' outcome for the source's class (in out_ep for now)
        r = rec[i]
        out_ep[i] = -1 if r < 0 else (r >> 20) + source_class(fast, src_hi[i], src_lo[i])
    for i in range(n):  # that outcome
        if i + AHEAD < n and out_ep[i + AHEAD] >= 0:
            prefetch(CT, out_ep[i + AHEAD])
        row = out_ep[i]
        if row < 0:
            out_kind[i] = -1
            continue
        out_kind[i] = CT[row, 0]
        out_masq[i] = CT[row, 1] != 0
        out_rules[i] = CT[row, 2] + span[i]
        out_ep[i] = -1
    for i in range(n):  # on to IPVS: schedule as the kernel does
        if i + VS_AHEAD < n and out_kind[i + VS_AHEAD] == 0:
            prefetch(VS, rec[i + VS_AHEAD] & 0xFFFFF)
        if i + RS_AHEAD < n and out_kind[i + RS_AHEAD] == 0:  # round robin's next pick (a hint for the others)
            v = rec[i + RS_AHEAD] & 0xFFFFF
            pick = VS[v, VS_START] + VS[v, VS_POS] + 1
            if pick < RS.shape[0]:  # past the last row (a server without endpoints, or another scheduler's state)
                prefetch(RS, pick)
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
