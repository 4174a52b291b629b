"""Numba kernels of the etcd model: the MVCC revision log (one 64-byte row a revision, one 24-byte row a key), and
the member set's raft round and apply loop timing (:func:`book`, at the end).

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

from kbench.sim._kernels import stage_span

MAIN, SUB, KEY, CREATE, VERSION, LEASE, PREV, VSIZE = range(8)
NCOLS = 8
TOMBSTONE = -1
LAST, GEN_CREATE, GEN_VERSION = range(3)  # columns of the per-key state array ``keys``
_STATE = "int64[:, ::1]"  # the log's and the key state's type: C-contiguous int64 rows
_ROW = "int64[::1]"  # a batch's column: C-contiguous int64


def direct(signature: str, boundscheck: bool = False):
    """Compile a single-key kernel now for ``signature`` alone and return its machine code's entry point.

    A call through Numba's dispatcher first types every argument, which takes as long as a single-key
    kernel itself (about 130 ns of 350); the entry point skips that. Nothing checks the arguments: they
    must have the signature's types exactly (the front passes its own log and key state, and ints).
    ``boundscheck``: an index past an array's end raises IndexError (a kernel that stages into a fixed buffer
    its front empties: a slip would otherwise write past the buffer).
    """

    def compile_one(py_func):
        # _nrt=False: no reference-counting runtime (these kernels allocate nothing), so the entry point wraps
        # the arrays without allocating a record for each (a private njit option numba's type stubs lack)
        kernel = njit(signature, cache=True, _nrt=False, boundscheck=boundscheck)(py_func)  # type: ignore[call-overload]
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


# -- the member set's write timing (kbench.etcd.cluster.EtcdCluster.book) ---------------------------------------------
# ``state``: the cluster's scalars, then its staged write latencies
LEADER_FREE, WAITING_START, WAITING_COMMIT, LAST_COMMIT, APPLY_FREE, ROUNDS = range(6)
PROPOSAL_OVERHEAD, APPLY_PER_WRITE, DISK_PER_BYTE, HALF_PEER_RTT, QUORUM, LATENCIES = range(6, 12)
STATE_HEAD = 12
LATENCY_STAGE = 4096
"""Write latencies a cluster stages before its front moves them to its record (one a write)."""
# ``rows``: a row per member: its scalars, its block of fsync draws, then its staged busy spans (start, end, ...)
HOP, DISK_CURRENT, DISK_QUEUED, DRAWN, STAGED, ACK = range(6)
ROW_HEAD = 6
FSYNC_BLOCK = 1024
"""fsync durations a member draws at a time (``Distribution.sampler``'s block)."""
SPAN_STAGE = 4096
"""Busy-span bounds a member stages before its front moves them to its busy-time record (four at most a write)."""
FSYNC = ROW_HEAD
SPANS = FSYNC + FSYNC_BLOCK
ROW_SIZE = SPANS + SPAN_STAGE


@njit(cache=True, inline="always")
def _draw(rows, m):
    """Member ``m``'s next fsync duration."""
    i = int(rows[m, DRAWN])
    rows[m, DRAWN] = i + 1
    return rows[m, FSYNC + i]


@njit(cache=True, inline="always")
def _follower_fsync(rows, i, arrival, disk):
    """When follower ``i`` has a batch arriving at ``arrival`` on disk: an idle disk starts an fsync at once; a busy
    one takes every batch that arrives meanwhile in its next fsync (DISK_QUEUED, NaN when none), as a follower's raft
    Ready does."""
    current, queued = rows[i, DISK_CURRENT], rows[i, DISK_QUEUED]
    if queued == queued and arrival >= current:  # the queued fsync has started
        current, queued = queued, np.nan
    if arrival >= current:
        current = arrival + _draw(rows, i) + disk
        done = current
    else:
        if queued != queued:
            queued = current + _draw(rows, i) + disk
        done = queued
    rows[i, DISK_CURRENT] = current
    rows[i, DISK_QUEUED] = queued
    return done


@njit(cache=True, inline="always")
def _open_round(state, rows, arrival, nbytes):
    """Open the raft round a proposal arriving at ``arrival`` goes out in, the leader being free for it by then or
    next; returns when it commits (the quorum's ack: the (quorum - 1)-th follower ack, with the leader's own)."""
    leader_free = state[LEADER_FREE]
    start = leader_free if leader_free > arrival else arrival
    disk = nbytes * state[DISK_PER_BYTE]
    commit = start + _draw(rows, 0) + disk
    state[LEADER_FREE] = commit
    quorum = int(state[QUORUM])
    if quorum > 1:
        half = state[HALF_PEER_RTT]
        sent = start + half
        members = rows.shape[0]
        for i in range(1, members):
            ack = _follower_fsync(rows, i, sent, disk) + half
            j = i  # insertion into the acks sorted so far (rows 1 .. i - 1)
            while j > 1 and rows[j - 1, ACK] > ack:
                rows[j, ACK] = rows[j - 1, ACK]
                j -= 1
            rows[j, ACK] = ack
        ack = rows[quorum - 1, ACK]
        commit = ack if ack > commit else commit
    if state[LAST_COMMIT] > commit:  # raft commits in log order
        commit = state[LAST_COMMIT]
    state[LAST_COMMIT] = commit
    state[WAITING_COMMIT] = commit
    state[WAITING_START] = start
    state[ROUNDS] += 1
    return commit


@direct("UniTuple(float64, 3)(float64[::1], float64[:, ::1], float64, int64, int64)", boundscheck=True)
def book(state, rows, now, nbytes, member):
    """The timing of a write proposed at ``now`` by a client of ``member`` (0 <= member < members): its raft round,
    its place in the apply loop, the members' busy spans and its latency, staged. Returns (when it is applied, how
    long its answer then takes to reach the client, 1.0 if the front must serve the arrays before the next call (a
    member's fsync block used up, or a stage nearly full) else 0.0)."""
    hop = rows[member, HOP]
    overhead = state[PROPOSAL_OVERHEAD]
    arrival = now + hop + overhead
    stage_span(rows[member], STAGED, SPANS, arrival - overhead, arrival)
    if arrival < state[WAITING_START]:  # the leader is busy: it joins the proposals waiting for the next round
        commit = state[WAITING_COMMIT]
    else:
        commit = _open_round(state, rows, arrival, nbytes)
    apply_free = state[APPLY_FREE]
    start = commit if commit > apply_free else apply_free
    apply = state[APPLY_PER_WRITE]
    end = start + apply
    state[APPLY_FREE] = end
    serve = 0.0
    for m in range(rows.shape[0]):
        stage_span(rows[m], STAGED, SPANS, start, end)
        if rows[m, DRAWN] >= FSYNC_BLOCK or rows[m, STAGED] > SPAN_STAGE - 4:
            serve = 1.0
    delay = apply + hop
    n = int(state[LATENCIES])
    state[STATE_HEAD + n] = start + delay - now
    state[LATENCIES] = n + 1
    if n + 1 >= LATENCY_STAGE:
        serve = 1.0
    return start, delay, serve
