"""Watch: events in revision order, replay from the past, compaction cancels, options."""

from __future__ import annotations

import pytest

from kbench.etcd import DeleteRangeRequest, PutRequest, Store


@pytest.fixture(params=["numba", "python"])
def store(request) -> Store:
    return Store(backend=request.param)


def test_replay_from_a_past_revision_then_live_events(store):
    store.put(b"a", b"1")  # 2
    store.put(b"b", b"1")  # 3
    w = store.watch(b"a", b"\x00", start_revision=2)
    assert [(e.type, e.kv.key, e.kv.mod_revision) for e in w.take()] == [("PUT", b"a", 2), ("PUT", b"b", 3)]
    store.txn([], [PutRequest(b"c"), DeleteRangeRequest(b"a")])
    events = w.take()
    assert [(e.type, e.kv.key) for e in events] == [("PUT", b"c"), ("DELETE", b"a")]
    assert events[1].kv.mod_revision == 4 and events[1].kv.version == 0


def test_start_zero_means_future_only_and_range_is_respected(store):
    store.put(b"x", b"1")
    w = store.watch(b"x")
    store.put(b"y", b"1")
    store.put(b"x", b"2")
    assert [e.kv.value for e in w.take()] == [b"2"]


def test_prev_kv_and_filters(store):
    store.put(b"k", b"1")
    w = store.watch(b"k", prev_kv=True, filters=("NOPUT",))
    store.put(b"k", b"2")
    store.delete_range(b"k")
    (event,) = w.take()
    assert event.type == "DELETE" and event.prev_kv.value == b"2"


def test_compacted_start_cancels_the_watch(store):
    for i in range(4):
        store.put(b"k", b"%d" % i)
    store.compact(4)
    w = store.watch(b"k", start_revision=3)
    assert w.canceled and w.compact_revision == 4 and w.take() == []
    ok = store.watch(b"k", start_revision=4)
    assert not ok.canceled and [e.kv.mod_revision for e in ok.take()] == [4, 5]


def test_cancel_and_callback_delivery(store):
    got = []
    w = store.watch(b"k")
    w.on_events = got.extend
    store.put(b"k", b"1")
    w.cancel()
    store.put(b"k", b"2")
    assert [e.kv.value for e in got] == [b"1"] and w.take() == []


def test_a_watch_from_a_future_revision_skips_what_comes_before(store):
    store.put(b"a", b"1")  # 2
    w = store.watch(b"a", start_revision=5)
    for _ in range(3):
        store.put(b"a", b"x")  # 3, 4, 5
    assert [e.kv.mod_revision for e in w.take()] == [5]


def test_an_empty_key_watches_the_zero_byte_key(store):
    """etcd's watch server makes an empty key b"\\x00", the smallest key."""
    store.put(b"\x00", b"z")  # 2
    w = store.watch(b"", start_revision=2)
    everything = store.watch(b"", b"\x00", start_revision=2)
    store.put(b"a", b"1")
    assert [e.kv.key for e in w.take()] == [b"\x00"]
    assert [e.kv.key for e in everything.take()] == [b"\x00", b"a"]


def test_no_prev_kv_on_an_event_that_creates_its_key(store):
    store.put(b"a", b"1")  # 2
    store.txn([], [DeleteRangeRequest(b"a", b"\x00"), PutRequest(b"a", b"2")])  # 3: a new generation
    delete, create = store.watch(b"a", start_revision=3, prev_kv=True).take()
    assert (delete.type, delete.prev_kv.mod_revision) == ("DELETE", 2)
    assert (create.type, create.prev_kv) == ("PUT", None)
    live = store.watch(b"a", prev_kv=True)
    store.delete_range(b"a")
    store.put(b"a", b"3")
    store.put(b"a", b"4")
    assert [e.prev_kv and e.prev_kv.value for e in live.take()] == [b"2", None, b"3"]


def test_empty_ranges_and_negative_starts_cancel_as_in_etcd(store):
    w = store.watch(b"b", b"a")
    assert (w.canceled, w.cancel_reason, w.compact_revision) == (True, "mvcc: watcher range is empty", 0)
    w = store.watch(b"a", start_revision=-2)  # below the compaction revision, -1
    assert (w.canceled, w.cancel_reason, w.compact_revision) == (True, "", -1)
    store.put(b"a", b"1")
    store.compact(2)
    assert store.watch(b"a", start_revision=-1).compact_revision == 2
    from_key = store.watch(b"a", b"\x00")
    store.put(b"b", b"1")
    assert not from_key.canceled and [e.kv.key for e in from_key.take()] == [b"b"]
