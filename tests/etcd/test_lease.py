"""Leases on the engine's virtual clock: TTL floor and ceiling, keepalive, expiry, revoke."""

from __future__ import annotations

import pytest

from kbench.etcd import LeaseExistError, LeaseNotFoundError, LeaseTTLTooLargeError, Store
from kbench.sim import Engine


def test_grant_ttl_floor_ceiling_and_duplicates():
    store = Store()
    assert store.lease_grant(1, id=5).ttl == 2  # etcd's minimum TTL with default election settings
    assert store.lease_grant(60).id != 5
    with pytest.raises(LeaseExistError):
        store.lease_grant(10, id=5)
    with pytest.raises(LeaseTTLTooLargeError):
        store.lease_grant(9_000_000_001)


def test_expiry_on_virtual_time_deletes_all_keys_in_one_revision():
    engine = Engine()
    store = Store(engine=engine)
    lease = store.lease_grant(10).id
    for key in (b"b", b"a", b"c"):
        store.put(key, b"v", lease=lease)
    store.put(b"free", b"v")
    w = store.watch(b"\x00", b"\x00")
    engine.run(until=9.9)
    assert store.range(b"a").count == 1 and store.lease_time_to_live(lease).ttl == 0
    engine.run(until=10.0)
    assert store.range(b"a", b"\x00").count == 1  # only "free" is left
    events = w.take()
    assert [(e.type, e.kv.key, e.kv.mod_revision) for e in events] == [
        ("DELETE", b"a", 6),
        ("DELETE", b"b", 6),
        ("DELETE", b"c", 6),
    ]
    assert store.lease_time_to_live(lease).ttl == -1


def test_keepalive_postpones_expiry_and_reput_detaches():
    engine = Engine()
    store = Store(engine=engine)
    lease = store.lease_grant(10).id
    store.put(b"k", b"v", lease=lease)
    store.put(b"moved", b"v", lease=lease)
    store.put(b"moved", b"v")  # re-put without a lease detaches it
    engine.run(until=8)
    assert store.lease_keepalive(lease).ttl == 10
    engine.run(until=17)
    assert store.range(b"k").count == 1
    assert store.lease_time_to_live(lease, keys=True).keys == [b"k"]
    engine.run(until=18.5)
    assert store.range(b"k").count == 0 and store.range(b"moved").count == 1


def test_revoke_and_unknown_leases():
    store = Store()
    lease = store.lease_grant(100).id
    store.put(b"k", b"v", lease=lease)
    rev = store.revision
    assert store.lease_revoke(lease).revision == rev + 1
    assert store.range(b"k").count == 0
    for call in (lambda: store.lease_revoke(lease), lambda: store.lease_keepalive(lease)):
        with pytest.raises(LeaseNotFoundError):
            call()
    empty = store.lease_grant(100).id
    assert store.lease_revoke(empty).revision == rev + 1  # no keys: nothing changes
