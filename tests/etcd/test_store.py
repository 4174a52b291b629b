"""Unit tests for kbench.etcd.Store: one test per rule of etcd v3's KV semantics (both backends)."""

from __future__ import annotations

import pytest

from kbench.etcd import (
    CompactedError,
    Compare,
    DeleteRangeRequest,
    DuplicateKeyError,
    EmptyKeyError,
    FutureRevisionError,
    KeyNotFoundError,
    KeyValue,
    LeaseNotFoundError,
    MessageTooLargeError,
    NoSpaceError,
    PutRequest,
    RangeRequest,
    RequestTooLargeError,
    Store,
    TooManyOpsError,
    TxnRequest,
    ValueProvidedError,
)
from kbench.etcd.store import STORED_BYTES_PER_REVISION


@pytest.fixture(params=["numba", "python"])
def store(request) -> Store:
    return Store(backend=request.param)


def test_empty_store_is_at_revision_1(store):
    assert store.revision == 1
    assert store.range(b"a").revision == 1


def test_each_write_adds_one_and_reads_and_no_ops_add_nothing(store):
    assert store.put(b"a", b"1").revision == 2
    assert store.range(b"a").revision == 2
    assert store.delete_range(b"missing").revision == 2
    assert store.txn([], [RangeRequest(b"a")], []).revision == 2
    # A write txn whose taken branch writes nothing leaves the revision alone.
    assert store.txn([Compare(b"a", "VALUE", "EQUAL", value=b"nope")], [PutRequest(b"b")], []).revision == 2
    assert store.txn([], [PutRequest(b"b"), PutRequest(b"c"), DeleteRangeRequest(b"a")]).revision == 3
    assert store.revision == 3


def test_ops_in_one_txn_share_the_main_revision_in_order(store):
    w = store.watch(b"\x00", b"\x00")
    store.txn([], [PutRequest(b"z", b"1"), PutRequest(b"y", b"2"), DeleteRangeRequest(b"none")])
    events = w.take()
    assert [(e.kv.key, e.kv.mod_revision) for e in events] == [(b"z", 2), (b"y", 2)]


def test_key_fields_and_generations(store):
    store.put(b"k", b"1")
    store.put(b"k", b"2")
    assert store.range(b"k").kvs == [KeyValue(b"k", 2, 3, 2, b"2", 0)]
    store.delete_range(b"k")
    assert store.range(b"k").kvs == [] and store.range(b"k").count == 0
    store.put(b"k", b"3")
    assert store.range(b"k").kvs == [KeyValue(b"k", 5, 5, 1, b"3", 0)]


def test_range_end_conventions_count_more_and_limit(store):
    for key in (b"a", b"b", b"b/1", b"b/2", b"c"):
        store.put(key, key)
    assert [kv.key for kv in store.range(b"b").kvs] == [b"b"]
    assert [kv.key for kv in store.range(b"b", b"\x00").kvs] == [b"b", b"b/1", b"b/2", b"c"]
    assert [kv.key for kv in store.range(b"b/", b"b0").kvs] == [b"b/1", b"b/2"]  # prefix scan
    limited = store.range(b"a", b"\x00", limit=2)
    assert ([kv.key for kv in limited.kvs], limited.count, limited.more) == ([b"a", b"b"], 5, True)
    exact = store.range(b"a", b"\x00", limit=5)
    assert (len(exact.kvs), exact.more) == (5, False)
    assert store.range(b"c", b"a").kvs == []  # range_end before key: empty
    counted = store.range(b"a", b"\x00", count_only=True)
    assert (counted.kvs, counted.count) == ([], 5)
    assert all(kv.value == b"" for kv in store.range(b"a", b"\x00", keys_only=True).kvs)


def test_sorting_happens_before_the_limit(store):
    for key, n in ((b"a", 3), (b"b", 1), (b"c", 2)):
        for _ in range(n):
            store.put(key, b"v")
    top = store.range(b"a", b"\x00", sort_target="VERSION", sort_order="DESCEND", limit=2)
    assert [kv.key for kv in top.kvs] == [b"a", b"c"] and top.more and top.count == 3
    # A target other than KEY sorts ascending even without an order.
    assert [kv.key for kv in store.range(b"a", b"\x00", sort_target="VERSION").kvs] == [b"b", b"c", b"a"]


def test_min_max_filters_prune_but_count_does_not(store):
    for key in (b"a", b"b", b"c"):
        store.put(key, b"v")
    resp = store.range(b"a", b"\x00", min_mod_revision=3)
    assert [kv.key for kv in resp.kvs] == [b"b", b"c"] and resp.count == 3


def test_past_revisions_future_and_compacted(store):
    store.put(b"k", b"1")  # 2
    store.put(b"k", b"2")  # 3
    store.delete_range(b"k")  # 4
    assert store.range(b"k", revision=2).kvs[0].value == b"1"
    assert store.range(b"k", revision=3).kvs[0].value == b"2"
    assert store.range(b"k", revision=4).kvs == []
    assert store.range(b"k", revision=3).revision == 4  # header: the current revision
    with pytest.raises(FutureRevisionError):
        store.range(b"k", revision=5)
    store.compact(3)
    with pytest.raises(CompactedError):
        store.range(b"k", revision=2)
    assert store.range(b"k", revision=3).kvs[0].value == b"2"  # exactly at the compaction revision


def test_compaction_rules(store):
    store.put(b"a", b"1")  # 2
    store.put(b"a", b"2")  # 3
    store.put(b"b", b"1")  # 4
    store.delete_range(b"b")  # 5
    store.put(b"c", b"1")  # 6
    with pytest.raises(FutureRevisionError):
        store.compact(7)
    assert store.compact(5).revision == 6
    # a: keeps rev 3 (newest <= 5); b: its newest <= 5 is a tombstone, so nothing; c: rev 6.
    assert len(store) == 2
    with pytest.raises(CompactedError):
        store.compact(5)
    with pytest.raises(CompactedError):
        store.compact(4)
    assert store.range(b"a", revision=5).kvs[0].mod_revision == 3


def test_txn_compares(store):
    store.put(
        b"k",
        b"v",
    )
    for target, field, value, result, expect in [
        ("VERSION", "version", 1, "EQUAL", True),
        ("VERSION", "version", 1, "GREATER", False),
        ("CREATE", "create_revision", 2, "EQUAL", True),
        ("MOD", "mod_revision", 3, "LESS", True),
        ("VALUE", "value", b"a", "GREATER", True),
        ("VALUE", "value", b"v", "NOT_EQUAL", False),
        ("LEASE", "lease", 0, "EQUAL", True),
    ]:
        c = Compare(b"k", target, result, **{field: value})
        assert store.txn([c], [], []).succeeded is expect, (target, result)
    # A missing key has version/create/mod 0 and fails every VALUE compare.
    assert store.txn([Compare(b"nope", "VERSION", "EQUAL", version=0)]).succeeded
    assert store.txn([Compare(b"nope", "CREATE", "EQUAL", create_revision=0)]).succeeded
    assert not store.txn([Compare(b"nope", "VALUE", "NOT_EQUAL", value=b"x")]).succeeded
    assert not store.txn([Compare(b"nope", "VALUE", "EQUAL", value=b"")]).succeeded


def test_txn_range_sees_earlier_writes_and_branch_choice(store):
    resp = store.txn(
        [Compare(b"k", "VERSION", "EQUAL", version=0)],
        [RangeRequest(b"k"), PutRequest(b"k", b"new"), RangeRequest(b"k")],
        [PutRequest(b"other")],
    )
    assert resp.succeeded and resp.revision == 2
    first, put, second = resp.responses
    assert (first.kvs, first.revision) == ([], 1)
    assert put.revision == 2 and second.kvs[0].value == b"new" and second.revision == 2


def test_txn_rejects_writing_a_key_twice(store):
    with pytest.raises(DuplicateKeyError):
        store.txn([], [PutRequest(b"a"), PutRequest(b"a")])
    with pytest.raises(DuplicateKeyError):
        store.txn([], [DeleteRangeRequest(b"a", b"c"), PutRequest(b"b")])
    with pytest.raises(DuplicateKeyError):
        store.txn([], [PutRequest(b"a"), TxnRequest(success=(PutRequest(b"a"),))])
    # Then and else of one nested txn may put the same key; overlapping deletes are fine.
    store.txn([], [TxnRequest(success=(PutRequest(b"a"),), failure=(PutRequest(b"a"),))])
    store.txn([], [DeleteRangeRequest(b"a", b"c"), DeleteRangeRequest(b"b")])
    with pytest.raises(TooManyOpsError):
        store.txn([], [RangeRequest(b"k")] * 129)
    assert store.revision == 3


def test_nested_compares_see_the_state_before_the_txn(store):
    resp = store.txn(
        [],
        [
            PutRequest(b"k", b"1"),
            TxnRequest(
                compare=(Compare(b"k", "VERSION", "EQUAL", version=0),), success=(PutRequest(b"seen", b"before"),)
            ),
        ],
    )
    assert resp.responses[1].succeeded and resp.responses[1].revision == 0
    assert store.range(b"seen").kvs[0].value == b"before"


def test_put_options(store):
    with pytest.raises(KeyNotFoundError):
        store.put(b"k", ignore_value=True)
    store.put(b"k", b"keep")
    assert store.put(b"k", ignore_value=True, prev_kv=True).prev_kv.value == b"keep"
    assert store.range(b"k").kvs[0].value == b"keep"
    with pytest.raises(ValueProvidedError):
        store.put(b"k", b"x", ignore_value=True)
    with pytest.raises(LeaseNotFoundError):
        store.put(b"k", b"x", lease=12345)


def test_limits(store):
    with pytest.raises(EmptyKeyError):
        store.put(b"", b"x")
    with pytest.raises(EmptyKeyError):
        store.range(b"")
    with pytest.raises(RequestTooLargeError):
        store.put(b"k", b"x" * (1024 * 1024 * 3 // 2))
    store.put(b"k", b"x" * (1024 * 1024 * 3 // 2 - 100))
    assert store.revision == 2


def test_quota_raises_the_nospace_alarm_until_disarmed():
    store = Store(quota_bytes=10_000)
    store.put(b"a", b"x" * 4000)
    with pytest.raises(NoSpaceError):
        store.put(b"b", b"x" * 6000)
    assert store.alarm == "NOSPACE"
    with pytest.raises(NoSpaceError):  # while the alarm is on, even a small put is refused
        store.put(b"c", b"x")
    store.delete_range(b"a")  # deletes are still allowed
    store.compact(store.revision)
    store.defragment()
    store.alarm_disarm()
    store.put(b"c", b"x")
    assert store.range(b"c").count == 1


def test_compaction_frees_the_bytes_of_the_revisions_it_drops(store):
    """bbolt frees a compacted revision's pages (key, value and framing) for reuse: the in-use size is what is still
    stored, and the file (db_size) does not grow while rewrites fit in the freed pages; 2 GiB of writes to a few keys
    never reach the quota."""
    store.put(b"k", b"x" * 100)
    store.put(b"gone", b"y" * 50)
    store.delete_range(b"gone")
    for size in (300, 200):
        store.put(b"k", b"x" * size)
    store.compact(store.revision)
    assert store.db_size_in_use == len(b"k") + 200 + STORED_BYTES_PER_REVISION  # only k's newest revision is left
    peak = store.db_size
    for _ in range(50):
        store.put(b"k", b"x" * 200)
        store.compact(store.revision)
    assert store.db_size == peak


def test_constructor_and_backend_errors():
    with pytest.raises(ValueError, match="backend must be one of numba, python"):
        Store(backend="c++")
    with pytest.raises(ValueError, match="quota_bytes must be a positive integer"):
        Store(quota_bytes=0)


def test_put_keeping_a_value_after_a_from_key_delete_in_the_same_txn_is_refused(store):
    """etcd 3.4 lets this through its interval check and then panics applying it; kbench refuses it."""
    store.put(b"b", b"1")
    with pytest.raises(KeyNotFoundError):
        store.txn([], [DeleteRangeRequest(b"a", b"\x00"), PutRequest(b"b", ignore_value=True)])
    assert store.range(b"b").kvs[0].value == b"1" and store.revision == 2


def test_a_range_in_a_txn_takes_a_negative_revision_as_it_is(store):
    """etcd's checkRequestRange compares a txn's range revision with the compaction revision (-1 before
    any compaction) as it is; a plain range reads a revision of 0 or less as the current one."""
    store.put(b"a", b"1")  # 2
    with pytest.raises(CompactedError):
        store.txn([], [RangeRequest(b"a", revision=-3)])
    assert store.txn([], [RangeRequest(b"a", revision=-1)]).responses[0].kvs[0].mod_revision == 2
    assert store.range(b"a", revision=-3).kvs[0].mod_revision == 2
    store.put(b"a", b"2")  # 3
    store.compact(2)
    with pytest.raises(CompactedError):
        store.txn([], [RangeRequest(b"a", revision=-1)])
    with pytest.raises(CompactedError):
        store.txn([], [TxnRequest(success=(RangeRequest(b"a", revision=-1),))])
    # Only the branch taken is checked.
    assert not store.txn([Compare(b"a", "VERSION", "EQUAL", version=9)], [RangeRequest(b"a", revision=-1)]).succeeded
    assert store.range(b"a", revision=-1).kvs[0].mod_revision == 3


def test_a_nested_txn_gets_the_ops_its_parent_leaves(store):
    """checkTxnRequest: a nested txn may have --max-txn-ops less its parent's longest list."""
    ranges = (RangeRequest(b"a"),) * 100
    for nested in (30, 28):
        with pytest.raises(TooManyOpsError):
            store.txn([], ranges + (TxnRequest(success=(RangeRequest(b"a"),) * nested),))
    assert len(store.txn([], ranges + (TxnRequest(success=(RangeRequest(b"a"),) * 27),)).responses) == 101
    with pytest.raises(TooManyOpsError):  # compares count as well
        store.txn([Compare(b"a", "VERSION", "EQUAL")] * 100, [TxnRequest(success=(RangeRequest(b"a"),) * 29)])


def test_empty_keys_anywhere_come_before_duplicate_keys(store):
    """kvServer.Txn runs checkTxnRequest over the whole txn before checkIntervals."""
    with pytest.raises(EmptyKeyError):
        store.txn([], [TxnRequest(success=(PutRequest(b"a"), PutRequest(b"a"))), PutRequest(b"")])
    with pytest.raises(EmptyKeyError):
        store.txn([Compare(b"", "VERSION", "EQUAL")], [PutRequest(b"a"), PutRequest(b"a")])
    with pytest.raises(EmptyKeyError):
        store.txn([], [PutRequest(b"a"), PutRequest(b"a")], [RangeRequest(b"")])


def test_raft_and_grpc_size_limits(store):
    """Raft's limit counts the proposal's header (13 bytes on etcd's default member, 14 when the
    member ID's 16th bit is set); gRPC refuses any message over the limit + 512 KiB first."""
    store.put(b"big", b"v" * 1_572_838)  # exactly 1,572,864 bytes proposed
    with pytest.raises(RequestTooLargeError):
        store.put(b"big", b"v" * 1_572_839)
    other = Store(backend=store.backend, member_id=0x1234_5678_9ABC_9446)
    other.put(b"big", b"v" * 1_572_837)
    with pytest.raises(RequestTooLargeError):
        other.put(b"big", b"v" * 1_572_838)
    with pytest.raises(MessageTooLargeError) as err:
        store.put(b"", b"v" * 2_100_000)  # before the empty key is noticed
    assert str(err.value) == "grpc: received message larger than max (2100005 vs. 2097152)"
    # Reads are no raft proposals: only gRPC's limit applies.
    store.range(b"k" * 2_097_148)
    with pytest.raises(MessageTooLargeError):
        store.range(b"k" * 2_097_149)
    big = Compare(b"a", "VALUE", "EQUAL", value=b"v" * 1_600_000)
    assert not store.txn([big], [RangeRequest(b"a")]).succeeded
    with pytest.raises(RequestTooLargeError):  # a nested txn makes it a write
        store.txn([big], [TxnRequest()])
    assert store.revision == 2


def test_put_many_holds_each_put_to_the_size_limits(store):
    """Each put of a batch is its own request: the largest one decides, and a refused batch writes nothing."""
    keys = store.keyset([b"big", b"k"])
    assert store.put_many(keys, b"v" * 1_572_838).tolist() == [2, 3]  # b"big": exactly the raft limit
    for values in (b"v" * 1_572_839, [b"v", b"v" * 1_572_841], [b"v" * 1_572_839, b"v"]):
        with pytest.raises(RequestTooLargeError):
            store.put_many(keys, values)
    assert store.put_many(keys, [b"v", b"v" * 1_572_840]).tolist() == [4, 5]  # b"k": one byte shorter
    with pytest.raises(MessageTooLargeError) as err:
        store.put_many(keys, [b"v", b"v" * 2_100_000])
    assert str(err.value) == "grpc: received message larger than max (2100008 vs. 2097152)"
    assert store.revision == 5 and store.range(b"k").kvs[0].value == b"v" * 1_572_840


def test_constructor_checks_the_member_id():
    with pytest.raises(ValueError, match="member_id must be an integer from 1 to 2\\*\\*64 - 1"):
        Store(member_id=0)


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda s: s.put(b"k", b"v", lease=2**63), "lease"),
        (lambda s: s.lease_grant(10, id=2**63), "id"),
        (lambda s: s.range(b"k", revision=-(2**63) - 1), "revision"),
        (lambda s: s.compact(2**64), "revision"),
    ],
)
def test_integer_fields_beyond_int64_are_refused_by_name_and_nothing_changes(call, field):
    store = Store()
    store.put(b"k", b"v")
    with pytest.raises(ValueError, match=f"field '{field}' must be a 64-bit signed integer"):
        call(store)
    assert store.revision == 2 and store.range(b"k").kvs[0].value == b"v"


def test_mod_revision_is_what_a_range_reads(store):
    assert store.mod_revision(b"a") == 0
    store.put(b"a", b"1")
    store.put(b"b", b"2")
    store.put(b"a", b"3")
    assert store.mod_revision(b"a") == store.range(b"a").kvs[0].mod_revision == 4
    assert store.mod_revision(b"b") == 3
    store.delete_range(b"a")
    assert store.mod_revision(b"a") == 0


def test_one_key_ranges_find_their_key_without_merging_the_ordered_view():
    """A one-key range (a delete: an expiring Event lease deletes its keys one at a time; a read; a txn's compare) looks
    its key up instead of walking the ordered view, whose first step merges every key made since the last walk: the
    answers are the walk's, limits and counts included, and the new keys wait for the next walk."""
    store = Store(backend="numba")
    store.put(b"a", b"1")
    store.range(b"a", b"\x00")  # merges a
    store.put(b"b", b"2")
    store.put(b"b\x00", b"3")  # in no one-key range of b
    lease = store.lease_grant(60).id
    store.put(b"c", b"4", lease=lease)
    read = store.range(b"b\x00")
    assert ([(kv.key, kv.value) for kv in read.kvs], read.count) == ([(b"b\x00", b"3")], 1)
    assert (store.range(b"b\x00", limit=1).count, store.range(b"b\x00", count_only=True).kvs) == (1, [])
    assert store.txn([Compare(b"c", "VALUE", "EQUAL", value=b"4")], [], []).succeeded
    gone = store.delete_range(b"b", prev_kv=True)
    assert (gone.revision, gone.deleted, [(kv.key, kv.value) for kv in gone.prev_kvs]) == (6, 1, [(b"b", b"2")])
    assert store.delete_range(b"missing").deleted == 0
    store.lease_revoke(lease)
    assert store._mvcc._pending  # b, b\0 and c: merged by no walk yet
    assert [kv.key for kv in store.range(b"a", b"\x00").kvs] == [b"a", b"b\x00"]
    assert not store._mvcc._pending
