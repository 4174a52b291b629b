"""What the kube-proxies of a cluster share (kbench.proxy.informed.Shared): a Service whose ports are compiled alike on
every node (``ServicePortInfo.same_on_every_node``) is compiled once a change, its counts taken by the other nodes."""

from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st

from kbench.api.network import EndpointSlice, Service
from kbench.apiserver import APIServer
from kbench.cluster import Cluster, ClusterSpec
from kbench.proxy.config import MODES, KubeProxyConfiguration
from kbench.proxy.informed import NodeProxy, Shared
from kbench.proxy.kube_proxy import service_counts
from kbench.proxy.model import ProxierConfig, service_ports
from kbench.proxy.workload import CONFIG
from kbench.sim import Engine

NODES = ("node-1", "node-2", "node-3")
FEW_SECONDS = 5.0

conditions = st.fixed_dictionaries({}, optional={k: st.booleans() for k in ("ready", "serving", "terminating")})
services = st.fixed_dictionaries(
    {
        "type": st.sampled_from(["ClusterIP", "NodePort", "LoadBalancer"]),
        "internalTrafficPolicy": st.sampled_from(["Cluster", "Local"]),
        "externalTrafficPolicy": st.sampled_from(["Cluster", "Local"]),
        "sessionAffinity": st.sampled_from(["None", "ClientIP"]),
        "externalIPs": st.lists(st.sampled_from(["192.168.0.11", "203.0.113.7"]), max_size=2, unique=True),
        "loadBalancerSourceRanges": st.lists(st.sampled_from(["192.168.0.0/24", "198.51.100.0/24"]), max_size=2),
        "allocateLoadBalancerNodePorts": st.booleans(),
    }
)
NODE_IPS = (("node-1", "192.168.0.11"), ("node-2", "172.16.0.12"))
"""Two nodes: only the first is inside the source range 192.168.0.0/24."""


def _service(spec: dict, ingress: list[str]) -> Service:
    ports = [{"name": "http", "port": 80, "protocol": "TCP"}, {"name": "dns", "port": 53, "protocol": "UDP"}]
    if spec["type"] == "NodePort" or (spec["type"] == "LoadBalancer" and spec["allocateLoadBalancerNodePorts"]):
        ports = [{**p, "nodePort": 30080 + i} for i, p in enumerate(ports)]
    return Service.from_manifest(
        {
            "metadata": {"namespace": "default", "name": "web"},
            "spec": {**spec, "clusterIP": "10.96.0.10", "ports": ports, "healthCheckNodePort": 32000},
            "status": {"loadBalancer": {"ingress": [{"ip": ip} for ip in ingress]}},
        }
    )


def _slice(name: str, endpoints: list[tuple[str, dict]]) -> EndpointSlice:
    return EndpointSlice.from_manifest(
        {
            "metadata": {"namespace": "default", "name": name, "labels": {"kubernetes.io/service-name": "web"}},
            "addressType": "IPv4",
            "endpoints": [
                {"addresses": [f"10.128.{i // 200}.{i % 200 + 2}"], "nodeName": node, "conditions": cond}
                for i, (node, cond) in enumerate(endpoints)
            ],
            "ports": [
                {"name": "http", "port": 8080, "protocol": "TCP"},
                {"name": "dns", "port": 53, "protocol": "UDP"},
            ],
        }
    )


def _spec(**fields) -> dict:
    plain = {"type": "ClusterIP", "internalTrafficPolicy": "Cluster", "externalTrafficPolicy": "Cluster"}
    plain |= {"sessionAffinity": "None", "externalIPs": [], "loadBalancerSourceRanges": []}
    return {**plain, "allocateLoadBalancerNodePorts": True, **fields}


SPREAD = [("node-1", {}), ("node-2", {}), ("node-3", {"ready": False})]
"""Endpoints on both nodes and a third, one not ready."""


@settings(max_examples=150, deadline=None)
@example(spec=_spec(), ingress=[], endpoints=SPREAD)  # shared: the counts must agree
@example(spec=_spec(internalTrafficPolicy="Local"), ingress=[], endpoints=SPREAD[1:])  # node-1 has no local one
@example(spec=_spec(type="NodePort", externalTrafficPolicy="Local"), ingress=[], endpoints=SPREAD[1:])
@example(spec=_spec(type="ClusterIP", externalIPs=["192.168.0.11"]), ingress=[], endpoints=SPREAD)  # IPVS: node-1's own
@example(  # a load balancer without NodePorts, its source range holding node-1 only
    spec=_spec(type="LoadBalancer", allocateLoadBalancerNodePorts=False, loadBalancerSourceRanges=["192.168.0.0/24"]),
    ingress=["203.0.113.9"],
    endpoints=SPREAD,
)
@given(
    spec=services,
    ingress=st.lists(st.sampled_from(["192.168.0.12", "203.0.113.9"]), max_size=2, unique=True),
    endpoints=st.lists(st.tuples(st.sampled_from(NODES), conditions), max_size=8),
)
def test_ports_the_same_on_every_node_compile_to_the_same_counts_on_any_node(spec, ingress, endpoints):
    """Nodes differing only in their name and IPs (node-1 holding some of the endpoints, node-2 others; node-1's IP
    inside a source range, node-2's not) compile a port that is ``same_on_every_node`` to the same counts in every
    mode; and which ports are, is the same on both. Each of the examples but the first is compiled differently on
    the two nodes, so each fails the test with ``same_on_every_node`` true of it: internalTrafficPolicy Local, a
    NodePort (with externalTrafficPolicy Local), external IPs (IPVS binds those the node does not own), load-balancer
    IPs (without NodePorts, behind a source range)."""
    svc, slices = _service(spec, ingress), [_slice("web-a", endpoints)]
    for mode in MODES:
        base = CONFIG.for_mode(mode)
        configs = [
            ProxierConfig(node_name=name, node_ips=(ip,), configuration=base.configuration) for name, ip in NODE_IPS
        ]
        ports = [service_ports([svc], slices, config) for config in configs]
        alike = [[sp.same_on_every_node for sp in node] for node in ports]
        assert alike[0] == alike[1]
        if all(alike[0]):
            counts = [service_counts(mode, p, c, "default/web") for p, c in zip(ports, configs, strict=True)]
            assert counts[0] == counts[1], (mode, spec, ingress, endpoints)


def test_cluster_kube_proxies_hold_the_counts_their_own_ports_compile_to():
    """In a cluster whose kube-proxies share counts, every node's counts of each Service are what its own ports
    compile to: a ClusterIP Service (shared), one with internalTrafficPolicy Local (each node its own, since its
    local endpoints differ) and a NodePort one, over two pods on three nodes, after they are created and again
    after one is deleted; what was shared of a Service goes with it."""
    cluster = Cluster(ClusterSpec(nodes=3))
    cluster.settle()
    admin = cluster.api.connect("admin", ("system:masters",))
    template = {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "pause"}]}}
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}}
    deployment["spec"] = {"replicas": 2, "selector": {"matchLabels": {"app": "web"}}, "template": template}
    admin.request("create", "deployments", lambda *_: None, namespace="default", body=deployment)
    for name, extra in (("cluster", {}), ("local", {"internalTrafficPolicy": "Local"}), ("np", {"type": "NodePort"})):
        spec = {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}], **extra}
        admin.request(
            "create", "services", lambda *_: None, namespace="default", body={"metadata": {"name": name}, "spec": spec}
        )
    shared = cluster.proxies[0].shared
    assert all(p.shared is shared for p in cluster.proxies)
    for step in range(2):
        cluster.engine.run(until=cluster.engine.now + 60.0)
        for proxy in cluster.proxies:
            held = proxy.proxy.work.per_service
            assert set(held) == {"default/cluster", "default/local", "default/np"}
            for key, counts in held.items():
                assert counts == service_counts(proxy.proxy.mode, proxy.ports(key), proxy.config, key), key
        local = [p.proxy.work.per_service["default/local"] for p in cluster.proxies]
        assert len({tuple(c) for c in local}) > 1, "a node without a pod has no local endpoint"
        assert set(shared.counts) == {"default/cluster"}
        assert not {"default/local", "default/np"} & set(shared.counts)
        if step == 0:
            pods = cluster.api.caches["pods"].objects
            name = next(obj["metadata"]["name"] for obj, *_ in pods.values())
            admin.request("delete", "pods", lambda *_: None, namespace="default", name=name)
    admin.request("delete", "services", lambda *_: None, namespace="default", name="cluster")
    cluster.engine.run(until=cluster.engine.now + 60.0)
    assert "default/cluster" not in shared.counts  # what was shared of a deleted Service is dropped
    assert all("default/cluster" not in p.proxy.work.per_service for p in cluster.proxies)


def _held_slice(name: str, ready: bool) -> dict:
    """A slice of Service default/web as an informer would deliver it, its one endpoint 10.128.0.2."""
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "namespace": "default",
            "name": name,
            "uid": f"uid-{name}",
            "resourceVersion": "7",
            "labels": {"kubernetes.io/service-name": "web"},
        },
        "addressType": "IPv4",
        "endpoints": [{"addresses": ["10.128.0.2"], "conditions": {"ready": ready}, "nodeName": "node-9"}],
        "ports": [{"name": "", "port": 8080, "protocol": "TCP"}],
    }


def test_nodes_share_counts_only_under_the_same_configuration_and_the_same_slices_in_the_same_order():
    """Three kube-proxies share their counts: node-1 and node-3 hold the same two slices in one order, node-2 in the
    other (the first slice's endpoint wins an address both hold: ready on node-1, not on node-2), node-3 runs with
    masqueradeAll (one more rule). Each looks its counts up right after node-1 shared its own, and holds what its own
    ports compile to: the key holds the slices' order and the configuration (it fails with either left out of it)."""
    api = APIServer(Engine())
    shared = Shared()
    masquerade = KubeProxyConfiguration().replace({"iptables.masqueradeAll": True})
    nodes = [
        NodeProxy(api, f"node-{i}", f"192.168.0.1{i}", configuration, shared=shared)
        for i, configuration in ((1, None), (2, None), (3, masquerade))
    ]
    admin = api.connect("admin", ("system:masters",))
    spec = {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]}
    admin.request(
        "create", "services", lambda *_: None, namespace="default", body={"metadata": {"name": "web"}, "spec": spec}
    )
    api.engine.run(until=api.engine.now + FEW_SECONDS)
    ready, unready = _held_slice("web-a", True), _held_slice("web-b", False)
    first, second, masquerading = nodes
    second._slice(unready)
    masquerading._slice(ready)
    first._slice(ready)
    first._slice(unready)  # shared: node-1's counts of (a, b)
    masquerading._slice(unready)  # (a, b) too, under another configuration
    first._recompute("default/web", None)  # shared again: node-1's counts of (a, b)
    second._slice(ready)  # (b, a)
    held = [node.proxy.work.per_service["default/web"] for node in nodes]
    for node, counts in zip(nodes, held, strict=True):
        assert counts == service_counts("iptables", node.ports("default/web"), node.config, "default/web")
    assert held[0] != held[1] and held[0] != held[2]
