"""Differential test: kbench's Store and a real etcd 3.4 answer the same op sequences identically."""

from __future__ import annotations

import random
import time

import pytest

from kbench.etcd import PutRequest, Store
from kbench.etcd.types import LeaseTimeToLiveResponse
from tests.etcd.ops import Context, RandomChooser, apply, random_op, track

SEQUENCES = 200
OPS_PER_SEQUENCE = 25


@pytest.fixture(scope="module")
def pair(etcd):
    """The real etcd and a kbench mirror that has seen exactly the same requests (both start empty)."""
    mirror = Store()
    assert etcd.range(b"\x00", b"\x00").revision == mirror.revision == 1, "the etcd fixture must start empty"
    return etcd, mirror


def same(real, ours, elapsed: float = 0.0) -> bool:
    if isinstance(real, LeaseTimeToLiveResponse) and isinstance(ours, LeaseTimeToLiveResponse):
        # A real lease's remaining TTL runs down in wall time (kbench's clock stands still here),
        # and etcd lists a lease's keys in Go map order.
        return (real.revision, real.id, real.granted_ttl, sorted(real.keys)) == (
            ours.revision, ours.id, ours.granted_ttl, ours.keys) and ours.ttl - elapsed - 1 <= real.ttl <= ours.ttl
    return real == ours


def test_min_and_max_lease_ttl(pair):
    real, ours = pair
    for ttl in (-5, 0, 1):
        lease_id = 900_000 + ttl + 10
        assert apply(real, ("lease_grant", (), {"ttl": ttl, "id": lease_id})) == apply(
            ours, ("lease_grant", (), {"ttl": ttl, "id": lease_id}))
        assert apply(real, ("lease_revoke", (), {"id": lease_id})) == apply(
            ours, ("lease_revoke", (), {"id": lease_id}))


def test_request_size_limit(pair):
    real, ours = pair
    for size in (1_572_864 - 200, 1_572_864 + 200):
        op = ("put", (), {"key": b"big", "value": b"v" * size})
        assert apply(real, op) == apply(ours, op)
    op = ("delete_range", (), {"key": b"big"})
    assert apply(real, op) == apply(ours, op)


def test_random_sequences_match_a_real_etcd(pair):
    real, ours = pair
    rng = random.Random(20261126)
    chooser = RandomChooser(rng)
    mismatches = []
    ctx = Context(prefix=b"")
    began = time.monotonic()
    for seq in range(SEQUENCES):
        ctx.prefix = b"s%03d/" % seq
        ctx.observe(ours)
        for _ in range(OPS_PER_SEQUENCE):
            op = random_op(chooser, ctx)
            got_real, got_ours = apply(real, op), apply(ours, op)
            if not same(got_real, got_ours, time.monotonic() - began):
                mismatches.append((seq, op, got_real, got_ours))
            track(ctx, op, got_ours, ours)
        start = rng.randint(max(1, ours.compact_revision - 2), ours.revision)
        watch = dict(key=ctx.prefix, range_end=ctx.prefix[:-1] + b"0", start_revision=start,
                     prev_kv=rng.random() < 0.5, filters=rng.choice([(), ("NOPUT",), ("NODELETE",)]))
        w = ours.watch(**watch)
        expected = w.take()
        w.cancel()
        until = expected[-1].kv.mod_revision if expected else 0
        events, compact_revision = real.watch_events(**watch, until_revision=until, wait=2.0 if until else 0.3)
        if (events, compact_revision) != (expected, w.compact_revision):
            mismatches.append((seq, ("watch", watch), (events, compact_revision), (expected, w.compact_revision)))
    assert not mismatches, f"{len(mismatches)} mismatches:\n" + "\n".join(map(repr, mismatches[:10]))


def test_sorted_ranges_over_many_keys_with_ties(pair):
    """Beyond 12 results etcd sorts with Go's unstable sort.Sort; the tie order must still match."""
    real, ours = pair
    rng = random.Random(7)
    ops = []
    for _i in range(300):
        key = b"sort/%03d" % rng.randrange(120)
        ops.append(("put", (), {"key": key, "value": rng.choice([b"a", b"b", b"c"])}))
    ops.append(("txn", ((), tuple(PutRequest(b"sort/t%02d" % i, b"t") for i in range(20)), ()), {}))
    for op in ops:
        assert apply(real, op) == apply(ours, op)
    for target in ("VERSION", "CREATE", "MOD", "VALUE", "KEY"):
        for order in ("NONE", "ASCEND", "DESCEND"):
            for limit in (0, 5, 60):
                op = ("range", (), {"key": b"sort/", "range_end": b"sort0", "sort_target": target,
                                    "sort_order": order, "limit": limit})
                assert apply(real, op) == apply(ours, op), (target, order, limit)
