"""Numba kernels over the MVCC revision log (struct of arrays).

The log is one ``int64`` array of shape ``(NCOLS, capacity)``: row ``c`` is
column ``c`` of every revision, contiguous. Entry ``i`` is one (main, sub)
revision of one key, in revision order. ``key_last[k]`` is the log index of
key ``k``'s newest entry (-1 if none) and ``PREV`` links each entry to the same
key's previous one, so reading a key at a revision walks back from its newest
entry; the current state of a key is one lookup. A tombstone (delete) has
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


@njit(cache=True, inline="always")
def _append(log, key_last, n, key, main, sub, lease, vsize):
    last = key_last[key]
    if vsize == TOMBSTONE:
        create, version, lease = 0, 0, 0
    elif last >= 0 and log[VSIZE, last] != TOMBSTONE:
        create, version = log[CREATE, last], log[VERSION, last] + 1
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
    key_last[key] = n


@njit(cache=True)
def append(log, key_last, n, key, main, sub, lease, vsize):
    """Write entry ``n``: a put of ``vsize`` bytes, or a tombstone when ``vsize == TOMBSTONE``."""
    _append(log, key_last, n, key, main, sub, lease, vsize)


@njit(cache=True)
def append_puts(log, key_last, n, keys, main0, lease, vsizes):
    """Append one put per key, each its own request: revisions ``main0``, ``main0 + 1``, ..."""
    for i in range(keys.shape[0]):
        _append(log, key_last, n + i, keys[i], main0 + i, 0, lease, vsizes[i])
    return n + keys.shape[0]


@njit(cache=True, inline="always")
def _find(log, key_last, key, rev):
    i = key_last[key]
    while i >= 0 and log[MAIN, i] > rev:
        i = log[PREV, i]
    if i >= 0 and log[VSIZE, i] == TOMBSTONE:
        return -1
    return i


@njit(cache=True)
def find(log, key_last, key, rev):
    """Log index of ``key``'s live entry at revision ``rev``, or -1."""
    return _find(log, key_last, key, rev)


@njit(cache=True)
def find_many(log, key_last, keys, rev, out):
    """Point reads: ``out[:, j]`` = (create, mod, version, lease, vsize) of ``keys[j]`` at ``rev``.

    A missing key reads as zeros with vsize -1.
    """
    for j in range(keys.shape[0]):
        i = _find(log, key_last, keys[j], rev)
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
def scan(log, key_last, order, lo, hi, rev, out):
    """Live entries at ``rev`` of the keys ``order[lo:hi]`` (key order) into ``out``.

    Returns (entries written, live keys): writes until ``out`` is full but
    counts every live key.
    """
    written = 0
    count = 0
    cap = out.shape[0]
    for p in range(lo, hi):
        i = _find(log, key_last, order[p], rev)
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
def compaction_keep(log, key_last, n, rev):
    """Entries that survive ``compact(rev)``.

    Every entry above ``rev`` stays; of the entries at or below it, each key
    keeps only its newest, and not even that one if it is a tombstone (etcd's
    ``keyIndex.compact``).
    """
    keep = np.zeros(n, np.bool_)
    for i in range(n):
        if log[MAIN, i] > rev:
            keep[i] = True
    for k in range(key_last.shape[0]):
        i = key_last[k]
        while i >= 0 and log[MAIN, i] > rev:
            i = log[PREV, i]
        if i >= 0 and log[VSIZE, i] != TOMBSTONE:
            keep[i] = True
    return keep


@njit(cache=True)
def compaction_apply(log, key_last, keep):
    """Move kept entries down in place, relinking ``PREV`` and ``key_last``; returns the new length."""
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
    for k in range(key_last.shape[0]):
        last = key_last[k]
        if last >= 0:
            key_last[k] = new_index[last]
    return m
