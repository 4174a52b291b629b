"""Random etcd op sequences, shared by the property tests (hypothesis) and the differential test (real etcd).

An op is ``(method, args, kwargs)``, applied to anything with the Store API
(kbench's Store on either backend, or the Gateway to a real etcd). Ops are drawn
through a small chooser interface so the same generator runs on Python's
``random`` (differential test) and on hypothesis ``data.draw`` (property tests,
which then shrink failures).

The sequences cover the API as etcd's gateway exposes it: puts with every option,
ranges at past, compacted, future and negative revisions with every sort, limit
and filter, deletes of keys, ranges, prefixes and everything from a key, txns
with every compare target and result, every op kind in both branches, nested
txns and txns at the op-count limit, compactions, leases (explicit IDs, attach,
detach, revoke, keep-alive, time-to-live), watches from past, future, compacted
and negative starts with prev_kv and filters, requests a few bytes either side
of raft's and gRPC's size limits, and invalid requests (empty keys, duplicate
keys, ignore_* with a value or lease, unknown leases) mixed with valid ops so
that etcd's error precedence shows.
"""

from __future__ import annotations

import dataclasses
import math
import random

from hypothesis import strategies as st

from kbench.etcd import Compare, DeleteRangeRequest, EtcdError, PutRequest, RangeRequest, TxnRequest
from kbench.etcd.requests import GRPC_OVERHEAD_BYTES, MAX_REQUEST_BYTES, MAX_TXN_OPS
from kbench.etcd.types import COMPARE_RESULTS, COMPARE_TARGETS, SORT_ORDERS, SORT_TARGETS, WATCH_FILTERS

LETTERS = b"abcdefgh"
LONG_TTL = 3600
"""Seconds: a real lease must outlive the test (kbench's clock stands still there)."""
MAX_LEASE_TTL = 9_000_000_000


class RandomChooser:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def int(self, lo: int, hi: int) -> int:
        return self.rng.randint(lo, hi)

    def choice(self, seq):
        return seq[self.rng.randrange(len(seq))]

    def chance(self, p: float) -> bool:
        return self.rng.random() < p


class HypothesisChooser:
    def __init__(self, data) -> None:
        self.data = data

    def int(self, lo: int, hi: int) -> int:
        return self.data.draw(st.integers(lo, hi))

    def choice(self, seq):
        return seq[self.data.draw(st.integers(0, len(seq) - 1))]

    def chance(self, p: float) -> bool:
        return self.data.draw(st.integers(0, 999)) < p * 1000


@dataclasses.dataclass
class Context:
    """What the generator knows of the store, to aim ops at interesting values."""

    prefix: bytes
    revision: int = 1
    compact_revision: int = -1
    leases: list[int] = dataclasses.field(default_factory=list)
    next_lease: int = 1
    sizes: bool = False
    """Also draw requests a few bytes either side of the size limits (megabytes each)."""
    compact_below: float = math.inf
    """Compactions stay below this: the lowest start at or below the current revision of a watch
    opened in this sequence. etcd replays such a watch at its next watcher sync, up to 100 ms later,
    and a compaction before that would cancel it, or change what it replays, at random."""

    def begin(self, prefix: bytes, store) -> None:
        """Start a new sequence on the keys under ``prefix``."""
        self.prefix = prefix
        self.compact_below = math.inf
        self.observe(store)

    def observe(self, store) -> None:
        self.revision = store.revision
        self.compact_revision = store.compact_revision


# -- keys, values, revisions ----------------------------------------------------------


def _key(c, ctx: Context) -> bytes:
    return b"" if c.chance(0.02) else ctx.prefix + bytes([c.choice(LETTERS)])


def _value(c) -> bytes:
    return c.choice([b"", b"x", b"y", b"value", bytes([c.int(0, 255)]) * c.int(1, 3)])


def _revision(c, ctx: Context) -> int:
    roll = c.int(0, 9)
    if roll < 5:
        return 0
    if roll < 8:  # just below the compaction revision to just above the current one
        return c.int(max(1, ctx.compact_revision - 1), ctx.revision + 1)
    if roll < 9:  # negative: the current revision, or compacted in a txn
        return c.int(-3, -1)
    return c.int(1, ctx.revision + 2)


def _span(c, ctx: Context) -> tuple[bytes, bytes]:
    kind = c.int(0, 4)
    if kind == 0:
        return _key(c, ctx), b""
    if kind == 1:  # the sequence's prefix
        return ctx.prefix, ctx.prefix[:-1] + bytes([ctx.prefix[-1] + 1])
    if kind == 2:  # from a key to the end of the keyspace
        return _key(c, ctx), b"\x00"
    if kind == 3:  # backwards: an empty range
        return ctx.prefix + b"h", ctx.prefix + b"b"
    a, b = sorted((_key(c, ctx), _key(c, ctx)))
    return a, b


def _lease(c, ctx: Context) -> int:
    if ctx.leases and c.chance(0.3):
        return c.choice(ctx.leases)
    return 0 if c.chance(0.95) else 999_999  # an unknown lease, now and then


# -- requests -----------------------------------------------------------------------------


def put_op(c, ctx: Context, ignore: bool = True) -> PutRequest:
    """A put; ``ignore``: may set ignore_value / ignore_lease."""
    ignore_value = ignore and c.chance(0.05)
    ignore_lease = ignore and c.chance(0.05)
    value = b"" if ignore_value and c.chance(0.8) else _value(c)
    lease = 0 if ignore_lease and c.chance(0.8) else _lease(c, ctx)
    return PutRequest(_key(c, ctx), value, lease, c.chance(0.3), ignore_value, ignore_lease)


def range_op(c, ctx: Context) -> RangeRequest:
    key, end = _span(c, ctx)
    sort = c.chance(0.3)
    filt = c.chance(0.2)
    return RangeRequest(
        key,
        end,
        limit=c.int(-1, 4) if c.chance(0.4) else 0,
        revision=_revision(c, ctx),
        sort_order=c.choice(SORT_ORDERS) if sort else "NONE",
        sort_target=c.choice(SORT_TARGETS) if sort else "KEY",
        serializable=c.chance(0.1),
        keys_only=c.chance(0.1),
        count_only=c.chance(0.1),
        min_mod_revision=c.int(0, ctx.revision) if filt and c.chance(0.5) else 0,
        max_mod_revision=c.int(0, ctx.revision) if filt and c.chance(0.5) else 0,
        min_create_revision=c.int(0, ctx.revision) if filt and c.chance(0.5) else 0,
        max_create_revision=c.int(0, ctx.revision) if filt and c.chance(0.5) else 0,
    )


def delete_op(c, ctx: Context) -> DeleteRangeRequest:
    key, end = _span(c, ctx) if c.chance(0.5) else (_key(c, ctx), b"")
    return DeleteRangeRequest(key, end, c.chance(0.5))


def compare(c, ctx: Context) -> Compare:
    target = c.choice(COMPARE_TARGETS)
    key, end = (_key(c, ctx), b"") if c.chance(0.8) else _span(c, ctx)
    operand: dict = {}
    if target == "VALUE":
        operand["value"] = _value(c)
    elif target == "LEASE":
        operand["lease"] = c.choice([0, *ctx.leases]) if ctx.leases else 0
    else:
        field = {"VERSION": "version", "CREATE": "create_revision", "MOD": "mod_revision"}[target]
        operand[field] = c.int(0, 3) if target == "VERSION" else c.int(0, ctx.revision)
    return Compare(key, target, c.choice(COMPARE_RESULTS), range_end=end, **operand)


def txn_op(c, ctx: Context, depth: int = 0, deleted_to_end: list[bool] | None = None) -> TxnRequest:
    """A txn of 0-4 ops a branch, every kind, nested up to two deep.

    A put keeping its value or lease after a delete from some key to the end of the keyspace
    (which etcd's interval check lets through) makes etcd 3.4 panic; ``deleted_to_end`` notes such
    a delete drawn earlier, after which puts do without ignore_*.
    """
    deleted_to_end = [False] if deleted_to_end is None else deleted_to_end

    def branch():
        ops = []
        for _ in range(c.int(0, 4)):
            kind = c.int(0, 9)
            if kind < 4:
                ops.append(put_op(c, ctx, ignore=not deleted_to_end[0]))
            elif kind < 6:
                ops.append(range_op(c, ctx))
            elif kind < 8 or depth == 2:
                ops.append(delete_op(c, ctx))
                if ops[-1].range_end == b"\x00":
                    deleted_to_end[0] = True
                    if c.chance(0.5):  # the key again, in a new generation at the same revision
                        ops.append(PutRequest(ops[-1].key, _value(c)))
            else:
                ops.append(txn_op(c, ctx, depth + 1, deleted_to_end))
        return tuple(ops)

    return TxnRequest(tuple(compare(c, ctx) for _ in range(c.int(0, 2))), branch(), branch())


def limit_txn_op(c, ctx: Context) -> TxnRequest:
    """A txn at --max-txn-ops: a long list (compares, success or failure) and a nested txn given
    about what its parent leaves."""
    n = c.int(MAX_TXN_OPS - 8, MAX_TXN_OPS + 1)
    nested = TxnRequest(success=(RangeRequest(_key(c, ctx)),) * c.int(0, MAX_TXN_OPS - n + 2))
    where = c.int(0, 2)
    compares = (compare(c, ctx),) * (n if where == 0 else c.int(0, 2))
    ranges = (range_op(c, ctx),) * (n - 1)
    success = ranges + (nested,) if where == 1 else (nested,)
    failure = ranges + (nested,) if where == 2 else ()
    return TxnRequest(compares, success, failure)


def sized_op(c, ctx: Context) -> tuple[str, tuple, dict]:
    """A request a few bytes either side of raft's limit on writes or gRPC's on every message."""
    limit = MAX_REQUEST_BYTES + (GRPC_OVERHEAD_BYTES if c.chance(0.3) else 0)
    n = limit - c.int(0, 48)  # bytes of keys and values; the framing makes up the rest
    key = ctx.prefix[:-1] + b"~"  # outside the prefix's span, so later prefix ranges stay small
    kind = c.int(0, 4)
    if kind == 0:
        return "put", (), dataclasses.asdict(PutRequest(key, b"v" * (n - len(key))))
    if kind == 1:
        return "range", (), {"key": key * (n // len(key))}
    if kind == 2:
        return "delete_range", (), {"key": key * (n // len(key))}
    big = Compare(key, "VALUE", "EQUAL", value=b"v" * (n - len(key)))
    if kind == 3:  # read-only: never a raft proposal
        return "txn", ((big,), (RangeRequest(key),), ()), {}
    return "txn", ((), (PutRequest(key, b"v" * (n - len(key))),), ()), {}


def watch_op(c, ctx: Context) -> tuple[str, tuple, dict]:
    key, end = (b"", c.choice([b"", b"\x00", ctx.prefix])) if c.chance(0.1) else _span(c, ctx)
    roll = c.int(0, 9)
    if roll < 3:
        start = 0
    elif roll < 5:
        start = ctx.revision + c.int(1, 3)
    elif roll < 8:
        start = c.int(max(1, ctx.compact_revision), ctx.revision)
    elif roll < 9 and ctx.compact_revision > 1:
        start = c.int(1, ctx.compact_revision - 1)
    else:  # negative, below the compaction revision (any other negative start races in etcd)
        start = c.int(-3, -2) if ctx.compact_revision < 0 else c.int(-2, -1)
    if start and start <= ctx.revision:
        ctx.compact_below = min(ctx.compact_below, start)
    filters = c.choice([(), ("NOPUT",), ("NODELETE",), WATCH_FILTERS])
    return (
        "watch",
        (),
        {"key": key, "range_end": end, "start_revision": start, "prev_kv": c.chance(0.5), "filters": filters},
    )


def compact_op(c, ctx: Context) -> tuple[str, tuple, dict]:
    if c.chance(0.3):
        revision = c.int(max(-1, ctx.compact_revision - 1), ctx.revision + 1)
    else:
        revision = max(0, ctx.revision - c.int(0, 5))
    if ctx.compact_revision < revision <= ctx.revision and revision >= ctx.compact_below:
        revision = ctx.compact_revision  # refused: it is compacted already
    return "compact", (revision,), {"physical": c.chance(0.2)}


def lease_op(c, ctx: Context) -> tuple[str, tuple, dict]:
    roll = c.int(0, 9)
    if roll < 4:
        if c.chance(0.1) and ctx.leases:
            lease_id = c.choice(ctx.leases)  # already exists
        else:
            lease_id = ctx.next_lease * (-1 if c.chance(0.1) else 1)
            ctx.next_lease += 1
        ttl = c.choice([LONG_TTL] * 8 + [MAX_LEASE_TTL, MAX_LEASE_TTL + 1])
        return "lease_grant", (), {"ttl": ttl, "id": lease_id}
    lease_id = c.choice(ctx.leases) if ctx.leases and c.chance(0.8) else c.choice([424_242, 0])
    if roll < 6:
        return "lease_revoke", (), {"id": lease_id}
    if roll < 8:
        return "lease_keepalive", (), {"id": lease_id}
    return "lease_time_to_live", (), {"id": lease_id, "keys": c.chance(0.5)}


def random_op(c, ctx: Context) -> tuple[str, tuple, dict]:
    """One op aimed at the keys under ``ctx.prefix``."""
    roll = c.int(0, 99)
    if roll < 25:
        return "put", (), dataclasses.asdict(put_op(c, ctx))
    if roll < 45:
        return "range", (), dataclasses.asdict(range_op(c, ctx))
    if roll < 53:
        return "delete_range", (), dataclasses.asdict(delete_op(c, ctx))
    if roll < 71:
        t = txn_op(c, ctx)
        return "txn", (t.compare, t.success, t.failure), {}
    if roll < 73:  # a key deleted and put again in one revision: a new generation, no prev_kv
        key = _key(c, ctx)
        return "txn", ((), (DeleteRangeRequest(key, b"\x00", c.chance(0.5)), PutRequest(key, _value(c))), ()), {}
    if roll < 75:
        t = limit_txn_op(c, ctx)
        return "txn", (t.compare, t.success, t.failure), {}
    if roll < 79:
        return compact_op(c, ctx)
    if roll < 89:
        return lease_op(c, ctx)
    if roll < 98 or not ctx.sizes:
        return watch_op(c, ctx)
    return sized_op(c, ctx)


@dataclasses.dataclass(frozen=True)
class Failed:
    """What an op that etcd refused returns: the error's class and message."""

    error: type
    message: str


def apply(target, op):
    """Run ``op`` on ``target``; returns the response (a watcher for a watch) or :class:`Failed`."""
    method, args, kwargs = op
    try:
        return getattr(target, method)(*args, **kwargs)
    except EtcdError as err:
        return Failed(type(err), str(err))


def watch_state(watcher) -> tuple:
    """Everything a watcher (kbench's or a real etcd's) has seen; takes its events."""
    return watcher.take(), watcher.canceled, watcher.compact_revision, watcher.cancel_reason


def track(ctx: Context, op, result, store) -> None:
    """Update the generator's context after ``op`` ran on ``store``."""
    method, _, kwargs = op
    if method == "lease_grant" and not isinstance(result, Failed):
        ctx.leases.append(result.id)
    if method == "lease_revoke" and not isinstance(result, Failed):
        ctx.leases.remove(kwargs["id"])
    ctx.observe(store)
