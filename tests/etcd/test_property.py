"""Property tests: the compiled MVCC backend answers exactly as the plain-Python reference."""

from __future__ import annotations

import dataclasses

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kbench.etcd import EmptyKeyError, PutRequest, RequestTooLargeError, Store, TxnRequest
from tests.etcd.ops import Context, HypothesisChooser, apply, random_op, track, watch_state

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
