"""etcd v3 messages: key-values, requests, responses and watch events.

Field names follow etcd's protobuf (``etcdserverpb`` / ``mvccpb``) so a test can
drive kbench and a real etcd with the same sequence and compare every field.
Each response carries the store ``revision`` (etcd's ``header.revision``).
Enum fields take etcd's enum names as strings (``"VERSION"``, ``"EQUAL"``, ...).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

COMPARE_TARGETS = ("VERSION", "CREATE", "MOD", "VALUE", "LEASE")
COMPARE_RESULTS = ("EQUAL", "GREATER", "LESS", "NOT_EQUAL")
SORT_ORDERS = ("NONE", "ASCEND", "DESCEND")
SORT_TARGETS = ("KEY", "VERSION", "CREATE", "MOD", "VALUE")
WATCH_FILTERS = ("NOPUT", "NODELETE")

# Compare target -> the Compare field holding the operand (etcd's TargetUnion oneof).
COMPARE_FIELDS = {
    "VERSION": "version",
    "CREATE": "create_revision",
    "MOD": "mod_revision",
    "VALUE": "value",
    "LEASE": "lease",
}


@dataclass(slots=True)
class KeyValue:
    """mvccpb.KeyValue: a key's state at one revision."""

    key: bytes
    create_revision: int = 0
    mod_revision: int = 0
    version: int = 0
    value: bytes = b""
    lease: int = 0


# -- requests -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PutRequest:
    """etcdserverpb.PutRequest: write ``value`` at ``key``, attached to ``lease`` (0: none)."""

    key: bytes
    value: bytes = b""
    lease: int = 0
    prev_kv: bool = False
    ignore_value: bool = False
    ignore_lease: bool = False


@dataclass(frozen=True, slots=True)
class RangeRequest:
    """etcdserverpb.RangeRequest: keys in ``[key, range_end)`` (just ``key`` when ``range_end`` is empty)."""

    key: bytes
    range_end: bytes = b""
    limit: int = 0
    revision: int = 0
    sort_order: str = "NONE"
    sort_target: str = "KEY"
    serializable: bool = False
    keys_only: bool = False
    count_only: bool = False
    min_mod_revision: int = 0
    max_mod_revision: int = 0
    min_create_revision: int = 0
    max_create_revision: int = 0


RANGE_INT_FIELDS = (
    "limit",
    "revision",
    "min_mod_revision",
    "max_mod_revision",
    "min_create_revision",
    "max_create_revision",
)
""":class:`RangeRequest`'s integer fields: its limit and its revision bounds."""


@dataclass(frozen=True, slots=True)
class DeleteRangeRequest:
    """etcdserverpb.DeleteRangeRequest: delete the keys in ``[key, range_end)``."""

    key: bytes
    range_end: bytes = b""
    prev_kv: bool = False


@dataclass(frozen=True, slots=True)
class Compare:
    """etcdserverpb.Compare: ``target`` of the key(s) compared with the field named by it."""

    key: bytes
    target: str
    result: str
    version: int = 0
    create_revision: int = 0
    mod_revision: int = 0
    value: bytes = b""
    lease: int = 0
    range_end: bytes = b""

    @property
    def operand(self) -> Any:
        """The value compared against: the field that ``target`` selects."""
        return getattr(self, COMPARE_FIELDS[self.target])


@dataclass(frozen=True, slots=True)
class TxnRequest:
    """etcdserverpb.TxnRequest: if every ``compare`` holds, run ``success``, else ``failure``."""

    compare: tuple[Compare, ...] = ()
    success: tuple[RequestOp, ...] = ()
    failure: tuple[RequestOp, ...] = ()


RequestOp = RangeRequest | PutRequest | DeleteRangeRequest | TxnRequest


# -- responses ------------------------------------------------------------------


@dataclass(slots=True)
class RangeResponse:
    """etcdserverpb.RangeResponse: ``kvs`` found, ``more`` when ``limit`` cut them, ``count`` of all matches."""

    revision: int
    kvs: list[KeyValue] = field(default_factory=list)
    more: bool = False
    count: int = 0


@dataclass(slots=True)
class PutResponse:
    """etcdserverpb.PutResponse: ``prev_kv`` is the key's state before the put, when asked for."""

    revision: int
    prev_kv: KeyValue | None = None


@dataclass(slots=True)
class DeleteRangeResponse:
    """etcdserverpb.DeleteRangeResponse: how many keys were ``deleted``, and their ``prev_kvs`` when asked for."""

    revision: int
    deleted: int = 0
    prev_kvs: list[KeyValue] = field(default_factory=list)


@dataclass(slots=True)
class TxnResponse:
    """Nested txn responses carry revision 0, as etcd 3.4 leaves their header empty."""

    revision: int
    succeeded: bool = False
    responses: list[ResponseOp] = field(default_factory=list)


ResponseOp = RangeResponse | PutResponse | DeleteRangeResponse | TxnResponse


@dataclass(slots=True)
class CompactionResponse:
    """etcdserverpb.CompactionResponse."""

    revision: int


@dataclass(slots=True)
class LeaseGrantResponse:
    """etcdserverpb.LeaseGrantResponse: the lease ``id`` granted with its ``ttl`` in seconds."""

    revision: int
    id: int
    ttl: int


@dataclass(slots=True)
class LeaseRevokeResponse:
    """etcdserverpb.LeaseRevokeResponse."""

    revision: int


@dataclass(slots=True)
class LeaseKeepAliveResponse:
    """etcdserverpb.LeaseKeepAliveResponse: the lease's ``ttl`` after the renewal."""

    revision: int
    id: int
    ttl: int


@dataclass(slots=True)
class LeaseTimeToLiveResponse:
    """``ttl`` is -1 for an unknown or expired lease, as etcd reports it."""

    revision: int
    id: int
    ttl: int
    granted_ttl: int = 0
    keys: list[bytes] = field(default_factory=list)


@dataclass(slots=True)
class Event:
    """mvccpb.Event: ``type`` is "PUT" or "DELETE"; a DELETE's kv holds only key and mod_revision."""

    type: str
    kv: KeyValue
    prev_kv: KeyValue | None = None
