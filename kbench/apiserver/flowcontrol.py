"""Request admission at one apiserver instance: API Priority and Fairness, or the older max-in-flight limits.

APF follows k8s.io/apiserver/pkg/util/flowcontrol (v1.35) and its bootstrap configuration
(apiserver/pkg/apis/flowcontrol/bootstrap/default.go): FlowSchemas, matched by precedence, map a request
to a priority level and a flow (schema name + user or namespace); a level's nominal concurrency limit is
``ceil(server limit x its nominalConcurrencyShares / sum of shares)`` with the server limit the sum of
``--max-requests-inflight`` (400) and ``--max-mutating-requests-inflight`` (200); a request that finds no
free seat waits in one of the level's queues, chosen by shuffle sharding (the flow's hash deals a hand of
``handSize`` queues; the one with the least waiting work wins), and is rejected with 429 when that queue
holds ``queueLengthLimit`` requests or after waiting ``--request-timeout / 4`` (15 s; at most 1 min).
The flags come from :class:`kbench.apiserver.config.KubeAPIServerConfig`; the priority levels are upstream's
bootstrap objects (:data:`LEVELS`), API objects rather than flags upstream. Queues are served round robin
(equal-cost fair queuing). LIST requests take ``ceil(objects / 100)`` seats, at most 10 (the work
estimator). Not modelled: borrowing between levels (``lendablePercent``), watch initialization seats.

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


@dataclass(frozen=True)
class Level:
    """A PriorityLevelConfiguration: its nominalConcurrencyShares and queuing (queues, handSize,
    queueLengthLimit)."""

    name: str
    shares: int
    queues: int = 0
    hand: int = 0
    queue_length: int = 0
    """0 queues: reject when full (catch-all); exempt levels have no limit."""
    exempt: bool = False


LEVELS = (
    Level("exempt", 0, exempt=True),
    Level("system", 30, 64, 6, 50),
    Level("node-high", 40, 64, 6, 50),
    Level("leader-election", 10, 16, 4, 50),
    Level("workload-high", 40, 128, 6, 50),
    Level("workload-low", 100, 128, 6, 50),
    Level("global-default", 20, 128, 6, 50),
    Level("catch-all", 5),
)
"""The bootstrap PriorityLevelConfigurations: nominalConcurrencyShares and queuing."""


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


@dataclass
class _Level:
    config: Level
    limit: int
    busy: list[float] = field(default_factory=list)
    """Release times of the seats in use (a heap, one entry per seat)."""
    queues: list[deque] = field(default_factory=list)
    waiting: int = 0
    next_queue: int = 0


class PriorityAndFairness:
    """APF at one apiserver instance; ``wake(delay, callback)`` schedules engine events when requests wait.

    ``server_limit`` is the server concurrency limit (``--max-requests-inflight`` + ``--max-mutating-requests-
    inflight``), ``wait_limit`` the longest a request waits in a queue (``--request-timeout`` / 4).
    """

    def __init__(
        self,
        wake: Callable[[float, Callable], object],
        now: Callable[[], float],
        server_limit: int,
        wait_limit: float,
    ) -> None:
        if server_limit < 1:
            raise ValueError(f"server_limit: must be a positive number of seats; got {server_limit!r}")
        self.wait_limit = wait_limit
        total = sum(level.shares for level in LEVELS)
        self.levels = {
            level.name: _Level(
                level,
                0 if level.exempt else math.ceil(server_limit * level.shares / total),
                queues=[deque() for _ in range(level.queues)],
            )
            for level in LEVELS
        }
        self._wake, self._now = wake, now
        self._wakeup_at: dict[str, float] = {}
        self._hands: dict[tuple[str, str], list[int]] = {}
        self._classes: dict[tuple, tuple[str, str]] = {}

    def arrive(self, req) -> None:
        """Dispatch now, queue, or reject (``req.reject``) the request."""
        key = (req.user, req.groups, req.resource_name, req.namespace)
        cls = self._classes.get(key)
        if cls is None:
            cls = self._classes[key] = classify(req)
        name, flow = cls
        level = self.levels[name]
        now = self._now()
        if level.config.exempt:
            req.dispatch()
            return
        self._release(level, now)
        seats = min(req.seats, level.limit)
        if not level.waiting and len(level.busy) + seats <= level.limit:
            self._start(name, level, req, seats)
            return
        if not level.queues:
            req.reject()
            return
        self._enqueue(name, flow, level, req, now)

    def _enqueue(self, name: str, flow: str, level: _Level, req, now: float) -> None:
        """Queue the request in the shortest queue of its flow's hand (shuffle sharding), or reject it when that queue
        is full (queueLengthLimit)."""
        hand = self._hands.get((name, flow))
        if hand is None:
            hand = self._hands[name, flow] = deal(flow_hash(flow), level.config.queues, level.config.hand)
        queue = min((level.queues[i] for i in hand), key=lambda q: sum(r.seats for r in q))
        if len(queue) >= level.config.queue_length:
            req.reject()
            return
        req.arrival = now
        queue.append(req)
        level.waiting += 1
        self._schedule(name, level)

    def _start(self, name: str, level: _Level, req, seats: int) -> None:
        release = req.dispatch()
        if release == HELD:
            req.held = lambda at: self._unhold(name, level, seats, at)
        for _ in range(seats):
            heapq.heappush(level.busy, release)

    def _unhold(self, name: str, level: _Level, seats: int, at: float) -> None:
        """A held request's seats free up at ``at``; waiting requests may get them."""
        for _ in range(seats):
            level.busy.remove(HELD)
        level.busy.extend([at] * seats)
        heapq.heapify(level.busy)
        if level.waiting:
            self._schedule(name, level)

    @staticmethod
    def _release(level: _Level, now: float) -> None:
        while level.busy and level.busy[0] <= now:
            heapq.heappop(level.busy)

    def _schedule(self, name: str, level: _Level) -> None:
        at = level.busy[0] if level.busy else self._now()
        if at == HELD or self._wakeup_at.get(name, math.inf) <= at:  # all held: their release schedules
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
                queue = level.queues[(level.next_queue + step) % n]
                if queue:
                    level.next_queue = (level.next_queue + step + 1) % n
                    break
            req = queue[0]
            if now - req.arrival > self.wait_limit:
                queue.popleft()
                level.waiting -= 1
                req.reject()
                continue
            seats = min(req.seats, level.limit)
            if len(level.busy) + seats > level.limit:
                break
            queue.popleft()
            level.waiting -= 1
            self._start(name, level, req, seats)
        if level.waiting:
            self._schedule(name, level)


class MaxInFlight:
    """The max-in-flight filter (WithMaxInFlightLimit): at most ``readonly`` read-only and ``mutating`` mutating
    requests at once (0: no limit for that kind); the rest get 429 at once."""

    def __init__(self, now: Callable[[], float], readonly: int, mutating: int) -> None:
        self.limits = {False: readonly or math.inf, True: mutating or math.inf}
        self.busy: dict[bool, list[float]] = {False: [], True: []}
        self._now = now

    def arrive(self, req) -> None:
        """Dispatch the request if its kind has a free slot, else reject it (``req.reject``)."""
        mutating = req.verb in MUTATING
        busy, now = self.busy[mutating], self._now()
        while busy and busy[0] <= now:
            heapq.heappop(busy)
        if len(busy) >= self.limits[mutating]:
            req.reject()
            return
        release = req.dispatch()
        if release == HELD:
            req.held = lambda at: self._unhold(busy, at)
        heapq.heappush(busy, release)

    @staticmethod
    def _unhold(busy: list[float], at: float) -> None:
        """A held request's slot frees up at ``at``."""
        busy.remove(HELD)
        busy.append(at)
        heapq.heapify(busy)
