"""Built-in scenarios (the Python API); each returns a :class:`Scenario` to ``run()`` or ``to_dict()``.

ClusterLoader2's density and load tests (testing/density, testing/load in kubernetes/perf-tests), a
scheduler_perf workload on the whole cluster, and the failure and rollout scenarios users ask about.
Keyword arguments not named below go to the cluster (:class:`kbench.cluster.ClusterSpec` fields).
"""

from __future__ import annotations

import yaml

from kbench.cluster import ClusterSpec
from kbench.scenarios.spec import Scenario, Step
from kbench.scenarios.steps import PAUSE_POD


def _scenario(name: str, steps: list[dict], drain: float = 30.0, **cluster) -> Scenario:
    spec = ClusterSpec(**cluster)
    spec.check()
    return Scenario(name, spec, [], drain=drain).add_steps(steps)


def deployment(name: str, replicas: int, image: str = "registry.k8s.io/pause:3.10", probe: bool = True) -> dict:
    """A Deployment manifest whose pods carry ``app: <name>`` (and a readiness probe unless ``probe`` is off)."""
    container = {"name": "app", "image": image, "resources": {"requests": {"cpu": "10m", "memory": "10Mi"}}}
    if probe:
        container["readinessProbe"] = {"httpGet": {"path": "/", "port": 8080}, "periodSeconds": 10}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [container], "terminationGracePeriodSeconds": 1}}}}


def service(name: str, app: str, kind: str = "ClusterIP") -> dict:
    """A Service manifest selecting ``app: <app>`` on port 80 -> 8080."""
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"type": kind, "selector": {"app": app}, "ports": [{"port": 80, "targetPort": 8080}]}}


def density(nodes: int = 100, pods_per_node: int = 30, rate: float = 20.0, **cluster) -> Scenario:
    """CL2 density: pause pods created at ``rate`` per second up to ``pods_per_node`` per node."""
    return _scenario("density", [{"createPods": {"perNode": pods_per_node, "rate": rate, "namespace": "density"}},
                                 {"waitForPods": {"timeout": 3600}}], nodes=nodes, **cluster)


def load(nodes: int = 100, deployments: int = 10, replicas: int = 10, churn: float = 5.0, duration: float = 60.0,
         **cluster) -> Scenario:
    """CL2 load: Deployments with a Service each, then pod churn at ``churn`` pods/s for ``duration`` s."""
    steps = [{"createObjects": {"template": deployment("app-{i}", replicas), "count": deployments, "rate": 5,
                                "namespace": "load"}},
             {"createObjects": {"template": service("svc-{i}", "app-{i}"), "count": deployments, "rate": 5,
                                "namespace": "load"}},
             {"waitForPods": {"namespace": "load", "timeout": 600}}]
    if churn > 0:
        steps.append({"churn": {"rate": churn, "duration": duration, "namespace": "load-churn"}})
    return _scenario("load", steps, nodes=nodes, **cluster)


def node_failure(nodes: int = 50, fraction: float = 0.1, replicas: int = 200, downtime: float | None = None,
                 mode: str = "partition", **cluster) -> Scenario:
    """A share of nodes fails: NotReady after the grace period, taints, eviction at +300 s, replacements.

    ``mode``: ``partition`` (cut off; containers keep running) or ``shutdown`` (containers die too)."""
    stop = {"fraction": fraction, "mode": mode, **({"restartAfter": downtime} if downtime is not None else {})}
    return _scenario("node-failure", [
        {"createObjects": {"template": deployment("web", replicas, probe=False), "namespace": "apps"}},
        {"waitForPods": {"namespace": "apps", "timeout": 600}},
        {"stopNodes": stop},
        {"wait": {"seconds": 420}},
        {"waitForPods": {"namespace": "apps", "timeout": 600}}], nodes=nodes, **cluster)


def rolling_update(nodes: int = 20, replicas: int = 50, **cluster) -> Scenario:
    """A Deployment behind a Service rolls to a new image (maxSurge / maxUnavailable 25%)."""
    return _scenario("rolling-update", [
        {"createObjects": {"template": deployment("web", replicas, "nginx:1.27"), "namespace": "apps"}},
        {"createObjects": {"template": service("web", "web"), "namespace": "apps"}},
        {"waitForPods": {"namespace": "apps"}},
        {"rollingUpdate": {"deployment": "web", "image": "nginx:1.28", "namespace": "apps"}},
        {"wait": {"seconds": 120}}], nodes=nodes, **cluster)


def job_waves(nodes: int = 20, waves: int = 3, completions: int = 50, parallelism: int = 25, run_for: float = 20.0,
              gap: float = 60.0, **cluster) -> Scenario:
    """Waves of Jobs whose pods run ``run_for`` seconds and exit 0."""
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "wave"},
           "spec": {"completions": completions, "parallelism": parallelism, "ttlSecondsAfterFinished": 30,
                    "template": {"metadata": {"annotations": {"kbench.io/behavior": f"exitAfter: {run_for}"}},
                                 "spec": {"restartPolicy": "Never", "containers": [
                                     {"name": "work", "image": "busybox:1.36",
                                      "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}}]}}}}
    steps = []
    for w in range(waves):
        wave = yaml.safe_load(yaml.safe_dump(job))
        wave["metadata"]["name"] = f"wave-{w}"
        steps += [{"createObjects": {"template": wave, "namespace": "batch"}}, {"wait": {"seconds": gap}}]
    return _scenario("job-waves", steps, nodes=nodes, **cluster)


def load_balancers(nodes: int = 20, services: int = 10, replicas: int = 5, **cluster) -> Scenario:
    """LoadBalancer Services over the modelled cloud (the cloud-controller-manager's service controller)."""
    cluster.setdefault("cloud", True)
    return _scenario("load-balancers", [
        {"createObjects": {"template": deployment("lb-app", replicas, probe=False), "namespace": "lb"}},
        {"createObjects": {"template": service("lb-{i}", "lb-app", "LoadBalancer"), "count": services, "rate": 2,
                           "namespace": "lb"}},
        {"waitForPods": {"namespace": "lb"}},
        {"waitForLoadBalancers": {"namespace": "lb"}}], nodes=nodes, **cluster)


def probe_storm(nodes: int = 20, pods_per_node: int = 10, fails_after: float = 30.0, **cluster) -> Scenario:
    """Liveness probes of every pod fail from ``fails_after`` s: restarts, CrashLoopBackOff, endpoint churn.

    Readiness flaps through the EndpointSlices to every kube-proxy."""
    template = {"apiVersion": "v1", "kind": "Pod", "metadata": {"labels": {"app": "storm"}},
                "spec": {"terminationGracePeriodSeconds": 1, "containers": [{
                    "name": "app", "image": "registry.k8s.io/pause:3.10",
                    "livenessProbe": {"httpGet": {"path": "/healthz", "port": 8080}, "periodSeconds": 5,
                                      "failureThreshold": 3},
                    "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080}, "periodSeconds": 5}}]}}
    return _scenario("probe-storm", [
        {"createObjects": {"template": service("storm", "storm"), "namespace": "storm"}},
        {"createPods": {"perNode": pods_per_node, "rate": 50, "namespace": "storm", "template": template,
                        "behavior": {"readyAfter": 5, "livenessFailsAfter": fails_after}}},
        {"wait": {"seconds": 300}}], nodes=nodes, **cluster)


CLUSTER_SCHEDULER_PERF = ("SchedulingBasic", "TopologySpreading", "PreferredTopologySpreading")


def scheduler_perf(test: str = "SchedulingBasic", nodes: int = 500, pods: int = 1000, init_pods: int = 0,
                   **cluster) -> Scenario:
    """A scheduler_perf test's pods (its templates) on the whole cluster: init pods, then the measured ones.

    The nodes are the cluster's (zones as ``topology.kubernetes.io/zone``, as the tests' label strategy)."""
    from kbench.scenarios.scheduler_perf import load_tests

    if test not in CLUSTER_SCHEDULER_PERF:
        raise ValueError(f"test: {test!r} is not runnable on the whole cluster; valid: "
                         f"{', '.join(CLUSTER_SCHEDULER_PERF)} (the churn and DaemonSet tests run in the scheduler "
                         "sweep)")
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
            steps.append({"createPods": {"count": count, "namespace": "sched" if measured else "sched-init",
                                         "template": template}})
    steps.append({"waitForPods": {}})
    return _scenario("scheduler-perf", steps, nodes=nodes, **cluster)


SCENARIOS = {"density": density, "load": load, "node-failure": node_failure, "rolling-update": rolling_update,
             "job-waves": job_waves, "load-balancers": load_balancers, "probe-storm": probe_storm,
             "scheduler-perf": scheduler_perf}
__all__ = ["PAUSE_POD", "SCENARIOS", "Scenario", "Step", *(f.__name__ for f in SCENARIOS.values())]
