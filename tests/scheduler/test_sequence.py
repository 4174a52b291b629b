"""schedule_sequence places heterogeneous pods, and words the FitError of those that fit nowhere, as the NumPy
reference (``Framework.schedule`` + bind, pod by pod) does."""

from __future__ import annotations

import numpy as np
import pytest

from kbench.api.core import Node, Pod
from kbench.scheduler import plantable
from kbench.scheduler.config import parse_config
from kbench.scheduler.framework import Framework
from kbench.scheduler.kernel import KernelScheduler
from kbench.scheduler.sequence import DYNAMIC, schedule_sequence
from kbench.scheduler.state import ClusterState
from kbench.traces import openb
from tests.scheduler.clusters import seeded_workload


def reference(node_list: list[Node], pods: list[Pod], percentage: int, seed: int) -> tuple[list[int], dict]:
    """Node (-1: none) per pod and the FitError message of each pod placed nowhere, one cycle at a time."""
    fw = Framework(
        parse_config({"percentageOfNodesToScore": percentage}).profile(), ClusterState(node_list), percentage, seed
    )
    nodes, messages = [], {}
    for i, pod in enumerate(pods):
        result = fw.schedule(pod)
        nodes.append(-1 if result.node is None else result.node)
        if result.node is None:
            messages[i] = result.message
        else:
            fw.state.bind(pod, result.node)
    return nodes, messages


def sequence(node_list: list[Node], pods: list[Pod], percentage: int, seed: int):
    """schedule_sequence's result and the kernel scheduler (its state after binding)."""
    fw = Framework(
        parse_config({"percentageOfNodesToScore": percentage}).profile(), ClusterState(node_list), percentage, seed
    )
    kernel = KernelScheduler(fw)
    return schedule_sequence(kernel, pods), kernel


def compact(node_list: list[Node], pods: list[Pod]) -> list[Pod]:
    """The pods without what makes a plan change with every bind (spread, pod affinity, host ports)."""
    out = []
    for pod in pods:
        spec = {k: v for k, v in pod.manifest["spec"].items() if k != "topologySpreadConstraints"}
        if "podAffinity" in spec.get("affinity", {}) or "podAntiAffinity" in spec.get("affinity", {}):
            del spec["affinity"]
        spec["containers"] = [{k: v for k, v in c.items() if k != "ports"} for c in spec["containers"]]
        out.append(Pod.from_manifest({**pod.manifest, "spec": spec}))
    return out


@pytest.mark.parametrize(("seed", "percentage"), [(1, 0), (2, 30), (3, 100), (4, 0), (5, 100)])
def test_sequence_places_and_words_fit_errors_as_the_reference(seed, percentage):
    node_list, pods = seeded_workload(seed, num_nodes=40, num_pods=300)
    expected_nodes, expected_messages = reference(node_list, pods, percentage, seed)
    result, kernel = sequence(node_list, pods, percentage, seed)
    assert result.nodes.tolist() == expected_nodes
    assert result.messages == expected_messages
    assert expected_messages  # the cluster fills up: some pods fit nowhere
    assert result.fallbacks[DYNAMIC] > 0  # pods with spread, pod affinity or host ports went one by one
    assert sorted(kernel.fw.state.pods) == sorted(p.key for p, n in zip(pods, expected_nodes) if n >= 0)


@pytest.mark.parametrize("seed", [7, 8, 9])
def test_sequence_without_fallbacks_runs_in_one_kernel_call(seed):
    node_list, pods = seeded_workload(seed, num_nodes=60, num_pods=400)
    pods = compact(node_list, pods)
    expected_nodes, expected_messages = reference(node_list, pods, 0, seed)
    result, kernel = sequence(node_list, pods, 0, seed)
    assert not result.fallbacks
    assert result.nodes.tolist() == expected_nodes
    assert result.messages == expected_messages
    ref = Framework(parse_config().profile(), ClusterState(node_list), 0, seed)
    for pod, node in zip(pods, expected_nodes):
        if node >= 0:
            ref.state.bind(pod, node)
    np.testing.assert_array_equal(kernel.fw.state.requested, ref.state.requested)
    np.testing.assert_array_equal(kernel.fw.state.nonzero, ref.state.nonzero)
    assert kernel.fw.state.pods_on == ref.state.pods_on


def test_openb_trace_slice_as_the_reference():
    """On the real trace (when present): 300 nodes and the first 1,500 pods, which fill them up."""
    directory = openb.data_dir()
    if not (directory / openb.NODES_FILE).is_file():
        pytest.skip(f"openb trace not found at {directory} (set ${openb.ENV})")
    node_list, pods = openb.read_nodes(directory)[::5][:300], openb.read_pods(directory)[:1500]
    expected_nodes, expected_messages = reference(node_list, pods, 0, 1)
    result, _ = sequence(node_list, pods, 0, 1)
    assert len(expected_messages) > 50  # many pods fit nowhere
    assert result.nodes.tolist() == expected_nodes
    assert result.messages == expected_messages


def test_sequence_in_two_calls_continues_as_one():
    node_list, pods = seeded_workload(11, num_nodes=30, num_pods=200)
    pods = compact(node_list, pods)
    whole, _ = sequence(node_list, pods, 0, 11)
    fw = Framework(parse_config().profile(), ClusterState(node_list), 0, 11)
    kernel = KernelScheduler(fw)
    first, second = schedule_sequence(kernel, pods[:90]), schedule_sequence(kernel, pods[90:])
    assert first.nodes.tolist() + second.nodes.tolist() == whole.nodes.tolist()
    assert {**first.messages, **{i + 90: m for i, m in second.messages.items()}} == whole.messages


def test_sequence_without_nodes_says_so_for_every_pod():
    _, pods = seeded_workload(12, num_nodes=1, num_pods=5)
    result, _ = sequence([], pods, 0, 12)
    assert result.nodes.tolist() == [-1] * 5
    assert set(result.messages.values()) == {"no nodes available to schedule pods"}


def test_plans_beyond_the_tree_budget_are_scored_node_by_node(monkeypatch):
    monkeypatch.setattr(plantable, "TREE_CELLS", 1)  # one signature tree; every other plan scans
    node_list, pods = seeded_workload(13, num_nodes=40, num_pods=250)
    pods = compact(node_list, pods)
    expected_nodes, expected_messages = reference(node_list, pods, 30, 13)
    result, _ = sequence(node_list, pods, 30, 13)
    assert result.nodes.tolist() == expected_nodes
    assert result.messages == expected_messages
