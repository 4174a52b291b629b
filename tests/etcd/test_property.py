"""Property tests: the compiled MVCC backend answers exactly as the plain-Python reference."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kbench.apiserver.registry import compare_and_write, compare_and_write_many
from kbench.etcd import EmptyKeyError, PutRequest, RequestTooLargeError, Store, TxnRequest
from tests.etcd.ops import LETTERS, Context, HypothesisChooser, apply, random_op, track, watch_state

SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def dump(store: Store) -> list:
    """Everything a client can read: every key at every readable revision, and the full watch replay."""
    views = [
        store.range(b"\x00", b"\x00", revision=rev) for rev in range(max(1, store.compact_revision), store.revision + 1)
    ]
    w = store.watch(b"\x00", b"\x00", start_revision=max(1, store.compact_revision), prev_kv=True)
    events = w.take()
    w.cancel()
    return [store.revision, store.compact_revision, views, events, len(store), store.leases()]


@SETTINGS
@given(st.data())
def test_compiled_backend_matches_reference(data):
    fast, ref = Store(backend="numba"), Store(backend="python")
    ctx, chooser = Context(prefix=b"p/"), HypothesisChooser(data)
    watches = []
    for _ in range(data.draw(st.integers(1, 60))):
        op = random_op(chooser, ctx)
        got_fast, got_ref = apply(fast, op), apply(ref, op)
        if op[0] == "watch":
            watches.append((got_fast, got_ref))
        else:
            assert got_fast == got_ref, op
        track(ctx, op, got_fast, fast)
    assert [watch_state(w) for w, _ in watches] == [watch_state(w) for _, w in watches]
    assert dump(fast) == dump(ref)


@SETTINGS
@given(st.data())
def test_batches_match_single_calls(data):
    """put_many / range_many give the same history as one put per key."""
    keys = [b"k/%d" % i for i in range(data.draw(st.integers(1, 30)))]
    picks = np.array(data.draw(st.lists(st.integers(0, len(keys) - 1), min_size=1, max_size=80)))
    values = [bytes([65 + i % 26]) * (i % 5) for i in range(len(picks))]
    for backend in ("numba", "python"):
        batched, single = Store(backend=backend), Store(backend=backend)
        ks = batched.keyset(keys)
        revs = batched.put_many(ks[picks], values)
        for p, v in zip(picks.tolist(), values):
            single.put(keys[p], v)
        assert revs.tolist() == list(range(2, 2 + len(picks)))
        assert dump(batched) == dump(single)
        for rev in (0, max(1, int(revs[len(revs) // 2]))):
            reads = batched.range_many(ks, revision=rev)
            for j, key in enumerate(keys):
                kvs = single.range(key, revision=rev).kvs
                expected = (
                    (0, 0, 0, 0, -1)
                    if not kvs
                    else (kvs[0].create_revision, kvs[0].mod_revision, kvs[0].version, kvs[0].lease, len(kvs[0].value))
                )
                assert tuple(reads[:, j].tolist()) == expected


def _with_sizes(store: Store) -> list:
    """:func:`dump`, and the store's sizes and each lease's keys."""
    leases = [store.lease_time_to_live(lease, keys=True).keys for lease in store.leases()]
    return [*dump(store), store.db_size, store.db_size_in_use, leases]


@SETTINGS
@given(st.data())
def test_compare_and_write_many_matches_one_compare_and_write_each(data):
    """The apiserver's compare-and-writes of a coalesced tick in one call of the store (kbench.apiserver.renewals):
    the same answers, and the same store, as one compare_and_write each, on both backends, after any history
    (deletes, keys attached to leases, compactions), with every precondition met or failed."""
    ctx, chooser = Context(prefix=b"p/"), HypothesisChooser(data)
    stores = {(backend, batched): Store(backend=backend) for backend in ("numba", "python") for batched in (0, 1)}
    probe = stores["numba", 0]
    for _ in range(data.draw(st.integers(0, 40))):
        op = random_op(chooser, ctx)
        if op[0] == "watch":  # a watcher of the store sends a batch back to one write at a time (tested below)
            continue
        results = [apply(store, op) for store in stores.values()]
        track(ctx, op, results[0], probe)
    writes = []
    for _ in range(data.draw(st.integers(1, 12))):
        key = b"p/" + bytes([data.draw(st.sampled_from([*LETTERS, ord("z")]))])
        kvs = probe.range(key).kvs
        mod = kvs[0].mod_revision if kvs else 0
        want = data.draw(st.sampled_from(["current", "absent", "exists", "other"]))
        if want == "current":
            expect = ("rev", mod) if mod else ("absent",)
        elif want == "other":
            expect = ("rev", data.draw(st.integers(1, probe.revision + 2)))
        else:
            expect = (want,)
        value = data.draw(st.binary(max_size=8))
        writes.append((key, "ADDED" if expect[0] == "absent" else "MODIFIED", value, expect))
    for backend in ("numba", "python"):
        single, batched = stores[backend, 0], stores[backend, 1]
        answers = [compare_and_write(single, *write) for write in writes]
        assert compare_and_write_many(batched, writes) == answers, backend
        assert _with_sizes(batched) == _with_sizes(single), backend


@pytest.mark.parametrize(
    ("case", "store", "writes"),
    [
        ("a delete", {}, [(b"k", "DELETED", b"", ("rev", 2))]),
        ("a write with a lease", {}, [(b"k", "MODIFIED", b"v", ("exists", 0, None))]),
        ("a resourceVersion of 0", {}, [(b"k", "MODIFIED", b"v", ("rev", 0))]),
        ("a watcher of the store", {"watch": True}, [(b"k", "MODIFIED", b"v", ("exists",))]),
        ("an alarm", {"alarm": "NOSPACE"}, [(b"k", "MODIFIED", b"v", ("exists",))]),
        ("a value past raft's limit", {}, [(b"k", "MODIFIED", b"v" * 1_600_000, ("exists",))]),
        ("the quota", {"quota_bytes": 2_000}, [(b"k", "MODIFIED", b"v" * 1_000, ("exists",))]),
        ("a key not bytes", {}, [("k", "MODIFIED", b"v", ("exists",))]),
        ("a value not bytes", {}, [(b"k", "MODIFIED", "v", ("exists",))]),
        ("a value without a length", {}, [(b"k", "MODIFIED", 7, ("exists",))]),
        ("an empty key", {}, [(b"k", "MODIFIED", b"v", ("exists",)), (b"", "ADDED", b"v", ("absent",))]),
        ("no write", {}, []),
    ],
)
def test_compare_and_write_many_leaves_to_single_writes_what_may_meet_more_than_its_compare(case, store, writes):
    """Whatever could meet more than a compare (an error, a lease, a watcher's delivery) is left, with nothing
    written, to one compare_and_write each."""
    etcd = Store(quota_bytes=store.get("quota_bytes", 8 * 2**30))
    etcd.put(b"k", b"v")
    if store.get("watch"):
        etcd.watch(b"k")
    etcd.alarm = store.get("alarm")
    before = _with_sizes(etcd)
    assert compare_and_write_many(etcd, writes) is None, case
    etcd.alarm = None
    assert _with_sizes(etcd) == before, case


def test_compare_and_put_many_refuses_lists_of_different_lengths_and_writes_nothing():
    store = Store()
    store.put(b"k", b"v")
    before = _with_sizes(store)
    for keys, values, wants, counts in [
        ([b"k"], [b"v", b"w"], [-1], "1 keys, 2 values and 1 wants"),
        ([b"k", b"j"], [b"v", b"w"], [-1], "2 keys, 2 values and 1 wants"),
    ]:
        with pytest.raises(ValueError, match=f"^compare_and_put_many: {counts}; one each$"):
            store.compare_and_put_many(keys, values, wants)
    assert _with_sizes(store) == before


BAD_OPS = [
    ("put", (), {"key": b"", "value": b"x"}, EmptyKeyError),
    ("put", (), {"key": "text", "value": b"x"}, TypeError),
    ("put", (), {"key": b"k", "value": "text"}, TypeError),
    ("put", (), {"key": b"k", "value": b"x" * 1_600_000}, RequestTooLargeError),
    ("range", (), {"key": b"k", "sort_order": "UP"}, ValueError),
    ("range", (), {"key": b"k", "limit": "5"}, TypeError),
    ("txn", ((), (PutRequest(b"a", b"1"), PutRequest(b"a", b"2")), ()), {}, Exception),
    ("txn", ((), (PutRequest(b"a", b"1"), "not an op"), ()), {}, TypeError),
    ("txn", ((), (PutRequest(b"a", b"1"), TxnRequest(success=(PutRequest(b""),))), ()), {}, EmptyKeyError),
    ("compact", ("3",), {}, TypeError),
    ("watch", (), {"key": b"k", "filters": ("NOTHING",)}, ValueError),
    ("lease_grant", (), {"ttl": 1.5}, TypeError),
]


@SETTINGS
@given(st.data())
def test_bad_input_never_corrupts_the_store(data):
    store = Store()
    ctx, chooser = Context(prefix=b"p/"), HypothesisChooser(data)
    for _ in range(data.draw(st.integers(0, 30))):
        op = random_op(chooser, ctx)
        track(ctx, op, apply(store, op), store)
    before = dump(store)
    method, args, kwargs, error = data.draw(st.sampled_from(BAD_OPS))
    try:
        getattr(store, method)(*args, **kwargs)
    except error:
        pass
    else:
        raise AssertionError(f"{method} accepted bad input {args} {kwargs}")
    assert dump(store) == before


def test_error_messages_name_the_field_and_choices():
    store = Store()
    for call, message in [
        (lambda: store.put("k", b"v"), "put: field 'key' must be bytes, got str"),
        (
            lambda: store.range(b"k", sort_target="SIZE"),
            "range: field 'sort_target' must be one of KEY, VERSION, CREATE, MOD, VALUE; got 'SIZE'",
        ),
        (
            lambda: store.txn(success=[dataclasses.replace(PutRequest(b"a"), key=1)]),
            "txn.success[0]: field 'key' must be bytes, got int",
        ),
    ]:
        try:
            call()
        except (TypeError, ValueError) as err:
            assert str(err) == message
        else:
            raise AssertionError(message)
