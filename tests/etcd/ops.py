"""Random etcd op sequences, shared by the property tests (hypothesis) and the differential test (real etcd).

An op is ``(method, args, kwargs)``, applied to anything with the Store API
(kbench's Store on either backend, or the Gateway to a real etcd). Ops are drawn
through a small chooser interface so the same generator runs on Python's
``random`` (differential test) and on hypothesis ``data.draw`` (property tests,
which then shrink failures).
"""

from __future__ import annotations

import dataclasses
import random

from hypothesis import strategies as st

from kbench.etcd import Compare, DeleteRangeRequest, EtcdError, PutRequest, RangeRequest, TxnRequest
from kbench.etcd.types import COMPARE_RESULTS, COMPARE_TARGETS, SORT_ORDERS, SORT_TARGETS

LETTERS = b"abcdefgh"
LONG_TTL = 3600


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

    def observe(self, store) -> None:
        self.revision = store.revision
        self.compact_revision = store.compact_revision


def _key(c, ctx: Context) -> bytes:
    return ctx.prefix + bytes([c.choice(LETTERS)])


def _value(c) -> bytes:
    return c.choice([b"", b"x", b"y", b"value", bytes([c.int(0, 255)]) * c.int(1, 3)])


def _revision(c, ctx: Context) -> int:
    if c.chance(0.6):
        return 0
    low = max(1, ctx.compact_revision - 1)
    return c.int(low, ctx.revision + 1)


def _span(c, ctx: Context) -> tuple[bytes, bytes]:
    kind = c.int(0, 3)
    if kind == 0:
        return _key(c, ctx), b""
    if kind == 1:  # the sequence's prefix
        return ctx.prefix, ctx.prefix[:-1] + bytes([ctx.prefix[-1] + 1])
    if kind == 2:  # from a key to the end of the keyspace
        return _key(c, ctx), b"\x00"
    a, b = sorted((_key(c, ctx), _key(c, ctx)))
    return a, b


def _lease(c, ctx: Context) -> int:
    if ctx.leases and c.chance(0.3):
        return c.choice(ctx.leases)
    return 0 if c.chance(0.95) else 999_999  # an unknown lease, now and then


def put_op(c, ctx: Context) -> PutRequest:
    ignore_value = c.chance(0.05)
    ignore_lease = c.chance(0.05)
    value = b"" if ignore_value and c.chance(0.8) else _value(c)
    lease = 0 if ignore_lease and c.chance(0.8) else _lease(c, ctx)
    return PutRequest(_key(c, ctx), value, lease, c.chance(0.3), ignore_value, ignore_lease)


def range_op(c, ctx: Context) -> RangeRequest:
    key, end = _span(c, ctx)
    sort = c.chance(0.3)
    filt = c.chance(0.2)
    return RangeRequest(
        key, end, limit=c.int(0, 4) if c.chance(0.4) else 0, revision=_revision(c, ctx),
        sort_order=c.choice(SORT_ORDERS) if sort else "NONE",
        sort_target=c.choice(SORT_TARGETS) if sort else "KEY",
        keys_only=c.chance(0.1), count_only=c.chance(0.1),
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


def txn_op(c, ctx: Context, depth: int = 0) -> TxnRequest:
    def branch():
        ops = []
        for _ in range(c.int(0, 3)):
            kind = c.int(0, 9)
            if kind < 4:
                ops.append(put_op(c, ctx))
            elif kind < 7:
                ops.append(range_op(c, ctx))
            elif kind < 9 or depth:
                ops.append(delete_op(c, ctx))
            else:
                ops.append(txn_op(c, ctx, depth + 1))
        return tuple(ops)

    return TxnRequest(tuple(compare(c, ctx) for _ in range(c.int(0, 2))), branch(), branch())


def random_op(c, ctx: Context) -> tuple[str, tuple, dict]:
    """One op aimed at the keys under ``ctx.prefix``."""
    roll = c.int(0, 99)
    if roll < 30:
        return "put", (), dataclasses.asdict(put_op(c, ctx))
    if roll < 55:
        return "range", (), dataclasses.asdict(range_op(c, ctx))
    if roll < 65:
        return "delete_range", (), dataclasses.asdict(delete_op(c, ctx))
    if roll < 85:
        t = txn_op(c, ctx)
        return "txn", (t.compare, t.success, t.failure), {}
    if roll < 88:
        low = max(0, ctx.compact_revision - 1)
        return "compact", (c.int(low, ctx.revision + 1) if c.chance(0.3) else max(0, ctx.revision - c.int(0, 5)),), {}
    if roll < 93:
        if c.chance(0.1) and ctx.leases:
            lease_id = c.choice(ctx.leases)  # already exists
        else:
            lease_id = ctx.next_lease
            ctx.next_lease += 1
        ttl = LONG_TTL if c.chance(0.95) else 9_000_000_001
        return "lease_grant", (), {"ttl": ttl, "id": lease_id}
    lease_id = c.choice(ctx.leases) if ctx.leases and c.chance(0.8) else 424_242
    if roll < 96:
        return "lease_revoke", (), {"id": lease_id}
    if roll < 98:
        return "lease_keepalive", (), {"id": lease_id}
    return "lease_time_to_live", (), {"id": lease_id, "keys": c.chance(0.5)}


def apply(target, op):
    """Run ``op`` on ``target``; returns the response or the etcd error's class."""
    method, args, kwargs = op
    try:
        return getattr(target, method)(*args, **kwargs)
    except EtcdError as err:
        return type(err)


def track(ctx: Context, op, result, store) -> None:
    """Update the generator's context after ``op`` ran on ``store``."""
    method, _, kwargs = op
    if method == "lease_grant" and not isinstance(result, type):
        ctx.leases.append(result.id)
    if method == "lease_revoke" and not isinstance(result, type):
        ctx.leases.remove(kwargs["id"])
    ctx.observe(store)
