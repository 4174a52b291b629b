"""Built-in scenarios (the Python API); each returns a :class:`Scenario` to ``run()`` or ``to_dict()``.

ClusterLoader2's density and load tests (testing/density, testing/load in kubernetes/perf-tests), a
scheduler_perf workload on the whole cluster, preemption, and the failure and rollout scenarios users ask about.
Each built-in's own parameters are typed and bounded (:class:`kbench.params.Param`, the sweeps' check);
keyword arguments not among them go to the cluster (:class:`kbench.cluster.ClusterSpec` fields, checked by
``ClusterSpec.check``). Anything else is refused with the list of valid names.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields

import yaml

from kbench.cluster import MAX_NODES, MAX_PODS_PER_NODE, ClusterSpec
from kbench.params import Param
from kbench.scenarios.spec import MAX_RATE, Scenario

CLUSTER_FIELDS = tuple(f.name for f in fields(ClusterSpec))
NODES = Param("nodes", int, "nodes in the cluster", minimum=1, maximum=MAX_NODES)
"""The cluster's size, with the same bounds as the cluster sweep's ``nodes``."""


@dataclass(frozen=True)
class Builtin:
    """A built-in scenario: its builder, its parameters and their defaults."""

    name: str
    build: Callable[..., Scenario]
    params: tuple[Param, ...]

    @property
    def doc(self) -> str:
        """The first line of the builder's docstring."""
        return (self.build.__doc__ or "").splitlines()[0]

    def defaults(self) -> dict:
        """Each own parameter's default value."""
        signature = inspect.signature(self.build).parameters
        return {p.name: signature[p.name].default for p in self.params}

    def check(self, kwargs: dict) -> dict:
        """``kwargs`` with every own parameter converted and bounded; errors list the valid names."""
        own = {p.name: p for p in self.params}
        unknown = sorted(set(kwargs) - set(own) - set(CLUSTER_FIELDS))
        if unknown:
            raise ValueError(
                f"scenario {self.name!r}: no parameter {unknown[0]!r}; valid: {', '.join(own)}; "
                f"cluster fields: {', '.join(f for f in CLUSTER_FIELDS if f not in own)}"
            )
        return {k: own[k].check(v) if k in own else v for k, v in kwargs.items()}

    def __call__(self, *args, **kwargs) -> Scenario:
        """The scenario, after checking every argument (positional ones are bound to their names)."""
        bound = inspect.signature(self.build).bind(*args, **kwargs).arguments
        cluster = bound.pop("cluster", {})
        return self.build(**self.check({**bound, **cluster}))

    def describe(self) -> list[str]:
        """``name: summary`` then one line per parameter with its default (``kbench scenario list``)."""
        defaults = self.defaults()
        return [
            f"{self.name}: {self.doc}",
            *(f"    {p.name} = {defaults[p.name]!r}: {p.help} ({p.allowed()})" for p in self.params),
            f"    (and cluster fields: {', '.join(f for f in CLUSTER_FIELDS if f not in defaults)})",
        ]


SCENARIOS: dict[str, Builtin] = {}


def builtin(name: str, *params: Param):
    """Register a built-in under ``name``; every call checks its parameters (Python API and ``--set`` alike)."""

    def register(build: Callable[..., Scenario]) -> Callable[..., Scenario]:
        entry = SCENARIOS[name] = Builtin(name, build, params)

        @functools.wraps(build)
        def checked(*args, **kwargs) -> Scenario:
            return entry(*args, **kwargs)

        return checked

    return register


def built_in_scenario(
    name: str,
    steps: list[dict],
    drain: float = 30.0,
    objects: list[dict] | None = None,
    measure: dict | None = None,
    spec: ClusterSpec | None = None,
    **cluster,
) -> Scenario:
    """A built-in's Scenario: its cluster (``spec``, or one made from ``cluster`` and checked), objects created
    before the steps, measurements and steps."""
    if spec is None:
        spec = ClusterSpec(**cluster)
        spec.check()
    return Scenario(name, spec, [], objects or [], drain=drain, measure=measure or {}).add_steps(steps)


def deployment(name: str, replicas: int, image: str = "registry.k8s.io/pause:3.10", probe: bool = True) -> dict:
    """A Deployment manifest whose pods carry ``app: <name>`` (and a readiness probe unless ``probe`` is off)."""
    container = {"name": "app", "image": image, "resources": {"requests": {"cpu": "10m", "memory": "10Mi"}}}
    if probe:
        container["readinessProbe"] = {"httpGet": {"path": "/", "port": 8080}, "periodSeconds": 10}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [container], "terminationGracePeriodSeconds": 1},
            },
        },
    }


def service(name: str, app: str, kind: str = "ClusterIP") -> dict:
    """A Service manifest selecting ``app: <app>`` on port 80 -> 8080."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {"type": kind, "selector": {"app": app}, "ports": [{"port": 80, "targetPort": 8080}]},
    }


@builtin(
    "density",
    NODES,
    Param("pods_per_node", int, "pods per node", minimum=0, maximum=MAX_PODS_PER_NODE),
    Param("rate", float, "pods created per second (0: all at once)", minimum=0, maximum=MAX_RATE),
)
def density(nodes: int = 100, pods_per_node: int = 30, rate: float = 20.0, **cluster) -> Scenario:
    """CL2 density: pause pods created at ``rate`` per second up to ``pods_per_node`` per node."""
    return built_in_scenario(
        "density",
        [
            {"createPods": {"perNode": pods_per_node, "rate": rate, "namespace": "density"}},
            {"waitForPods": {"timeout": 3600}},
        ],
        nodes=nodes,
        **cluster,
    )


@builtin(
    "load",
    NODES,
    Param("deployments", int, "Deployments, a Service each", minimum=0, maximum=10_000),
    Param("replicas", int, "replicas per Deployment", minimum=0, maximum=10_000),
    Param("churn", float, "pods created and deleted per second after (0: none)", minimum=0, maximum=MAX_RATE),
    Param("duration", float, "seconds of churn", minimum=0, maximum=86_400),
)
def load(
    nodes: int = 100, deployments: int = 10, replicas: int = 10, churn: float = 5.0, duration: float = 60.0, **cluster
) -> Scenario:
    """CL2 load: Deployments with a Service each, then pod churn at ``churn`` pods/s for ``duration`` s."""
    steps = [
        {
            "createObjects": {
                "template": deployment("app-{i}", replicas),
                "count": deployments,
                "rate": 5,
                "namespace": "load",
            }
        },
        {
            "createObjects": {
                "template": service("svc-{i}", "app-{i}"),
                "count": deployments,
                "rate": 5,
                "namespace": "load",
            }
        },
        {"waitForPods": {"namespace": "load", "timeout": 600}},
    ]
    if churn > 0:
        steps.append({"churn": {"rate": churn, "duration": duration, "namespace": "load-churn"}})
    return built_in_scenario("load", steps, nodes=nodes, **cluster)


@builtin(
    "node-failure",
    NODES,
    Param("fraction", float, "share of nodes that fail", minimum=0, maximum=1),
    Param("replicas", int, "replicas of the Deployment", minimum=0, maximum=100_000),
    Param(
        "downtime", float, "seconds until the nodes come back (null: never)", minimum=0, maximum=86_400, nullable=True
    ),
    Param(
        "mode",
        str,
        "partition: cut off, containers run on; shutdown: containers die too",
        choices=("partition", "shutdown"),
    ),
)
def node_failure(
    nodes: int = 50,
    fraction: float = 0.1,
    replicas: int = 200,
    downtime: float | None = None,
    mode: str = "partition",
    **cluster,
) -> Scenario:
    """A share of nodes fails: NotReady after the grace period, taints, eviction at +300 s, replacements.

    ``mode``: ``partition`` (cut off; containers keep running) or ``shutdown`` (containers die too)."""
    stop = {"fraction": fraction, "mode": mode, **({"restartAfter": downtime} if downtime is not None else {})}
    return built_in_scenario(
        "node-failure",
        [
            {"createObjects": {"template": deployment("web", replicas, probe=False), "namespace": "apps"}},
            {"waitForPods": {"namespace": "apps", "timeout": 600}},
            {"stopNodes": stop},
            {"wait": {"seconds": 420}},
            {"waitForPods": {"namespace": "apps", "timeout": 600}},
        ],
        nodes=nodes,
        **cluster,
    )


@builtin("rolling-update", NODES, Param("replicas", int, "replicas of the Deployment", minimum=1, maximum=100_000))
def rolling_update(nodes: int = 20, replicas: int = 50, **cluster) -> Scenario:
    """A Deployment behind a Service rolls to a new image (maxSurge / maxUnavailable 25%)."""
    return built_in_scenario(
        "rolling-update",
        [
            {"createObjects": {"template": deployment("web", replicas, "nginx:1.27"), "namespace": "apps"}},
            {"createObjects": {"template": service("web", "web"), "namespace": "apps"}},
            {"waitForPods": {"namespace": "apps"}},
            {"rollingUpdate": {"deployment": "web", "image": "nginx:1.28", "namespace": "apps"}},
            {"wait": {"seconds": 120}},
        ],
        nodes=nodes,
        **cluster,
    )


@builtin(
    "job-waves",
    NODES,
    Param("waves", int, "Jobs, one after another", minimum=1, maximum=1000),
    Param("completions", int, "completions per Job", minimum=1, maximum=100_000),
    Param("parallelism", int, "parallelism per Job", minimum=1, maximum=100_000),
    Param("run_for", float, "seconds each pod runs", minimum=0, maximum=86_400),
    Param("gap", float, "seconds between waves", minimum=0, maximum=86_400),
)
def job_waves(
    nodes: int = 20,
    waves: int = 3,
    completions: int = 50,
    parallelism: int = 25,
    run_for: float = 20.0,
    gap: float = 60.0,
    **cluster,
) -> Scenario:
    """Waves of Jobs whose pods run ``run_for`` seconds and exit 0."""
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "wave"},
        "spec": {
            "completions": completions,
            "parallelism": parallelism,
            "ttlSecondsAfterFinished": 30,
            "template": {
                "metadata": {"annotations": {"kbench.io/behavior": f"exitAfter: {run_for}"}},
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [
                        {
                            "name": "work",
                            "image": "busybox:1.36",
                            "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}},
                        }
                    ],
                },
            },
        },
    }
    steps = []
    for w in range(waves):
        wave = yaml.safe_load(yaml.safe_dump(job))
        wave["metadata"]["name"] = f"wave-{w}"
        steps += [{"createObjects": {"template": wave, "namespace": "batch"}}, {"wait": {"seconds": gap}}]
    return built_in_scenario("job-waves", steps, nodes=nodes, **cluster)


@builtin(
    "load-balancers",
    NODES,
    Param("services", int, "LoadBalancer Services", minimum=1, maximum=10_000),
    Param("replicas", int, "replicas behind them", minimum=0, maximum=100_000),
)
def load_balancers(nodes: int = 20, services: int = 10, replicas: int = 5, **cluster) -> Scenario:
    """LoadBalancer Services over the modelled cloud (the cloud-controller-manager's service controller)."""
    cluster.setdefault("cloud", True)
    return built_in_scenario(
        "load-balancers",
        [
            {"createObjects": {"template": deployment("lb-app", replicas, probe=False), "namespace": "lb"}},
            {
                "createObjects": {
                    "template": service("lb-{i}", "lb-app", "LoadBalancer"),
                    "count": services,
                    "rate": 2,
                    "namespace": "lb",
                }
            },
            {"waitForPods": {"namespace": "lb"}},
            {"waitForLoadBalancers": {"namespace": "lb"}},
        ],
        nodes=nodes,
        **cluster,
    )


@builtin(
    "probe-storm",
    NODES,
    Param("pods_per_node", int, "pods per node", minimum=1, maximum=MAX_PODS_PER_NODE),
    Param("fails_after", float, "seconds until liveness probes fail", minimum=0, maximum=86_400),
)
def probe_storm(nodes: int = 20, pods_per_node: int = 10, fails_after: float = 30.0, **cluster) -> Scenario:
    """Liveness probes of every pod fail from ``fails_after`` s: restarts, CrashLoopBackOff, endpoint churn.

    Readiness flaps through the EndpointSlices to every kube-proxy."""
    template = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"labels": {"app": "storm"}},
        "spec": {
            "terminationGracePeriodSeconds": 1,
            "containers": [
                {
                    "name": "app",
                    "image": "registry.k8s.io/pause:3.10",
                    "livenessProbe": {
                        "httpGet": {"path": "/healthz", "port": 8080},
                        "periodSeconds": 5,
                        "failureThreshold": 3,
                    },
                    "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080}, "periodSeconds": 5},
                }
            ],
        },
    }
    return built_in_scenario(
        "probe-storm",
        [
            {"createObjects": {"template": service("storm", "storm"), "namespace": "storm"}},
            {
                "createPods": {
                    "perNode": pods_per_node,
                    "rate": 50,
                    "namespace": "storm",
                    "template": template,
                    "behavior": {"readyAfter": 5, "livenessFailsAfter": fails_after},
                }
            },
            {"wait": {"seconds": 300}},
        ],
        nodes=nodes,
        **cluster,
    )


CLUSTER_SCHEDULER_PERF = ("SchedulingBasic", "TopologySpreading", "PreferredTopologySpreading")

SCHEDULER_PERF_CLIENT = {"clientConnection.qps": 5000.0, "clientConnection.burst": 5000}
"""kube-scheduler's client in scheduler_perf: QPS and burst 5000 (test/integration/scheduler_perf/util.go,
mustSetupCluster: ``cfg.QPS = 5000.0; cfg.Burst = 5000``), not the component's defaults (50 and 100), which would
cap the binds at 50 a second."""


@builtin(
    "scheduler-perf",
    Param(
        "test",
        str,
        "scheduler_perf test (the churn, DaemonSet and preemption tests run in the scheduler sweep)",
        choices=CLUSTER_SCHEDULER_PERF,
    ),
    NODES,
    Param("pods", int, "measured pods", minimum=0, maximum=1_000_000),
    Param("init_pods", int, "pods created first", minimum=0, maximum=1_000_000),
)
def scheduler_perf(
    test: str = "SchedulingBasic", nodes: int = 500, pods: int = 1000, init_pods: int = 0, **cluster
) -> Scenario:
    """A scheduler_perf test's pods (its templates) on the whole cluster: init pods, then the measured ones.

    The nodes are the cluster's (zones as ``topology.kubernetes.io/zone``, as the tests' label strategy); the
    scheduler's client runs at scheduler_perf's rate (:data:`SCHEDULER_PERF_CLIENT`) unless ``config`` sets it."""
    from kbench.scenarios.scheduler_perf import load_tests

    spec = load_tests()[test]
    steps = []
    for op in spec["workloadTemplate"]:
        if op["opcode"] != "createPods":
            continue
        template = yaml.safe_load((spec["_dir"] / op["podTemplatePath"]).read_text())
        labels = (template.get("metadata") or {}).get("labels")
        template["metadata"] = {"labels": labels} if labels else {}
        measured = op.get("collectMetrics", False)
        count = pods if measured else init_pods
        if count:
            steps.append(
                {
                    "createPods": {
                        "count": count,
                        "namespace": "sched" if measured else "sched-init",
                        "template": template,
                    }
                }
            )
    steps.append({"waitForPods": {}})
    config = dict(cluster.pop("config", None) or {})
    scheduler = config.get("kube-scheduler")
    if scheduler is None or isinstance(scheduler, Mapping):  # (a configuration object is taken as it is)
        config["kube-scheduler"] = {**SCHEDULER_PERF_CLIENT, **(scheduler or {})}
    return built_in_scenario("scheduler-perf", steps, nodes=nodes, config=config, **cluster)
