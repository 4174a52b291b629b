"""The watch cache of one resource at one apiserver instance (k8s.io/apiserver/pkg/storage/cacher).

It holds the current objects and a window of recent events, serves lists and watches without reading
etcd, and answers 410 Gone to a watch that starts before its window. The window is watch_cache.go's ring buffer of
``capacity`` events (v1.35): it starts at ``defaultLowerBoundCapacity`` (100); when an event finds it full it doubles
(up to ``defaultUpperBoundCapacity``, 102,400, for the default ``eventFreshDuration`` of 75 s) if its oldest event is
younger than eventFreshDuration, halves (down to 100) if the event a quarter of the capacity back is older than it,
and otherwise drops its oldest event (resizeCacheLocked). So a quiet resource keeps events for longer than 75 s, and a
busy one keeps at least 75 s of them up to the upper bound. A watch from ``rv`` gets 410 Gone when ``rv`` is older
than the first event held less one, once an event has left the buffer (getAllEventsSinceLocked). Like the cacher's
``triggerFunc`` for pods, watchers that select on an indexed field (Pods' ``spec.nodeName``) only see events
of their value, so a kubelet's watch costs nothing for other nodes' pods.

Events reach a watcher after the instance's dispatch delay; a watcher delivers all its events that have
arrived in one engine event (the client reads them off one HTTP stream).

A resource the apiserver does not cache (``--watch-cache=false``, or its ``--watch-cache-sizes`` size 0) is read from
etcd itself; kbench keeps the same structure for it as etcd's view of the resource (``compacted`` given): events are
kept back to etcd's compaction revision, a watch from before it gets 410 Gone, and the apiserver adds etcd's read
and watch delivery times.
"""

from __future__ import annotations

import builtins
import math
from collections import deque
from collections.abc import Callable, Mapping

from kbench.apiserver.objects import Filter, field_value, gone

EVENT_FRESH_DURATION = 75.0
"""cacher.go DefaultEventFreshDuration: defaultBookmarkFrequency (1m) + 15s (storagebackend
DefaultEventsHistoryWindow)."""
LOWER_BOUND_CAPACITY = 100
"""watch_cache.go defaultLowerBoundCapacity."""
UPPER_BOUND_CAPACITY = 100 * 1024
"""watch_cache.go defaultUpperBoundCapacity."""
INDEXED = {"pods": "spec.nodeName"}


def capacity_upper_bound(event_fresh_duration: float) -> int:
    """watch_cache.go capacityUpperBound: defaultUpperBoundCapacity for the default eventFreshDuration, doubled for
    each doubling of a longer one (capped below MaxInt32)."""
    if event_fresh_duration <= EVENT_FRESH_DURATION:
        return UPPER_BOUND_CAPACITY
    exponent = math.ceil(math.log2(event_fresh_duration / EVENT_FRESH_DURATION))
    exponent = min(exponent, math.floor(math.log2((2**31 - 1) / UPPER_BOUND_CAPACITY)))
    return UPPER_BOUND_CAPACITY << exponent


class Watch:
    """One watch stream. ``callback(events)`` gets lists of (type, object, resourceVersion)."""

    def __init__(self, cache: WatchCache, flt: Filter, callback: Callable[[list], object], index: str | None) -> None:
        self.cache, self.filter, self.callback, self.index = cache, flt, callback, index
        self.pending: deque = deque()
        self.scheduled = False
        self.stopped = False
        self.initial_events = 0
        """Events the watch starts with (replayed from the window): the cacher sends them before it signals the
        watch initialized (cache_watcher.go processInterval, then WatchInitialized)."""
        self.initial_bytes = 0
        self.instance = 0
        """The apiserver instance whose CPU sends the watch's events (its client's; set by the apiserver)."""
        self.on_stop: list[Callable[[], object]] = []
        """Called when the watch stops (e.g. flow control forgetting it in its watch count)."""

    def push(self, arrival: float, event: tuple, now: float) -> None:
        """Queue ``event`` to reach the watcher at ``arrival`` (``now`` being the engine's time)."""
        self.pending.append((arrival, event))
        if not self.scheduled:
            self.scheduled = True
            self.cache.schedule(arrival - now, self._deliver)

    def _deliver(self, _=None) -> None:
        self.scheduled = False
        if self.stopped:
            return
        now = self.cache.now()
        batch = []
        while self.pending and self.pending[0][0] <= now:
            batch.append(self.pending.popleft()[1])
        if self.pending:
            self.scheduled = True
            self.cache.schedule(self.pending[0][0] - now, self._deliver)
        if batch:
            self.callback(batch)

    def stop(self) -> None:
        """The watcher closes the stream: nothing more is delivered."""
        if self.stopped:
            return
        self.stopped = True
        self.cache.remove(self)
        for forget in self.on_stop:
            forget()


class WatchCache:
    """The cacher of one resource: current objects, a window of recent events, and the watches on them.

    ``schedule`` and ``now`` are the engine's; ``delay(size)`` is how long an event of ``size`` bytes takes to reach
    a watcher. ``compacted()``, given for a resource read from etcd (no cacher), is etcd's compaction revision: the
    window reaches back to it instead of the cacher's.
    """

    def __init__(
        self,
        resource: str,
        schedule: Callable,
        now: Callable[[], float],
        delay: Callable[[int], float],
        compacted: Callable[[], int] | None = None,
        event_fresh_duration: float = EVENT_FRESH_DURATION,
    ):
        self.schedule, self.now, self.delay, self.compacted = schedule, now, delay, compacted
        self.objects: dict[str, tuple[Mapping, int, int]] = {}
        """key -> (object, resourceVersion, serialized size)."""
        self.bytes = 0
        """The serialized bytes of the objects (for the storage stats the work estimator reads)."""
        self.history: deque[tuple[int, float, str, Mapping, Mapping | None, int]] = deque()
        """The ring buffer's events, oldest first: (resourceVersion, record time, type, object, previous object,
        serialized size)."""
        self.rv = 0
        self.list_rv = 0
        """The resourceVersion of the cacher's initial list (its start)."""
        self.removed = False
        """Whether an event has left the buffer since that list (removedEventSinceRelist)."""
        self.event_fresh_duration = event_fresh_duration
        self.capacity = LOWER_BOUND_CAPACITY
        self.lower_bound, self.upper_bound = LOWER_BOUND_CAPACITY, capacity_upper_bound(event_fresh_duration)
        self.start_index = 0
        """watch_cache.go startIndex: events ever dropped from the buffer's front (endIndex is this + len(history))."""
        self._quarter_back: tuple[float, float] = (math.inf, 0.0)
        """(index since the first event, record time) of the last quarter-back event :meth:`resize_cache` read."""
        self.index_field = INDEXED.get(resource)
        self.indexed: dict[str, list[Watch]] = {}
        self.others: list[Watch] = []

    def apply(
        self, kind: str, key: str, obj: Mapping, rv: int, size: int, cpu: Callable[[list, int], float] | None = None
    ) -> None:
        """Record an event (``ADDED`` / ``MODIFIED`` / ``DELETED``) the apiserver's etcd write produced; ``cpu(watches
        interested in it, size)``, if given, puts its CPU on the instances and returns how much later it leaves."""
        now = self.now()
        prev = self.record(kind, key, obj, rv, size, now)
        watchers = self.watchers(obj, prev)
        arrival = now + self.delay(size) + (cpu(watchers, size) if cpu is not None else 0.0)
        self.send(watchers, kind, obj, prev, rv, arrival, now)

    def record(self, kind: str, key: str, obj: Mapping, rv: int, size: int, now: float) -> Mapping | None:
        """The event's change to the objects and the event window (:meth:`apply`'s first half); returns the object
        it replaced (None for a new one)."""
        prev = self.objects.get(key)
        prev_obj = prev[0] if prev else None
        if prev is not None:
            self.bytes -= prev[2]
        if kind == "DELETED":
            self.objects.pop(key, None)
        else:
            self.objects[key] = (obj, rv, size)
            self.bytes += size
        self.rv = rv
        self.update_cache((rv, now, kind, obj, prev_obj, size))
        return prev_obj

    @staticmethod
    def send(
        watchers: list[Watch], kind: str, obj: Mapping, prev: Mapping | None, rv: int, arrival: float, now: float
    ) -> None:
        """Queue the event (``obj``, was ``prev``) for each of ``watchers`` that wants it, to reach it at
        ``arrival`` (:meth:`apply`'s second half)."""
        for watch in watchers:
            event = _event_for(watch.filter, kind, obj, prev, rv)
            if event is not None:
                watch.push(arrival, event, now)

    def update_cache(self, event: tuple) -> None:
        """watch_cache.go updateCache: resize, drop the oldest event if the buffer is full, append. A resource read
        from etcd keeps its events back to etcd's compaction revision instead."""
        if self.compacted is not None:
            floor = self.compacted()
            while self.history and self.history[0][0] < floor:
                self.history.popleft()
            self.history.append(event)
            return
        history = self.history
        if len(history) >= self.capacity:  # full: resize first (resize_cache does nothing to a buffer with room)
            self.resize_cache(event[1])
            if len(history) >= self.capacity:
                history.popleft()
                self.start_index += 1
                self.removed = True
        history.append(event)

    def resize_cache(self, event_time: float) -> None:
        """watch_cache.go resizeCacheLocked: a full buffer doubles (to at most the upper bound) when its oldest event
        is younger than eventFreshDuration, and halves (to at least the lower bound, keeping the newest events) when
        the event a quarter of the capacity back from the newest is older than it."""
        history, capacity = self.history, self.capacity
        if len(history) < capacity:
            return
        if event_time - history[0][1] < self.event_fresh_duration:
            self.capacity = min(capacity * 2, self.upper_bound)
            return
        # the ring's (endIndex - capacity/4), as an index since the first event ever recorded
        quarter_back = self.start_index + (len(history) - capacity // 4) % len(history)
        seen, seen_time = self._quarter_back
        if seen > quarter_back or event_time - seen_time > self.event_fresh_duration:
            # indexing a deque walks it (a block per 64 events), so the time is read again only when the one read
            # before can no longer settle it: record times never decrease, so an event at or before the quarter
            # point that is still fresh proves the quarter point fresh too
            seen_time = history[quarter_back - self.start_index][1]
            self._quarter_back = (quarter_back, seen_time)
        if event_time - seen_time > self.event_fresh_duration:
            shrunk = max(capacity // 2, self.lower_bound)
            while len(history) > shrunk:
                history.popleft()
                self.start_index += 1
                self.removed = True
            self.capacity = min(shrunk, capacity)

    def window_start(self) -> int:
        """The oldest resourceVersion a watch may start from (getAllEventsSinceLocked: ``oldest - 1``, where oldest
        is the first event held once one has left the buffer, else the initial list's resourceVersion + 1); for
        etcd its compaction revision less one (a watch from ``rv`` starts at ``rv + 1``, which etcd must still
        hold)."""
        if self.compacted is not None:
            return max(0, self.compacted() - 1)
        if self.removed and self.history:
            return self.history[0][0] - 1
        return self.list_rv

    def scope(self, namespace: str) -> tuple[int, int]:
        """(objects, their serialized bytes) in ``namespace`` (every namespace when empty): what a range over the
        resource's etcd prefix returns before the apiserver filters it."""
        prefix = f"{namespace}/" if namespace else ""
        count = nbytes = 0
        for key, (_, _, size) in self.objects.items():
            if key.startswith(prefix):
                count += 1
                nbytes += size
        return count, nbytes

    def watchers(self, obj: Mapping, prev: Mapping | None) -> list[Watch]:
        """The watches that may want an event of ``obj`` (was ``prev``): those of its indexed field's values (pods by
        ``spec.nodeName``, the cacher's index) and every unindexed one."""
        if self.index_field is None:
            return self.others
        value = field_value(obj, self.index_field)
        out = self.others + self.indexed.get(value, [])
        if prev is not None:  # the object's value, then its previous one (in that order, whatever their hashes)
            was = field_value(prev, self.index_field)
            if was != value:
                out += self.indexed.get(was, ())
        return out

    def list(self, flt: Filter) -> tuple[list[Mapping], int, int]:
        """(matching objects, the cache's resourceVersion, their serialized bytes)."""
        items, size = [], 0
        for obj, _, nbytes in self.objects.values():
            if flt.matches(obj):
                items.append(obj)
                size += nbytes
        return items, self.rv, size

    def get(self, key: str) -> tuple[Mapping, int, int] | None:
        """(object, resourceVersion, serialized size) of ``key``, or None."""
        return self.objects.get(key)

    def watch(self, flt: Filter, rv: int, callback: Callable[[builtins.list], object]) -> Watch:
        """A watch from ``rv`` (replaying the window's later events), or 410 Gone if ``rv`` is too old."""
        oldest = self.window_start()
        if rv < oldest:
            raise gone(rv, oldest)
        index = None
        if self.index_field:
            index = next((v for f, eq, v in flt.fields if f == self.index_field and eq), None)
        watch = Watch(self, flt, callback, index)
        if index is None:
            self.others.append(watch)
        else:
            self.indexed.setdefault(index, []).append(watch)
        now = self.now()
        arrival = now + self.delay(0)
        for hrv, _, kind, obj, prev, size in self.history:
            if hrv > rv:
                event = _event_for(flt, kind, obj, prev, hrv)
                if event is not None:
                    watch.push(arrival, event, now)
                    watch.initial_events += 1
                    watch.initial_bytes += size
        return watch

    def remove(self, watch: Watch) -> None:
        """Forget a stopped watch."""
        group = self.others if watch.index is None else self.indexed.get(watch.index, [])
        if watch in group:
            group.remove(watch)


def _event_for(flt: Filter, kind: str, obj: Mapping, prev: Mapping | None, rv: int) -> tuple | None:
    """cacheWatcher.convertToWatchEvent: filter transitions become ADDED / DELETED."""
    if flt.everything:  # every object matches (an informer of the whole resource)
        if kind == "DELETED":
            return ("DELETED", obj, rv)
        return ("ADDED" if prev is None else "MODIFIED", obj, rv)
    if kind == "DELETED":
        return ("DELETED", obj, rv) if flt.matches(obj) else None
    now_matches = flt.matches(obj)
    was = prev is not None and flt.matches(prev)
    if now_matches:
        return ("MODIFIED" if was else "ADDED", obj, rv)
    return ("DELETED", prev, rv) if was else None
