"""client-go's event recorder (k8s.io/client-go/tools/record, v1.35) on the engine.

A component records an Event with :meth:`EventRecorder.event`: fire-and-forget, as ``recorder.Event`` puts the event on
the broadcaster's queue (``watch.NewLongQueueBroadcaster(maxQueuedEvents=1000, DropIfChannelFull)``; a full queue
drops it). One watcher goroutine (``StartRecordingToSink``) takes the events one at a time, in order, and for each
(``recordToSink``, event.go):

1. the :class:`EventCorrelator` (events_cache.go) aggregates it (``EventAggregator``: the 10th distinct message of
   similar events within 600 s becomes "(combined from similar events): ..."), counts it (``eventLogger``: an event
   seen before becomes a PATCH of ``count`` + 1 and ``lastTimestamp`` of the stored one) and filters it
   (``EventSourceObjectSpamFilter``: a token bucket per source + object, burst 25, refilled 1 per 300 s);
2. the sink writes it through the component's own client (so its QPS): POST, or PATCH for a repeat (a PATCH of an
   Event gone meanwhile, 404, becomes a POST). A status error is not retried (``recordEvent``: "Server rejected
   event (will not retry!)"); kbench's apiserver answers every failure with one, so an event is tried once.

The stored object has upstream's shape (core/v1 Event): ``involvedObject``, ``reason``, ``message``,
``source.component`` / ``source.host``, ``firstTimestamp``, ``lastTimestamp``, ``count``, ``type``,
``reportingComponent`` / ``reportingInstance``; its name is ``<object name>.<UnixNano hex>`` (``makeEvent``).
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Mapping

from kbench.apiserver.objects import EPOCH, APIError, timestamp
from kbench.client.client import Client, TokenBucket

MAX_QUEUED_EVENTS = 1000
"""event.go maxQueuedEvents: the broadcaster's queue; an event recorded while it is full is dropped."""
MAX_LRU_CACHE_ENTRIES = 4096
"""events_cache.go maxLruCacheEntries: each of the correlator's three caches (LRU)."""
DEFAULT_AGGREGATE_MAX_EVENTS, DEFAULT_AGGREGATE_INTERVAL = 10, 600.0
"""events_cache.go defaultAggregateMaxEvents, defaultAggregateIntervalInSeconds."""
DEFAULT_SPAM_BURST, DEFAULT_SPAM_QPS = 25, 1.0 / 300.0
"""events_cache.go defaultSpamBurst, defaultSpamQPS."""
COMBINED_PREFIX = "(combined from similar events): "
"""events_cache.go EventAggregatorByReasonMessageFunc."""
EVENT_TYPES = ("Normal", "Warning")
"""util.ValidateEventType: v1.EventTypeNormal, v1.EventTypeWarning."""
_EPOCH_NANOS = int(EPOCH.timestamp()) * 10**9


class _LRU(OrderedDict):
    """github.com/golang/groupcache/lru: at most ``size`` entries; a get or add makes an entry the most recent."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def lookup(self, key):
        """Get: the value (now most recent) or None."""
        value = self.get(key)
        if value is not None:
            self.move_to_end(key)
        return value

    def add(self, key, value) -> None:
        """Add: store ``value`` as most recent, evicting the least recent entry beyond ``size``."""
        self[key] = value
        self.move_to_end(key)
        if len(self) > self.size:
            self.popitem(last=False)


def _ref_key(event: Mapping) -> tuple:
    """Source and involved object (getSpamKey's fields)."""
    src, ref = event["source"], event["involvedObject"]
    return (
        src.get("component", ""),
        src.get("host", ""),
        ref.get("kind", ""),
        ref.get("namespace", ""),
        ref.get("name", ""),
        ref.get("uid", ""),
        ref.get("apiVersion", ""),
    )


def event_key(event: Mapping) -> tuple:
    """getEventKey: source, involved object (with fieldPath), type, reason and message."""
    ref = event["involvedObject"]
    return (*_ref_key(event), ref.get("fieldPath", ""), event["type"], event["reason"], event["message"])


def spam_key(event: Mapping) -> tuple:
    """getSpamKey: source and involved object only (so every reason about one object shares a bucket)."""
    return _ref_key(event)


def aggregate_key(event: Mapping) -> tuple[tuple, str]:
    """EventAggregatorByReasonFunc: (source, object, type, reason, reporting controller and instance), message."""
    return (
        *_ref_key(event),
        event["type"],
        event["reason"],
        event.get("reportingComponent", ""),
        event.get("reportingInstance", ""),
    ), event["message"]


class EventCorrelator:
    """record.EventCorrelator with NewEventCorrelator's defaults: aggregate, observe (count), then spam-filter.

    Parameters
    ----------
    burst, qps
        The spam filter's token bucket per source + object.
    max_events, max_interval
        Aggregate once ``max_events`` distinct messages of similar events are seen, each within ``max_interval``
        seconds of the previous one.
    cache_size
        Entries of each LRU cache.
    """

    def __init__(
        self,
        burst: int = DEFAULT_SPAM_BURST,
        qps: float = DEFAULT_SPAM_QPS,
        max_events: int = DEFAULT_AGGREGATE_MAX_EVENTS,
        max_interval: float = DEFAULT_AGGREGATE_INTERVAL,
        cache_size: int = MAX_LRU_CACHE_ENTRIES,
    ) -> None:
        self.burst, self.qps = burst, qps
        self.max_events, self.max_interval = max_events, max_interval
        self.spam = _LRU(cache_size)
        """spam key -> TokenBucket (EventSourceObjectSpamFilter's cache)."""
        self.aggregates = _LRU(cache_size)
        """aggregate key -> [distinct messages, time of the last one] (EventAggregator's cache)."""
        self.observed = _LRU(cache_size)
        """event key -> (count, firstTimestamp, name, resourceVersion) (eventLogger's cache)."""

    def correlate(self, event: dict, now: float) -> tuple[dict, dict | None] | None:
        """EventCorrelate: the event to write and, for a repeat, the patch; None when the spam filter drops it."""
        event, key = self.aggregate(event, now)
        event, patch = self.observe(event, key)
        if self.filtered(event, now):
            return None
        return event, patch

    def aggregate(self, event: dict, now: float) -> tuple[dict, tuple]:
        """EventAggregate: the event (a new combined one once similar events reach ``max_events``) and its cache
        key (the full event key, or the aggregate key for a combined event)."""
        akey, message = aggregate_key(event)
        record = self.aggregates.lookup(akey)
        if record is None or now - record[1] > self.max_interval:
            record = [set(), now]
        record[0].add(message)
        record[1] = now
        self.aggregates.add(akey, record)
        if len(record[0]) < self.max_events:
            return event, event_key(event)
        record[0].pop()  # do not grow the set beyond max (PopAny)
        stamp = timestamp(now)
        combined = {
            **event,
            "metadata": {"name": event_name(event["involvedObject"]["name"], now), "namespace": _ns(event)},
            "count": 1,
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "message": COMBINED_PREFIX + message,
        }
        for field in ("reportingComponent", "reportingInstance"):  # the combined event copies neither
            combined.pop(field, None)
        return combined, akey

    def observe(self, event: dict, key: tuple) -> tuple[dict, dict | None]:
        """eventObserve: a repeat of an event already written takes its name, first timestamp and count + 1, and
        is written as a patch of ``count``, ``lastTimestamp`` and ``message``."""
        last = self.observed.lookup(key)
        patch = None
        if last is not None and last[0] > 0:
            count, first, name, rv = last
            event = {**event, "metadata": {**event["metadata"], "name": name, "resourceVersion": rv}}
            event["firstTimestamp"], event["count"] = first, count + 1
            patch = {"count": count + 1, "lastTimestamp": event["lastTimestamp"], "message": event["message"]}
        meta = event["metadata"]
        self.observed.add(key, (event["count"], event["firstTimestamp"], meta["name"], meta.get("resourceVersion", "")))
        return event, patch

    def filtered(self, event: Mapping, now: float) -> bool:
        """EventSourceObjectSpamFilter.Filter: True (drop) when the source + object bucket has no token."""
        key = spam_key(event)
        bucket = self.spam.lookup(key)
        if bucket is None:
            bucket = TokenBucket(self.qps, self.burst)
            bucket.last = now  # NewTokenBucketRateLimiter starts full at its creation
        self.spam.add(key, bucket)
        return not bucket.try_accept(now)

    def update_state(self, event: Mapping) -> None:
        """UpdateState: remember the server's copy (name, resourceVersion, count) under its event key."""
        meta = event["metadata"]
        self.observed.add(
            event_key(event), (event.get("count", 1), event["firstTimestamp"], meta["name"], meta["resourceVersion"])
        )


def event_name(object_name: str, now: float) -> str:
    """makeEvent's name: ``<object name>.<UnixNano in hex>``."""
    return f"{object_name}.{_EPOCH_NANOS + round(now * 1e9):x}"


def _ns(event: Mapping) -> str:
    return event["metadata"]["namespace"]


class _UniqueNames:
    """A recorder's event names, ``<object name>.<UnixNano hex>`` (makeEvent); two events in one virtual nanosecond
    get successive nanoseconds, as two calls of a real clock never read the same instant."""

    def __init__(self) -> None:
        self.last = 0

    def __call__(self, object_name: str, now: float) -> str:
        nanos = max(_EPOCH_NANOS + round(now * 1e9), self.last + 1)
        self.last = nanos
        return f"{object_name}.{nanos:x}"


def event_object(name: str, ref: dict, type: str, reason: str, message: str) -> dict:
    """The fields every recorded Event has: its name, the involved object's namespace, the object, reason, message
    and type (both recorders add their own timestamps and reporting fields)."""
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": name, "namespace": ref.get("namespace") or "default"},
        "involvedObject": ref,
        "reason": reason,
        "message": message,
        "type": type,
    }


def reference(obj: Mapping) -> dict:
    """ref.GetReference: the object's kind, apiVersion, name, namespace, uid and resourceVersion."""
    meta = obj.get("metadata", {})
    ref = {
        "kind": obj.get("kind", ""),
        "namespace": meta.get("namespace", ""),
        "name": meta.get("name", ""),
        "uid": meta.get("uid", ""),
        "apiVersion": obj.get("apiVersion", ""),
        "resourceVersion": meta.get("resourceVersion", ""),
    }
    return {k: v for k, v in ref.items() if v}


class EventRecorder:
    """A component's ``record.EventBroadcaster`` recording to the apiserver through ``client``, with one recorder
    of source ``component`` / ``host``.

    Parameters
    ----------
    client : Client
        The component's own client: the writes take tokens from its bucket, as the sink is built on it.
    component, host
        ``v1.EventSource``: also the events' reportingComponent / reportingInstance.
    correlator : EventCorrelator, optional
        Defaults to upstream's (NewEventCorrelator).
    queue_size : int
        The broadcaster's queue (maxQueuedEvents): events waiting while the watcher writes one (the watcher's
        channel of ``NewLongQueueBroadcaster(1000, DropIfChannelFull)``; the broadcaster's loop drops what does not
        fit, so its incoming channel never fills).
    """

    def __init__(
        self,
        client: Client,
        component: str,
        host: str = "",
        correlator: EventCorrelator | None = None,
        queue_size: int = MAX_QUEUED_EVENTS,
    ) -> None:
        if not component:
            raise ValueError("EventRecorder: component must be a non-empty string (v1.EventSource.Component)")
        self.client, self.engine = client, client.engine
        self.component, self.host = component, host
        self.correlator = correlator or EventCorrelator()
        self.queue: deque[dict] = deque()
        self.queue_size = queue_size
        self.busy = False
        self._names = _UniqueNames()
        self.recorded = self.dropped = self.skipped = self.written = self.failed = 0
        """Counts: events recorded, dropped on a full queue, dropped by the spam filter, written, rejected."""

    def event(self, obj: Mapping, type: str, reason: str, message: str) -> None:
        """recorder.Event: make the Event about ``obj`` and queue it (dropped if the queue is full)."""
        if type not in EVENT_TYPES:
            raise ValueError(f"EventRecorder.event: type must be one of {', '.join(EVENT_TYPES)}; got {type!r}")
        self.recorded += 1
        if len(self.queue) >= self.queue_size:
            self.dropped += 1
            return
        self.queue.append(self.make_event(reference(obj), type, reason, message))
        if not self.busy:  # the watcher goroutine is waiting on its channel: it takes the event at once
            self.busy = True
            self._next()

    def make_event(self, ref: dict, type: str, reason: str, message: str) -> dict:
        """makeEvent plus generateEvent's source and reporting fields."""
        now = self.engine.now
        stamp = timestamp(now)
        return {
            **event_object(self._names(ref.get("name", ""), now), ref, type, reason, message),
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
            "source": {"component": self.component, **({"host": self.host} if self.host else {})},
            "reportingComponent": self.component,
            "reportingInstance": self.host,
        }

    # -- the watcher: recordToSink, one event at a time ----------------------------------------------------
    def _next(self, _=None) -> None:
        while self.queue:
            result = self.correlator.correlate(self.queue.popleft(), self.engine.now)
            if result is None:
                self.skipped += 1
                continue
            event, patch = result
            if patch is not None:
                self._send("patch", event, patch)
            else:
                self._send("create", event, None)
            return
        self.busy = False

    def _send(self, verb: str, event: dict, patch: dict | None) -> None:
        """The sink's Create or Patch; the next event is taken once the answer is back."""
        meta = event["metadata"]

        def answered(result, error: APIError | None, delay: float) -> None:
            if error is not None and verb == "patch" and error.code == 404:  # the event expired: create it
                created = {**event, "metadata": {k: v for k, v in meta.items() if k != "resourceVersion"}}
                self.engine.schedule(delay, lambda _: self._send("create", created, None))
                return
            if error is None:
                self.written += 1
                self.correlator.update_state(result)
            else:
                self.failed += 1
            self.engine.schedule(delay, self._next)

        if verb == "patch":
            self.client.request(
                "patch", "events", answered, namespace=meta["namespace"], name=meta["name"], body=patch or {}
            )
        else:
            self.client.request("create", "events", answered, namespace=meta["namespace"], body=event)


FINISH_TIME, REFRESH_TIME = 360.0, 1800.0
"""tools/events/event_broadcaster.go finishTime (6 min) and refreshTime (30 min)."""


class EventsV1Recorder:
    """The events.k8s.io/v1 recorder (k8s.io/client-go/tools/events, v1.35) that kube-scheduler uses
    (``events.NewEventBroadcasterAdapterWithContext``, the API group being served): no spam filter and no
    aggregation, but isomorphic events (same type, action, reason, reporting controller and instance, regarding
    object; the note is not compared) form a series. The first is created; the second PATCHes ``series`` (count 2);
    later ones only count in memory, written by ``refreshExistingEventSeries`` every 30 min and by ``finishSeries``
    (every 6 min: a series not seen for 6 min is written a last time and forgotten; a singleton older than 6 min
    is forgotten). Each event is written by a goroutine of its own (``recordToSink``), so writes do not wait for one
    another, only for the client's token bucket.

    The stored object is what the core/v1 API shows of it: ``involvedObject`` (regarding), ``message`` (note),
    ``reason``, ``type``, ``action``, ``eventTime``, ``reportingComponent`` / ``reportingInstance``, ``series``; no
    ``source``, ``count`` or first/last timestamps (events.k8s.io/v1 writers leave the deprecated fields empty).

    Parameters
    ----------
    client : Client
        The component's event client (kube-scheduler builds one of its own, ``createClients``' eventClient).
    reporting_controller : str
        ``NewRecorder(scheme, reportingController)``: kube-scheduler passes the profile's schedulerName.
    host : str
        The host name; the reporting instance is ``<reporting_controller>-<host>``.
    """

    def __init__(self, client: Client, reporting_controller: str, host: str = "") -> None:
        if not reporting_controller:
            raise ValueError("EventsV1Recorder: reporting_controller must be a non-empty string")
        self.client, self.engine = client, client.engine
        self.controller, self.instance = reporting_controller, f"{reporting_controller}-{host}"
        self.cache: dict[tuple, dict] = {}
        """isomorphic key -> the event as first recorded, with its ``series`` once it has one (eventCache)."""
        self.started = self.engine.now
        self._ticking = {"finish": False, "refresh": False}
        self._names = _UniqueNames()
        self.recorded = self.written = self.failed = 0

    def event(self, obj: Mapping, type: str, reason: str, message: str, action: str = "") -> None:
        """recorder.Eventf(regarding, nil, type, reason, action, note): record an event about ``obj``."""
        if type not in EVENT_TYPES:
            raise ValueError(f"EventsV1Recorder.event: type must be one of {', '.join(EVENT_TYPES)}; got {type!r}")
        self.recorded += 1
        ref, now = reference(obj), self.engine.now
        key = (type, action, reason, tuple(sorted(ref.items())))
        cached = self.cache.get(key)
        if cached is not None:
            first = "series" not in cached
            cached["series"] = {
                "count": cached["series"]["count"] + 1 if not first else 2,
                "lastObservedTime": timestamp(now, micro=True),
            }
            self._tick("refresh", REFRESH_TIME)
            if first:  # the second of a series is written at once; later ones wait for a tick
                self._patch(cached)
            return
        event = {
            **event_object(self._names(ref.get("name", ""), now), ref, type, reason, message),
            "action": action,
            "eventTime": timestamp(now, micro=True),
            "reportingComponent": self.controller,
            "reportingInstance": self.instance,
        }
        self.cache[key] = event
        self._tick("finish", FINISH_TIME)
        self._create(event)

    def _create(self, event: dict) -> None:
        def answered(result, error, delay) -> None:
            if error is None:
                self.written += 1
            else:
                self.failed += 1

        meta = event["metadata"]
        body = {**event, "metadata": {"name": meta["name"], "namespace": meta["namespace"]}}
        self.client.request("create", "events", answered, namespace=meta["namespace"], body=body)

    def _patch(self, event: dict) -> None:
        """recordEvent for a series: PATCH its ``series``; an Event gone meanwhile (404) is created again."""
        meta, series = event["metadata"], dict(event["series"])

        def answered(result, error, delay) -> None:
            if error is not None and error.code == 404:
                self._create({**event, "series": series})
            elif error is None:
                self.written += 1
            else:
                self.failed += 1

        self.client.request(
            "patch", "events", answered, namespace=meta["namespace"], name=meta["name"], body={"series": series}
        )

    # -- the periodic loops (wait.Until from StartRecordingToSink; run here only while they have work) -----
    def _tick(self, loop: str, period: float) -> None:
        """Make sure ``loop`` runs at its next period boundary (counted from the broadcaster's start)."""
        if self._ticking[loop]:
            return
        self._ticking[loop] = True
        elapsed = self.engine.now - self.started
        wait = period - elapsed % period
        self.engine.schedule(wait, self._finish_series if loop == "finish" else self._refresh_series)

    def _finish_series(self, _=None) -> None:
        """finishSeries: a series last seen over 6 min ago is written a last time and forgotten; a singleton
        recorded over 6 min ago is forgotten."""
        self._ticking["finish"] = False
        horizon = timestamp(self.engine.now - FINISH_TIME, micro=True)
        for key, event in list(self.cache.items()):
            seen = event["series"]["lastObservedTime"] if "series" in event else event["eventTime"]
            if seen < horizon:  # RFC 3339 strings of one format order as the times do
                if "series" in event:
                    self._patch(event)
                del self.cache[key]
        if self.cache:
            self._tick("finish", FINISH_TIME)

    def _refresh_series(self, _=None) -> None:
        """refreshExistingEventSeries: every series is written again (its count and the Event's TTL refreshed)."""
        self._ticking["refresh"] = False
        series = [event for event in self.cache.values() if "series" in event]
        for event in series:
            self._patch(event)
        if series:
            self._tick("refresh", REFRESH_TIME)
