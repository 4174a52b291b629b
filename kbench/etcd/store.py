"""The etcd state machine: KV, txn, compaction, watch and lease requests over an MVCC backend.

This is one etcd member's apply layer (``etcdserver/apply.go`` in release-3.4)
with the API-layer checks of :mod:`kbench.etcd.requests` in front. It is
synchronous and takes no time; :mod:`kbench.etcd.cluster` puts it behind a
modelled member set on the engine.

Rules worth knowing (each observed on a real etcd 3.4):

- the store starts at revision 1; a write request adds exactly 1 to the main
  revision if it changes anything, and the ops inside it get sub-revisions;
- a range reads at ``revision`` (0 or less: current); below the compaction revision is
  :class:`CompactedError` (exactly at it works), above the current one
  :class:`FutureRevisionError`; ``count`` counts every key in the range at that
  revision, before ``limit`` and before the min/max revision filters;
- in a txn every compare (nested ones too) is evaluated before any write, and
  a range in the txn sees the txn's earlier writes; a txn's range compares a
  negative revision with the compaction revision as it is (so -2 is compacted
  even before any compaction);
- a request is checked in etcd's order (see :mod:`kbench.etcd.requests`);
  ranges and read-only txns skip raft, and with it ``--max-request-bytes``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from functools import partial
from itertools import compress, repeat

import numpy as np

from kbench.etcd import requests as rq
from kbench.etcd.errors import (
    CompactedError,
    EmptyKeyError,
    FutureRevisionError,
    KeyNotFoundError,
    LeaseNotFoundError,
    MessageTooLargeError,
    NoSpaceError,
    RequestTooLargeError,
)
from kbench.etcd.gosort import go_sort
from kbench.etcd.lease import Lessor
from kbench.etcd.mvcc import MVCC
from kbench.etcd.reference import ReferenceMVCC
from kbench.etcd.types import (
    WATCH_FILTERS,
    CompactionResponse,
    Compare,
    DeleteRangeRequest,
    DeleteRangeResponse,
    KeyValue,
    LeaseGrantResponse,
    LeaseKeepAliveResponse,
    LeaseRevokeResponse,
    LeaseTimeToLiveResponse,
    PutRequest,
    PutResponse,
    RangeRequest,
    RangeResponse,
    ResponseOp,
    TxnRequest,
    TxnResponse,
)
from kbench.etcd.watch import EMPTY_RANGE, Watcher
from kbench.sim import Engine

BACKENDS = {"numba": MVCC, "python": ReferenceMVCC}

STORED_BYTES_PER_REVISION = 48
"""Bytes bbolt stores per revision besides key and value: a 17-byte revision key plus the
KeyValue framing and page overhead (assumed; used for the modelled db size and quota)."""

_SORT_KEYS = {
    "KEY": lambda kv: kv.key,
    "VERSION": lambda kv: kv.version,
    "CREATE": lambda kv: kv.create_revision,
    "MOD": lambda kv: kv.mod_revision,
    "VALUE": lambda kv: kv.value,
}
_FIELD_OF_TARGET = {
    "VERSION": "version",
    "CREATE": "create_revision",
    "MOD": "mod_revision",
    "VALUE": "value",
    "LEASE": "lease",
}


def _range_end(key: bytes, range_end: bytes) -> bytes | None:
    """etcd's range_end convention as a half-open bound: b"" one key, b"\\0" no bound."""
    if not range_end:
        return key + b"\x00"
    return None if range_end == b"\x00" else range_end


class Store:
    """One etcd member's state: MVCC history, leases, watchers, quota and alarms.

    Parameters
    ----------
    backend : {"numba", "python"}
        The compiled MVCC backend, or the plain-Python reference.
    engine : Engine, optional
        Clock for lease expiry; without it leases never expire.
    quota_bytes : int
        --quota-backend-bytes.
    max_request_bytes : int
        --max-request-bytes.
    max_txn_ops : int
        --max-txn-ops.
    member_id : int
        The member's ID (default: that of a member started with etcd's defaults); it sets the size of
        the raft header that counts against ``max_request_bytes``.
    capacity : int
        Revisions to allocate room for up front (the log grows by doubling beyond it).
    """

    def __init__(
        self,
        *,
        backend: str = "numba",
        engine: Engine | None = None,
        quota_bytes: int = rq.QUOTA_BYTES,
        max_request_bytes: int = rq.MAX_REQUEST_BYTES,
        max_txn_ops: int = rq.MAX_TXN_OPS,
        member_id: int = rq.DEFAULT_MEMBER_ID,
        capacity: int = 1024,
    ) -> None:
        if backend not in BACKENDS:
            raise ValueError(f"Store: backend must be one of {', '.join(BACKENDS)}; got {backend!r}")
        for name, value in (
            ("quota_bytes", quota_bytes),
            ("max_request_bytes", max_request_bytes),
            ("max_txn_ops", max_txn_ops),
            ("capacity", capacity),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"Store: {name} must be a positive integer; got {value!r}")
        if isinstance(member_id, bool) or not isinstance(member_id, int) or not 0 < member_id < 2**64:
            raise ValueError(f"Store: member_id must be an integer from 1 to 2**64 - 1; got {member_id!r}")
        self.backend = backend
        self._mvcc = MVCC(capacity) if backend == "numba" else ReferenceMVCC()
        self._lessor = Lessor(engine, self._expire)
        self._watchers: list[Watcher] = []
        self._next_watch_id = 0
        self.quota_bytes, self.max_request_bytes, self.max_txn_ops = quota_bytes, max_request_bytes, max_txn_ops
        self.member_id = member_id
        self._grpc_limit = max_request_bytes + rq.GRPC_OVERHEAD_BYTES
        self._raft_header = rq.raft_header_size(member_id)
        self.db_size = 0
        """Modelled backend file size (grows with writes; shrinks only by :meth:`defragment`)."""
        self.db_size_in_use = 0
        self.alarm: str | None = None
        """"NOSPACE" once the quota was exceeded, until :meth:`alarm_disarm`."""

    # -- state ------------------------------------------------------------------
    @property
    def revision(self) -> int:
        """Current revision (etcd's header revision)."""
        return self._mvcc.rev

    @property
    def compact_revision(self) -> int:
        """Revision of the last compaction (-1 if none)."""
        return self._mvcc.compact_rev

    def mod_revision(self, key: bytes) -> int:
        """The key's mod_revision now, 0 when it does not exist: what a txn's ``Compare(key, "MOD", ...)`` reads
        (the apiserver's compare-and-write), without building a RangeResponse."""
        kv = self._mvcc.get(key, self._mvcc.rev)
        return kv.mod_revision if kv is not None else 0

    def __len__(self) -> int:
        """Revisions held in the MVCC history."""
        return len(self._mvcc)

    # -- shared steps -------------------------------------------------------------
    def _receive(self, bound: int, cost: int, size: Callable[[], int] | None) -> None:
        """What a request meets before etcd's API checks: gRPC's message size limit, then the quota
        (etcdserver/api/v3rpc/quota.go), which raises the NOSPACE alarm when the request would pass it.

        ``bound`` is an upper bound of the request's encoded size (:func:`~kbench.etcd.requests.size_bound`);
        the exact size, ``size()``, is computed only near the limit.
        """
        if bound > self._grpc_limit and size is not None and (encoded := size()) > self._grpc_limit:
            raise MessageTooLargeError(f"{encoded} vs. {self._grpc_limit}")
        if cost and self.db_size + cost >= self.quota_bytes:
            self.alarm = "NOSPACE"
            raise NoSpaceError()

    def _propose(self, bound: int, cost: int, size: Callable[[], int] | None) -> None:
        """A write after the API checks: raft's size limit on the proposal (etcdserver/v3_server.go
        processInternalRaftRequestOnce), then the NOSPACE alarm's capped applier (etcdserver/apply.go)."""
        if (
            bound > self.max_request_bytes
            and size is not None
            and rq.raft_size(size(), self._raft_header) > self.max_request_bytes
        ):
            raise RequestTooLargeError()
        if cost and self.alarm == "NOSPACE":
            raise NoSpaceError()

    def _check_put_state(
        self, key: bytes, lease: int, ignore_value: bool, ignore_lease: bool, lease_first: bool = False
    ) -> None:
        """Apply-time checks of a put: ignore_* needs the key; a lease must exist.

        A lone Put looks the lease up first, a put in a txn the key first (etcd 3.4's
        applierV3backend.Put and checkRequestPut).
        """
        if lease_first and lease and lease not in self._lessor:
            raise LeaseNotFoundError()
        if (ignore_value or ignore_lease) and self._mvcc.get(key, self._mvcc.rev) is None:
            raise KeyNotFoundError()
        if lease and lease not in self._lessor:
            raise LeaseNotFoundError()

    def _write_put(self, key, value, lease, prev_kv, ignore_value, ignore_lease, cur, main, sub) -> KeyValue | None:
        prev = self._mvcc.get(key, cur) if (prev_kv or ignore_value or ignore_lease) else None
        if ignore_value or ignore_lease:
            assert prev is not None  # _check_put_state refused the put when the key is missing
            value = prev.value if ignore_value else value
            lease = prev.lease if ignore_lease else lease
        self._mvcc.put(key, value, lease, main, sub)
        if lease or self._lessor.attached:
            self._lessor.attach(key, lease)
        self._grow(len(key) + len(value))
        return prev if prev_kv else None

    def _write_delete(self, key: bytes, end: bytes | None, cur: int, main: int, sub: int) -> list[KeyValue]:
        kvs, _ = self._mvcc.scan(key, end, cur)
        for i, kv in enumerate(kvs):
            self._mvcc.delete(kv.key, main, sub + i)
            self._lessor.detach(kv.key)
            self._grow(len(kv.key))
        return kvs

    def _grow(self, nbytes: int, revisions: int = 1) -> None:
        """``revisions`` written, holding ``nbytes`` of keys and values: the size in use grows, and the file with it
        (it only grows between compactions, so the file's size after several is its size after the last)."""
        self.db_size_in_use += nbytes + revisions * STORED_BYTES_PER_REVISION
        if self.db_size_in_use > self.db_size:
            self.db_size = self.db_size_in_use

    def _commit(self, first: int, last: int) -> None:
        self._mvcc.rev = last
        if self._watchers:
            items = self._mvcc.history(first, last, b"", None, True)
            for w in list(self._watchers):
                w.deliver([item for item in items if w.matches(item[0].key)])

    # -- KV ---------------------------------------------------------------------
    def put(
        self,
        key: bytes,
        value: bytes = b"",
        lease: int = 0,
        prev_kv: bool = False,
        ignore_value: bool = False,
        ignore_lease: bool = False,
    ) -> PutResponse:
        """Put ``key`` = ``value`` (etcd Put)."""
        if key.__class__ is not bytes or value.__class__ is not bytes or lease.__class__ is not int or lease:
            rq.check_put_args(key, value, lease)
        payload = len(key) + len(value)
        bound = payload + rq.MAX_FRAMING
        if (
            lease
            or ignore_value
            or ignore_lease
            or not key
            or bound > self.max_request_bytes  # a size limit to look at
            or bound > self._grpc_limit
            or self.db_size + rq.KV_OVERHEAD + payload >= self.quota_bytes
            or self.alarm is not None
        ):  # otherwise every check below passes
            self._check_put(key, value, lease, prev_kv, ignore_value, ignore_lease, payload)
        rev = self._mvcc.rev
        prev = self._write_put(key, value, lease, prev_kv, ignore_value, ignore_lease, rev, rev + 1, 0)
        self._commit(rev + 1, rev + 1)
        return PutResponse(rev + 1, prev)

    def compare_and_put_many(
        self, keys: Sequence[bytes], values: Sequence[bytes], wants: Sequence[int]
    ) -> tuple[list[int], list[int]] | None:
        """Puts of ``values[i]`` at ``keys[i]`` without a lease, each its own request behind a compare of the key's
        mod revision (``wants[i]``: the revision wanted, 0 for an absent key, -1 for any present one), applied in
        order as one at a time would be: (each put's revision, 0 where its compare failed; each key's mod revision
        compared, 0 where absent). None, with nothing done, when a put could meet more than its compare (a key or
        value not bytes, an empty key, a size limit, the quota, an alarm, a watcher of the store): the caller then
        writes them one at a time. Lists of different lengths are refused (ValueError)."""
        if not len(keys) == len(values) == len(wants):
            raise ValueError(
                f"compare_and_put_many: {len(keys)} keys, {len(values)} values and {len(wants)} wants; one each"
            )
        if not keys or self._watchers or self.alarm is not None or {*map(type, keys), *map(type, values)} != {bytes}:
            return None
        payloads = [len(key) + len(value) for key, value in zip(keys, values)]
        largest = max(payloads)
        growth = sum(payloads) + len(payloads) * STORED_BYTES_PER_REVISION  # db_size grows by at most this
        if (
            largest + rq.MAX_FRAMING > min(self.max_request_bytes, self._grpc_limit)
            or self.db_size + growth + rq.KV_OVERHEAD + largest >= self.quota_bytes
            or not all(keys)
        ):
            return None
        rev = self._mvcc.rev
        put, mods, last = self._mvcc.compare_put_many(keys, values, wants, rev)
        if last == rev:
            return put, mods
        # as a lone put's _write_put: a put without a lease detaches its key
        self._lessor.detach_all(compress(keys, put))
        self._grow(sum(compress(payloads, put)), last - rev)
        self._commit(rev + 1, last)
        return put, mods

    def _check_put(
        self, key: bytes, value: bytes, lease: int, prev_kv: bool, ignore_value: bool, ignore_lease: bool, payload: int
    ) -> None:
        """A lone put's checks in etcd's order: gRPC limit, quota, checkPutRequest, raft limit, alarm, lease and
        key (``payload``: the key's and value's bytes)."""
        bound, cost = payload + rq.MAX_FRAMING, rq.KV_OVERHEAD + payload
        size = (
            partial(rq.put_size, key, value, lease, prev_kv, ignore_value, ignore_lease)
            if bound > self.max_request_bytes
            else None
        )  # the exact size only near a limit
        self._receive(bound, cost, size)
        if not key or ignore_value or ignore_lease:
            rq.check_put_request(key, value, lease, ignore_value, ignore_lease)
        self._propose(bound, cost, size)
        if lease or ignore_value or ignore_lease:
            self._check_put_state(key, lease, ignore_value, ignore_lease, lease_first=True)

    def range(
        self,
        key: bytes,
        range_end: bytes = b"",
        limit: int = 0,
        revision: int = 0,
        sort_order: str = "NONE",
        sort_target: str = "KEY",
        serializable: bool = False,
        keys_only: bool = False,
        count_only: bool = False,
        min_mod_revision: int = 0,
        max_mod_revision: int = 0,
        min_create_revision: int = 0,
        max_create_revision: int = 0,
    ) -> RangeResponse:
        """Read a key or a key range (etcd Range)."""
        # fast path: one key at the current revision (a key under 64 KiB is under any gRPC limit)
        if (
            range_end == b""
            and revision == 0
            and key.__class__ is bytes
            and key
            and limit.__class__ is int
            and len(key) < 65536
            and not count_only
            and not keys_only
            and sort_target == "KEY"
            and not (min_mod_revision or max_mod_revision or min_create_revision or max_create_revision)
            and sort_order in ("NONE", "ASCEND", "DESCEND")
        ):
            rev = self._mvcc.rev
            kv = self._mvcc.get(key, rev)
            return RangeResponse(rev, [kv], False, 1) if kv is not None else RangeResponse(rev, [], False, 0)
        req = RangeRequest(
            key,
            range_end,
            limit,
            revision,
            sort_order,
            sort_target,
            serializable,
            keys_only,
            count_only,
            min_mod_revision,
            max_mod_revision,
            min_create_revision,
            max_create_revision,
        )
        rq.check_args(req, "range")
        self._receive(rq.size_bound(req), 0, partial(rq.op_size, req))
        if not key:
            raise EmptyKeyError()
        self._check_revision(req.revision)
        return self._range(req, self._mvcc.rev)

    def _check_revision(self, revision: int, as_given: bool = False) -> None:
        """mvcc's rangeKeys: above the current revision is future, below the compaction revision
        compacted, and 0 or less reads the current one. ``as_given``: etcd's checkRequestRange on a
        range in a txn, which compares a nonzero revision as it is, negative ones included."""
        if revision > self._mvcc.rev:
            raise FutureRevisionError()
        if (revision > 0 or as_given and revision) and revision < self._mvcc.compact_rev:
            raise CompactedError()

    def _range(self, r: RangeRequest, cur: int) -> RangeResponse:
        rev = r.revision if r.revision > 0 else cur
        filtered = r.min_mod_revision or r.max_mod_revision or r.min_create_revision or r.max_create_revision
        if r.count_only:
            fetch = -1
        elif r.sort_order != "NONE" or filtered or r.limit <= 0:
            fetch = 0
        else:
            fetch = r.limit + 1  # one more than asked, to learn whether there is more
        kvs, count = self._mvcc.scan(r.key, _range_end(r.key, r.range_end), rev, fetch)
        if r.max_mod_revision:
            kvs = [kv for kv in kvs if kv.mod_revision <= r.max_mod_revision]
        if r.min_mod_revision:
            kvs = [kv for kv in kvs if kv.mod_revision >= r.min_mod_revision]
        if r.max_create_revision:
            kvs = [kv for kv in kvs if kv.create_revision <= r.max_create_revision]
        if r.min_create_revision:
            kvs = [kv for kv in kvs if kv.create_revision >= r.min_create_revision]
        order = r.sort_order
        if r.sort_target != "KEY" and order == "NONE":
            order = "ASCEND"  # etcd sorts ascending by default unless the target is the key
        if order != "NONE":
            field = _SORT_KEYS[r.sort_target]
            if order == "ASCEND":
                go_sort(kvs, lambda x, y: field(x) < field(y))
            else:  # sort.Reverse
                go_sort(kvs, lambda x, y: field(y) < field(x))
        more = 0 < r.limit < len(kvs)
        if more:
            kvs = kvs[: r.limit]
        if r.keys_only:
            kvs = [dataclasses.replace(kv, value=b"") for kv in kvs]
        return RangeResponse(cur, kvs, more, count)

    def delete_range(self, key: bytes, range_end: bytes = b"", prev_kv: bool = False) -> DeleteRangeResponse:
        """Delete a key or a key range (etcd DeleteRange)."""
        req = DeleteRangeRequest(key, range_end, prev_kv)
        rq.check_args(req, "delete_range")
        bound, size = rq.size_bound(req), partial(rq.op_size, req)
        self._receive(bound, 0, size)
        if not key:
            raise EmptyKeyError()
        self._propose(bound, 0, size)
        rev = self._mvcc.rev
        kvs = self._write_delete(key, _range_end(key, range_end), rev, rev + 1, 0)
        if not kvs:
            return DeleteRangeResponse(rev)
        self._commit(rev + 1, rev + 1)
        return DeleteRangeResponse(rev + 1, len(kvs), kvs if prev_kv else [])

    # -- txn --------------------------------------------------------------------
    def txn(self, compare: Sequence[Compare] = (), success: Sequence = (), failure: Sequence = ()) -> TxnResponse:
        """Compare-and-swap transaction (etcd Txn); nested TxnRequests allowed."""
        req = TxnRequest(tuple(compare), tuple(success), tuple(failure))
        rq.check_args(req, "txn")
        bound, cost, size = rq.size_bound(req), rq.cost_txn(req), partial(rq.op_size, req)
        self._receive(bound, cost, size)
        rq.check_txn(req, self.max_txn_ops)
        readonly = rq.is_readonly(req)
        if not readonly:
            self._propose(bound, cost, size)
        begin = self._mvcc.rev
        path = self._compare_path(req, begin)
        if not readonly:
            self._check_path(req, path, iter(path), self._check_put_op)
            deleted: list[tuple[bytes, bytes | None]] = []
            self._check_path(req, path, iter(path), lambda op: self._check_put_after_delete(op, deleted))
        self._check_path(req, path, iter(path), self._check_range_op)
        changes = [0]
        resp = self._apply_txn(req, iter(path), begin, changes)
        if changes[0]:
            self._commit(begin + 1, begin + 1)
        resp.revision = begin + 1 if changes[0] else begin
        return resp

    def _compare_path(self, req: TxnRequest, rev: int) -> list[bool]:
        """etcd's compareToPath: every compare on the taken path, against the state before the txn."""
        taken = all(self._compare(c, rev) for c in req.compare)
        path = [taken]
        for op in req.success if taken else req.failure:
            if isinstance(op, TxnRequest):
                path += self._compare_path(op, rev)
        return path

    def _compare(self, c: Compare, rev: int) -> bool:
        kvs, _ = self._mvcc.scan(c.key, _range_end(c.key, c.range_end), rev)
        if not kvs:
            if c.target == "VALUE":
                return False  # a missing key fails every value compare
            kvs = [KeyValue(c.key)]
        operand = c.operand
        field = _FIELD_OF_TARGET[c.target]
        for kv in kvs:
            mine = getattr(kv, field)
            if c.result == "EQUAL":
                ok = mine == operand
            elif c.result == "NOT_EQUAL":
                ok = mine != operand
            elif c.result == "GREATER":
                ok = mine > operand
            else:
                ok = mine < operand
            if not ok:
                return False
        return True

    def _check_path(self, req: TxnRequest, path: list[bool], steps, check) -> None:
        for op in req.success if next(steps) else req.failure:
            if isinstance(op, TxnRequest):
                self._check_path(op, path, steps, check)
            else:
                check(op)

    def _check_put_op(self, op) -> None:
        if isinstance(op, PutRequest):
            self._check_put_state(op.key, op.lease, op.ignore_value, op.ignore_lease)

    @staticmethod
    def _check_put_after_delete(op, deleted: list[tuple[bytes, bytes | None]]) -> None:
        """A put with ignore_value/ignore_lease after a delete of its key in the same txn (possible only
        through a from-key delete, which etcd's interval check lets through) makes etcd 3.4 panic
        ("unexpected error during txn"); kbench refuses the txn with KeyNotFound and changes nothing."""
        if isinstance(op, DeleteRangeRequest):
            deleted.append((op.key, _range_end(op.key, op.range_end)))
        elif (
            isinstance(op, PutRequest)
            and (op.ignore_value or op.ignore_lease)
            and any(start <= op.key and (end is None or op.key < end) for start, end in deleted)
        ):
            raise KeyNotFoundError("the key was deleted earlier in this txn")

    def _check_range_op(self, op) -> None:
        if isinstance(op, RangeRequest):
            self._check_revision(op.revision, as_given=True)

    def _apply_txn(self, req: TxnRequest, steps, begin: int, changes: list[int]) -> TxnResponse:
        taken = next(steps)
        responses: list[ResponseOp] = []
        for op in req.success if taken else req.failure:
            cur = begin + 1 if changes[0] else begin
            if isinstance(op, RangeRequest):
                responses.append(self._range(op, cur))
            elif isinstance(op, PutRequest):
                prev = self._write_put(
                    op.key, op.value, op.lease, op.prev_kv, op.ignore_value, op.ignore_lease, cur, begin + 1, changes[0]
                )
                changes[0] += 1
                responses.append(PutResponse(begin + 1, prev))
            elif isinstance(op, DeleteRangeRequest):
                kvs = self._write_delete(op.key, _range_end(op.key, op.range_end), cur, begin + 1, changes[0])
                changes[0] += len(kvs)
                rev = begin + 1 if changes[0] else begin
                responses.append(DeleteRangeResponse(rev, len(kvs), kvs if op.prev_kv else []))
            else:
                responses.append(self._apply_txn(op, steps, begin, changes))
        return TxnResponse(0, taken, responses)

    # -- compaction -------------------------------------------------------------
    def compact(self, revision: int, physical: bool = False) -> CompactionResponse:
        """Forget history before ``revision`` (etcd Compact); ``physical`` is accepted for API parity."""
        rq.check_int(revision, "revision", "compact")
        if revision <= self._mvcc.compact_rev:
            raise CompactedError()
        if revision > self._mvcc.rev:
            raise FutureRevisionError()
        before = len(self._mvcc)
        freed_bytes = self._mvcc.compact(revision)  # the pages of the dropped revisions are free for reuse
        freed = before - len(self._mvcc)
        self.db_size_in_use = max(0, self.db_size_in_use - freed_bytes - freed * STORED_BYTES_PER_REVISION)
        return CompactionResponse(self._mvcc.rev)

    def defragment(self) -> None:
        """Shrink the modelled db file to what is in use (etcd defrag)."""
        self.db_size = self.db_size_in_use

    def alarm_disarm(self) -> None:
        """Clear the NOSPACE alarm (etcdctl alarm disarm)."""
        self.alarm = None

    # -- watch ------------------------------------------------------------------
    def watch(
        self,
        key: bytes,
        range_end: bytes = b"",
        start_revision: int = 0,
        prev_kv: bool = False,
        filters: Sequence[str] = (),
    ) -> Watcher:
        """Watch a key or range from ``start_revision`` (0: from the next revision).

        As etcd 3.4's watch server and mvcc/watchable_store.go: an empty key is ``b"\\x00"``; a range
        ending at or before its key is canceled at once (``cancel_reason`` :data:`EMPTY_RANGE`); a
        nonzero start below the compaction revision, taken as it is (so -2 before any compaction, any
        negative one after), cancels the watch with ``compact_revision`` set; any other start of 0 or
        less watches from the next revision. (etcd takes a negative start that is not canceled, -1
        before any compaction, from its next watcher sync, up to 100 ms later, and makes every other
        watcher catching up in that sync skip to it too: a race kbench does not model.)
        """
        rq.check_bytes(key, "key", "watch")
        rq.check_bytes(range_end, "range_end", "watch")
        rq.check_int(start_revision, "start_revision", "watch")
        for f in filters:
            rq.check_enum(f, "filters", "watch", WATCH_FILTERS)
        key = key or b"\x00"
        self._next_watch_id += 1
        start = start_revision if start_revision > 0 else self._mvcc.rev + 1
        w = Watcher(
            self._next_watch_id, key, _range_end(key, range_end), start, prev_kv, tuple(filters), self._watchers.remove
        )
        if range_end not in (b"", b"\x00") and key >= range_end:
            w.canceled, w.cancel_reason = True, EMPTY_RANGE
            return w
        if start_revision and start_revision < self._mvcc.compact_rev:
            w.canceled, w.compact_revision = True, self._mvcc.compact_rev
            return w
        if start <= self._mvcc.rev:
            w.deliver(self._mvcc.history(start, self._mvcc.rev, w.key, w.end, prev_kv))
        self._watchers.append(w)
        return w

    # -- leases -----------------------------------------------------------------
    def lease_grant(self, ttl: int, id: int = 0) -> LeaseGrantResponse:
        """Grant a lease of ``ttl`` seconds (etcd LeaseGrant; ``id`` 0 picks one)."""
        rq.check_int(ttl, "ttl", "lease_grant")
        rq.check_int(id, "id", "lease_grant")
        self._receive(0, rq.LEASE_OVERHEAD, None)
        self._propose(0, rq.LEASE_OVERHEAD, None)
        lease = self._lessor.grant(id, ttl)
        return LeaseGrantResponse(self._mvcc.rev, lease.id, lease.ttl)

    def lease_revoke(self, id: int) -> LeaseRevokeResponse:
        """Revoke a lease, deleting its keys in one revision (etcd LeaseRevoke)."""
        rq.check_int(id, "id", "lease_revoke")
        keys = self._lessor.remove(id)
        rev = self._mvcc.rev
        for sub, key in enumerate(keys):
            self._write_delete(key, key + b"\x00", rev, rev + 1, sub)
        if keys:
            self._commit(rev + 1, rev + 1)
        return LeaseRevokeResponse(self._mvcc.rev)

    def _expire(self, lease_id: int) -> None:
        if lease_id in self._lessor:
            self.lease_revoke(lease_id)

    def lease_keepalive(self, id: int) -> LeaseKeepAliveResponse:
        """Restart a lease's TTL (one etcd LeaseKeepAlive round)."""
        lease = self._lessor.keepalive(id)
        return LeaseKeepAliveResponse(self._mvcc.rev, lease.id, lease.ttl)

    def lease_time_to_live(self, id: int, keys: bool = False) -> LeaseTimeToLiveResponse:
        """Remaining and granted TTL of a lease (ttl -1 if unknown), with its keys if asked."""
        if id not in self._lessor:
            return LeaseTimeToLiveResponse(self._mvcc.rev, id, -1)
        lease = self._lessor.get(id)
        return LeaseTimeToLiveResponse(
            self._mvcc.rev, id, self._lessor.remaining(lease), lease.ttl, sorted(lease.keys) if keys else []
        )

    def leases(self) -> list[int]:
        """Ids of the granted leases."""
        return self._lessor.ids()

    # -- batches ----------------------------------------------------------------
    def keyset(self, keys: Sequence[bytes]):
        """Intern ``keys`` for :meth:`put_many` and :meth:`range_many`; index the result with an int array."""
        for i, key in enumerate(keys):
            rq.check_key(key, f"keyset[{i}]")
        return self._mvcc.keyset(keys)

    def put_many(self, keys, values: bytes | Sequence[bytes], lease: int = 0) -> np.ndarray:
        """Put each key as its own request (revisions rev+1, rev+2, ...); returns the revisions.

        ``keys`` comes from :meth:`keyset`; ``values`` is one value for all or one per key.
        """
        m = len(keys)
        if isinstance(values, bytes):
            value_sizes = np.full(m, len(values), np.int64)
        else:
            if len(values) != m:
                raise ValueError(f"put_many: {len(values)} values for {m} keys")
            for i, value in enumerate(values):
                rq.check_bytes(value, f"values[{i}]", "put_many")
            value_sizes = np.fromiter(map(len, values), np.int64, m)
        rq.check_int(lease, "lease", "put_many")
        if m == 0:
            return np.zeros(0, np.int64)
        stored = int(keys.sizes.sum() + value_sizes.sum())
        bound, cost = int(np.max(keys.sizes + value_sizes)) + rq.MAX_FRAMING, rq.KV_OVERHEAD * m + stored
        each = repeat(values) if isinstance(values, bytes) else values

        def size() -> int:
            return max(rq.put_size(key, value, lease) for key, value in zip(keys.keys, each))

        self._receive(bound, cost, size)
        self._propose(bound, cost, size)
        if lease and lease not in self._lessor:
            raise LeaseNotFoundError()
        rev = self._mvcc.rev
        self._mvcc.put_many(keys, values, lease, rev + 1)
        if lease or self._lessor.attached:
            for key in keys.keys:
                self._lessor.attach(key, lease)
        self._grow(stored, m)
        self._commit(rev + 1, rev + m)
        return np.arange(rev + 1, rev + m + 1, dtype=np.int64)

    def range_many(self, keys, revision: int = 0) -> np.ndarray:
        """Point reads of many keys at ``revision`` (0: current).

        Returns an ``int64`` array of shape (5, len(keys)): rows create_revision,
        mod_revision, version, lease and value size (-1 where the key is missing).
        """
        rq.check_int(revision, "revision", "range_many")
        self._check_revision(revision)
        return self._mvcc.get_many(keys, revision if revision > 0 else self._mvcc.rev)
