"""Watchers: PUT and DELETE events of a key range, in revision order.

A watcher starting in the past first replays the stored history (which is why
a start revision below the compaction revision cancels it, with
``compact_revision`` set, as etcd does); afterwards the store hands it every
committed revision's events. Events are delivered synchronously at commit;
the modelled member set (:mod:`kbench.etcd.cluster`) adds delivery latency.
"""

from __future__ import annotations

from collections.abc import Callable

from kbench.etcd.types import Event, KeyValue


class Watcher:
    """One watch: the range ``[key, end)`` (``end=None``: no upper bound), options and pending events."""

    def __init__(
        self, watch_id: int, key: bytes, end: bytes | None, start_revision: int,
        prev_kv: bool, filters: tuple[str, ...], cancel: Callable[[Watcher], None],
    ) -> None:
        self.id = watch_id
        self.key, self.end = key, end
        self.start_revision = start_revision
        self.prev_kv = prev_kv
        self.filters = frozenset(filters)
        self.events: list[Event] = []
        self.canceled = False
        self.compact_revision = 0
        self.on_events: Callable[[list[Event]], None] | None = None
        """If set, called with each batch of new events instead of queueing them in :attr:`events`."""
        self._cancel = cancel

    def matches(self, key: bytes) -> bool:
        """True if ``key`` is in the watched range."""
        return self.key <= key and (self.end is None or key < self.end)

    def deliver(self, items: list[tuple[KeyValue, bool, KeyValue | None]]) -> None:
        """Hand over ``(kv, deleted, prev_kv)`` entries already filtered by range."""
        batch = [
            Event("DELETE" if deleted else "PUT", kv, prev if self.prev_kv else None)
            for kv, deleted, prev in items
            if ("NODELETE" if deleted else "NOPUT") not in self.filters
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
