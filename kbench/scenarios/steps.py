"""Running a scenario: build the cluster, create its objects, run its steps in order on the engine, drain,
and collect the SLIs. Requests are paced at each step's ``rate`` and sent without waiting for their
answers, as ClusterLoader2's creators do; the driver's own client is not rate limited."""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable, Generator, Iterator, Mapping
from typing import Any

import orjson
from tqdm.auto import tqdm

from kbench.apiserver.objects import KINDS, object_key
from kbench.cluster import Cluster
from kbench.metrics.slis import RunResult, collect, listing
from kbench.node.probes import ANNOTATION
from kbench.sim import collector
from kbench.sim.engine import Event

ADVANCE_EVERY = 10.0
"""Simulated seconds between two progress reports (the bar, ``on_advance``) of :func:`run_scenario`."""

PAUSE_POD: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"labels": {"group": "density"}},
    "spec": {
        "containers": [
            {
                "name": "pause",
                "image": "registry.k8s.io/pause:3.10",
                "resources": {"requests": {"cpu": "10m", "memory": "10Mi"}},
            }
        ],
        "terminationGracePeriodSeconds": 1,
    },
}
"""ClusterLoader2's density pod: the pause image with small requests (testing/density/pod.yaml shape)."""

Body = Generator[float | Event, Any, None]
"""A process body of the driver: it yields seconds to sleep or an :class:`~kbench.sim.engine.Event` to wait for."""


def total(count: int | None, share: float | None, of: int) -> int:
    """``count`` when a step gives it, else ``share`` of ``of`` (rounded): the spec checks that it gives one."""
    if count is not None:
        return count
    if share is None:
        raise ValueError("a step gives a count or a share (perNode, fraction); this one gives neither")
    return round(share * of)


class Driver:
    """ClusterLoader2's role on the modelled cluster: creates a scenario's objects, then runs its steps as an
    engine process, through the ``clusterloader`` client."""

    def __init__(self, cluster: Cluster, scenario) -> None:
        self.cluster, self.scenario = cluster, scenario
        self.engine, self.client = cluster.engine, cluster.admin
        self.step = 0
        self.errors: dict[str, int] = {}
        self.problems: list[str] = []
        """What a step waited for and did not get (a timed-out wait): the run fails with these."""
        self.shortfalls: dict[str, int] | None = None
        """Each watched PodDisruptionBudget's worst shortfall (``watchDisruptionBudgets``; None: not watched)."""
        self._outstanding = 0
        self._answered: Event | None = None

    # -- requests -------------------------------------------------------------------------------------------
    def _send(
        self, verb: str, resource: str, on_answer: Callable[[Any, float], object] | None = None, **kwargs
    ) -> None:
        """Send without waiting (:meth:`_settled` waits for every answer); API errors are counted by reason;
        ``on_answer(result, delay)`` gets the answer (None after an error)."""

        def done(result, error, delay):
            if error is not None:
                self.errors[error.reason] = self.errors.get(error.reason, 0) + 1
            if on_answer is not None:
                on_answer(result, delay)
            self._outstanding -= 1
            if not self._outstanding and self._answered is not None:
                self.engine.schedule(delay, self._answered.succeed)
                self._answered = None

        self._outstanding += 1
        self.client.request(verb, resource, done, **kwargs)

    def _settled(self) -> Generator[Event, Any, None]:
        """Process body: wait until every request sent so far has been answered (CL2 waits for its calls)."""
        if self._outstanding:
            self._answered = self.engine.event()
            yield self._answered

    def _call(self, verb: str, resource: str, **kwargs) -> Generator[Event, Any, Any]:
        """Process body: the request's answer (None after counting an error)."""
        answered = self.engine.event()
        self._send(
            verb, resource, lambda result, delay: self.engine.schedule(delay, answered.succeed, result), **kwargs
        )
        return (yield answered)

    def _namespace(self, ns: str) -> Body:
        """Create ``ns`` if needed and wait for its default ServiceAccount (pods need it)."""
        caches = self.cluster.api.caches
        if caches["namespaces"].get(ns) is None:
            yield from self._call(
                "create", "namespaces", body={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}
            )
        while caches["serviceaccounts"].get(f"{ns}/default") is None:
            yield 0.1

    def _paced(self, count: int, rate: float, send: Callable[[int], None]) -> Body:
        for i in range(count):
            send(i)
            if rate > 0 and i + 1 < count:
                yield 1.0 / rate
        yield from self._settled()

    # -- the run --------------------------------------------------------------------------------------------
    def run(self) -> Body:
        """Process body: every step in order, then the drain; records what went wrong in ``problems``."""
        for obj in self.scenario.objects:
            res = KINDS[obj["kind"]]
            if res.namespaced:
                yield from self._namespace(obj["metadata"].get("namespace", "default"))
            if res.name != "namespaces" or self.cluster.api.caches["namespaces"].get(obj["metadata"]["name"]) is None:
                yield from self._call("create", res.name, body=obj)
        for i, step in enumerate(self.scenario.steps):
            self.step = i
            yield from getattr(self, f"_{step.action}")(**step.args)
        self.step = len(self.scenario.steps)

    @staticmethod
    def _pod(template: Mapping | None, behavior: Mapping | None, ns: str, name: str) -> dict:
        """A pod of ``template``: its own top level and metadata, the rest shared with the template and so with every
        pod made from it (a body is never changed once sent, nor a stored object: ``registry.own``)."""
        template = template or PAUSE_POD
        meta = {**template.get("metadata", {}), "name": name, "namespace": ns}
        if behavior:
            meta["annotations"] = {**meta.get("annotations", {}), ANNOTATION: json.dumps(dict(behavior))}
        pod = dict(template)
        pod.setdefault("apiVersion", "v1")
        pod["kind"] = "Pod"
        pod["metadata"] = meta
        return pod

    def _createPods(
        self,
        count: int | None = None,
        perNode: int | None = None,
        rate: float = 0,
        namespace: str = "default",
        template: Mapping | None = None,
        behavior: Mapping | None = None,
    ) -> Body:
        yield from self._namespace(namespace)
        prefix = f"pod-{self.step}"
        yield from self._paced(
            total(count, perNode, self.cluster.spec.nodes),
            rate,
            lambda i: self._send("create", "pods", body=self._pod(template, behavior, namespace, f"{prefix}-{i}")),
        )

    def _createObjects(self, template: Mapping, count: int = 1, rate: float = 0, namespace: str | None = None) -> Body:
        kind = template["kind"]  # checked when the scenario was read
        res = KINDS[kind]
        ns = namespace or template.get("metadata", {}).get("namespace", "default")
        if res.namespaced:
            yield from self._namespace(ns)
        name = template.get("metadata", {}).get("name", kind.lower())

        blob = orjson.dumps(template)

        def send(i: int) -> None:
            obj = orjson.loads(blob.replace(b"{i}", str(i).encode()))  # '{i}' anywhere is the index
            meta = obj.setdefault("metadata", {})
            if "{i}" not in name and count > 1:
                meta["name"] = f"{name}-{i}"
            if res.namespaced:
                meta["namespace"] = ns
            self._send("create", res.name, body=obj)

        yield from self._paced(count, rate, send)

    def _deleteObjects(
        self,
        resource: str,
        namespace: str = "",
        count: int | None = None,
        rate: float = 0,
        labelSelector: Mapping | None = None,
    ) -> Body:
        listed = yield from self._call(
            "list",
            resource,
            namespace=namespace,
            label_selector={"matchLabels": dict(labelSelector)} if labelSelector else None,
        )
        items = [o for o in (listed or {}).get("items", []) if not o["metadata"].get("deletionTimestamp")]
        items = items[:count] if count is not None else items
        yield from self._paced(
            len(items),
            rate,
            lambda i: self._send(
                "delete",
                resource,
                namespace=items[i]["metadata"].get("namespace", ""),
                name=items[i]["metadata"]["name"],
            ),
        )

    def _churn(
        self,
        rate: float,
        duration: float,
        lifetime: float = 30.0,
        namespace: str = "default",
        template: Mapping | None = None,
    ) -> Body:
        """Every 1/rate s a pod is created; each is deleted ``lifetime`` s after (about rate x lifetime live)."""
        yield from self._namespace(namespace)
        prefix = f"churn-{self.step}"
        for i in range(int(rate * duration)):
            name = f"{prefix}-{i}"
            self._send("create", "pods", body=self._pod(template, None, namespace, name))
            self.engine.schedule(lifetime, lambda n: self._send("delete", "pods", namespace=namespace, name=n), name)
            yield 1.0 / rate

    def _stopNodes(
        self,
        count: int | None = None,
        fraction: float | None = None,
        restartAfter: float | None = None,
        mode: str = "partition",
    ) -> Body:
        kubelets = [k for k in self.cluster.kubelets if k.running]
        n = total(count, fraction, len(self.cluster.kubelets))
        rng = self.cluster.streams.python(f"scenario/stopNodes/{self.step}")
        chosen = rng.sample(kubelets, min(n, len(kubelets)))
        for kubelet in chosen:
            kubelet.stop(shutdown=mode == "shutdown")

        def restart(_: Any) -> None:
            for kubelet in chosen:
                kubelet.restart()

        if restartAfter is not None:
            self.engine.schedule(restartAfter, restart)
        yield 0.0

    def _rollingUpdate(self, deployment: str, image: str, namespace: str = "default") -> Body:
        current = yield from self._call("get", "deployments", namespace=namespace, name=deployment)
        if current is None:
            raise ValueError(f"step {self.step}: rollingUpdate.deployment: {namespace}/{deployment} not found")
        body = copy.deepcopy(dict(current))
        for c in body["spec"]["template"]["spec"]["containers"]:
            c["image"] = image
        yield from self._call("update", "deployments", namespace=namespace, body=body)

    def _scale(self, deployment: str, replicas: int, namespace: str = "default") -> Body:
        yield from self._call(
            "patch", "deployments", namespace=namespace, name=deployment, body={"spec": {"replicas": replicas}}
        )

    def _wait(self, seconds: float) -> Body:
        yield float(seconds)

    def _waitForPods(self, timeout: float = 600.0, namespace: str | None = None) -> Body:
        """Until no pod is Pending and no Deployment / ReplicaSet is short of ready replicas (CL2's
        WaitForControlledPodsRunning)."""
        pending, caches = self.cluster.watcher.pending, self.cluster.api.caches

        def ours(key: str) -> bool:
            return namespace is None or key.startswith(f"{namespace}/")

        def short() -> Iterator[str]:
            return (
                f"{resource[:-1]} {key}"
                for resource in ("deployments", "replicasets")
                for key, (obj, _, _) in caches[resource].objects.items()
                if ours(key) and (obj.get("status") or {}).get("readyReplicas", 0) < obj["spec"].get("replicas", 1)
            )

        yield from self._until(
            "waitForPods",
            timeout,
            lambda: any(map(ours, pending)) or next(short(), None),
            lambda: (
                listing([k for k in pending if ours(k)], "pod", "not Running")
                or listing(list(short()), "controller", "short of ready replicas")
            ),
        )

    def _waitForLoadBalancers(self, timeout: float = 1800.0, namespace: str | None = None) -> Body:
        """Until every LoadBalancer Service has an ingress address (the cloud has provisioned it)."""
        services = self.cluster.api.caches["services"].objects

        def waiting() -> list[str]:
            return [
                object_key(o)
                for o, _, _ in services.values()
                if o["spec"].get("type") == "LoadBalancer"
                and (namespace is None or o["metadata"]["namespace"] == namespace)
                and not ((o.get("status") or {}).get("loadBalancer") or {}).get("ingress")
            ]

        yield from self._until(
            "waitForLoadBalancers",
            timeout,
            waiting,
            lambda: listing(waiting(), "LoadBalancer Service", "without an ingress address"),
        )

    def _watchDisruptionBudgets(self, namespace: str | None = None, timeout: float = 120.0) -> Body:
        """Once every PodDisruptionBudget (of ``namespace``) is met, sample each one's status every simulated
        second to the end of the run: its shortfall is how far ``currentHealthy`` is below ``desiredHealthy``, as
        the disruption controller counts them (pkg/controller/disruption: DisruptionAllowed False, InsufficientPods);
        the run reports the worst of each (:meth:`budget_counts`)."""
        budgets = self.cluster.api.caches["poddisruptionbudgets"].objects
        prefix = "" if namespace is None else f"{namespace}/"

        def shortfalls() -> dict[str, int]:
            """Each budget's shortfall, once the disruption controller has given it a status."""
            return {
                key: max(0, status.get("desiredHealthy", 0) - status.get("currentHealthy", 0))
                for key, (obj, _, _) in budgets.items()
                if key.startswith(prefix) and "desiredHealthy" in (status := obj.get("status") or {})
            }

        def unmet() -> list[str]:
            seen = shortfalls()
            return [key for key in budgets if key.startswith(prefix) and seen.get(key, 1)]

        yield from self._until("watchDisruptionBudgets", timeout, unmet, lambda: listing(unmet(), "budget", "not met"))
        worst: dict[str, int] = {}
        self.shortfalls = worst

        def sample() -> Body:
            while True:
                for key, short in shortfalls().items():
                    worst[key] = max(worst.get(key, 0), short)
                yield 1.0

        self.engine.process(sample(), name="scenario/disruption-budgets")

    def budget_counts(self) -> dict[str, int]:
        """``pdb_violations`` (the watched budgets' worst shortfalls, summed) and ``pdbs_violated`` (how many fell
        short), when a step watched them."""
        if self.shortfalls is None:
            return {}
        return {
            "pdb_violations": sum(self.shortfalls.values()),
            "pdbs_violated": sum(1 for short in self.shortfalls.values() if short),
        }

    def _until(
        self, action: str, timeout: float, unmet: Callable[[], object], describe: Callable[[], str | None]
    ) -> Body:
        """Process body: check ``unmet()`` every simulated second until it is falsy; after ``timeout`` s the run
        fails with ``describe()`` (what it still waits for)."""
        deadline = self.engine.now + timeout
        while self.engine.now < deadline:
            if not unmet():
                return
            yield 1.0
        self.problems.append(f"steps[{self.step}] {action}: timed out after {timeout:g} s; {describe()}")


def run_scenario(scenario, progress: bool = True, on_advance=None) -> RunResult:
    """Build the scenario's cluster, run it, and collect its SLIs (``result.cluster`` keeps the cluster);
    ``on_advance(simulated_seconds)`` is called every :data:`ADVANCE_EVERY` simulated seconds. The whole run, from the
    cluster's build to the SLIs read, runs as :func:`kbench.sim.collector.long_run` says; its wall time
    (``result.wall_seconds``) starts after ``long_run``'s first collection, which frees what the process dropped
    before (in a sweep's worker, the previous point's cluster)."""
    with collector.long_run():
        started = time.perf_counter()
        cluster = Cluster(scenario.cluster)
        begin = cluster.settle()
        driver = Driver(cluster, scenario)
        process = cluster.engine.process(driver.run(), name=f"scenario/{scenario.name}")
        bar = tqdm(total=len(scenario.steps), desc=f"scenario {scenario.name}", unit="step", disable=not progress)
        settle = collector.Settler(cluster.engine)
        try:
            while not process.processed:
                cluster.engine.run(until=cluster.engine.now + ADVANCE_EVERY)
                settle()
                bar.update(driver.step - bar.n)
                bar.set_postfix(sim_s=f"{cluster.engine.now:.0f}")
                if on_advance is not None:
                    on_advance(cluster.engine.now)
            if not process.ok:
                raise process.value
            cluster.engine.run(until=cluster.engine.now + scenario.drain)
        finally:
            bar.close()
        # the SLIs are read under the run's collector settings too: once they end, the first full collection scans
        # every object the run left (4.4 s at 5,000 nodes x 6 pods). The cluster is a web of reference cycles, so
        # a caller that drops it pays that scan once, at its next full collection (the next run's start, or the
        # exit of a process that does not skip it: collector.skip_final_collection)
        result = collect(cluster, time.perf_counter() - started, begin, driver.problems, scenario.measure)
    result.counts.update({f"api_errors_{k}": v for k, v in sorted(driver.errors.items())})
    result.counts.update(driver.budget_counts())
    stats = cluster.scheduler.stats
    result.counts.update(preemptions=stats.preemptions, victims=stats.victims)
    result.cluster = cluster
    return result
