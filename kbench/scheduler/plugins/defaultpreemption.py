"""DefaultPreemption (``plugins/defaultpreemption``): PostFilter that evicts lower-priority pods to make room for a
pod no node fits, through :class:`~kbench.scheduler.preemption.Evaluator`.

Its args (DefaultPreemptionArgs) are checked in :mod:`kbench.scheduler.pluginargs`. v1.35 also gives it a
PreEnqueue point for asynchronous preemption (SchedulerAsyncPreemption, beta and on since v1.33): a pod whose
victims are still being deleted does not enter activeQ; the scheduler's loop models that gate
(:class:`kbench.scheduler.scheduler.Scheduler`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from kbench.api.core import Pod
from kbench.scheduler.interface import Handle, Plugin
from kbench.scheduler.preemption import Evaluator, Outcome

OFFSET_STREAM = 0x70726565
"""Mixed into the framework's seed for getOffsetRand's stream (apart from selectHost's)."""


class DefaultPreemption(Plugin):
    """PostFilter: preempt lower-priority pods (Evaluator.Preempt)."""

    name = "DefaultPreemption"
    points = ("postFilter",)

    def __init__(self, args: dict[str, Any], handle: Handle) -> None:
        super().__init__(args, handle)
        rng = np.random.default_rng([handle.framework.seed, OFFSET_STREAM])
        self.evaluator = Evaluator(
            handle.framework, args["minCandidateNodesPercentage"], args["minCandidateNodesAbsolute"], rng
        )

    def post_filter(self, pod: Pod, now: float = 0.0) -> Outcome:
        """PostFilter: the evaluator's outcome, its message prefixed "preemption: " as upstream's plugin does."""
        return self.evaluator.preempt(pod, now)
