"""The whole cluster on a Service of many endpoints, at four times the nodes of its reference: a rolling update of a
Deployment of 200 replicas behind a Service on 80 nodes (``kbench.scenarios.library.rolling_update``), and a probe
storm of 800 pods behind one Service on 80 nodes, their liveness probes failing after 30 s, so every pod restarts
(``probe_storm``). kube-proxy runs on every node.

Every change of an endpoint is a new EndpointSlice version, which the EndpointSlice controller writes from all the
Service's pods and every kube-proxy programs: a change costs the cluster O(endpoints) on each node, as upstream's
does. Until round 22 the simulator paid that on each node too: every kube-proxy compiled the Service's rules to
count their lines, so the rolling update at 80 nodes took 76.5-80.6 s (9.4-9.9 ms an API request, against 0.84 ms at
20 nodes: a ratio of 0.09) and the probe storm at 80 nodes did not finish in ten minutes. A Service compiled alike on
every node (``ServicePortInfo.same_on_every_node``) is now compiled once a change, its counts shared
(``kbench.proxy.informed.Shared``).

Each run happens in a fresh spawned process (peak memory as asv's ``peakmem``). The reference is the same scenario
at a quarter of the nodes (and replicas), and the ratio is its wall per API request over the full run's: its floor
catches a change's cost growing with the nodes again. It stays below 1: the endpoints per Service grow too.
"""

from __future__ import annotations

import pytest

from benchmarks.conftest import per_request_against_smaller, scenario_figures
from kbench.scenarios import library

CASES = {
    "rolling-update": ("rolling_update", {"nodes": 80, "replicas": 200}, {"nodes": 20, "replicas": 50}),
    "probe-storm": ("probe_storm", {"nodes": 80}, {"nodes": 20}),
}
"""Each case: the built-in, the full run's arguments, the reference's."""


def run(builtin: str, kwargs: dict) -> dict:
    """Run built-in ``builtin`` with ``kwargs``; wall time, rates, verdict and peak memory."""
    return scenario_figures(getattr(library, builtin)(**kwargs))


@pytest.mark.parametrize("case", list(CASES))
def test_service_of_many_endpoints(benchmark, case):
    builtin, full, small = CASES[case]
    result, reference = per_request_against_smaller(
        benchmark, run, (builtin, full), (builtin, small), f"{case} with {small}", scenario=case, arguments=full
    )
    assert result["slo_passed"] and reference["slo_passed"], "the default profile should meet every SLO here"
