"""Every component's configuration, set the ways an operator sets it: scenario files (flags in the cluster section,
component-config documents), ``--config`` files, sweeps (``--param <component>.<field>``) and Python."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml

from kbench import components
from kbench.cli import main
from kbench.cluster import Cluster, ClusterSpec
from kbench.componentconfig import ConfigError
from kbench.scenarios.spec import Scenario, ScenarioError
from kbench.sweep import get_sweep

HEAD = "apiVersion: kbench.io/v1\nkind: Scenario\nmetadata: {name: t}\n"


def test_every_component_is_registered_with_a_configuration():
    assert list(components.CONFIGS) == [
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
        "kubelet",
        "kube-proxy",
        "cloud-controller-manager",
    ]
    assert set(components.KINDS) == {"KubeSchedulerConfiguration", "KubeletConfiguration", "KubeProxyConfiguration"}
    assert components.FLAGGED == ("kube-apiserver", "kube-controller-manager", "cloud-controller-manager")


@pytest.mark.parametrize("name", list(components.CONFIGS))
def test_defaults_round_trip_through_what_upstream_writes(name):
    cls = components.CONFIGS[name]
    default = cls()
    written = default.to_manifest()
    again = cls.from_flags(written) if name in components.FLAGGED else cls.from_manifest(written)
    assert again == default
    assert default.values() and all(cls.lookup(path) for path in default.values())


def test_a_scenario_file_sets_flags_and_component_configs():
    sc = Scenario.from_text(
        HEAD + "cluster:\n  nodes: 3\n  kube-controller-manager: {kube-api-qps: 100, --kube-api-burst: '200'}\n"
        "  kube-apiserver: {max-requests-inflight: 800}\n"
        "---\napiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nkubeAPIQPS: 7\n"
        "---\napiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nmode: ipvs\n"
        "---\napiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\n"
        "clientConnection: {qps: 300, burst: 600}\n"
        "---\napiVersion: v1\nkind: Namespace\nmetadata: {name: x}\n"
    )
    changed = components.changed_fields(sc.cluster.config)
    assert changed == {
        "kube-apiserver.maxRequestsInflight": 800,
        "kube-controller-manager.kubeAPIQPS": 100.0,
        "kube-controller-manager.kubeAPIBurst": 200,
        "kube-scheduler.clientConnection.qps": 300.0,
        "kube-scheduler.clientConnection.burst": 600,
        "kubelet.kubeAPIQPS": 7.0,
        "kube-proxy.mode": "ipvs",
    }
    assert [o["kind"] for o in sc.objects] == ["Namespace"]  # configuration is not an object to create


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("cluster: {kube-scheduler: {qps: 1}}\n", "cluster.kube-scheduler: not a component configured by flags"),
        ("cluster: {kube-controller-manager: [kube-api-qps=1]}\n", "expected a mapping of flags"),
        ("cluster: {kube-controller-manager: {kube-api-qps: '-5'}}\n", r"kubeAPIQPS: '-5' is out of range"),
        (
            "---\napiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nkubeAPIQPZ: 1\n",
            r"t.yaml: document 1: KubeletConfiguration.kubeAPIQPZ: unknown field; allowed: ",
        ),
        (
            "---\napiVersion: kubelet.config.k8s.io/v1\nkind: KubeletConfiguration\n",
            r"apiVersion/kind: expected kubelet.config.k8s.io/v1beta1 KubeletConfiguration",
        ),
    ],
)
def test_bad_configuration_in_a_scenario_names_document_component_and_field(text, message):
    with pytest.raises(ScenarioError, match=message):
        Scenario.from_text(HEAD + text, "t.yaml")


def test_python_sets_fields_by_component_and_sweeps_by_dotted_name():
    spec = ClusterSpec(nodes=2, config={"kube-controller-manager": {"kubeAPIQPS": 100}})
    assert spec.config["kube-controller-manager"].values()["kubeAPIQPS"] == 100.0
    assert (
        spec.configure({"kubelet.nodeStatusUpdateFrequency": "20s"})
        .config["kubelet"]
        .values()["nodeStatusUpdateFrequency"]
        == "20s"
    )
    with pytest.raises(ValueError, match="cluster.config.kubelett: unknown component; allowed: kube-apiserver"):
        ClusterSpec(config={"kubelett": {}})
    with pytest.raises(ConfigError, match="KubeletConfiguration.nope: unknown field; allowed: kubeAPIQPS"):
        spec.configure({"kubelet.nope": 1})
    with pytest.raises(ConfigError, match="expected <component>.<field> with component one of kube-apiserver"):
        spec.configure({"kubeAPIQPS": 1})


def test_the_cluster_sweep_takes_any_component_field_as_an_axis():
    sweep = get_sweep("cluster")
    axes = sweep.parse_overrides(["kube-controller-manager.kubeAPIQPS=20,100", "kubelet.nodeStatusUpdateFrequency=10s"])
    assert axes == {"kube-controller-manager.kubeAPIQPS": [20.0, 100.0], "kubelet.nodeStatusUpdateFrequency": ["10s"]}
    grid = sweep.grid("quick", {**axes, "nodes": [10]})
    assert len(grid) == 2 and {p["kube-controller-manager.kubeAPIQPS"] for p in grid} == {20.0, 100.0}
    for bad, message in [
        ("kube-controller-manager.kubeAPIQPS=-1", "out of range"),
        ("kube-proxy.mode=userspace", "'userspace' is not allowed; expected one of"),
        ("kubelet.nodeStatusUpdateFrequency=10", "is not a duration"),
        ("kube-schedular.parallelism=1", "component one of kube-apiserver"),
        ("kube-controller-manager.kubeAPIQPS=20,,100", "'kube-controller-manager.kubeAPIQPS': empty value list"),
    ]:
        with pytest.raises(ValueError, match=message):
            sweep.parse_overrides([bad])
    with pytest.raises(ValueError, match="has no parameter 'kubelet.kubeAPIQPS'"):
        get_sweep("etcd").parse_overrides(["kubelet.kubeAPIQPS=1"])


def test_config_command_lists_every_field_and_writes_a_config_file_that_loads(tmp_path, capsys):
    assert main(["config"]) == 0
    listing = capsys.readouterr().out
    for name, cls in components.CONFIGS.items():
        assert f"{name} (" in listing
        assert all(f"  {path}" in listing for path in cls.options())
    assert "--kube-api-qps" in listing and "source: " in listing
    assert main(["config", "--yaml"]) == 0
    path = tmp_path / "defaults.yaml"
    path.write_text(capsys.readouterr().out)
    assert components.load_file(path) == components.defaults()
    for args in (["config", "kubelett"], ["config", "kubelett", "--yaml"]):
        assert main(args) == 2
        assert "unknown component 'kubelett'; allowed: kube-apiserver" in capsys.readouterr().err


def test_a_config_file_applies_over_a_scenario_and_bad_files_are_refused(tmp_path, capsys):
    config = tmp_path / "config.yaml"
    config.write_text(
        "kube-controller-manager: {kube-api-qps: 100}\n---\n"
        "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nkubeAPIQPS: 9\n"
    )
    assert main(["scenario", "show", "density", "--set", "nodes=3", "--config", str(config)]) == 0
    scenario, *configs = yaml.safe_load_all(capsys.readouterr().out)
    assert scenario["cluster"]["kube-controller-manager"]["kube-api-qps"] == 100
    assert next(c for c in configs if c["kind"] == "KubeletConfiguration")["kubeAPIQPS"] == 9
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n")
    out = tmp_path / "out"
    assert main(["scenario", "run", "density", "--config", str(bad), "--out", str(out), "--no-progress"]) == 2
    assert "document 0: kind 'Pod' is not a component configuration; allowed: " in capsys.readouterr().err
    assert not out.exists()  # nothing written for a refused input


def test_a_sweep_config_file_becomes_one_value_axes_and_a_param_wins(tmp_path, capsys):
    config = tmp_path / "config.yaml"
    config.write_text("kube-controller-manager: {kube-api-qps: 100, kube-api-burst: 100}\n")
    args = ["sweep", "cluster", "--config", str(config), "--param", "kube-controller-manager.kubeAPIQPS=50"]
    args += ["--param", "nodes=3", "--param", "pods_per_node=2", "--param", "services=0", "--param", "proxy_nodes=0"]
    assert main([*args, "--out", str(tmp_path), "--jobs", "1", "--no-progress"]) == 0
    table = pd.read_parquet(next((tmp_path / "cluster").glob("2*/results.parquet")))
    assert table["kube-controller-manager.kubeAPIQPS"].tolist() == [50.0]
    assert table["kube-controller-manager.kubeAPIBurst"].tolist() == [100]
    capsys.readouterr()
    scheduler = tmp_path / "profiles.yaml"
    scheduler.write_text(
        "apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\n"
        "profiles: [{schedulerName: default-scheduler, plugins: {score: {disabled: [{name: ImageLocality}]}}}]\n"
    )
    assert main(["sweep", "cluster", "--config", str(scheduler), "--out", str(tmp_path / "x")]) == 2
    assert "sets more than single fields" in capsys.readouterr().err


def test_per_controller_qps_changes_a_result():
    """kube-controller-manager's --kube-api-qps bounds each controller's own client: ReplicaSet pod creation
    at the default 20 QPS is slower than at 200."""

    def creation_time(qps: float) -> float:
        cluster = Cluster(nodes=2, config={"kube-controller-manager": {"kubeAPIQPS": qps, "kubeAPIBurst": 10}})
        cluster.settle()
        body = yaml.safe_load(
            "apiVersion: apps/v1\nkind: ReplicaSet\nmetadata: {name: rs, namespace: default}\n"
            "spec:\n  replicas: 100\n  selector: {matchLabels: {app: rs}}\n"
            "  template: {metadata: {labels: {app: rs}}, spec: {containers: [{name: c, image: pause}]}}\n"
        )
        start = cluster.engine.now
        cluster.admin.call("create", "replicasets", namespace="default", body=body)
        pods = cluster.api.caches["pods"]
        while sum(1 for key in pods.objects if key.startswith("default/rs-")) < 100:
            cluster.run(cluster.engine.now + 0.5)
        return cluster.engine.now - start

    slow, fast = creation_time(20), creation_time(200)
    assert slow > 4.0 and fast < slow / 3


def test_a_component_config_document_keeps_what_the_installer_writes_unless_it_sets_it():
    proxy = "---\napiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nmode: nftables\n"
    kept = Scenario.from_text(HEAD + proxy).cluster.config["kube-proxy"].values()
    assert kept["mode"] == "nftables" and kept["clusterCIDR"] == components.POD_SUBNET  # kubeadm fills it in
    own = Scenario.from_text(HEAD + proxy + "clusterCIDR: 192.168.0.0/16\n").cluster.config["kube-proxy"]
    assert own.values()["clusterCIDR"] == "192.168.0.0/16"
    assert components.defaults()["kube-controller-manager"].values()["clusterCIDR"] == components.POD_SUBNET
    assert components.CONFIGS["kube-controller-manager"]().values()["allocateNodeCIDRs"] is False  # upstream's


def test_each_component_of_a_cluster_built_from_a_scenario_file_runs_with_its_configuration():
    sc = Scenario.from_text(
        HEAD + "cluster:\n  nodes: 2\n  cloud: true\n"
        "  kube-apiserver: {max-requests-inflight: 800, enable-priority-and-fairness: 'false'}\n"
        "  kube-controller-manager: {kube-api-qps: 77}\n"
        "  cloud-controller-manager: {kube-api-qps: 9}\n"
        "---\napiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\n"
        "clientConnection: {qps: 300}\n"
        "---\napiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nkubeAPIQPS: 7\nmaxPods: 30\n"
        "---\napiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nmode: ipvs\n"
    )
    cluster = Cluster(sc.cluster)
    cluster.settle()
    assert cluster.api.config.values()["maxRequestsInflight"] == 800
    assert not cluster.api.config.values()["enablePriorityAndFairness"]
    kcm = {agent: {c.limiter.qps for c in clients} for agent, clients in cluster.kcm.builder.clients.items()}
    assert kcm["replicaset-controller"] == kcm["endpointslice-controller"] == kcm["shared-informers"] == {77.0}
    assert kcm["namespace-controller"] == {77.0 * 20}  # upstream gives the namespace controller 20x QPS
    assert len(cluster.kcm.builder.clients["replicaset-controller"]) == 1
    assert {c.limiter.qps for cs in cluster.ccm.builder.clients.values() for c in cs} == {9.0}
    assert cluster.scheduler.client.limiter.qps == 300.0
    assert {k.client.limiter.qps for k in cluster.kubelets} == {7.0}
    node = cluster.api.caches["nodes"].get(cluster.kubelets[0].name)[0]
    assert node["status"]["capacity"]["pods"] == "30"  # the kubelet's maxPods
    assert {p.proxy.mode for p in cluster.proxies} == {"ipvs"}


@pytest.mark.parametrize(
    ("text", "args", "message"),
    [
        (None, ["sweep", "cluster"], "missing.yaml: cannot read: No such file"),
        ("kind: [\n", ["sweep", "cluster"], "config.yaml: not valid YAML"),
        ("kubelet: {kube-api-qps: 1}\n", ["sweep", "cluster"], "config.yaml.kubelet: not a component configured by"),
        ("- 1\n", ["scenario", "show", "density"], "document 0: kind 'list' is not a component configuration"),
        ("kube-controller-manager: {kube-api-qps: 100}\n", ["sweep", "etcd"], "sweep 'etcd' does not build a cluster"),
    ],
)
def test_a_bad_config_file_exits_2_naming_the_file_and_writes_nothing(tmp_path, capsys, text, args, message):
    config = tmp_path / ("missing.yaml" if text is None else "config.yaml")
    if text is not None:
        config.write_text(text)
    out = tmp_path / "out"
    assert main([*args, "--config", str(config), "--out", str(out), "--no-progress"]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()
