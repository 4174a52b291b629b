"""client-go's rate-limited workqueue (k8s.io/client-go/util/workqueue) on the engine."""

from __future__ import annotations

from collections import deque

from kbench.client.client import TokenBucket
from kbench.sim import Engine, Event

BASE_DELAY, MAX_DELAY = 0.005, 1000.0
"""DefaultControllerRateLimiter: ItemExponentialFailureRateLimiter(5 ms, 1000 s) ..."""
BUCKET_QPS, BUCKET_BURST = 10.0, 100
"""... and BucketRateLimiter(rate.NewLimiter(10, 100)), whichever waits longer."""


class WorkQueue:
    """Keys to process: a key is queued at most once, processed by one worker at a time, re-queued if it was
    added again while being processed; ``add_rate_limited`` backs a failing key off."""

    def __init__(
        self,
        engine: Engine,
        base_delay: float = BASE_DELAY,
        max_delay: float = MAX_DELAY,
        qps: float = BUCKET_QPS,
        burst: int = BUCKET_BURST,
    ) -> None:
        self.engine = engine
        self.base_delay, self.max_delay = base_delay, max_delay
        self.bucket = TokenBucket(qps, burst)
        self.queue: deque = deque()
        self.dirty: set = set()
        self.processing: set = set()
        self.failures: dict = {}
        self._getters: deque[Event] = deque()

    def __len__(self) -> int:
        return len(self.queue)

    def add(self, key) -> None:
        """Add: queue ``key`` unless it is queued already (or mark it to run again after its current processing)."""
        if key in self.dirty:
            return
        self.dirty.add(key)
        if key in self.processing:
            return
        self.queue.append(key)
        self._hand_out()

    def add_after(self, key, delay: float) -> None:
        """AddAfter: :meth:`add` ``delay`` seconds from now (at once if ``delay`` <= 0)."""
        if delay <= 0:
            self.add(key)
        else:
            self.engine.schedule(delay, self.add, key)

    def add_rate_limited(self, key) -> None:
        """AddRateLimited: add after the key's exponential backoff or the bucket's wait, whichever is longer."""
        failures = self.failures.get(key, 0)
        self.failures[key] = failures + 1
        backoff = min(self.base_delay * 2.0**failures, self.max_delay)
        self.add_after(key, max(backoff, self.bucket.reserve(self.engine.now)))

    def forget(self, key) -> None:
        """Forget: the key succeeded; its backoff starts over."""
        self.failures.pop(key, None)

    def get(self) -> Event:
        """An event that succeeds with the next key (marked as processing)."""
        ev = self.engine.event()
        self._getters.append(ev)
        self._hand_out()
        return ev

    def done(self, key) -> None:
        """Done: processing of ``key`` ended; if it was added meanwhile it is queued again."""
        self.processing.discard(key)
        if key in self.dirty:
            self.queue.append(key)
            self._hand_out()

    def _hand_out(self) -> None:
        while self.queue and self._getters:
            key = self.queue.popleft()
            self.dirty.discard(key)
            self.processing.add(key)
            self._getters.popleft().succeed(key)
