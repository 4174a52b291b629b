"""The ``proxy`` sweep: kube-proxy modes over Service count and endpoints per Service.

Each point builds a synthetic cluster (``kbench.proxy.workload``), compiles the node's rules in the mode,
and reports:

- ``wall_*``: kbench's matcher on this machine: first packets matched per second (compiled kernel, warm);
- ``sim_first_packet_*``: first-packet latency p50 / p99 from the rules each packet evaluated;
- ``sim_*sync*``: the initial full sync and the partial syncs under endpoint churn on the engine, and the
  network programming latency they give (upstream's ``network_programming_duration_seconds``);
- ``rules`` / ``sync_objects``: the size of the rule set and of a full sync.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np

from kbench import plot
from kbench.profiles import load_profile
from kbench.proxy import workload
from kbench.proxy.config import MODES
from kbench.proxy.kube_proxy import COMPILERS, KubeProxy, ProxyCosts
from kbench.proxy.matcher import Matcher, program_for
from kbench.proxy.model import EndpointInfo
from kbench.sim import Engine, Streams
from kbench.sweep.grid import PROFILE, Param

PARAMS = (
    Param("services", int, "Services (one TCP port each)", minimum=1, maximum=100_000),
    Param("endpoints", int, "ready endpoints per Service", minimum=1, maximum=1000),
    Param("mode", str, "kube-proxy mode", choices=MODES),
    Param("churn", float, "endpoint changes per second across the cluster", minimum=0.0, maximum=10_000.0),
    PROFILE,
)

PRESETS = {
    "quick": {
        "services": [1000, 5000, 10000],
        "endpoints": [10],
        "mode": list(MODES),
        "churn": [10.0],
        "profile": ["default"],
    },
    "full": {
        "services": [1000, 5000, 10000, 20000, 30000],
        "endpoints": [1, 10, 100],
        "mode": list(MODES),
        "churn": [10.0],
        "profile": ["default"],
    },
}
PACKET_BUDGET = 400_000_000
"""Rules the wall measurement may evaluate per point (iptables packets walk ~half the Services)."""
CHURN_SECONDS = 120.0


def churn_endpoints(engine: Engine, proxy: KubeProxy, rate: float, until: float, rng: np.random.Generator):
    """Replace one endpoint of a random Service at ``rate`` per second (a pod restarted elsewhere)."""
    keys = sorted(proxy.services)
    fresh = 0
    while engine.now < until:
        yield engine.timeout(rng.exponential(1.0 / rate))
        key = keys[rng.integers(len(keys))]
        ports = proxy.services[key]
        changed = []
        for sp in ports:
            eps = list(sp.endpoints)
            if eps:
                fresh += 1
                old = eps.pop(int(rng.integers(len(eps))))
                eps.append(
                    EndpointInfo(
                        f"11.{fresh >> 16 & 255}.{fresh >> 8 & 255}.{fresh & 255}", old.port, True, True, False, False
                    )
                )
            changed.append(dataclasses.replace(sp, endpoints=sorted(eps, key=lambda e: e.address)))
        proxy.apply(key, changed, trigger=engine.now)


def simulate_syncs(mode: str, ports, costs: ProxyCosts, churn: float, seed: int, work=None) -> dict:
    """The initial full sync, then ``CHURN_SECONDS`` of endpoint churn: sync times and programming latency
    (``work``: the ports' compiled work, if the caller has it)."""
    engine = Engine()
    proxy = KubeProxy(engine, ports, workload.CONFIG.for_mode(mode), costs, work=work)
    engine.run(until=proxy.ready)
    start = engine.now
    if churn > 0:
        engine.process(churn_endpoints(engine, proxy, churn, start + CHURN_SECONDS, Streams(seed)("proxy.churn")))
    engine.run(until=start + CHURN_SECONDS + 60.0)
    partial = [s.duration for s in proxy.syncs[1:]] or [np.nan]
    latencies = proxy.latencies or [np.nan]
    return {
        "sim_full_sync_s": proxy.syncs[0].duration,
        "sync_objects": proxy.syncs[0].written,
        "sim_partial_sync_p50_s": float(np.median(partial)),
        "sim_syncs": len(proxy.syncs) - 1,
        "sim_npl_p50_s": float(np.percentile(latencies, 50)),
        "sim_npl_p99_s": float(np.percentile(latencies, 99)),
    }


def run_point(params: dict, seed: int) -> dict:
    """Compile the point's rules, match its packets (measured) and simulate its syncs (simulated)."""
    mode, services = params["mode"], params["services"]
    costs = ProxyCosts.from_profile(load_profile(params["profile"]))
    ports = workload.service_ports(services, params["endpoints"], seed=seed)
    started = time.perf_counter()
    config = workload.CONFIG.for_mode(mode)
    rules = COMPILERS[mode](ports, config)
    program = program_for(mode, rules, config)
    compile_seconds = time.perf_counter() - started
    per_packet = services if mode == "iptables" else 50
    packets, _ = workload.traffic(ports, int(np.clip(PACKET_BUDGET // per_packet, 1000, 500_000)), seed=seed)
    matcher = Matcher(program, seed=seed)
    matcher.match(packets.take(slice(10)))  # compile / load the kernel outside the timed call
    started = time.perf_counter()
    result = matcher.match(packets)
    match_seconds = time.perf_counter() - started
    latency = costs.first_packet(result.rules)
    return {
        "rules": rules.rule_count,
        "rules_evaluated_mean": float(result.rules.mean()),
        "sim_first_packet_p50_ms": float(np.percentile(latency, 50) * 1e3),
        "sim_first_packet_p99_ms": float(np.percentile(latency, 99) * 1e3),
        **simulate_syncs(mode, ports, costs, params["churn"], seed, rules.work),
        "wall_pkts_per_s": len(packets) / match_seconds,
        "wall_ns_per_pkt": match_seconds / len(packets) * 1e9,
        "wall_compile_s": compile_seconds,
    }


FIGURES = (
    plot.Spec(
        "proxy_first_packet",
        "First-packet latency by kube-proxy mode",
        ["sim_first_packet_p50_ms", "sim_first_packet_p99_ms"],
        "services",
        logy=True,
    ),
    plot.Spec(
        "proxy_sync",
        "kube-proxy sync time by mode",
        ["sim_full_sync_s", "sim_partial_sync_p50_s"],
        "services",
        logy=True,
    ),
    plot.Spec("proxy_wall", "kbench's packet matcher on this machine", ["wall_pkts_per_s"], "services", logy=True),
)


NAME = "proxy"
DESCRIPTION = "kube-proxy iptables / IPVS / nftables: first-packet latency, sync time, matcher speed"
SUMMARY = (
    "mode",
    "services",
    "endpoints",
    "rules",
    "sim_first_packet_p50_ms",
    "sim_full_sync_s",
    "sim_partial_sync_p50_s",
    "sim_npl_p50_s",
    "wall_pkts_per_s",
)
