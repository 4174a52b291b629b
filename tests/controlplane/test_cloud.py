"""cloud-controller-manager over the modelled cloud, in virtual time."""

from __future__ import annotations

import pytest

from kbench.cloud import Cloud, CloudControllerManagerConfiguration, CloudCosts, cloud_controller_manager
from kbench.cloud.route import UPDATE_NETWORK_CONDITION_BACKOFF
from kbench.componentconfig import ConfigError
from kbench.node import HollowNode
from kbench.profiles import load_profile
from kbench.sim import Engine, Streams
from tests.controlplane.helpers import Plane, ccm, fail_next, kcm, race, record

ROUTE_RECONCILIATION_PERIOD = CloudControllerManagerConfiguration().route_reconciliation_period


def _plane(nodes: int = 2, **overrides):
    plane = Plane()
    profile = load_profile().override(overrides) if overrides else load_profile()
    cloud = Cloud(plane.engine, profile)
    for i in range(nodes):
        cloud.add_instance(f"node-{i}", zone=f"zone-{i % 2}")
    manager = ccm(plane, cloud).start()
    kcm(plane, "nodeipam", "nodelifecycle", leader_elect=False).start()
    plane.nodes = [HollowNode(plane.api, f"node-{i}", uninitialized=True, start=1.0) for i in range(nodes)]
    return plane, cloud, manager


def test_node_controller_initializes_nodes_from_the_cloud():
    plane, cloud, _ = _plane()
    plane.run(10.0)
    node = plane.ok("get", "nodes", name="node-1")
    assert node["spec"]["providerID"] == "kbench://region-1/zone-1/node-1"
    labels = node["metadata"]["labels"]
    assert labels["topology.kubernetes.io/zone"] == "zone-1" and labels["topology.kubernetes.io/region"] == "region-1"
    assert labels["node.kubernetes.io/instance-type"] == "n2-standard-4"
    assert not any(t["key"] == "node.cloudprovider.kubernetes.io/uninitialized" for t in node["spec"]["taints"])


def test_failed_cloud_calls_are_retried():
    plane, cloud, _ = _plane(nodes=1)
    cloud.fail("InstanceMetadata", 3)
    plane.run(30.0)
    node = plane.ok("get", "nodes", name="node-0")
    assert node["spec"].get("providerID") and cloud.calls["InstanceMetadata"] >= 4


def test_node_whose_instance_is_gone_is_deleted():
    plane, cloud, _ = _plane()
    plane.run(20.0)
    plane.nodes[0].stop()
    cloud.remove_instance("node-0")
    plane.run(150.0)  # NotReady after the grace period, then the lifecycle check
    _, err = plane.call("get", "nodes", name="node-0")
    assert err.code == 404 and plane.ok("get", "nodes", name="node-1")


def test_routes_follow_pod_cidrs_up_to_the_route_table_limit():
    plane, cloud, _ = _plane(nodes=3, **{"cloud.route_table_limit.value": 2})
    plane.run(60.0)
    assert len(cloud.routes) == 2
    cidrs = {plane.ok("get", "nodes", name=f"node-{i}")["spec"]["podCIDR"] for i in range(3)}
    assert len(cidrs) == 3 and all(c.endswith("/24") for c in cidrs)
    unrouted = [n for n in plane.objects("nodes") if n["metadata"]["name"] not in cloud.routes]
    cond = next(c for c in unrouted[0]["status"]["conditions"] if c["type"] == "NetworkUnavailable")
    assert (cond["status"], cond["reason"]) == ("True", "NoRouteCreated")


def _network_unavailable(plane: Plane, name: str) -> tuple[str, str] | None:
    node = plane.ok("get", "nodes", name=name)
    cond = next((c for c in node["status"]["conditions"] if c["type"] == "NetworkUnavailable"), None)
    return (cond["status"], cond["reason"]) if cond else None


def test_network_condition_write_that_fails_is_written_next_pass():
    plane, cloud, manager = _plane(nodes=1)
    fail_next(manager.controller("node-route-controller").client, "update", "nodes", "status", code=500)
    plane.run(15.0)  # the route is made in the first pass with a pod CIDR; its condition write fails
    assert "node-0" in cloud.routes and _network_unavailable(plane, "node-0") is None
    plane.run(15.0 + ROUTE_RECONCILIATION_PERIOD)  # the next pass finds the condition missing and writes it
    assert _network_unavailable(plane, "node-0") == ("False", "RouteCreated")


def test_network_condition_write_that_conflicts_is_retried_on_a_fresh_read():
    plane, cloud, manager = _plane(nodes=1)
    routes = manager.controller("node-route-controller").client
    sent = record(routes)
    race(routes, "update", "nodes", "status", lambda _: plane.touch_node("node-0"))
    plane.run(15.0)
    writes = [r for r in sent if r["resource"] == "nodes" and (r["subresource"] == "status" or r["verb"] == "get")]
    assert [(r["verb"], r["code"]) for r in writes] == [("update", 409), ("get", 200), ("update", 200)]
    assert writes[1]["at"] == pytest.approx(writes[0]["answered"] + UPDATE_NETWORK_CONDITION_BACKOFF.wait)
    assert _network_unavailable(plane, "node-0") == ("False", "RouteCreated")
    assert plane.ok("get", "nodes", name="node-0")["metadata"]["labels"]["racing"] == "writer"


def test_load_balancer_provisioned_backends_updated_and_deleted():
    plane, cloud, _ = _plane()
    plane.run(10.0)
    plane.ok(
        "create",
        "services",
        namespace="default",
        body={
            "metadata": {"name": "web"},
            "spec": {"type": "LoadBalancer", "ports": [{"port": 80, "nodePort": 30080}]},
        },
    )
    created = plane.engine.now
    while not plane.ok("get", "services", namespace="default", name="web").get("status", {}).get("loadBalancer"):
        plane.run(plane.engine.now + 5)
        assert plane.engine.now < created + 1200
    svc = plane.ok("get", "services", namespace="default", name="web")
    assert svc["status"]["loadBalancer"]["ingress"][0]["ip"].startswith("203.0.113.")
    assert plane.engine.now - created > 30  # provisioning takes minutes
    lb = next(iter(cloud.load_balancers.values()))
    assert lb.backends == ["node-0", "node-1"] and lb.ports == [30080]
    cloud.add_instance("node-2")
    plane.nodes.append(HollowNode(plane.api, "node-2", uninitialized=True))
    plane.run(plane.engine.now + 120)
    assert lb.backends == ["node-0", "node-1", "node-2"]
    plane.ok("delete", "services", namespace="default", name="web")
    plane.run(plane.engine.now + 900)
    _, err = plane.call("get", "services", namespace="default", name="web")
    assert err.code == 404 and cloud.load_balancers == {}


def test_cloud_settings_come_from_the_profile():
    profile = load_profile()
    assert Cloud(Engine(), profile).route_limit == profile.value("cloud.route_table_limit") == 50
    assert Cloud(Engine(), profile.override({"cloud.route_table_limit": 7})).route_limit == 7
    with pytest.raises(KeyError):
        profile.value("cloud.nope")


def test_configuration_defaults_are_upstreams_and_validated():
    config = CloudControllerManagerConfiguration()
    assert (config.kube_api_qps, config.kube_api_burst, config.concurrent_service_syncs) == (20.0, 30, 1)
    assert (config.node_monitor_period, config.route_reconciliation_period, config.node_status_update_frequency) == (
        5.0,
        10.0,
        300.0,
    )
    assert (config.allocate_node_cidrs, config.configure_cloud_routes, config.cluster_cidr) == (False, True, "")
    assert config.to_manifest()["node-status-update-frequency"] == "5m0s"
    assert config.replace({"controllers": ["route", "service"]}).enabled("node-route-controller")
    with pytest.raises(ConfigError, match=r"controllers: '-routes' is not in the list of known controllers"):
        CloudControllerManagerConfiguration.from_flags({"controllers": "*,-routes"})
    with pytest.raises(ConfigError, match=r"clusterCIDR: 'ten' is not an IPv4 CIDR"):
        CloudControllerManagerConfiguration.from_flags({"allocate-node-cidrs": "true", "cluster-cidr": "ten"})


def test_route_controller_runs_only_with_allocate_node_cidrs_and_configure_cloud_routes():
    """startRouteController returns early unless --allocate-node-cidrs and --configure-cloud-routes."""
    plane = Plane()
    cloud = Cloud(plane.engine)
    assert "node-route-controller" not in [c.name for c in cloud_controller_manager(plane.api, cloud).controllers]
    assert "node-route-controller" in [c.name for c in ccm(plane, cloud).controllers]
    no_routes = ccm(plane, cloud, flags={"configure-cloud-routes": "false"})
    assert "node-route-controller" not in [c.name for c in no_routes.controllers]


def test_node_status_is_read_from_the_cloud_every_node_status_update_frequency():
    """UpdateNodeStatus: every --node-status-update-frequency, one InstanceMetadata call per initialized node (the
    modelled instances never change, so nothing is written)."""
    plane, cloud, manager = _plane(nodes=2)
    plane.run(60.0)
    initialized = cloud.calls["InstanceMetadata"]  # syncNode's, while the nodes had the uninitialized taint
    sent = record(manager.controller("cloud-node-controller").client)
    plane.run(60.0 + 300.0)
    assert cloud.calls["InstanceMetadata"] == initialized + 2
    plane.run(60.0 + 600.0)
    assert cloud.calls["InstanceMetadata"] == initialized + 4 and not [r for r in sent if r["verb"] != "get"]
    quick = CloudControllerManagerConfiguration.from_flags({"node-status-update-frequency": "1m0s"})
    assert quick.node_status_update_frequency == 60.0


def test_cloud_costs_come_from_the_profile_section():
    costs = CloudCosts.from_profile(load_profile())
    assert (costs.api_qps, costs.api_burst, costs.route_table_limit) == (10.0, 20, 50)
    assert costs.load_balancer_latency.sampler(Streams(0)("x"))() > 0


def test_leader_election_lease_is_where_the_flags_put_it():
    """--leader-elect-resource-namespace / -name (GenericControllerManagerConfiguration's) place the CCM's Lease."""
    plane = Plane()
    plane.ok("create", "namespaces", body={"metadata": {"name": "ccm-system"}})
    flags = {"leader-elect-resource-namespace": "ccm-system", "leader-elect-resource-name": "ccm-lock"}
    manager = ccm(plane, Cloud(plane.engine), flags=flags).start()
    plane.run(5.0)
    assert manager.leading
    lease = plane.ok("get", "leases", namespace="ccm-system", name="ccm-lock")
    assert lease["spec"]["holderIdentity"] == "ccm-0"
