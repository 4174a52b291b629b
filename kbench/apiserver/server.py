"""kube-apiserver on the engine: instances behind a load balancer, each with flow control and watch caches,
all over the modelled etcd.

A request reaches an instance (the one its connection is pinned to), waits for flow control
(``flowcontrol.py``), then:

- **reads** (get, list) are served from the instance's watch cache (v1.35 serves consistent reads from the
  cache, ``ConsistentListFromCache``);
- **watches** start from a resourceVersion in the cache's window, or get 410 Gone;
- **writes** (create, update, patch, delete, and the status subresource) run admission (``admission.py``) and the
  registry's strategy (``registry.py``), then go to etcd as a compare-and-put on the object's key
  (``/registry/...``) checked when the write applies: a stale ``metadata.resourceVersion`` is 409 Conflict, an
  existing name 409 AlreadyExists. The revision etcd assigns is the new ``resourceVersion``; every instance's watch
  cache sees the event.
- **deletecollection** lists the matching items as a list does, then deletes each through the write path above with
  ``--delete-collection-workers`` workers; one request to flow control and the SLI (``DELETECOLLECTION``).

Every request runs on its instance's CPU (``cpu.py``: ``cores`` cores, first come first served), so its latency =
flow-control wait + the wait for a core + its CPU + the etcd round trip + the network. Its CPU, from the profile's
``apiserver`` section: ``request_overhead`` (authn, authz, admission, conversion); reads from the watch cache
``list_per_object`` per object scanned, reads from etcd ``decode_per_object`` and ``decode_per_byte`` per object and
byte fetched; writes decode the object and encode it for storage before going to etcd (``_write``); every answer is
encoded at ``encode_per_byte``. Each watch event costs every instance's cacher its decoding from etcd, then once per
instance with watchers its encoding (the cacher's CachingObject serializes an event once) and ``watch_per_watcher``
per watcher it is sent to (``_dispatch_event``); events leave once the busiest of those instances has done that.
Simplifications: a request's CPU runs as one job when it is dispatched (a read from etcd waits for the core before its
etcd range; a write encodes its answer before etcd, with its storage encoding). Every request's latency is
recorded per verb, resource and scope for the APIResponsiveness SLI (``sli()``). The instances' flags are a
:class:`~kbench.apiserver.config.KubeAPIServerConfig`.
"""

from __future__ import annotations

import itertools
from array import array
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol, Self

import numpy as np
import orjson

from kbench.api.policy import system_priority_class_manifests
from kbench.apiserver.config import KubeAPIServerConfig
from kbench.apiserver.cpu import Cores
from kbench.apiserver.flowcontrol import HELD, MaxInFlight, PriorityAndFairness
from kbench.apiserver.objects import (
    RESOURCES,
    APIError,
    Filter,
    Resource,
    encode,
    not_found,
    object_key,
    timestamp,
)
from kbench.apiserver.registry import Registry, compare_and_write, own, precondition_error
from kbench.apiserver.watchcache import WatchCache
from kbench.apiserver.workestimator import cache_stats
from kbench.etcd.cluster import EtcdCluster
from kbench.profiles import Profile, UnitCosts, load_profile
from kbench.sim import Engine, Streams, Timer

SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
WRITE_VERBS = ("create", "update", "patch", "delete")
SELECTING_VERBS = ("list", "watch", "deletecollection")
"""The verbs whose requests carry label and field selectors."""
VERBS = ("get", "list", "watch", *WRITE_VERBS, "deletecollection")
Callback = Callable[[Mapping | None, APIError | None, float], object]
"""``callback(result, error, delay)``: runs when the apiserver has the answer; ``delay`` is how long the answer
takes to reach the client (callers fold it into their next event, or use ``Connection.call``)."""


class LeaseRenewals(Protocol):
    """Lease renewals sent another way than as requests (:mod:`kbench.apiserver.renewals`)."""

    def send(self, client: Any, lease: Mapping, renew_time: str, callback: Callback, delay: float) -> Timer:
        """Renew ``lease`` with ``renew_time`` ``delay`` seconds from now, as ``client``; cancelling the handle before
        then takes it back."""
        ...


@dataclass(frozen=True)
class APIServerCosts(UnitCosts):
    """kube-apiserver's unit costs: the profile's ``apiserver`` section (CPU seconds per request, object, byte or
    watcher; ``watch_dispatch`` and ``network_rtt`` are delays)."""

    section = "apiserver"
    cores: int
    """CPU cores of each instance."""
    request_overhead: float
    decode_per_byte: float
    decode_per_object: float
    list_per_object: float
    encode_per_byte: float
    watch_per_watcher: float
    watch_dispatch: float
    network_rtt: float


@dataclass
class Instance:
    """One kube-apiserver instance: its index (the etcd member its client talks to), watch caches, flow control and
    CPU."""

    index: int
    caches: dict[str, WatchCache]
    flow: PriorityAndFairness | MaxInFlight
    cpu: Cores


@dataclass
class SLI:
    """Request latencies by (verb, resource, scope), as apiserver_request_duration_seconds: C doubles (8 bytes a
    request instead of a Python float's 32 and a list slot), as millions of requests are kept. Read them as a copy
    (``np.array(values)``) if the run goes on: a NumPy view kept alive stops further appends (BufferError)."""

    samples: dict[tuple[str, str, str], array] = field(default_factory=lambda: defaultdict(partial(array, "d")))
    rejected: int = 0

    def table(self):
        """One row per (verb, resource, scope): count and p50 / p90 / p99 latency (s)."""
        import pandas as pd

        rows = []
        for (verb, resource, scope), values in sorted(self.samples.items()):
            q = np.percentile(values, [50, 90, 99])
            rows.append(
                {
                    "verb": verb,
                    "resource": resource,
                    "scope": scope,
                    "count": len(values),
                    "p50_s": q[0],
                    "p90_s": q[1],
                    "p99_s": q[2],
                }
            )
        return pd.DataFrame(rows, columns=["verb", "resource", "scope", "count", "p50_s", "p90_s", "p99_s"])


class APIServer:
    """The kube-apiserver instances of a cluster, sharing one etcd.

    Parameters
    ----------
    engine : Engine
    profile : Profile, optional
        Unit costs (its ``apiserver`` section; default: the default profile).
    config : KubeAPIServerConfig, optional
        The instances' flags (default: upstream's defaults): flow control, its limits, the etcd compaction interval.
    instances : int
        kube-apiserver instances behind the load balancer (cluster topology).
    streams : Streams, optional
        Random streams (default: seed 0).
    etcd : EtcdCluster, optional
        Defaults to a new cluster on the engine with the same profile.
    """

    def __init__(
        self,
        engine: Engine,
        profile: Profile | None = None,
        config: KubeAPIServerConfig | None = None,
        instances: int = 3,
        streams: Streams | None = None,
        etcd: EtcdCluster | None = None,
    ):
        if isinstance(instances, bool) or not isinstance(instances, int) or instances < 1:
            raise ValueError(f"instances: must be a positive integer; got {instances!r}")
        profile = profile or load_profile()
        self.engine = engine
        self.config = config = config or KubeAPIServerConfig()
        self.streams = streams or Streams(0)
        self.etcd = etcd or EtcdCluster(engine, profile, self.streams)
        self.etcds = self._etcds(profile)
        """The etcd cluster of each resource: the main one, or its own under --etcd-servers-overrides."""
        if config.etcd_compaction_interval > 0:  # --etcd-compaction-interval: the apiserver compacts etcd's history
            for cluster in {id(e): e for e in self.etcds.values()}.values():
                cluster.start_compactor(config.etcd_compaction_interval)
        self.costs = APIServerCosts.from_profile(profile)
        self.half_rtt = self.costs.network_rtt / 2
        """The network's one-way delay between a client and an instance."""
        # Every instance's watch cache is fed the same etcd events at the same moment, so kbench keeps their
        # contents once; each watch still belongs to the instance its client is connected to.
        self.caches = {name: self._cache(res) for name, res in RESOURCES.items()}
        self._dispatchers = {name: partial(self._dispatch_event, cache) for name, cache in self.caches.items()}
        """Each cache's ``cpu`` callback for :meth:`WatchCache.apply` (:meth:`_dispatch_event` on that cache)."""
        self.instances = [
            Instance(i, self.caches, self._flow_control(), Cores(self.costs.cores)) for i in range(instances)
        ]
        self._cores = [instance.cpu for instance in self.instances]
        self._next = itertools.cycle(range(instances))
        self.registry = Registry(config, self.caches, lambda: engine.now, self.streams.python("apiserver/generateName"))
        self.sli = SLI()
        self.requests = 0
        self.renewals: LeaseRenewals | None = None
        """Where nodes send their Lease renewals instead of their clients' requests, when set
        (:class:`kbench.apiserver.renewals.CoalescedRenewals`)."""
        for ns in SYSTEM_NAMESPACES:  # bootstrapped before the first request, as the apiserver's own controllers do
            self._bootstrap(
                "namespaces",
                {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}, "status": {"phase": "Active"}},
            )
        for pc in system_priority_class_manifests():  # storage_scheduling.go's PostStartHook AddSystemPriorityClasses
            self._bootstrap("priorityclasses", pc)

    def _etcds(self, profile: Profile) -> dict[str, EtcdCluster]:
        """Each resource's etcd: one more cluster per distinct server list of --etcd-servers-overrides."""
        clusters: dict[str, EtcdCluster] = {}
        out = {}
        for name, res in RESOURCES.items():
            servers = self.config.etcd_servers(res.group_resource)
            if servers is not None and servers not in clusters:
                label = f"etcd-{len(clusters) + 1}"
                clusters[servers] = EtcdCluster(self.engine, profile, self.streams, name=label)
            out[name] = self.etcd if servers is None else clusters[servers]
        return out

    def _cache(self, res: Resource) -> WatchCache:
        """The watch cache of ``res``; a resource without one (--watch-cache, --watch-cache-sizes) is read from etcd,
        its events reaching the apiserver through etcd's watch."""
        engine, costs = self.engine, self.costs

        def delay(size: int) -> float:  # the event's encoding is in its CPU (_dispatch_event)
            return costs.watch_dispatch + costs.network_rtt / 2

        if self.config.cached(res.group_resource):
            return WatchCache(res.name, engine.schedule, lambda: engine.now, delay)
        etcd, store = self.etcds[res.name].costs, self.etcds[res.name].store
        return WatchCache(
            res.name,
            engine.schedule,
            lambda: engine.now,
            lambda size: delay(size) + etcd.watch_delivery + etcd.client_rtt / 2,
            compacted=lambda: store.compact_revision,
        )

    def _flow_control(self) -> PriorityAndFairness | MaxInFlight:
        """One instance's flow control: APF, or the max-in-flight filter when --enable-priority-and-fairness=false."""
        config, engine = self.config, self.engine
        if config.enable_priority_and_fairness:
            return PriorityAndFairness(
                engine.schedule,
                lambda: engine.now,
                config.server_concurrency_limit,
                config.request_wait_limit,
                stats=cache_stats(self.caches),
            )
        return MaxInFlight(lambda: engine.now, config.max_requests_inflight, config.max_mutating_requests_inflight)

    def connect(self, user: str, groups: tuple[str, ...] = ()) -> Connection:
        """A client connection, pinned to one instance (the load balancer spreads connections round robin)."""
        instance = self.instances[next(self._next)]
        return Connection(self, instance, user, tuple(groups))

    # -- the request path ---------------------------------------------------------------------------------
    def arrive(self, op: Request) -> None:
        """A request reaches its instance: counted, then to flow control."""
        self.requests += 1
        op.conn.instance.flow.arrive(op)

    def _finish(self, op: Request, result, error, server_time: float) -> None:
        """The answer is ready (encoded) at the apiserver ``server_time`` from now; it reaches the client after the
        network. An error answered drops the traceback it was raised with: its frames hold the request, which holds the
        answer's callback, a reference cycle that only the collector would free.

        A coalesced Lease renewal is answered at its commit tick (:mod:`kbench.apiserver.renewals`), its
        ``server_time`` the time from now to when etcd's answer was due, so it may be negative: its SLI sample is its
        own latency, and a success reaches the client as of when it was due (its next renewal is as due), an error now
        (it is acted on now)."""
        delay = server_time if op.internal else server_time + self.half_rtt
        if error is not None:
            error.__traceback__ = None
        if op.scope:
            self.sli.samples[op.verb, op.resource_name, op.scope].append(self.engine.now + delay - op.started)
        op.callback(result, error, delay if error is None else max(delay, 0.0))

    def _cpu(self, op: Request, seconds: float) -> float:
        """Run ``seconds`` of CPU for ``op`` on its instance's cores now; returns how long until done (the wait for a
        core included)."""
        now = self.engine.now
        return op.conn.instance.cpu.run(now, seconds) - now

    # -- bootstrap (no latency, before any client) ----------------------------------------------------------
    def _bootstrap(self, resource: str, obj: dict) -> None:
        res = RESOURCES[resource]
        meta = obj["metadata"]
        meta.setdefault("uid", self.registry.new_uid())
        meta.setdefault("creationTimestamp", timestamp(self.engine.now))
        key = res.key(meta.get("namespace", ""), meta["name"])
        rev = self.etcds[resource].store.put(key.encode(), encode(obj)).revision
        meta["resourceVersion"] = str(rev)
        self.caches[resource].apply("ADDED", object_key(obj), obj, rev, len(orjson.dumps(obj)))

    # -- writes -------------------------------------------------------------------------------------------
    def _write(self, op: Request, now: float) -> float:
        """Run admission; on the instance's CPU decode the object, encode it for storage and for the answer (one job,
        before etcd), then send the write to etcd (:meth:`_propose`). Returns when the request will release its seats:
        :data:`HELD` for a write sent to etcd (``_propose`` says when, once it knows)."""
        planned = self.plan_write(op, now)
        if isinstance(planned, float):
            return planned
        kind, obj, value, expect, done = planned
        self.engine.schedule(done - now, self._propose, (op, kind, obj, value, expect))
        return HELD

    def plan_write(self, op: Request, now: float) -> float | tuple[str, dict, bytes, tuple, float]:
        """A write's admission and plan, and its CPU on the instance: (kind, object, value to store, etcd
        precondition, when its CPU is done). A write answered without etcd (refused, or nothing to store) is answered
        here; then the seats' release time is returned instead."""
        c = self.costs
        try:
            plan = self.registry.plan(op)
        except APIError as err:
            server = self._cpu(op, c.request_overhead)
            self._finish(op, None, err, server)
            return now + server
        if plan is None:  # nothing to write (e.g. delete of an object already terminating)
            current = self.registry.unwritten(op)  # the object as it is, or an answer never stored
            server = self._cpu(op, c.request_overhead + (current[2] if current else 0) * c.encode_per_byte)
            self._finish(op, current[0] if current else None, None, server)
            return now + server
        return self.planned_write(op, *plan, now)

    def planned_write(
        self, op: Request, kind: str, obj: dict, expect: tuple, now: float
    ) -> tuple[str, dict, bytes, tuple, float]:
        """:meth:`plan_write` for a write whose plan (event kind, object to store, precondition) is made: its value
        and its CPU on the instance, one job (decode the body, encode the object for storage and for the answer)."""
        c = self.costs
        value = b"" if kind == "DELETED" else encode(obj)
        decoded = len(value)  # the body; a delete decodes the stored object
        if not decoded:
            current = op.cache.objects.get(op.key)
            decoded = current[2] if current else 0
        cpu = (
            c.request_overhead + c.decode_per_object + decoded * c.decode_per_byte + 2 * len(value) * c.encode_per_byte
        )
        return kind, obj, value, expect, now + self._cpu(op, cpu)

    def _propose(self, args: tuple) -> None:
        """The write's CPU is done: send it to etcd as a compare-and-put; the request holds its seats until it has
        answered."""
        op, kind, obj, value, expect = args
        key = storage_key(op, obj)
        etcd = self.etcds[op.resource.name]
        answered = etcd.submit(  # partials, not closures: no Python frame of their own when etcd calls them
            partial(compare_and_write, etcd.store, key, kind, value, expect),
            len(key) + len(value),
            op.conn.instance.index,
            partial(self.written, op, kind, obj, value),
        )
        if op.held is not None:
            op.held(answered)

    def written(self, op: Request, kind: str, obj: dict, value: bytes, ok: bool, result, delay: float) -> None:
        """etcd applied the write's txn: answer the error, or record the event in the watch caches and answer the
        stored object (its new resourceVersion the revision etcd assigned)."""
        if not ok:  # an etcd error (e.g. request too large)
            self._finish(op, None, APIError(500, "InternalError", str(result)), delay)
            return
        error, rev = result
        if error is not None:
            self._finish(op, None, precondition_error(error, op.resource, obj["metadata"]["name"]), delay)
            return
        out = obj if kind != "DELETED" else own(obj)  # the stored object stays as it was; only metadata changes
        out["metadata"]["resourceVersion"] = str(rev)
        # an update or delete wrote the object the request found under op.key; a create's name may be generated
        key = op.key if kind != "ADDED" else object_key(out)
        name = op.resource_name
        self.caches[name].apply(kind, key, out, rev, len(value), self._dispatchers[name])
        self._finish(op, out, None, delay)

    def updated(self, writes: list[tuple[Request, dict, bytes, float]], results: list[tuple]) -> None:
        """:meth:`written` for updates of one unindexed resource (every event has the same watchers: not pods) that
        etcd applied just now, one after another, each (request, object, value, when its answer is due) with its
        result ((failed precondition or None, revision)): the same events, CPU and answers in the same order. What the
        events share is looked up once: the watch cache, its watchers and each instance's count of them, and an
        event's delay and CPU for each size; each instance's CPU for the events runs in one call
        (:meth:`_events_cpu`). The answers' callbacks must not use an instance's CPU, nor start or stop a watch of the
        resource, at once (coalesced Lease renewals: a node's next renewal is a request)."""
        cache = self.caches[writes[0][0].resource_name]
        assert cache.index_field is None  # an indexed cache's events each have watchers of their own
        now, watchers, finish = self.engine.now, cache.others, self._finish
        sizes = [len(write[2]) for write, result in zip(writes, results, strict=True) if result[0] is None]
        ready = iter(self._events_cpu(cache, self._watch_counts(watchers), sizes))
        delays = {size: cache.delay(size) for size in set(sizes)}
        jobs = [cpu.jobs for cpu in self._cores]  # the events' CPU ran first: the answers must take none
        for (op, obj, value, answered), result in zip(writes, results, strict=True):
            error, rev = result
            if error is not None:
                self.written(op, "MODIFIED", obj, value, True, result, answered - now)
                continue
            obj["metadata"]["resourceVersion"] = str(rev)
            size = len(value)
            prev = cache.record("MODIFIED", op.key, obj, rev, size, now)
            cache.send(watchers, "MODIFIED", obj, prev, rev, now + delays[size] + next(ready), now)
            finish(op, obj, None, answered - now)
        assert [cpu.jobs for cpu in self._cores] == jobs, "an answer's callback took an instance's CPU at once"

    def _dispatch_event(self, cache: WatchCache, watchers: list, size: int) -> float:
        """Put a watch event's CPU on the instances (``watchers``: the cache's watches that may want it); returns how
        long until the busiest instance with watchers of it has sent it. Every instance's cacher decodes the event
        from etcd (cacher.go's reflector); one with watchers encodes it once (CachingObject) and pays
        ``watch_per_watcher`` per watcher. Without a watch cache each watcher has its own etcd watch: the event is
        decoded and encoded for each."""
        counts, now, ready = self._watch_counts(watchers), self.engine.now, 0.0
        for cpu, n, seconds in zip(self._cores, counts, self._event_jobs(cache, counts, size)):
            end = cpu.run(now, seconds)
            if n and end - now > ready:
                ready = end - now
        return ready

    def _watch_counts(self, watchers: list) -> list[int]:
        """How many of ``watchers`` each instance sends events to."""
        counts = [0] * len(self._cores)
        for watch in watchers:
            counts[watch.instance] += 1
        return counts

    def _events_cpu(self, cache: WatchCache, counts: list[int], sizes: list[int]) -> list[float]:
        """:meth:`_dispatch_event` for events of ``sizes`` bytes to ``counts`` watchers on each instance, one after
        another, all now: each instance's jobs for them in one call of its cores
        (:meth:`~kbench.apiserver.cpu.Cores.run_all`)."""
        now = self.engine.now
        jobs = {size: self._event_jobs(cache, counts, size) for size in set(sizes)}
        ready = [0.0] * len(sizes)
        for i, (cpu, n) in enumerate(zip(self._cores, counts, strict=True)):
            ends = cpu.run_all(now, [jobs[size][i] for size in sizes])
            if n:
                ready = [end - now if end - now > r else r for end, r in zip(ends, ready, strict=True)]
        return ready

    def _event_jobs(self, cache: WatchCache, counts: list[int], size: int) -> list[float]:
        """The CPU seconds of an event of ``size`` bytes on each instance, which sends it to ``counts`` watchers."""
        c = self.costs
        decode = c.decode_per_object + size * c.decode_per_byte
        encode, per_watcher = size * c.encode_per_byte, c.watch_per_watcher
        jobs = []
        if cache.compacted is None:
            for n in counts:
                jobs.append(decode + (encode if n else 0.0) + n * per_watcher)
        else:
            for n in counts:
                jobs.append(n * (decode + encode + per_watcher))
        return jobs

    # -- reads and watches --------------------------------------------------------------------------------
    def _read(self, op: Request, now: float) -> float:
        """A get or list, from the watch cache (or etcd); returns when the request will release its seats."""
        if op.verb == "get":
            return self._get(op, now)
        return self._list(op, now)

    def _get(self, op: Request, now: float) -> float:
        """A get: its CPU (and the object's decoding when read from etcd), then etcd's range if not cached."""
        c = self.costs
        current = op.cache.get(op.key)
        size = current[2] if current else 0
        cpu = c.request_overhead + size * c.encode_per_byte
        if op.cache.compacted is not None and current:
            cpu += c.decode_per_object + size * c.decode_per_byte
        server = self._cpu(op, cpu) + self._from_etcd(op, 1 if current else 0, size)
        if current is None:
            self._finish(op, None, not_found(op.resource, op.name), server)
        else:
            self._finish(op, current[0], None, server)
        return now + server

    def _list(self, op: Request, now: float) -> float:
        result, _, server = self._listed(op)
        self._finish(op, result, None, server)
        return now + server

    def _listed(self, op: Request, encode: bool = True) -> tuple[dict, int, float]:
        """A list's result, its encoded size and its server time: from the watch cache (``list_per_object`` per object
        scanned), or a range over the prefix in etcd, every fetched object decoded and filtered by the apiserver; the
        result encoded unless ``encode`` is false (a DeleteCollection answers what it deleted)."""
        c = self.costs
        assert op.filter is not None  # set for every list that reaches dispatch (a bad selector is op.error)
        items, rv, size = op.cache.list(op.filter)
        cpu = c.request_overhead + (size * c.encode_per_byte if encode else 0.0)
        etcd = 0.0
        if op.cache.compacted is not None:  # no watch cache: a range over the prefix, filtered by the apiserver
            fetched, nbytes = op.cache.scope(op.namespace)
            etcd = self._from_etcd(op, fetched, nbytes)
            cpu += fetched * c.decode_per_object + nbytes * c.decode_per_byte
            rv = self.etcds[op.resource.name].store.revision
        else:
            cpu += self._scanned(op, len(items)) * c.list_per_object
        return (
            {"kind": op.resource.kind + "List", "metadata": {"resourceVersion": str(rv)}, "items": items},
            size,
            self._cpu(op, cpu) + etcd,
        )

    @staticmethod
    def _scanned(op: Request, matched: int) -> int:
        """Objects a list from the watch cache walks: the matches of an indexed field (pods by ``spec.nodeName``,
        the cacher's index), else every object in its namespace (the cache's ordered keys) or resource."""
        cache, flt = op.cache, op.filter
        assert flt is not None
        if cache.index_field and any(f == cache.index_field and eq for f, eq, _ in flt.fields):
            return matched
        return cache.scope(op.namespace)[0] if op.namespace else len(cache.objects)

    def _delete_collection(self, op: Request) -> float:
        """DeleteCollection (apiserver/pkg/registry/generic/registry/store.go): list the matching items as a list
        does, then delete each through the per-object delete path (:class:`_Collection`); the request holds its
        seat (:data:`~kbench.apiserver.flowcontrol.HELD`) until the last delete has answered."""
        listed, size, server = self._listed(op, encode=False)
        self.engine.schedule(server, _Collection(self, op, listed, size).start)
        return HELD

    def _from_etcd(self, op: Request, keys: int, nbytes: int) -> float:
        """Seconds a read spends in etcd: none for a resource served from the watch cache, else a linearizable
        range on the instance's member."""
        if op.cache.compacted is None:
            return 0.0
        return self.etcds[op.resource.name].read_latency(op.conn.instance.index, keys, nbytes)

    def _watch(self, op: Request, now: float) -> float:
        c = self.costs
        try:
            rv = int(op.options.get("resourceVersion") or op.cache.rv)
            assert op.filter is not None
            watch = op.cache.watch(op.filter, rv, op.options["on_events"])
        except APIError as err:
            server = self._cpu(op, c.request_overhead)
            self._finish(op, None, err, server)
            return now + server
        watch.instance = op.conn.instance.index  # whose CPU sends its events
        # the handler's work, then the cacheWatcher's walk and encoding of the initial events; APF holds the watch's
        # seat until they are sent (WatchInitialized, cache_watcher.go), the client has its answer before that
        initial = watch.initial_events * c.list_per_object + watch.initial_bytes * c.encode_per_byte
        done = self._cpu(op, c.request_overhead + initial)
        self._finish(op, {"watch": watch}, None, done - initial)
        op.conn.instance.flow.watching(op, watch)  # counted for the mutating work estimate until it stops
        return now + done


class Request:
    """One request: its parameters, where its answer goes, and the interface flow control uses."""

    __slots__ = (
        "server",
        "conn",
        "verb",
        "resource",
        "namespace",
        "name",
        "body",
        "subresource",
        "options",
        "callback",
        "started",
        "filter",
        "scope",
        "seats",
        "arrival",
        "error",
        "held",
        "internal",
        "resource_name",
        "user",
        "groups",
        "cache",
        "key",
    )

    def __init__(
        self,
        server: APIServer,
        conn: Connection,
        verb: str,
        resource: Resource,
        namespace: str,
        name: str,
        body: Mapping | None,
        subresource: str,
        options: dict,
        callback: Callback,
        started: float,
    ) -> None:
        self.server, self.conn, self.verb, self.resource = server, conn, verb, resource
        self.namespace, self.name, self.body, self.subresource = namespace, name, body, subresource
        self.options, self.callback, self.started = options, callback, started
        self.filter: Filter | None = None
        self.scope = ""
        self.seats = 1
        self.arrival = 0.0
        self.error: APIError | None = None
        """A request the apiserver refuses before running it (e.g. an unknown field selector)."""
        self.held: Callable[[float], object] | None = None
        """Set by flow control when dispatch holds the seats (a DeleteCollection): call it with their release time."""
        self.internal = False
        """A delete a DeleteCollection makes inside the apiserver: no network, no encoding, no SLI sample."""
        # what flow control and the registry read of the request, looked up once
        self.resource_name, self.user, self.groups = resource.name, conn.user, conn.groups
        self.cache: WatchCache = conn.instance.caches[resource.name]
        self.key = f"{namespace}/{name}" if resource.namespaced else name
        """``namespace/name`` (``name`` for a cluster-scoped resource): the watch cache's key of the object."""

    @classmethod
    def of(
        cls,
        conn: Connection,
        verb: str,
        res: Resource,
        namespace: str,
        name: str,
        body: Mapping | None,
        subresource: str,
        options: dict,
        callback: Callback,
        sent: float,
        label_selector=None,
        field_selector: str | None = None,
    ) -> Self:
        """The request a client sends at ``sent`` on ``conn`` (:meth:`Connection.build`): its target, read from the
        body when not given, and its selectors parsed."""
        namespace, name = request_target(res, verb, namespace, name, body)
        op = cls(conn.server, conn, verb, res, namespace, name, body, subresource, options, callback, sent)
        if verb in SELECTING_VERBS:
            op.select(label_selector, field_selector)
        else:  # CleanScope (endpoints/metrics): a request that names its object
            op.scope = "resource"
        return op

    def select(self, label_selector, field_selector: str | None) -> None:
        """A list's, watch's or DeleteCollection's selectors parsed (a bad one is answered as an error) and its SLI
        scope; flow control's work estimator sets the seats."""
        try:
            self.filter = Filter.of(self.resource, self.namespace, label_selector, field_selector)
        except APIError as err:  # kept without its traceback, whose frame holds this request: a cycle
            self.error = err.with_traceback(None)
        if self.verb == "deletecollection" and not self.resource.delete_collection:
            self.error = method_not_supported(self.resource, self.verb)
        if self.verb != "watch":  # CleanScope: no name, so the namespace's or the cluster's
            self.scope = "namespace" if self.namespace else "cluster"

    def dispatch(self) -> float:
        """Run the request (it has its seats); returns when it will release them."""
        now = self.server.engine.now
        if self.error is not None:
            server = self.server._cpu(self, self.server.costs.request_overhead)
            self.server._finish(self, None, self.error, server)
            return now + server
        if self.verb in WRITE_VERBS:
            return self.server._write(self, now)
        if self.verb == "deletecollection":
            return self.server._delete_collection(self)
        if self.verb == "watch":
            return self.server._watch(self, now)
        return self.server._read(self, now)

    def reject(self) -> None:
        """Flow control turns it away: 429 TooManyRequests at once."""
        self.server.sli.rejected += 1
        self.server._finish(
            self, None, APIError(429, "TooManyRequests", "Too many requests, please try again later."), 0.0
        )


class _Collection:
    """One DeleteCollection after its list: ``--delete-collection-workers`` workers (at most one per item) each take
    the next item and delete it through the per-object delete path, taking another once that delete has answered
    (store.go DeleteCollection's toProcess channel); the answer is the list of what the deletes returned. An item
    already gone (404) is skipped, one changed meanwhile (409) is deleted again (the storage's delete retries);
    another error stops the workers and is the answer."""

    def __init__(self, server: APIServer, op: Request, listed: dict, size: int) -> None:
        self.server, self.op, self.listed, self.size = server, op, listed, size
        self.names = [obj["metadata"]["name"] for obj in listed["items"]]
        self.next = self.running = 0
        self.deleted: list[Mapping] = []
        self.error: APIError | None = None

    def start(self, _=None) -> None:
        """The list is done: start the workers."""
        workers = max(1, min(self.server.config.delete_collection_workers, len(self.names)))
        for _ in range(workers):
            self.take()

    def take(self, _=None) -> None:
        """A worker takes the next item and deletes it; the last worker out answers the request."""
        if self.error is not None or self.next >= len(self.names):
            if not self.running:
                self.finish()
            return
        name = self.names[self.next]
        self.next += 1
        self.running += 1
        server, op = self.server, self.op
        now = server.engine.now
        item = Request(
            server,
            op.conn,
            "delete",
            op.resource,
            op.namespace,
            name,
            None,
            "",
            op.options,
            partial(self.deleted_one, name),
            now,
        )
        item.internal = True
        server._write(item, now)

    def deleted_one(self, name: str, result: Mapping | None, error: APIError | None, delay: float) -> None:
        """An item's delete has its answer; the worker takes the next item when the answer is back (``delay``)."""
        if error is None and result is not None:
            self.deleted.append(result)
        elif error is not None and error.code == 409:
            self.names.append(name)
        elif error is not None and error.code != 404 and self.error is None:
            self.error = error
        self.server.engine.schedule(delay, self.answered)

    def answered(self, _=None) -> None:
        """A worker is free again."""
        self.running -= 1
        self.take()

    def finish(self) -> None:
        """Answer the request and free its seat once the answer is encoded."""
        server, op = self.server, self.op
        now = server.engine.now
        if self.error is not None:
            server._finish(op, None, self.error, 0.0)
            release = now
        else:
            encoded = server._cpu(op, self.size * server.costs.encode_per_byte)
            server._finish(op, {**self.listed, "items": self.deleted}, None, encoded)
            release = now + encoded
        if op.held is not None:
            op.held(release)


class Connection:
    """A client's connection to one apiserver instance, as ``user`` (with ``groups``)."""

    def __init__(self, server: APIServer, instance: Instance, user: str, groups: tuple[str, ...]) -> None:
        self.server, self.instance, self.user, self.groups = server, instance, user, groups

    def request(self, verb: str, resource: str, callback: Callback, *, delay: float = 0.0, **fields) -> Timer:
        """Send a request ``delay`` seconds from now; ``callback(result, error, delay)`` gets the answer; ``fields``
        are :meth:`build`'s (target, body, selectors, options). Returns the handle of its arrival: cancelling it
        (``Engine.cancel``) before the send time takes the request back."""
        server = self.server
        op = self.build(verb, resource, callback, server.engine.now + delay, **fields)
        return server.engine.schedule(delay + server.half_rtt, server.arrive, op)

    def build(
        self,
        verb: str,
        resource: str,
        callback: Callback,
        sent: float,
        *,
        namespace: str = "",
        name: str = "",
        body: Mapping | None = None,
        subresource: str = "",
        label_selector=None,
        field_selector: str | None = None,
        **options,
    ) -> Request:
        """The request sent at ``sent``, its target and selectors read, as :meth:`request` sends it; an unknown
        resource or verb is refused."""
        return Request.of(
            self,
            verb,
            resource_for(verb, resource),
            namespace,
            name,
            body,
            subresource,
            options,
            callback,
            sent,
            label_selector,
            field_selector,
        )


def storage_key(op: Request, obj: Mapping) -> bytes:
    """The etcd key a write of ``obj`` goes to (``/registry/...``; a create's generated name is in ``obj``)."""
    return op.resource.key(op.namespace, obj["metadata"]["name"]).encode()


def method_not_supported(res: Resource, verb: str) -> APIError:
    """405 MethodNotAllowed (errors.NewMethodNotSupported): the resource does not serve the verb."""
    return APIError(405, "MethodNotAllowed", f'{verb} is not supported on resources of kind "{res.name}"')


def resource_for(verb: str, resource: str) -> Resource:
    """The resource a request names; an unknown resource or verb is refused, naming what is allowed."""
    res = RESOURCES.get(resource)
    if res is None:
        raise ValueError(f"resource: unknown {resource!r}; known: {', '.join(sorted(RESOURCES))}")
    if verb not in VERBS:
        raise ValueError(f"verb: must be one of {', '.join(VERBS)}; got {verb!r}")
    return res


def request_target(res: Resource, verb: str, namespace: str, name: str, body: Mapping | None) -> tuple[str, str]:
    """The namespace and name a request acts on: a write's body names them when the request does not."""
    if verb not in ("create", "update", "patch") or body is None:
        return (namespace if res.namespaced else ""), name
    meta = body.get("metadata", {})
    if not res.namespaced:
        namespace = ""
    elif body and not namespace:
        namespace = meta.get("namespace", "default")
    return namespace, name or meta.get("name", "")
