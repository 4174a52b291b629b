"""Coalesced node Lease renewals: the one aggregation kbench allows itself, off unless a run asks for it.

A node renews its Lease every 10 s, so at 5,000 nodes renewals are most of a quiet cluster's requests, and on the
request path each costs the simulator five engine events (the client's send, the arrival, the CPU's end, etcd's
apply, the informer's delivery). With a window ``W`` (``ClusterSpec.coalesce_leases``, seconds) a renewal costs one
event of its own and a share of two every ``W``:

- **its arrival**, at its own time: its client's token, then its instance's flow control (classified, estimated,
  dispatched, queued or rejected as any request), the registry's plan and its CPU on the instance's cores, as the
  request path runs them (a renewal of the Lease as stored, the steady case, skips the registry: its plan is known,
  :meth:`CoalescedRenewals.dispatch`); then, at once, its raft round and apply slot in the etcd model
  (:meth:`~kbench.etcd.cluster.EtcdCluster.book`) as they would be if it were proposed when its CPU ends;
- **the commit tick** (every ``W``): the writes applied since the last tick, in apply order, each a compare-and-put on
  the store, its event in the watch caches (the fan-out CPU on the instances), its SLI sample and its node's answer;
  the informers' deliveries of the tick's events then come together.

Each renewal's latency, its node's next send time and the seats, cores and raft round it takes are its own. What is
approximated:

- its raft round is booked its CPU time (with any wait for a core) early: a write of another client proposed in that
  time joins the next round instead of sharing one, or finds the apply loop busy;
- its write, watch event and answer happen at the first tick after its apply time, up to ``W`` late: writes of other
  clients in between get earlier revisions, and watchers see the renewal up to ``W`` late; the node acts on a
  successful answer from the answer's own time (its next renewal is as due), on a failed one at the tick.

``tests/apiserver/test_renewals.py`` bounds the effect on every SLI of a whole cluster run against the exact path.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING

from kbench.apiserver.objects import RESOURCES
from kbench.apiserver.registry import compare_and_write, compare_and_write_many
from kbench.apiserver.server import APIServer, Callback, Request, storage_key
from kbench.etcd.errors import EtcdError
from kbench.sim import Timer

if TYPE_CHECKING:
    from kbench.client.client import Client, TokenBucket

LEASES = RESOURCES["leases"]

MAX_WINDOW = 0.1
"""The widest window allowed (seconds): the one the SLI bound is tested at, a hundredth of the default renew
interval (10 s)."""

BATCH_MIN = 4
"""The fewest writes a tick commits in one call of the store: the call costs about 5 us more than its writes (about
0.7 us each, against about 2.3 us one at a time), so it pays from three or four writes (measured on a 2-core AMD
EPYC). At 0.05 s windows, 5,000 hollow nodes make 24.5 renewals a tick (all of them batched), 500 make 2.7 (43% of
them batched)."""


def valid_window(window: object) -> bool:
    """Whether ``window`` is a window in seconds, > 0 and <= :data:`MAX_WINDOW`."""
    return not isinstance(window, bool) and isinstance(window, int | float) and 0 < window <= MAX_WINDOW


def renewed_lease(lease: Mapping, renew_time: str, metadata: Mapping | None = None) -> dict:
    """A node's Lease update: ``lease`` (the latest one it has) with ``spec.renewTime`` set, its metadata (its
    resourceVersion the update's precondition) shared, as the lease controller's newLease copies latestLease
    (staging/src/k8s.io/component-helpers/apimachinery/lease/controller.go); or ``metadata`` instead (the
    apiserver's own copy of it, for the object it stores)."""
    return {
        "apiVersion": lease["apiVersion"],
        "kind": "Lease",
        "metadata": lease["metadata"] if metadata is None else metadata,
        "spec": {**lease["spec"], "renewTime": renew_time},
    }


class Renewal(Request):
    """A coalesced Lease update: a request whose etcd round is booked at dispatch and whose write waits for a tick.
    It carries the Lease it renews and the new renewTime; its body (:func:`renewed_lease`) is made only when the
    registry plans it."""

    __slots__ = ("limiter", "renewals", "handle", "lease", "renew_time")
    limiter: TokenBucket
    """Its client's rate limiter."""
    renewals: CoalescedRenewals
    handle: Timer
    """The entry of its arrival (cancelled: taken back), kept while it waits for a token."""
    lease: Mapping
    """The Lease it renews (its node's latest)."""
    renew_time: str

    def dispatch(self) -> float:
        """Run it (it has its seats): :meth:`CoalescedRenewals.dispatch`."""
        return self.renewals.dispatch(self)


class CoalescedRenewals:
    """The coalesced Lease renewals of an :class:`~kbench.apiserver.server.APIServer` (it becomes the server's
    ``renewals``), committed every ``window`` simulated seconds."""

    def __init__(self, server: APIServer, window: float) -> None:
        if not valid_window(window):
            raise ValueError(f"coalesce_leases: a window in seconds, > 0 and <= {MAX_WINDOW}; got {window!r}")
        self.server, self.window = server, float(window)
        self.etcd = server.etcds["leases"]
        """The etcd cluster that stores Leases (the main one, or its own under --etcd-servers-overrides)."""
        self._commits: dict[int, tuple[list[tuple], list[tuple]]] = {}
        """Booked writes by the tick that commits them, in apply order (etcd's apply loop books them in increasing
        apply times): their compare-and-puts (key, kind, value, precondition) and their answers (renewal, object,
        value, when the answer is due: the apply time and the answer's delay after it)."""
        self._ticked = -1
        self.coalesced = 0
        """Renewals that took this path."""
        server.renewals = self

    def send(self, client: Client, lease: Mapping, renew_time: str, callback: Callback, delay: float) -> Timer:
        """Renew ``lease`` with ``renew_time`` ``delay`` seconds from now, the update :func:`renewed_lease` makes
        (``callback`` gets the answer as a request's would); returns its handle: cancelling it (``Engine.cancel``)
        before the renewal leaves (its send time, then any wait for a token) takes it back, as ``Client.request``'s."""
        server = self.server
        # its target read from the lease (the body's metadata is the lease's); the body itself is made at dispatch
        renewal = Renewal.of(client.conn, "update", LEASES, "", "", lease, "", {}, callback, server.engine.now + delay)
        renewal.body = None
        renewal.limiter, renewal.renewals = client.limiter, self
        renewal.lease, renewal.renew_time = lease, renew_time
        renewal.handle = server.engine.schedule(delay + server.half_rtt, self.arrive, renewal)
        return renewal.handle

    def arrive(self, renewal: Renewal) -> None:
        """The renewal would reach its instance now: it takes its client's token as of its send time (as
        ``Client.request`` does); with none there it arrives once the token is, unless taken back meanwhile."""
        wait = renewal.limiter.reserve(renewal.started)
        if wait > 0:
            renewal.started += wait
            self.server.engine.schedule(wait, self._arrive_with_token, renewal)
        else:
            self._arrived(renewal)

    def _arrive_with_token(self, renewal: Renewal) -> None:
        if renewal.handle[0] is None:  # taken back while it waited
            renewal.handle = []  # drops the cycle (the entry holds the renewal)
        else:
            self._arrived(renewal)

    def _arrived(self, renewal: Renewal) -> None:
        renewal.handle = []  # drops the cycle, as Client's _Scheduled does
        self.coalesced += 1
        self.server.arrive(renewal)

    def dispatch(self, renewal: Renewal) -> float:
        """Flow control dispatched ``renewal``: plan it, run its CPU and book its etcd round for when that CPU ends;
        the write waits for the first tick after its apply time. Returns when it releases its seats (its answer back
        from etcd), as a write's ``_propose`` tells flow control.

        A renewal of the Lease the watch cache holds (the object itself: the node renews from its last answer, or
        from a read, which answers the cached object) has the plan the registry would make, made here: the
        registry's update (``Registry._plan_update``) is that object with renewTime changed, the fields it keeps
        (uid, name, ...) already the stored ones, its resourceVersion the stored one (the precondition met), no
        status or finalizer changed. Any other renewal (the Lease changed since) gets its body and the registry's
        plan. ``tests/apiserver/test_renewals.py`` checks the two plans are the same."""
        server = self.server
        now = server.engine.now
        current = renewal.cache.objects.get(renewal.key)
        planned: float | tuple[str, dict, bytes, tuple, float]
        if current is not None and current[0] is renewal.lease:
            # own(renewed_lease(...)) made at once: the body's top level is the object's
            obj = renewed_lease(renewal.lease, renewal.renew_time, dict(renewal.lease["metadata"]))
            planned = server.planned_write(renewal, "MODIFIED", obj, ("rev", current[1]), now)
        else:
            renewal.body = renewed_lease(renewal.lease, renewal.renew_time)
            planned = server.plan_write(renewal, now)
        if isinstance(planned, float):
            return planned
        kind, obj, value, expect, done = planned
        key = storage_key(renewal, obj)
        applied, delay = self.etcd.book(done, len(key) + len(value), renewal.conn.instance.index)
        tick = max(math.ceil(applied / self.window), self._ticked + 1)
        commits = self._commits.get(tick)
        if commits is None:
            commits = self._commits[tick] = ([], [])
            server.engine.schedule(max(0.0, tick * self.window - now), self._tick, tick)
        answered = applied + delay
        commits[0].append((key, kind, value, expect))
        commits[1].append((renewal, obj, value, answered))
        return answered

    def _tick(self, tick: int) -> None:
        """Commit, in apply order, the writes applied by now: a tick of :data:`BATCH_MIN` writes or more makes their
        compare-and-puts in one call of the store when it takes them so (:func:`compare_and_write_many`), then
        answers them; else each write, then its answer. The two are the same: an answer writes nothing to the store
        and takes no CPU at once (the node's next renewal is a request; ``APIServer.updated`` asserts the CPU)."""
        self._ticked = tick
        now = self.server.engine.now
        puts, answers = self._commits.pop(tick)
        results = compare_and_write_many(self.etcd.store, puts) if len(puts) >= BATCH_MIN else None
        if results is None:
            for put, answer in zip(puts, answers, strict=True):
                self._commit(now, put, answer)
            return
        self.server.updated(answers, results)

    def _commit(self, now: float, put: tuple[bytes, str, bytes, tuple], answer: tuple) -> None:
        """Apply one booked write (``put``: key, kind, value, precondition) as etcd's apply loop would have at its
        apply time; its answer (``answer``: renewal, object, value, when etcd's answer was due) is given the time from
        now to that due time, negative when it was due before this tick."""
        key, kind, value, expect = put
        renewal, obj, _, answered = answer
        try:
            result, ok = compare_and_write(self.etcd.store, key, kind, value, expect), True
        except EtcdError as err:  # kept without its traceback, whose frame (this one) would hold it: a cycle
            result, ok = err.with_traceback(None), False
        self.server.written(renewal, kind, obj, value, ok, result, answered - now)
