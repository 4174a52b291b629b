"""kube-apiserver on its CPU: requests wait for a core, so latency rises when demand nears the instance's cores; every
request, write and watch event pays its unit costs on the instance it runs on."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from kbench.apiserver.config import KubeAPIServerConfig
from kbench.profiles import load_profile
from tests.controlplane.helpers import Plane


def account(name: str) -> dict:
    return {"metadata": {"name": name, "namespace": "default", "labels": {"n": name}}}


def fill(plane: Plane, n: int) -> None:
    """``n`` ServiceAccounts in ``default``, created at once."""
    for i in range(n):
        plane.admin.request("create", "serviceaccounts", lambda *a: None, namespace="default", body=account(f"sa{i}"))
    plane.run(plane.engine.now + 5.0)


def list_latency(cores: int, rate: float, objects: int = 3000, seconds: float = 2.0) -> float:
    """Median latency of cluster-wide LISTs of ``objects`` sent at ``rate`` per second by an exempt client (no flow
    control wait) to one instance with ``cores`` cores."""
    plane = Plane(instances=1, profile=load_profile().override({"apiserver.cores.value": cores}))
    fill(plane, objects)
    start, latencies = plane.engine.now, []
    for i in range(int(rate * seconds)):
        sent = start + i / rate
        plane.admin.request(
            "list",
            "serviceaccounts",
            lambda r, e, d, sent=sent: latencies.append(plane.engine.now + d - sent),
            delay=i / rate,
        )
    plane.run(start + seconds + 60.0)
    assert len(latencies) == int(rate * seconds)
    return float(np.median(latencies))


def test_list_latency_grows_with_load_on_one_core_and_not_on_eight():
    """3,000 objects: a LIST is ~9 ms of CPU (scan + encode). 200 LIST/s is ~2 cores of demand: one core saturates and
    the LISTs queue (latency grows with the run); eight cores serve them at the unloaded latency."""
    one = {rate: list_latency(1, rate) for rate in (20, 200)}
    eight = {rate: list_latency(8, rate) for rate in (20, 200)}
    assert one[20] == pytest.approx(eight[20], rel=0.01)  # unloaded: the same
    assert one[200] > 20 * one[20]
    assert eight[200] < 1.5 * eight[20]


def test_a_get_costs_its_overhead_and_encoding_on_the_cpu():
    """Unloaded, a GET from the watch cache answers after the round trip + request_overhead + its bytes' encoding."""
    plane = Plane(instances=1)
    c = plane.api.costs
    plane.ok("create", "serviceaccounts", namespace="default", body=account("a"))
    size = plane.api.caches["serviceaccounts"].get("default/a")[2]
    sent, box = plane.engine.now, []
    plane.admin.request(
        "get", "serviceaccounts", lambda r, e, d: box.append(plane.engine.now + d - sent), namespace="default", name="a"
    )
    plane.run(plane.engine.now + 1.0)
    assert box == [pytest.approx(c.network_rtt + c.request_overhead + size * c.encode_per_byte)]


def test_a_write_pays_its_cpu_then_etcd():
    """A create: decode the body, admission, encode for storage and for the answer (one job before etcd), then etcd's
    write."""
    plane = Plane(instances=1)
    c = plane.api.costs
    sent, box = plane.engine.now, []
    plane.admin.request(
        "create",
        "serviceaccounts",
        lambda r, e, d: box.append(plane.engine.now + d - sent),
        namespace="default",
        body=account("w"),
    )
    plane.run(plane.engine.now + 1.0)
    size = plane.api.caches["serviceaccounts"].get("default/w")[2]
    before = c.request_overhead + c.decode_per_object + size * (c.decode_per_byte + c.encode_per_byte)
    after = size * c.encode_per_byte
    etcd = plane.api.etcd.write_latencies[-1]
    assert box == [pytest.approx(c.network_rtt + before + etcd + after)]


def test_a_write_waits_for_a_busy_core_before_it_reaches_etcd():
    """One core kept busy by a LIST: a create sent meanwhile reaches etcd only once the LIST's CPU is done."""
    plane = Plane(instances=1, profile=load_profile().override({"apiserver.cores.value": 1}))
    fill(plane, 3000)
    cpu = plane.api.instances[0].cpu
    plane.admin.request("list", "serviceaccounts", lambda *a: None)
    plane.run(plane.engine.now + plane.api.costs.network_rtt)  # the LIST has arrived and holds the core
    busy_until = cpu.free[0]
    assert busy_until > plane.engine.now + 0.005
    submitted = []
    etcd_submit = plane.api.etcd.submit
    plane.api.etcd.submit = lambda *a: submitted.append(plane.engine.now) or etcd_submit(*a)
    plane.admin.request("create", "serviceaccounts", lambda *a: None, namespace="default", body=account("late"))
    plane.run(plane.engine.now + 1.0)
    assert submitted and submitted[0] > busy_until


def test_watch_event_fan_out_costs_each_instance_its_decode_one_encode_and_a_share_per_watcher():
    """Two instances; three watchers on instance A, none on B. An event costs both cachers its decoding from etcd; A
    also encodes it once and pays watch_per_watcher three times."""
    plane = Plane(instances=2)
    c = plane.api.costs
    conns = [plane.api.connect("watcher") for _ in range(6)]
    on_a = [conn for conn in conns if conn.instance.index == 0][:3]
    for conn in on_a:
        conn.request("watch", "serviceaccounts", lambda *a: None, on_events=lambda events: None)
    writer = plane.api.connect("writer")
    plane.run(plane.engine.now + 1.0)
    a, b = (inst.cpu.busy.total() for inst in plane.api.instances)
    writer.request("create", "serviceaccounts", lambda *a: None, namespace="default", body=account("e"))
    plane.run(plane.engine.now + 1.0)
    size = plane.api.caches["serviceaccounts"].get("default/e")[2]
    request = c.request_overhead + c.decode_per_object + size * (c.decode_per_byte + 2 * c.encode_per_byte)
    decode = c.decode_per_object + size * c.decode_per_byte
    spent = {inst.index: inst.cpu.busy.total() for inst in plane.api.instances}
    spent[0] -= a
    spent[1] -= b
    writer_on = writer.instance.index
    expected = {0: decode + size * c.encode_per_byte + 3 * c.watch_per_watcher, 1: decode}
    expected[writer_on] += request
    assert spent == {i: pytest.approx(v) for i, v in expected.items()}


def test_a_list_from_etcd_decodes_every_fetched_object():
    """Without a watch cache, a LIST's CPU decodes every object etcd returns; from the cache it scans them."""
    from kbench.apiserver.config import KubeAPIServerConfig

    spent = {}
    for flags in ({}, {"watch-cache-sizes": "serviceaccounts#0"}):
        plane = Plane(instances=1, config=KubeAPIServerConfig.from_flags(flags))
        fill(plane, 50)
        cpu = plane.api.instances[0].cpu
        before = cpu.busy.total()
        plane.ok("list", "serviceaccounts", namespace="default")
        spent[bool(flags)] = cpu.busy.total() - before
    c = plane.api.costs
    objects, nbytes = plane.api.caches["serviceaccounts"].scope("default")
    assert objects == 51  # the default account too
    scan, decode = objects * c.list_per_object, objects * c.decode_per_object + nbytes * c.decode_per_byte
    assert spent[True] - spent[False] == pytest.approx(decode - scan)


@pytest.mark.parametrize("cached", [True, False])
def test_a_batch_of_watch_events_takes_the_cpu_of_each_event_dispatched_in_turn(cached):
    """APIServer._events_cpu (a coalesced Lease tick's events) against _dispatch_event for each: the same delays, and
    the same cores and busy time on every instance, for events of several sizes to watchers on some instances."""
    config = (
        KubeAPIServerConfig() if cached else KubeAPIServerConfig(watch_cache_sizes=("leases.coordination.k8s.io#0",))
    )
    batched, single = (Plane(instances=3, config=config) for _ in range(2))
    rng = np.random.default_rng(5)
    for counts in ([0, 0, 0], [2, 0, 1], [0, 5, 0], [1, 1, 1]):
        sizes = rng.choice([309, 310, 312, 4_000], size=int(rng.integers(1, 30))).tolist()
        cache = batched.api.caches["leases"]
        assert (cache.compacted is None) == cached
        delays = batched.api._events_cpu(cache, counts, sizes)
        watchers = [SimpleNamespace(instance=i) for i, n in enumerate(counts) for _ in range(n)]
        assert delays == [single.api._dispatch_event(single.api.caches["leases"], watchers, size) for size in sizes]
        assert any(delays) == any(counts)
        for one, other in zip(batched.api.instances, single.api.instances, strict=True):
            assert (one.cpu.free, one.cpu.jobs) == (other.cpu.free, other.cpu.jobs)
            assert one.cpu.busy.bins.tolist() == other.cpu.busy.bins.tolist()
