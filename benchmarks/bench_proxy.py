"""kube-proxy packet matching on one core, compile excluded.

Cluster: 30,000 ClusterIP Services x 10 endpoints (``kbench.proxy.workload``), the node's rules compiled in
each mode; traffic is the first packet of connections from pods to uniformly random Services. Targets:
nftables and IPVS >= 20M packets/s; iptables' ns/packet at 5k, 10k and 30k Services (its walk grows
linearly). The plain reference is the same matching algorithm interpreted by CPython (every kernel run as its
``py_func``, ``program.interpreted``), timed on fewer packets in the same process. Compilation and kernel
loading happen in the fixtures, and the objects they leave are moved out of the garbage collector's way (``gc.freeze``).
"""

from __future__ import annotations

import gc

import pytest

from benchmarks.conftest import best_of, record
from kbench.proxy import clear_caches, workload
from kbench.proxy.kube_proxy import COMPILERS
from kbench.proxy.matcher import Matcher, program_for

ENDPOINTS = 10
TARGET = 20_000_000
_cache: dict = {}


@pytest.fixture(scope="module", autouse=True)
def _release():
    """After the module: its cluster builds go with the compilers' caches (else the memory they leave fragmented
    slows the benchmarks after them by up to a third: ``kbench.proxy.clear_caches``), and the collector sees what it
    froze again."""
    yield
    _cache.clear()
    clear_caches()
    gc.unfreeze()


def _setup(mode: str, services: int):
    key = (mode, services)
    if key not in _cache:
        ports = workload.service_ports(services, ENDPOINTS)
        program = program_for(mode, COMPILERS[mode](ports, workload.CONFIG), workload.CONFIG)
        _cache.clear()
        _cache[key] = (ports, program)
    ports, program = _cache[key]
    matcher = Matcher(program, seed=1)
    gc.collect()
    gc.freeze()  # the millions of objects the build left must not be rescanned by collections during the rounds
    return ports, matcher


@pytest.mark.parametrize("mode", ["nftables", "ipvs"])
def test_map_and_hash_modes_30k(benchmark, mode):
    ports, matcher = _setup(mode, 30_000)
    packets, _ = workload.traffic(ports, 1_000_000, seed=2)
    matcher.match(packets.take(slice(1000)))
    benchmark.pedantic(matcher.match, args=(packets,), rounds=5, warmup_rounds=1)
    reference_packets = packets.take(slice(2000))
    reference = best_of(lambda: matcher.match_python(reference_packets), repeat=2)
    record(
        benchmark,
        len(packets),
        reference / len(reference_packets) * len(packets),
        TARGET,
        reference="same algorithm in CPython (every kernel as its py_func)",
        services=30_000,
        endpoints=ENDPOINTS,
        rules_evaluated_mean=float(matcher.match(reference_packets).rules.mean()),
    )


@pytest.mark.parametrize("services", [5_000, 10_000, 30_000])
def test_iptables_walk(benchmark, services):
    ports, matcher = _setup("iptables", services)
    packets, _ = workload.traffic(ports, 2000, seed=2)
    matcher.match(packets.take(slice(10)))
    benchmark.pedantic(matcher.match, args=(packets,), rounds=5, warmup_rounds=1)
    reference_packets = packets.take(slice(20))
    reference = best_of(lambda: matcher.match_python(reference_packets), repeat=2)
    record(
        benchmark,
        len(packets),
        reference / len(reference_packets) * len(packets),
        None,
        reference="same algorithm in CPython (every kernel as its py_func)",
        services=services,
        endpoints=ENDPOINTS,
        ns_per_packet=benchmark.stats.stats.median / len(packets) * 1e9 if benchmark.stats else float("nan"),
        rules_evaluated_mean=float(matcher.match(packets).rules.mean()),
    )
