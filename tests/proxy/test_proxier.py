"""Manifests in, rules out: bad input is refused with the object and field named, and nothing is lost."""

from __future__ import annotations

import copy

import pytest

from kbench.api.core import ManifestError
from kbench.cli import main
from kbench.componentconfig import ConfigError
from kbench.proxy import FORMATS, KubeProxyConfiguration, Proxier, ProxierConfig

SERVICE = {
    "apiVersion": "v1",
    "kind": "Service",
    "metadata": {"name": "web", "namespace": "shop"},
    "spec": {
        "clusterIP": "10.96.0.10",
        "type": "NodePort",
        "ports": [{"name": "http", "port": 80, "targetPort": 8080, "nodePort": 30080}],
    },
}
SLICE = {
    "apiVersion": "discovery.k8s.io/v1",
    "kind": "EndpointSlice",
    "metadata": {"name": "web-1", "namespace": "shop", "labels": {"kubernetes.io/service-name": "web"}},
    "addressType": "IPv4",
    "endpoints": [{"addresses": ["10.0.1.5"], "nodeName": "node-0"}],
    "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
}


def _edit(obj: dict, path: str, value) -> dict:
    out = copy.deepcopy(obj)
    node = out
    *parents, last = path.split(".")
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return out


BAD = [
    ([_edit(SERVICE, "spec.clusterIP", "10.96.0.300"), SLICE], "Service shop/web: spec.clusterIPs[0]: '10.96.0.300'"),
    ([_edit(SERVICE, "spec.ports.0.port", 70000), SLICE], "Service shop/web: spec.ports[0].port: must be 1-65535"),
    ([_edit(SERVICE, "spec.ports.0.nodePort", -1), SLICE], "Service shop/web: spec.ports[0].nodePort: must be 0-65535"),
    ([SERVICE, _edit(SLICE, "ports.0.port", 0)], "EndpointSlice shop/web-1: ports[0].port: must be 1-65535"),
    (
        [SERVICE, _edit(SLICE, "endpoints.0.addresses", ["10.0.1"])],
        "EndpointSlice shop/web-1: endpoints[0].addresses[0]: '10.0.1' is not a valid IP address",
    ),
    (
        [SERVICE, _edit(_edit(SERVICE, "metadata.name", "api"), "spec.clusterIP", "10.96.0.10"), SLICE],
        "Service shop/api: spec.clusterIPs[0]: 10.96.0.10 is already the ClusterIP of Service shop/web",
    ),
    (
        [_edit(SERVICE, "spec.sessionAffinity", "Cookie"), SLICE],
        "Service shop/web: spec.sessionAffinity: must be None or ClientIP; got 'Cookie'",
    ),
    (
        [_edit(SERVICE, "spec.externalTrafficPolicy", "Nearest"), SLICE],
        "Service shop/web: spec.externalTrafficPolicy: must be Cluster or Local; got 'Nearest'",
    ),
    (
        [_edit(SERVICE, "spec.loadBalancerSourceRanges", ["300.0.0.0/8"]), SLICE],
        "Service shop/web: spec.loadBalancerSourceRanges[0]: '300.0.0.0/8' is not a valid CIDR",
    ),
    (
        [SERVICE, _edit(SLICE, "addressType", "IPv5")],
        "EndpointSlice shop/web-1: addressType: must be one of IPv4, IPv6, FQDN; got 'IPv5'",
    ),
    (
        [SERVICE, _edit(SLICE, "addressType", None)],
        "EndpointSlice shop/web-1: addressType: must be one of IPv4, IPv6, FQDN; got None",
    ),
    # discovery validation: an address of the slice's addressType, not a special IP, at least one address
    (
        [SERVICE, _edit(SLICE, "endpoints.0.addresses", ["fd00::5"])],
        "EndpointSlice shop/web-1: endpoints[0].addresses[0]: 'fd00::5' must be a valid IPv4 address",
    ),
    (
        [SERVICE, _edit(SLICE, "endpoints.0.addresses", ["10.0.1.5", "fd00::5"])],
        "EndpointSlice shop/web-1: endpoints[0].addresses[1]: 'fd00::5' must be a valid IPv4 address",
    ),
    (
        [SERVICE, _edit(SLICE, "endpoints.0.addresses", ["127.0.0.1"])],
        "endpoints[0].addresses[0]: '127.0.0.1' may not be in the loopback range (127.0.0.0/8, ::1/128)",
    ),
    (
        [SERVICE, _edit(SLICE, "endpoints.0.addresses", ["169.254.169.254"])],
        "endpoints[0].addresses[0]: '169.254.169.254' may not be in the link-local range",
    ),
    (
        [SERVICE, _edit(SLICE, "endpoints.0.addresses", [])],
        "EndpointSlice shop/web-1: endpoints[0].addresses: must hold 1 to 100 addresses; got 0",
    ),
    # EndpointConditions are *bool: a string does not decode
    (
        [SERVICE, _edit(SLICE, "endpoints.0.conditions", {"ready": "false"})],
        "EndpointSlice shop/web-1: endpoints[0].conditions.ready: must be true, false or null (a boolean); got 'false'",
    ),
    (
        [SERVICE, _edit(SLICE, "endpoints.0.conditions", {"terminating": "yes"})],
        "endpoints[0].conditions.terminating: must be true, false or null (a boolean); got 'yes'",
    ),
    # the NodePort allocator and ValidateService
    (
        [_edit(SERVICE, "spec.ports.0.nodePort", 80), SLICE],
        "Service shop/web: spec.ports[0].nodePort: 80: provided port is not in the valid range. The range of valid "
        "ports is 30000-32767",
    ),
    (
        [_edit(SERVICE, "spec.type", "ClusterIP"), SLICE],
        "Service shop/web: spec.ports[0].nodePort: may not be used when `type` is 'ClusterIP'",
    ),
    (
        [SERVICE, _edit(_edit(SERVICE, "metadata.name", "api"), "spec.clusterIP", "10.96.0.11"), SLICE],
        "Service shop/api: spec.ports[0].nodePort: 30080: provided port is already allocated (to Service shop/web)",
    ),
    (
        [
            _edit(SERVICE, "spec.ports", [*SERVICE["spec"]["ports"], {"name": "alt", "port": 81, "nodePort": 30080}]),
            SLICE,
        ],
        "Service shop/web: spec.ports[1].nodePort: Duplicate value: 30080",
    ),
    (
        [
            _edit(
                _edit(_edit(SERVICE, "spec.type", "LoadBalancer"), "spec.externalTrafficPolicy", "Local"),
                "spec.healthCheckNodePort",
                30080,
            ),
            SLICE,
        ],
        "Service shop/web: spec.healthCheckNodePort: 30080: provided port is already allocated (to Service shop/web)",
    ),
    # a misspelled kind is not silently dropped
    (
        [{**SERVICE, "kind": "Servce"}, SLICE],
        "manifests: document 0: kind: 'Servce' is not one of ConfigMap, Deployment, EndpointSlice",
    ),
]


@pytest.mark.parametrize("mode", ["iptables", "nftables", "ipvs"])
@pytest.mark.parametrize(("manifests", "message"), BAD, ids=[m for _, m in BAD])
def test_bad_input_is_refused_and_previous_rules_stay(mode, manifests, message):
    proxier = Proxier(mode, ProxierConfig(node_name="node-0"))
    proxier.sync([SERVICE, SLICE])
    before = proxier.render()
    with pytest.raises(ManifestError) as err:
        proxier.sync(manifests)
    assert message in str(err.value)
    assert proxier.render() == before
    assert proxier.trace("10.0.0.2", "TCP", "10.96.0.10", 80)[0] == ["10.0.1.5:8080"]


def _ipv6(obj: dict) -> dict:
    return _edit(_edit(obj, "spec.clusterIP", "fd00::10"), "spec.ports.0.nodePort", 30081)


IGNORED = [  # what kube-proxy skips (and logs): ignored, reported, the rest of the rules still built
    (
        [SERVICE, SLICE, _edit(_ipv6(SERVICE), "metadata.name", "v6")],
        "Service shop/v6: spec.clusterIPs: no IPv4 address (fd00::10); an IPv4 kube-proxy ignores the Service",
    ),
    (
        [SERVICE, SLICE, _edit(SLICE, "metadata.labels", {"kubernetes.io/service-name": "gone"})],
        "EndpointSlice shop/web-1: metadata.labels['kubernetes.io/service-name']: no Service shop/gone; kube-proxy "
        "programs its endpoints only once the Service exists",
    ),
    (
        [SERVICE, SLICE, _edit(_edit(SLICE, "metadata.name", "web-2"), "ports.0.name", "https")],
        "EndpointSlice shop/web-2: ports[0]: Service shop/web has no TCP port named 'https'; kube-proxy ignores these "
        "endpoints",
    ),
    (
        [
            SERVICE,
            SLICE,
            _edit(
                _edit(_edit(SLICE, "metadata.name", "web-v6"), "addressType", "IPv6"),
                "endpoints.0.addresses",
                ["fd00::5"],
            ),
        ],
        "EndpointSlice shop/web-v6: addressType: an IPv4 kube-proxy ignores IPv6 slices",
    ),
    (
        [
            SERVICE,
            SLICE,
            _edit(
                _edit(_edit(SLICE, "metadata.name", "web-dns"), "addressType", "FQDN"),
                "endpoints.0.addresses",
                ["db.example.com"],
            ),
        ],
        "EndpointSlice shop/web-dns: addressType: an IPv4 kube-proxy ignores FQDN slices",
    ),
    (
        [SERVICE, SLICE, _edit(_edit(SLICE, "metadata.name", "web-3"), "metadata.labels", {})],
        "EndpointSlice shop/web-3: metadata.labels['kubernetes.io/service-name']: not set; "
        "kube-proxy ignores the slice",
    ),
    (
        [SERVICE, SLICE, _edit(_edit(SERVICE, "metadata.name", "api"), "spec", {"ports": [{"port": 80}]})],
        "Service shop/api: spec.clusterIP: not set (the apiserver would allocate one); no rules until it has one",
    ),
    (
        [
            SERVICE,
            SLICE,
            _edit(
                _edit(_edit(SERVICE, "metadata.name", "api"), "spec.clusterIP", "10.96.0.11"),
                "spec.ports.0.nodePort",
                None,
            ),
        ],
        "Service shop/api: spec.ports[0].nodePort: not set (the apiserver would allocate one); no NodePort rules until "
        "it has one",
    ),
    (
        [_edit(SERVICE, "spec.externalIPs", ["203.0.113.9", "2001:db8::9"]), SLICE],
        "Service shop/web: spec.externalIPs: an IPv4 kube-proxy ignores 2001:db8::9",
    ),
    (
        [{**SERVICE, "status": {"loadBalancer": {"ingress": [{"ip": "2001:db8::7"}, {"ip": "203.0.113.7"}]}}}, SLICE],
        "Service shop/web: status.loadBalancer.ingress: an IPv4 kube-proxy ignores 2001:db8::7",
    ),
    (
        [_edit(SERVICE, "spec.loadBalancerSourceRanges", ["fd00::/8", "10.0.0.0/8", "2001:db8::/32"]), SLICE],
        "Service shop/web: spec.loadBalancerSourceRanges: an IPv4 kube-proxy ignores fd00::/8, 2001:db8::/32",
    ),
]


@pytest.mark.parametrize("mode", ["iptables", "nftables", "ipvs"])
@pytest.mark.parametrize(("manifests", "message"), IGNORED, ids=[m for _, m in IGNORED])
def test_what_kube_proxy_ignores_is_reported(mode, manifests, message):
    proxier = Proxier(mode, ProxierConfig(node_name="node-0"))
    assert proxier.sync(manifests) == [message] == proxier.ignored
    assert proxier.trace("10.0.0.2", "TCP", "10.96.0.10", 80)[0] == ["10.0.1.5:8080"]
    assert "fd00::10" not in proxier.render() and "fd00::5" not in proxier.render()


def test_headless_external_name_and_dual_stack_are_quiet():
    headless = _edit(_edit(SERVICE, "metadata.name", "db"), "spec", {"clusterIP": "None", "ports": [{"port": 5432}]})
    external = _edit(
        _edit(SERVICE, "metadata.name", "ext"), "spec", {"type": "ExternalName", "externalName": "db.example.com"}
    )
    slice_ = _edit(_edit(SLICE, "metadata.name", "db-1"), "metadata.labels", {"kubernetes.io/service-name": "db"})
    assert Proxier("iptables").sync([SERVICE, SLICE, headless, slice_, external]) == []
    # clusterIPs alone: the apiserver defaults clusterIP from clusterIPs[0], so this one is headless too
    listed = _edit(
        _edit(SERVICE, "metadata.name", "cache"), "spec", {"clusterIPs": ["None"], "ports": [{"port": 6379}]}
    )
    assert Proxier("iptables").sync([SERVICE, SLICE, listed]) == []


def test_one_service_may_give_tcp_and_udp_one_node_port():
    both = _edit(
        SERVICE,
        "spec.ports",
        [*SERVICE["spec"]["ports"], {"name": "quic", "port": 80, "protocol": "UDP", "nodePort": 30080}],
    )
    proxier = Proxier("iptables", ProxierConfig(node_name="node-0"))
    assert proxier.sync([both, SLICE]) == []
    assert sorted(sp.protocol for sp in proxier.ports if sp.node_port == 30080) == ["TCP", "UDP"]


def test_an_ipv6_proxier_reads_the_ipv6_family():
    v6 = ProxierConfig(
        node_ips=("fd00::2",),
        ip_family="IPv6",
        configuration=KubeProxyConfiguration().replace({"clusterCIDR": "fd01::/48"}),
    )
    slice_ = _edit(_edit(SLICE, "addressType", "IPv6"), "endpoints.0.addresses", ["fd01::5"])
    proxier = Proxier("nftables", v6)
    assert proxier.sync([_ipv6(SERVICE), slice_, SLICE]) == [
        "EndpointSlice shop/web-1: addressType: an IPv6 kube-proxy ignores IPv4 slices"
    ]
    assert proxier.trace("fd01::9", "TCP", "fd00::10", 80)[0] == ["[fd01::5]:8080"]


def test_kind_list_is_expanded():
    listed = {"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""}, "items": [SERVICE, SLICE]}
    one, other = Proxier("iptables"), Proxier("iptables")
    one.sync([listed])
    other.sync([SERVICE, SLICE])
    assert one.render() == other.render() and "10.0.1.5:8080" in one.render()
    with pytest.raises(ManifestError, match=r"manifests: document 0: items\[1\]: kind: 'Endpointslice' is not one"):
        Proxier("iptables").sync([{**listed, "items": [SERVICE, {**SLICE, "kind": "Endpointslice"}]}])


def test_other_kinds_kbench_models_are_not_kube_proxys():
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web-0", "namespace": "shop"}}
    proxier = Proxier("iptables")
    assert proxier.sync([pod, SERVICE, SLICE]) == []
    assert proxier.trace("10.0.0.2", "TCP", "10.96.0.10", 80)[0] == ["10.0.1.5:8080"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("10.0.0.2", "ICMP", "10.96.0.10", 80),
            "protocol: must be one of TCP, UDP, SCTP (what kube-proxy programs); got 'ICMP'",
        ),
        (("10.0.0.2", "TCP", "10.96.0.10", 99999), "port: must be 1-65535; got 99999"),
        (("10.0.0.2", "TCP", "10.96.0.10", 0), "port: must be 1-65535; got 0"),
        (("10.0.0.2", "TCP", "10.96.0.300", 80), "destination: '10.96.0.300' is not a valid IP address"),
        (
            ("fd01::9", "TCP", "10.96.0.10", 80),
            "source fd01::9 and destination 10.96.0.10: one packet has one IP family",
        ),
    ],
)
def test_trace_refuses_packets_kube_proxy_cannot_see(args, message):
    proxier = Proxier("iptables")
    proxier.sync([SERVICE, SLICE])
    with pytest.raises(ValueError) as err:
        proxier.trace(*args)
    assert str(err.value) == message


def test_a_packet_no_rule_matches_is_explained():
    proxier = Proxier("iptables")
    proxier.sync([SERVICE, SLICE])
    assert proxier.trace("10.0.0.2", "TCP", "10.96.0.99", 80) == ([], False)
    assert proxier.unmatched("10.96.0.99", "TCP", 80) == (
        "no kube-proxy rule matched TCP 10.96.0.99:80: not a Service address on this node, so kube-proxy leaves the "
        "packet to normal routing"
    )
    assert proxier.unmatched("10.96.0.10", "udp", 8080) == (
        "no kube-proxy rule matched UDP 10.96.0.10:8080: that address serves only TCP 80 (shop/web:http)"
    )


def test_render_formats_and_errors():
    expected = {
        "iptables-save": "10.96.0.10",
        "nft": "10.96.0.10 . tcp . 80",
        "nft-list": "10.96.0.10 . tcp . 80",
        "ipvsadm": "TCP  10.96.0.10:80 rr",
        "ipset": "10.96.0.10,tcp:80",
    }
    for mode, formats in FORMATS.items():
        proxier = Proxier(mode)
        proxier.sync([SERVICE, SLICE])
        for fmt in formats:
            text = proxier.render(fmt)
            assert (expected[fmt] if (mode, fmt) != ("ipvs", "iptables-save") else "KUBE-CLUSTER-IP dst,dst") in text
    with pytest.raises(ValueError, match="format: iptables renders as iptables-save; got 'nft'"):
        Proxier("iptables").render("nft")
    with pytest.raises(ValueError, match="mode: must be one of iptables, ipvs, nftables; got 'userspace'"):
        Proxier("userspace")


def test_proxier_config_errors_name_the_setting():
    with pytest.raises(ManifestError, match="proxier.nodeIP: unknown setting; allowed: nodeName, nodeIPs"):
        ProxierConfig.from_dict({"nodeIP": "1.2.3.4"})
    with pytest.raises(ManifestError, match=r"proxier.nodeIPs\[1\]: 'x' is not a valid IP address"):
        ProxierConfig.from_dict({"nodeIPs": ["1.2.3.4", "x"]})
    with pytest.raises(ManifestError, match="proxier.ipFamily: must be IPv4 or IPv6; got 'IPv7'"):
        ProxierConfig.from_dict({"ipFamily": "IPv7"})
    with pytest.raises(
        ConfigError, match=r"proxier.ipvs.scheduler: 'mh' is not allowed; expected one of \"\", rr, wrr"
    ):
        ProxierConfig.from_dict({"ipvsScheduler": "mh"})
    with pytest.raises(ManifestError, match="proxier.masqueradeMark: '0x4001' must be a single bit, e.g. 0x4000"):
        ProxierConfig.from_dict({"masqueradeMark": "0x4001"})
    assert ProxierConfig.from_dict({"masqueradeMark": "0x8000"}).masquerade_mark == "0x8000"


def test_proxy_sweep_from_the_cli(tmp_path, capsys):
    code = main(
        [
            "sweep",
            "proxy",
            "--param",
            "services=200",
            "--param",
            "endpoints=2",
            "--param",
            "mode=nftables,ipvs",
            "--param",
            "churn=2",
            "--out",
            str(tmp_path),
            "--jobs",
            "1",
            "--no-progress",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0 and "2 points in" in out and "sim_first_packet_p50_ms" in out
    assert {p.name for p in (tmp_path / "proxy" / "latest").glob("*.png")} == {
        "proxy_first_packet.png",
        "proxy_sync.png",
        "proxy_wall.png",
    }
    assert main(["sweep", "proxy", "--param", "mode=userspace", "--out", str(tmp_path)]) == 2
    assert "mode: kube-proxy mode (one of iptables, ipvs, nftables)" in capsys.readouterr().err


def test_node_ip_family_reads_addresses_as_the_config_check_does():
    from kbench.proxy.model import ProxierConfig

    with pytest.raises(ManifestError, match=r"proxier.nodeIPs\[0\]"):
        ProxierConfig(node_ips=("192.168.0.256",))
    accepted = ProxierConfig(node_ips=("192.168.000.2",))  # parse_ip accepts it, so the family check must too
    assert accepted.node_ip == "192.168.000.2"
    assert ProxierConfig(node_ips=("fd00::2",), ip_family="IPv6").node_ip == "fd00::2"
