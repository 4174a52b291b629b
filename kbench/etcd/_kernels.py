"""Numba kernels over the MVCC revision log (struct of arrays).

The log is one ``int64`` array of shape ``(NCOLS, capacity)``: row ``c`` is
column ``c`` of every revision, contiguous. Entry ``i`` is one (main, sub)
revision of one key, in revision order. Per-key state is
a second array ``keys`` of shape ``(3, key_capacity)``: ``keys[LAST, k]`` is the
log index of key ``k``'s newest entry (-1 if none), and ``PREV`` links each entry
to the same key's previous one, so reading a key at a revision walks back from
its newest entry; the current state of a key is one lookup. ``GEN_CREATE`` and
``GEN_VERSION`` hold the key's current generation (version 0 once deleted), so a
put reads only the small per-key array, never the key's last entry deep in the log. A tombstone (delete) has
``VSIZE == TOMBSTONE`` and ends the key's generation.

Kernels take and return arrays and scalars only and know nothing of bytes keys
or values (the front, :mod:`kbench.etcd.mvcc`, maps them to ids and log indices).
"""

from __future__ import annotations

import numpy as np
from numba import njit

MAIN, SUB, KEY, CREATE, VERSION, LEASE, PREV, VSIZE = range(8)
NCOLS = 8
TOMBSTONE = -1
LAST, GEN_CREATE, GEN_VERSION = range(3)  # rows of the per-key state array ``keys``


@njit(cache=True, inline="always")
def _append(log, keys, n, key, main, sub, lease, vsize):
    last = keys[LAST, key]
    if vsize == TOMBSTONE:
        create, version, lease = 0, 0, 0
    elif keys[GEN_VERSION, key] > 0:
        create, version = keys[GEN_CREATE, key], keys[GEN_VERSION, key] + 1
    else:
        create, version = main, 1
    log[MAIN, n] = main
    log[SUB, n] = sub
    log[KEY, n] = key
    log[CREATE, n] = create
    log[VERSION, n] = version
    log[LEASE, n] = lease
    log[PREV, n] = last
    log[VSIZE, n] = vsize
    keys[LAST, key] = n
    keys[GEN_CREATE, key] = create
    keys[GEN_VERSION, key] = version


@njit(cache=True)
def append(log, keys, n, key, main, sub, lease, vsize):
    """Write entry ``n``: a put of ``vsize`` bytes, or a tombstone when ``vsize == TOMBSTONE``."""
    _append(log, keys, n, key, main, sub, lease, vsize)


@njit(cache=True)
def append_puts(log, keys, n, ids, main0, lease, vsizes):
    """Append one put per key id, each its own request: revisions ``main0``, ``main0 + 1``, ..."""
    for i in range(ids.shape[0]):
        _append(log, keys, n + i, ids[i], main0 + i, 0, lease, vsizes[i])
    return n + ids.shape[0]


@njit(cache=True, inline="always")
def _find(log, keys, key, rev):
    i = keys[LAST, key]
    while i >= 0 and log[MAIN, i] > rev:
        i = log[PREV, i]
    if i >= 0 and log[VSIZE, i] == TOMBSTONE:
        return -1
    return i


@njit(cache=True)
def read(log, keys, key, rev):
    """``key``'s live entry at ``rev``: (log index, create, mod, version, lease); index -1 if none."""
    i = _find(log, keys, key, rev)
    if i < 0:
        return -1, 0, 0, 0, 0
    return i, log[CREATE, i], log[MAIN, i], log[VERSION, i], log[LEASE, i]


@njit(cache=True)
def find_many(log, keys, ids, rev, out):
    """Point reads: ``out[:, j]`` = (create, mod, version, lease, vsize) of key ``ids[j]`` at ``rev``.

    A missing key reads as zeros with vsize -1.
    """
    for j in range(ids.shape[0]):
        i = _find(log, keys, ids[j], rev)
        if i < 0:
            out[0, j] = 0
            out[1, j] = 0
            out[2, j] = 0
            out[3, j] = 0
            out[4, j] = -1
        else:
            out[0, j] = log[CREATE, i]
            out[1, j] = log[MAIN, i]
            out[2, j] = log[VERSION, i]
            out[3, j] = log[LEASE, i]
            out[4, j] = log[VSIZE, i]


@njit(cache=True)
def scan(log, keys, order, lo, hi, rev, out):
    """Live entries at ``rev`` of the keys ``order[lo:hi]`` (key order) into ``out``.

    Returns (entries written, live keys): writes until ``out`` is full but
    counts every live key.
    """
    written = 0
    count = 0
    cap = out.shape[0]
    for p in range(lo, hi):
        i = _find(log, keys, order[p], rev)
        if i >= 0:
            if written < cap:
                out[written] = i
                written += 1
            count += 1
    return written, count


@njit(cache=True)
def events(log, key_rank, start, stop, lo, hi, out):
    """Log indices in ``[start, stop)`` whose key rank is in ``[lo, hi)``; returns how many."""
    m = 0
    for i in range(start, stop):
        r = key_rank[log[KEY, i]]
        if lo <= r < hi:
            out[m] = i
            m += 1
    return m


@njit(cache=True)
def compaction_keep(log, keys, n, rev):
    """Entries that survive ``compact(rev)``.

    Every entry above ``rev`` stays; of the entries at or below it, each key
    keeps only its newest, and not even that one if it is a tombstone (etcd's
    ``keyIndex.compact``).
    """
    keep = np.zeros(n, np.bool_)
    for i in range(n):
        if log[MAIN, i] > rev:
            keep[i] = True
    for k in range(keys.shape[1]):
        i = keys[LAST, k]
        while i >= 0 and log[MAIN, i] > rev:
            i = log[PREV, i]
        if i >= 0 and log[VSIZE, i] != TOMBSTONE:
            keep[i] = True
    return keep


@njit(cache=True)
def compaction_apply(log, keys, keep):
    """Move kept entries down in place, relinking ``PREV`` and ``keys[LAST]``; returns the new length."""
    n = keep.shape[0]
    new_index = np.full(n, -1, np.int64)
    m = 0
    for i in range(n):
        if keep[i]:
            new_index[i] = m
            for c in range(NCOLS):
                log[c, m] = log[c, i]
            prev = log[PREV, m]
            log[PREV, m] = new_index[prev] if prev >= 0 else -1
            m += 1
    for k in range(keys.shape[1]):
        last = keys[LAST, k]
        if last >= 0:
            keys[LAST, k] = new_index[last]
    return m
