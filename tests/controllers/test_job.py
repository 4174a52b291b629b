"""Job controller against upstream v1.35 (pkg/controller/job/job_controller.go, backoff_utils.go) in virtual time."""

from __future__ import annotations

import pytest

from kbench.apiserver.objects import seconds, timestamp
from kbench.controllers.job import BACKOFF, MAX_BACKOFF, BackoffRecord, finished_time
from tests.controlplane.helpers import Plane, fail_next, kcm, record, workload


def _pod(created: float = 0.0, **status) -> dict:
    return {"metadata": {"uid": "u", "creationTimestamp": timestamp(created)}, "status": status}


def _terminated(*ends: float) -> list[dict]:
    return [{"name": f"c{i}", "state": {"terminated": {"finishedAt": timestamp(t)}}} for i, t in enumerate(ends)]


def test_finished_time_uses_upstreams_lookups_in_order():
    """getFinishedTime: the containers' latest finishedAt, else Ready=False's lastTransitionTime, else
    deletionTimestamp - deletionGracePeriodSeconds, else creationTimestamp."""
    ready_false = [{"type": "Ready", "status": "False", "lastTransitionTime": timestamp(50)}]
    assert finished_time(_pod(containerStatuses=_terminated(40, 45), conditions=ready_false)) == 45
    running = _terminated(40) + [{"name": "c9", "state": {"running": {}}}]
    assert finished_time(_pod(containerStatuses=running, conditions=ready_false)) == 50
    deleted = _pod(5.0)
    deleted["metadata"].update(deletionTimestamp=timestamp(100), deletionGracePeriodSeconds=30)
    assert finished_time(deleted) == 70
    assert finished_time(_pod(7.0)) == 7


def test_backoff_record_counts_failures_after_the_last_success():
    """newBackoffRecord: failures add up; a success resets the count to the failures that finished after it."""
    fail = lambda t: _pod(containerStatuses=_terminated(t))  # noqa: E731
    record = BackoffRecord().updated([], [fail(10), fail(30)])
    assert record == BackoffRecord(2, 30)
    assert record.updated([], []) is record
    assert record.updated([], [fail(40)]) == BackoffRecord(3, 40)
    assert record.updated([fail(35)], []) == BackoffRecord(0, None)
    assert record.updated([fail(35)], [fail(20), fail(50), fail(60)]) == BackoffRecord(2, 60)


@pytest.mark.parametrize(
    ("failures", "elapsed", "remaining"),
    [
        (0, 0, 0),
        (1, 0, 10),
        (1, 4, 6),
        (2, 0, 20),
        (3, 50, 0),
        (6, 0, 320),
        (7, 0, 600),
        (30, 100, 500),
        (5000, 0, 600),
    ],
)
def test_backoff_is_10s_doubling_up_to_10_minutes_from_the_last_failure(failures, elapsed, remaining):
    """getRemainingTimeForFailuresCount with DefaultJobPodFailureBackOff 10 s, MaxJobPodFailureBackOff 10 min."""
    assert (BACKOFF, MAX_BACKOFF) == (10.0, 600.0)
    record = BackoffRecord(failures, 1000.0 if failures else None)
    assert record.remaining(1000.0 + elapsed) == pytest.approx(remaining)


def _job_plane(**spec) -> Plane:
    plane = Plane(nodes=1)
    kcm(plane, "job").start()
    plane.ok("create", "jobs", namespace="default", body=workload("Job", "batch", 0, **spec))
    plane.run(plane.engine.now + 2)
    return plane


def _pods(plane: Plane, phase: str | None = None) -> list[dict]:
    pods = plane.objects("pods")
    return [p for p in pods if phase is None or p.get("status", {}).get("phase") == phase]


def _finish(plane: Plane, pod: dict, phase: str, finished_at: float) -> None:
    containers = [{"name": "c", "state": {"terminated": {"exitCode": 1, "finishedAt": timestamp(finished_at)}}}]
    body = {**pod, "status": {"phase": phase, "containerStatuses": containers}}
    plane.ok("update", "pods", subresource="status", body=body)


def _job(plane: Plane) -> dict:
    return plane.ok("get", "jobs", namespace="default", name="batch")


def test_replacement_waits_the_backoff_from_the_pods_finish_time_not_from_when_it_was_seen():
    """A failure reported 6 s after the container finished leaves 4 s of the 10 s backoff."""
    plane = _job_plane(backoffLimit=3)
    (first,) = _pods(plane)
    plane.run(20.0)
    _finish(plane, first, "Failed", finished_at=plane.engine.now - 6)
    reported = plane.engine.now
    while len(plane.objects("pods")) < 2:
        plane.run(plane.engine.now + 0.25)
    created = [p for p in plane.objects("pods") if p["metadata"]["name"] != first["metadata"]["name"]]
    assert seconds(created[0]["metadata"]["creationTimestamp"]) - reported == pytest.approx(4.0, abs=1.3)


def test_backoff_limit_adds_failure_target_then_failed_once_pods_are_terminated():
    """FailureTarget first (active pods deleted, status.terminating counted), Failed only when none terminates."""
    plane = _job_plane(parallelism=2, completions=2, backoffLimit=0)
    plane.run_pods()  # bound and Running: their deletion is graceful
    plane.run(plane.engine.now + 1)
    doomed, survivor = _pods(plane)
    _finish(plane, doomed, "Failed", plane.engine.now)
    plane.run(plane.engine.now + 2)
    job = _job(plane)
    assert [c["type"] for c in job["status"]["conditions"]] == ["FailureTarget"]
    target = job["status"]["conditions"][0]
    assert (target["reason"], target["message"]) == (
        "BackoffLimitExceeded",
        "Job has reached the specified backoff limit",
    )
    assert job["status"]["terminating"] == 1 and job["status"]["active"] == 0 and job["status"]["failed"] == 1
    gone = plane.ok("get", "pods", namespace="default", name=survivor["metadata"]["name"])
    assert gone["metadata"]["deletionTimestamp"]
    plane.ok("delete", "pods", namespace="default", name=survivor["metadata"]["name"], gracePeriodSeconds=0)
    plane.run(plane.engine.now + 2)
    conditions = _job(plane)["status"]["conditions"]
    assert [c["type"] for c in conditions] == ["FailureTarget", "Failed"]
    assert (conditions[1]["reason"], conditions[1]["message"]) == (target["reason"], target["message"])
    assert _job(plane)["status"]["terminating"] == 0


def test_completion_adds_success_criteria_met_then_complete_and_the_events():
    plane = _job_plane(completions=1)
    (pod,) = _pods(plane)
    _finish(plane, pod, "Succeeded", plane.engine.now)
    plane.run(plane.engine.now + 3)
    job = _job(plane)
    conditions = job["status"]["conditions"]
    assert [(c["type"], c["reason"]) for c in conditions] == [
        ("SuccessCriteriaMet", "CompletionsReached"),
        ("Complete", "CompletionsReached"),
    ]
    assert conditions[0]["message"] == "Reached expected number of succeeded pods"
    assert job["status"]["completionTime"] and job["status"]["succeeded"] == 1
    events = {(e["reason"], e["type"], e["message"]) for e in plane.objects("events", "default")}
    assert ("SuccessfulCreate", "Normal", f"Created pod: {pod['metadata']['name']}") in events
    assert ("Completed", "Normal", "Job completed") in events
    assert all(e["source"]["component"] == "job-controller" for e in plane.objects("events", "default"))


def test_failed_job_records_a_warning_with_the_condition_reason():
    plane = _job_plane(backoffLimit=0)
    (pod,) = _pods(plane)
    _finish(plane, pod, "Failed", plane.engine.now)
    plane.run(plane.engine.now + 3)
    assert [c["type"] for c in _job(plane)["status"]["conditions"]] == ["FailureTarget", "Failed"]
    warnings = {(e["reason"], e["message"]) for e in plane.objects("events", "default") if e["type"] == "Warning"}
    assert warnings == {("BackoffLimitExceeded", "Job has reached the specified backoff limit")}


def test_work_queue_job_completes_when_one_pod_succeeded_and_none_is_active():
    """SetDefaults_Job: parallelism set and completions unset is a work queue (completions stays nil)."""
    plane = _job_plane(parallelism=2)
    first, second = _pods(plane)
    _finish(plane, first, "Succeeded", plane.engine.now)
    plane.run(plane.engine.now + 3)
    assert len(plane.objects("pods")) == 2 and not _job(plane)["status"].get("conditions")
    _finish(plane, second, "Succeeded", plane.engine.now)
    plane.run(plane.engine.now + 3)
    assert [c["type"] for c in _job(plane)["status"]["conditions"]] == ["SuccessCriteriaMet", "Complete"]


def _job_events(plane: Plane, reason: str) -> list[dict]:
    return [obj for obj, _, _ in plane.api.caches["events"].objects.values() if obj["reason"] == reason]


def test_failed_create_records_the_status_message_unless_the_namespace_is_terminating():
    """RealPodControl.createPods: a Warning ``FailedCreate`` "Error creating: <err>" (``%v`` of a StatusError is its
    message), none when the namespace is terminating (HasStatusCause NamespaceTerminatingCause)."""
    from kbench.apiserver.objects import APIError

    plane = Plane(nodes=1)
    plane.ok("create", "namespaces", body={"metadata": {"name": "gone"}})
    plane.ok("create", "jobs", namespace="gone", body=workload("Job", "j", 1, namespace="gone"))
    plane.ok("delete", "namespaces", name="gone")  # pods in it are refused from now on
    manager = kcm(plane, "job")
    controller = manager.controller("job-controller")
    call = controller.client.call

    def refused(verb, resource, **kwargs):  # a default-namespace pod create is refused by quota
        if verb == "create" and resource == "pods" and kwargs.get("namespace") == "default":
            return plane.engine.event().fail(APIError(403, "Forbidden", "exceeded quota: q"))
        return call(verb, resource, **kwargs)

    controller.client.call = refused
    recorded: list[tuple[str, str]] = []  # (Job, reason) of every event, written or not (one in "gone" is refused)
    event = controller.recorder.event
    controller.recorder.event = lambda obj, *args: (
        recorded.append((obj["metadata"]["name"], args[1])) or event(obj, *args)
    )
    manager.start()
    plane.ok("create", "jobs", namespace="default", body=workload("Job", "k", 1))
    plane.run(5.0)
    assert {name for name, reason in recorded if reason == "FailedCreate"} == {"k"}
    assert not plane.objects("pods")
    (event,) = _job_events(plane, "FailedCreate")
    assert event["message"] == "Error creating: exceeded quota: q" and event["type"] == "Warning"
    assert event["involvedObject"]["name"] == "k"


def test_pods_are_created_in_slow_start_batches():
    """manageJob's slowStartBatch: 7 pods are created 1, then 2, then 4 at a time (each batch sent together)."""
    plane = Plane(nodes=1)
    manager = kcm(plane, "job").start()
    sent = record(manager.controller("job-controller").client)
    plane.ok("create", "jobs", namespace="default", body=workload("Job", "wide", 0, parallelism=7, completions=7))
    plane.run(5.0)
    creates = [r for r in sent if (r["verb"], r["resource"]) == ("create", "pods")]
    batches: dict[float, int] = {}
    for r in creates:
        batches[r["at"]] = batches.get(r["at"], 0) + 1
    assert list(batches.values()) == [1, 2, 4]


def test_a_failed_create_lowers_the_expectations_of_the_pods_never_tried():
    """slowStartBatch: the creations skipped after a failed batch are not expected, so the Job's next sync (the
    rate-limited requeue) creates them, long before the 5-minute expectations timeout."""
    plane = Plane(nodes=1)
    manager = kcm(plane, "job").start()
    fail_next(manager.controller("job-controller").client, "create", "pods")
    plane.ok("create", "jobs", namespace="default", body=workload("Job", "wide", 0, parallelism=4, completions=4))
    plane.run(10.0)
    assert len(plane.objects("pods")) == 4
