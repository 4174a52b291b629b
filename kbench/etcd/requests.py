"""Request checks done before a request reaches the store, as etcd's API layer does them.

A request meets, in order (etcd 3.4):

1. argument types and enum names (what etcd's protobuf decoding would refuse;
   here plain ``TypeError`` / ``ValueError`` naming the field);
2. gRPC's message size limit, ``--max-request-bytes`` + 512 KiB;
3. the quota (``etcdserver/api/v3rpc/quota.go``, cost from ``etcdserver/quota.go``);
4. ``etcdserver/api/v3rpc/key.go``: empty keys, ``ignore_value`` with a value,
   ``ignore_lease`` with a lease, at most ``--max-txn-ops`` ops per txn level
   (a nested txn gets what its parent leaves), all of them for the whole txn
   before ``checkIntervals`` (a txn may not write a key twice or put inside a
   deleted range, nested txns included; overlapping deletes are allowed);
5. raft's size limit, ``--max-request-bytes``, on the proposal (writes only:
   a range and a read-only txn never become one).
"""

from __future__ import annotations

from typing import Any

from kbench.etcd.errors import (
    DuplicateKeyError,
    EmptyKeyError,
    LeaseProvidedError,
    TooManyOpsError,
    ValueProvidedError,
)
from kbench.etcd.types import (
    COMPARE_FIELDS,
    COMPARE_RESULTS,
    COMPARE_TARGETS,
    RANGE_INT_FIELDS,
    SORT_ORDERS,
    SORT_TARGETS,
    Compare,
    DeleteRangeRequest,
    PutRequest,
    RangeRequest,
    TxnRequest,
)

MAX_REQUEST_BYTES = 1_572_864
"""--max-request-bytes default, 1.5 MiB (embed/config.go DefaultMaxRequestBytes, etcd 3.4)."""
GRPC_OVERHEAD_BYTES = 512 * 1024
"""Bytes gRPC accepts in one message beyond --max-request-bytes (etcdserver/api/v3rpc/grpc.go
grpcOverheadBytes, etcd 3.4)."""
MAX_TXN_OPS = 128
"""--max-txn-ops default (embed/config.go DefaultMaxTxnOps, etcd 3.4)."""
QUOTA_BYTES = 2 * 1024**3
"""--quota-backend-bytes default, 2 GiB (etcdserver/quota.go DefaultQuotaBytes, etcd 3.4)."""
KV_OVERHEAD = 256
"""Quota cost added to each put's key and value (etcdserver/quota.go kvOverhead)."""
LEASE_OVERHEAD = 64
"""Quota cost of a lease grant (etcdserver/quota.go leaseOverhead)."""
DEFAULT_MEMBER_ID = 0x8E9E05C52164694D
"""ID of a member started with etcd's defaults: the first 8 bytes of SHA-1 of its peer URL
``http://localhost:2380`` and cluster token ``etcd-cluster`` (etcdserver/api/membership/member.go
newMember)."""
MAX_FRAMING = 256
"""Bytes of protobuf framing one message of a request can add to its keys, values and range ends, at
most: a RangeRequest's two length-delimited fields and eleven varints (11 bytes each, 143), inside a
RequestOp inside a TxnRequest field (11 bytes each); a top-level write adds at most 25 of raft framing."""


# -- argument checks (protobuf level) ------------------------------------------------


def check_bytes(value: Any, name: str, where: str) -> None:
    """``value`` must be ``bytes``."""
    if value.__class__ is not bytes:
        raise TypeError(f"{where}: field {name!r} must be bytes, got {type(value).__name__}")


INT64 = (-(2**63), 2**63 - 1)
"""The range of etcd's integer request fields (protobuf int64: revisions, limits, lease IDs)."""


def check_int(value: Any, name: str, where: str) -> None:
    """``value`` must be an int (not a bool) that protobuf's int64 can carry."""
    if value.__class__ is not int and (isinstance(value, bool) or not hasattr(value, "__index__")):
        raise TypeError(f"{where}: field {name!r} must be an integer, got {value!r}")
    if not INT64[0] <= value <= INT64[1]:
        raise ValueError(f"{where}: field {name!r} must be a 64-bit signed integer (-2**63 to 2**63-1), got {value}")


def check_enum(value: Any, name: str, where: str, allowed: tuple[str, ...]) -> None:
    """``value`` must be one of etcd's enum names ``allowed``."""
    if value not in allowed:
        raise ValueError(f"{where}: field {name!r} must be one of {', '.join(allowed)}; got {value!r}")


def check_key(key: Any, where: str) -> None:
    """A key must be non-empty bytes."""
    check_bytes(key, "key", where)
    if not key:
        raise EmptyKeyError()


def check_put_args(key: Any, value: Any, lease: Any, where: str = "put") -> None:
    """A put's argument types."""
    check_bytes(key, "key", where)
    check_bytes(value, "value", where)
    check_int(lease, "lease", where)


def check_args(op: Any, where: str) -> None:
    """Argument types and enum names of a request message, nested ones included."""
    if isinstance(op, PutRequest):
        check_put_args(op.key, op.value, op.lease, where)
    elif isinstance(op, RangeRequest):
        check_bytes(op.key, "key", where)
        check_bytes(op.range_end, "range_end", where)
        for name in RANGE_INT_FIELDS:
            check_int(getattr(op, name), name, where)
        check_enum(op.sort_order, "sort_order", where, SORT_ORDERS)
        check_enum(op.sort_target, "sort_target", where, SORT_TARGETS)
    elif isinstance(op, DeleteRangeRequest):
        check_bytes(op.key, "key", where)
        check_bytes(op.range_end, "range_end", where)
    elif isinstance(op, TxnRequest):
        for i, c in enumerate(op.compare):
            _check_compare_args(c, f"{where}.compare[{i}]")
        for branch in ("success", "failure"):
            for i, sub in enumerate(getattr(op, branch)):
                check_args(sub, f"{where}.{branch}[{i}]")
    else:
        raise TypeError(
            f"{where}: op must be a RangeRequest, PutRequest, DeleteRangeRequest or TxnRequest, got {type(op).__name__}"
        )


def _check_compare_args(c: Any, where: str) -> None:
    if not isinstance(c, Compare):
        raise TypeError(f"{where}: compare must be a Compare, got {type(c).__name__}")
    check_bytes(c.key, "key", where)
    check_bytes(c.range_end, "range_end", where)
    check_enum(c.target, "target", where, COMPARE_TARGETS)
    check_enum(c.result, "result", where, COMPARE_RESULTS)
    operand = COMPARE_FIELDS[c.target]
    (check_bytes if c.target == "VALUE" else check_int)(getattr(c, operand), operand, where)


# -- etcd's API checks (etcdserver/api/v3rpc/key.go) ---------------------------------


def check_put_request(key: bytes, value: bytes, lease: int, ignore_value: bool, ignore_lease: bool) -> None:
    """etcd's checkPutRequest."""
    if not key:
        raise EmptyKeyError()
    if ignore_value and value:
        raise ValueProvidedError()
    if ignore_lease and lease:
        raise LeaseProvidedError()


def check_request_op(op: RangeRequest | PutRequest | DeleteRangeRequest | TxnRequest, max_ops: int) -> None:
    """etcd's checkRequestOp: checkRangeRequest and checkDeleteRequest refuse an empty key."""
    if isinstance(op, PutRequest):
        check_put_request(op.key, op.value, op.lease, op.ignore_value, op.ignore_lease)
    elif isinstance(op, TxnRequest):
        check_txn_request(op, max_ops)
    elif not op.key:
        raise EmptyKeyError()


def check_txn_request(req: TxnRequest, max_ops: int) -> None:
    """etcd's checkTxnRequest: the longest of compare, success and failure against ``max_ops``, empty
    compare keys, then every op, a nested txn getting ``max_ops`` less its parent's count."""
    ops = max(len(req.compare), len(req.success), len(req.failure))
    if ops > max_ops:
        raise TooManyOpsError()
    if not all(c.key for c in req.compare):
        raise EmptyKeyError()
    for op in (*req.success, *req.failure):
        check_request_op(op, max_ops - ops)


def check_txn(req: TxnRequest, max_ops: int = MAX_TXN_OPS) -> None:
    """kvServer.Txn's checks: checkTxnRequest on the whole txn, then checkIntervals on each branch."""
    check_txn_request(req, max_ops)
    check_intervals(req.success)
    check_intervals(req.failure)


def _overlaps(dels: list[tuple[bytes, bytes]], key: bytes) -> bool:
    # etcd's adt.IntervalTree.Intersects with the point [key, key+"\0"); a delete's
    # interval is [key, range_end) taken literally, so range_end "\0" matches nothing.
    point_end = key + b"\x00"
    return any(begin < point_end and key < end for begin, end in dels)


def check_intervals(ops) -> tuple[set[bytes], list[tuple[bytes, bytes]]]:
    """Port of etcd 3.4's checkIntervals: returns (puts, delete intervals) for the parent level."""
    dels = [
        (op.key, op.range_end if op.range_end else op.key + b"\x00") for op in ops if isinstance(op, DeleteRangeRequest)
    ]
    puts: set[bytes] = set()
    for op in ops:
        if not isinstance(op, TxnRequest):
            continue
        puts_then, dels_then = check_intervals(op.success)
        puts_else, dels_else = check_intervals(op.failure)
        for key in puts_then:
            if key in puts or _overlaps(dels, key):
                raise DuplicateKeyError()
            puts.add(key)
        for key in puts_else:
            if (key in puts and key not in puts_then) or _overlaps(dels, key):
                raise DuplicateKeyError()
            puts.add(key)
        dels += dels_then + dels_else
    for op in ops:
        if isinstance(op, PutRequest):
            if op.key in puts or _overlaps(dels, op.key):
                raise DuplicateKeyError()
            puts.add(op.key)
    return puts, dels


def is_readonly(req: TxnRequest) -> bool:
    """etcd's isTxnReadonly: every op of both branches is a range (a nested txn makes it a write)."""
    return all(isinstance(op, RangeRequest) for op in (*req.success, *req.failure))


# -- quota cost ---------------------------------------------------------------------


def cost_put(key: bytes, value: bytes) -> int:
    """etcd's costPut."""
    return KV_OVERHEAD + len(key) + len(value)


def cost_txn(req: TxnRequest) -> int:
    """etcd's costTxn: the larger of the two branches' top-level puts."""

    def branch(ops):
        return sum(cost_put(op.key, op.value) for op in ops if isinstance(op, PutRequest))

    return max(branch(req.success), branch(req.failure))


# -- protobuf sizes -----------------------------------------------------------------


def _varint(n: int) -> int:
    n &= (1 << 64) - 1  # negative int64 encodes as 10 bytes
    size = 1
    while n >= 0x80:
        n >>= 7
        size += 1
    return size


def _tag(field: int) -> int:
    return _varint(field << 3)


def _scalar(field: int, n: int) -> int:
    return 0 if not n else _tag(field) + _varint(n)


def _blob(field: int, size: int, always: bool = False) -> int:
    return 0 if not size and not always else _tag(field) + _varint(size) + size


def put_size(key: bytes, value: bytes, lease: int, *flags: bool) -> int:
    """Encoded size of a PutRequest (flags: prev_kv, ignore_value, ignore_lease)."""
    return _blob(1, len(key)) + _blob(2, len(value)) + _scalar(3, lease) + 2 * sum(map(bool, flags))


def _range_size(r: RangeRequest) -> int:
    ints = (
        r.limit,
        r.revision,
        SORT_ORDERS.index(r.sort_order),
        SORT_TARGETS.index(r.sort_target),
        r.serializable,
        r.keys_only,
        r.count_only,
        r.min_mod_revision,
        r.max_mod_revision,
        r.min_create_revision,
        r.max_create_revision,
    )
    return _blob(1, len(r.key)) + _blob(2, len(r.range_end)) + sum(_scalar(f, int(v)) for f, v in enumerate(ints, 3))


def _compare_size(c: Compare) -> int:
    size = _scalar(1, COMPARE_RESULTS.index(c.result)) + _scalar(2, COMPARE_TARGETS.index(c.target))
    size += _blob(3, len(c.key)) + _blob(64, len(c.range_end))
    field = 4 + COMPARE_TARGETS.index(c.target)
    operand = c.operand
    return size + (_blob(field, len(operand), True) if c.target == "VALUE" else _tag(field) + _varint(operand))


def op_size(op) -> int:
    """Encoded size of a request message (Put, Range, DeleteRange or Txn)."""
    if isinstance(op, PutRequest):
        return put_size(op.key, op.value, op.lease, op.prev_kv, op.ignore_value, op.ignore_lease)
    if isinstance(op, RangeRequest):
        return _range_size(op)
    if isinstance(op, DeleteRangeRequest):
        return _blob(1, len(op.key)) + _blob(2, len(op.range_end)) + _scalar(3, op.prev_kv)
    ops = [(2, o) for o in op.success] + [(3, o) for o in op.failure]
    return sum(_blob(1, _compare_size(c), True) for c in op.compare) + sum(
        _blob(field, _blob(1 + _OP_FIELDS.index(type(o)), op_size(o), True), True) for field, o in ops
    )


_OP_FIELDS = (RangeRequest, PutRequest, DeleteRangeRequest, TxnRequest)


def size_bound(op) -> int:
    """An upper bound of a request's encoded size, raft framing included: its keys, values and range
    ends plus :data:`MAX_FRAMING` per message (the exact size is computed only near a limit)."""
    if isinstance(op, PutRequest):
        return len(op.key) + len(op.value) + MAX_FRAMING
    if isinstance(op, (RangeRequest, DeleteRangeRequest)):
        return len(op.key) + len(op.range_end) + MAX_FRAMING
    compares = sum(len(c.key) + len(c.range_end) + (len(c.value) if c.target == "VALUE" else 0) for c in op.compare)
    return MAX_FRAMING * (1 + len(op.compare)) + compares + sum(size_bound(o) for o in (*op.success, *op.failure))


def raft_header_size(member_id: int) -> int:
    """Encoded size of an InternalRaftRequest's header (field 100) on member ``member_id``.

    etcd 3.4 sets only the header's ID (etcdserver/v3_server.go processInternalRaftRequestOnce), from
    pkg/idutil's Generator: the member ID's low 16 bits above a 48-bit suffix of a millisecond
    timestamp and a counter. The suffix's top bit is taken as set (assumed: it is while the Unix
    time in milliseconds modulo 2**40 is at least 2**39, from April 2022 to September 2039), so the
    size depends on the member ID only.
    """
    request_id = (member_id & 0xFFFF) << 48 | 1 << 47
    return _tag(100) + 1 + _tag(1) + _varint(request_id)


def raft_size(size: int, header: int) -> int:
    """Size of the InternalRaftRequest carrying a request of ``size`` bytes: the ``header``, then the
    request in its field (put 4, delete_range 5, txn 6: one tag byte)."""
    return header + 1 + _varint(size) + size
