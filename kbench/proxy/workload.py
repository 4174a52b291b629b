"""Synthetic clusters and traffic for kube-proxy sweeps and benchmarks.

Services get ClusterIPs from ``172.16.0.0/12`` and one TCP port 80 (a fraction can be NodePort); endpoints are
pod IPs from ``10.0.0.0/8`` spread round-robin over the nodes, listening on 8080. The node under test is
``node-0`` with IP ``192.168.0.10``. Traffic is the first packet of connections from pods to uniformly random
services, which is what the first-packet latency figures measure.
"""

from __future__ import annotations

import ipaddress

import numpy as np

from kbench.proxy.config import KubeProxyConfiguration
from kbench.proxy.model import EndpointInfo, ProxierConfig, ServicePortInfo
from kbench.proxy.program import Packets

SERVICE_BASE = int(ipaddress.ip_address("172.16.0.0"))
POD_BASE = int(ipaddress.ip_address("10.0.0.0"))
NODE_PORT_BASE = 30000
CONFIGURATION = KubeProxyConfiguration().replace({"clusterCIDR": "10.0.0.0/8"})
"""The node's kube-proxy configuration: upstream's defaults, the pods' CIDR as ``clusterCIDR``."""
CONFIG = ProxierConfig(
    node_name="node-0", node_ips=("192.168.0.10",), service_cidrs=("172.16.0.0/12",), configuration=CONFIGURATION
)
"""The proxier of the node under test (``CONFIG.for_mode(mode)`` runs it in a mode)."""


def _ip(value: int) -> str:
    return str(ipaddress.ip_address(value))


def service_ports(
    services: int,
    endpoints: int,
    nodes: int = 1000,
    node_port_fraction: float = 0.0,
    affinity_fraction: float = 0.0,
    seed: int = 0,
) -> list[ServicePortInfo]:
    """``services`` ClusterIP service ports with ``endpoints`` ready endpoints each.

    Parameters
    ----------
    services, endpoints : int
        Cluster size (at most 30,000 NodePorts fit the default range, so ``node_port_fraction`` is capped).
    nodes : int
        Nodes the endpoints are spread over; endpoints on node 0 are local.
    node_port_fraction, affinity_fraction : float
        Shares of services that are NodePort / use ClientIP affinity (10800 s), chosen by a seeded draw.
    """
    if services < 1 or endpoints < 0 or nodes < 1:
        raise ValueError(f"services must be >= 1, endpoints >= 0 and nodes >= 1; got {services}, {endpoints}, {nodes}")
    rng = np.random.default_rng(seed)
    node_port = rng.random(services) < node_port_fraction
    affinity = rng.random(services) < affinity_fraction
    out = []
    pod = 0
    for i in range(services):
        eps = []
        for _ in range(endpoints):
            eps.append(EndpointInfo(_ip(POD_BASE + 2 + pod), 8080, True, True, False, pod % nodes == 0))
            pod += 1
        out.append(
            ServicePortInfo(
                namespace=f"ns-{i // 100}",
                name=f"svc-{i}",
                port_name="http",
                protocol="TCP",
                cluster_ip=_ip(SERVICE_BASE + 1 + i),
                port=80,
                node_port=NODE_PORT_BASE + i if node_port[i] and i < 2767 else 0,
                affinity_timeout=10800 if affinity[i] else 0,
                endpoints=sorted(eps, key=lambda e: e.address),
            )
        )
    return sorted(out, key=lambda sp: sp.name_string)


def traffic(sps: list[ServicePortInfo], n: int, seed: int = 0, rate: float = 1e4) -> tuple[Packets, np.ndarray]:
    """``n`` first packets from random pods to uniformly random service ports (ClusterIP), Poisson arrivals
    at ``rate`` per second; also returns each packet's service index (into ``sps``)."""
    rng = np.random.default_rng(seed)
    which = rng.integers(0, len(sps), n)
    cips = np.array([int(ipaddress.ip_address(sp.cluster_ip)) for sp in sps], np.uint64)
    ports = np.array([sp.port for sp in sps], np.int64)
    src = (POD_BASE + 1_000_000 + rng.integers(0, 1 << 20, n)).astype(np.uint64)
    times = np.cumsum(rng.exponential(1.0 / rate, n))
    return Packets.ipv4(src, np.full(n, 6), cips[which], ports[which], times), which
