"""Job controller (pkg/controller/job, v1.35).

A Job runs up to ``parallelism`` pods at once until ``completions`` succeeded (NonIndexed mode). Failed
pods count against ``backoffLimit`` (default 6); a new pod after failures waits the pod-failure backoff,
10 s doubling up to 6 min (``DefaultJobPodFailureBackOff``, ``MaxJobPodFailureBackOff``). The Job fails
(condition Failed, reason BackoffLimitExceeded or DeadlineExceeded after ``activeDeadlineSeconds``,
deleting its active pods) or completes (condition Complete). Workers: ``--concurrent-job-syncs``. Not modelled:
Indexed completion mode, pod failure policies, the job-tracking finalizer on pods (failures are counted from the
pods the informer sees).
"""

from __future__ import annotations

from collections.abc import Mapping

from kbench.apiserver.objects import APIError, seconds
from kbench.controllers.base import Expectations, Manager, PodOwner, active_pod, condition, controlled, owner_reference

BACKOFF, MAX_BACKOFF = 10.0, 360.0
"""DefaultJobPodFailureBackOff, MaxJobPodFailureBackOff (pkg/controller/job/job_controller.go)."""


def finish_condition(job: Mapping, succeeded: int, failed: int, started: float, now: float):
    """The condition a Job ends with now, as (type, reason, message), or None while it runs."""
    spec = job["spec"]
    completions = spec.get("completions", 1)
    if failed > spec.get("backoffLimit", 6):
        return ("Failed", "BackoffLimitExceeded", "Job has reached the specified backoff limit")
    if spec.get("activeDeadlineSeconds") is not None and now - started >= spec["activeDeadlineSeconds"]:
        return ("Failed", "DeadlineExceeded", "Job was active longer than specified deadline")
    if completions is not None and succeeded >= completions:
        return ("Complete", "", "")
    return None


class JobController(PodOwner):
    """Job controller: syncJob for each Job key."""

    name = "job-controller"
    owner_kind = "Job"
    resource, workers_option = "jobs", "concurrent_job_syncs"

    def __init__(self, manager: Manager) -> None:
        super().__init__(manager)
        self.last_failure: dict[str, tuple[int, float]] = {}
        """job -> (failed pods seen, when the last of them was first seen)."""

    def sync(self, key):
        """syncJob: count the Job's pods, fail or complete it, or create the pods it is missing; then the status."""
        job = self.primary.cache.get(key)
        if job is None or condition(job, "Complete") or condition(job, "Failed"):
            return
        ns = job["metadata"]["namespace"]
        pods = controlled(self.pods, job)
        active = [p for p in pods if active_pod(p)]
        succeeded = sum(p.get("status", {}).get("phase") == "Succeeded" for p in pods)
        failed = sum(p.get("status", {}).get("phase") == "Failed" for p in pods)
        started = seconds(job.get("status", {}).get("startTime") or job["metadata"]["creationTimestamp"])
        finish = finish_condition(job, succeeded, failed, started, self.engine.now)
        if finish and finish[0] == "Failed":
            for pod in active:
                yield from self.delete("pods", ns, pod["metadata"]["name"])
            active = []
        elif not finish and self.expect.satisfied(key):
            yield from self._manage(job, key, len(active), succeeded, failed, started)
        yield from self._status(job, len(active), succeeded, failed, finish, started)

    def _manage(self, job: Mapping, key: str, active: int, succeeded: int, failed: int, started: float):
        """Process body: manageJob: create the pods missing for ``parallelism`` after the pod-failure backoff."""
        spec, now = job["spec"], self.engine.now
        completions, parallelism = spec.get("completions", 1), spec.get("parallelism", 1)
        want = min(parallelism, completions - succeeded) if completions is not None else parallelism
        missing = want - active
        if missing > 0 and failed and self._backing_off(key, failed, now):
            missing = 0
        if missing > 0:
            self.expect.expect(key, missing, 0)
        for _ in range(max(0, missing)):
            try:
                yield self.client.call(
                    "create", "pods", namespace=job["metadata"]["namespace"], body=self._pod_for(job)
                )
            except APIError:
                self.expect.lower(key, Expectations.ADDED)
                raise
        if spec.get("activeDeadlineSeconds") is not None:
            self.queue.add_after(key, started + spec["activeDeadlineSeconds"] - now)

    def _backing_off(self, key: str, failed: int, now: float) -> bool:
        """Whether the pod-failure backoff (10 s doubling per failure, at most 6 min, from the last failure seen)
        still runs; if so the key comes back when it ends."""
        seen, since = self.last_failure.get(key, (0, now))
        if failed > seen:
            since = now
            self.last_failure[key] = (failed, now)
        backoff = min(BACKOFF * 2 ** (failed - 1), MAX_BACKOFF)
        if now < since + backoff:
            self.queue.add_after(key, since + backoff - now)
            return True
        return False

    @staticmethod
    def _pod_for(job: Mapping) -> dict:
        """A pod of the Job's template, labelled with the Job and owned by it."""
        template = job["spec"]["template"]
        labels = {
            **(template.get("metadata", {}).get("labels") or {}),
            "batch.kubernetes.io/job-name": job["metadata"]["name"],
            "batch.kubernetes.io/controller-uid": job["metadata"]["uid"],
        }
        spec = {"restartPolicy": "Never", **template.get("spec", {})}
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "generateName": f"{job['metadata']['name']}-",
                "labels": labels,
                "annotations": dict(template.get("metadata", {}).get("annotations") or {}),
                "ownerReferences": [owner_reference(job)],
            },
            "spec": spec,
        }

    def _status(self, job: Mapping, active: int, succeeded: int, failed: int, finish, started: float):
        """Process body: the Job's status counts, start time and finishing condition (written when changed)."""
        status = dict(job.get("status") or {})
        new: dict = {"active": active, "succeeded": succeeded, "failed": failed}
        new.setdefault("startTime", status.get("startTime") or self.now_stamp())
        if finish:
            stamp = self.now_stamp()
            new["conditions"] = [
                *(status.get("conditions") or []),
                {
                    "type": finish[0],
                    "status": "True",
                    "reason": finish[1],
                    "message": finish[2],
                    "lastProbeTime": stamp,
                    "lastTransitionTime": stamp,
                },
            ]
            if finish[0] == "Complete":
                new["completionTime"] = stamp
        if all(status.get(k) == v for k, v in new.items()):
            return
        body = self.copy(job)
        body["status"] = {**status, **new}
        yield self.client.call("update", "jobs", body=body, subresource="status")
