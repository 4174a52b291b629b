"""kbench's scheduler on SchedulingBasic at 5,000 nodes, beside a NumPy-vectorized reference.

Cluster: 5,000 node-default.yaml nodes (4 CPU, 32 Gi, 110 pods) with 1,000
pods placed; each round places 10,000 more pod-default.yaml pods (100m, 500 Mi)
with the default profile, binding as it goes. Targets: >= 100,000 pods/s with
percentageOfNodesToScore 100, >= 300,000 pods/s adaptive (10% of 5,000 nodes).
For scale, upstream's scheduler_perf CI threshold for SchedulingBasic
5000Nodes_10000Pods is 680 pods/s (test/integration/scheduler_perf/misc,
v1.35 era; 270 pods/s in older configs). The reference is
``Framework.schedule`` (vectorized NumPy plugins, same placements), timed on
fewer pods. Kernel compilation happens in the fixtures; each round's setup moves
the objects that exist out of the garbage collector's way (``gc.freeze``).

``test_openb_trace`` replays the openb production GPU trace (``../shared/data/openb``, read in place: 1,523
nodes, 8,152 pods of many shapes) through the default profile, pod by pod with binding, including the pods
that fit nowhere, with ``kbench.scheduler.sequence.schedule_sequence``. Target: >= 50,000 pods/s end to end (from the
Pod objects to every pod bound or given its FitError). The reference is ``Framework.schedule`` + bind per
pod over the whole trace; placements and FitError messages must be identical.
"""

from __future__ import annotations

import gc
import time

import pytest

from benchmarks.conftest import record
from kbench.scenarios.scheduler_perf import basic_cluster, basic_pods
from kbench.scheduler.config import parse_config
from kbench.scheduler.framework import Framework
from kbench.scheduler.kernel import KernelScheduler
from kbench.scheduler.sequence import schedule_sequence
from kbench.scheduler.state import ClusterState
from kbench.traces import openb

NODES, INITIAL, PODS, REFERENCE_PODS = 5_000, 1_000, 10_000, 200


def _ready(percentage: int):
    kernel, template = basic_cluster(NODES, percentage, seed=1)
    kernel.schedule_batch(basic_pods(template, 0, INITIAL))
    return kernel, template


@pytest.mark.parametrize("percentage", [100, 0], ids=["all-nodes", "adaptive"])
def test_scheduling_basic(benchmark, percentage):
    batches = iter(range(1, 1000))

    def setup():
        kernel, template = _ready(percentage)
        pods = basic_pods(template, next(batches) * 10**6, PODS)
        # what exists is moved out of the collector's way, as kbench's runs do (kbench.sim.collector): else three
        # rounds in sixteen timed a full collection of the clusters earlier rounds left, 93-151 ms against a
        # round's 21-23 ms (adaptive; gc.callbacks timed the collections). Unfrozen first, so the earlier rounds'
        # clusters are collected rather than kept.
        gc.unfreeze()
        gc.collect()
        gc.freeze()
        return (kernel, pods), {}

    try:
        benchmark.pedantic(lambda kernel, pods: kernel.schedule_batch(pods), setup=setup, rounds=5, warmup_rounds=1)
    finally:
        gc.unfreeze()
    kernel, template = _ready(percentage)
    pods = basic_pods(template, 9 * 10**8, REFERENCE_PODS)
    started = time.perf_counter()
    for pod in pods:
        result = kernel.fw.schedule(pod)
        kernel.fw.state.bind(pod, result.node)
    reference = REFERENCE_PODS / (time.perf_counter() - started)
    if benchmark.stats is None:  # --benchmark-disable: the plugin timed nothing; time one round here
        (kernel, batch), _ = setup()
        started = time.perf_counter()
        kernel.schedule_batch(batch)
        median = time.perf_counter() - started
    else:
        median = benchmark.stats.stats.median
    rate = PODS / median
    benchmark.extra_info.update(
        pods_per_round=PODS,
        pods_per_s=rate,
        reference="Framework.schedule (NumPy)",
        reference_pods_per_s=reference,
        ratio=rate / reference,
        target_pods_per_s=100_000 if percentage == 100 else 300_000,
        meets_target=rate >= (100_000 if percentage == 100 else 300_000),
        upstream_ci_threshold_pods_per_s=680,
    )


OPENB_SEED = 1


def _openb_scheduler(nodes) -> KernelScheduler:
    return KernelScheduler(Framework(parse_config().profile(), ClusterState(nodes), 0, OPENB_SEED))


def _openb_reference(nodes, pods) -> tuple[list[int], dict[int, str], float]:
    """Node per pod (-1: none), FitError messages, and seconds: Framework.schedule + bind, one pod at a time."""
    fw = _openb_scheduler(nodes).fw
    placed, messages = [], {}
    started = time.perf_counter()
    for i, pod in enumerate(pods):
        result = fw.schedule(pod)
        if result.node is None:
            placed.append(-1)
            messages[i] = result.message
        else:
            placed.append(result.node)
            fw.state.bind(pod, result.node)
    return placed, messages, time.perf_counter() - started


def test_openb_trace(benchmark):
    directory = openb.data_dir()
    if not (directory / openb.NODES_FILE).is_file():
        pytest.skip(f"openb trace not found at {directory} (set ${openb.ENV}; source: {openb.SOURCE})")
    nodes = openb.read_nodes(directory)
    schedule_sequence(_openb_scheduler(nodes), openb.read_pods(directory)[:300])  # kernel compilation
    results = []

    def setup():
        return (_openb_scheduler(nodes), openb.read_pods(directory)), {}

    def replay(kernel, pods):
        results.append(schedule_sequence(kernel, pods))

    benchmark.pedantic(replay, setup=setup, rounds=5, warmup_rounds=1)
    pods = openb.read_pods(directory)
    placed, messages, reference_seconds = _openb_reference(nodes, pods)
    for result in results:
        assert result.nodes.tolist() == placed
        assert result.messages == messages
    record(
        benchmark,
        len(pods),
        reference_seconds,
        target=50_000,
        pods_unschedulable=len(messages),
        fallback_pods=sum(results[-1].fallbacks.values()),
        reference="Framework.schedule + bind per pod (NumPy)",
    )
    info = benchmark.extra_info
    info.update(pods_per_s=info["ops_per_s"], reference_pods_per_s=info["reference_ops_per_s"])
