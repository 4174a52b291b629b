"""kube-proxy on the engine: informer changes, the bounded-frequency sync runner, sync cost, and its SLIs.

The runner is upstream's ``BoundedFrequencyRunner`` (``pkg/util/async``; kube-proxy passes ``minSyncPeriod``,
a maximum interval and ``burstSyncs`` = 2): a change asks for a sync, which runs at once if the token bucket
(one token per ``minSyncPeriod``, at most two saved) allows, else when it refills; with no changes a sync still
runs every maximum interval. A sync is full when none has run yet or the last full one is older than
``FullSyncPeriod`` (1 h), else partial (``MinimizeIPTablesRestore``, KEP-3453; nftables and IPVS write only
what changed too). Its duration is the work it writes (``SyncWork``: iptables-restore lines, nftables or
IPVS objects) times the profile's unit cost; changes arriving during a sync wait for the next one.

Network programming latency (``network_programming_duration_seconds``) is observed as upstream does: when a
sync that includes a change completes, now minus the change's trigger time (the EndpointSlice's
``endpoints.kubernetes.io/last-change-trigger-time``). First-packet latency is the rules a new connection's
first packet evaluates (counted by the matcher) times the per-rule cost, plus a per-packet base.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from kbench.profiles import Profile, load_profile
from kbench.proxy import iptables, ipvs, nftables
from kbench.proxy.model import MODES, ProxierConfig, ServicePortInfo, SyncWork
from kbench.sim import Engine

COMPILERS = {"iptables": iptables.compile_rules, "nftables": nftables.compile_rules, "ipvs": ipvs.compile_rules}


@dataclass
class ProxyCosts:
    """Unit costs and runner settings (seconds), from a profile's ``proxy`` section."""

    first_packet_base: float
    per_rule: float
    restore_per_line: float
    nft_per_object: float
    ipvs_per_object: float
    legacy_restore_seconds: float
    legacy_restore_rules: float
    legacy_restore_exponent: float
    min_sync_period: float
    sync_period: float
    full_sync_period: float
    burst_syncs: int

    @classmethod
    def from_profile(cls, profile: Profile | None = None) -> ProxyCosts:
        profile = profile or load_profile("default")
        return cls(**{name: float(profile.value(f"proxy.{name}")) for name in cls.__dataclass_fields__})

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
    start: float
    duration: float
    full: bool
    written: int
    changed: int


@dataclass
class KubeProxy:
    """One node's kube-proxy in ``mode`` over the engine.

    Parameters
    ----------
    engine : Engine
    mode : str
        ``iptables``, ``nftables`` or ``ipvs``.
    ports : list of ServicePortInfo
        The service ports the node starts with.
    config : ProxierConfig
    costs : ProxyCosts, optional
        Defaults to the ``default`` profile.
    legacy : bool
        iptables only: price syncs like 2017's full, superlinear restores.
    partial_syncs : bool
        False turns partial syncs off (every sync full), as before ``MinimizeIPTablesRestore`` (v1.26).
    work : SyncWork, optional
        The ports' compiled work, when the caller has already compiled them (else compiled here).
    """

    engine: Engine
    mode: str
    ports: list[ServicePortInfo]
    config: ProxierConfig
    costs: ProxyCosts = field(default_factory=ProxyCosts.from_profile)
    legacy: bool = False
    partial_syncs: bool = True
    syncs: list[SyncRecord] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    """Network programming latency samples (s)."""
    work: SyncWork | None = None

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode: must be one of {', '.join(MODES)}; got {self.mode!r}")
        by_service: dict[str, list[ServicePortInfo]] = {}
        for sp in self.ports:
            by_service.setdefault(sp.service_key, []).append(sp)
        self.services = by_service
        if self.work is None:
            self.work = COMPILERS[self.mode](self.ports, self.config).work
        self._changed: set[str] = set()
        self._triggers: list[float] = []
        self._request = self.engine.event()
        self._tokens = self.costs.burst_syncs
        self._refilled = self.engine.now
        self._last_full = -math.inf
        self.max_interval = self.costs.full_sync_period if self.mode == "iptables" else self.costs.sync_period
        self.ready = self.engine.event()
        """Triggered when the first (full) sync has completed."""
        self.process = self.engine.process(self._run(), name=f"kube-proxy-{self.mode}")

    # -- informer side ------------------------------------------------------------------------------------
    def apply(self, service_key: str, ports: list[ServicePortInfo] | None, trigger: float | None = None) -> None:
        """A Service's ports changed (``None``: deleted); ``trigger`` is when the change happened."""
        if ports:
            self.services[service_key] = ports
            counts = COMPILERS[self.mode](ports, self.config).work.per_service.get(service_key, [0, 0])
            self.work.per_service[service_key] = list(counts)
        else:
            self.services.pop(service_key, None)
            self.work.per_service.pop(service_key, None)
        self._changed.add(service_key)
        if trigger is not None:
            self._triggers.append(trigger)
        if not self._request.triggered:
            self._request.succeed()

    @property
    def total_written(self) -> int:
        """Lines / objects of a full sync now (what a legacy iptables restore rewrites)."""
        return self.work.written(None)

    # -- the sync runner ---------------------------------------------------------------------------------
    def _take_token(self) -> float:
        """Seconds until the token bucket (rate 1 / minSyncPeriod, burst ``burst_syncs``) has a token."""
        now = self.engine.now
        period = self.costs.min_sync_period
        if period <= 0:
            return 0.0
        self._tokens = min(self.costs.burst_syncs, self._tokens + (now - self._refilled) / period)
        self._refilled = now
        if self._tokens >= 1:
            self._tokens -= 1
            return 0.0
        wait = (1 - self._tokens) * period
        self._tokens = 0.0
        self._refilled = now + wait
        return wait

    def _run(self):
        engine = self.engine
        while True:
            wait = self._take_token()
            if wait > 0:
                yield engine.timeout(wait)
            full = not self.partial_syncs or engine.now - self._last_full > self.costs.full_sync_period
            changed, triggers = self._changed, self._triggers
            self._changed, self._triggers = set(), []
            self._request = engine.event()
            written = self.work.written(None if full else changed)
            duration = self.costs.sync_duration(self.mode, written, self.total_written, self.legacy)
            start = engine.now
            yield engine.timeout(duration)
            if full:
                self._last_full = start
            self.syncs.append(SyncRecord(start, duration, full, written, len(changed)))
            self.latencies += [engine.now - t for t in triggers]
            if not self.ready.triggered:
                self.ready.succeed()
            if not self._request.triggered:
                yield engine.any_of([self._request, engine.timeout(self.max_interval)])
