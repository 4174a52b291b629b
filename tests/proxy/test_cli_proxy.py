"""``kbench proxy render|trace``: rules and traces from manifest files; bad input exits 2 with one line."""

from __future__ import annotations

import pytest
import yaml

from kbench.cli import main
from tests.proxy.test_proxier import SERVICE, SLICE, _edit


@pytest.fixture
def web(tmp_path):
    path = tmp_path / "web.yaml"
    path.write_text(yaml.safe_dump_all([SERVICE, SLICE]))
    return path


def test_render_and_trace(web, capsys):
    assert main(["proxy", "render", str(web), "--mode", "nftables", "--format", "nft-list"]) == 0
    assert "table ip kube-proxy {" in capsys.readouterr().out
    assert main(["proxy", "trace", str(web), "--destination", "192.168.0.2:30080", "--source", "1.2.3.4"]) == 0
    assert capsys.readouterr().out.strip() == "10.0.1.5:8080  [masqueraded]"


def test_what_kubectl_get_writes_is_read(tmp_path, capsys):
    path = tmp_path / "all.yaml"
    path.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": [SERVICE, SLICE]}))
    assert main(["proxy", "trace", str(path), "--destination", "10.96.0.10:80"]) == 0
    assert capsys.readouterr().out.strip() == "10.0.1.5:8080"


def _error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("kbench: error: ")
    return err.strip()


def test_malformed_yaml_is_one_line_naming_the_file_and_line(tmp_path, capsys):
    path = tmp_path / "broken.yaml"
    path.write_text("kind: Service\nmetadata:\n  name: web\n  labels: [a\nspec: {}\n")
    assert main(["proxy", "render", str(path)]) == 2
    assert _error(capsys).startswith(f"kbench: error: {path}: line 5, column 5: not valid YAML: ")
    settings = tmp_path / "proxier.yaml"
    settings.write_text("nodeName: a\n nodeIPs: x\n")
    assert main(["proxy", "render", str(tmp_path / "broken.yaml"), "--proxier", str(settings)]) == 2
    assert _error(capsys).startswith(f"kbench: error: {settings}: line 2, column 9: not valid YAML: ")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--protocol", "ICMP", "--destination", "10.96.0.10:80"],
            "protocol: must be one of TCP, UDP, SCTP (what kube-proxy programs); got 'ICMP'",
        ),
        (["--destination", "10.96.0.10:99999"], "port: must be 1-65535; got 99999"),
        (["--destination", "10.96.0.10"], "--destination: required for trace, as IP:PORT"),
        (["--destination", "10.96.0.10:http"], "--destination: port must be a number, got 'http'"),
        (["--destination", "10.96.0.10:80", "--source", "pod-a"], "source: 'pod-a' is not a valid IP address"),
    ],
)
def test_invalid_trace_input_exits_2(web, capsys, args, message):
    assert main(["proxy", "trace", str(web), *args]) == 2
    assert message in _error(capsys)


def test_a_packet_to_no_service_says_so(web, capsys):
    assert main(["proxy", "trace", str(web), "--destination", "10.1.2.3:80"]) == 0
    assert capsys.readouterr().out.strip() == (
        "no kube-proxy rule matched TCP 10.1.2.3:80: not a Service address on "
        "this node, so kube-proxy leaves the packet to normal routing"
    )
    assert main(["proxy", "trace", str(web), "--destination", "10.96.0.10:8080"]) == 0
    assert capsys.readouterr().out.strip() == (
        "no kube-proxy rule matched TCP 10.96.0.10:8080: that address serves only TCP 80 (shop/web:http)"
    )


def test_refused_manifests_exit_2_and_ignored_ones_warn(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump_all([_edit(SERVICE, "spec.ports.0.nodePort", 80), SLICE]))
    assert main(["proxy", "render", str(bad)]) == 2
    assert f"{bad}: Service shop/web: spec.ports[0].nodePort: 80: provided port is not in the valid" in _error(capsys)
    bad.write_text(yaml.safe_dump_all([SERVICE, {**SLICE, "kind": "EndPointSlice"}]))
    assert main(["proxy", "render", str(bad)]) == 2
    assert f"{bad}: document 1: kind: 'EndPointSlice' is not one of" in _error(capsys)
    gone = tmp_path / "gone.yaml"
    gone.write_text(yaml.safe_dump_all([_edit(SLICE, "metadata.labels", {"kubernetes.io/service-name": "gone"})]))
    assert main(["proxy", "render", str(gone)]) == 0
    assert capsys.readouterr().err == (
        "kbench: warning: EndpointSlice shop/web-1: metadata.labels['kubernetes.io/"
        "service-name']: no Service shop/gone; kube-proxy programs its endpoints only "
        "once the Service exists\n"
    )
