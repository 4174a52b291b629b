"""Inputs a user could write: numbers that are not finite, sizes that would fill memory, unknown names,
built-ins described with their real defaults, and Dask addresses that are not Dask schedulers."""

from __future__ import annotations

import socket
import socketserver
import threading
import time

import pytest
import yaml

from kbench.cli import main
from kbench.params import Param
from kbench.scenarios import library
from kbench.scenarios.spec import Scenario, ScenarioError
from kbench.sweep import runner

HEAD = "apiVersion: kbench.io/v1\nkind: Scenario\nmetadata: {name: t}\n"


@pytest.mark.parametrize("value", ["nan", "NaN", "inf", "-inf", "1e400", float("nan"), float("inf")])
def test_params_refuse_values_that_are_not_finite(value):
    for kind in (float, int):
        with pytest.raises(ValueError, match=f"is not a finite {kind.__name__}; allowed: d: seconds"):
            Param("d", kind, "seconds", minimum=0, maximum=10).check(value)


def test_params_refuse_booleans_as_numbers_and_allow_null_only_where_declared():
    with pytest.raises(ValueError, match="is not a finite int"):
        Param("n", int, "count").check(True)
    assert Param("t", float, "time", nullable=True).check(None) is None
    with pytest.raises(ValueError, match="is not a finite float"):
        Param("t", float, "time").check(None)


def test_sweep_param_nan_exits_2_before_anything_runs(tmp_path, capsys):
    assert main(["sweep", "etcd", "--param", "duration=nan", "--out", str(tmp_path)]) == 2
    assert "parameter 'duration': 'nan' is not a finite float" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_scenario_sizes_are_bounded_like_the_sweeps(capsys):
    assert main(["scenario", "run", "density", "--set", "nodes=999999999"]) == 2
    assert (
        "parameter 'nodes': 999999999 is out of range; nodes: nodes in the cluster (int in [1, 20000])"
        in capsys.readouterr().err
    )
    for bad, message in (
        ("rate=.nan", "'rate': nan is not a finite float"),
        ("pods_per_node=5000", "'pods_per_node': 5000 is out of range"),
        ("zones=0", "cluster.zones: 0 is not allowed"),
    ):
        assert main(["scenario", "show", "density", "--set", bad]) == 2
        assert message in capsys.readouterr().err
    with pytest.raises(
        ScenarioError,
        match=r"cluster.nodes: 20001 is not allowed; expected an integer >= 1 and "
        r"<= 20,000",
    ):
        Scenario.from_text(HEAD + "cluster: {nodes: 20001}\n")


def test_set_with_an_unknown_name_lists_the_valid_ones(capsys):
    assert main(["scenario", "run", "density", "--set", "nodez=3"]) == 2
    err = capsys.readouterr().err
    assert "scenario 'density': no parameter 'nodez'; valid: nodes, pods_per_node, rate; cluster fields: zones," in err


def test_scenario_list_shows_each_builtins_parameters_with_defaults(capsys):
    assert main(["scenario", "list"]) == 0
    out = capsys.readouterr().out
    assert "density: CL2 density" in out and "    pods_per_node = 30: pods per node (int in [0, 1000])" in out
    assert "    downtime = None: seconds until the nodes come back (null: never) (float in [0, 86400] or null)" in out
    assert "    mode = 'partition': " in out and "(one of partition, shutdown)" in out
    for name, builtin in library.SCENARIOS.items():
        assert f"\n{name}: " in f"\n{out}"
        for param in builtin.params:
            assert f"    {param.name} = " in out


def test_scenario_show_prints_the_real_defaults(capsys):
    assert main(["scenario", "show", "density"]) == 0
    doc, *configs = yaml.safe_load_all(capsys.readouterr().out)
    cluster = doc["cluster"]
    assert cluster["nodes"] == 100 and cluster["zones"] == 3 and cluster["apiservers"] == 3
    assert cluster["kube-apiserver"]["enable-priority-and-fairness"] is True
    assert cluster["kube-controller-manager"]["kube-api-qps"] == 20
    kinds = {c["kind"]: c for c in configs}
    assert kinds["KubeletConfiguration"]["maxPods"] == 110 and kinds["KubeProxyConfiguration"]["mode"] == ""  # iptables
    assert kinds["KubeSchedulerConfiguration"]["clientConnection"] == {"qps": 50.0, "burst": 100}
    assert doc["steps"][0] == {"createPods": {"perNode": 30, "rate": 20.0, "namespace": "density"}}
    shown = Scenario.from_dict(doc, "shown", configs)
    assert shown.documents() == [doc, *configs] == library.density().documents()  # what is shown is what runs


@pytest.mark.parametrize(
    "step, message",
    [
        ("{createPods: {perNode: 3, rate: .nan}}", r"createPods.rate: expected a number >= 0 and <= 100,000; got nan"),
        ("{createPods: {count: 2000000}}", r"createPods.count: expected a number >= 0 and <= 1,000,000"),
        ("{wait: {seconds: .inf}}", r"wait.seconds: expected a number >= 0 \(finite\); got inf"),
        ("{createPods: {perNode: 1001}}", r"createPods.perNode: expected a number >= 0 and <= 1,000"),
    ],
)
def test_scenario_files_refuse_numbers_out_of_bounds(step, message):
    with pytest.raises(ScenarioError, match=message):
        Scenario.from_text(HEAD + f"steps: [{step}]\n")
    with pytest.raises(ScenarioError, match="drain: expected seconds >= 0"):
        Scenario.from_text(HEAD + "drain: .nan\n")


class _Http(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        self.request.recv(1024)
        self.request.sendall(b"HTTP/1.0 400 Bad Request\r\nContent-Length: 0\r\n\r\n" + b"x" * 64)


def _silent_server() -> tuple[socket.socket, int]:
    """A port that accepts connections and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    return sock, sock.getsockname()[1]


def test_dask_at_an_address_that_is_not_a_dask_scheduler_is_a_clear_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(runner, "CONNECT_TIMEOUT", 2.0)
    http = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Http)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    silent, silent_port = _silent_server()
    try:
        for port in (http.server_address[1], silent_port):
            started = time.monotonic()
            assert main(["sweep", "etcd", "--dask", f"tcp://127.0.0.1:{port}", "--out", str(tmp_path)]) == 2
            assert time.monotonic() - started < 15
            err = capsys.readouterr().err
            assert f"dask: cannot reach a scheduler at tcp://127.0.0.1:{port}" in err and "dask scheduler" in err
        assert not any(tmp_path.iterdir())
    finally:
        http.shutdown()
        silent.close()


@pytest.mark.parametrize(
    "capacity, message",
    [
        ("{cpu: 1e400}", "cluster.nodeCapacity.cpu: '1e400' is out of range"),
        ("{memory: 12Gx}", "cluster.nodeCapacity.memory: "),
        ("{cpu: '0'}", r"cluster.nodeCapacity: .* expected cpu > 0"),
        (
            "{pods: 110}",
            r"cluster.nodeCapacity: .* expected a mapping with cpu and memory \(pods: the kubelet's maxPods\)",
        ),
    ],
)
def test_node_capacity_is_parsed_as_quantities_naming_the_field(capacity, message):
    with pytest.raises(ScenarioError, match=message):
        Scenario.from_text(HEAD + f"cluster: {{nodeCapacity: {capacity}}}\n")
    assert Scenario.from_text(HEAD + "cluster: {nodeCapacity: {cpu: 1Ki, memory: 1Ei}}\n").cluster.nodes == 100
