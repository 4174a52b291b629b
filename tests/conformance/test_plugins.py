"""Scheduler plugin conformance: the same checks over every registered plugin, like scikit-learn's estimator checks.

A plugin gets these checks by being registered in :data:`kbench.scheduler.plugins.registry.REGISTRY`. Every plugin

- is registered under its upstream name, in a file named after its upstream package, implements exactly the
  extension points ``config.PLUGINS`` lists for it, and is in upstream's default profile;
- declares what the scheduler reads of it: cluster events for requeueing the pods it rejects, and the unit costs
  of its walks over every node (fields of ``scheduler.Costs``);
- on the compiled path (its :meth:`plan_filter` / :meth:`plan_score` and the fused kernel) gives the NumPy
  reference's feasible nodes, totals and placements on random clusters, alone in a profile;
- gives the same placements for the same seed, in this process and in another one;
- rejects nodes with upstream's reason texts (FitError's message), on a cluster made for it to reject and on
  random clusters.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kbench.api.core import Node, Pod
from kbench.profiles import load_profile
from kbench.scheduler.config import DEFAULT_MULTIPOINT, INERT, PLUGINS, SchedulerConfig, parse_config
from kbench.scheduler.framework import Framework
from kbench.scheduler.interface import SKIP, SUCCESS, Handle, Plugin, Rejection
from kbench.scheduler.kernel import KernelScheduler
from kbench.scheduler.plugins.registry import REGISTRY
from kbench.scheduler.queue import QueuedPod, SchedulingQueue
from kbench.scheduler.scheduler import Costs, Scheduler
from kbench.scheduler.state import ClusterState
from kbench.sim import Engine
from tests.scheduler.clusters import nodes, place, pod_spec, seeded_workload

ROOT = Path(__file__).resolve().parents[2]

NAMES = sorted(REGISTRY)
FILTERS = [n for n in NAMES if "filter" in REGISTRY[n].points]
SCORERS = [n for n in NAMES if "score" in REGISTRY[n].points]
COMPILED = [n for n in NAMES if {"filter", "score"} & set(REGISTRY[n].points)]

PACKAGE = {"NodeResourcesFit": "noderesources", "NodeResourcesBalancedAllocation": "noderesources"}
"""Upstream's package (pkg/scheduler/framework/plugins/<dir>) where it is not the lowercased name."""
PACKAGE |= {"PrioritySort": "queuesort"}

METHODS = {
    "queueSort": "sort_key",
    "preFilter": "prefilter",
    "filter": "filter",
    "preScore": "prescore",
    "score": "score",
    "postFilter": "post_filter",
    "bind": "bind",
}
"""The method of :class:`Plugin` each extension point is."""

CLUSTER_EVENTS = {(kind, action) for kind in ("Pod", "Node") for action in ("Add", "Update", "Delete")}

REASONS = {
    "NodeUnschedulable": {"node(s) were unschedulable"},
    "NodeName": {"node(s) didn't match the requested node name"},
    "TaintToleration": {"node(s) had untolerated taint(s)"},
    "NodeAffinity": {
        "node(s) didn't match Pod's node affinity/selector",
        "node(s) didn't match scheduler-enforced node affinity",
    },
    "NodePorts": {"node(s) didn't have free ports for the requested pod ports"},
    "NodeResourcesFit": {"Too many pods", re.compile(r"Insufficient [a-z0-9./-]+")},
    "PodTopologySpread": {
        "node(s) didn't match pod topology spread constraints",
        "node(s) didn't match pod topology spread constraints (missing required label)",
    },
    "InterPodAffinity": {
        "node(s) didn't match pod affinity rules",
        "node(s) didn't match pod anti-affinity rules",
        "node(s) didn't satisfy existing pods anti-affinity rules",
    },
}
"""Each Filter plugin's upstream reason texts (ErrReason* constants of its package; v1.35, as the golden tables)."""


def node(name: str, labels: dict | None = None, **spec) -> dict:
    """A 4-cpu, 8Gi, 10-pod node manifest."""
    return {
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **(labels or {})}},
        "spec": spec,
        "status": {"allocatable": {"cpu": "4", "memory": "8Gi", "pods": "10"}},
    }


def pod(name: str, labels: dict | None = None, cpu: str = "100m", **spec) -> dict:
    """A pod manifest with one container requesting ``cpu``."""
    container = {"name": "c", "image": "pause", "resources": {"requests": {"cpu": cpu}}}
    ports = spec.pop("ports", None)
    if ports:
        container["ports"] = ports
    return {"metadata": {"name": name, "labels": labels or {}}, "spec": {"containers": [container], **spec}}


WEB = {"app": "web"}
REJECTED = {
    "NodeUnschedulable": ([node("n0", unschedulable=True)], [], pod("p")),
    "NodeName": ([node("n0")], [], pod("p", nodeName="elsewhere")),
    "TaintToleration": ([node("n0", taints=[{"key": "gpu", "value": "a100", "effect": "NoSchedule"}])], [], pod("p")),
    "NodeAffinity": ([node("n0", {"disk": "hdd"})], [], pod("p", nodeSelector={"disk": "ssd"})),
    "NodePorts": (
        [node("n0")],
        [pod("old", ports=[{"containerPort": 80, "hostPort": 8080}], nodeName="n0")],
        pod("p", ports=[{"containerPort": 80, "hostPort": 8080}]),
    ),
    "NodeResourcesFit": ([node("n0")], [], pod("p", cpu="8")),
    "PodTopologySpread": (
        [node("n0", {"topology.kubernetes.io/zone": "a"}), node("n1")],
        [pod(f"old{i}", WEB, nodeName="n0") for i in range(2)],
        pod(
            "p",
            WEB,
            topologySpreadConstraints=[
                {
                    "maxSkew": 1,
                    "minDomains": 2,  # one domain only: the global minimum counts as 0
                    "topologyKey": "topology.kubernetes.io/zone",
                    "whenUnsatisfiable": "DoNotSchedule",
                    "labelSelector": {"matchLabels": WEB},
                }
            ],
        ),
    ),
    "InterPodAffinity": (
        [node("n0")],
        [pod("db", {"app": "db"}, nodeName="n0")],
        pod(
            "p",
            affinity={
                "podAntiAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": [
                        {"labelSelector": {"matchLabels": {"app": "db"}}, "topologyKey": "kubernetes.io/hostname"}
                    ]
                }
            },
        ),
    ),
}
"""Per Filter plugin, (nodes, bound pods, pod) that it rejects everywhere."""
EXPECTED_MESSAGE = {
    "NodeUnschedulable": "0/1 nodes are available: 1 node(s) were unschedulable.",
    "NodeName": "0/1 nodes are available: 1 node(s) didn't match the requested node name.",
    "TaintToleration": "0/1 nodes are available: 1 node(s) had untolerated taint(s).",
    "NodeAffinity": "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector.",
    "NodePorts": "0/1 nodes are available: 1 node(s) didn't have free ports for the requested pod ports.",
    "NodeResourcesFit": "0/1 nodes are available: 1 Insufficient cpu.",
    "PodTopologySpread": "0/2 nodes are available: 1 node(s) didn't match pod topology spread constraints, "
    "1 node(s) didn't match pod topology spread constraints (missing required label).",
    "InterPodAffinity": "0/1 nodes are available: 1 node(s) didn't match pod anti-affinity rules.",
}
"""FitError.Error() for each :data:`REJECTED` cluster (reasons counted and sorted as strings)."""


def alone(name: str, weight: int = 1) -> SchedulerConfig:
    """A configuration whose profile runs only plugin ``name`` (with the queue sort and binder upstream requires)."""
    plugins: dict = {
        "multiPoint": {"disabled": [{"name": "*"}]},
        "queueSort": {"enabled": [{"name": "PrioritySort"}]},
        "bind": {"enabled": [{"name": "DefaultBinder"}]},
    }
    for point in REGISTRY[name].points:
        if point not in ("queueSort", "bind"):
            plugins[point] = {"enabled": [{"name": name, **({"weight": weight} if point == "score" else {})}]}
    return parse_config({"profiles": [{"plugins": plugins}]})


def cluster(nodes_: list[dict], bound: list[dict]) -> ClusterState:
    """A state of ``nodes_`` with ``bound`` pods on their ``spec.nodeName``."""
    state = ClusterState(Node.from_manifest(n) for n in nodes_)
    for manifest in bound:
        p = Pod.from_manifest(manifest)
        state.bind(p, p.node_name)
    return state


def reason_ok(name: str, reason: str) -> bool:
    """Whether ``reason`` is one of plugin ``name``'s upstream reason texts."""
    return any(r == reason if isinstance(r, str) else r.fullmatch(reason) for r in REASONS[name])


# -- registration -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_registered_under_its_upstream_name_and_package(name):
    cls = REGISTRY[name]
    assert cls.name == name and issubclass(cls, Plugin)
    assert name in PLUGINS and name not in INERT, f"{name} is not an upstream plugin kbench models"
    assert name in dict(DEFAULT_MULTIPOINT), f"{name} is not in upstream's default profile"
    assert cls.__module__ == f"kbench.scheduler.plugins.{PACKAGE.get(name, name.lower())}"


@pytest.mark.parametrize("name", NAMES)
def test_implements_exactly_its_upstream_extension_points(name):
    cls = REGISTRY[name]
    assert cls.points == PLUGINS[name]
    overridden = {point for point, method in METHODS.items() if getattr(cls, method) is not getattr(Plugin, method)}
    assert overridden == set(cls.points) & set(METHODS), f"{name} overrides {overridden}, upstream has {cls.points}"
    if "score" not in cls.points:
        assert cls.plan_score is Plugin.plan_score and cls.normalize_score is Plugin.normalize_score
    if "filter" not in cls.points:
        assert cls.plan_filter is Plugin.plan_filter and cls.reasons is Plugin.reasons


@pytest.mark.parametrize("name", NAMES)
def test_declares_its_events_and_walks(name):
    cls = REGISTRY[name]
    assert cls.events <= CLUSTER_EVENTS
    if "filter" in cls.points:  # a pod it rejects must be able to come back (EventsToRegister)
        assert cls.events, f"{name} rejects pods but registers no cluster event to requeue them"
    costs = {f.name for f in fields(Costs)}
    for point, cost in cls.walks.items():
        assert point in ("filter", "score") and {"filter": "preFilter", "score": "preScore"}[point] in cls.points
        assert cost in costs, f"{name}.walks[{point!r}] = {cost!r} is not a unit cost of scheduler.Costs"
    profile_costs = Costs.from_profile(load_profile())
    assert all(profile_costs.walk_cost(f"{name}/{point}") > 0 for point in cls.walks)


def test_every_modelled_default_plugin_is_registered():
    modelled = {name for name, _ in DEFAULT_MULTIPOINT if name not in INERT}
    assert modelled == set(REGISTRY)


# -- the compiled path against the reference ------------------------------------------------------------------
@pytest.mark.parametrize("name", COMPILED)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_kernel_equals_the_reference(name, data):
    """Alone in a profile, the plugin gives the same feasible nodes and totals through the kernel as through the
    NumPy reference, and the same placements pod after pod."""
    node_list = data.draw(nodes())
    pods = [data.draw(pod_spec(i)) for i in range(data.draw(st.integers(1, 12)))]
    config = alone(name, data.draw(st.integers(1, 5)))
    percentage, seed = data.draw(st.sampled_from([0, 30, 100])), data.draw(st.integers(0, 2**32))
    state = ClusterState(node_list)
    fw = Framework(config.profile(), state, percentage, seed=seed)
    kernel = KernelScheduler(fw)
    for p in pods:
        try:
            ctx = fw.prefilter(p)
        except Rejection as rejection:  # the kernel's plan rejects the pod too, with the same verdict
            with pytest.raises(Rejection) as planned:
                kernel.plan(p)
            assert (planned.value.code, planned.value.reasons) == (rejection.code, rejection.reasons)
            continue
        code, _, _ = fw.filter_all(p, ctx)
        subset = fw.subset(ctx)[0]
        feasible = code == SUCCESS
        if subset is not None:
            feasible &= np.isin(np.arange(state.num_nodes), subset)
        expected = np.flatnonzero(feasible)
        got, totals = kernel.evaluate(p)
        assert got.tolist() == expected.tolist()
        if len(expected):
            assert totals.tolist() == fw.score(p, expected).tolist()
        result = kernel.schedule(p)
        if result.node is not None:
            state.bind(p, result.node)
    assert place(node_list, pods, percentage, seed, True, config) == place(
        node_list, pods, percentage, seed, False, config
    )


def placements(name: str, seed: int = 5) -> list[tuple]:
    """Plugin ``name`` alone (weight 2) placing a seeded workload, by the kernel and by the reference."""
    node_list, pods = seeded_workload(seed)
    config = alone(name, 2)
    return [place(node_list, pods, 30, seed, kernel, config) for kernel in (True, False)]


@pytest.mark.parametrize("name", COMPILED)
def test_same_seed_same_placements(name):
    """Two runs from one seed place every pod alike, by the kernel and by the reference."""
    first, second = placements(name), placements(name)
    assert first == second and first[0] == first[1]
    assert any(node is not None for node, _, _ in first[0])


def test_same_seed_same_placements_in_another_process():
    """Placements do not depend on the process (hash seed, object addresses): another interpreter agrees."""
    script = (
        "import json; from tests.conformance.test_plugins import COMPILED, placements; "
        "print(json.dumps({n: placements(n) for n in COMPILED}))"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    here = {n: placements(n) for n in COMPILED}
    assert json.loads(done.stdout) == json.loads(json.dumps(here))


# -- reasons ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", FILTERS)
def test_rejects_with_upstreams_message(name):
    """On a cluster made for it to reject, FitError's message is upstream's, by reference and kernel."""
    assert name in REJECTED and name in REASONS, f"add {name}'s upstream reason texts and a cluster it rejects"
    nodes_, bound, incoming = REJECTED[name]
    for kernel in (False, True):
        state = cluster(nodes_, bound)
        fw = Framework(alone(name).profile(), state)
        result = (KernelScheduler(fw) if kernel else fw).schedule(Pod.from_manifest(incoming))
        assert result.node is None
        assert result.message == EXPECTED_MESSAGE[name]
        assert result.rejectors == {name}


@pytest.mark.parametrize("name", FILTERS)
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_reasons_are_upstreams_on_random_clusters(name, data):
    node_list = data.draw(nodes())
    state = ClusterState(node_list)
    plugin = REGISTRY[name](alone(name).profile().args.get(name, {}), Handle(state))
    for i in range(data.draw(st.integers(1, 10))):
        p = data.draw(pod_spec(i))
        try:
            ctx = plugin.prefilter(p)
        except Rejection:  # a PreFilter rejection carries its own (upstream) message
            continue
        if ctx is SKIP:
            continue
        codes = plugin.filter(ctx, p)
        for n in np.flatnonzero(codes != SUCCESS).tolist():
            reasons = plugin.reasons(ctx, p, n)
            assert reasons and all(reason_ok(name, r) for r in reasons), reasons
        placed = np.flatnonzero(codes == SUCCESS)
        if len(placed):
            state.bind(p, int(placed[0]))


# -- queue sort and bind ------------------------------------------------------------------------------------
def test_queue_sort_orders_by_priority_then_timestamp():
    sort = REGISTRY["PrioritySort"]({}, Handle(ClusterState()))
    high = QueuedPod(Pod.from_manifest({"metadata": {"name": "a"}, "spec": {"priority": 10}}), timestamp=5.0)
    early = QueuedPod(Pod.from_manifest({"metadata": {"name": "b"}, "spec": {"priority": 0}}), timestamp=1.0)
    late = QueuedPod(Pod.from_manifest({"metadata": {"name": "c"}, "spec": {"priority": 0}}), timestamp=2.0)
    assert sort.less(high, early) and sort.less(early, late) and not sort.less(late, early)
    assert sorted((late, early, high), key=sort.sort_key) == [high, early, late]
    queue = SchedulingQueue(Engine(), sort_key=sort.sort_key)
    for qp in (late, early, high):
        queue.add(qp.pod)
    assert [queue.pop().value.pod.name for _ in range(3)] == ["a", "c", "b"]  # equal timestamps: insertion order


def test_the_scheduler_queue_is_ordered_by_the_profiles_queue_sort():
    scheduler = Scheduler(Engine(), ClusterState())
    assert scheduler.queue.sort_key == scheduler.framework.queue_sort.sort_key
    assert isinstance(scheduler.framework.queue_sort, REGISTRY["PrioritySort"])


def test_default_binder_binds_through_the_handle():
    calls = []
    binder = REGISTRY["DefaultBinder"]({}, Handle(ClusterState(), binder=lambda p, n: calls.append((p.key, n)) or "ev"))
    p = Pod.from_manifest({"metadata": {"name": "p"}, "spec": {}})
    assert binder.bind(p, "n0") == "ev" and calls == [("default/p", "n0")]
    with pytest.raises(RuntimeError, match="no binder"):
        REGISTRY["DefaultBinder"]({}, Handle(ClusterState())).bind(p, "n0")


def test_a_profile_without_a_bind_plugin_is_refused():
    config = parse_config({"profiles": [{"plugins": {"bind": {"disabled": [{"name": "*"}]}}}]})
    with pytest.raises(ValueError, match="at least one bind plugin is needed for profile with scheduler name"):
        Framework(config.profile(), ClusterState())
