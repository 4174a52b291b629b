"""NodeUnschedulable, NodeName, NodePorts, TaintToleration and ImageLocality."""

from __future__ import annotations

import numpy as np

from kbench.api.core import Pod, Taint, Toleration
from kbench.scheduler.plugins import (
    MAX_NODE_SCORE,
    NORMALIZE_REVERSE,
    SKIP,
    SUCCESS,
    UNRESOLVABLE,
    UNSCHEDULABLE,
    Plugin,
)
from kbench.scheduler.state import normalized_image_name

UNSCHEDULABLE_TAINT = Taint("node.kubernetes.io/unschedulable", "", "NoSchedule")
MB = 1024 * 1024
MIN_THRESHOLD = 23 * MB
"""imagelocality.minThreshold."""
MAX_CONTAINER_THRESHOLD = 1000 * MB
"""imagelocality.maxContainerThreshold."""


class NodeUnschedulable(Plugin):
    """Filter: nodes marked unschedulable, unless the pod tolerates their unschedulable taint."""

    name = "NodeUnschedulable"

    def filter(self, ctx, pod: Pod) -> np.ndarray:
        if any(t.tolerates(UNSCHEDULABLE_TAINT) for t in pod.tolerations):
            return np.zeros(self.state.num_nodes, np.int8)
        return np.where(self.state.unschedulable, UNRESOLVABLE, SUCCESS).astype(np.int8)

    def reasons(self, ctx, pod, node):
        return ("node(s) were unschedulable",)


class NodeName(Plugin):
    """Filter: a pod naming a node fits only that node."""

    name = "NodeName"

    def filter(self, ctx, pod: Pod) -> np.ndarray:
        codes = np.zeros(self.state.num_nodes, np.int8)
        if pod.node_name:
            codes[:] = UNRESOLVABLE
            if pod.node_name in self.state.index:
                codes[self.state.index[pod.node_name]] = SUCCESS
        return codes

    def reasons(self, ctx, pod, node):
        return ("node(s) didn't match the requested node name",)


def ports_conflict(used: list[tuple[str, str, int]], ip: str, protocol: str, port: int) -> bool:
    """HostPortInfo.CheckConflict: 0.0.0.0 on either side conflicts with any IP on the same protocol/port."""
    if port <= 0:
        return False
    ip, protocol = ip or "0.0.0.0", protocol or "TCP"
    for used_ip, used_protocol, used_port in used:
        if (
            used_port == port
            and used_protocol == protocol
            and (ip == "0.0.0.0" or used_ip == "0.0.0.0" or used_ip == ip)
        ):
            return True
    return False


class NodePorts(Plugin):
    """Filter: the pod's host ports must be free on the node."""

    name = "NodePorts"
    dynamic = True

    def prefilter(self, pod: Pod):
        return pod.host_ports or SKIP

    def filter(self, ports, pod: Pod) -> np.ndarray:
        codes = np.zeros(self.state.num_nodes, np.int8)
        for i in range(self.state.num_nodes):
            used = self.state.used_ports(i)
            if used and any(ports_conflict(used, p.host_ip, p.protocol, p.host_port) for p in ports):
                codes[i] = UNSCHEDULABLE
        return codes

    def reasons(self, ctx, pod, node):
        return ("node(s) didn't have free ports for the requested pod ports",)


def _untolerated(taints: tuple[Taint, ...], tolerations: tuple[Toleration, ...], effects: tuple[str, ...]):
    for taint in taints:
        if taint.effect in effects and not any(t.tolerates(taint) for t in tolerations):
            yield taint


def taints_tolerated(state, pod: Pod) -> np.ndarray:
    """Per node: every NoSchedule/NoExecute taint is tolerated by the pod."""
    return state.per_node(
        ("taints", pod.tolerations),
        lambda: np.array(
            [
                next(_untolerated(n.taints, pod.tolerations, ("NoSchedule", "NoExecute")), None) is None
                for n in state.nodes
            ],
            bool,
        ),
    )


class TaintToleration(Plugin):
    """Filter: NoSchedule/NoExecute taints must be tolerated; score: fewer untolerated PreferNoSchedule taints."""

    name = "TaintToleration"
    normalize = NORMALIZE_REVERSE

    def filter(self, ctx, pod: Pod) -> np.ndarray:
        return np.where(taints_tolerated(self.state, pod), SUCCESS, UNRESOLVABLE).astype(np.int8)

    def reasons(self, ctx, pod, node):
        return ("node(s) had untolerated taint(s)",)

    def prescore(self, pod: Pod, nodes: np.ndarray):
        return tuple(t for t in pod.tolerations if t.effect in ("", "PreferNoSchedule"))

    def score(self, tolerations, pod: Pod, nodes: np.ndarray) -> np.ndarray:
        counts = self.state.per_node(
            ("prefer-no-schedule", tolerations),
            lambda: np.array(
                [sum(1 for _ in _untolerated(n.taints, tolerations, ("PreferNoSchedule",))) for n in self.state.nodes],
                np.int64,
            ),
        )
        return counts[nodes]


class ImageLocality(Plugin):
    """Score: nodes that already hold the pod's images, scaled by how widely each image is spread."""

    name = "ImageLocality"

    def score(self, ctx, pod: Pod, nodes: np.ndarray) -> np.ndarray:
        s = self.state
        total_nodes = s.num_nodes
        containers = (*pod.init_containers, *pod.containers)
        sums = np.zeros(len(nodes), np.int64)
        for c in containers:
            image = normalized_image_name(c.image)
            if image not in s.images:
                continue
            size, count = s.images[image]
            scaled = int(float(size) * (float(count) / float(total_nodes)))
            sums += np.array([scaled if s.image_size(i, image) is not None else 0 for i in nodes.tolist()], np.int64)
        max_threshold = MAX_CONTAINER_THRESHOLD * len(containers)
        clipped = np.clip(sums, MIN_THRESHOLD, max(max_threshold, MIN_THRESHOLD))
        if max_threshold == MIN_THRESHOLD:
            return np.zeros(len(nodes), np.int64)
        return MAX_NODE_SCORE * (clipped - MIN_THRESHOLD) // (max_threshold - MIN_THRESHOLD)
