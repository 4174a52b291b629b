"""kube-proxy's cost model against its citations, and the sync runner's upstream semantics."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kbench.proxy import iptables, workload
from kbench.proxy.kube_proxy import FULL_SYNC_PERIOD, KubeProxy, ProxyCosts
from kbench.proxy.matcher import Matcher, program_for
from kbench.proxy.model import SyncWork
from kbench.sim import Engine
from kbench.sweep.proxy import churn_endpoints, simulate_syncs

COSTS = ProxyCosts.from_profile()
MIN_SYNC = workload.CONFIGURATION.iptables_min_sync_period
"""iptables.minSyncPeriod (1s, upstream's default)."""
CHART_P50_MS = {5000: 0.049, 30000: 0.274}
"""Kubernetes blog "NFTables mode for kube-proxy" (2025-02-28), iptables chart, p50."""


def _median_rules(services: int) -> float:
    ports = workload.service_ports(services, 1)
    program = program_for("iptables", iptables.compile_rules(ports, workload.CONFIG), workload.CONFIG)
    packets, _ = workload.traffic(ports, 3000, seed=1)
    return float(np.median(Matcher(program, seed=1).match(packets).rules))


def test_first_packet_fit_reproduces_the_profile_and_the_chart():
    rules = {n: _median_rules(n) for n in CHART_P50_MS}
    base = COSTS.first_packet_base
    fit = sum((CHART_P50_MS[n] * 1e-3 - base) * rules[n] for n in rules) / sum(r * r for r in rules.values())
    assert fit == pytest.approx(COSTS.per_rule, rel=0.03)
    for n, chart in CHART_P50_MS.items():
        assert float(COSTS.first_packet(rules[n])) * 1e3 == pytest.approx(chart, rel=0.2)


def test_sync_costs_reproduce_their_sources():
    # kubernetes/kubernetes#96018: 695,992 lines restored in 12.772 s
    assert COSTS.sync_duration("iptables", 695_992, 695_992) == pytest.approx(12.772, rel=0.001)
    # KubeCon EU 2017: 11 min at 40,000 rules, 5 h at 160,000 (full, superlinear restores)
    assert COSTS.sync_duration("iptables", 1, 40_000, legacy=True) == pytest.approx(660, rel=0.01)
    assert COSTS.sync_duration("iptables", 1, 160_000, legacy=True) == pytest.approx(5 * 3600, rel=0.01)


def _proxy(mode: str, services: int = 200, **kwargs) -> tuple[Engine, KubeProxy]:
    engine = Engine()
    proxy = KubeProxy(engine, workload.service_ports(services, 5), workload.CONFIG.for_mode(mode), COSTS, **kwargs)
    engine.run(until=proxy.ready)
    return engine, proxy


def test_min_sync_period_batches_changes_without_bursts():
    """v1.34's runner: one sync per minSyncPeriod counted from each sync's end, no saved bursts."""
    engine, proxy = _proxy("iptables")
    start = engine.now
    keys = sorted(proxy.services)

    def churn():
        for i in range(100):  # a change every 0.1 s for 10 s
            yield engine.timeout(0.1)
            proxy.apply(keys[i % len(keys)], proxy.services[keys[i % len(keys)]], trigger=engine.now)

    engine.process(churn())
    engine.run(until=start + 15.0)
    starts = np.array([s.start for s in proxy.syncs[1:]])
    gaps = np.diff(starts)
    assert len(starts) == pytest.approx(10, abs=1)  # one per (1 s + a partial sync), no burst of two
    assert np.all(gaps >= MIN_SYNC - 1e-9)
    assert not any(s.full for s in proxy.syncs[1:])
    assert len(proxy.latencies) == 100
    assert max(proxy.latencies) <= MIN_SYNC + 2 * max(s.duration for s in proxy.syncs[1:]) + 1e-9


def test_partial_syncs_write_only_what_changed():
    engine, proxy = _proxy("iptables")
    full = proxy.syncs[0]
    key = sorted(proxy.services)[0]
    proxy.apply(key, proxy.services[key], trigger=engine.now)
    engine.run(until=engine.now + 5)
    partial = proxy.syncs[1]
    per_service = proxy.work.per_service[key]
    assert full.full and not partial.full
    assert partial.written == full.written - sum(c for _, c in proxy.work.per_service.values()) + per_service[1]
    assert partial.duration < full.duration / 10


@pytest.mark.parametrize(("mode", "interval"), [("iptables", 3600.0), ("nftables", 3600.0), ("ipvs", 30.0)])
def test_idle_proxy_resyncs_at_its_maximum_interval(mode, interval):
    """iptables and nftables resync every FullSyncPeriod (1h), IPVS every ipvs.syncPeriod (30s):
    kubernetes/kubernetes#135631 ("It was already 1h for iptables and nftables")."""
    engine, proxy = _proxy(mode, services=20)
    engine.run(until=engine.now + 2 * interval + 1)
    starts = [s.start for s in proxy.syncs]
    assert len(starts) == 3 and np.allclose(np.diff(starts), interval, atol=proxy.syncs[0].duration + 1e-6)
    assert proxy.syncs[-1].full == (interval == FULL_SYNC_PERIOD)  # FullSyncPeriod is their maximum interval


def test_kep_3453_ordering_of_network_programming_latency():
    """KEP-3453 (5000-node test): p50 27 s with full restores and min-sync-period 10 s, 13 s with partial restores,
    5 s with min-sync-period 1 s. The model keeps that order on a large synthetic cluster."""
    ports = workload.service_ports(5000, 10)
    p50 = {}
    for name, partial, min_sync in (("full/10s", False, 10.0), ("partial/10s", True, 10.0), ("partial/1s", True, 1.0)):
        configuration = workload.CONFIGURATION.replace({"iptables.minSyncPeriod": f"{min_sync:g}s"})
        config = dataclasses.replace(workload.CONFIG, configuration=configuration)
        engine = Engine()
        proxy = KubeProxy(engine, ports, config, COSTS, partial_syncs=partial)
        engine.run(until=proxy.ready)
        engine.process(churn_endpoints(engine, proxy, 20.0, engine.now + 120, np.random.default_rng(1)))
        engine.run(until=engine.now + 150)
        p50[name] = float(np.median(proxy.latencies))
    assert p50["full/10s"] > 1.3 * p50["partial/10s"] > 1.3 * p50["partial/1s"], p50


def test_sweep_sync_simulation_reports_all_fields():
    out = simulate_syncs("nftables", workload.service_ports(100, 3), COSTS, churn=5.0, seed=1)
    assert out["sim_full_sync_s"] > out["sim_partial_sync_p50_s"] > 0
    assert 0 < out["sim_npl_p50_s"] <= out["sim_npl_p99_s"] <= MIN_SYNC + out["sim_full_sync_s"]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["add", "replace", "remove"]),
            st.sampled_from(["ns/a:80", "ns/b:80", "ns/c:53", "other/d:443"]),
            st.integers(0, 50),
            st.integers(0, 500),
        ),
        max_size=40,
    ),
    st.integers(0, 1000),
    st.lists(st.sampled_from(["ns/a:80", "ns/b:80", "ns/c:53", "other/d:443", "gone/e:1"]), max_size=6),
)
def test_sync_work_totals_follow_every_change(ops, base, changed):
    """SyncWork keeps its totals through adds, replacements and removals: a full or partial sync's count is what
    summing every Service's counts gives (what kube-proxy's syncs charge)."""
    work = SyncWork(base, {"ns/a:80": [base % 7, base % 11]})  # counts given at construction are totalled too
    for op, key, always, on_change in ops:
        if op == "add":
            work.add(key, always, on_change)
        elif op == "replace":
            work.replace(key, [always, on_change])
        else:
            work.remove(key)
    assert work.always == sum(a for a, _ in work.per_service.values())
    assert work.on_change == sum(c for _, c in work.per_service.values())
    summed = base + sum(a for a, _ in work.per_service.values())
    assert work.written(None) == summed + sum(c for _, c in work.per_service.values())
    assert work.written(changed) == summed + sum(work.per_service[k][1] for k in set(changed) if k in work.per_service)
