"""The compiled backend's own mechanics: growth, key interning, memory per revision, compaction."""

from __future__ import annotations

import numpy as np

from kbench.etcd import Store
from kbench.etcd.mvcc import MVCC


def test_memory_per_revision_is_documented_size():
    """A 5,000-node cluster's hour (~3.6 M revisions) must fit easily: 72 bytes a revision before values."""
    store = Store()
    keyset = store.keyset([b"/registry/leases/kube-node-lease/node-%05d" % i for i in range(5_000)])
    store.put_many(keyset[np.arange(1_000_000) % 5_000], b"lease")
    mvcc = store._mvcc
    per_revision = (mvcc._log[: len(mvcc)].nbytes + 8 * len(mvcc)) / len(mvcc)
    assert per_revision == 72
    assert mvcc.nbytes < 2.5 * 72 * 1_000_000  # doubling growth leaves at most 2x room


def test_log_grows_and_keysets_stay_valid_across_compaction():
    mvcc = MVCC(capacity=16, key_capacity=16)
    keys = mvcc.keyset([b"k%03d" % i for i in range(100)])
    mvcc.put_many(keys, b"v", 0, 2)
    mvcc.rev = 101
    for i in range(50):
        mvcc.delete(b"k%03d" % i, 102, i)
    mvcc.rev = 102
    mvcc.compact(102)
    assert len(mvcc) == 50
    mvcc.put_many(keys[np.arange(10)], b"w", 0, 103)  # deleted and compacted keys come back to life
    mvcc.rev = 112
    reads = mvcc.get_many(keys, 112)
    assert reads[2, :10].tolist() == [1] * 10 and reads[4, 10:50].tolist() == [-1] * 40
    assert mvcc.get(b"k000", 112).create_revision == 103


def test_scan_sees_new_keys_merged_into_the_sorted_view():
    mvcc = MVCC()
    for i, key in enumerate([b"m", b"a", b"z", b"c"]):
        mvcc.put(key, b"v", 0, 2 + i, 0)
    kvs, count = mvcc.scan(b"b", None, 5)
    assert [kv.key for kv in kvs] == [b"c", b"m", b"z"] and count == 3
    mvcc.put(b"d", b"v", 0, 6, 0)
    kvs, _ = mvcc.scan(b"a", b"e", 6, limit=2)
    assert [kv.key for kv in kvs] == [b"a", b"c"]
