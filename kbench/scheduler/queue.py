"""The scheduling queue (``pkg/scheduler/backend/queue``): activeQ, backoffQ and unschedulable pods.

- activeQ pops the highest priority first, then the earliest timestamp (PrioritySort);
- a pod that failed waits out its backoff, ``initial x 2^(attempts-1)`` capped at the
  maximum (1 s and 10 s by default), in backoffQ, flushed to activeQ every second;
- an unschedulable pod waits in the unschedulable pool until a cluster event one of
  the plugins that rejected it cares about (queueing hints, coarsened to event
  kinds), or until it has waited 5 minutes (checked every 30 s); then it goes to
  backoffQ if still backing off, else to activeQ.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from itertools import count
from typing import Any

from kbench.api.core import Pod
from kbench.scheduler.plugins.queuesort import priority_sort_key
from kbench.scheduler.plugins.registry import REGISTRY
from kbench.sim import Engine, Event

FLUSH_BACKOFF_INTERVAL = 1.0
"""backoffQ is flushed every second (waitUntilAlignedWithOrderingWindow)."""
FLUSH_UNSCHEDULABLE_INTERVAL = 30.0
"""flushUnschedulablePodsLeftover runs every 30 s."""
MAX_IN_UNSCHEDULABLE = 300.0
"""DefaultPodMaxInUnschedulablePodsDuration, 5 minutes."""


def registered_events() -> dict[str, frozenset[tuple[str, str]]]:
    """Per registered plugin, the cluster events it registers (EventsToRegister, coarsened to (kind, action))."""
    return {name: cls.events for name, cls in REGISTRY.items()}


@dataclass
class QueuedPod:
    """A pod in the queue with its attempts and timestamps (QueuedPodInfo)."""

    pod: Pod
    timestamp: float
    attempts: int = 0
    initial_attempt: float = 0.0
    rejectors: set[str] = field(default_factory=set)
    unschedulable_since: float = 0.0


class SchedulingQueue:
    """The three queues on the engine's clock; :meth:`pop` returns an event that succeeds with a QueuedPod.

    Parameters
    ----------
    engine : Engine
    initial_backoff, max_backoff : float
        podInitialBackoffSeconds and podMaxBackoffSeconds.
    sort_key : callable, optional
        The profile's QueueSort plugin as a heap key (default: PrioritySort's).
    events : mapping, optional
        Plugin name -> the cluster events that may help a pod it rejected (default: the registered plugins').
    """

    def __init__(
        self,
        engine: Engine,
        initial_backoff: float = 1.0,
        max_backoff: float = 10.0,
        sort_key: Callable[[QueuedPod], Any] | None = None,
        events: Mapping[str, frozenset[tuple[str, str]]] | None = None,
    ) -> None:
        self.engine = engine
        self.initial_backoff, self.max_backoff = initial_backoff, max_backoff
        self.sort_key = sort_key or priority_sort_key
        self.events = registered_events() if events is None else events
        self._active: list[tuple] = []
        self._backoff: list[tuple] = []
        self.unschedulable: dict[str, QueuedPod] = {}
        self._seq = count()
        self._waiter: Event | None = None
        self._ticking = False
        self.gate: Callable[[Pod], bool] | None = None
        """PreEnqueue: a pod it holds back waits in the unschedulable pool instead of entering activeQ."""

    def __len__(self) -> int:
        return len(self._active) + len(self._backoff) + len(self.unschedulable)

    @property
    def pending(self) -> tuple[int, int, int]:
        """(active, backoff, unschedulable) sizes."""
        return len(self._active), len(self._backoff), len(self.unschedulable)

    def _start_ticking(self) -> None:
        if not self._ticking:
            self._ticking = True
            self.engine.process(self._flushers(), name="scheduling-queue-flush")

    def _flushers(self):
        ticks = 0
        while True:
            yield FLUSH_BACKOFF_INTERVAL
            ticks += 1
            self._flush_backoff()
            if ticks % int(FLUSH_UNSCHEDULABLE_INTERVAL / FLUSH_BACKOFF_INTERVAL) == 0:
                self._flush_unschedulable()
            if not self._backoff and not self.unschedulable:
                self._ticking = False
                return

    def add(self, pod: Pod) -> None:
        """A new pending pod goes straight to activeQ."""
        self._push_active(QueuedPod(pod, self.engine.now, initial_attempt=self.engine.now))

    def _push_active(self, qp: QueuedPod) -> None:
        if self.gate is not None and self.gate(qp.pod):
            qp.unschedulable_since = self.engine.now
            self.unschedulable[qp.pod.key] = qp
            self._start_ticking()
            return
        heapq.heappush(self._active, (self.sort_key(qp), next(self._seq), qp))
        if self._waiter is not None and not self._waiter.triggered:
            waiter, self._waiter = self._waiter, None
            waiter.succeed(self._pop_now())

    def _pop_now(self) -> QueuedPod:
        qp = heapq.heappop(self._active)[2]
        qp.attempts += 1
        return qp

    def pop(self) -> Event:
        """An event that succeeds with the next pod to schedule (waits while activeQ is empty)."""
        ev = Event(self.engine)
        if self._active:
            ev.succeed(self._pop_now())
        else:
            self._waiter = ev
        return ev

    def backoff_duration(self, attempts: int) -> float:
        """calculateBackoffDuration: initial doubled per further attempt, capped at the maximum."""
        if attempts <= 0:
            return 0.0
        duration = self.initial_backoff
        for _ in range(1, attempts):
            if duration > self.max_backoff - duration:
                return self.max_backoff
            duration += duration
        return duration

    def _push_backoff(self, qp: QueuedPod) -> None:
        expiry = qp.timestamp + self.backoff_duration(qp.attempts)
        if expiry <= self.engine.now:
            self._push_active(qp)
        else:
            heapq.heappush(self._backoff, (expiry, next(self._seq), qp))
            self._start_ticking()

    def add_unschedulable(self, qp: QueuedPod, rejectors: Iterable[str]) -> None:
        """A pod that failed a cycle: to the unschedulable pool (backoffQ if no plugin rejected it)."""
        qp.timestamp = self.engine.now
        qp.rejectors = set(rejectors)
        if not qp.rejectors:
            self._push_backoff(qp)
            return
        qp.unschedulable_since = self.engine.now
        self.unschedulable[qp.pod.key] = qp
        self._start_ticking()

    def _flush_backoff(self) -> None:
        while self._backoff and self._backoff[0][0] <= self.engine.now:
            self._push_active(heapq.heappop(self._backoff)[2])

    def _flush_unschedulable(self) -> None:
        stale = [
            qp for qp in self.unschedulable.values() if self.engine.now - qp.unschedulable_since > MAX_IN_UNSCHEDULABLE
        ]
        for qp in stale:
            del self.unschedulable[qp.pod.key]
            self._push_backoff(qp)

    def on_event(self, kind: str, action: str) -> int:
        """A cluster event: move the unschedulable pods it may help; returns how many moved."""
        moved = [
            qp
            for qp in self.unschedulable.values()
            if any((kind, action) in self.events.get(name, frozenset()) for name in qp.rejectors)
        ]
        for qp in moved:
            del self.unschedulable[qp.pod.key]
            self._push_backoff(qp)
        return len(moved)

    def activate(self, pod_key: str) -> None:
        """Activate: an unschedulable or backing-off pod goes to activeQ now."""
        qp = self.unschedulable.pop(pod_key, None)
        if qp is None:
            entry = next((e for e in self._backoff if e[2].pod.key == pod_key), None)
            if entry is None:
                return
            self._backoff.remove(entry)
            heapq.heapify(self._backoff)
            qp = entry[2]
        self._push_active(qp)

    def delete(self, pod_key: str) -> None:
        """Forget a pending pod (deleted before it was scheduled)."""
        self.unschedulable.pop(pod_key, None)
        self._active = [e for e in self._active if e[2].pod.key != pod_key]
        heapq.heapify(self._active)
        self._backoff = [e for e in self._backoff if e[2].pod.key != pod_key]
        heapq.heapify(self._backoff)
