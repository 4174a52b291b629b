"""Scenarios: whole-cluster workloads (YAML files or the Python API) and scheduler_perf workloads.

``density(...)``, ``load(...)``, ``node_failure(...)``, ``preemption(...)`` ... return a :class:`Scenario`;
``Scenario.from_yaml(path)`` reads a file; ``scenario.run()`` returns the run's SLIs
(:class:`kbench.metrics.slis.RunResult`).
"""

from kbench.scenarios.library import (
    SCENARIOS,
    density,
    job_waves,
    load,
    load_balancers,
    node_failure,
    probe_storm,
    rolling_update,
    scheduler_perf,
)
from kbench.scenarios.preemption import preemption
from kbench.scenarios.spec import Scenario, ScenarioError

__all__ = [
    "SCENARIOS",
    "Scenario",
    "ScenarioError",
    "density",
    "job_waves",
    "load",
    "load_balancers",
    "node_failure",
    "preemption",
    "probe_storm",
    "rolling_update",
    "scheduler_perf",
]
