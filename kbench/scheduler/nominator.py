"""The scheduling queue's PodNominator (``pkg/scheduler/backend/queue/nominator.go``): pods nominated to a node by a
preemption, which later cycles count on that node for pods of no higher priority (RunFilterPluginsWithNominatedPods).

Besides the pods, their node, priority and request vector are kept as arrays (a slot per nomination, reused), so a
cycle sums what the nominated pods hold per node without visiting them one by one.
"""

from __future__ import annotations

import numpy as np

from kbench.api.core import Pod


class Nominator:
    """Nominated pods by key: (pod, node index, slot)."""

    def __init__(self) -> None:
        self.pods: dict[str, tuple[Pod, int, int]] = {}
        self.node = np.zeros(0, np.int64)
        self.priority = np.zeros(0, np.int64)
        self.alive = np.zeros(0, np.bool_)
        self.requests = np.zeros((0, 0), np.int64)
        self._free: list[int] = []

    def __len__(self) -> int:
        return len(self.pods)

    def add(self, pod: Pod, node: int, requests: np.ndarray) -> None:
        """AddNominatedPod with the pod's request vector (a pod has one nomination: a new one replaces the old)."""
        self.delete(pod.key)
        if not self._free:
            size = len(self.node)
            grow = max(size, 16)
            self.node = np.concatenate([self.node, np.zeros(grow, np.int64)])
            self.priority = np.concatenate([self.priority, np.zeros(grow, np.int64)])
            self.alive = np.concatenate([self.alive, np.zeros(grow, np.bool_)])
            self.requests = np.hstack([self.requests, np.zeros((self.requests.shape[0], grow), np.int64)])
            self._free.extend(range(size + grow - 1, size - 1, -1))
        if len(requests) > self.requests.shape[0]:
            pad = np.zeros((len(requests) - self.requests.shape[0], self.requests.shape[1]), np.int64)
            self.requests = np.vstack([self.requests, pad])
        slot = self._free.pop()
        self.node[slot], self.priority[slot], self.alive[slot] = node, pod.priority, True
        self.requests[:, slot] = 0
        self.requests[: len(requests), slot] = requests
        self.pods[pod.key] = (pod, node, slot)

    def delete(self, key: str) -> None:
        """DeleteNominatedPodIfExists: the pod was bound, deleted or lost its nomination."""
        entry = self.pods.pop(key, None)
        if entry is not None:
            self.alive[entry[2]] = False
            self._free.append(entry[2])

    def node_of(self, key: str) -> int | None:
        """The node the pod is nominated to, if any."""
        entry = self.pods.get(key)
        return None if entry is None else entry[1]

    def for_pod(self, pod: Pod) -> list[tuple[Pod, int]]:
        """addGeneralNominatedPods: the other nominated pods of at least ``pod``'s priority, with their nodes."""
        if not self.pods:
            return []
        return [(p, i) for key, (p, i, _) in self.pods.items() if key != pod.key and p.priority >= pod.priority]

    def any_for(self, pod: Pod) -> bool:
        """Whether :meth:`for_pod` is not empty (without building it)."""
        if not self.pods:
            return False
        counted = self.alive & (self.priority >= pod.priority)
        own = self.pods.get(pod.key)
        return int(counted.sum()) > (1 if own is not None and counted[own[2]] else 0)

    def held(self, pod: Pod, resources: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """What :meth:`for_pod`'s pods hold: (their nodes, sorted; requests ``[resource, node]``; pods per node)."""
        counted = self.alive & (self.priority >= pod.priority)
        own = self.pods.get(pod.key)
        if own is not None:
            counted[own[2]] = False
        slots = np.flatnonzero(counted)
        nodes, where = np.unique(self.node[slots], return_inverse=True)
        added = np.zeros((max(resources, self.requests.shape[0]), len(nodes)), np.int64)
        for r in range(self.requests.shape[0]):
            np.add.at(added[r], where, self.requests[r, slots])
        return nodes, added[:resources], np.bincount(where, minlength=len(nodes)).astype(np.int64)

    def on_node(self, node: int) -> list[Pod]:
        """NominatedPodsForNode."""
        return [p for p, i, _ in self.pods.values() if i == node]
