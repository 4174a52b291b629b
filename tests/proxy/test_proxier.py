"""Manifests in, rules out: bad input is refused with the object and field named, and nothing is lost."""

from __future__ import annotations

import copy

import pytest

from kbench.api.core import ManifestError
from kbench.cli import main
from kbench.proxy import FORMATS, Proxier, ProxierConfig

SERVICE = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "shop"},
           "spec": {"clusterIP": "10.96.0.10", "type": "NodePort",
                    "ports": [{"name": "http", "port": 80, "targetPort": 8080, "nodePort": 30080}]}}
SLICE = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
         "metadata": {"name": "web-1", "namespace": "shop", "labels": {"kubernetes.io/service-name": "web"}},
         "addressType": "IPv4", "endpoints": [{"addresses": ["10.0.1.5"], "nodeName": "node-0"}],
         "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]}


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
    ([SERVICE, _edit(SLICE, "endpoints.0.addresses", ["10.0.1"])],
     "EndpointSlice shop/web-1: endpoints[0].addresses[0]: '10.0.1' is not a valid IP address"),
    ([SERVICE, _edit(_edit(SERVICE, "metadata.name", "api"), "spec.clusterIP", "10.96.0.10"), SLICE],
     "Service shop/api: spec.clusterIPs[0]: 10.96.0.10 is already the ClusterIP of Service shop/web"),
    ([SERVICE, _edit(SLICE, "metadata.labels", {"kubernetes.io/service-name": "gone"})],
     "EndpointSlice shop/web-1: metadata.labels['kubernetes.io/service-name']: no Service shop/gone"),
    ([SERVICE, _edit(SLICE, "ports.0.name", "https")],
     "EndpointSlice shop/web-1: ports[0]: Service shop/web has no TCP port named 'https'"),
    ([_edit(SERVICE, "spec.sessionAffinity", "Cookie"), SLICE],
     "Service shop/web: spec.sessionAffinity: must be None or ClientIP; got 'Cookie'"),
    ([_edit(SERVICE, "spec.externalTrafficPolicy", "Nearest"), SLICE],
     "Service shop/web: spec.externalTrafficPolicy: must be Cluster or Local; got 'Nearest'"),
    ([_edit(SERVICE, "spec.loadBalancerSourceRanges", ["300.0.0.0/8"]), SLICE],
     "Service shop/web: spec.loadBalancerSourceRanges[0]: '300.0.0.0/8' is not a valid CIDR"),
    ([SERVICE, _edit(SLICE, "addressType", "IPv5")],
     "EndpointSlice shop/web-1: addressType: must be IPv4, IPv6 or FQDN; got 'IPv5'"),
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


def test_render_formats_and_errors():
    expected = {"iptables-save": "10.96.0.10", "nft": "10.96.0.10 . tcp . 80", "nft-list": "10.96.0.10 . tcp . 80",
                "ipvsadm": "TCP  10.96.0.10:80 rr", "ipset": "10.96.0.10,tcp:80"}
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
    with pytest.raises(ManifestError, match="proxier.ipvsScheduler: must be one of rr, wrr, lc, sh; got 'mh'"):
        ProxierConfig(ipvs_scheduler="mh")


def test_cli_render_and_trace(tmp_path, capsys):
    import yaml

    path = tmp_path / "web.yaml"
    path.write_text(yaml.safe_dump_all([SERVICE, SLICE]))
    assert main(["proxy", "render", str(path), "--mode", "nftables", "--format", "nft-list"]) == 0
    assert "table ip kube-proxy {" in capsys.readouterr().out
    assert main(["proxy", "trace", str(path), "--destination", "192.168.0.2:30080", "--source", "1.2.3.4"]) == 0
    assert capsys.readouterr().out.strip() == "10.0.1.5:8080  [masqueraded]"
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump_all([_edit(SERVICE, "spec.ports.0.port", 0)]))
    assert main(["proxy", "render", str(bad)]) == 2
    assert "Service shop/web: spec.ports[0].port: must be 1-65535, got 0" in capsys.readouterr().err
    assert main(["proxy", "trace", str(path), "--destination", "10.96.0.10"]) == 2
    assert "--destination: required for trace, as IP:PORT" in capsys.readouterr().err


def test_proxy_sweep_from_the_cli(tmp_path, capsys):
    code = main(["sweep", "proxy", "--param", "services=200", "--param", "endpoints=2", "--param", "mode=nftables,ipvs",
                 "--param", "churn=2", "--out", str(tmp_path), "--jobs", "1", "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0 and "2 points in" in out and "sim_first_packet_p50_ms" in out
    assert {p.name for p in (tmp_path / "proxy" / "latest").glob("*.png")} == {
        "proxy_first_packet.png", "proxy_sync.png", "proxy_wall.png"}
    assert main(["sweep", "proxy", "--param", "mode=userspace", "--out", str(tmp_path)]) == 2
    assert "mode: kube-proxy mode (one of iptables, ipvs, nftables)" in capsys.readouterr().err


def test_node_ip_family_reads_addresses_as_the_config_check_does():
    from kbench.proxy.model import ProxierConfig

    with pytest.raises(ManifestError, match=r"proxier.nodeIPs\[0\]"):
        ProxierConfig(node_ips=("192.168.0.256",))
    accepted = ProxierConfig(node_ips=("192.168.000.2",))  # parse_ip accepts it, so the family check must too
    assert accepted.node_ip == "192.168.000.2"
    assert ProxierConfig(node_ips=("fd00::2",), ip_family="IPv6").node_ip == "fd00::2"
