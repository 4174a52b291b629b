"""The scheduling cycle: anchors, messages, percentageOfNodesToScore, rotation, breakdown."""

from __future__ import annotations

import numpy as np
import pytest

from kbench.api.core import Node, Pod
from kbench.scheduler import breakdown, parse_config
from kbench.scheduler.framework import Framework, num_feasible_nodes_to_find
from kbench.scheduler.state import ClusterState


def node(name: str, cpu: str, memory: str, pods: str = "110", **extra) -> dict:
    return {
        "metadata": {"name": name, **extra.get("metadata", {})},
        "spec": extra.get("spec", {}),
        "status": {"allocatable": {"cpu": cpu, "memory": memory, "pods": pods}},
    }


def pod(name: str, cpu: str | None = None, memory: str | None = None, **spec) -> dict:
    requests = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v is not None}
    return {
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "c", "image": "pause", "resources": {"requests": requests}}], **spec},
    }


def test_issue_anchor_scores():
    """3000m/5000 on 4000m/10000 and 6000m/10000: LeastAllocated 37 and 50, BalancedAllocation 87 and 100."""
    table = breakdown([node("n1", "4000m", "10000"), node("n2", "6000m", "10000")], pod("p", "3000m", "5000"))
    assert table["score/NodeResourcesFit/raw"].tolist() == [37, 50]
    assert table["score/NodeResourcesBalancedAllocation/raw"].tolist() == [87, 100]
    assert table["score/TaintToleration/weighted"].tolist() == [300, 300]
    assert "score/NodeAffinity/raw" not in table  # PreScore skip: nothing to do for this pod
    assert table["score/total"].tolist() == [37 + 87 + 300, 50 + 100 + 300]


def test_fit_error_message_counts_and_sorts_reasons():
    nodes = [node(f"big{i}", "1", "1Gi") for i in range(3)] + [
        node(f"t{i}", "8", "8Gi", spec={"taints": [{"key": "gpu", "value": "a100", "effect": "NoSchedule"}]})
        for i in range(2)
    ]
    state = ClusterState(Node.from_manifest(n) for n in nodes)
    fw = Framework(parse_config().profile(), state)
    result = fw.schedule(Pod.from_manifest(pod("p", "2", "512Mi")))
    assert result.node is None
    assert result.message == "0/5 nodes are available: 2 node(s) had untolerated taint(s), 3 Insufficient cpu."
    assert result.rejectors == {"TaintToleration", "NodeResourcesFit"}


def test_num_feasible_nodes_to_find_adaptive_formula():
    assert num_feasible_nodes_to_find(0, 50) == 50
    assert num_feasible_nodes_to_find(0, 1000) == 420  # 50 - 1000/125 = 42%
    assert num_feasible_nodes_to_find(0, 5000) == 500  # 10%
    assert num_feasible_nodes_to_find(0, 15000) == 750  # floor at 5%
    assert num_feasible_nodes_to_find(0, 150) == 100  # never fewer than 100
    assert num_feasible_nodes_to_find(30, 1000) == 300


def test_rotating_start_index_and_profile_percentage():
    state = ClusterState(Node.from_manifest(node(f"n{i}", "4", "8Gi")) for i in range(1000))
    config = parse_config({"percentageOfNodesToScore": 10, "profiles": [{"percentageOfNodesToScore": 20}]})
    fw = Framework(config.profile(), state, config.percentage_of_nodes_to_score)
    first = fw.schedule(Pod.from_manifest(pod("a", "1")))
    assert (first.evaluated, first.feasible) == (200, 200)
    assert fw.next_start == 200
    assert 0 <= first.node < 200
    second = fw.schedule(Pod.from_manifest(pod("b", "1")))
    assert 200 <= second.node < 400 and fw.next_start == 400


def test_breakdown_reports_every_filter_with_reasons():
    table = breakdown(
        "\n---\n".join(
            [
                "metadata: {name: a, labels: {zone: z1}}\nstatus: {allocatable: {cpu: '2', memory: 2Gi, pods: '10'}}",
                "metadata: {name: b}\nspec: {unschedulable: true}\n"
                "status: {allocatable: {cpu: '2', memory: 2Gi, pods: '10'}}",
            ]
        ),
        pod("p", "1", "1Gi", nodeSelector={"zone": "z1"}),
    )
    assert table["feasible"].tolist() == [True, False]
    assert table.loc[1, "filter/NodeUnschedulable"] == "UnschedulableAndUnresolvable: node(s) were unschedulable"
    assert table.loc[1, "filter/NodeAffinity"].endswith("node(s) didn't match Pod's node affinity/selector")
    assert np.isnan(table.loc[1, "score/total"]) and table.loc[0, "score/total"] > 0
    with pytest.raises(ValueError, match="spec.nodeName 'zz' is not one of the nodes"):
        breakdown([node("a", "1", "1Gi")], pod("p"), pods=[{**pod("q"), "spec": {"nodeName": "zz"}}])
    with pytest.raises(ValueError, match="Pod default/q: spec.nodeName: required"):
        breakdown([node("a", "1", "1Gi")], pod("p"), pods=[pod("q")])


def test_bad_manifests_name_the_object_and_field():
    with pytest.raises(ValueError, match=r"Node a: status.allocatable.cpu: 'lots' is not a quantity"):
        breakdown([node("a", "lots", "1Gi")], pod("p"))
    with pytest.raises(ValueError, match=r"Pod default/p: spec.containers\[0\].resources.requests.memory"):
        breakdown([node("a", "1", "1Gi")], pod("p", memory="1Gx"))
