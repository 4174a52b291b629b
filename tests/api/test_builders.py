"""Manifest builders: the exact manifests they write, that kbench's parsers, scheduler and proxier read them as
meant, and that bad arguments fail naming the object and the field."""

from __future__ import annotations

import pytest

from kbench.api.builders import (
    PAUSE_IMAGE,
    ZONE_LABEL,
    endpoint_slice,
    node,
    node_affinity,
    pod,
    service,
    spread_constraint,
)
from kbench.api.core import ManifestError, Node, Pod
from kbench.api.network import EndpointSlice, Service
from kbench.proxy import Proxier
from kbench.scheduler import breakdown


def test_node_is_written_as_a_kubelet_registers_it():
    manifest = node(
        "n1", cpu="4", memory="16Gi", pods=20, labels={ZONE_LABEL: "a"}, taints=["team=ml:NoSchedule", "gpu:NoExecute"]
    )
    assert manifest == {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": "n1",
            "labels": {"kubernetes.io/hostname": "n1", "kubernetes.io/os": "linux", ZONE_LABEL: "a"},
        },
        "spec": {
            "taints": [{"key": "team", "value": "ml", "effect": "NoSchedule"}, {"key": "gpu", "effect": "NoExecute"}]
        },
        "status": {
            "capacity": {"cpu": "4", "memory": "16Gi", "pods": "20"},
            "allocatable": {"cpu": "4", "memory": "16Gi", "pods": "20"},
            "images": [],
        },
    }
    parsed = Node.from_manifest(node("n2", images={"app:v2": 400 * 2**20}))
    assert parsed.allocatable == {"cpu": 8000, "memory": 32 * 2**30, "pods": 110}
    assert parsed.images == ((("app:v2",), 400 * 2**20),)


def test_pod_has_one_container_with_only_the_requests_given():
    assert pod("p", labels={"app": "web"}, cpu="500m", node_name="n1") == {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "namespace": "default", "labels": {"app": "web"}},
        "spec": {
            "containers": [{"name": "app", "image": PAUSE_IMAGE, "resources": {"requests": {"cpu": "500m"}}}],
            "nodeName": "n1",
        },
    }
    bare = Pod.from_manifest(pod("q", namespace="shop"))
    assert (bare.key, bare.requests, bare.node_name) == ("shop/q", {}, "")


def test_affinity_and_spread_are_read_by_the_scheduler_as_meant():
    nodes = [node(f"n{i}", labels={"disk": "ssd" if i % 2 else "hdd", ZONE_LABEL: f"z{i % 2}"}) for i in range(4)]
    required = breakdown(nodes, pod("p", affinity=node_affinity("disk", ["ssd"])))
    assert required["feasible"].tolist() == [False, True, False, True]
    preferred = breakdown(nodes, pod("p", affinity=node_affinity("disk", ["ssd"], weight=40)))
    assert preferred["feasible"].all()
    assert preferred["score/NodeAffinity/raw"].tolist() == [0, 40, 0, 40]
    running = [pod(f"w{i}", labels={"app": "w"}, node_name="n0") for i in range(2)]
    spread = pod("p", labels={"app": "w"}, spread=[spread_constraint(ZONE_LABEL, {"app": "w"})])
    assert breakdown(nodes, spread, pods=running)["feasible"].tolist() == [False, True, False, True]


def test_service_and_slice_are_programmed_by_kube_proxy():
    manifests = [
        service(
            "web",
            namespace="shop",
            type="NodePort",
            cluster_ip="10.96.0.10",
            port_name="http",
            node_port=30080,
            session_affinity="ClientIP",
        ),
        endpoint_slice("web-1", "web", [("10.0.1.5", "node-0")], namespace="shop", port_name="http"),
    ]
    assert manifests[1]["endpoints"] == [{"addresses": ["10.0.1.5"], "nodeName": "node-0"}]
    svc, eps = Service.from_manifest(manifests[0]), EndpointSlice.from_manifest(manifests[1])
    assert (svc.type, svc.cluster_ips, svc.session_affinity, svc.ports[0].node_port) == (
        "NodePort",
        ("10.96.0.10",),
        True,
        30080,
    )
    assert (eps.service_key, eps.endpoints[0].ready, eps.ports) == ("shop/web", True, (("http", 8080, "TCP"),))
    proxier = Proxier("iptables")
    proxier.sync(manifests)
    assert "10.0.1.5:8080" in str(proxier.trace("10.0.3.9", "TCP", "10.96.0.10", 80))
    assert "selector" not in service("plain")["spec"]
    assert service("sel", selector={"app": "web"})["spec"]["selector"] == {"app": "web"}


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: node("n", taints=["team=ml:NoSchedul"]), r"Node n: spec.taints\[0\]: 'team=ml:NoSchedul' is not key"),
        (lambda: node("n", taints=["NoSchedule"]), r"Node n: spec.taints\[0\]: .* Effect one of NoSchedule, "),
        (lambda: node("n", cpu="lots"), r"Node n: status.allocatable.cpu: 'lots' is not a quantity"),
        (lambda: pod("p", memory="1Q"), r"Pod default/p: spec.containers\[0\].resources.requests.memory: '1Q'"),
        (lambda: node_affinity("disk", ["ssd"], operator="in"), r"operator: must be one of In, NotIn, Exists"),
        (lambda: node_affinity("disk", ["ssd"], weight=101), r"weight: must be an integer in \[1, 100\]; got 101"),
        (lambda: spread_constraint(ZONE_LABEL, {}, max_skew=0), r"max_skew: must be an integer >= 1; got 0"),
        (lambda: spread_constraint(ZONE_LABEL, {}, when_unsatisfiable="Never"), "one of DoNotSchedule, ScheduleAny"),
        (lambda: service("s", type="Nodeport"), r"Service default/s: spec.type: must be one of ClusterIP, NodePort"),
        (lambda: service("s", cluster_ip="10.0.0.300"), r"spec.clusterIPs\[0\]: '10.0.0.300' is not a valid IP"),
        (lambda: endpoint_slice("e", "s", ["x.y"]), r"EndpointSlice default/e: endpoints\[0\].addresses\[0\]: 'x.y'"),
    ],
)
def test_bad_arguments_name_the_object_and_the_field(build, message):
    with pytest.raises(ManifestError, match=message):
        build()
