"""Random clusters and pods for kernel-vs-reference checks (hypothesis strategies, and seeded numpy draws), and
a runner that places pods one by one through the reference framework or the compiled kernel."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from kbench.api.core import Node, Pod
from kbench.scheduler.config import SchedulerConfig, parse_config
from kbench.scheduler.framework import Framework
from kbench.scheduler.kernel import KernelScheduler
from kbench.scheduler.state import ClusterState

ZONES = ("z1", "z2", "z3")


@st.composite
def nodes(draw):
    """1-40 nodes: zones, a disk label, sometimes a dedicated taint, an image, unschedulable."""
    out = []
    for i in range(draw(st.integers(1, 40))):
        labels = {"kubernetes.io/hostname": f"n{i}", "disk": draw(st.sampled_from(["ssd", "hdd"]))}
        if draw(st.booleans()) or i < 3:
            labels["topology.kubernetes.io/zone"] = draw(st.sampled_from(ZONES))
        taints = []
        if draw(st.integers(0, 5)) == 0:
            taints.append(
                {
                    "key": "dedicated",
                    "value": "gpu",
                    "effect": draw(st.sampled_from(["NoSchedule", "PreferNoSchedule"])),
                }
            )
        images = [{"names": ["registry/app:v1"], "sizeBytes": 300 * 2**20}] if draw(st.booleans()) else []
        out.append(
            Node.from_manifest(
                {
                    "metadata": {"name": f"n{i}", "labels": labels},
                    "spec": {"taints": taints, "unschedulable": draw(st.integers(0, 12)) == 0},
                    "status": {
                        "allocatable": {
                            "cpu": str(draw(st.sampled_from([2, 4, 8]))),
                            "memory": f"{draw(st.sampled_from([4, 8, 16]))}Gi",
                            "pods": str(draw(st.integers(2, 30))),
                        },
                        "images": images,
                    },
                }
            )
        )
    return out


@st.composite
def pod_spec(draw, i: int):
    """Pod ``p<i>``: requests, tolerations, node affinity, spread, pod (anti-)affinity, host ports, named nodes."""
    spec: dict = {
        "containers": [
            {"name": "c", "image": draw(st.sampled_from(["registry/app:v1", "pause"])), "resources": {"requests": {}}}
        ]
    }
    requests = spec["containers"][0]["resources"]["requests"]
    if draw(st.booleans()):
        requests["cpu"] = f"{draw(st.integers(0, 3000))}m"
    if draw(st.booleans()):
        requests["memory"] = f"{draw(st.integers(0, 4096))}Mi"
    labels = {"app": draw(st.sampled_from(["web", "db"]))}
    if draw(st.integers(0, 3)) == 0:
        spec["tolerations"] = [{"key": "dedicated", "operator": "Exists"}]
    if draw(st.integers(0, 3)) == 0:
        spec["affinity"] = {
            "nodeAffinity": {
                "preferredDuringSchedulingIgnoredDuringExecution": [
                    {
                        "weight": draw(st.integers(1, 50)),
                        "preference": {"matchExpressions": [{"key": "disk", "operator": "In", "values": ["ssd"]}]},
                    }
                ]
            }
        }
    if draw(st.integers(0, 4)) == 0:
        spec["topologySpreadConstraints"] = [
            {
                "maxSkew": draw(st.integers(1, 3)),
                "topologyKey": draw(st.sampled_from(["topology.kubernetes.io/zone", "kubernetes.io/hostname"])),
                "whenUnsatisfiable": draw(st.sampled_from(["DoNotSchedule", "ScheduleAnyway"])),
                "labelSelector": {"matchLabels": {"app": labels["app"]}},
            }
        ]
    if draw(st.integers(0, 5)) == 0:
        kind = draw(st.sampled_from(["podAffinity", "podAntiAffinity"]))
        term = {"labelSelector": {"matchLabels": {"app": "db"}}, "topologyKey": "topology.kubernetes.io/zone"}
        if draw(st.booleans()):
            spec["affinity"] = {kind: {"requiredDuringSchedulingIgnoredDuringExecution": [term]}}
        else:
            spec["affinity"] = {
                kind: {
                    "preferredDuringSchedulingIgnoredDuringExecution": [
                        {"weight": draw(st.integers(1, 100)), "podAffinityTerm": term}
                    ]
                }
            }
    if draw(st.integers(0, 6)) == 0:
        spec["containers"][0]["ports"] = [{"containerPort": 80, "hostPort": 8080}]
    if draw(st.integers(0, 6)) == 0:  # a PreFilterResult: only the named nodes are searched
        names = [f"n{j}" for j in draw(st.lists(st.integers(0, 45), min_size=1, max_size=3))]
        spec.setdefault("affinity", {})["nodeAffinity"] = {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": names}]}]
            }
        }
    return Pod.from_manifest({"metadata": {"name": f"p{i}", "labels": labels}, "spec": spec})


def place(node_list, pods, percentage, seed, kernel: bool, config: SchedulerConfig | None = None):
    """Place ``pods`` in order, binding each; (node, nodes evaluated, message) per pod."""
    state = ClusterState(node_list)
    config = config or parse_config()
    fw = Framework(config.profile(), state, percentage, seed=seed)
    engine = KernelScheduler(fw) if kernel else fw
    placed = []
    for pod in pods:
        result = engine.schedule(pod)
        placed.append((result.node, result.evaluated, result.message))
        if result.node is not None:
            state.bind(pod, result.node)
    return placed


def seeded_node(rng: np.random.Generator, i: int) -> Node:
    """Node ``n<i>`` drawn from ``rng``: zone (mostly), disk, a dedicated taint, an image, a GPU resource."""
    labels = {"kubernetes.io/hostname": f"n{i}", "disk": ["ssd", "hdd"][rng.integers(2)]}
    if rng.integers(4) or i < 3:
        labels["topology.kubernetes.io/zone"] = f"z{rng.integers(3)}"
    effect = ["NoSchedule", "PreferNoSchedule"][rng.integers(2)]
    taints = [{"key": "dedicated", "value": "gpu", "effect": effect}] if rng.integers(5) == 0 else []
    images = [{"names": ["registry/app:v1"], "sizeBytes": 300 * 2**20}] if rng.integers(2) else []
    allocatable = {
        "cpu": str([2, 4, 8][rng.integers(3)]),
        "memory": f"{[4, 8, 16][rng.integers(3)]}Gi",
        "pods": str(rng.integers(2, 30)),
        "example.com/gpu": str(rng.integers(0, 3)),
    }
    return Node.from_manifest(
        {
            "metadata": {"name": f"n{i}", "labels": labels},
            "spec": {"taints": taints, "unschedulable": bool(rng.integers(12) == 0)},
            "status": {"allocatable": allocatable, "images": images},
        }
    )


def _seeded_affinity(rng: np.random.Generator) -> dict:
    kind = ["podAffinity", "podAntiAffinity"][rng.integers(2)]
    term = {"labelSelector": {"matchLabels": {"app": "db"}}, "topologyKey": "topology.kubernetes.io/zone"}
    if rng.integers(2):
        return {kind: {"requiredDuringSchedulingIgnoredDuringExecution": [term]}}
    weighted = {"weight": int(rng.integers(1, 100)), "podAffinityTerm": term}
    return {kind: {"preferredDuringSchedulingIgnoredDuringExecution": [weighted]}}


def seeded_pod(rng: np.random.Generator, i: int) -> Pod:
    """Pod ``p<i>`` drawn from ``rng``: requests, tolerations, node affinity and selector, spread, pod
    (anti-)affinity, host ports."""
    requests = {}
    if rng.integers(2):
        requests["cpu"] = f"{rng.integers(0, 3000)}m"
    if rng.integers(2):
        requests["memory"] = f"{rng.integers(0, 4096)}Mi"
    if rng.integers(6) == 0:
        requests["example.com/gpu"] = "1"
    image = ["registry/app:v1", "pause"][rng.integers(2)]
    spec: dict = {"containers": [{"name": "c", "image": image, "resources": {"requests": requests}}]}
    app = ["web", "db"][rng.integers(2)]
    if rng.integers(4) == 0:
        spec["tolerations"] = [{"key": "dedicated", "operator": "Exists"}]
    if rng.integers(4) == 0:
        expression = {"key": "disk", "operator": "In", "values": ["ssd"]}
        preferred = [{"weight": int(rng.integers(1, 50)), "preference": {"matchExpressions": [expression]}}]
        spec["affinity"] = {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": preferred}}
    if rng.integers(4) == 0:
        key = ["topology.kubernetes.io/zone", "kubernetes.io/hostname"][rng.integers(2)]
        when = ["DoNotSchedule", "ScheduleAnyway"][rng.integers(2)]
        constraint = {"maxSkew": int(rng.integers(1, 3)), "topologyKey": key, "whenUnsatisfiable": when}
        spec["topologySpreadConstraints"] = [{**constraint, "labelSelector": {"matchLabels": {"app": app}}}]
    if rng.integers(5) == 0:
        spec["affinity"] = _seeded_affinity(rng)
    if rng.integers(6) == 0:
        spec["containers"][0]["ports"] = [{"containerPort": 80, "hostPort": 8080}]
    if rng.integers(8) == 0:
        spec["nodeSelector"] = {"disk": "ssd"}
    return Pod.from_manifest({"metadata": {"name": f"p{i}", "labels": {"app": app}}, "spec": spec})


def seeded_workload(seed: int, num_nodes: int = 40, num_pods: int = 40) -> tuple[list[Node], list[Pod]]:
    """Nodes and pods drawn from one seed (numpy's generator: the same on every machine and process)."""
    rng = np.random.default_rng(seed)
    node_list = [seeded_node(rng, i) for i in range(num_nodes)]
    return node_list, [seeded_pod(rng, i) for i in range(num_pods)]
