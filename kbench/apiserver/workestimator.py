"""API Priority and Fairness's work estimator: how many seats a request occupies, and for how long after it
finishes (k8s.io/apiserver/pkg/util/flowcontrol/request, v1.35).

- **LIST** (``list_work_estimator.go``): with the ``SizeBasedListCostEstimate`` feature (beta, on by default since
  v1.34) a list takes one seat per ``bytesPerSeat`` (100,000) bytes it holds in memory at once: the objects it will
  load (all of the resource's objects from the watch cache, ``limit`` of them if smaller; one for a single name;
  from etcd with a selector at least half the resource) times their average size, at most 1 MB from the cache
  (``cacheWithStreamingMaxMemoryUsage``). Without the feature it is ``ceil(objects / objectsPerSeat)`` with
  objectsPerSeat 100 (etcd lists count twice: read and filtered). At least ``MinimumSeats`` (1), at most the
  level's max seats and ``MaximumListSeatsLimit`` (100 with the feature, else 10). The object count and average
  size come from the storage's stats, polled every ``--etcd-count-metric-poll-period`` (1m,
  registry/generic/registry/store.go startObservingCount; :class:`ObjectCountTracker`).
- **WATCH** (``width.go``): with ``WatchList`` (beta, on since v1.34) a watch is estimated as a list when it asks
  for initial events (``sendInitialEvents=true``, or a legacy watch without resourceVersion or with "0"); a watch
  from a resourceVersion takes the minimum, one seat.
- **mutating** (``mutating_work_estimator.go``): one seat while it runs; with ``watchCount`` interested watches
  (:class:`WatchTracker`) of at least ``watchesPerSeat`` (10) it also holds ``ceil(watchCount / watchesPerSeat)``
  seats (at most the level's max seats and ``MaximumMutatingSeatsLimit`` 10) for ``eventAdditionalDuration``
  (5 ms) scaled to keep the seat-seconds, after it finishes (the watch fan-out). A serviceaccounts/token create is
  exempt (it makes no event).
- anything else: the minimum, one seat.

The level's max seats (apf_controller.go finishQueueSetReconfigsLocked) are ``max(1, min(ceil(0.15 x nominalCL),
nominalCL / handSize))`` for a queuing level, none (the config limit) for others.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

BYTES_PER_SEAT = 100_000
"""list_work_estimator.go bytesPerSeat."""
CACHE_WITH_STREAMING_MAX_MEMORY_USAGE = 1_000_000
"""list_work_estimator.go cacheWithStreamingMaxMemoryUsage: a list from the cache streams, holding at most 1 MB."""
MAX_OBJECT_SIZE = 1_500_000
"""list_work_estimator.go maxObjectSize: the size assumed when the stats know objects but not their size."""
PRIORITY_LEVEL_MAX_SEATS_PERCENT = 0.15
"""apf_controller.go priorityLevelMaxSeatsPercent."""
COUNT_METRIC_POLL_PERIOD = 60.0
"""k8s.io/apiserver/pkg/server/options/etcd.go: --etcd-count-metric-poll-period 1m (CountMetricPollPeriod)."""
READ_ONLY_VERBS = frozenset(("get", "list", "watch", "proxy"))
"""watch_tracker.go readOnlyVerbs: they interest no watch."""
INDEXES = {"pods": "spec.nodeName"}
"""watch_tracker.go getBuiltinIndexes: watches selecting on an indexed field are served by the index."""


@dataclass(frozen=True)
class WorkEstimatorConfig:
    """request/config.go DefaultWorkEstimatorConfig (v1.35), with the feature gates it reads."""

    minimum_seats: int = 1
    maximum_list_seats_limit: int = 100
    """100 with SizeBasedListCostEstimate (default on), else 10."""
    maximum_mutating_seats_limit: int = 10
    objects_per_seat: float = 100.0
    watches_per_seat: float = 10.0
    event_additional_duration: float = 0.005
    mutating_enabled: bool = True
    size_based_list_cost_estimate: bool = True
    """Feature gate SizeBasedListCostEstimate: beta, default true since v1.34 (pkg/features/kube_features.go)."""
    watch_list: bool = True
    """Feature gate WatchList: beta, default true since v1.34 (pkg/features/kube_features.go)."""
    consistent_list_from_cache: bool = True
    """delegator.ConsistentReadSupported: ConsistentListFromCache (GA, locked on since v1.34) and etcd supporting
    RequestWatchProgress (etcd >= 3.4.31 / 3.5.13, as kbench's etcd model is)."""


DEFAULT_CONFIG = WorkEstimatorConfig()


@dataclass(frozen=True)
class WorkEstimate:
    """request/width.go WorkEstimate: seats while executing, seats held ``additional_latency`` seconds after."""

    initial_seats: int
    final_seats: int = 0
    additional_latency: float = 0.0
    max_seats: int = field(init=False, repr=False, compare=False)
    """The seats the request occupies from dispatch until its last seat frees (WorkEstimate.MaxSeats)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "max_seats", max(self.initial_seats, self.final_seats))


ONE_SEAT = WorkEstimate(1)
"""The estimate of most requests (estimates are immutable, so one object serves them all)."""


@dataclass(frozen=True)
class Stats:
    """storage.Stats: a resource's object count and the average serialized size of its objects (bytes)."""

    object_count: int
    average_size: int


def level_max_seats(nominal_cl: int, hand_size: int) -> int:
    """The max seats a queuing level's requests may be estimated at: ``max(1, min(ceil(0.15 x nominalCL),
    nominalCL / handSize))`` (apf_controller.go finishQueueSetReconfigsLocked)."""
    return int(max(1, min(math.ceil(nominal_cl * PRIORITY_LEVEL_MAX_SEATS_PERCENT), nominal_cl // hand_size)))


def list_from_storage(options: Mapping, consistent_from_cache: bool = True) -> bool:
    """Whether a list goes to etcd, as the estimator judges it (delegator.ShouldDelegateListMeta with
    CacheWithoutSnapshots): an exact resourceVersion, a continue token, a limit with a resourceVersion other than
    "" and "0", or a consistent read (no resourceVersion) when the cache cannot serve those
    (``consistent_from_cache``: ConsistentListFromCache, GA in v1.34, and etcd's RequestWatchProgress)."""
    match = options.get("resourceVersionMatch") or ""
    rv = str(options.get("resourceVersion") or "")
    if match == "Exact":
        return True
    if match == "NotOlderThan":
        return False
    if match:
        return True
    if options.get("continue"):
        return True
    if int(options.get("limit") or 0) > 0 and rv not in ("", "0"):
        return True
    return rv == "" and not consistent_from_cache


def seats_by_object_size(
    stats: Stats, limit: int, from_cache: bool, single: bool, selector: bool, config: WorkEstimatorConfig
) -> int:
    """listWorkEstimator.seatsBasedOnObjectSize: seats for the bytes a list holds in memory at once."""
    size = stats.average_size
    if size <= 0 and stats.object_count != 0:
        size = MAX_OBJECT_SIZE
    limited = min(limit, stats.object_count) if limit > 0 else stats.object_count
    if single:
        loaded = 1
    elif from_cache:
        loaded = limited
    elif selector:
        loaded = max(limited, stats.object_count // 2)
    else:
        loaded = limited
    memory = loaded * size
    if from_cache:
        memory = min(memory, CACHE_WITH_STREAMING_MAX_MEMORY_USAGE)
    return math.ceil(memory / BYTES_PER_SEAT)


def seats_by_object_count(
    stats: Stats, limit: int, from_cache: bool, single: bool, selector: bool, config: WorkEstimatorConfig
) -> int:
    """listWorkEstimator.seatsBasedOnObjectCount: one seat per objectsPerSeat objects the list processes."""
    stored = stats.object_count
    limited = limit if 0 < limit < stored else stored
    if single:
        processed = 1
    elif from_cache:
        processed = stored
    elif selector:
        processed = stored + limited
    else:
        processed = 2 * limited
    return math.ceil(processed / config.objects_per_seat)


def request_name(req) -> str:
    """RequestInfo.Name: the object's name, or for a list or watch the value of its ``metadata.name=`` field
    selector (request/requestinfo.go)."""
    if req.name:
        return req.name
    flt = getattr(req, "filter", None)
    if flt is None:
        return ""
    return next((value for f, eq, value in flt.fields if f == "metadata.name" and eq), "")


def cache_stats(caches: Mapping) -> Callable[[str], Stats | None]:
    """``stats(resource)`` read from the watch caches (``objects`` and running ``bytes``), as Storage.Stats counts
    the resource's keys and estimates their average size; None for a resource without a cache (not found)."""

    def read(resource: str) -> Stats | None:
        cache = caches.get(resource)
        if cache is None:
            return None
        count = len(cache.objects)
        return Stats(count, cache.bytes // count if count else 0)

    return read


class WatchTracker:
    """watch_tracker.go: the watches registered at one apiserver, counted by (resource, namespace, name); a watch
    that selects one value of an indexed field (a kubelet's ``spec.nodeName``) is not counted."""

    def __init__(self) -> None:
        self.counts: dict[tuple[str, str, str], int] = {}

    def register(self, resource: str, namespace: str, name: str, fields: tuple = ()) -> Callable[[], None]:
        """Count a watch (RegisterWatch); returns the function that forgets it."""
        index = INDEXES.get(resource)
        if index is not None and any(f == index and eq and value for f, eq, value in fields):
            return lambda: None
        key = (resource, namespace, name)
        self.counts[key] = self.counts.get(key, 0) + 1

        def forget() -> None:
            left = self.counts[key] - 1
            if left:
                self.counts[key] = left
            else:
                del self.counts[key]

        return forget

    def watch_count(self, req) -> int:
        """:meth:`interested` in a request: its verb, resource, namespace and name (:func:`request_name`)."""
        return self.interested(req.verb, req.resource_name, req.namespace, request_name(req))

    def interested(self, verb: str, resource: str, namespace: str, name: str) -> int:
        """GetInterestedWatchCount: watches of the whole resource, of the namespace and of the object."""
        if verb in READ_ONLY_VERBS:
            return 0
        count = self.counts.get((resource, "", ""), 0)
        if namespace:
            count += self.counts.get((resource, namespace, ""), 0)
        if name:
            count += self.counts.get((resource, namespace, name), 0)
        return count


class ObjectCountTracker:
    """The storage stats the list estimator reads (object_count_tracker.go), refreshed every ``period`` seconds as
    the registry's startObservingCount polls ``Storage.Stats`` (the first poll at once).

    ``now()`` is the engine's clock, ``read(resource)`` the current :class:`Stats` of a resource (None: unknown).
    kbench reads them lazily at the first estimate after each poll time, which gives the values of that moment
    rather than of the poll instant (at most one period apart, as upstream's are)."""

    def __init__(
        self, now: Callable[[], float], read: Callable[[str], Stats | None], period: float = COUNT_METRIC_POLL_PERIOD
    ) -> None:
        self._now, self._read, self.period = now, read, period
        self._polled: dict[str, tuple[float, Stats | None]] = {}

    def get(self, resource: str) -> Stats | None:
        """The last polled stats of ``resource``."""
        now = self._now()
        last = self._polled.get(resource)
        if last is None or now >= last[0] + self.period:
            at = now if last is None else last[0] + self.period * ((now - last[0]) // self.period)
            last = self._polled[resource] = (at, self._read(resource))
        return last[1]


class WorkEstimator:
    """request/width.go NewWorkEstimator: the :class:`WorkEstimate` of a request at a priority level.

    ``stats(resource)`` gives the resource's :class:`Stats` (None: not found, the minimum), ``watch_count(req)`` the
    interested watches (:meth:`WatchTracker.interested`), ``max_seats(level)`` the level's max seats (0: none).
    A request has ``verb``, ``resource_name``, ``namespace``, ``name``, ``subresource``, ``options`` (list
    options: ``limit``, ``continue``, ``resourceVersion``, ``resourceVersionMatch``, ``sendInitialEvents``) and
    ``filter`` (its :class:`~kbench.apiserver.objects.Filter`, None for other verbs)."""

    def __init__(
        self,
        stats: Callable[[str], Stats | None],
        watch_count: Callable[[Any], int],
        max_seats: Callable[[str], int],
        config: WorkEstimatorConfig = DEFAULT_CONFIG,
    ) -> None:
        self.stats, self.watch_count, self.max_seats, self.config = stats, watch_count, max_seats, config
        self._minimum = WorkEstimate(config.minimum_seats)

    def estimate(self, req, level: str) -> WorkEstimate:
        """workEstimator.estimate: by verb."""
        verb = req.verb
        if verb == "list" or (verb == "watch" and self.config.watch_list):
            return self.estimate_list(req, level)
        if verb in ("create", "update", "patch", "delete"):
            return self.estimate_mutating(req, level)
        return self._minimum

    def _cap(self, level: str, limit: int) -> int:
        seats = self.max_seats(level)
        return limit if seats == 0 or seats > limit else seats

    def estimate_list(self, req, level: str) -> WorkEstimate:
        """listWorkEstimator.estimate."""
        config, options = self.config, req.options
        max_seats = self._cap(level, config.maximum_list_seats_limit)
        if req.verb == "watch":
            rv = str(options.get("resourceVersion") or "")
            if not options.get("sendInitialEvents") and rv not in ("", "0"):
                return self._minimum
        from_cache = req.verb == "watch" or not list_from_storage(options, config.consistent_list_from_cache)
        stats = self.stats(req.resource_name)
        if stats is None:  # ObjectCountNotFoundErr: the minimum
            return self._minimum
        seats_of = seats_by_object_size if config.size_based_list_cost_estimate else seats_by_object_count
        flt = req.filter
        single = bool(request_name(req))
        selected = flt is not None and (flt.labels is not None or bool(flt.fields))
        seats = seats_of(stats, int(options.get("limit") or 0), from_cache, single, selected, config)
        return WorkEstimate(min(max(seats, config.minimum_seats), max_seats))

    def estimate_mutating(self, req, level: str) -> WorkEstimate:
        """mutatingWorkEstimator.estimate."""
        config = self.config
        if not config.mutating_enabled:
            return self._minimum
        if req.resource_name == "serviceaccounts" and req.subresource == "token":
            return self._minimum
        watches = self.watch_count(req)
        if watches < int(config.watches_per_seat):
            return ONE_SEAT
        final = math.ceil(watches / config.watches_per_seat)
        work = final * config.event_additional_duration  # SeatsTimesDuration, reshaped to the capped width
        final = min(final, self._cap(level, config.maximum_mutating_seats_limit))
        return WorkEstimate(1, final, work / final)
