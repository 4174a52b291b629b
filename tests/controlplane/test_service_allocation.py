"""kube-apiserver's Service allocators: NodePorts only where the Service needs them."""

from __future__ import annotations

from kbench.apiserver.config import KubeAPIServerConfig
from tests.controlplane.helpers import Plane


def _service(name: str, **spec) -> dict:
    return {"metadata": {"name": name}, "spec": {"ports": [{"port": 80}], **spec}}


def test_node_ports_are_allocated_only_where_the_service_needs_them():
    plane = Plane()
    low, high = KubeAPIServerConfig().node_port_range
    for name, spec, wants in (
        ("np", {"type": "NodePort"}, True),
        ("lb", {"type": "LoadBalancer"}, True),
        ("lb-none", {"type": "LoadBalancer", "allocateLoadBalancerNodePorts": False}, False),
        ("cip", {}, False),
    ):
        created = plane.ok("create", "services", namespace="default", body=_service(name, **spec))
        port = created["spec"]["ports"][0].get("nodePort")
        assert (port is not None) == wants, name
        assert port is None or low <= port <= high
        assert created["spec"]["clusterIP"]


def test_service_node_port_range_flag_bounds_the_node_ports():
    plane = Plane(config=KubeAPIServerConfig.from_flags({"service-node-port-range": "31000-31001"}))
    ports = [
        plane.ok("create", "services", namespace="default", body=_service(f"np-{i}", type="NodePort"))["spec"]["ports"][
            0
        ]["nodePort"]
        for i in range(4)
    ]
    assert ports == [31000, 31001, 31000, 31001]
