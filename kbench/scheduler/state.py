"""The scheduler's view of the cluster as struct-of-arrays, kept in sync incrementally.

Node resources live in ``int64`` arrays indexed ``[resource, node]``:
``allocatable``, ``requested`` (actual requests, what NodeResourcesFit filters
on and BalancedAllocation scores) and ``nonzero`` (requests with the non-zero
defaults for cpu and memory, what NodeResourcesFit scores), plus ``pod_count``.
Binding or removing a pod updates one column. Labels, taints, images, host
ports and pods per node are kept beside them for the plugins; per-selector
counts of matching pods per node are cached and updated on every bind, so
PodTopologySpread and InterPodAffinity never rescan all pods.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from kbench.api.core import Node, Pod
from kbench.scheduler.podslots import PodSlots

CORE_RESOURCES = ("cpu", "memory", "ephemeral-storage", "pods")
CPU, MEMORY, EPHEMERAL, PODS = range(4)


def normalized_image_name(name: str) -> str:
    """imagelocality.normalizedImageName: add ':latest' when the image has no tag."""
    return name if name.rfind(":") > name.rfind("/") else name + ":latest"


@dataclass(slots=True)
class BoundPod:
    """A pod bound (or assumed) on the node of index ``node``."""

    pod: Pod
    node: int
    slot: int
    """Its slot in :attr:`ClusterState.slots`."""


class ClusterState:
    """Nodes and bound pods, as arrays for the kernels and as objects for the plugins."""

    def __init__(self, nodes: Iterable[Node] = ()) -> None:
        self.resources: list[str] = list(CORE_RESOURCES)
        self.nodes: list[Node] = []
        self.index: dict[str, int] = {}
        self.allocatable = np.zeros((len(self.resources), 0), np.int64)
        self.requested = np.zeros_like(self.allocatable)
        self.nonzero = np.zeros((2, 0), np.int64)
        self.pod_count = np.zeros(0, np.int64)
        self.unschedulable = np.zeros(0, np.bool_)
        self.pods: dict[str, BoundPod] = {}
        self.slots = PodSlots(len(self.resources))
        """The bound pods as arrays (the preemption dry run's input)."""
        self.affinity_pods: dict[str, BoundPod] = {}
        """Bound pods with inter-pod (anti-)affinity terms (their terms act on every later pod)."""
        self.namespaces: dict[str, dict[str, str]] = {}
        """Namespace labels, for namespaceSelector in affinity terms."""
        self.pods_on: list[list[Pod]] = []
        self.images: dict[str, tuple[int, int]] = {}
        self._node_images: list[dict[str, int]] = []
        self._ports: list[list[tuple[str, str, int]]] = []
        self._selector_counts: dict[tuple, tuple[Callable[[Pod], bool], np.ndarray]] = {}
        self._domains: dict[str, tuple[np.ndarray, list[str]]] = {}
        self.node_cache: dict = {}
        """Per-node arrays that depend only on nodes (plugins' label and taint matches); cleared when nodes change."""
        self.version = 0
        """Bumped on every change, so callers can cache per-state results."""
        self.node_version = 0
        """Bumped when nodes, resource rows or the set of pods with inter-pod affinity change: what a pod's
        plan depends on besides node resources."""
        self.add_nodes(nodes)

    # -- resources --------------------------------------------------------------
    def resource_index(self, name: str) -> int:
        """Row of resource ``name``, adding a row (zeros) for a new extended resource."""
        try:
            return self.resources.index(name)
        except ValueError:
            self.resources.append(name)
            self.node_version += 1
            pad = np.zeros((1, self.allocatable.shape[1]), np.int64)
            self.allocatable = np.vstack([self.allocatable, pad])
            self.requested = np.vstack([self.requested, pad])
            self.slots.add_resource()
            return len(self.resources) - 1

    def vector(self, amounts: Mapping[str, int]) -> np.ndarray:
        """A resource dict as a vector over :attr:`resources`."""
        for name in amounts:
            self.resource_index(name)
        vec = np.zeros(len(self.resources), np.int64)
        for name, amount in amounts.items():
            vec[self.resources.index(name)] = amount
        return vec

    # -- nodes ----------------------------------------------------------------------
    def add_node(self, node: Node) -> int:
        """Add a node (its allocatable, labels, taints, images); returns its index."""
        return self.add_nodes([node])[0]

    def add_nodes(self, nodes: Iterable[Node]) -> list[int]:
        """Add nodes in one step (one array reallocation); returns their indices."""
        nodes = list(nodes)
        for node in nodes:
            if node.name in self.index:
                raise ValueError(f"Node {node.name}: already in the cluster")
            self.index[node.name] = len(self.nodes)
            self.nodes.append(node)
        for node in nodes:
            for name in node.allocatable:
                self.resource_index(name)
        alloc = np.array([self.vector(node.allocatable) for node in nodes], np.int64)
        alloc = alloc.reshape(len(nodes), len(self.resources)).T
        m = len(nodes)
        self.allocatable = np.hstack([self.allocatable, alloc])
        self.requested = np.hstack([self.requested, np.zeros((len(self.resources), m), np.int64)])
        self.nonzero = np.hstack([self.nonzero, np.zeros((2, m), np.int64)])
        self.pod_count = np.append(self.pod_count, np.zeros(m, np.int64))
        self.unschedulable = np.append(self.unschedulable, [node.unschedulable for node in nodes])
        for node in nodes:
            self.pods_on.append([])
            self._ports.append([])
            sizes = {name: size for names, size in node.images for name in names}
            self._node_images.append(sizes)
            for name, size in sizes.items():
                _, count = self.images.get(name, (size, 0))
                self.images[name] = (size, count + 1)
        for key, (pred, counts) in self._selector_counts.items():
            self._selector_counts[key] = (pred, np.append(counts, np.zeros(m, np.int64)))
        self._domains.clear()
        self.node_cache.clear()
        self.version += 1
        self.node_version += 1
        return list(range(len(self.nodes) - m, len(self.nodes)))

    def update_node(self, node: Node) -> None:
        """A known node changed (labels, taints, unschedulable, allocatable): the NodeUpdate event."""
        i = self.index[node.name]
        self.nodes[i] = node
        self.unschedulable[i] = node.unschedulable
        self.allocatable[:, i] = self.vector(node.allocatable)[: self.allocatable.shape[0]]
        self._domains.clear()
        self.node_cache.clear()
        self.version += 1
        self.node_version += 1

    def per_node(self, key, compute):
        """``compute()`` (an array over nodes) cached under ``key`` until the node set changes."""
        if key not in self.node_cache:
            self.node_cache[key] = compute()
        return self.node_cache[key]

    @property
    def num_nodes(self) -> int:
        """How many nodes the state holds."""
        return len(self.nodes)

    def image_size(self, node: int, image: str) -> int | None:
        """Size of ``image`` (normalized) on node ``node``, or None if absent."""
        return self._node_images[node].get(image)

    def domains(self, key: str) -> tuple[np.ndarray, list[str]]:
        """Per node, the index of its value for label ``key`` (-1 if absent), and the values."""
        cached = self._domains.get(key)
        if cached is None:
            values: dict[str, int] = {}
            ids = np.full(self.num_nodes, -1, np.int64)
            for i, node in enumerate(self.nodes):
                if key in node.labels:
                    ids[i] = values.setdefault(node.labels[key], len(values))
            cached = self._domains[key] = (ids, list(values))
        return cached

    # -- pods -----------------------------------------------------------------------
    def bind(self, pod: Pod, node: int | str) -> None:
        """Account ``pod`` on ``node`` (an index or a name)."""
        i = self.index[node] if isinstance(node, str) else node
        if pod.key in self.pods:
            raise ValueError(f"Pod {pod.key}: already bound to {self.nodes[self.pods[pod.key].node].name}")
        vector = self.vector(pod.requests)
        self.pods[pod.key] = BoundPod(pod, i, self.slots.take([pod], [i], vector)[0])
        if pod.inter_pod_affinity:
            self.affinity_pods[pod.key] = self.pods[pod.key]
            self.node_version += 1
        self._account(pod, i, +1, vector=vector)

    @contextmanager
    def added(self, placed: list[tuple[Pod, int]]) -> Iterator[None]:
        """Pods (nominated ones) accounted on their nodes while the block runs, then removed."""
        for pod, i in placed:
            self.bind(pod, i)
        try:
            yield
        finally:
            for pod, _ in placed:
                self.remove(pod.key)

    def refresh(self, pod: Pod) -> None:
        """The informer's newer object of a bound pod (deletionTimestamp, conditions, startTime); its requests and
        node are unchanged."""
        bound = self.pods[pod.key]
        old, bound.pod = bound.pod, pod
        on = self.pods_on[bound.node]
        on[next(k for k, p in enumerate(on) if p is old)] = pod
        self.slots.pods[bound.slot] = pod
        self.slots.set_start(bound.slot, pod.start_time)
        self.version += 1

    def set_start(self, pod_key: str, start: float | None) -> None:
        """A bound pod's status.startTime (simulated seconds) became known."""
        bound = self.pods[pod_key]
        bound.pod.start_time = start
        self.slots.set_start(bound.slot, start)

    def remove(self, pod_key: str) -> Pod:
        """Forget a bound pod; returns it."""
        bound = self.pods.pop(pod_key)
        self.slots.free(bound.slot)
        if self.affinity_pods.pop(pod_key, None) is not None:
            self.node_version += 1
        self._account(bound.pod, bound.node, -1)
        return bound.pod

    def record_bound(self, pods: list[Pod], nodes: np.ndarray) -> None:
        """Register pods of one signature whose resources a kernel already added to the arrays (batch binding).

        Pods of one signature share labels, namespace, ports and affinity, so what depends on those is
        evaluated once for the batch.
        """
        if not pods:
            return
        keys, at = [pod.key for pod in pods], nodes.tolist()
        self._refuse_bound(keys, at)
        first = pods[0]
        slots = self.slots.take(pods, nodes, self.vector(first.requests))
        affinity = first.inter_pod_affinity
        if first.host_ports or affinity:
            for key, pod, i, slot in zip(keys, pods, at, slots):
                self.pods[key] = BoundPod(pod, i, slot)
                if affinity:
                    self.affinity_pods[key] = self.pods[key]
                    self.node_version += 1
                self._account(pod, i, +1, arrays=False)
            return
        self._register(keys, pods, at, slots)
        for pred, counts in self._selector_counts.values():
            if pred(first):
                np.add.at(counts, nodes, 1)
        self.version += 1

    def record_placed(self, pods: list[Pod], nodes: list[int], requests: np.ndarray) -> None:
        """Register pods of any signatures, none with host ports or inter-pod affinity terms, whose resources a
        kernel already added to the arrays, in order (the selector counts are updated pod by pod); ``requests``
        holds each pod's request vector as a column (the kernel's bind vectors)."""
        keys = [pod.key for pod in pods]
        self._refuse_bound(keys, nodes)
        self._register(keys, pods, nodes, self.slots.take(pods, nodes, requests) if pods else [])
        for pred, counts in self._selector_counts.values():
            for pod, i in zip(pods, nodes):
                if pred(pod):
                    counts[i] += 1
        self.version += 1

    def _refuse_bound(self, keys: list[str], nodes: list[int]) -> None:
        """Refuse, by name, a pod already bound or twice in a batch, before anything of the batch is recorded."""
        table = self.pods
        if table.keys().isdisjoint(keys) and len(set(keys)) == len(keys):
            return
        seen: dict[str, int] = {}
        for key, i in zip(keys, nodes):
            node = table[key].node if key in table else seen.get(key)
            if node is not None:
                raise ValueError(f"Pod {key}: already bound to {self.nodes[node].name}")
            seen[key] = i

    def _register(self, keys: list[str], pods: list[Pod], nodes: list[int], slots: list[int]) -> None:
        self.pods.update(zip(keys, map(BoundPod, pods, nodes, slots)))
        pods_on = self.pods_on
        for pod, i in zip(pods, nodes):
            pods_on[i].append(pod)

    def _account(self, pod: Pod, i: int, sign: int, arrays: bool = True, vector: np.ndarray | None = None) -> None:
        if arrays:
            self.requested[:, i] += sign * (self.vector(pod.requests) if vector is None else vector)
            nz = pod.nonzero_requests
            self.nonzero[0, i] += sign * nz.get("cpu", 0)
            self.nonzero[1, i] += sign * nz.get("memory", 0)
            self.pod_count[i] += sign
        if sign > 0:
            self.pods_on[i].append(pod)
            self._ports[i].extend((p.host_ip or "0.0.0.0", p.protocol, p.host_port) for p in pod.host_ports)
        else:
            self.pods_on[i].remove(pod)
            for p in pod.host_ports:
                self._ports[i].remove((p.host_ip or "0.0.0.0", p.protocol, p.host_port))
        for pred, counts in self._selector_counts.values():
            if pred(pod):
                counts[i] += sign
        self.version += 1

    def used_ports(self, node: int) -> list[tuple[str, str, int]]:
        """(hostIP, protocol, port) claimed on ``node``."""
        return self._ports[node]

    def matching_pods_per_node(self, key: tuple, predicate: Callable[[Pod], bool]) -> np.ndarray:
        """Per node, how many bound pods satisfy ``predicate`` (cached under ``key``, kept current)."""
        cached = self._selector_counts.get(key)
        if cached is None:
            counts = np.zeros(self.num_nodes, np.int64)
            for bound in self.pods.values():
                if predicate(bound.pod):
                    counts[bound.node] += 1
            cached = self._selector_counts[key] = (predicate, counts)
        return cached[1]
