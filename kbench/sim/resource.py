"""A FIFO resource with a fixed number of slots (CPU cores, worker pools, connections)."""

from __future__ import annotations

from collections import deque

from kbench.sim.engine import Engine, Event


class Resource:
    """``capacity`` slots handed out first come, first served.

    ``yield resource.acquire()`` waits for a slot; ``resource.release()`` frees
    one and hands it to the longest waiter.
    """

    __slots__ = ("engine", "capacity", "in_use", "_waiters")

    def __init__(self, engine: Engine, capacity: int) -> None:
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1:
            raise ValueError(f"capacity must be a positive integer, got {capacity!r}")
        self.engine = engine
        self.capacity = capacity
        self.in_use = 0
        self._waiters: deque[Event] = deque()

    @property
    def queued(self) -> int:
        """Requests waiting for a slot."""
        return len(self._waiters)

    def acquire(self) -> Event:
        """An event that succeeds when a slot is granted."""
        ev = Event(self.engine)
        if self.in_use < self.capacity:
            self.in_use += 1
            ev.succeed()
        else:
            self._waiters.append(ev)
        return ev

    def cancel(self, request: Event) -> None:
        """Give up a request from :meth:`acquire` (its process was interrupted): drop it from the queue, or
        release the slot if it had been granted."""
        if request.triggered:
            self.release()
        else:
            self._waiters.remove(request)

    def release(self) -> None:
        """Free a slot; the next waiter, if any, gets it now."""
        if self.in_use <= 0:
            raise RuntimeError("release() without a matching acquire()")
        if self._waiters:
            self._waiters.popleft().succeed()
        else:
            self.in_use -= 1
