"""kube-proxy on the engine: informer changes, the bounded-frequency sync runner, sync cost, and its SLIs.

The runner is upstream's ``BoundedFrequencyRunner`` as rewritten in v1.34 (pkg/proxy/runner/
bounded_frequency_runner.go, kubernetes/kubernetes#131615, which dropped the token bucket and its bursts):
``NewBoundedFrequencyRunner(name, fn, minInterval, retryInterval, maxInterval)``. After each sync ends, the runner
waits ``minInterval`` (the mode's ``minSyncPeriod``) *from the end of that sync*, then runs again on the first of:
a change (``Run()``; any number of them, during the sync or the wait, coalesce into one pending run), the
``maxInterval`` timer (restarted at the end of every sync) or, after a failed sync, the ``retryInterval`` timer
(cancelled by a successful sync). NewProxier passes ``minSyncPeriod, syncPeriod, proxyutil.FullSyncPeriod`` for
iptables and nftables (pkg/proxy/{iptables,nftables}/proxier.go), so ``syncPeriod`` is only the retry interval
there; IPVS passes ``syncPeriod`` as its maximum interval too (kubernetes/kubernetes#135631, back-ported to
v1.35 by #136122). A sync is full when none has run yet, the last one failed (``needFullSync``: the change
trackers were already drained) or the last full one is older than :data:`FULL_SYNC_PERIOD`, else partial
(``MinimizeIPTablesRestore``, KEP-3453; nftables and IPVS write only what changed too). Its duration is the work
it writes (``SyncWork``: iptables-restore lines, nftables or IPVS objects) times the profile's unit cost. The
periods are the operator's (:class:`~kbench.proxy.config.KubeProxyConfiguration`, the running mode's section).

Network programming latency (``network_programming_duration_seconds``) is observed as upstream does: the
trigger times (the EndpointSlices' ``endpoints.kubernetes.io/last-change-trigger-time``) are kept per Service
(EndpointsChangeTracker.lastChangeTriggerTimes, pkg/proxy/endpointschangetracker.go), every one of them, not the
earliest; a sync checks them all out when it starts (EndpointsMap.Update -> checkoutTriggerTimes) and, when it
completes successfully, observes now minus each (pkg/proxy/{iptables,nftables,ipvs}/proxier.go, after the restore),
one observation per trigger time per kube-proxy. A failed sync returns before observing them, so its changes' trigger
times are lost. Removing a slice drops its Service's pending trigger times (EndpointSliceUpdate: ``if removeSlice
{ delete(ect.lastChangeTriggerTimes, namespacedName) }``: a deleted slice's annotation dates from its last update).

First-packet latency is the rules a new connection's first packet evaluates
(counted by the matcher) times the per-rule cost, plus a per-packet base.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from kbench.profiles import UnitCosts
from kbench.proxy import iptables, ipvs, nftables
from kbench.proxy.model import ProxierConfig, ServicePortInfo, SyncWork
from kbench.sim import Engine

COMPILERS: dict[str, Callable[[list[ServicePortInfo], ProxierConfig], Any]] = {
    "iptables": iptables.compile_rules,
    "nftables": nftables.compile_rules,
    "ipvs": ipvs.compile_rules,
}
"""Each mode's rule compiler (a full sync's rules for the service ports); every result has ``work``."""


def service_counts(mode: str, ports: list[ServicePortInfo], config: ProxierConfig, service_key: str) -> list[int]:
    """Service ``service_key``'s counts in a sync of ``mode`` (:class:`SyncWork`'s [every sync, when it changed]),
    compiled from its ``ports``."""
    return COMPILERS[mode](ports, config).work.per_service.get(service_key, [0, 0])


FULL_SYNC_PERIOD = 3600.0
"""pkg/proxy/util/utils.go FullSyncPeriod = 1 * time.Hour: the iptables and nftables runners' maximum interval
and the age after which a sync is full (``doFullSync``); kubernetes/kubernetes#135631 ("It was already 1h for
iptables and nftables") and that IPVS resyncs every ``syncPeriod``."""


@dataclass
class ProxyCosts(UnitCosts):
    """Unit costs (seconds) of kube-proxy's work, from a profile's ``proxy`` section."""

    section = "proxy"

    first_packet_base: float
    per_rule: float
    restore_per_line: float
    nft_per_object: float
    ipvs_per_object: float
    legacy_restore_seconds: float
    legacy_restore_rules: float
    legacy_restore_exponent: float

    def first_packet(self, rules_evaluated: np.ndarray) -> np.ndarray:
        """First-packet latency (s) of packets that evaluated these many rules."""
        return self.first_packet_base + self.per_rule * np.asarray(rules_evaluated, np.float64)

    def sync_duration(self, mode: str, written: int, total: int, legacy: bool = False) -> float:
        """Seconds to write a sync: ``written`` lines / objects; ``legacy`` iptables rewrites all ``total``
        lines at a cost growing faster than linearly, as 2017's kube-proxy did."""
        if mode == "iptables" and legacy:
            return self.legacy_restore_seconds * (total / self.legacy_restore_rules) ** self.legacy_restore_exponent
        unit = {"iptables": self.restore_per_line, "nftables": self.nft_per_object, "ipvs": self.ipvs_per_object}
        return unit[mode] * written


@dataclass
class SyncRecord:
    """One sync: when it started, how long it took, whether it was full, what it wrote and how many Services
    had changed."""

    start: float
    duration: float
    full: bool
    written: int
    changed: int
    ok: bool = True
    """False when the sync failed (the runner retries at ``syncPeriod``; the next sync is full)."""


class KubeProxy:
    """One node's kube-proxy over the engine, in the mode of its ``config``.

    Parameters
    ----------
    engine : Engine
    ports : list of ServicePortInfo
        The service ports the node starts with.
    config : ProxierConfig
        The node's proxier; its ``configuration`` gives the mode and the sync periods.
    costs : ProxyCosts, optional
        Defaults to the ``default`` profile's.
    legacy : bool
        iptables only: price syncs like 2017's full, superlinear restores.
    partial_syncs : bool
        False turns partial syncs off (every sync full), as before ``MinimizeIPTablesRestore`` (v1.26).
    work : SyncWork, optional
        The ports' compiled work, when the caller has already compiled them (else compiled here).
    fails : callable, optional
        ``fails(i)`` is True when the ``i``-th sync (0 the first) fails, as an ``iptables-restore`` or
        ``nft`` error does upstream; by default every sync succeeds.
    """

    def __init__(
        self,
        engine: Engine,
        ports: list[ServicePortInfo],
        config: ProxierConfig,
        costs: ProxyCosts | None = None,
        legacy: bool = False,
        partial_syncs: bool = True,
        work: SyncWork | None = None,
        fails: Callable[[int], bool] | None = None,
    ) -> None:
        self.engine, self.config, self.mode = engine, config, config.mode
        self.costs = costs if costs is not None else ProxyCosts.from_profile()
        self.legacy, self.partial_syncs = legacy, partial_syncs
        self.services: dict[str, list[ServicePortInfo]] = {}
        """Each Service's ports, as given (:meth:`apply`); a caller that keeps them itself and gives only their counts
        (:meth:`changed`) leaves them out (:class:`~kbench.proxy.informed.NodeProxy`: ``NodeProxy.ports``)."""
        for sp in ports:
            self.services.setdefault(sp.service_key, []).append(sp)
        self.work: SyncWork = work if work is not None else COMPILERS[self.mode](ports, config).work
        self.syncs: list[SyncRecord] = []
        self.latencies: list[float] = []
        """Network programming latency samples (s)."""
        self._changed: set[str] = set()
        self._triggers: dict[str, list[float]] = {}
        """Pending trigger times per Service (upstream's ``lastChangeTriggerTimes``)."""
        self._request = engine.event()
        self._last_full = -math.inf
        self._need_full = True
        self.fails = fails
        self.min_sync_period = config.configuration.min_sync_period
        """The runner's ``minInterval``: the mode's ``minSyncPeriod``."""
        self.retry_interval = config.configuration.sync_period
        """The runner's ``retryInterval``: the mode's ``syncPeriod`` (every mode's NewProxier)."""
        self.max_interval = config.configuration.sync_period if self.mode == "ipvs" else FULL_SYNC_PERIOD
        """The runner's ``maxInterval``: ``syncPeriod`` for IPVS, ``proxyutil.FullSyncPeriod`` otherwise."""
        self.ready = engine.event()
        """Triggered when the first (full) sync has completed."""
        self.process = engine.process(self._run(), name=f"kube-proxy-{self.mode}")

    # -- informer side ------------------------------------------------------------------------------------
    def apply(
        self,
        service_key: str,
        ports: list[ServicePortInfo] | None,
        trigger: float | None = None,
        removed_slice: bool = False,
    ) -> None:
        """A Service's ports changed (``None``: deleted); ``trigger`` is when the change happened.

        ``removed_slice``: the change is one of the Service's EndpointSlices being removed, which drops the
        Service's pending trigger times (EndpointSliceUpdate with ``removeSlice``, pkg/proxy/endpointschangetracker.go).
        """
        if ports:
            self.services[service_key] = ports
            counts = service_counts(self.mode, ports, self.config, service_key)
        else:
            self.services.pop(service_key, None)
            counts = None
        self.changed(service_key, counts, trigger, removed_slice)

    def changed(
        self,
        service_key: str,
        counts: Sequence[int] | None,
        trigger: float | None = None,
        removed_slice: bool = False,
    ) -> None:
        """:meth:`apply` for a caller that has the Service's compiled counts (:func:`service_counts`; ``None``:
        no ports, deleted) and keeps its ports itself (:class:`~kbench.proxy.informed.NodeProxy`)."""
        if counts is None:
            self.work.remove(service_key)
        else:
            self.work.replace(service_key, counts)
        self._changed.add(service_key)
        if removed_slice:
            self._triggers.pop(service_key, None)
        elif trigger is not None:
            self._triggers.setdefault(service_key, []).append(trigger)
        if not self._request.triggered:
            self._request.succeed()

    @property
    def total_written(self) -> int:
        """Lines / objects of a full sync now (what a legacy iptables restore rewrites)."""
        return self.work.written(None)

    # -- the sync runner ---------------------------------------------------------------------------------
    def _run(self) -> Generator[Any, Any, None]:
        """BoundedFrequencyRunner.Loop (v1.34): sync, wait ``minInterval`` from the sync's end, then wait for a
        change, the ``maxInterval`` timer or (after a failure) the ``retryInterval`` timer, both restarted at
        the sync's end."""
        engine = self.engine
        while True:
            ok = yield from self._sync()
            ended = engine.now
            due = ended + (self.max_interval if ok else min(self.max_interval, self.retry_interval))
            if self.min_sync_period > 0:
                yield engine.timeout(self.min_sync_period)
            if not self._request.triggered:
                yield engine.any_of([self._request, engine.timeout(max(0.0, due - engine.now))])

    def _sync(self) -> Generator[Any, Any, bool]:
        """One ``syncProxyRules``: write a full or partial sync, record it; True when it succeeded."""
        engine = self.engine
        full = not self.partial_syncs or self._need_full or engine.now - self._last_full > FULL_SYNC_PERIOD
        changed, triggers = self._changed, [t for times in self._triggers.values() for t in times]
        self._changed, self._triggers = set(), {}
        self._request = engine.event()
        written = self.work.written(None if full else changed)
        duration = self.costs.sync_duration(self.mode, written, self.total_written, self.legacy)
        start = engine.now
        ok = self.fails is None or not self.fails(len(self.syncs))
        yield engine.timeout(duration)
        self.syncs.append(SyncRecord(start, duration, full, written, len(changed), ok))
        if not ok:
            self._need_full = True
            return False
        if full:
            self._last_full, self._need_full = start, False
        self.latencies += [engine.now - t for t in triggers]
        if not self.ready.triggered:
            self.ready.succeed()
        return True
