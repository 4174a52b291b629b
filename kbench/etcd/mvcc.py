"""MVCC key-value backend over the Numba revision log (the compiled backend).

This is etcd's ``mvcc`` package reduced to what the server's apply layer
(:mod:`kbench.etcd.store`) needs: read a key or a key range at a revision,
append puts and tombstones at a given (main, sub) revision, compact, and list
the history a watcher replays. Keys are interned to integer ids; a sorted view
of the keys (for ranges) is merged lazily, so a burst of new keys costs one
merge at the next range instead of one insertion each.

Memory per stored revision: 64 bytes of log (8 ``int64`` columns) + 8 bytes for
the value reference + the value itself (shared when the caller passes the same
``bytes`` object); per key ever written: 24 bytes of key state + the key and
its dict and list entries (~120 bytes + key length). Compaction frees
superseded revisions; key ids are permanent, so a :class:`KeySet` stays valid.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from itertools import compress

import numpy as np

from kbench.etcd import _kernels as k
from kbench.etcd.types import KeyValue

_LOG_BYTES_PER_REVISION = k.NCOLS * 8 + 8
_LINE = 64


def _log_rows(capacity: int) -> np.ndarray:
    """A zeroed log of ``capacity`` entries, each one 64-byte cache line (the array starts on a line boundary).

    Written now, so appends meet no page faults later."""
    raw = np.full(capacity * k.NCOLS + _LINE // 8, 0, np.int64)
    start = -raw.ctypes.data % _LINE // 8
    return raw[start : start + capacity * k.NCOLS].reshape(capacity, k.NCOLS)


class KeySet:
    """Keys interned in one backend, for the batch calls; index it with an int array to pick keys."""

    __slots__ = ("ids", "sizes", "keys")

    def __init__(self, ids: np.ndarray, sizes: np.ndarray, keys: Sequence[bytes]) -> None:
        self.ids, self.sizes, self.keys = ids, sizes, keys

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: np.ndarray | slice) -> KeySet:
        if isinstance(index, slice):
            return KeySet(self.ids[index], self.sizes[index], self.keys[index])
        index = np.asarray(index, np.int64)
        return KeySet(self.ids[index], self.sizes[index], _Picked(self.keys, index))


class _Picked(Sequence):
    """A lazy view ``keys[index]``: batch kernels need only ids, so bytes are looked up on demand."""

    __slots__ = ("_keys", "_index")

    def __init__(self, keys: Sequence[bytes], index: np.ndarray) -> None:
        self._keys, self._index = keys, index

    def __len__(self) -> int:
        return len(self._index)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self._keys[j] for j in self._index[i].tolist()]
        return self._keys[int(self._index[i])]


class MVCC:
    """Revision history of every key, with etcd's read, write and compaction rules.

    ``rev`` is the store's current (main) revision, 1 when empty; writes are
    appended at revisions chosen by the caller (the apply layer), which then
    commits by raising ``rev``. Reads take the revision to read at.
    """

    def __init__(self, capacity: int = 1024, key_capacity: int = 1024) -> None:
        self.rev = 1
        self.compact_rev = -1
        self._cap = max(capacity, 16)
        self._log = _log_rows(self._cap)
        self._n = 0
        self._values: list[bytes] = []  # by log row; a tombstone's is b""
        self._keystate = self._new_keystate(max(key_capacity, 16))
        self._ids: dict[bytes, int] = {}
        self._keys: list[bytes] = []
        # Sorted view for ranges: keys and their ids in key order, plus ids not merged yet.
        self._sorted: list[bytes] = []
        self._order = np.zeros(0, np.int64)
        self._pending: list[int] = []

    # -- keys -----------------------------------------------------------------
    def _intern(self, key: bytes) -> int:
        kid = self._ids.get(key)
        if kid is None:
            kid = len(self._keys)
            self._keys.append(key)
            self._ids[key] = kid
            self._pending.append(kid)
            if kid >= self._keystate.shape[0]:
                grown = self._new_keystate(2 * kid)
                grown[:kid] = self._keystate[:kid]
                self._keystate = grown
        return kid

    @staticmethod
    def _new_keystate(capacity: int) -> np.ndarray:
        state = np.zeros((capacity, 3), np.int64)
        state[:, k.LAST] = -1
        return state

    def keyset(self, keys: Sequence[bytes]) -> KeySet:
        """Intern ``keys`` (no revision is written) for :meth:`put_many` / :meth:`get_many`."""
        keys = list(keys)
        ids = np.fromiter((self._intern(key) for key in keys), np.int64, len(keys))
        return KeySet(ids, np.fromiter(map(len, keys), np.int64, len(keys)), keys)

    def _sorted_view(self) -> tuple[list[bytes], np.ndarray]:
        if self._pending:
            keys = self._keys
            fresh = sorted(self._pending, key=lambda kid: keys[kid])
            self._pending = []
            fresh_keys = [self._keys[i] for i in fresh]
            at = [bisect_left(self._sorted, key) for key in fresh_keys]
            self._order = np.insert(self._order, at, np.asarray(fresh, np.int64))
            self._sorted = self._sorted + fresh_keys
            self._sorted.sort()  # two sorted runs: timsort merges them in linear time
        return self._sorted, self._order

    def _bounds(self, key: bytes, end: bytes | None) -> tuple[int, int]:
        keys, _ = self._sorted_view()
        lo = bisect_left(keys, key)
        hi = len(keys) if end is None else bisect_left(keys, end, lo)
        return lo, max(lo, hi)

    # -- reads ----------------------------------------------------------------
    def _kv(self, i: int) -> KeyValue:
        main, _, key, create, version, lease, _, _ = self._log[i].tolist()
        return KeyValue(self._keys[key], create, main, version, self._values[i], lease)

    def _kvs(self, index: np.ndarray) -> list[KeyValue]:
        rows = self._log[index].tolist()
        keys, values = self._keys, self._values
        return [
            KeyValue(keys[r[k.KEY]], r[k.CREATE], r[k.MAIN], r[k.VERSION], values[i], r[k.LEASE])
            for i, r in zip(index.tolist(), rows)
        ]

    def get(self, key: bytes, rev: int) -> KeyValue | None:
        """The key's live state at ``rev``, or None."""
        kid = self._ids.get(key)
        if kid is None:
            return None
        i, create, mod, version, lease = k.read(self._log, self._keystate, kid, rev)
        return None if i < 0 else KeyValue(key, create, mod, version, self._values[i], lease)

    def scan(self, key: bytes, end: bytes | None, rev: int, limit: int = 0) -> tuple[list[KeyValue], int]:
        """Live keys in ``[key, end)`` at ``rev`` in key order (``end=None``: no upper bound).

        Returns at most ``limit`` key-values (all when 0, none when negative) and
        the count of all live keys. One key (``end`` is ``key + b"\\0"``, etcd's empty range_end) is looked up by its
        id, without the ordered view, whose first step after new keys is a copy of every key (an expiring Event
        lease deletes its keys one at a time: 4.7% of the 150,000-pod density run, py-spy).
        """
        if end == key + b"\x00":
            kv = self.get(key, rev)
            live = [] if kv is None else [kv]
            return (live if limit == 0 else live[: max(limit, 0)]), len(live)
        lo, hi = self._bounds(key, end)
        out = np.empty(hi - lo if limit == 0 else max(0, min(limit, hi - lo)), np.int64)
        written, count = k.scan(self._log, self._keystate, self._order, lo, hi, rev, out)
        return self._kvs(out[:written]), count

    def get_many(self, keys: KeySet, rev: int) -> np.ndarray:
        """Point reads of interned keys: rows create, mod, version, lease, value size (-1 if missing)."""
        out = np.empty((5, len(keys)), np.int64)
        k.find_many(self._log, self._keystate, keys.ids, rev, out)
        return out

    # -- writes ---------------------------------------------------------------
    def _reserve(self, extra: int) -> None:
        need = self._n + extra
        if need > self._cap:
            self._cap = max(need, 2 * self._cap)
            grown = _log_rows(self._cap)
            grown[: self._n] = self._log[: self._n]
            self._log = grown

    def put(self, key: bytes, value: bytes, lease: int, main: int, sub: int) -> None:
        """Append a put of ``key`` at revision (main, sub)."""
        kid = self._ids.get(key)
        if kid is None:
            kid = self._intern(key)
        n = self._n
        if n == self._cap:
            self._reserve(1)
        k.append(self._log, self._keystate, n, kid, main, sub, lease, len(value))
        self._values.append(value)
        self._n = n + 1

    def delete(self, key: bytes, main: int, sub: int) -> None:
        """Append a tombstone of ``key`` at revision (main, sub)."""
        if self._n == self._cap:
            self._reserve(1)
        k.append(self._log, self._keystate, self._n, self._ids[key], main, sub, 0, k.TOMBSTONE)
        self._values.append(b"")
        self._n += 1

    def put_many(self, keys: KeySet, values: Sequence[bytes] | bytes, lease: int, main0: int) -> None:
        """Append one put per key at revisions ``main0``, ``main0 + 1``, ...; one value for all or one each."""
        m = len(keys)
        if isinstance(values, bytes):
            sizes = np.full(m, len(values), np.int64)
            self._values.extend([values] * m)
        else:
            sizes = np.fromiter(map(len, values), np.int64, m)
            self._values.extend(values)
        self._reserve(m)
        self._n = k.append_puts(self._log, self._keystate, self._n, keys.ids, main0, lease, sizes)

    def compare_put_many(
        self, keys: Sequence[bytes], values: Sequence[bytes], wants: Sequence[int], rev: int
    ) -> tuple[list[int], list[int], int]:
        """Puts each behind a compare of its key's mod revision, in order from revision ``rev``
        (:func:`~kbench.etcd._kernels.compare_append_puts`): each put's revision (0: its compare failed), each key's
        mod revision compared (0: absent), and the revision after."""
        m = len(keys)
        known = list(map(self._ids.get, keys))  # no Python call a key when all are interned (Lease renewals)
        ids = np.array(known if None not in known else list(map(self._intern, keys)), np.int64)
        sizes = np.fromiter(map(len, values), np.int64, m)
        revs, mods = np.empty(m, np.int64), np.empty(m, np.int64)
        self._reserve(m)
        self._n, after = k.compare_append_puts(
            self._log, self._keystate, self._n, rev, ids, np.asarray(wants, np.int64), sizes, revs, mods
        )
        put = revs.tolist()
        self._values.extend(compress(values, put))
        return put, mods.tolist(), after

    # -- compaction and history -----------------------------------------------
    def compact(self, rev: int) -> int:
        """Drop the revisions that no read at ``rev`` or later can see; returns the bytes of key and value they held."""
        keep = k.compaction_keep(self._log, self._keystate, self._n, rev)
        dropped = self._log[: self._n][~keep]
        freed = int(np.maximum(dropped[:, k.VSIZE], 0).sum())  # a tombstone's VSIZE is TOMBSTONE (-1): no value
        keys = self._keys
        freed += sum(len(keys[kid]) for kid in dropped[:, k.KEY].tolist())
        self._n = k.compaction_apply(self._log, self._keystate, keep)
        self._values = list(compress(self._values, keep.tolist()))
        self.compact_rev = rev
        return freed

    def history(self, start: int, stop: int, key: bytes, end: bytes | None, prev: bool) -> list[tuple]:
        """Entries with ``start <= main <= stop`` of keys in ``[key, end)``, in revision order.

        Each item is ``(kv, deleted, prev_kv)``; ``prev_kv`` (when ``prev``) is the
        key's live state at ``main - 1`` if it is still stored.
        """
        i0, i1 = k.revision_span(self._log, self._n, start, stop)
        if i1 - i0 <= 64:
            keys = self._keys
            index = [
                i
                for i in range(i0, i1)
                if key <= keys[self._log[i, k.KEY]] and (end is None or keys[self._log[i, k.KEY]] < end)
            ]
        else:
            lo, hi = self._bounds(key, end)
            rank = np.full(self._keystate.shape[0], -1, np.int64)
            rank[self._order] = np.arange(self._order.shape[0])
            out = np.empty(i1 - i0, np.int64)
            index = out[: k.events(self._log, rank, i0, i1, lo, hi, out)].tolist()
        items = []
        log = self._log
        for i in index:
            deleted = log[i, k.VSIZE] == k.TOMBSTONE
            kv = KeyValue(self._keys[log[i, k.KEY]], mod_revision=int(log[i, k.MAIN])) if deleted else self._kv(i)
            before = None
            if prev:  # the key's state at main - 1, as etcd reads it for a watcher
                p = int(log[i, k.PREV])
                while p >= 0 and log[p, k.MAIN] == log[i, k.MAIN]:
                    p = int(log[p, k.PREV])
                if p >= 0 and log[p, k.VSIZE] != k.TOMBSTONE:
                    before = self._kv(p)
            items.append((kv, deleted, before))
        return items

    # -- accounting -------------------------------------------------------------
    def __len__(self) -> int:
        """Revisions stored (after compaction)."""
        return self._n

    @property
    def nbytes(self) -> int:
        """Approximate bytes held for the stored revisions, excluding value payloads."""
        return self._log.nbytes + 8 * len(self._values) + self._keystate.nbytes
