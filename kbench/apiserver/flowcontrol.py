"""Request admission at one apiserver instance: API Priority and Fairness, or the older max-in-flight limits.

APF follows k8s.io/apiserver/pkg/util/flowcontrol (v1.35) and its bootstrap configuration
(apiserver/pkg/apis/flowcontrol/bootstrap/default.go): FlowSchemas, matched by precedence, map a request
to a priority level and a flow (schema name + user or namespace); a level's nominal concurrency limit is
``ceil(server limit x its nominalConcurrencyShares / sum of shares)`` with the server limit the sum of
``--max-requests-inflight`` (400) and ``--max-mutating-requests-inflight`` (200); a request that finds no
free seat waits in one of the level's queues, chosen by shuffle sharding (the flow's hash deals a hand of
``handSize`` queues; the one with the least waiting work wins), and is rejected with 429 when that queue
holds ``queueLengthLimit`` requests while the level has no free seat, or after waiting ``--request-timeout / 4``
(15 s; at most 1 min). The flags come from :class:`kbench.apiserver.config.KubeAPIServerConfig`; the priority levels
are upstream's bootstrap objects (:data:`LEVELS`), API objects rather than flags upstream. Queues are served round
robin (equal-cost fair queuing; upstream's virtual finish times are not modelled).

A request's width in seats and how long it holds them after it ends come from the work estimator
(:mod:`kbench.apiserver.workestimator`: LIST by the bytes it loads, mutating requests by the watches they wake); a
request wider than its level's current limit runs alone (queueset.go canAccommodateSeatsLocked). A watch holds its
seat until its initial events are sent (the apiserver calls :meth:`PriorityAndFairness.watching` and releases at
WatchInitialized). Seats are borrowed and lent between levels (apf_controller.go updateBorrowingLocked): every
``borrowingAdjustmentPeriod`` (10 s) each level's seat demand (seats in use + waiting) over the period gives a
high watermark and a smoothed ``avg + stdDev`` envelope, and the current concurrency limits are re-allocated: the
limited levels share the nominal limits' sum, each at least ``nominal - lendable`` (``lendablePercent``) and its
demand's high watermark up to its nominal limit, at most ``nominal + borrowing`` (``borrowingLimitPercent``, none in
the bootstrap objects: the server limit), fairly in proportion to the smoothed demand
(conc_alloc.go computeConcurrencyAllocation). The exempt level's demand comes off the sum first.

The max-in-flight mode (``--enable-priority-and-fairness=false``) admits at most ``--max-requests-inflight``
(400) read-only and ``--max-mutating-requests-inflight`` (200) mutating requests at once per instance (0: no
limit) and rejects the rest with 429 at once.

Seats are tracked by their release times: the apiserver knows when a request will finish as it dispatches
it, so admission needs no engine event unless requests wait. A DeleteCollection, whose end depends on the deletes it
makes one after another, holds its seats (:data:`HELD`) until it says when they free up.
"""

from __future__ import annotations

import hashlib
import heapq
import math
import struct
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from kbench.apiserver.workestimator import (
    DEFAULT_CONFIG,
    ObjectCountTracker,
    Stats,
    WatchTracker,
    WorkEstimate,
    WorkEstimator,
    WorkEstimatorConfig,
    level_max_seats,
    request_name,
)


@dataclass(frozen=True)
class Level:
    """A PriorityLevelConfiguration: nominalConcurrencyShares, lendablePercent, borrowingLimitPercent (None: no
    limit) and queuing (queues, handSize, queueLengthLimit)."""

    name: str
    shares: int
    queues: int = 0
    hand: int = 0
    queue_length: int = 0
    """0 queues: reject when full (catch-all); exempt levels have no limit."""
    exempt: bool = False
    lendable_percent: int = 0
    borrowing_limit_percent: int | None = None


LEVELS = (
    Level("exempt", 0, exempt=True),
    Level("system", 30, 64, 6, 50, lendable_percent=33),
    Level("node-high", 40, 64, 6, 50, lendable_percent=25),
    Level("leader-election", 10, 16, 4, 50),
    Level("workload-high", 40, 128, 6, 50, lendable_percent=50),
    Level("workload-low", 100, 128, 6, 50, lendable_percent=90),
    Level("global-default", 20, 128, 6, 50, lendable_percent=50),
    Level("catch-all", 5),
)
"""The bootstrap PriorityLevelConfigurations (apiserver/pkg/apis/flowcontrol/bootstrap/default.go, v1.35):
nominalConcurrencyShares, lendablePercent (exempt, leader-election and catch-all 0) and queuing; none sets
borrowingLimitPercent (no limit on borrowing)."""
BORROWING_ADJUSTMENT_PERIOD = 10.0
"""apf_controller.go borrowingAdjustmentPeriod: how often the current concurrency limits are re-allocated."""
SEAT_DEMAND_SMOOTHING_COEFFICIENT = 0.977
"""apf_controller.go seatDemandSmoothingCoefficient (a 5-minute half-life of the smoothed seat demand)."""
MIN_TARGET = 0.001
"""conc_alloc.go MinTarget: a smaller allocation target counts as this."""


MUTATING = frozenset(("create", "update", "patch", "delete", "deletecollection"))
"""Mutating verbs: all but get, list and watch (apiserver/pkg/server/filters/maxinflight.go nonMutatingRequestVerbs)."""
HELD = math.inf
"""What ``dispatch()`` returns for a request whose end is not known when it starts (DeleteCollection): it holds its
seats until it calls ``req.held(at)``, which flow control set, with the time they free up."""


def classify(req) -> tuple[str, str]:
    """(priority level, flow schema + distinguisher) by the bootstrap FlowSchemas, in precedence order.

    A request has ``verb``, ``resource_name``, ``namespace``, ``user``, ``groups``, ``seats`` and ``held``; flow
    control sets its ``arrival`` and calls ``dispatch()`` (which returns when its seats free up, or :data:`HELD`) or
    ``reject()``."""
    user, groups, resource = req.user, req.groups, req.resource_name
    if "system:masters" in groups:
        return "exempt", "exempt"
    if (
        user in ("system:kube-controller-manager", "system:kube-scheduler", "system:cloud-controller-manager")
        and resource == "leases"
        and req.namespace == "kube-system"
    ):
        return "leader-election", f"system-leader-election/{user}"
    if "system:nodes" in groups:
        if resource in ("nodes", "leases"):
            return "node-high", f"system-node-high/{user}"
        return "system", f"system-nodes/{user}"
    if user in ("system:kube-controller-manager", "system:kube-scheduler", "system:cloud-controller-manager"):
        return "workload-high", f"{user.removeprefix('system:')}/{user}"
    if user.startswith("system:serviceaccount:kube-system:"):
        return "workload-high", f"kube-system-service-accounts/{user}"
    if user.startswith("system:serviceaccount:"):
        return "workload-low", f"service-accounts/{user}"
    if user:
        return "global-default", f"global-default/{user}"
    return "catch-all", "catch-all"


def flow_hash(flow: str) -> int:
    """hashFlowID: the first 8 bytes (little endian) of sha256(schema, 0, distinguisher)."""
    schema, _, distinguisher = flow.partition("/")
    digest = hashlib.sha256(schema.encode() + b"\0" + distinguisher.encode()).digest()
    return struct.unpack("<Q", digest[:8])[0]


def deal(hash_value: int, deck: int, hand: int) -> list[int]:
    """shufflesharding.Dealer.Deal: ``hand`` distinct queues out of ``deck`` from one hash value."""
    remainders = []
    for i in range(hand):
        nxt = hash_value // (deck - i)
        remainders.append(hash_value - (deck - i) * nxt)
        hash_value = nxt
    cards = []
    for i in range(hand):
        card = remainders[i]
        for j in range(i, 0, -1):
            if card >= remainders[j - 1]:
                card += 1
        cards.append(card)
    return cards


def go_round(x: float) -> int:
    """Go's math.Round: halves away from zero (Python's round() rounds halves to even)."""
    return int(math.floor(abs(x) + 0.5)) * (1 if x >= 0 else -1)


class Integrator:
    """fairqueuing.Integrator: the time-weighted average, standard deviation and maximum of a value since the last
    reset; ``set(x, at)`` takes the time of the change (kbench learns of seat releases after the fact)."""

    def __init__(self, at: float) -> None:
        self.last, self.x, self.low, self.high = at, 0.0, 0.0, 0.0
        self.elapsed = self.integral = self.integral_sq = 0.0

    def set(self, x: float, at: float) -> None:
        """The value is ``x`` from ``at`` on (the time before ``at`` integrated at the old value)."""
        dt = at - self.last
        if dt > 0:
            old = self.x
            self.elapsed += dt
            self.integral += old * dt
            self.integral_sq += old * old * dt
            self.last = at
        self.x = x
        if x < self.low:
            self.low = x
        elif x > self.high:
            self.high = x

    def reset(self, at: float) -> tuple[float, float, float, float]:
        """(duration, average, deviation, max) up to ``at``; the integration starts again at ``at``."""
        self.set(self.x, at)  # integrate up to ``at``
        duration, high = self.elapsed, self.high
        avg = dev = math.nan
        if duration > 0:
            avg = self.integral / duration
            variance = self.integral_sq / duration - avg * avg
            dev = math.sqrt(variance) if variance >= 0 else math.nan
        self.elapsed = self.integral = self.integral_sq = 0.0
        self.low = self.high = self.x
        return duration, avg, dev, high


@dataclass
class SeatDemandStats:
    """apf_controller.go seatDemandStats: last period's average, deviation and high watermark of seat demand
    (seats in use + seats waiting), and the smoothed envelope ``max(avg + stdDev, A x smoothed + (1 - A) x
    (avg + stdDev))``."""

    avg: float = 0.0
    std_dev: float = 0.0
    high_watermark: int = 0
    smoothed: float = 0.0

    def update(self, duration: float, avg: float, dev: float, high: float) -> None:
        """seatDemandStats.update with one period's integrator results."""
        self.high_watermark = go_round(high)
        if duration <= 0:
            return
        if math.isnan(dev):
            dev = 0.0
        self.avg, self.std_dev = avg, dev
        envelope = avg + dev
        a = SEAT_DEMAND_SMOOTHING_COEFFICIENT
        self.smoothed = max(envelope, a * self.smoothed + (1 - a) * envelope)


def compute_concurrency_allocation(required: int, items: list[tuple[float, float, float]]) -> tuple[list[float], float]:
    """conc_alloc.go computeConcurrencyAllocation: allocations summing to ``required``, each within its (lower,
    upper) bound and otherwise ``fairProp x target``, for items (target, lower, upper); returns (allocs, fairProp).

    Raises ValueError when no allocation fits the bounds."""
    if required < 0:
        raise ValueError("negative sums are not supported")
    eps = 1e-7
    targets = [max(target, MIN_TARGET) for target, _, _ in items]
    for target, lower, upper in items:
        if lower < 0 or target < lower or upper < lower:
            raise ValueError(f"bad allocation item target={target} lower={lower} upper={upper}")
    rel_lower = [lower / t for (_, lower, _), t in zip(items, targets, strict=True)]
    rel_upper = [upper / t for (_, _, upper), t in zip(items, targets, strict=True)]
    low_sum, high_sum = sum(i[1] for i in items), sum(i[2] for i in items)
    if low_sum - required > eps:
        raise ValueError(f"lower bounds sum to {low_sum}, which is higher than the required sum of {required}")
    if required - high_sum > eps:
        raise ValueError(f"upper bounds sum to {high_sum}, which is lower than the required sum of {required}")
    if required == 0:
        return [0.0] * len(items), 0.0
    if low_sum - required > -eps:
        return [i[1] for i in items], min(rel_lower)
    if required - high_sum > -eps:
        return [i[2] for i in items], max(rel_upper)
    fair = required / sum(targets)
    if max(rel_lower) <= fair <= min(rel_upper):
        return [t * fair for t in targets], fair
    fair = _fair_prop(required, low_sum, targets, rel_lower, rel_upper)
    allocs = [max(i[1], min(i[2], fair * t)) for i, t in zip(items, targets, strict=True)]
    return allocs, fair


def _fair_prop(required: float, low_sum: float, targets, rel_lower, rel_upper) -> float:
    """The bound-constrained fairProp: walk the sorted relative bounds, growing the allocation of the items between
    their bounds, until the allocations reach ``required``."""
    bounds = sorted(
        [(b, i, True) for i, b in enumerate(rel_lower)] + [(b, i, False) for i, b in enumerate(rel_upper)],
        key=lambda e: e[0],
    )
    total, fair, sensitive = low_sum, min(rel_lower), 0.0
    for bound, i, lower in bounds:
        if bound > fair and sensitive > 0:
            step = (required - total) / sensitive
            if fair + step <= bound:
                return fair + step
            total += (bound - fair) * sensitive
        fair = max(fair, bound)
        sensitive += targets[i] if lower else -targets[i]
    raise ValueError("impossible: ran out of bounds to consider in bound-constrained problem")


@dataclass
class _Level:
    config: Level
    limit: int
    """The current concurrency limit (currentCL), re-allocated every BORROWING_ADJUSTMENT_PERIOD."""
    nominal: int = 0
    min_cl: int = 0
    """nominal less what it may lend (lendablePercent)."""
    max_cl: int = 0
    """nominal plus what it may borrow (borrowingLimitPercent, else the server limit)."""
    max_seats: int = 0
    """The widest work estimate at this level (0: the estimator's own limits)."""
    busy: list[float] = field(default_factory=list)
    """Release times of the seats in use (a heap, one entry per seat), but for the held ones."""
    held: int = 0
    """Seats in use by requests whose end is not known yet (:data:`HELD`)."""
    queues: list[deque] = field(default_factory=list)
    queue_seats: list[int] = field(default_factory=list)
    """Seats waiting in each queue."""
    waiting: int = 0
    seats_waiting: int = 0
    next_queue: int = 0
    demand: Integrator = field(default_factory=lambda: Integrator(0.0))
    """Seat demand: seats in use + seats waiting."""
    stats: SeatDemandStats = field(default_factory=SeatDemandStats)

    def note_demand(self, at: float) -> None:
        """The seat demand changed at ``at``."""
        self.demand.set(len(self.busy) + self.held + self.seats_waiting, at)

    def fits(self, seats: int) -> bool:
        """queueSet.canAccommodateSeatsLocked: a request wider than the limit runs alone."""
        if self.config.exempt:
            return True
        if seats > self.limit:
            return not self.busy and not self.held
        return len(self.busy) + self.held + seats <= self.limit


class PriorityAndFairness:
    """APF at one apiserver instance; ``wake(delay, callback)`` schedules engine events (waiting requests, and the
    re-allocation of concurrency limits every 10 s).

    ``server_limit`` is the server concurrency limit (``--max-requests-inflight`` + ``--max-mutating-requests-
    inflight``), ``wait_limit`` the longest a request waits in a queue (``--request-timeout`` / 4). ``stats``
    (``resource -> Stats``) enables the work estimator (:mod:`kbench.apiserver.workestimator`); without it a
    request occupies its own ``seats``. ``levels`` and ``classifier`` (``req -> (level name, flow)``) default to the
    bootstrap PriorityLevelConfigurations and FlowSchemas.
    """

    def __init__(
        self,
        wake: Callable[[float, Callable], object],
        now: Callable[[], float],
        server_limit: int,
        wait_limit: float,
        stats: Callable[[str], Stats | None] | None = None,
        estimator_config: WorkEstimatorConfig = DEFAULT_CONFIG,
        levels: tuple[Level, ...] = LEVELS,
        classifier: Callable[[Any], tuple[str, str]] = classify,
    ) -> None:
        if server_limit < 1:
            raise ValueError(f"server_limit: must be a positive number of seats; got {server_limit!r}")
        self.wait_limit, self.server_limit = wait_limit, server_limit
        self._wake, self._now = wake, now
        self.classifier = classifier
        share_sum = sum(level.shares for level in levels)
        self.levels = {level.name: self._new_level(level, server_limit, share_sum) for level in levels}
        self.nominal_sum = sum(level.nominal for level in self.levels.values())
        self.watches = WatchTracker()
        self.estimator = None
        if stats is not None:
            counts = ObjectCountTracker(now, stats)
            self.estimator = WorkEstimator(
                counts.get,
                self.watches.watch_count,
                lambda name: self.levels[name].max_seats,
                estimator_config,
            )
        self._wakeup_at: dict[str, float] = {}
        self._hands: dict[tuple[str, str], list[int]] = {}
        self._classes: dict[tuple, tuple[str, str, _Level]] = {}
        """(level, flow, level state) by (user, groups, resource, namespace): what :func:`classify` depends on."""
        self.update_borrowing()  # wait.Until runs it at once, then every borrowingAdjustmentPeriod

    @staticmethod
    def _new_level(level: Level, server_limit: int, share_sum: int) -> _Level:
        """finishQueueSetReconfigsLocked: nominal, min and max concurrency limits, max seats, initial current CL."""
        nominal = math.ceil(server_limit * level.shares / share_sum)
        lendable = go_round(nominal * level.lendable_percent / 100)
        borrowing = server_limit
        if level.borrowing_limit_percent is not None:
            borrowing = go_round(nominal * level.borrowing_limit_percent / 100)
        max_seats = level_max_seats(nominal, level.hand) if level.queues else 0
        state = _Level(level, nominal - lendable // 2, nominal, nominal - lendable, nominal + borrowing, max_seats)
        state.queues = [deque() for _ in range(level.queues)]
        state.queue_seats = [0] * level.queues
        return state

    # -- borrowing ----------------------------------------------------------------------------------------
    def update_borrowing(self, _=None) -> None:
        """updateBorrowingLocked: from each level's seat demand over the last period, re-allocate the current
        concurrency limits (the non-exempt levels share what the exempt ones leave of the nominal sum, each between
        its floor and max CL, fairly in proportion to its smoothed demand); then dispatch what now fits."""
        now = self._now()
        for level in self.levels.values():
            self._release(level, now)
            level.stats.update(*level.demand.reset(now))
        limits = self.allocate()
        for name, level in self.levels.items():
            level.limit = limits[name]
            if level.waiting:
                self._schedule(name, level)
        self._wake(BORROWING_ADJUSTMENT_PERIOD, self.update_borrowing)

    def allocate(self) -> dict[str, int]:
        """The current concurrency limits for the levels' seat demand statistics (updateBorrowingLocked)."""
        remaining = self.nominal_sum
        floors: dict[str, int] = {}
        items: dict[str, tuple[float, float, float]] = {}
        for name, level in self.levels.items():
            high = level.stats.high_watermark
            if level.config.exempt:
                floors[name] = max(level.min_cl, high)
                remaining -= floors[name]
                continue
            floors[name] = max(level.min_cl, min(level.nominal, high))
            items[name] = (max(floors[name], level.stats.smoothed), floors[name], level.max_cl)
        min_sum = sum(self.levels[name].min_cl for name in items)
        floor_sum = sum(floors[name] for name in items)
        limits = {name: floors[name] for name in self.levels if name not in items}
        if remaining <= min_sum:
            limits.update({name: self.levels[name].min_cl for name in items})
        elif remaining <= floor_sum:
            share = (remaining - min_sum) / (floor_sum - min_sum)
            for name in items:
                low = self.levels[name].min_cl
                limits[name] = low + go_round((floors[name] - low) * share)
        else:
            try:
                allocs, _ = compute_concurrency_allocation(self.nominal_sum, list(items.values()))
            except ValueError:  # upstream logs and keeps the current limits
                allocs = [self.levels[name].limit for name in items]
            limits.update({name: go_round(a) for name, a in zip(items, allocs, strict=True)})
        return limits

    # -- requests -----------------------------------------------------------------------------------------
    def arrive(self, req) -> None:
        """Dispatch now, queue, or reject (``req.reject``) the request."""
        key = (req.user, req.groups, req.resource_name, req.namespace)
        cls = self._classes.get(key)
        if cls is None:
            name, flow = self.classifier(req)
            cls = self._classes[key] = (name, flow, self.levels[name])
        name, flow, level = cls
        now = self._now()
        if self.estimator is None:  # the request occupies its own seats
            work = WorkEstimate(req.seats)
        else:
            work = self.estimator.estimate(req, name)
            req.seats = work.max_seats
        if level.busy and level.busy[0] <= now:
            self._release(level, now)
        if not level.waiting and level.fits(work.max_seats):
            self._start(name, level, req, work, now)
            return
        if not level.queues:
            req.reject()
            return
        self._enqueue(name, flow, level, req, work, now)

    def watching(self, req, watch) -> None:
        """A watch request started its watch: count it for the mutating work estimate (RegisterWatch) until it
        stops (``watch.on_stop``)."""
        flt = req.filter
        forget = self.watches.register(req.resource_name, req.namespace, request_name(req), flt.fields if flt else ())
        watch.on_stop.append(forget)

    def _enqueue(self, name: str, flow: str, level: _Level, req, work: WorkEstimate, now: float) -> None:
        """Queue the request in the shortest queue of its flow's hand (shuffle sharding), or reject it when that queue
        is full (queueLengthLimit) and the level has no free seat."""
        hand = self._hands.get((name, flow))
        if hand is None:
            hand = self._hands[name, flow] = deal(flow_hash(flow), level.config.queues, level.config.hand)
        index = min(hand, key=level.queue_seats.__getitem__)
        queue = level.queues[index]
        if len(level.busy) + level.held >= level.limit and len(queue) >= level.config.queue_length:
            req.reject()
            return
        req.arrival = now
        queue.append((req, work))
        level.queue_seats[index] += work.max_seats
        level.waiting += 1
        level.seats_waiting += work.max_seats
        level.note_demand(now)
        self._schedule(name, level)

    def _start(self, name: str, level: _Level, req, work: WorkEstimate, now: float) -> None:
        """Dispatch (at ``now``): the request occupies its seats until it ends and ``additional_latency`` after."""
        release = req.dispatch()
        seats = work.max_seats
        if release == HELD:
            req.held = partial(self._unhold, name, level, seats, work.additional_latency)
            level.held += seats
        else:
            release += work.additional_latency
            for _ in range(seats):
                heapq.heappush(level.busy, release)
        level.note_demand(now)

    def _unhold(self, name: str, level: _Level, seats: int, additional_latency: float, at: float) -> None:
        """A held request ends at ``at``: its seats free up ``additional_latency`` later; waiting requests may get
        them."""
        at += additional_latency
        level.held -= seats
        for _ in range(seats):
            heapq.heappush(level.busy, at)
        if level.waiting:
            self._schedule(name, level)

    @staticmethod
    def _release(level: _Level, now: float) -> None:
        """Free the seats whose release time has come, noting the seat demand at each release."""
        while level.busy and level.busy[0] <= now:
            at = heapq.heappop(level.busy)
            level.note_demand(at)

    def _schedule(self, name: str, level: _Level) -> None:
        if level.busy:
            at = level.busy[0]
        elif level.held:  # all held: their release schedules
            return
        else:
            at = self._now()
        if self._wakeup_at.get(name, math.inf) <= at:
            return
        self._wakeup_at[name] = at
        self._wake(max(0.0, at - self._now()), lambda _: self._serve(name))

    def _serve(self, name: str) -> None:
        """Seats were released: dispatch waiting requests round robin over the level's queues."""
        self._wakeup_at.pop(name, None)
        level = self.levels[name]
        now = self._now()
        self._release(level, now)
        n = len(level.queues)
        while level.waiting:
            for step in range(n):
                index = (level.next_queue + step) % n
                if level.queues[index]:
                    break
            req, work = level.queues[index][0]
            if now - req.arrival > self.wait_limit:
                self._dequeue(level, index, work, now)
                level.next_queue = (level.next_queue + step + 1) % n
                req.reject()
                continue
            if not level.fits(work.max_seats):
                break
            level.next_queue = (level.next_queue + step + 1) % n
            self._dequeue(level, index, work, now)
            self._start(name, level, req, work, now)
        if level.waiting:
            self._schedule(name, level)

    @staticmethod
    def _dequeue(level: _Level, index: int, work: WorkEstimate, now: float) -> None:
        """Take the head of queue ``index`` out of the level's waiting requests."""
        level.queues[index].popleft()
        level.queue_seats[index] -= work.max_seats
        level.waiting -= 1
        level.seats_waiting -= work.max_seats
        level.note_demand(now)


class MaxInFlight:
    """The max-in-flight filter (apiserver/pkg/server/filters/maxinflight.go WithMaxInFlightLimit): at most
    ``readonly`` read-only and ``mutating`` mutating requests at once (0: no limit for that kind); the rest get 429 at
    once, except a ``system:masters`` request, served untracked. Watches are long-running requests
    (BasicLongRunningRequestCheck): served untracked, they take no slot."""

    def __init__(self, now: Callable[[], float], readonly: int, mutating: int) -> None:
        self.limits = {False: readonly or math.inf, True: mutating or math.inf}
        self.busy: dict[bool, list[float]] = {False: [], True: []}
        self._now = now

    def arrive(self, req) -> None:
        """Dispatch the request if its kind has a free slot, else reject it (``req.reject``)."""
        if req.verb == "watch":  # "Skip tracking long running events."
            req.dispatch()
            return
        mutating = req.verb in MUTATING
        busy, now = self.busy[mutating], self._now()
        while busy and busy[0] <= now:
            heapq.heappop(busy)
        if len(busy) >= self.limits[mutating]:
            if "system:masters" in req.groups:  # user.SystemPrivilegedGroup "should always get an answer"
                req.dispatch()
            else:
                req.reject()
            return
        release = req.dispatch()
        if release == HELD:
            req.held = lambda at: self._unhold(busy, at)
        heapq.heappush(busy, release)

    def watching(self, req, watch) -> None:
        """The max-in-flight filter counts no watches (no work estimator)."""

    @staticmethod
    def _unhold(busy: list[float], at: float) -> None:
        """A held request's slot frees up at ``at``."""
        busy.remove(HELD)
        busy.append(at)
        heapq.heapify(busy)
