"""The modelled etcd member set: calibration against etcd's published benchmark, and its mechanics."""

from __future__ import annotations

import numpy as np
import pytest

from kbench.etcd import KeyNotFoundError
from kbench.etcd.cluster import EtcdCluster
from kbench.etcd.workload import run_closed_loop
from kbench.profiles import load_profile
from kbench.sim import Engine, Streams

# etcd op-guide v3.4 "performance" (https://etcd.io/docs/v3.4/op-guide/performance/), 8-byte keys,
# 256-byte values: (workload, published throughput/s, published mean latency s, tolerance).
OP_GUIDE = [
    (dict(clients=1, write_ratio=1.0, keys=10_000, target="leader"), 583, 0.0016, 0.15),
    (dict(clients=1000, write_ratio=1.0, keys=100_000), 50_104, 0.020, 0.15),
    (dict(clients=1, write_ratio=0.0, keys=1_000), 1_353, 0.0007, 0.35),
    (dict(clients=1, write_ratio=0.0, keys=1_000, serializable=True), 2_909, 0.0003, 0.35),
    (dict(clients=1000, write_ratio=0.0, keys=1_000), 141_578, None, 0.15),
    (dict(clients=1000, write_ratio=0.0, keys=1_000, serializable=True), 185_758, None, 0.15),
]


@pytest.mark.parametrize("workload, throughput, latency, tolerance", OP_GUIDE)
def test_default_profile_reproduces_the_etcd_op_guide(workload, throughput, latency, tolerance):
    result = run_closed_loop(value_size=256, duration=0.25, warmup=0.1, **workload)
    assert result.throughput == pytest.approx(throughput, rel=tolerance)
    if latency is not None:
        mean = np.concatenate([result.write_latency, result.read_latency]).mean()
        assert mean == pytest.approx(latency, rel=tolerance)


def _one_write_latency(members: int, seed: int) -> float:
    engine = Engine()
    cluster = EtcdCluster(engine, streams=Streams(seed), members=members)
    done = cluster.put(b"k", b"v")
    engine.run()
    assert done.value.revision == 2
    return engine.now


def test_more_members_need_a_larger_quorum():
    lat = {m: np.mean([_one_write_latency(m, s) for s in range(200)]) for m in (1, 3, 5)}
    assert lat[1] < lat[3] < lat[5]


def test_reads_serializable_skip_the_read_index_round():
    engine = Engine()
    cluster = EtcdCluster(engine)
    lin, ser = cluster.range(b"k", member=1), cluster.range(b"k", member=1, serializable=True)
    times = {}
    lin.add_callback(lambda ev: times.setdefault("lin", engine.now))
    ser.add_callback(lambda ev: times.setdefault("ser", engine.now))
    engine.run()
    p = cluster.costs
    assert times["ser"] == pytest.approx(p.client_rtt + p.read_cpu)
    assert times["lin"] == pytest.approx(times["ser"] + 2 * p.peer_rtt + p.linearizable_cpu)


def test_writes_change_the_real_store_in_raft_order_and_errors_propagate():
    engine = Engine()
    cluster = EtcdCluster(engine)
    events = [cluster.put(b"k", b"%d" % i, member=i % 3) for i in range(5)]
    failed = cluster.put(b"missing", ignore_value=True)
    caught = []

    def reader():
        yield events[-1]
        resp = yield cluster.range(b"k")
        caught.append(resp.kvs[0].version)
        try:
            yield failed
        except KeyNotFoundError:
            caught.append("KeyNotFound")

    engine.process(reader())
    engine.run()
    assert sorted(ev.value.revision for ev in events) == [2, 3, 4, 5, 6]
    assert caught == [5, "KeyNotFound"]


def test_watch_events_arrive_after_the_delivery_delay():
    engine = Engine()
    cluster = EtcdCluster(engine)
    got = []
    cluster.watch(b"k", lambda evs: got.extend((engine.now, e.kv.value) for e in evs))
    put = cluster.put(b"k", b"1")
    applied = []
    put.add_callback(lambda ev: applied.append(engine.now))
    engine.run()
    p = cluster.costs
    ((t, value),) = got
    assert value == b"1"
    # The store changes when the apply starts; the put's answer leaves after the apply and a half RTT,
    # the watch event after the watch delivery cost and a half RTT.
    assert t == pytest.approx(applied[0] - p.apply_per_write + p.watch_delivery)


def test_compactor_compacts_to_the_revision_seen_one_interval_earlier():
    engine = Engine()
    cluster = EtcdCluster(engine)
    cluster.start_compactor(interval=10)

    def writer():
        while True:
            yield cluster.put(b"k", b"v")
            yield 1.0

    engine.process(writer())
    engine.run(until=10.5)
    assert cluster.store.compact_revision == -1  # nothing seen before the first tick
    seen_at_10 = None

    def probe(_):
        nonlocal seen_at_10
        seen_at_10 = cluster.store.revision

    engine.schedule(0.0, probe)  # still at 10.5; the tick at 10 recorded the revision then
    engine.run(until=21)
    assert 0 < cluster.store.compact_revision <= seen_at_10


def test_leases_expire_on_virtual_time_through_the_cluster():
    engine = Engine()
    cluster = EtcdCluster(engine)

    def client():
        grant = yield cluster.lease_grant(5)
        yield cluster.put(b"session", b"x", lease=grant.id)
        for _ in range(3):
            yield 4.0
            yield cluster.lease_keepalive(grant.id)

    engine.process(client())
    engine.run(until=15)
    assert cluster.store.range(b"session").count == 1
    engine.run(until=25)
    assert cluster.store.range(b"session").count == 0


def test_profile_override_changes_the_model():
    slow = load_profile().override({"etcd.wal_fsync.median": 0.02, "etcd.wal_fsync.p99": 0.05})
    fast = run_closed_loop(clients=1, write_ratio=1.0, keys=100, value_size=10, duration=0.5)
    degraded = run_closed_loop(clients=1, write_ratio=1.0, keys=100, value_size=10, duration=0.5, profile=slow)
    assert np.median(degraded.write_latency) > 10 * np.median(fast.write_latency)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="members must be a positive integer"):
        EtcdCluster(Engine(), members=0)
    cluster = EtcdCluster(Engine())
    for bad in (-1, 1.5, "10", True, 2**63, np.uint64(2**63)):
        with pytest.raises(ValueError, match="txn: nbytes must be a non-negative integer"):
            cluster.txn(nbytes=bad)
    assert cluster.rounds == 0  # refused before anything was proposed
    with pytest.raises(ValueError, match="target must be one of all, leader"):
        run_closed_loop(clients=1, write_ratio=1.0, keys=1, value_size=1, target="followers")
    with pytest.raises(ValueError, match="write_ratio must be in"):
        run_closed_loop(clients=1, write_ratio=2.0, keys=1, value_size=1)


def test_read_latency_times_a_range_as_the_read_process_does_and_queues_on_the_cores():
    engine = Engine()
    cluster = EtcdCluster(engine)
    p = cluster.costs
    put = cluster.put(b"k", b"v" * 256)
    engine.run()
    assert put.ok
    done = cluster.range(b"k", member=1)
    start = engine.now
    done.add_callback(lambda ev: times.append(engine.now - start))
    times: list[float] = []
    latency = cluster.read_latency(1, keys=1, nbytes=256)
    engine.run()
    assert latency == pytest.approx(times[0])  # the same costs as range() on an idle member
    cpu = p.read_cpu + p.linearizable_cpu + p.read_cpu_per_key + 256 * p.read_cpu_per_byte
    burst = [cluster.read_latency(1, keys=1, nbytes=256) for _ in range(p.cores + 1)]
    assert burst[: p.cores] == pytest.approx([latency] * p.cores)
    assert burst[p.cores] == pytest.approx(latency + cpu)  # one more than the cores waits for one
