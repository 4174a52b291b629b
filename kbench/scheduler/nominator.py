"""The scheduling queue's PodNominator (``pkg/scheduler/backend/queue/nominator.go``): pods nominated to a node by a
preemption, which later cycles count on that node for pods of no higher priority (RunFilterPluginsWithNominatedPods)."""

from __future__ import annotations

from kbench.api.core import Pod


class Nominator:
    """Nominated pods by key: (pod, node index)."""

    def __init__(self) -> None:
        self.pods: dict[str, tuple[Pod, int]] = {}

    def __len__(self) -> int:
        return len(self.pods)

    def add(self, pod: Pod, node: int) -> None:
        """AddNominatedPod (a pod has one nomination: a new one replaces the old)."""
        self.pods[pod.key] = (pod, node)

    def delete(self, key: str) -> None:
        """DeleteNominatedPodIfExists: the pod was bound, deleted or lost its nomination."""
        self.pods.pop(key, None)

    def node_of(self, key: str) -> int | None:
        """The node the pod is nominated to, if any."""
        entry = self.pods.get(key)
        return None if entry is None else entry[1]

    def for_pod(self, pod: Pod) -> list[tuple[Pod, int]]:
        """addGeneralNominatedPods: the other nominated pods of at least ``pod``'s priority, with their nodes."""
        if not self.pods:
            return []
        return [(p, i) for key, (p, i) in self.pods.items() if key != pod.key and p.priority >= pod.priority]

    def on_node(self, node: int) -> list[Pod]:
        """NominatedPodsForNode."""
        return [p for p, i in self.pods.values() if i == node]
