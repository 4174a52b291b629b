"""scheduler_perf workloads on the engine: upstream's ops, templates and throughput metric.

``data/scenarios/scheduler_perf/performance-config.yaml`` holds the tests
(SchedulingBasic, TopologySpreading, PreferredTopologySpreading,
SchedulingWithMixedChurn, SchedulingDaemonset, PreemptionBasic, PreemptionAsync)
with upstream's ``workloadTemplate`` ops: ``createNodes`` (with
``labelNodePrepareStrategy``), ``createPods`` (waiting for them to be scheduled;
``collectMetrics`` marks the measured pods) and ``churn`` (modes recreate and
create); an op's field upstream has and kbench does not model is refused by
name. Preemption victims leave after the API delete (the victims' template,
pod-low-priority.yaml, has terminationGracePeriodSeconds 0, which the apiserver
deletes at once; scheduler_perf runs no kubelet). Pods are created at once, as
scheduler_perf's parallel creators outpace the scheduler. SchedulingThroughput is
sampled every simulated second as ``test/integration/scheduler_perf/util.go``
does (the first sample with new pods is dropped; quiet seconds repeat the next
sample) and summarised as Average and Perc50/90/95/99, in scheduler_perf's
data-items JSON.
"""

from __future__ import annotations

import copy
import math
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from kbench.api.core import ManifestError, Node, Pod
from kbench.profiles import Profile, load_profile
from kbench.scheduler.config import SchedulerConfig, parse_config
from kbench.scheduler.framework import Framework
from kbench.scheduler.kernel import KernelScheduler
from kbench.scheduler.scheduler import Scheduler
from kbench.scheduler.state import ClusterState
from kbench.sim import Engine, Streams

OPS = {
    "createNodes": ("count", "countParam", "nodeTemplatePath", "labelNodePrepareStrategy"),
    "createPods": ("count", "countParam", "podTemplatePath", "collectMetrics"),
    "churn": ("mode", "number", "templatePaths", "intervalMilliseconds"),
}
"""scheduler_perf.go's operations kbench runs -> the fields it reads of each (beside ``opcode``)."""
OPCODES = tuple(OPS)
CHURN_MODES = ("recreate", "create")
"""churnOp.Mode: recreate (create then delete, cycling) or create (create until ``number``; 0: no limit)."""
TEST_FIELDS = ("name", "workloadTemplate", "workloads")
WORKLOAD_FIELDS = ("name", "labels", "threshold", "params")
LABELS = ("integration-test", "performance", "short")
"""The labels upstream's v1.35-era configs use (the CIs select workloads by them)."""
SAMPLE_INTERVAL = 1.0
WAIT_FOR_PODS_TIMEOUT = 600.0
"""scheduler_perf.go waitUntilPodsScheduledInNamespace: createPods fails when its pods are not all scheduled within
10 minutes ("even at the lowest observed QPS of ~10 pods/sec, a 5000-node test should complete")."""


def scenario_dir() -> Path:
    """``$KBENCH_SCENARIOS`` or the checkout's ``data/scenarios``."""
    return Path(os.environ.get("KBENCH_SCENARIOS", Path(__file__).resolve().parents[2] / "data" / "scenarios"))


def load_tests(path: str | Path | None = None) -> dict[str, dict]:
    """The scheduler_perf tests by name (safe YAML)."""
    path = Path(path or scenario_dir() / "scheduler_perf" / "performance-config.yaml")
    tests = yaml.safe_load(path.read_text())
    if not isinstance(tests, list):
        raise ValueError(f"{path}: expected a list of tests")
    out = {}
    for i, test in enumerate(tests):
        where = f"{path}: test [{i}]"
        if not isinstance(test, Mapping) or not all(k in test for k in TEST_FIELDS):
            raise ValueError(f"{where}: needs name, workloadTemplate and workloads")
        where = f"{where} ({test['name']})"
        _check_fields(test, TEST_FIELDS, where)
        for j, op in enumerate(test["workloadTemplate"]):
            _check_op(op, f"{where}.workloadTemplate[{j}]")
        for j, workload in enumerate(test["workloads"]):
            _check_workload(workload, f"{where}.workloads[{j}]")
        out[test["name"]] = {**test, "_dir": path.parent}
    return out


def _check_fields(obj: Mapping, allowed: tuple[str, ...], where: str) -> None:
    unknown = [k for k in obj if k not in allowed]
    if unknown:
        raise ValueError(f"{where}.{unknown[0]}: unknown field (not modelled); allowed: {', '.join(allowed)}")


def _check_op(op, where: str) -> None:
    """An op's opcode, fields and (churn) values, as scheduler_perf.go's op types take them."""
    if not isinstance(op, Mapping) or op.get("opcode") not in OPS:
        got = op.get("opcode") if isinstance(op, Mapping) else op
        raise ValueError(f"{where}.opcode: must be one of {', '.join(OPCODES)}; got {got!r}")
    _check_fields(op, ("opcode", *OPS[op["opcode"]]), where)
    if op["opcode"] != "churn":
        return
    if op.get("mode") not in CHURN_MODES:
        raise ValueError(f"{where}.mode: must be one of {', '.join(CHURN_MODES)}; got {op.get('mode')!r}")
    for name in ("number", "intervalMilliseconds"):
        value = op.get(name, 0)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{where}.{name}: expected an integer >= 0; got {value!r}")
    if op["mode"] == "recreate" and op.get("number", 0) < 1:
        raise ValueError(f"{where}.number: mode recreate cycles through number >= 1 objects; got {op.get('number')!r}")
    paths = op.get("templatePaths")
    if not isinstance(paths, list) or not paths or not all(isinstance(p, str) and p for p in paths):
        raise ValueError(f"{where}.templatePaths: a non-empty list of template files; got {paths!r}")


def _check_workload(workload, where: str) -> None:
    if not isinstance(workload, Mapping) or "name" not in workload or "params" not in workload:
        raise ValueError(f"{where}: needs name and params")
    _check_fields(workload, WORKLOAD_FIELDS, where)
    bad = [label for label in workload.get("labels", []) if label not in LABELS]
    if bad:
        raise ValueError(f"{where}.labels: unknown label {bad[0]!r}; allowed: {', '.join(LABELS)}")


def workload_names() -> list[str]:
    """Every ``Test/Workload`` name."""
    return [f"{t}/{w['name']}" for t, test in load_tests().items() for w in test["workloads"]]


def throughput_samples(bound: list[float], start: float, end: float) -> list[float]:
    """scheduler_perf's SchedulingThroughput samples (pods/s) of pods bound at the given times."""
    bound = sorted(bound)
    samples: list[float] = []
    last_count, last_time, started, skipped = 0, start, False, 0
    i, tick = 0, start
    while tick < end + SAMPLE_INTERVAL:
        tick += SAMPLE_INTERVAL
        while i < len(bound) and bound[i] <= tick:
            i += 1
        if i == last_count:
            skipped += 1
            continue
        if not started:  # the first sample is likely an outlier
            started, last_count, last_time, skipped = True, i, tick, 0
            continue
        rate = (i - last_count) / (tick - last_time)
        samples += [rate] * (skipped + 1)
        last_count, last_time, skipped = i, tick, 0
    return samples


def summarize(samples: list[float]) -> dict[str, float]:
    """Average and Perc50/90/95/99 as scheduler_perf's collector reports them."""
    if not samples:
        return {k: math.nan for k in ("Average", "Perc50", "Perc90", "Perc95", "Perc99")}
    s = sorted(samples)
    out = {"Average": sum(s) / len(s)}
    for q in (50, 90, 95, 99):
        out[f"Perc{q}"] = s[math.ceil(len(s) * q / 100) - 1]
    return out


@dataclass
class WorkloadResult:
    """One scheduler_perf workload's outcome: SchedulingThroughput (scheduler_perf's samples and percentiles)
    against its CI threshold, and the simulated cycle costs behind it."""

    name: str
    threshold: float | None
    throughput: dict[str, float]
    samples: list[float]
    scheduled: int
    measured: int
    sim_seconds: float
    wall_seconds: float
    decision_wall_seconds: float
    cycles: int
    failed_cycles: int
    unschedulable: dict[str, str] = field(default_factory=dict)
    cost_parts: dict[str, float] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    """Creation to binding, per measured pod (simulated seconds)."""
    preemptions: int = 0
    """Scheduling cycles whose PostFilter (DefaultPreemption) nominated a node."""
    victims: int = 0
    """Pods those preemptions evicted."""


class WorkloadIncomplete(RuntimeError):
    """A workload whose createPods op did not see all its pods scheduled in time (upstream's test fails); ``result``
    is what it measured until then."""

    def __init__(self, workload: str, reason: str, result: WorkloadResult) -> None:
        super().__init__(f"{workload}: {reason}")
        self.workload, self.reason, self.result = workload, reason, result

    def __reduce__(self):  # pickled whole (a process pool or Dask worker may raise it)
        return type(self), (self.workload, self.reason, self.result)


class _Run:
    def __init__(self, test: dict, params: dict, config: SchedulerConfig, profile: Profile, seed: int) -> None:
        self.test, self.params, self.dir = test, params, test["_dir"]
        self.engine, self.streams = Engine(), Streams(seed)
        self.state = ClusterState()
        self.scheduler = Scheduler(self.engine, self.state, config, profile, self.streams)
        self.names: dict[str, int] = {}
        self.measured: list[str] = []
        self.measure_start: float | None = None
        self.failure = ""
        """Why the workload failed (a createPods op whose pods were not all scheduled in time), or empty."""

    def _count(self, op: dict, where: str) -> int:
        if "count" in op:
            return int(op["count"])
        key = str(op.get("countParam", "")).lstrip("$")
        if key not in self.params:
            raise ValueError(
                f"{where}: countParam {op.get('countParam')!r} has no value; params: {', '.join(self.params)}"
            )
        return int(self.params[key])

    def _template(self, rel: str) -> dict:
        return yaml.safe_load((self.dir / rel).read_text())

    def _named(self, manifest: dict, kind: str) -> dict:
        m = copy.deepcopy(manifest)
        meta = m.setdefault("metadata", {})
        if "name" not in meta:
            prefix = meta.get("generateName", kind.lower() + "-")
            self.names[prefix] = self.names.get(prefix, 0) + 1
            meta["name"] = f"{prefix}{self.names[prefix]}"
        if kind == "Node":
            status = m.setdefault("status", {})
            status.setdefault("allocatable", status.get("capacity", {}))
        return m

    def create_nodes(self, op: dict, where: str) -> None:
        template = self._template(op["nodeTemplatePath"])
        strategy = op.get("labelNodePrepareStrategy")
        nodes = []
        for i in range(self._count(op, where)):
            m = self._named(template, "Node")
            if strategy:  # testutils labelNodePrepareStrategy: values assigned round-robin
                values = strategy["labelValues"]
                m["metadata"].setdefault("labels", {})[strategy["labelKey"]] = values[i % len(values)]
            nodes.append(Node.from_manifest(m))
        self.scheduler.add_nodes(nodes)

    def create_pods(self, op: dict, where: str):
        template = self._template(op["podTemplatePath"])
        pods = [Pod.from_manifest(self._named(template, "Pod")) for _ in range(self._count(op, where))]
        if op.get("collectMetrics"):
            self.measured = [p.key for p in pods]
            self.measure_start = self.engine.now
        for pod in pods:
            self.scheduler.add_pod(pod)
        # waitUntilPodsScheduledInNamespace: every pod scheduled, else the workload fails after the timeout naming
        # a pod still pending (polled every tenth of the throughput sample; upstream polls every second)
        records, keys, first = self.scheduler.stats.pods, [p.key for p in pods], 0
        deadline = self.engine.now + WAIT_FOR_PODS_TIMEOUT
        while True:
            while first < len(keys) and records[keys[first]].bound is not None:
                first += 1  # the first pod not yet bound (pods bound out of order are passed over once)
            if first == len(keys):
                return
            if self.engine.now >= deadline:  # upstream names an attempted pod first, else an unattempted one
                pending = [k for k in keys[first:] if records[k].bound is None]
                named = next((k for k in pending if records[k].message), pending[0])
                self.failure = (
                    f"{where}: at least pod {named} is not scheduled after {WAIT_FOR_PODS_TIMEOUT:g} simulated "
                    f"seconds ({len(pending)} of {len(keys)} pending): {records[named].message or 'never attempted'}"
                )
                return
            yield SAMPLE_INTERVAL / 10

    def _create(self, template: dict) -> tuple[str, str]:
        """Create one object of a churn template: ``("Node", name)`` or ``("Pod", key)``."""
        if template.get("kind") == "Node":
            node = Node.from_manifest(self._named(template, "Node"))
            self.scheduler.add_nodes([node])
            return "Node", node.name
        pod = Pod.from_manifest(self._named(template, "Pod"))
        self.scheduler.add_pod(pod)
        return "Pod", pod.key

    def churn(self, op: dict, where: str):
        """scheduler_perf's churnOp (``mode`` checked when the tests were read; intervalMilliseconds default
        500). create: every interval (a ticker: the first after one interval) one object of each template, until
        ``number`` rounds (0: no limit). recreate: create ``number`` of each, then delete them an interval later."""
        templates = [self._template(p) for p in op["templatePaths"]]
        interval = float(op.get("intervalMilliseconds") or 500) / 1000  # 0 or unset: churnOp's 500 ms default
        if op["mode"] == "create":
            rounds = 0
            while not op.get("number") or rounds < op["number"]:
                yield interval
                for template in templates:
                    self._create(template)
                rounds += 1
            return
        while True:
            created = [self._create(t) for t in templates for _ in range(op["number"])]
            yield interval
            for kind, name in created:
                if kind == "Pod":
                    self.scheduler.delete_pod(name)
                # a churned node has no capacity and is never chosen; it stays (deleting nodes is not modelled)

    def run(self):
        for j, op in enumerate(self.test["workloadTemplate"]):
            where = f"{self.test['name']}.workloadTemplate[{j}]"
            if op["opcode"] == "createNodes":
                self.create_nodes(op, where)
            elif op["opcode"] == "createPods":
                yield from self.create_pods(op, where)
                if self.failure:  # the workload stops at its failed op, as upstream's Fatalf does
                    return
            else:
                self.engine.process(self.churn(op, where), name="churn")


def run_workload(
    name: str,
    params: Mapping[str, int] | None = None,
    config: SchedulerConfig | None = None,
    profile: Profile | None = None,
    seed: int = 0,
    scale: float = 1.0,
) -> WorkloadResult:
    """Run ``Test/Workload`` (e.g. ``SchedulingBasic/5000Nodes_10000Pods``) and measure its throughput.

    ``params`` overrides the workload's parameters; ``scale`` multiplies every count (for quick runs).

    Raises
    ------
    WorkloadIncomplete
        When a createPods op's pods are not all scheduled within :data:`WAIT_FOR_PODS_TIMEOUT` simulated seconds
        (the message names the op, the first pod still pending and its FitError; ``.result`` holds what was
        measured).
    """
    tests = load_tests()
    test_name, _, workload_name = name.partition("/")
    if test_name not in tests:
        raise ValueError(f"unknown scheduler_perf test {test_name!r}; valid: {', '.join(tests)}")
    workloads = {w["name"]: w for w in tests[test_name]["workloads"]}
    if workload_name not in workloads:
        raise ValueError(f"unknown workload {workload_name!r} of {test_name}; valid: {', '.join(workloads)}")
    workload = workloads[workload_name]
    merged = {**workload["params"], **(params or {})}
    merged = {k: max(1, int(round(v * scale))) for k, v in merged.items()}
    try:
        run = _Run(tests[test_name], merged, config or parse_config(), profile or load_profile(), seed)
    except ManifestError as err:
        raise ValueError(f"{name}: {err}") from None
    started = time.perf_counter()
    done = run.engine.process(run.run(), name=name)
    run.engine.run(until=done)
    wall = time.perf_counter() - started
    records = run.scheduler.stats.pods
    placed = [(t, records[k].created) for k in run.measured if (t := records[k].bound) is not None]
    bound = [t for t, _ in placed]
    start = run.measure_start or 0.0
    samples = throughput_samples(bound, start, max(bound, default=start))
    stats = run.scheduler.stats
    result = WorkloadResult(
        name=name,
        threshold=workload.get("threshold"),
        throughput=summarize(samples),
        samples=samples,
        scheduled=len(bound),
        measured=len(run.measured),
        sim_seconds=run.engine.now,
        wall_seconds=wall,
        decision_wall_seconds=stats.decision_wall_seconds,
        cycles=stats.cycles,
        failed_cycles=stats.failed_cycles,
        unschedulable={k: r.message for k, r in records.items() if r.bound is None and r.message},
        cost_parts=dict(stats.cost_parts),
        latencies=[t - created for t, created in placed],
        preemptions=stats.preemptions,
        victims=stats.victims,
    )
    if run.failure:
        raise WorkloadIncomplete(name, run.failure, result)
    return result


def basic_cluster(nodes: int, percentage: int, seed: int) -> tuple[KernelScheduler, dict]:
    """SchedulingBasic's cluster (node-default.yaml nodes) and its pod template."""
    templates = load_tests()["SchedulingBasic"]["_dir"] / "templates"
    node_t = yaml.safe_load((templates / "node-default.yaml").read_text())
    node_t["status"]["allocatable"] = node_t["status"]["capacity"]
    state = ClusterState(Node.from_manifest({**node_t, "metadata": {"name": f"node-{i}"}}) for i in range(nodes))
    config = parse_config({"percentageOfNodesToScore": percentage})
    return KernelScheduler(Framework(config.profile(), state, percentage, seed)), yaml.safe_load(
        (templates / "pod-default.yaml").read_text()
    )


def basic_pods(template: dict, start: int, count: int) -> list[Pod]:
    """Pods ``pod-<start>`` ... of SchedulingBasic's pod template."""
    return [Pod.from_manifest({**template, "metadata": {"name": f"pod-{i}"}}) for i in range(start, start + count)]
