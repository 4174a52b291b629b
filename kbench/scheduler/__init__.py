"""kube-scheduler model (pinned to v1.35): configuration, plugins, the fused kernel, the queue and the loop."""

from kbench.scheduler.config import KUBERNETES_VERSION, ConfigError, SchedulerConfig, parse_config
from kbench.scheduler.framework import CycleResult, Framework
from kbench.scheduler.kernel import KernelScheduler
from kbench.scheduler.scheduler import Scheduler
from kbench.scheduler.state import ClusterState
from kbench.scheduler.whatif import breakdown

__all__ = [
    "KUBERNETES_VERSION",
    "ClusterState",
    "ConfigError",
    "CycleResult",
    "Framework",
    "KernelScheduler",
    "Scheduler",
    "SchedulerConfig",
    "breakdown",
    "parse_config",
]
