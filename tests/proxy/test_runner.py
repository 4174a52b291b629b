"""kube-proxy's sync runner in virtual time against upstream's v1.34 BoundedFrequencyRunner
(pkg/proxy/runner/bounded_frequency_runner.go, kubernetes/kubernetes#131615) and NewProxier's intervals."""

from __future__ import annotations

import dataclasses

import pytest

from kbench.proxy import workload
from kbench.proxy.kube_proxy import FULL_SYNC_PERIOD, KubeProxy, ProxyCosts
from kbench.sim import Engine

COSTS = ProxyCosts.from_profile()


def _proxy(mode: str = "iptables", services: int = 300, fails=None, **settings) -> tuple[Engine, KubeProxy]:
    configuration = workload.CONFIGURATION.for_mode(mode).replace(settings)
    config = dataclasses.replace(workload.CONFIG, configuration=configuration)
    engine = Engine()
    return engine, KubeProxy(engine, workload.service_ports(services, 5), config, COSTS, fails=fails)


def _change(proxy: KubeProxy, index: int = 0) -> None:
    key = sorted(proxy.services)[index]
    proxy.apply(key, proxy.services[key], trigger=proxy.engine.now)


def _end(sync) -> float:
    return sync.start + sync.duration


@pytest.mark.parametrize("changes", [1, 7])
def test_changes_during_a_sync_give_one_sync_min_sync_period_after_it_ends(changes):
    """Run() calls during fn coalesce into the one-slot channel; the loop waits minInterval from fn's end."""
    engine, proxy = _proxy(**{"iptables.minSyncPeriod": "2s"})
    engine.run(until=1e-6)  # the initial (full) sync has started
    for i in range(changes):
        _change(proxy, i)
    engine.run(until=100.0)
    first, follow_up = proxy.syncs
    assert follow_up.start == pytest.approx(_end(first) + 2.0, abs=1e-9)
    assert follow_up.changed == changes and not follow_up.full
    assert len(proxy.latencies) == changes


def test_no_burst_a_change_soon_after_a_sync_waits_for_min_sync_period():
    """v1.33's token bucket let two syncs run back to back; v1.34's runner has no bursts."""
    engine, proxy = _proxy(**{"iptables.minSyncPeriod": "1s"})
    engine.run(until=proxy.ready)
    engine.run(until=engine.now + 10.0)  # idle: v1.33's bucket would have saved two tokens
    changed_at = engine.now
    _change(proxy, 0)
    engine.run(until=changed_at + 0.5)
    second = proxy.syncs[1]
    assert second.start == changed_at  # idle longer than minSyncPeriod: at once
    _change(proxy, 1)  # 0.5 s after the change: just after ``second`` ended
    engine.run(until=engine.now + 5.0)
    assert proxy.syncs[2].start == pytest.approx(_end(second) + 1.0, abs=1e-9)


def test_steady_churn_spaces_syncs_by_min_sync_period_from_each_end():
    engine, proxy = _proxy(**{"iptables.minSyncPeriod": "1s"})
    engine.run(until=proxy.ready)

    def churn():
        for i in range(100):
            yield engine.timeout(0.05)
            _change(proxy, i % 50)

    engine.process(churn())
    engine.run(until=engine.now + 10.0)
    later = proxy.syncs[2:]
    assert later and all(b.start == pytest.approx(_end(a) + 1.0, abs=1e-9) for a, b in zip(proxy.syncs[1:], later))


def test_zero_min_sync_period_runs_the_pending_change_right_after_the_sync():
    engine, proxy = _proxy("ipvs")
    assert proxy.min_sync_period == 0
    engine.run(until=1e-6)
    _change(proxy)
    engine.run(until=5.0)
    assert proxy.syncs[1].start == pytest.approx(_end(proxy.syncs[0]), abs=1e-9)


@pytest.mark.parametrize(("mode", "interval"), [("iptables", FULL_SYNC_PERIOD), ("nftables", FULL_SYNC_PERIOD)])
def test_idle_proxy_syncs_max_interval_after_the_last_sync_ended(mode, interval):
    """NewProxier passes proxyutil.FullSyncPeriod (1h) as maxInterval for iptables and nftables; the timer is
    reset when fn returns, and a sync an hour after the last full one is full."""
    engine, proxy = _proxy(mode, services=20)
    engine.run(until=2 * interval + 10)
    first, second, third = proxy.syncs
    assert second.start == pytest.approx(_end(first) + interval, abs=1e-9)
    assert third.start == pytest.approx(_end(second) + interval, abs=1e-9)
    assert second.full and third.full


def test_ipvs_resyncs_every_sync_period_after_the_last_sync_ended():
    """kubernetes/kubernetes#135631 (v1.35 via #136122): IPVS's maxInterval is syncPeriod again."""
    engine, proxy = _proxy("ipvs", services=20, **{"ipvs.syncPeriod": "10s"})
    engine.run(until=35.0)
    starts = [s.start for s in proxy.syncs]
    assert len(starts) == 4
    assert all(b.start == pytest.approx(_end(a) + 10.0, abs=1e-9) for a, b in zip(proxy.syncs, proxy.syncs[1:]))


def test_a_failed_sync_is_retried_after_sync_period_as_a_full_sync():
    """fn's error resets retryIntervalTimer (syncPeriod for every mode); the failed sync's trigger times are not
    observed and the retry is full (needFullSync)."""
    engine, proxy = _proxy(fails=lambda i: i == 1, **{"iptables.syncPeriod": "20s"})
    engine.run(until=proxy.ready)
    _change(proxy)
    engine.run(until=engine.now + 60.0)
    failed, retry = proxy.syncs[1], proxy.syncs[2]
    assert not failed.ok and not failed.full and retry.ok and retry.full
    assert retry.start == pytest.approx(_end(failed) + 20.0, abs=1e-9)
    assert proxy.latencies == [] and len(proxy.syncs) == 3


def test_a_change_after_a_failed_sync_runs_before_the_retry():
    engine, proxy = _proxy(fails=lambda i: i == 1)
    engine.run(until=proxy.ready)
    _change(proxy, 0)
    engine.run(until=engine.now + 3.0)
    failed, changed_at = proxy.syncs[1], engine.now
    _change(proxy, 1)
    engine.run(until=engine.now + 100.0)
    assert not failed.ok and proxy.syncs[2].start == changed_at < _end(failed) + proxy.retry_interval
    assert proxy.syncs[2].full and len(proxy.syncs) == 3  # a success cancels the retry
    assert len(proxy.latencies) == 1


def test_first_sync_failing_delays_ready_until_the_retry():
    engine, proxy = _proxy(fails=lambda i: i == 0)
    engine.run(until=proxy.ready)
    assert [s.ok for s in proxy.syncs] == [False, True]
    assert proxy.syncs[1].start == pytest.approx(_end(proxy.syncs[0]) + proxy.retry_interval, abs=1e-9)
