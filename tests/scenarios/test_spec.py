"""Scenario files: the shipped examples load, bad files are refused with the file, document and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from kbench.scenarios.spec import Scenario, ScenarioError

EXAMPLES = Path(__file__).resolve().parents[2] / "data" / "scenarios" / "cluster"
HEAD = "apiVersion: kbench.io/v1\nkind: Scenario\nmetadata: {name: t}\n"


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_examples_load(path):
    sc = Scenario.from_yaml(path)
    assert sc.steps and sc.cluster.nodes >= 1
    assert Scenario.from_dict(sc.to_dict(), "round trip").steps == sc.steps


@pytest.mark.parametrize(
    "body, message",
    [
        ("", "empty file"),
        ("apiVersion: v1\nkind: Pod\n", "document 0: apiVersion/kind: expected kbench.io/v1 Scenario"),
        (HEAD + "stepz: []\n", "document 0: stepz: unknown field"),
        (HEAD + "cluster: {nodes: 0}\n", r"document 0: cluster.nodes: 0 is not allowed; expected an integer >= 1"),
        (HEAD + "cluster: {node: 3}\n", "document 0: cluster.node: unknown field; allowed: nodes"),
        (
            HEAD + "cluster: {runtime: docker}\n",
            "cluster.runtime: 'docker' is not allowed; expected one of containerd, crio",
        ),
        (HEAD + "cluster: {proxyNodes: -1}\n", "cluster.proxyNodes: -1 is not allowed; expected an integer >= 0"),
        (
            HEAD + "cluster: {kubelet: {kubeAPIQPS: 1}}\n",
            "cluster.kubelet: not a component configured by flags; give its KubeletConfiguration as a document",
        ),
        (
            HEAD + "cluster: {kube-controller-manager: {kube-api-qps: -1}}\n",
            r"cluster.kube-controller-manager.kubeAPIQPS: -1 is out of range; expected a number in \[0, inf\]",
        ),
        (
            HEAD + "cluster: {kube-apiserver: {max-requests-inflights: 1}}\n",
            "cluster.kube-apiserver.max-requests-inflights: unknown field; allowed: ",
        ),
        (
            HEAD + "---\napiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nmode: userspace\n",
            "document 1: KubeProxyConfiguration.mode: 'userspace' is not allowed; expected one of ",
        ),
        (
            HEAD + "---\napiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nkubeAPIQPS: x\n",
            r"document 1: KubeletConfiguration.kubeAPIQPS: 'x' is not an integer",
        ),
        (HEAD + "cluster: {profileOverrides: {etcd.nope: 1}}\n", "override 'etcd.nope'"),
        (
            HEAD + "steps: [{createPods: {perNode: 3, rate: -1}}]\n",
            r"steps\[0\].createPods.rate: expected a number >= 0",
        ),
        (HEAD + "steps: [{createPods: {rate: 1}}]\n", r"steps\[0\].createPods: give exactly one of count and perNode"),
        (HEAD + "steps: [{wait: {secs: 1}}]\n", r"steps\[0\].wait.secs: unknown field; allowed: seconds"),
        (HEAD + "steps: [{wait: {}}]\n", r"steps\[0\].wait.seconds: required"),
        (HEAD + "steps: [{fly: {}}]\n", r"steps\[0\]: unknown action 'fly'; allowed: createPods"),
        (HEAD + "steps: [{wait: {seconds: 1}, scale: {}}]\n", r"steps\[0\]: expected one action mapping"),
        (
            HEAD + "steps: [{createPods: {count: 1, behavior: {readyAftr: 1}}}]\n",
            r"steps\[0\].createPods.behavior: unknown field 'readyAftr'",
        ),
        (
            HEAD + "steps: [{createObjects: {template: {kind: Widget}}}]\n",
            r"steps\[0\].createObjects.template.kind: 'Widget' is not a kind kbench models; allowed: Namespace",
        ),
        (
            HEAD + "steps: [{deleteObjects: {resource: widgets}}]\n",
            r"steps\[0\].deleteObjects.resource: unknown 'widgets'; allowed: (\w+, )+deployments",
        ),
        (HEAD + "steps: [{stopNodes: {fraction: 2}}]\n", r"stopNodes.fraction: expected a share in \[0, 1\]"),
        (
            HEAD + "---\napiVersion: v1\nkind: Widget\nmetadata: {name: w}\n",
            r"document 1: kind: 'Widget' is not one of (\w+, )*Deployment, EndpointSlice",
        ),
        (HEAD + "---\napiVersion: v1\nkind: Service\nmetadata: {}\n", "document 1: metadata.name: required"),
        (HEAD + "steps: [\n", "not valid YAML"),
    ],
)
def test_bad_scenario_names_file_document_and_field(tmp_path, body, message):
    path = tmp_path / "bad.yaml"
    path.write_text(body)
    with pytest.raises(ScenarioError, match=message) as err:
        Scenario.from_yaml(path)
    assert str(err.value).startswith(str(path))


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(ScenarioError, match="nope.yaml: cannot read"):
        Scenario.from_yaml(tmp_path / "nope.yaml")


def test_a_kind_list_document_stands_for_its_items():
    sc = Scenario.from_text(
        HEAD + "---\napiVersion: v1\nkind: List\nitems:\n"
        "- {apiVersion: v1, kind: Namespace, metadata: {name: a}}\n"
        "- {apiVersion: v1, kind: Service, metadata: {name: s, namespace: a},\n"
        "   spec: {ports: [{port: 80}]}}\n"
    )
    assert [(o["kind"], o["metadata"]["name"]) for o in sc.objects] == [("Namespace", "a"), ("Service", "s")]
    with pytest.raises(ScenarioError, match=r"document 1: items\[0\]: kind: 'Widget' is not one of"):
        Scenario.from_text(HEAD + "---\nkind: List\nitems: [{kind: Widget, metadata: {name: w}}]\n")
    with pytest.raises(ScenarioError, match=r"document 2: metadata.name: required"):
        Scenario.from_text(
            HEAD + "---\nkind: Namespace\nmetadata: {name: a}\n---\nkind: List\n"
            "items: [{kind: Namespace, metadata: {}}]\n"
        )


PRESET = """
apiVersion: kbench.io/v1
kind: Scenario
metadata: {name: scale}
cluster:
  nodes: 50
  zones: 2
  profileOverrides: {etcd.wal_fsync.median: 0.002}
  kube-controller-manager: {kube-api-qps: 100, kube-api-burst: 100}
steps:
  - createPods: {perNode: 1, rate: 10}
---
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
kubeAPIQPS: 7
"""


def test_a_scenario_takes_a_presets_cluster_and_changes_it(tmp_path, monkeypatch):
    monkeypatch.setenv("KBENCH_PRESETS", str(tmp_path))
    (tmp_path / "scale.yaml").write_text(PRESET)
    assert Scenario.from_preset("scale").cluster.nodes == 50
    sc = Scenario.from_text(
        "apiVersion: kbench.io/v1\nkind: Scenario\npreset: scale\n"
        "cluster: {nodes: 5, profileOverrides: {etcd.peer_rtt.value: 0.001}}\n"
        "steps: [{wait: {seconds: 1}}]\n"
    )
    assert (sc.cluster.nodes, sc.cluster.zones) == (5, 2)  # the file's field wins; the preset's others stay
    assert sc.cluster.overrides == {"etcd.wal_fsync.median": 0.002, "etcd.peer_rtt.value": 0.001}
    assert sc.cluster.config["kube-controller-manager"].values()["kubeAPIQPS"] == 100
    assert sc.cluster.config["kubelet"].values()["kubeAPIQPS"] == 7
    assert [s.action for s in sc.steps] == ["wait"]  # the preset's workload is not taken
    own = Scenario.from_text(
        "apiVersion: kbench.io/v1\nkind: Scenario\npreset: scale\nsteps: []\n---\n"
        "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nkubeAPIBurst: 3\n"
    )
    kubelet = own.cluster.config["kubelet"].values()
    assert (kubelet["kubeAPIQPS"], kubelet["kubeAPIBurst"]) == (50, 3)  # a document replaces the component's


def test_an_unknown_preset_is_refused_with_the_known_ones(tmp_path, monkeypatch):
    monkeypatch.setenv("KBENCH_PRESETS", str(tmp_path))
    (tmp_path / "scale.yaml").write_text(PRESET)
    with pytest.raises(ScenarioError, match=r"<scenario>: document 0: preset: 'big' is not a preset; presets: scale"):
        Scenario.from_text("apiVersion: kbench.io/v1\nkind: Scenario\npreset: big\n")
    with pytest.raises(ScenarioError, match="preset: expected a preset's name; got 3"):
        Scenario.from_text("apiVersion: kbench.io/v1\nkind: Scenario\npreset: 3\n")
    with pytest.raises(ScenarioError, match="preset: '../scale' is not a preset"):
        Scenario.from_preset("../scale")
    (tmp_path / "a.yaml").write_text("apiVersion: kbench.io/v1\nkind: Scenario\npreset: b\n")
    (tmp_path / "b.yaml").write_text("apiVersion: kbench.io/v1\nkind: Scenario\npreset: a\n")
    with pytest.raises(ScenarioError, match=r"preset: 'a' takes itself as its base \(a -> b -> a\)"):
        Scenario.from_preset("a")
    assert Scenario.from_preset("scale").cluster.nodes == 50  # the refused chain left nothing behind
