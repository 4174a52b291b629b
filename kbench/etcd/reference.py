"""Plain-Python MVCC backend: the reference the compiled backend is held against.

Same interface as :class:`kbench.etcd.mvcc.MVCC`, written the obvious way: a
dict from key to its list of ``(main, sub, KeyValue | None)`` entries (None is
a tombstone). Property tests run both under one apply layer and compare every
response; benchmarks time both in the same process.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from kbench.etcd.types import KeyValue


class ReferenceKeySet:
    """Keys for the reference backend's batch calls; index it with an int array to pick keys."""

    __slots__ = ("keys", "sizes")

    def __init__(self, keys: Sequence[bytes]) -> None:
        self.keys = list(keys)
        self.sizes = np.fromiter(map(len, self.keys), np.int64, len(self.keys))

    def __len__(self) -> int:
        return len(self.keys)

    def __getitem__(self, index) -> ReferenceKeySet:
        if isinstance(index, slice):
            return ReferenceKeySet(self.keys[index])
        return ReferenceKeySet([self.keys[i] for i in np.asarray(index).tolist()])


class ReferenceMVCC:
    """Dict-of-lists MVCC history with etcd's rules."""

    def __init__(self) -> None:
        self.rev = 1
        self.compact_rev = -1
        self._history: dict[bytes, list[tuple[int, int, KeyValue | None]]] = {}

    def keyset(self, keys: Sequence[bytes]) -> ReferenceKeySet:
        """Keys for :meth:`put_many` / :meth:`get_many`."""
        return ReferenceKeySet(keys)

    def get(self, key: bytes, rev: int) -> KeyValue | None:
        """The key's live state at ``rev``, or None."""
        for main, _, kv in reversed(self._history.get(key, ())):
            if main <= rev:
                return None if kv is None else dataclasses.replace(kv)
        return None

    def scan(self, key: bytes, end: bytes | None, rev: int, limit: int = 0) -> tuple[list[KeyValue], int]:
        """Live keys in ``[key, end)`` at ``rev`` in key order.

        Returns at most ``limit`` (all when 0, none when negative) and the count of all.
        """
        live = [
            kv
            for k in sorted(self._history)
            if k >= key and (end is None or k < end)
            for kv in [self.get(k, rev)]
            if kv is not None
        ]
        return (live if limit == 0 else live[: max(limit, 0)]), len(live)

    def get_many(self, keys: ReferenceKeySet, rev: int) -> np.ndarray:
        """Rows create, mod, version, lease, value size (-1 if missing), one column per key."""
        out = np.empty((5, len(keys)), np.int64)
        for j, key in enumerate(keys.keys):
            kv = self.get(key, rev)
            out[:, j] = (
                (0, 0, 0, 0, -1)
                if kv is None
                else (kv.create_revision, kv.mod_revision, kv.version, kv.lease, len(kv.value))
            )
        return out

    def put(self, key: bytes, value: bytes, lease: int, main: int, sub: int) -> None:
        """Append a put of ``key`` at revision (main, sub)."""
        entries = self._history.setdefault(key, [])
        current = entries[-1][2] if entries else None
        if current is None:
            kv = KeyValue(key, main, main, 1, value, lease)
        else:
            kv = KeyValue(key, current.create_revision, main, current.version + 1, value, lease)
        entries.append((main, sub, kv))

    def delete(self, key: bytes, main: int, sub: int) -> None:
        """Append a tombstone of ``key`` at revision (main, sub)."""
        self._history[key].append((main, sub, None))

    def put_many(self, keys: ReferenceKeySet, values: Sequence[bytes] | bytes, lease: int, main0: int) -> None:
        """One put per key at revisions ``main0``, ``main0 + 1``, ..."""
        if isinstance(values, bytes):
            values = [values] * len(keys)
        for i, (key, value) in enumerate(zip(keys.keys, values)):
            self.put(key, value, lease, main0 + i, 0)

    def compare_put_many(
        self, keys: Sequence[bytes], values: Sequence[bytes], wants: Sequence[int], rev: int
    ) -> tuple[list[int], list[int], int]:
        """Puts each behind a compare of its key's mod revision (``wants``: the revision, 0 absent, -1 present), in
        order from revision ``rev``: each put's revision (0: its compare failed), each mod revision compared, the
        revision after."""
        put, mods = [], []
        for key, value, want in zip(keys, values, wants, strict=True):
            kv = self.get(key, rev)
            mod = 0 if kv is None else kv.mod_revision
            mods.append(mod)
            if mod == want if want > 0 else (mod == 0) == (want == 0):
                rev += 1
                self.put(key, value, 0, rev, 0)
                put.append(rev)
            else:
                put.append(0)
        return put, mods, rev

    def compact(self, rev: int) -> int:
        """Keep each key's newest entry at or below ``rev`` unless it is a tombstone, and all above; returns the bytes
        of key and value the dropped entries held."""
        freed = 0
        for key in list(self._history):
            entries = self._history[key]
            older = [i for i, (main, _, _) in enumerate(entries) if main <= rev]
            if older:
                last = older[-1]
                start = last if entries[last][2] is not None else last + 1
                freed += sum(len(key) + (len(kv.value) if kv is not None else 0) for _, _, kv in entries[:start])
                entries = entries[start:]
            if entries:
                self._history[key] = entries
            else:
                del self._history[key]
        self.compact_rev = rev
        return freed

    def history(self, start: int, stop: int, key: bytes, end: bytes | None, prev: bool) -> list[tuple]:
        """``(kv, deleted, prev_kv)`` for entries with ``start <= main <= stop`` of keys in ``[key, end)``.

        ``prev_kv`` is the key's state at ``main - 1``, if still stored.
        """
        found = []
        for k, entries in self._history.items():
            if k < key or (end is not None and k >= end):
                continue
            for i, (main, sub, kv) in enumerate(entries):
                if start <= main <= stop:
                    earlier = [e for e in entries[:i] if e[0] < main]
                    before = earlier[-1][2] if prev and earlier else None
                    event = (kv or KeyValue(k, mod_revision=main), kv is None, before)
                    found.append(((main, sub), event))
        return [event for _, event in sorted(found, key=lambda item: item[0])]

    def __len__(self) -> int:
        """Revisions stored (after compaction)."""
        return sum(map(len, self._history.values()))
