"""Watchers: PUT and DELETE events of a key range, in revision order.

A watcher starting in the past first replays the stored history (which is why
a start revision below the compaction revision cancels it, with
``compact_revision`` set, as etcd does); afterwards the store hands it every
committed revision's events from its start revision on. A watch of an empty
range is canceled at once, with ``cancel_reason`` set. Events are delivered
synchronously at commit; the modelled member set (:mod:`kbench.etcd.cluster`)
adds delivery latency.
"""

from __future__ import annotations

from collections.abc import Callable

from kbench.etcd.types import Event, KeyValue

EMPTY_RANGE = "mvcc: watcher range is empty"
"""Cancel reason of a watch whose range ends at or before its key (mvcc/watcher.go ErrEmptyWatcherRange)."""


class Watcher:
    """One watch: the range ``[key, end)`` (``end=None``: no upper bound), options and pending events."""

    def __init__(
        self,
        watch_id: int,
        key: bytes,
        end: bytes | None,
        start_revision: int,
        prev_kv: bool,
        filters: tuple[str, ...],
        cancel: Callable[[Watcher], None],
    ) -> None:
        self.id = watch_id
        self.key, self.end = key, end
        self.start_revision = start_revision
        self.prev_kv = prev_kv
        self.filters = frozenset(filters)
        self.events: list[Event] = []
        self.canceled = False
        self.compact_revision = 0
        self.cancel_reason = ""
        self.on_events: Callable[[list[Event]], object] | None = None
        """If set, called with each batch of new events instead of queueing them in :attr:`events`."""
        self._cancel = cancel

    def matches(self, key: bytes) -> bool:
        """True if ``key`` is in the watched range."""
        return self.key <= key and (self.end is None or key < self.end)

    def deliver(self, items: list[tuple[KeyValue, bool, KeyValue | None]]) -> None:
        """Hand over ``(kv, deleted, prev_kv)`` entries already filtered by range.

        As etcd: only revisions from ``start_revision`` on (the watcher's minRev in
        mvcc/watcher_group.go newWatcherBatch, so a watch starting in the future skips
        what comes before), and no prev_kv on an event that creates its key
        (isCreateEvent in etcdserver/api/v3rpc/watch.go).
        """
        start, prev_kv, filters = self.start_revision, self.prev_kv, self.filters
        batch = [
            Event(
                "DELETE" if deleted else "PUT",
                kv,
                prev if prev_kv and (deleted or kv.create_revision != kv.mod_revision) else None,
            )
            for kv, deleted, prev in items
            if kv.mod_revision >= start and ("NODELETE" if deleted else "NOPUT") not in filters
        ]
        if not batch:
            return
        if self.on_events is not None:
            self.on_events(batch)
        else:
            self.events.extend(batch)

    def take(self) -> list[Event]:
        """Return and clear the queued events."""
        events, self.events = self.events, []
        return events

    def cancel(self) -> None:
        """Stop watching."""
        if not self.canceled:
            self.canceled = True
            self._cancel(self)
