"""The built-in ``preemption`` scenario: a burst of high-priority pods that fit only by preempting low-priority ones
(PriorityClasses, a PodDisruptionBudget, DefaultPreemption, the disruption controller)."""

from __future__ import annotations

from kbench.apiserver.objects import parse_label_selector
from kbench.cluster import MAX_NODES, ClusterSpec
from kbench.metrics.slis import POD_STARTUP_SLO, Measure
from kbench.params import Param
from kbench.scenarios.library import NODES, built_in_scenario, builtin, deployment
from kbench.scenarios.spec import Scenario

PRIORITY_CLASSES = {"low": 1000, "high": 1_000_000}
"""The preemption scenario's PriorityClasses (scheduling.k8s.io/v1) by name: their values."""
NODE_4CPU = {"cpu": "4", "memory": "32Gi"}
"""scheduler_perf's node-default.yaml machine: four pods of 900m fill it to 3.6 CPU."""


def priority_class(name: str, value: int) -> dict:
    """A PriorityClass manifest (preemptionPolicy left to its default, PreemptLowerPriority)."""
    return {"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": name}, "value": value}


def _tiered(name: str, replicas: int, tier: str, cpu: str, grace: int | None = None) -> dict:
    """A Deployment of ``tier`` priority (its PriorityClass and ``tier`` label; namespace ``low`` for the low tier)
    whose pods request ``cpu`` and 500Mi, as scheduler_perf's pod-low-priority.yaml (900m) and
    pod-high-priority.yaml (3 CPU) pods do."""
    manifest = deployment(name, replicas, probe=False)
    if tier == "low":
        manifest["metadata"]["namespace"] = "low"
    template = manifest["spec"]["template"]
    template["metadata"]["labels"]["tier"] = tier
    template["spec"]["priorityClassName"] = tier
    if grace is not None:
        template["spec"]["terminationGracePeriodSeconds"] = grace
    template["spec"]["containers"][0]["resources"] = {"requests": {"cpu": cpu, "memory": "500Mi"}}
    return manifest


LOW_PODS_PER_NODE = 4
"""Low-priority pods (900m) a node-default.yaml node (4 CPU) holds: the preemption scenario's fill, and
scheduler_perf's PreemptionBasic / PreemptionAsync initPods per node."""


def preemption_objects(nodes: int, protected: float, grace_period: int) -> list[dict]:
    """The preemption scenario's objects: its PriorityClasses, four low-priority pods per node from two
    Deployments, and a PodDisruptionBudget (maxUnavailable 0) on ``low-protected``, ``protected`` of them."""
    kept = round(LOW_PODS_PER_NODE * nodes * protected)
    budget = {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": "low-protected", "namespace": "low"},
        "spec": {"maxUnavailable": 0, "selector": {"matchLabels": {"app": "low-protected"}}},
    }
    return [
        *(priority_class(name, value) for name, value in PRIORITY_CLASSES.items()),
        _tiered("low-protected", kept, "low", "900m", grace_period),
        _tiered("low-free", LOW_PODS_PER_NODE * nodes - kept, "low", "900m", grace_period),
        budget,
    ]


def fill_timeout(spec: ClusterSpec, nodes: int) -> float:
    """Seconds the low-priority pods have to run: twice what the ReplicaSet controller takes to create them at
    kube-controller-manager's ``kubeAPIQPS`` (each pod one create), and at least 600."""
    qps = spec.config["kube-controller-manager"].kube_api_qps
    return max(600.0, 2 * LOW_PODS_PER_NODE * nodes / qps)


@builtin(
    "preemption",
    NODES,
    Param("high_pods", int, "replicas of the high-priority Deployment (one fits a node)", minimum=1, maximum=MAX_NODES),
    Param("protected", float, "share of the low-priority pods under a PodDisruptionBudget", minimum=0, maximum=1),
    Param("grace_period", int, "the low-priority pods' terminationGracePeriodSeconds", minimum=0, maximum=3600),
    Param("timeout", float, "seconds the high-priority pods have to start", minimum=1, maximum=86_400),
)
def preemption(
    nodes: int = 50,
    high_pods: int = 25,
    protected: float = 0.25,
    grace_period: int = 1,
    timeout: float = 600.0,
    **cluster,
) -> Scenario:
    """DefaultPreemption: a burst of high-priority pods that fit only by preempting low-priority ones.

    Four 900m low-priority pods (two Deployments, ``protected`` of them under a maxUnavailable 0
    PodDisruptionBudget) fill each 4-CPU node; then a Deployment of ``high_pods`` 3-CPU high-priority pods, each
    preempting three low-priority pods on one node, as scheduler_perf's PreemptionBasic. The wait counts its ready
    replicas (a pod bound but refused by its kubelet does not pass); after ``timeout`` s the run fails naming them.
    Measured: the high pods' create_to_schedule and startup (SLO: 5 s plus the victims' grace period, which
    preemption waits out), their SchedulingThroughput, preemptions and victims, and each PDB's worst shortfall
    (``pdb_violations``: preemption violates a PDB only when no node offers fewer violations). The victims'
    replacements find no room: once the high pods run, the PDB and the low-priority Deployments are deleted."""
    cluster.setdefault("node_capacity", dict(NODE_4CPU))
    spec = ClusterSpec(nodes=nodes, **cluster)
    spec.check()
    selector = "tier = high"
    measure = {
        "podStartupLatency": Measure(selector, parse_label_selector(selector), POD_STARTUP_SLO + grace_period),
        "schedulingThroughput": Measure(selector, parse_label_selector(selector)),
    }
    steps: list[dict] = [
        {"waitForPods": {"namespace": "low", "timeout": fill_timeout(spec, nodes)}},
        {"watchDisruptionBudgets": {"namespace": "low"}},
        {"createObjects": {"template": _tiered("high", high_pods, "high", "3"), "namespace": "high"}},
        {"waitForPods": {"namespace": "high", "timeout": timeout}},
        {"deleteObjects": {"resource": "poddisruptionbudgets", "namespace": "low"}},
        {"deleteObjects": {"resource": "deployments", "namespace": "low"}},
    ]
    objects = preemption_objects(nodes, protected, grace_period)
    return built_in_scenario("preemption", steps, objects=objects, measure=measure, spec=spec)
