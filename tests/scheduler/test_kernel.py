"""The fused kernel, the signature batch kernel and the NumPy reference place pods identically."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kbench.api.core import Node, Pod
from kbench.scheduler import kernel as kernel_module
from kbench.scheduler.config import parse_config
from kbench.scheduler.framework import Framework
from kbench.scheduler.kernel import KernelScheduler
from kbench.scheduler.state import ClusterState
from tests.scheduler.clusters import nodes, place, pod_spec, seeded_workload


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.data())
def test_kernel_places_pods_as_the_reference(data):
    node_list = data.draw(nodes())
    pods = [data.draw(pod_spec(i)) for i in range(data.draw(st.integers(1, 25)))]
    percentage, seed = data.draw(st.sampled_from([0, 30, 100])), data.draw(st.integers(0, 2**32))
    assert place(node_list, pods, percentage, seed, kernel=True) == place(node_list, pods, percentage, seed, False)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_batches_place_pods_as_one_by_one(data):
    node_list = data.draw(nodes())
    template = data.draw(pod_spec(0)).manifest
    spec = {k: v for k, v in template["spec"].items() if k not in ("topologySpreadConstraints", "affinity")}
    spec["containers"] = [{k: v for k, v in c.items() if k != "ports"} for c in spec["containers"]]
    if data.draw(st.booleans()):  # a preferred node affinity varies across nodes: no signature, per-pod loop
        spec["affinity"] = {
            "nodeAffinity": {
                "preferredDuringSchedulingIgnoredDuringExecution": [
                    {
                        "weight": 7,
                        "preference": {"matchExpressions": [{"key": "disk", "operator": "In", "values": ["ssd"]}]},
                    }
                ]
            }
        }
    pods = [
        Pod.from_manifest({"metadata": {"name": f"p{i}"}, "spec": spec}) for i in range(data.draw(st.integers(1, 60)))
    ]
    percentage, seed = data.draw(st.sampled_from([0, 30, 100])), data.draw(st.integers(0, 2**32))
    one_by_one = place(node_list, pods, percentage, seed, kernel=True)
    _assert_batch_as_one_by_one(node_list, pods, percentage, seed, one_by_one)


def _assert_batch_as_one_by_one(node_list, pods, percentage, seed, one_by_one) -> None:
    """schedule_batch places (and binds) the pods up to the first misfit as ``one_by_one`` did, then stops."""
    state = ClusterState(node_list)
    fw = Framework(parse_config({"percentageOfNodesToScore": percentage}).profile(), state, percentage, seed=seed)
    batch_nodes, processed, _ = KernelScheduler(fw).schedule_batch(pods)
    expected = [-1 if node is None else node for node, _, _ in one_by_one]
    first_fail = expected.index(-1) if -1 in expected else len(expected)
    assert batch_nodes[: first_fail + 1].tolist() == expected[: first_fail + 1]
    assert processed[:first_fail].tolist() == [e for _, e, _ in one_by_one[:first_fail]]
    assert (batch_nodes[first_fail + 1 :] == -2).all()
    assert sorted(state.pods) == sorted(p.key for p in pods[:first_fail])
    bound = ClusterState(node_list)
    for pod, node in zip(pods[:first_fail], expected):
        bound.bind(pod, node)
    np.testing.assert_array_equal(state.requested, bound.requested)
    np.testing.assert_array_equal(state.pod_count, bound.pod_count)


def _static(pod: Pod, node_name: str | None) -> dict:
    """The pod's manifest without what makes a plan dynamic (spread, pod affinity, host ports)."""
    spec = {k: v for k, v in pod.manifest["spec"].items() if k != "topologySpreadConstraints"}
    affinity = {k: v for k, v in spec.pop("affinity", {}).items() if k == "nodeAffinity"}
    if affinity:
        spec["affinity"] = affinity
    spec["containers"] = [{k: v for k, v in c.items() if k != "ports"} for c in spec["containers"]]
    if node_name:
        spec["nodeName"] = node_name
    return {"metadata": {"labels": pod.labels}, "spec": spec}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.data())
def test_batches_of_mixed_specs_place_pods_as_one_by_one(data):
    node_list = data.draw(nodes())
    templates = [
        _static(data.draw(pod_spec(t)), data.draw(st.sampled_from([None, None, None, "n0", "n1"])))
        for t in range(data.draw(st.integers(1, 4)))
    ]
    order = data.draw(st.lists(st.integers(0, len(templates) - 1), min_size=1, max_size=40))
    pods = [
        Pod.from_manifest({**templates[t], "metadata": {**templates[t]["metadata"], "name": f"p{i}"}})
        for i, t in enumerate(order)
    ]
    percentage, seed = data.draw(st.sampled_from([0, 30, 100])), data.draw(st.integers(0, 2**32))
    reference = place(node_list, pods, percentage, seed, kernel=False)
    _assert_batch_as_one_by_one(node_list, pods, percentage, seed, reference)


def test_batch_refuses_dynamic_pods_before_placing_any():
    state = ClusterState(
        [
            Node.from_manifest(
                {"metadata": {"name": "n0"}, "status": {"allocatable": {"cpu": "4", "memory": "8Gi", "pods": "10"}}}
            )
        ]
    )
    fw = Framework(parse_config({}).profile(), state, 100, seed=0)
    plain = Pod.from_manifest({"metadata": {"name": "a"}, "spec": {"containers": [{"name": "c"}]}})
    ported = Pod.from_manifest(
        {
            "metadata": {"name": "b"},
            "spec": {"containers": [{"name": "c", "ports": [{"containerPort": 80, "hostPort": 8080}]}]},
        }
    )
    with pytest.raises(
        ValueError,
        match="schedule_batch: pod default/b uses host ports, topology spread or "
        "inter-pod affinity; schedule it one by one",
    ):
        KernelScheduler(fw).schedule_batch([plain, ported])
    assert not state.pods and state.pod_count.sum() == 0


def test_a_prefilter_rejection_ends_the_batch_like_a_misfit():
    node_list = [
        Node.from_manifest(
            {
                "metadata": {"name": f"n{i}", "labels": {"kubernetes.io/hostname": f"n{i}"}},
                "status": {"allocatable": {"cpu": "4", "memory": "8Gi", "pods": "10"}},
            }
        )
        for i in range(3)
    ]
    plain = {"containers": [{"name": "c", "resources": {"requests": {"cpu": "100m"}}}]}
    # two metadata.name requirements in one term that no node meets both of: NodeAffinity's PreFilter rejects
    conflicting = {
        **plain,
        "affinity": {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {
                            "matchFields": [
                                {"key": "metadata.name", "operator": "In", "values": ["n0"]},
                                {"key": "metadata.name", "operator": "In", "values": ["n1"]},
                            ]
                        }
                    ]
                }
            }
        },
    }
    pods = [
        Pod.from_manifest({"metadata": {"name": f"p{i}"}, "spec": spec})
        for i, spec in enumerate([plain, plain, conflicting, plain])
    ]
    reference = place(node_list, pods, 100, 7, kernel=False)
    assert [node for node, _, _ in reference][2] is None
    _assert_batch_as_one_by_one(node_list, pods, 100, 7, reference)


def test_a_batch_with_no_nodes_places_nothing():
    fw = Framework(parse_config({}).profile(), ClusterState([]), 100, seed=0)
    pods = [
        Pod.from_manifest({"metadata": {"name": f"p{i}"}, "spec": {"containers": [{"name": "c"}]}}) for i in range(3)
    ]
    nodes_, processed, found = KernelScheduler(fw).schedule_batch(pods)
    assert nodes_.tolist() == [-1, -2, -2] and processed.tolist() == found.tolist() == [0, 0, 0]
    assert not fw.state.pods


def test_the_plan_cache_is_bounded_and_a_dropped_plan_places_as_a_kept_one(monkeypatch):
    node_list, pods = seeded_workload(7, num_nodes=30, num_pods=120)
    expected = place(node_list, pods, 30, 7, kernel=True)
    monkeypatch.setattr(kernel_module, "PLAN_CACHE_SIZE", 3)
    state = ClusterState(node_list)
    scheduler = KernelScheduler(Framework(parse_config().profile(), state, 30, seed=7))
    placed, largest = [], 0
    for pod in pods:
        result = scheduler.schedule(pod)
        largest = max(largest, len(scheduler._plans))
        placed.append((result.node, result.evaluated, result.message))
        if result.node is not None:
            state.bind(pod, result.node)
    assert placed == expected
    assert largest == 3  # filled, never beyond
    assert len({scheduler.plan_key(pod) for pod in pods}) > 3  # so plans were dropped and rebuilt


def test_equal_specs_from_distinct_templates_place_as_one_by_one():
    """Pods of one plan key made from two template objects (their spec keys differ) form one run per plan key and
    place as one by one, whichever template each came from."""
    node_list = [
        Node.from_manifest(
            {"metadata": {"name": f"n{i}"}, "status": {"allocatable": {"cpu": "2", "memory": "8Gi", "pods": "10"}}}
        )
        for i in range(4)
    ]
    spec = {"containers": [{"name": "c", "resources": {"requests": {"cpu": "300m"}}}]}
    twins = [{"metadata": {"labels": {"app": "x"}}, "spec": dict(spec)} for _ in range(2)]
    other = {"metadata": {"labels": {"app": "y"}}, "spec": {"containers": [{"name": "c"}]}}
    order = [0, 1, 0, 0, 1, 2, 1, 0, 1, 1, 2, 2, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1]
    templates = [*twins, other]
    pods = [
        Pod.from_manifest({**templates[t], "metadata": {**templates[t]["metadata"], "name": f"p{i}"}})
        for i, t in enumerate(order)
    ]
    fw = Framework(parse_config({}).profile(), ClusterState(node_list), 100, seed=3)
    scheduler = KernelScheduler(fw)
    assert scheduler.spec_key(pods[0]) != scheduler.spec_key(pods[1])
    assert scheduler.plan_key(pods[0]) == scheduler.plan_key(pods[1])
    assert scheduler._groups(pods)[:3] == [(0, 5), (5, 6), (6, 10)]
    reference = place(node_list, pods, 100, 3, kernel=False)
    _assert_batch_as_one_by_one(node_list, pods, 100, 3, reference)


def test_a_pod_bound_twice_is_refused_by_name_before_any_of_its_batch_is_registered():
    node_list = [
        Node.from_manifest(
            {"metadata": {"name": "n0"}, "status": {"allocatable": {"cpu": "4", "memory": "8Gi", "pods": "10"}}}
        )
    ]
    state = ClusterState(node_list)
    a, b = (Pod.from_manifest({"metadata": {"name": n}, "spec": {"containers": [{"name": "c"}]}}) for n in "ab")
    requests = np.zeros((state.requested.shape[0], 3), np.int64)
    with pytest.raises(ValueError, match="Pod default/a: already bound to n0"):
        state.record_placed([a, b, a], [0, 0, 0], requests)
    assert not state.pods and not state.pods_on[0] and not any(state.slots.pods)  # no slot taken either
    state.record_placed([a], [0], requests[:, :1])
    with pytest.raises(ValueError, match="Pod default/a: already bound to n0"):
        state.record_placed([b, a], [0, 0], requests[:, :2])
    with pytest.raises(ValueError, match="Pod default/a: already bound to n0"):  # a batch of one signature too
        state.record_bound([a], np.array([0]))
    assert list(state.pods) == ["default/a"] and state.pods_on[0] == [a]


def test_signatures_tell_apart_what_json_tells_apart():
    """orjson writes NaN, infinities and None alike (null): such specs take json.dumps, which tells them apart;
    key order never matters."""

    def signature(spec):
        return Pod.from_manifest({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c"}], **spec}}).signature

    odd = [signature({"x": value}) for value in (float("nan"), float("inf"), float("-inf"), None, 0)]
    assert len(set(odd)) == len(odd)
    assert signature({"a": 1, "b": {"d": 2, "c": 3}}) == signature({"b": {"c": 3, "d": 2}, "a": 1})
    assert signature({"x": 2**70}) != signature({"x": 2**70 + 1})  # beyond orjson's integers


def _admitted(name: str, volume: str, source: dict, container: str = "c") -> Pod:
    """A pod as ServiceAccount admission leaves it: a token volume ``volume`` of ``source``, mounted in its
    container."""
    mount = {"name": volume, "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "readOnly": True}
    spec = {
        "containers": [{"name": container, "image": "pause", "volumeMounts": [mount]}],
        "volumes": [{"name": volume, **source}],
    }
    return Pod.from_manifest({"metadata": {"name": name}, "spec": spec})


def test_pods_of_one_template_share_a_plan_whatever_their_token_volumes_are_called():
    """Every admitted pod has its own ``kube-api-access-<random>`` volume; no plugin reads a volume's name or a
    mount, so pods of one template share a signature and the scheduler builds their plan once; a volume's source
    and a container's name still tell pods apart."""
    token = {"projected": {"sources": [{"serviceAccountToken": {"path": "token", "expirationSeconds": 3607}}]}}
    a, b = _admitted("a", "kube-api-access-w5rtj", token), _admitted("b", "kube-api-access-5km4m", token)
    assert a.signature == b.signature
    assert _admitted("c", "kube-api-access-w5rtj", {"emptyDir": {}}).signature != a.signature
    assert _admitted("d", "kube-api-access-w5rtj", token, container="other").signature != a.signature
    assert a.manifest["spec"]["volumes"][0]["name"] == "kube-api-access-w5rtj"  # the pod itself keeps its names
    assert a.manifest["spec"]["containers"][0]["volumeMounts"][0]["name"] == "kube-api-access-w5rtj"
    node = {"metadata": {"name": "n0"}, "status": {"allocatable": {"cpu": "4", "memory": "8Gi", "pods": "10"}}}
    kernel = KernelScheduler(Framework(parse_config({}).profile(), ClusterState([Node.from_manifest(node)]), 100))
    assert kernel.cached_plan(a) is kernel.cached_plan(b)
