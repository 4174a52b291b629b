"""The kubelet in virtual time: CRI order, image pulls, probes, restarts, termination, admission."""

from __future__ import annotations

import json

import numpy as np
import pytest

from kbench.apiserver.objects import object_key
from kbench.node.config import KubeletConfiguration
from kbench.node.kubelet import FINISHED, PLEG_RELIST_PERIOD, STATUS_SYNC_PERIOD, Kubelet
from kbench.node.runtime import RuntimeModel
from kbench.profiles import load_profile
from tests.controlplane.helpers import Plane, fail_next, race, reached, record

SANDBOX, CREATE, START = 0.2, 0.03, 0.05


def summed(kubelet: Kubelet) -> dict[str, int]:
    """The requests in use as admission once summed them: over the workers not Succeeded or Failed."""
    used = {"cpu": 0, "memory": 0, "pods": 0}
    for w in kubelet.workers.values():
        if w.phase not in FINISHED:
            used["cpu"] += w.requests.get("cpu", 0)
            used["memory"] += w.requests.get("memory", 0)
            used["pods"] += 1
    return used


@pytest.fixture(autouse=True)
def phases(monkeypatch) -> list[tuple[str, bool]]:
    """Every test here also checks, at each phase change and removal of a worker and at each admission's read, that
    the requests in use the kubelet keeps (Kubelet._set_phase, Kubelet._pod_gone) are the sum over its workers; the
    changes seen are returned: (phase, whether the worker was removed)."""
    seen: list[tuple[str, bool]] = []
    set_phase, pod_gone, in_use = Kubelet._set_phase, Kubelet._pod_gone, Kubelet._in_use

    def checked(self, w, phase):
        set_phase(self, w, phase)
        assert in_use(self) == summed(self)
        seen.append((phase, False))

    def gone(self, pod):
        worker = self.workers.get(object_key(pod))
        pod_gone(self, pod)
        assert in_use(self) == summed(self)
        if worker is not None:
            seen.append((worker.phase, True))

    def read(self):
        used = in_use(self)
        assert used == summed(self)
        return used

    monkeypatch.setattr(Kubelet, "_set_phase", checked)
    monkeypatch.setattr(Kubelet, "_pod_gone", gone)
    monkeypatch.setattr(Kubelet, "_in_use", read)
    return seen


class Node:
    """One kubelet on a small control plane, with constant CRI timings."""

    def __init__(self, images=None, cpu="4", **kubelet):
        self.plane = Plane()
        profile = load_profile().override(
            {
                "runtime.containerd.sandbox_create": SANDBOX,
                "runtime.containerd.container_create": CREATE,
                "runtime.containerd.container_start": START,
            }
        )
        self.runtime = RuntimeModel(self.plane.engine, "containerd", profile, np.random.default_rng(0), images)
        self.model = self.runtime
        self.kubelet = Kubelet(self.plane.api, "node-0", self.runtime, cpu=cpu, **kubelet)
        self.plane.run(1.0)

    def pod(self, name, containers, behavior=None, **spec):
        meta = {"name": name, "namespace": "default"}
        if behavior is not None:
            meta["annotations"] = {"kbench.io/behavior": json.dumps(behavior)}
        spec.setdefault("automountServiceAccountToken", False)  # no API-access volume unless a test mounts one
        self.plane.ok("create", "pods", body={"metadata": meta, "spec": {"containers": containers, **spec}})
        self.plane.ok(
            "create", "pods", name=name, namespace="default", subresource="binding", body={"target": {"name": "node-0"}}
        )
        return self.plane.engine.now

    def status(self, name):
        return self.plane.ok("get", "pods", namespace="default", name=name).get("status", {})

    def worker(self, name):
        return self.kubelet.workers[f"default/{name}"]

    def until(self, t):
        self.plane.run(t)


def ready(status) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions", []))


def app(name="app", image="registry.k8s.io/pause:3.10", **extra):
    return {"name": name, "image": image, **extra}


def test_pod_starts_in_cri_order_and_reports_running_after_the_pleg_relist():
    node = Node()
    t0 = node.pod("a", [app()])
    node.until(t0 + 5)
    status, w = node.status("a"), node.worker("a")
    assert status["phase"] == "Running" and ready(status) and status["podIP"].startswith("10.")
    c = w.containers[0]
    # RunPodSandbox, then (image present: no pull) CreateContainer, StartContainer
    assert c.started_at - w.started == pytest.approx(SANDBOX + CREATE + START)
    assert w.pull_seconds == 0
    assert status["containerStatuses"][0]["state"]["running"]
    assert status["conditions"][1] == {"type": "Initialized", "status": "True"}


def test_image_pulls_are_serialized_and_shared_layers_pulled_once():
    images = {
        "app:1": {"layers": [{"digest": "sha256:base", "size": "100M"}, {"digest": "sha256:a", "size": "50M"}]},
        "app:2": {"layers": [{"digest": "sha256:base", "size": "100M"}, {"digest": "sha256:b", "size": "50M"}]},
    }
    node = Node(images)
    node.pod("one", [app(image="app:1")])
    node.pod("two", [app(image="app:2")])
    node.until(30)
    rt = node.model
    one, two = node.worker("one"), node.worker("two")
    per_byte = 1 / rt.costs.pull_bandwidth + rt.costs.unpack_per_byte
    assert one.pull_seconds == pytest.approx(rt.costs.pull_overhead + 150e6 * per_byte, rel=1e-6)
    # the second pod's pull waits for the first (serializeImagePulls) and fetches only its own layer
    assert two.pull_seconds > rt.costs.pull_overhead + 50e6 * per_byte + 0.5 * one.pull_seconds
    assert node.kubelet.runtime.pulled_bytes == 200_000_000


def test_max_parallel_image_pulls_lets_pulls_overlap():
    """serializeImagePulls false with maxParallelImagePulls 2: two pods' pulls run side by side, each taking its own
    time; serialized (the default) the second waits for the first."""
    images = {"app:1": {"size": "100M"}, "app:2": {"size": "100M"}}
    pulls = {}
    for fields in ({}, {"serializeImagePulls": False, "maxParallelImagePulls": 2}):
        node = Node(images, config=KubeletConfiguration().replace(fields))
        node.pod("one", [app(image="app:1")])
        node.pod("two", [app(image="app:2")])
        node.until(30)
        pulls[bool(fields)] = (node.worker("one").pull_seconds, node.worker("two").pull_seconds)
    costs = node.model.costs
    alone = costs.pull_overhead + 100e6 * (1 / costs.pull_bandwidth + costs.unpack_per_byte)
    assert pulls[True] == pytest.approx((alone, alone), rel=1e-6)
    assert pulls[False][0] == pytest.approx(alone, rel=1e-6) and pulls[False][1] > 1.9 * alone


def test_max_pods_is_the_pods_capacity_admission_checks():
    node = Node(config=KubeletConfiguration().replace({"maxPods": 1}))
    assert node.plane.ok("get", "nodes", name="node-0")["status"]["allocatable"]["pods"] == "1"
    node.pod("first", [app()])
    node.pod("second", [app()])
    node.until(5)
    assert node.status("first")["phase"] == "Running"
    assert node.status("second")["phase"] == "Failed" and node.status("second")["reason"] == "OutOfpods"


def test_pull_policy_never_without_the_image_waits_with_err_image_never_pull():
    node = Node()
    node.pod("a", [app(image="missing:1", imagePullPolicy="Never")])
    node.until(10)
    state = node.status("a")["containerStatuses"][0]["state"]
    assert state == {"waiting": {"reason": "ErrImageNeverPull"}}


def test_latest_tag_is_pulled_every_time_by_default():
    node = Node({"app:latest": {"size": "10M"}})
    node.pod("a", [app(image="app:latest")])
    node.until(10)
    node.pod("b", [app(image="app:latest")])
    node.until(20)
    assert node.worker("b").pull_seconds == pytest.approx(
        node.model.costs.pull_overhead
    )  # layers cached, manifest checked


def test_readiness_probe_sets_ready_at_its_tick():
    node = Node()
    probe = {"periodSeconds": 4, "initialDelaySeconds": 2, "successThreshold": 2}
    node.pod("a", [app(readinessProbe=probe)], behavior={"readyAfter": 5})
    node.until(3)
    c = node.worker("a").containers[0]
    start = c.started_at
    # ticks at start + 0, 4, 8, 12 (the first counted is 4 >= initialDelaySeconds): 8 is the first passing
    # (>= readyAfter 5), 12 the second in a row (successThreshold 2)
    node.until(start + 11.9)
    assert not c.ready and not ready(node.status("a"))
    node.until(start + 12.1)
    assert c.ready and ready(node.status("a"))


def test_status_manager_ignores_a_status_it_holds_and_keeps_a_held_conditions_transition_time():
    """updateStatusInternal: a status equal to the one the status manager holds is not sent again ("Ignoring same
    status for pod"), and a condition whose status holds keeps its lastTransitionTime (updateLastTransitionTime)."""
    node = Node()
    sent = record(node.kubelet.client)
    probe = {"periodSeconds": 4, "initialDelaySeconds": 2, "successThreshold": 2}
    node.pod("a", [app(readinessProbe=probe)], behavior={"readyAfter": 5})
    node.until(30)
    statuses = [r["body"]["status"] for r in sent if r["verb"] == "patch"]
    assert [s["phase"] for s in statuses] == ["Pending", "Running", "Running"]  # pending, started, ready
    assert all(a != b for a, b in zip(statuses, statuses[1:]))
    transitions = [next(c for c in s["conditions"] if c["type"] == "Ready") for s in statuses]
    assert [c["status"] for c in transitions] == ["False", "False", "True"]
    assert transitions[1]["lastTransitionTime"] == transitions[0]["lastTransitionTime"] != "2026-01-01T00:00:00Z"
    assert transitions[2]["lastTransitionTime"] > transitions[1]["lastTransitionTime"]
    assert node.status("a")["conditions"] == statuses[-1]["conditions"]


def test_liveness_failure_restarts_with_crashloop_backoff():
    node = Node()
    probe = {"periodSeconds": 1, "failureThreshold": 1}
    node.pod("a", [app(livenessProbe=probe)], behavior={"livenessFailsAfter": 1})
    starts, last = [], None
    while node.plane.engine.now < 400:
        node.until(node.plane.engine.now + 0.05)
        c = node.worker("a").containers[0]
        if c.started_at != last:
            starts.append(c.started_at)
            last = c.started_at
    gaps = np.diff(starts)
    # each run lives 1 s (probe) + the kill; then the restart delay: 0, 10, 20, 40, 80, 160, 300 (capped)
    run = 1 + node.model.costs.container_stop + CREATE + START
    delays = gaps - run
    assert list(delays[:6]) == pytest.approx([0, 10, 20, 40, 80, 160], abs=0.01)
    assert node.status("a")["containerStatuses"][0]["restartCount"] == len(starts) - 1


def test_backoff_caps_at_five_minutes():
    node = Node()
    node.pod("a", [app()], behavior={"exitAfter": 1, "exitCode": 1})
    node.until(3000)
    c = node.worker("a").containers[0]
    assert c.backoff == 300.0


@pytest.mark.parametrize(
    "policy, code, phase, restarts",
    [
        ("Never", 1, "Failed", 0),
        ("Never", 0, "Succeeded", 0),
        ("OnFailure", 0, "Succeeded", 0),
        ("OnFailure", 3, "Running", 2),
        ("Always", 0, "Running", 2),
    ],
)
def test_restart_policy(policy, code, phase, restarts):
    node = Node()
    node.pod("a", [app()], behavior={"exitAfter": 2, "exitCode": code}, restartPolicy=policy)
    node.until(20)
    status = node.status("a")
    assert status["phase"] == phase
    assert status["containerStatuses"][0]["restartCount"] == restarts


@pytest.mark.parametrize(
    "behavior, policy",
    [({"exitAfter": 2, "exitCode": 0}, "Never"), ({"exitAfter": 1, "exitCode": 1}, "Always")],
    ids=["succeeded", "crash-loop-backoff"],
)
def test_a_pod_deleted_with_no_container_running_is_removed(behavior, policy):
    """Its final status equals the one the status manager holds, but a pod being deleted always gets its update
    (SetPodStatus forces it once the deletionTimestamp is set), and the final delete follows it."""
    node = Node()
    node.pod("a", [app()], behavior=behavior, restartPolicy=policy)
    node.until(12)
    assert not any(c.state == "running" for c in node.worker("a").containers)
    node.plane.ok("delete", "pods", namespace="default", name="a")
    node.until(20)
    assert node.plane.objects("pods") == []


def test_init_containers_run_in_order_before_the_containers():
    node = Node()
    node.pod(
        "a",
        [app()],
        behavior={"containers": {"init-1": {"exitAfter": 3}, "init-2": {"exitAfter": 2}}},
        initContainers=[app("init-1"), app("init-2")],
    )
    node.until(3)
    assert node.status("a")["conditions"][1] == {"type": "Initialized", "status": "False"}
    node.until(12)
    w = node.worker("a")
    first, second = w.init
    assert first.exit_code == 0 and second.exit_code == 0
    assert second.started_at >= first.started_at + 3
    assert w.containers[0].started_at >= second.started_at + 2
    assert w.initialized and node.status("a")["phase"] == "Running"


def test_graceful_deletion_waits_for_stop_then_deletes_with_grace_zero():
    node = Node()
    node.pod("a", [app()], behavior={"stopAfter": 4}, terminationGracePeriodSeconds=30)
    node.until(5)
    deleted = node.plane.engine.now
    node.plane.ok("delete", "pods", namespace="default", name="a")
    node.until(deleted + 3)
    assert node.plane.call("get", "pods", namespace="default", name="a")[1] is None  # still terminating
    node.until(deleted + 8)
    assert node.plane.call("get", "pods", namespace="default", name="a")[1].code == 404


def test_grace_period_caps_a_slow_stop_with_sigkill():
    node = Node()
    node.pod("a", [app()], behavior={"stopAfter": 60}, terminationGracePeriodSeconds=2)
    node.until(5)
    node.plane.ok("delete", "pods", namespace="default", name="a")
    w = node.worker("a")
    node.until(6.5)
    assert w.containers[0].state == "running"
    node.until(9)
    assert w.containers[0].exit_code == 137
    node.until(12)
    assert node.plane.call("get", "pods", namespace="default", name="a")[1].code == 404


def test_admission_rejects_a_pod_that_does_not_fit_allocatable():
    node = Node(cpu="1")
    node.pod("big", [app(resources={"requests": {"cpu": "600m"}})])
    node.pod("bigger", [app(resources={"requests": {"cpu": "600m"}})])
    node.until(5)
    assert node.status("big")["phase"] == "Running"
    assert node.status("bigger")["phase"] == "Failed" and node.status("bigger")["reason"] == "OutOfcpu"
    assert node.kubelet.rejected == 1
    node.plane.ok("delete", "pods", namespace="default", name="bigger")  # a pod that never started goes on delete
    node.until(8)
    assert [p["metadata"]["name"] for p in node.plane.objects("pods")] == ["big"]


def test_the_requests_in_use_follow_admission_completion_rejection_and_deletion(phases):
    """What admission compares with allocatable: the requests of the pods admitted and not finished."""
    node = Node(cpu="2")
    node.pod(
        "job",
        [app(resources={"requests": {"cpu": "500m", "memory": "64Mi"}})],
        restartPolicy="Never",
        behavior={"exitAfter": 2, "exitCode": 0},
    )
    node.pod("web", [app(resources={"requests": {"cpu": "1"}})])
    node.until(1.5)
    assert node.kubelet._in_use() == {"cpu": 1500, "memory": 64 * 2**20, "pods": 2}
    node.until(6)  # the job succeeded: its requests are free
    assert node.status("job")["phase"] == "Succeeded"
    assert node.kubelet._in_use() == {"cpu": 1000, "memory": 0, "pods": 1}
    node.pod("big", [app(resources={"requests": {"cpu": "1500m"}})])
    node.until(8)
    assert node.status("big")["reason"] == "OutOfcpu"
    assert node.kubelet._in_use() == {"cpu": 1000, "memory": 0, "pods": 1}
    node.plane.ok("delete", "pods", namespace="default", name="web")
    node.until(15)
    assert node.kubelet._in_use() == {"cpu": 0, "memory": 0, "pods": 0}
    assert {"Running", "Succeeded", "Failed"} <= {phase for phase, _ in phases} and any(r for _, r in phases)


def test_a_worker_replaced_under_its_name_no_longer_counts_when_its_phase_changes(phases):
    """The informer sees the pod's name with a new uid: the old worker goes and the new one is admitted; the old
    worker's termination, ending later, changes nothing the new one counts."""
    node = Node(cpu="2")
    node.pod("a", [app(resources={"requests": {"cpu": "1"}})])
    node.until(3)
    kubelet, old = node.kubelet, node.worker("a")
    pod = node.plane.ok("get", "pods", namespace="default", name="a")
    containers = [app(resources={"requests": {"cpu": "500m"}})]
    kubelet._pod_seen(
        {**pod, "metadata": {**pod["metadata"], "uid": "new"}, "spec": {**pod["spec"], "containers": containers}}
    )
    assert node.worker("a") is not old and kubelet._in_use() == {"cpu": 500, "memory": 0, "pods": 1}
    kubelet._set_phase(old, "Failed")
    assert kubelet._in_use() == {"cpu": 500, "memory": 0, "pods": 1}
    assert phases[-1] == ("Failed", False) and ("Running", True) in phases


@pytest.mark.parametrize("shutdown", [False, True])
def test_stopped_kubelet_sends_nothing_until_restarted(shutdown):
    node = Node()
    sent = record(node.kubelet.client)
    node.pod("a", [app()], behavior={"exitAfter": 15, "exitCode": 0}, restartPolicy="Never")
    node.pod("b", [app()])
    node.until(12)  # a renewal went out at 10 s; the next one is due at 20 s
    node.plane.ok("delete", "pods", namespace="default", name="b")
    node.kubelet.stop(shutdown=shutdown)
    stop = node.plane.engine.now
    node.pod("c", [app()])  # bound to the node while it is cut off
    node.until(30)
    assert max(r["at"] for r in reached(sent)) <= stop  # no renewal, no status, no delete, no relist
    assert node.status("a")["phase"] == "Running"  # the exit happened, but nobody reported it
    assert "default/c" not in node.kubelet.workers
    node.kubelet.restart()
    node.until(31 + PLEG_RELIST_PERIOD)
    if not shutdown:  # (after a shutdown the kubelet starts the pod over)
        assert node.status("a")["phase"] == "Succeeded"
    assert node.status("c")["phase"] == "Running"
    assert [p["metadata"]["name"] for p in node.plane.objects("pods")] == ["a", "c"]  # b's delete went out


def test_kubelet_stopped_as_a_final_status_leaves_deletes_the_pod_only_after_restart():
    node = Node()
    node.pod("a", [app()])
    node.until(3)
    sent = record(node.kubelet.client)
    stops = []
    race(
        node.kubelet.client,
        "patch",
        "pods",
        "status",
        lambda _: (stops.append(node.plane.engine.now), node.kubelet.stop()),
        lead=0.0,
    )  # its answer lands after the stop
    node.plane.ok("delete", "pods", namespace="default", name="a")
    node.until(10)
    assert [(r["verb"], r["code"]) for r in sent] == [("patch", 200)] and sent[0]["at"] == stops[0]
    assert [p["metadata"]["name"] for p in node.plane.objects("pods")] == ["a"]  # no delete from a stopped node
    node.kubelet.restart()
    node.until(12)
    assert node.plane.objects("pods") == []


def test_failed_status_patch_is_sent_again_at_the_next_sync():
    node = Node()
    fail_next(node.kubelet.client, "patch", "pods", "status", times=2)  # SyncPod's Pending status, then Running
    t0 = node.pod("a", [app()])
    node.until(t0 + STATUS_SYNC_PERIOD - 1)
    assert node.status("a").get("phase") is None  # both reports were refused and nothing has changed since
    node.until(t0 + STATUS_SYNC_PERIOD + 2)
    assert node.status("a")["phase"] == "Running"


def test_failed_final_delete_is_sent_again_at_the_next_sync():
    node = Node()
    node.pod("a", [app()])
    node.until(3)
    fail_next(node.kubelet.client, "delete", "pods", times=2)  # after the final status and its PLEG relist
    node.plane.ok("delete", "pods", namespace="default", name="a")
    node.until(5)
    assert [p["metadata"]["name"] for p in node.plane.objects("pods")] == ["a"]  # stopped, but still there
    node.until(4 + STATUS_SYNC_PERIOD)
    assert node.plane.objects("pods") == []


def test_shutdown_kills_containers_and_restart_starts_the_pods_over():
    node = Node()
    node.pod("a", [app()])
    node.until(5)
    first_ip = node.status("a")["podIP"]
    node.kubelet.stop(shutdown=True)
    c = node.worker("a").containers[0]
    assert c.state == "terminated" and c.exit_code == 137
    node.until(30)
    node.kubelet.restart()
    node.until(35)
    status = node.status("a")
    assert status["phase"] == "Running" and ready(status)
    assert status["containerStatuses"][0]["restartCount"] == 1 and status["podIP"] != first_ip
