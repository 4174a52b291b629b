"""The modelled etcd member set: real store semantics, time from the calibration profile.

Requests change and read a real :class:`~kbench.etcd.store.Store`; only their
timing is modelled, from the ``etcd`` section of a profile (:class:`EtcdCosts`):

- **writes** (put, delete, txn, compaction, lease grant/revoke) travel to the
  leader (``client_rtt / 2``, plus ``peer_rtt / 2`` when the client's member is
  a follower, plus ``proposal_overhead``) and join the proposals waiting for the
  next raft round. A round takes every waiting proposal as one batch: the
  leader sends it to the followers and fsyncs its WAL, and takes the next batch
  as soon as that fsync is done (raft pipelining); a follower fsyncs what it
  has received (batches arriving while its disk is busy share the next fsync)
  and acknowledges (``peer_rtt + wal_fsync``, plus ``disk_seconds_per_byte``). A batch commits when the
  leader and a quorum have it, in log order. One apply loop applies committed
  entries in order (``apply_per_write`` each) and answers each client as its
  entry is applied, as etcd's apply goroutine does. So one client sees about
  one fsync round trip, and many clients get batching, throughput bounded by
  the apply loop, and latency from queueing.

  The rounds are computed when a proposal is submitted (its arrival time is
  known then), so a write costs one engine event, at its apply: the batch a
  proposal joins is the one waiting for the leader at its arrival, and a
  round's disk time counts the bytes of the proposal that opened it.
- **reads** are served by the client's member on one of its ``cores``:
  ``read_cpu`` plus per-key and per-byte costs; a linearizable read first
  confirms the read index with the leader and a quorum (one ``peer_rtt``, two
  from a follower) and pays ``linearizable_cpu``. Serializable reads skip that.
- **watch** events reach the watcher ``watch_delivery + client_rtt / 2`` after
  their revision is applied.

Simplifications (documented, not hidden): the leader is member 0 and never
changes; followers apply at the leader's pace (a serializable read on a follower
sees the leader's state); errors take the full write path.
"""

from __future__ import annotations

import heapq
import math
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from kbench.etcd import _kernels as k
from kbench.etcd.errors import EtcdError
from kbench.etcd.store import Store
from kbench.etcd.types import RangeResponse
from kbench.etcd.watch import Watcher
from kbench.profiles import Profile, UnitCosts, load_profile
from kbench.sim import Engine, Event, Resource, Streams
from kbench.sim.busy import BusyTime
from kbench.sim.dist import Distribution


@dataclass(frozen=True)
class EtcdCosts(UnitCosts):
    """The etcd member set's unit costs and size: the profile's ``etcd`` section (seconds, per request, key or
    byte)."""

    section = "etcd"
    members: int
    """Member count (the default when :class:`EtcdCluster` is not given one)."""
    cores: int
    """CPU cores of each member, serving reads."""
    client_rtt: float
    peer_rtt: float
    wal_fsync: Distribution
    proposal_overhead: float
    apply_per_write: float
    disk_seconds_per_byte: float
    read_cpu: float
    read_cpu_per_key: float
    read_cpu_per_byte: float
    linearizable_cpu: float
    watch_delivery: float


class EtcdCluster:
    """An etcd member set on ``engine``.

    Parameters
    ----------
    engine : Engine
        The simulation's engine.
    profile : Profile, optional
        Calibration profile (default: ``data/profiles/default.yaml``).
    streams : Streams, optional
        Random streams (default: seed 0); fsync draws use ``<name>/member/<i>/fsync``.
    members : int, optional
        Member count (default: the profile's ``etcd.members``).
    store : Store, optional
        The state machine (default: a new compiled Store on ``engine``).
    name : str, optional
        Its name, the root of its random streams (a kube-apiserver's second etcd, for Events, has its own).
    """

    def __init__(
        self,
        engine: Engine,
        profile: Profile | None = None,
        streams: Streams | None = None,
        members: int | None = None,
        store: Store | None = None,
        name: str = "etcd",
    ) -> None:
        self.costs = costs = EtcdCosts.from_profile(profile or load_profile())
        streams = streams or Streams(0)
        members = costs.members if members is None else members
        if isinstance(members, bool) or not isinstance(members, int) or members < 1:
            raise ValueError(
                f"EtcdCluster: members must be a positive integer (1, 3 or 5 in practice); got {members!r}"
            )
        self.engine = engine
        self.store = store if store is not None else Store(engine=engine)
        self.members = members
        self.quorum = members // 2 + 1
        self.name = name
        self._cores = [Resource(engine, costs.cores) for _ in range(members)]
        self._busy = [BusyTime() for _ in range(members)]
        self._read_cores: list[list[float]] | None = None  # read_latency's cores, made at its first read
        self._latencies = array("d")
        # the write timing's state as the compiled book (kbench.etcd._kernels.book) reads and changes it: the cluster's
        # scalars (when the leader's current fsync ends, when the round the proposals waiting for the leader will form
        # starts and commits, the last commit, when the apply loop is free, the rounds started, the costs) and a row a
        # member (its hop: the one-way time from a client of the member to the leader, member 0; its disk's fsync in
        # progress and queued, its fsync draws, its busy spans)
        self._state = state = np.zeros(k.STATE_HEAD + k.LATENCY_STAGE)
        state[k.WAITING_START] = -math.inf
        state[k.PROPOSAL_OVERHEAD], state[k.APPLY_PER_WRITE] = costs.proposal_overhead, costs.apply_per_write
        state[k.DISK_PER_BYTE], state[k.HALF_PEER_RTT] = costs.disk_seconds_per_byte, costs.peer_rtt / 2
        state[k.QUORUM] = self.quorum
        self._rows = rows = np.zeros((members, k.ROW_SIZE))
        rows[:, k.HOP] = [costs.client_rtt / 2 + (costs.peer_rtt / 2 if m else 0.0) for m in range(members)]
        rows[:, k.DISK_QUEUED] = math.nan
        # each member's fsync durations, drawn from its own stream a block at a time, as Distribution.sampler draws
        self._fsync_blocks = [
            partial(costs.wal_fsync.sample, streams(f"{name}/member/{i}/fsync"), k.FSYNC_BLOCK) for i in range(members)
        ]
        for i, draw in enumerate(self._fsync_blocks):
            rows[i, k.FSYNC : k.SPANS] = draw()

    @property
    def busy(self) -> list[BusyTime]:
        """Each member's CPU busy time (the ResourceUsageSummary's etcd): a write's proposal_overhead on the member
        that takes it and apply_per_write on every member (each applies the entry), a read's CPU on its member."""
        self._serve()
        return self._busy

    def _member_busy(self, member: int) -> BusyTime:
        """Member ``member``'s busy time, its staged spans recorded first (a read's span goes after them)."""
        busy = self._busy[member]
        busy.unstage(self._rows[member], k.STAGED, k.SPANS)
        return busy

    @property
    def rounds(self) -> int:
        """Raft rounds started (each carries one batch of proposals)."""
        return int(self._state[k.ROUNDS])

    @property
    def write_latencies(self) -> array:
        """Seconds from each write's submission to its answer reaching the client (etcd request latency; one
        double each, millions in a long run)."""
        self._serve()
        return self._latencies

    def _serve(self) -> None:
        """Move what the compiled book staged to the records (the busy spans, the write latencies) and give each
        member whose block of fsync draws is used up its next block."""
        state, rows = self._state, self._rows
        staged = int(state[k.LATENCIES])
        if staged:
            self._latencies.frombytes(state[k.STATE_HEAD : k.STATE_HEAD + staged].tobytes())
            state[k.LATENCIES] = 0
        for i, draw in enumerate(self._fsync_blocks):
            self._member_busy(i)  # its staged spans, to its record
            if rows[i, k.DRAWN] >= k.FSYNC_BLOCK:
                rows[i, k.FSYNC : k.SPANS] = draw()
                rows[i, k.DRAWN] = 0

    # -- writes -------------------------------------------------------------------
    def _hop(self, member: int) -> float:
        """One-way time from a client of ``member`` to the leader."""
        return float(self._rows[member % self.members, k.HOP])  # a Python float, as the engine's times are

    def _write(self, apply: Callable[[], Any], nbytes: int, member: int) -> Event:
        done = Event(self.engine)
        self.submit(
            apply, nbytes, member, lambda ok, value, delay: self.engine.schedule(delay, _resolve, (done, (ok, value)))
        )
        return done

    def submit(
        self, apply: Callable[[], Any], nbytes: int, member: int, respond: Callable[[bool, Any, float], Any]
    ) -> float:
        """Propose a write; when it is applied (one engine event), ``apply()`` changes the store and
        ``respond(ok, result or EtcdError, delay)`` runs, ``delay`` being how long the answer takes to reach
        the client. The cheap path for callers that fold that delay into their own next event. Returns when
        the answer reaches the client."""
        now = self.engine.now
        start, delay = self.book(now, nbytes, member)
        self.engine.schedule(start - now, self._apply, (apply, delay, respond))
        return start + delay

    def book(self, now: float, nbytes: int, member: int) -> tuple[float, float]:
        """The timing of a write proposed at ``now`` by a client of ``member``: its raft round, its place in the
        apply loop and the members' busy time, recorded; returns (when it is applied, how long its answer then takes
        to reach the client). :meth:`submit` schedules the apply; a caller that applies writes itself (the
        apiserver's coalesced Lease renewals) calls this alone, ``now`` ahead of the engine's clock by the write's
        CPU time (with any wait for a core). Compiled: :func:`kbench.etcd._kernels.book`."""
        start, delay, serve = k.book(self._state, self._rows, now, nbytes, member % self.members)
        if serve:
            self._serve()
        return start, delay

    def _apply(self, args) -> None:
        apply, delay, respond = args
        try:
            respond(True, apply(), delay)
        except EtcdError as err:
            respond(False, err, delay)

    def put(self, key: bytes, value: bytes = b"", member: int = 0, **options: Any) -> Event:
        """Put through raft; the event succeeds with the PutResponse (or fails with the etcd error)."""
        return self._write(lambda: self.store.put(key, value, **options), len(key) + len(value), member)

    def delete_range(self, key: bytes, range_end: bytes = b"", member: int = 0, **options: Any) -> Event:
        """DeleteRange through raft."""
        return self._write(lambda: self.store.delete_range(key, range_end, **options), len(key), member)

    def txn(
        self, compare: Sequence = (), success: Sequence = (), failure: Sequence = (), member: int = 0, nbytes: int = 0
    ) -> Event:
        """Txn through raft (``nbytes``: payload size, for the disk cost)."""
        if isinstance(nbytes, bool) or not isinstance(nbytes, int | np.integer) or not 0 <= nbytes < 2**63:
            # the compiled book takes an int64: a float would be cut to its whole bytes without a word
            raise ValueError(
                f"txn: nbytes must be a non-negative integer below 2**63 (the payload's bytes); got {nbytes!r}"
            )
        return self._write(lambda: self.store.txn(compare, success, failure), nbytes, member)

    def compact(self, revision: int, member: int = 0) -> Event:
        """Compaction through raft."""
        return self._write(lambda: self.store.compact(revision), 0, member)

    def lease_grant(self, ttl: int, id: int = 0, member: int = 0) -> Event:
        """LeaseGrant through raft."""
        return self._write(lambda: self.store.lease_grant(ttl, id), 0, member)

    def lease_revoke(self, id: int, member: int = 0) -> Event:
        """LeaseRevoke through raft."""
        return self._write(lambda: self.store.lease_revoke(id), 0, member)

    # -- reads --------------------------------------------------------------------
    def range(
        self, key: bytes, range_end: bytes = b"", member: int = 0, serializable: bool = False, **options: Any
    ) -> Event:
        """Range on the client's member; the event succeeds with the RangeResponse."""
        done = Event(self.engine)
        self.engine.process(
            self._read(
                done,
                member % self.members,
                serializable,
                lambda: self.store.range(key, range_end, serializable=serializable, **options),
            )
        )
        return done

    def _read_index(self, member: int, serializable: bool) -> tuple[float, float]:
        """(wait, cpu) a linearizable read adds on ``member`` (none for a serializable one): ReadIndex's quorum check
        and the hop to the leader from a follower, and its CPU."""
        if serializable:
            return 0.0, 0.0
        return self.costs.peer_rtt * ((self.members > 1) + (member != 0)), self.costs.linearizable_cpu

    def read_latency(self, member: int, keys: int, nbytes: int, serializable: bool = False) -> float:
        """Seconds until a range of ``keys`` keys (``nbytes`` of values) on ``member`` answers its client, the read's
        core taken now, for a caller that folds the delay into its own next event (kube-apiserver reading a resource
        it does not cache). Timed as :meth:`range`; these reads share each member's cores with one another, first
        come first served in the order they are made (:meth:`range`'s processes have the cores of their own)."""
        member %= self.members
        p = self.costs
        hop = p.client_rtt / 2
        read_index_wait, read_index_cpu = self._read_index(member, serializable)
        wait = hop + read_index_wait
        cpu = p.read_cpu + p.read_cpu_per_key * keys + p.read_cpu_per_byte * nbytes + read_index_cpu
        if self._read_cores is None:
            self._read_cores = [[0.0] * p.cores for _ in range(self.members)]
        cores = self._read_cores[member]  # a heap of the times each core is free
        start = max(self.engine.now + wait, heapq.heappop(cores))
        heapq.heappush(cores, start + cpu)
        self._member_busy(member).add(start, start + cpu)
        return start + cpu + hop - self.engine.now

    def lease_keepalive(self, id: int, member: int = 0) -> Event:
        """LeaseKeepAlive: answered by the leader's lessor without a raft round (etcd 3.4)."""
        done = Event(self.engine)
        self.engine.process(self._read(done, 0, True, lambda: self.store.lease_keepalive(id), self._hop(member)))
        return done

    def _read(self, done: Event, member: int, serializable: bool, call: Callable[[], Any], hop: float | None = None):
        p = self.costs
        hop = p.client_rtt / 2 if hop is None else hop
        read_index_wait, read_index_cpu = self._read_index(member, serializable)
        wait, cpu = hop + read_index_wait, p.read_cpu + read_index_cpu
        yield wait
        core = self._cores[member]
        yield core.acquire()
        try:
            result = (True, call())
        except EtcdError as err:
            result = (False, err)
        if result[0] and isinstance(result[1], RangeResponse):
            kvs = result[1].kvs
            cpu += p.read_cpu_per_key * len(kvs) + p.read_cpu_per_byte * sum(len(kv.value) for kv in kvs)
        self._member_busy(member).add(self.engine.now, self.engine.now + cpu)
        yield cpu
        core.release()
        yield hop
        _resolve((done, result))

    # -- watch and compaction -----------------------------------------------------
    def watch(
        self,
        key: bytes,
        callback: Callable[[list], Any],
        range_end: bytes = b"",
        start_revision: int = 0,
        prev_kv: bool = False,
        filters: Sequence[str] = (),
    ) -> Watcher:
        """Watch through the store; ``callback(events)`` runs when each batch reaches the client."""
        watcher = self.store.watch(key, range_end, start_revision, prev_kv, filters)
        delay = self.costs.watch_delivery + self.costs.client_rtt / 2
        watcher.on_events = lambda events: self.engine.schedule(delay, callback, events)
        backlog = watcher.take()
        if backlog:
            self.engine.schedule(delay, callback, backlog)
        return watcher

    def start_compactor(self, interval: float) -> None:
        """Compact every ``interval`` seconds to the revision seen one interval earlier (kube-apiserver's way, every
        ``--etcd-compaction-interval``)."""
        if not interval > 0:
            raise ValueError(f"compaction interval must be > 0 seconds, got {interval!r}")
        self.engine.process(self._compactor(interval), name="etcd-compactor")

    def _compactor(self, interval: float):
        previous = 0
        while True:
            yield interval
            if previous > max(self.store.compact_revision, 0):
                yield self.compact(previous)
            previous = self.store.revision


def _resolve(args: tuple[Event, tuple[bool, Any]]) -> None:
    done, (ok, value) = args
    if ok:
        done.succeed(value)
    else:
        done.fail(value)
