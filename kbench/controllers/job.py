"""Job and TTL-after-finished controllers (pkg/controller/job, pkg/controller/ttlafterfinished, v1.35).

A Job runs up to ``parallelism`` pods at once until ``completions`` succeeded (NonIndexed mode). Failed
pods count against ``backoffLimit`` (default 6); a new pod after failures waits the pod-failure backoff,
10 s doubling up to 6 min (``DefaultJobPodFailureBackOff``, ``MaxJobPodFailureBackOff``). The Job fails
(condition Failed, reason BackoffLimitExceeded or DeadlineExceeded after ``activeDeadlineSeconds``,
deleting its active pods) or completes (condition Complete); the TTL controller deletes a finished Job
``ttlSecondsAfterFinished`` after its finish time. Not modelled: Indexed completion mode, pod failure
policies, the job-tracking finalizer on pods (failures are counted from the pods the informer sees).
"""

from __future__ import annotations

from kbench.apiserver.objects import APIError, seconds
from kbench.controllers.base import (
    Controller,
    Expectations,
    active_pod,
    condition,
    controller_key,
    owned_by,
    owner_reference,
)

BACKOFF, MAX_BACKOFF = 10.0, 360.0


class JobController(Controller):
    name = "job-controller"
    workers = 5  # --concurrent-job-syncs

    def __init__(self, manager) -> None:
        super().__init__(manager)
        self.jobs = manager.informer("jobs")
        self.pods = manager.informer("pods")
        self.jobs.add_handler(on_add=self.enqueue, on_update=self.enqueue)
        self.pods.add_handler(
            on_add=lambda p: self._pod(p, True), on_update=lambda o, n: self._pod(n), on_delete=self._pod
        )
        self.expect = Expectations(self.engine)
        self.last_failure: dict[str, tuple[int, float]] = {}
        """job -> (failed pods seen, when the last of them was first seen)."""

    def _pod(self, pod, added: bool = False) -> None:
        key = controller_key(pod, "Job")
        if key is not None:
            if added:
                self.expect.observed(key, 0)
            self.queue.add(key)

    def sync(self, key):
        job = self.jobs.cache.get(key)
        if job is None or condition(job, "Complete") or condition(job, "Failed"):
            return
        ns, spec, now = job["metadata"]["namespace"], job["spec"], self.engine.now
        pods = [p for p in self.pods.cache.values() if p["metadata"]["namespace"] == ns and owned_by(p, job)]
        active = [p for p in pods if active_pod(p)]
        succeeded = sum(p.get("status", {}).get("phase") == "Succeeded" for p in pods)
        failed = sum(p.get("status", {}).get("phase") == "Failed" for p in pods)
        completions = spec.get("completions", 1)
        parallelism = spec.get("parallelism", 1)
        started = seconds(job.get("status", {}).get("startTime") or job["metadata"]["creationTimestamp"])
        finish = None
        if failed > spec.get("backoffLimit", 6):
            finish = ("Failed", "BackoffLimitExceeded", "Job has reached the specified backoff limit")
        elif spec.get("activeDeadlineSeconds") is not None and now - started >= spec["activeDeadlineSeconds"]:
            finish = ("Failed", "DeadlineExceeded", "Job was active longer than specified deadline")
        elif completions is not None and succeeded >= completions:
            finish = ("Complete", "", "")
        if finish and finish[0] == "Failed":
            for pod in active:
                yield from self.delete("pods", ns, pod["metadata"]["name"])
            active = []
        elif not finish and self.expect.satisfied(key):
            want = min(parallelism, completions - succeeded) if completions is not None else parallelism
            missing = want - len(active)
            if missing > 0 and failed:
                seen, since = self.last_failure.get(key, (0, now))
                if failed > seen:
                    since = now
                    self.last_failure[key] = (failed, now)
                backoff = min(BACKOFF * 2 ** (failed - 1), MAX_BACKOFF)
                if now < since + backoff:
                    self.queue.add_after(key, since + backoff - now)
                    missing = 0
            if missing > 0:
                self.expect.expect(key, missing, 0)
            for _ in range(max(0, missing)):
                try:
                    yield self.client.call("create", "pods", namespace=ns, body=self._pod_for(job))
                except APIError:
                    self.expect.lower(key, 0)
                    raise
            if spec.get("activeDeadlineSeconds") is not None:
                self.queue.add_after(key, started + spec["activeDeadlineSeconds"] - now)
        yield from self._status(job, len(active), succeeded, failed, finish, started)

    @staticmethod
    def _pod_for(job) -> dict:
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

    def _status(self, job, active: int, succeeded: int, failed: int, finish, started: float):
        status = dict(job.get("status") or {})
        new = {"active": active, "succeeded": succeeded, "failed": failed}
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


class TTLAfterFinishedController(Controller):
    name = "ttl-after-finished-controller"

    def __init__(self, manager) -> None:
        super().__init__(manager)
        self.jobs = manager.informer("jobs")
        self.jobs.add_handler(on_add=self.enqueue, on_update=self.enqueue)

    def sync(self, key):
        job = self.jobs.cache.get(key)
        if job is None or job["spec"].get("ttlSecondsAfterFinished") is None:
            return
        done = condition(job, "Complete") or condition(job, "Failed")
        if not done:
            return
        expires = seconds(done["lastTransitionTime"]) + job["spec"]["ttlSecondsAfterFinished"]
        if self.engine.now < expires:
            self.queue.add_after(key, expires - self.engine.now)
            return
        yield self.client.call("delete", "jobs", namespace=job["metadata"]["namespace"], name=job["metadata"]["name"])
