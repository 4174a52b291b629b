"""PrioritySort (``plugins/queuesort``): activeQ pops the highest priority first, then the earliest timestamp."""

from __future__ import annotations

from typing import Protocol

from kbench.api.core import Pod
from kbench.scheduler.interface import Plugin


class QueuedPodInfo(Protocol):
    """What queue sorting reads of a queued pod (framework.QueuedPodInfo)."""

    pod: Pod
    timestamp: float


def priority_sort_key(info: QueuedPodInfo) -> tuple[int, float]:
    """PrioritySort.Less as a heap key: higher priority first, then the earlier timestamp."""
    return -info.pod.priority, info.timestamp


class PrioritySort(Plugin):
    """QueueSort: higher ``spec.priority`` first, then earlier queue timestamp (PrioritySort.Less)."""

    name = "PrioritySort"
    points = ("queueSort",)

    def less(self, a: QueuedPodInfo, b: QueuedPodInfo) -> bool:
        """Less: ``a`` pops before ``b``."""
        return self.sort_key(a) < self.sort_key(b)

    def sort_key(self, info: QueuedPodInfo) -> tuple[int, float]:
        """Less as a heap key: ``less(a, b)`` iff ``sort_key(a) < sort_key(b)``."""
        return priority_sort_key(info)
