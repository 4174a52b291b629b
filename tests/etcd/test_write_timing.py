"""The member set's compiled write timing (``kbench.etcd._kernels.book``) against the Python model it replaced.

The reference below is ``EtcdCluster.book`` as it was in Python (round 17, c4966d0): the raft round a proposal joins
or opens, the followers' disks, the quorum's ack, the apply loop, each member's busy spans and the write's latency,
with the fsync durations drawn one at a time from ``Distribution.sampler``. Random sequences of writes (any time,
size and member; member counts 1 to 5; five profiles, two of them with another fsync distribution; reads'
busy spans between them) must give the same floats, bit for bit.
"""

from __future__ import annotations

import copy
import heapq
import math

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from kbench.etcd.cluster import EtcdCluster
from kbench.profiles import Profile, load_profile
from kbench.sim import Engine, Streams
from kbench.sim.busy import BusyTime


class _Reference:
    """``EtcdCluster.book`` in Python, as it was before it was compiled."""

    def __init__(self, cluster: EtcdCluster, streams: Streams) -> None:
        costs, members = cluster.costs, cluster.members
        self.costs, self.members, self.quorum = costs, members, members // 2 + 1
        self.fsync = [costs.wal_fsync.sampler(streams(f"{cluster.name}/member/{i}/fsync")) for i in range(members)]
        self.busy = [BusyTime() for _ in range(members)]
        self.hops = [costs.client_rtt / 2 + (costs.peer_rtt / 2 if m else 0.0) for m in range(members)]
        self.half_peer_rtt = costs.peer_rtt / 2
        self.leader_free, self.waiting_start, self.waiting_commit = 0.0, -math.inf, 0.0
        self.disk: list[tuple[float, float | None]] = [(0.0, None)] * members
        self.last_commit = self.apply_free = 0.0
        self.rounds = 0
        self.write_latencies: list[float] = []
        self.read_cores = [[0.0] * costs.cores for _ in range(members)]

    def book(self, now: float, nbytes: int, member: int) -> tuple[float, float]:
        p = self.costs
        member %= self.members
        hop = self.hops[member]
        arrival = now + hop + p.proposal_overhead
        self.busy[member].add(arrival - p.proposal_overhead, arrival)
        if arrival < self.waiting_start:
            commit = self.waiting_commit
        else:
            commit = self._open_round(arrival, nbytes)
        start = commit if commit > self.apply_free else self.apply_free
        self.apply_free = end = start + p.apply_per_write
        for member_busy in self.busy:
            member_busy.add(start, end)
        delay = p.apply_per_write + hop
        self.write_latencies.append(start + delay - now)
        return start, delay

    def read(self, member: int, keys: int, nbytes: int) -> None:
        """``EtcdCluster.read_latency``'s busy span, the engine's clock at 0: its core (a heap a member) after the
        read index's wait, its CPU."""
        p = self.costs
        wait = p.client_rtt / 2 + p.peer_rtt * ((self.members > 1) + (member != 0))
        cpu = p.read_cpu + p.read_cpu_per_key * keys + p.read_cpu_per_byte * nbytes + p.linearizable_cpu
        start = max(wait, heapq.heappop(self.read_cores[member]))
        heapq.heappush(self.read_cores[member], start + cpu)
        self.busy[member].add(start, start + cpu)

    def _open_round(self, arrival: float, nbytes: int) -> float:
        start = self.leader_free if self.leader_free > arrival else arrival
        disk = nbytes * self.costs.disk_seconds_per_byte
        self.leader_free = commit = start + self.fsync[0]() + disk
        if self.quorum > 1:
            half = self.half_peer_rtt
            sent, acks = start + half, []
            for i in range(1, self.members):
                acks.append(self._follower_fsync(i, sent, disk) + half)
            acks.sort()
            ack = acks[self.quorum - 2]
            commit = ack if ack > commit else commit
        if self.last_commit > commit:
            commit = self.last_commit
        self.last_commit = self.waiting_commit = commit
        self.waiting_start = start
        self.rounds += 1
        return commit

    def _follower_fsync(self, i: int, arrival: float, disk: float) -> float:
        current, queued = self.disk[i]
        if queued is not None and arrival >= current:
            current, queued = queued, None
        if arrival >= current:
            current = arrival + self.fsync[i]() + disk
            done = current
        else:
            if queued is None:
                queued = current + self.fsync[i]() + disk
            done = queued
        self.disk[i] = (current, queued)
        return done


PROFILES = {
    "default": {},
    "no proposal overhead": {"etcd.proposal_overhead": 0.0},  # the proposal's busy span is no time: none recorded
    "slow disk": {"etcd.wal_fsync.median": 0.02, "etcd.wal_fsync.p99": 0.05, "etcd.disk_seconds_per_byte": 1e-8},
}
FSYNC = {  # the fsync distribution replaced: a Constant's sampler repeated its value, where the others draw blocks
    "constant fsync": {"value": 0.001, "assumed": "test"},
    "uniform fsync": {"dist": "uniform", "low": 0.0005, "high": 0.003, "assumed": "test"},
}


def _profile(name: str) -> Profile:
    if name in FSYNC:
        data = copy.deepcopy(load_profile().data)
        data["etcd"]["wal_fsync"] = FSYNC[name]
        return Profile(data, f"test profile: {name}")
    return load_profile().override(PROFILES[name])


@settings(deadline=None, max_examples=40)
@example(seed=1, members=3, profile="default", writes=4500, spacing=1e-4)  # every stage crosses its end
@example(seed=2, members=5, profile="slow disk", writes=4500, spacing=1e-5)
@example(seed=3, members=3, profile="constant fsync", writes=2000, spacing=1e-4)
@given(
    seed=st.integers(0, 2**32 - 1),
    members=st.integers(1, 5),
    profile=st.sampled_from(sorted(PROFILES) + sorted(FSYNC)),
    writes=st.integers(1, 4500),
    spacing=st.sampled_from([1e-5, 1e-4, 1e-3, 1e-2]),
)
def test_the_compiled_book_times_every_write_as_the_python_model(seed, members, profile, writes, spacing):
    """Over 1,024 writes the fsync blocks are drawn again, over about 1,000 the busy spans and over 4,095 the
    latencies are moved from their stages: sequences up to 4,500 writes cross all three."""
    engine = Engine()
    cluster = EtcdCluster(engine, _profile(profile), streams=Streams(seed), members=members, name="etcd")
    reference = _Reference(cluster, Streams(seed))
    rng = np.random.default_rng(seed)
    times = np.cumsum(rng.exponential(spacing, writes)) - rng.uniform(0, spacing, writes)  # not always in order
    sizes, clients = rng.integers(0, 3000, writes), rng.integers(-2, 2 * members, writes)
    for i, (now, nbytes, member) in enumerate(zip(times.tolist(), sizes.tolist(), clients.tolist(), strict=True)):
        assert cluster.book(now, nbytes, member) == reference.book(now, nbytes, member)
        if i % 97 == 0:  # a read between writes: its busy span after theirs
            m = i % members
            cluster.read_latency(m, keys=1, nbytes=100)
            reference.read(m, keys=1, nbytes=100)
    assert cluster.rounds == reference.rounds
    assert list(cluster.write_latencies) == reference.write_latencies
    for ours, theirs in zip(cluster.busy, reference.busy, strict=True):
        assert ours.bins.tobytes() == theirs.bins.tobytes()


def test_a_write_timed_at_no_number_is_refused_as_a_busy_span_is():
    """Refused before the kernel changes anything: what the writes before it recorded stays as it was."""
    cluster = EtcdCluster(Engine(), members=3)
    cluster.book(0.5, 10, 1)
    before = (cluster.rounds, list(cluster.write_latencies), [b.bins.tobytes() for b in cluster.busy])
    with pytest.raises(ValueError, match="busy time"):
        cluster.book(math.nan, 10, 0)
    assert (cluster.rounds, list(cluster.write_latencies), [b.bins.tobytes() for b in cluster.busy]) == before
    untouched = EtcdCluster(Engine(), members=3)  # the same writes without the refused one
    untouched.book(0.5, 10, 1)
    assert cluster.book(0.6, 10, 1) == untouched.book(0.6, 10, 1)
    with pytest.raises(ValueError, match="busy time"):
        BusyTime().add(math.nan, math.nan)
