"""Numba kernels over the MVCC revision log (one 64-byte row a revision, one 24-byte row a key).

The log is one ``int64`` array of shape ``(capacity, NCOLS)``: row ``i`` is entry
``i``, one (main, sub) revision of one key, in revision order; its eight columns
are one 64-byte cache line (the front aligns the array), so reading or writing an
entry touches one line. Per-key state is
a second array ``keys`` of shape ``(key_capacity, 3)``: ``keys[k, LAST]`` is the
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
LAST, GEN_CREATE, GEN_VERSION = range(3)  # columns of the per-key state array ``keys``
_STATE = "int64[:, ::1]"  # the log's and the key state's type: C-contiguous int64 rows
_ROW = "int64[::1]"  # a batch's column: C-contiguous int64


def direct(signature: str):
    """Compile a single-key kernel now for ``signature`` alone and return its machine code's entry point.

    A call through Numba's dispatcher first types every argument, which takes as long as a single-key
    kernel itself (about 130 ns of 350); the entry point skips that. Nothing checks the arguments: they
    must have the signature's types exactly (the front passes its own log and key state, and ints).
    """

    def compile_one(py_func):
        # _nrt=False: no reference-counting runtime (these kernels allocate nothing), so the entry point wraps
        # the arrays without allocating a record for each (a private njit option numba's type stubs lack)
        kernel = njit(signature, cache=True, _nrt=False)(py_func)  # type: ignore[call-overload]
        return kernel.get_overload(kernel.signatures[0])

    return compile_one


@njit(cache=True, inline="always")
def _append(log, keys, n, key, main, sub, lease, vsize):
    last = keys[key, LAST]
    if vsize == TOMBSTONE:
        create, version, lease = 0, 0, 0
    elif keys[key, GEN_VERSION] > 0:
        create, version = keys[key, GEN_CREATE], keys[key, GEN_VERSION] + 1
    else:
        create, version = main, 1
    log[n, MAIN] = main
    log[n, SUB] = sub
    log[n, KEY] = key
    log[n, CREATE] = create
    log[n, VERSION] = version
    log[n, LEASE] = lease
    log[n, PREV] = last
    log[n, VSIZE] = vsize
    keys[key, LAST] = n
    keys[key, GEN_CREATE] = create
    keys[key, GEN_VERSION] = version


@direct(f"void({_STATE}, {_STATE}, int64, int64, int64, int64, int64, int64)")
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
    i = keys[key, LAST]
    while i >= 0 and log[i, MAIN] > rev:
        i = log[i, PREV]
    if i >= 0 and log[i, VSIZE] == TOMBSTONE:
        return -1
    return i


@direct(f"UniTuple(int64, 2)({_STATE}, {_STATE}, int64, int64, {_ROW}, {_ROW}, {_ROW}, {_ROW}, {_ROW})")
def compare_append_puts(log, keys, n, rev, ids, wants, vsizes, revs, mods):
    """Puts each behind a compare of its key's mod revision, each its own request, in order from revision ``rev``:
    key ``ids[i]``'s mod revision now (0: absent) goes to ``mods[i]``; the put is appended at the next revision when
    it equals ``wants[i] > 0``, or when the key is absent for ``wants[i] == 0`` and present for ``wants[i] == -1``.
    ``revs[i]`` gets its revision, or 0 when the compare failed. Returns the entries and the revision after."""
    for i in range(ids.shape[0]):
        last = _find(log, keys, ids[i], rev)
        mod = log[last, MAIN] if last >= 0 else 0
        mods[i] = mod
        want = wants[i]
        if (mod == want) if want > 0 else ((mod == 0) == (want == 0)):
            rev += 1
            _append(log, keys, n, ids[i], rev, 0, 0, vsizes[i])
            n += 1
            revs[i] = rev
        else:
            revs[i] = 0
    return n, rev


@direct(f"UniTuple(int64, 5)({_STATE}, {_STATE}, int64, int64)")
def read(log, keys, key, rev):
    """``key``'s live entry at ``rev``: (log index, create, mod, version, lease); index -1 if none."""
    i = _find(log, keys, key, rev)
    if i < 0:
        return -1, 0, 0, 0, 0
    return i, log[i, CREATE], log[i, MAIN], log[i, VERSION], log[i, LEASE]


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
            out[0, j] = log[i, CREATE]
            out[1, j] = log[i, MAIN]
            out[2, j] = log[i, VERSION]
            out[3, j] = log[i, LEASE]
            out[4, j] = log[i, VSIZE]


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
def revision_span(log, n, start, stop):
    """Log indices ``[i0, i1)`` of the entries with ``start <= main <= stop`` (the log is in revision order)."""
    lo, hi = 0, n
    while lo < hi:
        mid = (lo + hi) // 2
        if log[mid, MAIN] < start:
            lo = mid + 1
        else:
            hi = mid
    i0, hi = lo, n
    while lo < hi:
        mid = (lo + hi) // 2
        if log[mid, MAIN] <= stop:
            lo = mid + 1
        else:
            hi = mid
    return i0, lo


@njit(cache=True)
def events(log, key_rank, start, stop, lo, hi, out):
    """Log indices in ``[start, stop)`` whose key rank is in ``[lo, hi)``; returns how many."""
    m = 0
    for i in range(start, stop):
        r = key_rank[log[i, KEY]]
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
        if log[i, MAIN] > rev:
            keep[i] = True
    for k in range(keys.shape[0]):
        i = keys[k, LAST]
        while i >= 0 and log[i, MAIN] > rev:
            i = log[i, PREV]
        if i >= 0 and log[i, VSIZE] != TOMBSTONE:
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
                log[m, c] = log[i, c]
            prev = log[m, PREV]
            log[m, PREV] = new_index[prev] if prev >= 0 else -1
            m += 1
    for k in range(keys.shape[0]):
        last = keys[k, LAST]
        if last >= 0:
            keys[k, LAST] = new_index[last]
    return m
