"""The whole cluster on ClusterLoader2's load scenario at 1,000 nodes: 300 Deployments of 10 replicas, a Service
each, then 60 simulated seconds of pod churn at 5 pods/s, kube-proxy on 100 nodes (``kbench.scenarios.library.load``).

Services make the controllers look objects up: the EndpointSlice controller the pods a Service selects and the
Services a pod belongs to, the ReplicaSet controller the pods a ReplicaSet owns, kube-proxy every Service's endpoints
on each of its nodes. Until round 21 the first three scanned a whole informer cache for each lookup (the cost per
request grew with the cluster: 63.3 s and a ratio of 0.40 for this benchmark); the informers' indexes
(``Informer.add_index``) find the same objects in the same order. Until round 22 each of the 100 kube-proxies compiled
a changed Service's rules to count them (27.3 s, ratio 0.92); a Service compiled alike on every node is now compiled
once a change, its counts shared (``kbench.proxy.informed.Shared``; 9.6 s, ratio 1.14).

The run happens in a fresh spawned process (peak memory as asv's ``peakmem``). The reference is the same scenario at
a tenth of the nodes and Deployments (100 nodes, 30 Deployments), and the ratio is its wall per API request over the
full run's: its floor catches a request's cost growing with the cluster again.
"""

from __future__ import annotations

from benchmarks.conftest import per_request_against_smaller, scenario_figures
from kbench.scenarios import library

NODES, DEPLOYMENTS, REPLICAS, CHURN, DURATION = 1000, 300, 10, 5.0, 60.0


def load(nodes: int, deployments: int) -> dict:
    """Run CL2 load at ``nodes`` with ``deployments`` Deployments (a Service each); wall time, rates, peak memory."""
    return scenario_figures(library.load(nodes, deployments, REPLICAS, CHURN, DURATION, proxy_nodes=min(100, nodes)))


def test_load_1000_nodes(benchmark):
    result, _ = per_request_against_smaller(
        benchmark,
        load,
        (NODES, DEPLOYMENTS),
        (NODES // 10, DEPLOYMENTS // 10),
        f"{NODES // 10} nodes, {DEPLOYMENTS // 10} Deployments",
        nodes=NODES,
        deployments=DEPLOYMENTS,
        replicas=REPLICAS,
    )
    assert result["pods_started"] >= DEPLOYMENTS * REPLICAS
    assert result["slo_passed"], "the default profile should meet every SLO on this load"
