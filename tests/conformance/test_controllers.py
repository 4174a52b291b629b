"""Controller conformance: the same checks over every registered controller, like scikit-learn's estimator checks.

A controller gets these checks by being registered (:data:`kbench.controllers.CONTROLLERS` for
kube-controller-manager, :data:`kbench.cloud.CLOUD_CONTROLLERS` for the cloud-controller-manager); its entry in
:data:`SCENARIOS` says what to give it to act on. Every controller

- is registered under its upstream name, which ``--controllers`` accepts (with its aliases) and can turn off;
- starts only while its manager leads, and stops with it: a standby takes over and does the work;
- answers a 409 Conflict by writing again from a fresh read (a newer resourceVersion), without losing the other
  writer's change;
- gives the same result for the same seed, in one process and across processes (whatever the hash seed);
- never writes from a stale copy: every update carries the resourceVersion it read, and every update that lands
  replaces exactly the version it was based on.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest

from kbench.apiserver.objects import timestamp
from kbench.client import Client, Informer
from kbench.cloud import CLOUD_CONTROLLERS, Cloud
from kbench.cloud import config as ccm_options
from kbench.controllers import CONTROLLERS, Manager
from kbench.controllers import config as kcm_options
from kbench.sim import Streams
from tests.controlplane.helpers import Plane, ccm, kcm, race, record, running_status, workload

REGISTRY = {**CONTROLLERS, **CLOUD_CONTROLLERS}
"""Every controller kbench models, by upstream name."""
ROOT = Path(__file__).resolve().parents[2]


class World:
    """A control plane (seeded) with a modelled cloud, for one controller under test."""

    def __init__(self, name: str, seed: int = 0) -> None:
        self.name = name
        self.plane = Plane(streams=Streams(seed))
        self.cloud = Cloud(self.plane.engine, streams=Streams(seed))
        self.history: dict[tuple[str, str], list[str]] = {}
        """(resource, key) -> every resourceVersion the object had, in order (an admin informer's view)."""

    @property
    def now(self) -> float:
        """The virtual time."""
        return self.plane.engine.now

    def manager(self, identity: str = "cm-a") -> Manager:
        """A controller manager running only the controller under test (not started)."""
        if self.name in CONTROLLERS:
            return kcm(self.plane, self.name, identity=identity)
        return ccm(self.plane, self.cloud, self.name, identity=identity)

    def run_until(self, done: Callable[[World], bool], limit: float) -> None:
        """Advance until ``done`` holds (checked every 0.5 s), failing after ``limit`` virtual seconds."""
        end = self.now + limit
        while not done(self):
            assert self.now < end, f"{self.name}: the scenario did not finish within {limit} s"
            self.plane.run(self.now + 0.5)

    def get(self, resource: str, name: str, namespace: str = "") -> dict | None:
        """The stored object, or None."""
        result, error = self.plane.call("get", resource, namespace=namespace, name=name)
        return None if error is not None else result

    def watch_history(self, resources: tuple[str, ...]) -> None:
        """Record every version of the objects of ``resources`` from now on (an informer of the admin's)."""
        for resource in resources:
            inf = Informer(self.plane.admin, resource)
            inf.add_handler(
                on_add=lambda obj, r=resource: self._version(r, obj),
                on_update=lambda old, new, r=resource: self._version(r, new),
                on_delete=lambda obj, r=resource: self._version(r, obj),
            )
            inf.start()

    def _version(self, resource: str, obj: dict) -> None:
        key = (resource, f"{obj['metadata'].get('namespace', '')}/{obj['metadata']['name']}")
        self.history.setdefault(key, []).append(obj["metadata"]["resourceVersion"])

    def digest(self) -> str:
        """A hash of every stored object."""
        h = hashlib.sha256()
        for resource in sorted(self.plane.api.caches):
            for key, entry in sorted(self.plane.api.caches[resource].objects.items()):
                h.update(orjson.dumps([resource, key, entry[0]], option=orjson.OPT_SORT_KEYS))
        return h.hexdigest()


def race_first(client: Client, world: World, resource: str, subresource: str) -> None:
    """Just before ``client`` sends its next update of ``resource`` (``subresource``), another writer changes that
    object; the other write reaches etcd first, so the controller's copy is stale."""

    def touch(kwargs: dict) -> None:
        meta = kwargs["body"]["metadata"]
        world.plane.touch(resource, meta["name"], kwargs.get("namespace") or meta.get("namespace", ""))

    race(client, "update", resource, subresource, touch)


# -- objects the scenarios create --------------------------------------------------------------------------------
def node(name: str, ready: str | None = "True", taints: tuple = (), pod_cidr: str | None = None) -> dict:
    """A Node as an admin writes it (``ready`` None: no conditions yet)."""
    stamp = timestamp(0.0)
    conditions = [] if ready is None else [{"type": "Ready", "status": ready, "lastHeartbeatTime": stamp}]
    spec: dict[str, Any] = {"taints": [dict(t) for t in taints]}
    if pod_cidr:
        spec.update(podCIDR=pod_cidr, podCIDRs=[pod_cidr])
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name},
        "spec": spec,
        "status": {"conditions": conditions},
    }


def pod(name: str, namespace: str = "default", labels: dict | None = None, node_name: str = "", owner=None) -> dict:
    """A Pod (bound to ``node_name`` if given)."""
    meta: dict[str, Any] = {"name": name, "namespace": namespace, "labels": labels or {}}
    if owner:
        meta["ownerReferences"] = [owner]
    spec: dict[str, Any] = {"containers": [{"name": "c", "image": "app:1", "ports": [{"containerPort": 8080}]}]}
    if node_name:
        spec["nodeName"] = node_name
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}


def set_pod_ready(world: World, name: str, ready: bool) -> None:
    """The kubelet stand-in: the pod Running with an IP, Ready or not."""
    current = world.get("pods", name, "default")
    status = running_status(current, world.now, ready, ip="10.1.0.7")
    world.plane.ok("update", "pods", body={**current, "status": status}, subresource="status")


# -- the scenarios -----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Scenario:
    """What to give a controller to act on, and how to tell it has.

    ``write`` is the (resource, subresource) of an update the controller makes from a copy it read, for the conflict
    check (after ``update`` if given, a change the controller answers with that update); a controller that never
    updates what it read says why in ``updates`` instead.
    """

    setup: Callable[[World], None]
    done: Callable[[World], bool]
    watched: tuple[str, ...]
    write: tuple[str, str] | None = None
    update: Callable[[World], Any] | None = None
    updated: Callable[[World], bool] | None = None
    updates: str = ""
    limit: float = 60.0

    def __post_init__(self) -> None:
        assert (self.write is None) != (not self.updates), "a scenario names its write, or says why it has none"


def _pods_of(world: World, prefix: str) -> list[dict]:
    return [p for p in world.plane.objects("pods", "default") if p["metadata"]["name"].startswith(prefix)]


def _finished_job(world: World) -> None:
    world.plane.ok("create", "jobs", namespace="default", body=workload("Job", "done", 0, ttlSecondsAfterFinished=0))
    job = world.get("jobs", "done", "default")
    stamp = timestamp(world.now)
    cond = {"type": "Complete", "status": "True", "lastTransitionTime": stamp}
    world.plane.ok("update", "jobs", subresource="status", body={**job, "status": {"conditions": [cond]}})


def _tampered_root_ca(world: World) -> None:
    """Another writer changes the published CA bundle; the publisher puts it back (an update from its copy)."""
    cm = world.get("configmaps", "kube-root-ca.crt", "team")
    world.plane.ok("update", "configmaps", body={**cm, "data": {"ca.crt": "tampered"}})


def _services_with_a_ready_pod(world: World) -> None:
    for name in ("web", "web-alias"):  # two Services select the pod
        svc = {"metadata": {"name": name}, "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}}
        world.plane.ok("create", "services", namespace="default", body=svc)
    world.plane.ok("create", "pods", namespace="default", body=pod("web-0", labels={"app": "web"}, node_name="n1"))
    set_pod_ready(world, "web-0", True)


def _terminating_namespace(world: World) -> None:
    world.plane.ok("create", "namespaces", body={"metadata": {"name": "doomed"}})
    account = {"metadata": {"name": "default", "namespace": "doomed"}}
    world.plane.ok("create", "serviceaccounts", namespace="doomed", body=account)
    world.plane.ok("create", "pods", namespace="doomed", body=pod("p", namespace="doomed"))
    world.plane.ok("delete", "namespaces", name="doomed")


def _orphan(world: World) -> None:
    ghost = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "ghost", "uid": "uid-ghost", "controller": True}
    world.plane.ok("create", "pods", namespace="default", body=pod("orphan", owner=ghost))


def _tainted_node_with_pods(world: World) -> None:
    world.plane.ok("create", "nodes", body=node("n1"))
    for i in range(4):
        world.plane.ok("create", "pods", namespace="default", body=pod(f"victim-{i}", node_name="n1"))
    world.plane.run(world.now + 1.0)
    drain = {"key": "example.com/drain", "effect": "NoExecute"}
    world.plane.ok("patch", "nodes", name="n1", body={"spec": {"taints": [drain]}})


def _evicted(world: World) -> bool:
    pods = _pods_of(world, "victim-")
    return all(p["metadata"].get("deletionTimestamp") for p in pods)


def _uninitialized_node(world: World) -> None:
    world.cloud.add_instance("n1")
    taint = {"key": "node.cloudprovider.kubernetes.io/uninitialized", "value": "true", "effect": "NoSchedule"}
    world.plane.ok("create", "nodes", body=node("n1", taints=(taint,)))


def _gone(resource: str, name: str, namespace: str = "") -> Callable[[World], bool]:
    """A ``done`` predicate: the object is no longer stored."""
    return lambda world: world.get(resource, name, namespace) is None


def _has_taint(world: World, key: str) -> bool:
    return any(t["key"] == key for t in (world.get("nodes", "n1") or {}).get("spec", {}).get("taints") or ())


def _routed(world: World) -> bool:
    conditions = (world.get("nodes", "n1") or {}).get("status", {}).get("conditions") or ()
    return "n1" in world.cloud.routes and any(c["type"] == "NetworkUnavailable" for c in conditions)


def _load_balancer_service(world: World) -> None:
    world.cloud.add_instance("n1")
    world.plane.ok("create", "nodes", body=node("n1"))
    svc = {"metadata": {"name": "lb"}, "spec": {"type": "LoadBalancer", "ports": [{"port": 80, "nodePort": 30080}]}}
    world.plane.ok("create", "services", namespace="default", body=svc)


def _slice_not_ready(world: World) -> bool:
    """Every slice's endpoint of web-0 (each Service selecting it has one) shows it not ready."""
    slices = world.plane.objects("endpointslices", "default")
    web0 = [ep for es in slices for ep in es.get("endpoints") or () if ep["targetRef"]["name"] == "web-0"]
    return bool(web0) and all(ep["conditions"]["ready"] is False for ep in web0)


def _budget_over_ready_pods(world: World) -> None:
    for i in range(2):
        name = f"guarded-{i}"
        world.plane.ok("create", "pods", namespace="default", body=pod(name, labels={"app": "guarded"}, node_name="n1"))
        set_pod_ready(world, name, True)
    spec = {"minAvailable": 1, "selector": {"matchLabels": {"app": "guarded"}}}
    world.plane.ok(
        "create", "poddisruptionbudgets", namespace="default", body={"metadata": {"name": "guard"}, "spec": spec}
    )


def _budget_status(world: World) -> dict:
    return (world.get("poddisruptionbudgets", "guard", "default") or {}).get("status") or {}


DELETES_ONLY = "it only deletes (no read-modify-write to conflict)"
SCENARIOS: dict[str, Scenario] = {
    "node-lifecycle-controller": Scenario(
        setup=lambda w: w.plane.ok("create", "nodes", body=node("n1", ready="False")),
        done=lambda w: _has_taint(w, "node.kubernetes.io/not-ready"),
        watched=("nodes",),
        write=("nodes", ""),
    ),
    "taint-eviction-controller": Scenario(
        setup=_tainted_node_with_pods,
        done=_evicted,
        watched=("pods",),
        updates=DELETES_ONLY,
    ),
    "replicaset-controller": Scenario(
        setup=lambda w: w.plane.ok("create", "replicasets", namespace="default", body=workload("ReplicaSet", "web", 2)),
        done=lambda w: (
            len(_pods_of(w, "web-")) == 2
            and (w.get("replicasets", "web", "default") or {}).get("status", {}).get("replicas") == 2
        ),
        watched=("replicasets",),
        write=("replicasets", "status"),
    ),
    "deployment-controller": Scenario(
        setup=lambda w: w.plane.ok("create", "deployments", namespace="default", body=workload("Deployment", "api", 2)),
        done=lambda w: (
            bool(w.plane.objects("replicasets", "default"))
            and bool((w.get("deployments", "api", "default") or {}).get("status", {}).get("conditions"))
        ),
        watched=("deployments", "replicasets"),
        write=("deployments", "status"),
    ),
    "job-controller": Scenario(
        setup=lambda w: w.plane.ok("create", "jobs", namespace="default", body=workload("Job", "batch", 0)),
        done=lambda w: (
            bool(_pods_of(w, "batch-"))
            and (w.get("jobs", "batch", "default") or {}).get("status", {}).get("active") == 1
        ),
        watched=("jobs",),
        write=("jobs", "status"),
    ),
    "ttl-after-finished-controller": Scenario(
        setup=_finished_job,
        done=_gone("jobs", "done", "default"),
        watched=("jobs",),
        updates=DELETES_ONLY,
    ),
    "disruption-controller": Scenario(
        setup=_budget_over_ready_pods,
        done=lambda w: (
            _budget_status(w).get("currentHealthy") == 2 and _budget_status(w).get("disruptionsAllowed") == 1
        ),
        watched=("poddisruptionbudgets",),
        write=("poddisruptionbudgets", "status"),
    ),
    "endpointslice-controller": Scenario(
        setup=_services_with_a_ready_pod,
        done=lambda w: len(w.plane.objects("endpointslices", "default")) == 2,
        watched=("endpointslices",),
        write=("endpointslices", ""),
        update=lambda w: set_pod_ready(w, "web-0", False),
        updated=_slice_not_ready,
    ),
    "serviceaccount-controller": Scenario(
        setup=lambda w: w.plane.ok("create", "namespaces", body={"metadata": {"name": "team"}}),
        done=lambda w: w.get("serviceaccounts", "default", "team") is not None,
        watched=("serviceaccounts",),
        updates="it only creates ServiceAccounts",
    ),
    "root-ca-certificate-publisher-controller": Scenario(
        setup=lambda w: w.plane.ok("create", "namespaces", body={"metadata": {"name": "team"}}),
        done=lambda w: w.get("configmaps", "kube-root-ca.crt", "team") is not None,
        watched=("configmaps",),
        write=("configmaps", ""),
        update=_tampered_root_ca,
        updated=lambda w: (
            (w.get("configmaps", "kube-root-ca.crt", "team") or {}).get("data", {}).get("ca.crt") != "tampered"
        ),
    ),
    "namespace-controller": Scenario(
        setup=_terminating_namespace,
        done=_gone("namespaces", "doomed"),
        watched=("namespaces",),
        write=("namespaces", "finalize"),
    ),
    "garbage-collector-controller": Scenario(
        setup=_orphan,
        done=_gone("pods", "orphan", "default"),
        watched=("pods",),
        updates=DELETES_ONLY,
    ),
    "node-ipam-controller": Scenario(
        setup=lambda w: w.plane.ok("create", "nodes", body=node("n1")),
        done=lambda w: bool((w.get("nodes", "n1") or {}).get("spec", {}).get("podCIDR")),
        watched=("nodes",),
        updates="it writes a merge patch of the pod CIDRs without a resourceVersion (PatchNodeCIDRs): nothing to "
        "conflict",
    ),
    "cloud-node-controller": Scenario(
        setup=_uninitialized_node,
        done=lambda w: bool((w.get("nodes", "n1") or {}).get("spec", {}).get("providerID")),
        watched=("nodes",),
        write=("nodes", ""),
    ),
    "cloud-node-lifecycle-controller": Scenario(
        setup=lambda w: w.plane.ok("create", "nodes", body=node("n1", ready="False")),
        done=_gone("nodes", "n1"),
        watched=("nodes",),
        updates=DELETES_ONLY,
    ),
    "node-route-controller": Scenario(
        setup=lambda w: w.plane.ok("create", "nodes", body=node("n1", pod_cidr="10.0.5.0/24")),
        done=_routed,
        watched=("nodes",),
        write=("nodes", "status"),
    ),
    "service-lb-controller": Scenario(
        setup=_load_balancer_service,
        done=lambda w: bool((w.get("services", "lb", "default") or {}).get("status", {}).get("loadBalancer")),
        watched=("services",),
        write=("services", ""),
        limit=1200.0,
    ),
}
"""Upstream controller name -> its scenario (a registered controller without one fails every check)."""


def scenario(name: str) -> Scenario:
    """The controller's scenario; a controller registered without one fails here, naming what is missing."""
    assert name in SCENARIOS, f"{name} is registered but has no scenario in tests/conformance/test_controllers.py"
    return SCENARIOS[name]


def play(name: str, seed: int = 0) -> tuple[World, list[dict]]:
    """The controller alone under its manager (which takes the lease), given its scenario until it is done."""
    world = World(name, seed)
    manager = world.manager().start()
    world.plane.run(1.0)
    assert manager.leading
    log = record(manager.controller(name).client)
    world.watch_history(scenario(name).watched)
    scenario(name).setup(world)
    world.run_until(scenario(name).done, scenario(name).limit)
    return world, log


NAMES = sorted(REGISTRY)
UPDATERS = [name for name in NAMES if name not in SCENARIOS or SCENARIOS[name].write is not None]
"""The controllers the conflict check runs over: every one except those whose scenario says why it never updates a
copy it read (``Scenario.updates``: it only creates, deletes, or patches without a resourceVersion), so it cannot meet
a 409 Conflict; test_no_write_from_a_stale_copy holds them to that (they send no update). A registered controller
without a scenario stays in, to fail naming what is missing."""


# -- the checks --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_registered_under_its_upstream_name(name):
    cls = REGISTRY[name]
    known = kcm_options.KNOWN_CONTROLLERS if name in CONTROLLERS else ccm_options.KNOWN_CONTROLLERS
    assert cls.name == name and name in known, f"{cls.__name__}.name {cls.name!r} is not an upstream name"
    assert cls.__doc__ and sys.modules[cls.__module__].__doc__, f"{cls.__name__}: docstrings"
    config_cls = (
        kcm_options.KubeControllerManagerConfiguration
        if name in CONTROLLERS
        else ccm_options.CloudControllerManagerConfiguration
    )
    for entry in (name, *known[name]):
        assert config_cls().replace({"controllers": [entry]}).enabled(name), entry
    assert not config_cls().replace({"controllers": ["*", f"-{name}"]}).enabled(name)
    world = World(name)
    assert [c.name for c in world.manager().controllers] == [name]
    off = kcm(world.plane, "*", f"-{name}") if name in CONTROLLERS else ccm(world.plane, world.cloud, "*", f"-{name}")
    assert name not in [c.name for c in off.controllers]


@pytest.mark.parametrize("name", NAMES)
def test_runs_only_while_leading_and_a_standby_takes_over(name):
    world = World(name)
    first = world.manager("cm-a").start()
    world.plane.run(1.0)
    second = world.manager("cm-b").start()
    world.plane.run(8.0)
    assert first.leading and not second.leading
    old, new = first.controller(name), second.controller(name)
    old_log, new_log = record(old.client), record(new.client)
    old_informers = record(first.informer_client)
    first.stop()
    stopped = world.now
    scenario(name).setup(world)
    world.run_until(scenario(name).done, scenario(name).limit + 30)
    assert second.leading and old.stopped and not new.stopped
    assert not [r for r in old_log if r["at"] >= stopped], "the old leader's controller sent requests after it stopped"
    assert any(r["verb"] in ("create", "update", "patch", "delete") for r in new_log), "the new leader did the work"
    assert not [r for r in old_informers if r["at"] >= stopped], "the old leader's informers went on listing"


@pytest.mark.parametrize("name", UPDATERS)
def test_a_conflict_is_retried_from_a_fresh_read(name):
    case = scenario(name)
    world = World(name)
    manager = world.manager().start()
    world.plane.run(1.0)
    client = manager.controller(name).client
    log = record(client)
    if case.update is None:
        race_first(client, world, *case.write)
    case.setup(world)
    world.run_until(case.done, case.limit)
    if case.update is not None:
        race_first(client, world, *case.write)
        case.update(world)
        world.run_until(case.updated or case.done, case.limit)
    resource, subresource = case.write
    writes = [r for r in log if (r["verb"], r["resource"], r["subresource"]) == ("update", resource, subresource)]
    conflicted = writes[0]
    assert conflicted["code"] == 409, f"the raced write was not refused: {conflicted}"
    same = [r for r in writes[1:] if (r["namespace"], r["name"]) == (conflicted["namespace"], conflicted["name"])]
    landed = next((r for r in same if r.get("code") == 200), None)
    assert landed is not None, "the write was not retried to success"
    assert int(landed["sent_rv"]) > int(conflicted["sent_rv"]), "the retry was not based on a fresh read"
    stored = world.get(resource, conflicted["name"], conflicted["namespace"])
    assert stored is None or stored["metadata"].get("labels", {}).get("racing") == "writer", "lost the other write"


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_result_in_one_process(name):
    runs = []
    for _ in range(2):
        world, log = play(name, seed=7)
        runs.append((world.digest(), [(r["at"], r["verb"], r["resource"], r["name"], r.get("code")) for r in log]))
    assert runs[0] == runs[1]


@pytest.fixture(scope="module")
def digests_by_hash_seed() -> list[dict[str, str]]:
    """Every controller's scenario digest, from two processes with different string hash seeds."""
    out = []
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        done = subprocess.run(
            [sys.executable, "-m", "tests.conformance.test_controllers"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=300,
        )
        out.append(json.loads(done.stdout.strip().splitlines()[-1]))
    return out


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_result_across_processes(name, digests_by_hash_seed):
    """Nothing depends on the order of a set of strings (which changes with PYTHONHASHSEED from process to process)."""
    first, second = digests_by_hash_seed
    assert first[name] == second[name]


@pytest.mark.parametrize("name", NAMES)
def test_no_write_from_a_stale_copy(name):
    world, log = play(name)
    case = scenario(name)
    if case.update is not None:
        case.update(world)
        world.run_until(case.updated or case.done, case.limit)
    world.plane.run(world.now + 2.0)  # the history informer sees the last writes
    updates = [r for r in log if r["verb"] == "update"]
    if case.write is None:
        assert not updates, f"{name} updates objects, but its scenario says {case.updates!r}"
    assert all(r["sent_rv"] for r in updates), "an update without the resourceVersion it was read at"
    for r in updates:
        if r.get("code") == 200:
            versions = world.history[(r["resource"], f"{r['namespace']}/{r['name']}")]
            before = versions[versions.index(r["got_rv"]) - 1]
            assert before == r["sent_rv"], f"{r} replaced version {before}, not the one it read"


if __name__ == "__main__":  # one process's digests, for test_same_seed_same_result_across_processes
    print(json.dumps({name: play(name, seed=3)[0].digest() for name in NAMES}))
