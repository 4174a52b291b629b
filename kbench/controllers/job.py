"""Job controller (pkg/controller/job, v1.35).

A Job runs up to ``parallelism`` pods at once until ``completions`` succeeded (NonIndexed mode; SetDefaults_Job:
both 1 when neither is set, ``completions`` unset with ``parallelism`` set is a work queue, done when a pod
succeeded and none is active). Failed pods count against ``backoffLimit`` (default 6).

Pod-failure backoff (backoff_utils.go): a ``backoffRecord`` per Job keeps ``failuresAfterLastSuccess`` and
``lastFailureTime``, updated from the pods that finished since the last sync (``newBackoffRecord``); the finish time
of a pod is its containers' latest ``terminated.finishedAt``, else its Ready=False ``lastTransitionTime``, else
``deletionTimestamp - deletionGracePeriodSeconds``, else its ``creationTimestamp`` (``getFinishedTime``). manageJob
creates no pod while ``DefaultJobPodFailureBackOff`` (10 s) doubled per failure after the first, at most
``MaxJobPodFailureBackOff`` (10 min), has not passed since ``lastFailureTime``; it requeues the Job for then.

Finishing (syncJob, trackJobStatusAndRemoveFinalizers, enactJobFinished; ``delayTerminalCondition`` holds in v1.35,
JobPodReplacementPolicy and JobManagedBy being on): a failure (``BackoffLimitExceeded`` after more than
``backoffLimit`` failures, ``DeadlineExceeded`` after ``activeDeadlineSeconds``) first adds the interim
``FailureTarget`` condition and deletes the active pods; ``Failed`` (same reason and message) is added only once
no pod of the Job is terminating. Success adds ``SuccessCriteriaMet`` (reason ``CompletionsReached``), then
``Complete`` with ``completionTime``. Events as upstream's recorder (component ``job-controller``):
``SuccessfulCreate`` / ``FailedCreate`` / ``SuccessfulDelete`` / ``FailedDelete`` (controller_utils.go
RealPodControl), ``Completed`` "Job completed" or a Warning with the failure's reason and message
(``recordJobFinished``). Workers: ``--concurrent-job-syncs``. Not modelled: Indexed completion mode, suspend, pod
failure and success policies, the job-tracking finalizer (failures are counted from the pods the informer sees;
a pod is "new" for the backoff record the first sync that sees it finished), manageJob's deletion of active pods
beyond ``parallelism`` (when it is lowered).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from kbench.apiserver.objects import APIError, seconds
from kbench.controllers.base import (
    Manager,
    PodOwner,
    active_pod,
    condition,
    controlled,
    owner_reference,
    pod_ready,
)

BACKOFF = 10.0
"""DefaultJobPodFailureBackOff = 10 * time.Second (pkg/controller/job/job_controller.go)."""
MAX_BACKOFF = 600.0
"""MaxJobPodFailureBackOff = 10 * time.Minute (pkg/controller/job/job_controller.go)."""
MAX_POD_CREATE_DELETE_PER_SYNC = 500
"""MaxPodCreateDeletePerSync (pkg/controller/job/job_controller.go): pod creations in one sync at most."""
BACKOFF_LIMIT_MESSAGE = "Job has reached the specified backoff limit"
DEADLINE_MESSAGE = "Job was active longer than specified deadline"
COMPLETIONS_MESSAGE = "Reached expected number of succeeded pods"
"""newSuccessCondition's message for reason ``CompletionsReached`` (batch/v1 JobReasonCompletionsReached)."""
TERMINAL = ("Succeeded", "Failed")


def finished_time(pod: Mapping) -> float:
    """getFinishedTime: when a finished pod finished (seconds), by upstream's four lookups in order."""
    status, meta = pod.get("status") or {}, pod["metadata"]
    containers = status.get("containerStatuses") or ()
    ends = [(c.get("state") or {}).get("terminated", {}).get("finishedAt") for c in containers]
    if containers and all(ends):
        return max(seconds(e) for e in ends)
    ready = next((c for c in status.get("conditions") or () if c.get("type") == "Ready"), None)
    if ready and ready.get("status") == "False" and ready.get("lastTransitionTime"):
        return seconds(ready["lastTransitionTime"])
    if meta.get("deletionTimestamp"):
        return seconds(meta["deletionTimestamp"]) - float(meta.get("deletionGracePeriodSeconds") or 0)
    return seconds(meta["creationTimestamp"])


@dataclass(frozen=True)
class BackoffRecord:
    """backoffRecord: consecutive pod failures since the last success and when the last of them finished."""

    failures_after_last_success: int = 0
    last_failure_time: float | None = None

    def updated(self, succeeded: Iterable[Mapping], failed: Iterable[Mapping]) -> BackoffRecord:
        """newBackoffRecord: this record after the pods that newly succeeded and failed."""
        wins = sorted(finished_time(p) for p in succeeded)
        losses = sorted(finished_time(p) for p in failed)
        if not wins:
            if not losses:
                return self
            return BackoffRecord(self.failures_after_last_success + len(losses), losses[-1])
        after = [t for t in losses if t > wins[-1]]
        return BackoffRecord(len(after), after[-1] if after else None)

    def remaining(self, now: float, default: float = BACKOFF, maximum: float = MAX_BACKOFF) -> float:
        """getRemainingTimeForFailuresCount: seconds of backoff left before a replacement pod may be created."""
        if self.failures_after_last_success == 0 or self.last_failure_time is None:
            return 0.0
        backoff = default
        for _ in range(1, self.failures_after_last_success):  # doubled per failure, stopping at the maximum
            backoff *= 2
            if backoff >= maximum:
                break
        backoff = min(backoff, maximum)
        return max(0.0, backoff - (now - self.last_failure_time))


def job_condition(kind: str, reason: str, message: str, now: str) -> dict:
    """newCondition: a True condition of ``kind`` probed and transitioned ``now``."""
    return {
        "type": kind,
        "status": "True",
        "reason": reason,
        "message": message,
        "lastProbeTime": now,
        "lastTransitionTime": now,
    }


def _true(job: Mapping, kind: str) -> Mapping | None:
    cond = condition(job, kind)
    return cond if cond is not None and cond.get("status") == "True" else None


def defaulted(spec: Mapping) -> tuple[int | None, int, int]:
    """(completions, parallelism, backoffLimit) after SetDefaults_Job (pkg/apis/batch/v1/defaults.go)."""
    if spec.get("completions") is None and spec.get("parallelism") is None:
        return 1, 1, spec.get("backoffLimit", 6)
    parallelism = spec.get("parallelism")
    return spec.get("completions"), 1 if parallelism is None else parallelism, spec.get("backoffLimit", 6)


class JobController(PodOwner):
    """Job controller: syncJob for each Job key."""

    name = "job-controller"
    event_source = "job-controller"
    owner_kind = "Job"
    resource, workers_option = "jobs", "concurrent_job_syncs"

    def __init__(self, manager: Manager) -> None:
        super().__init__(manager)
        self.backoff: dict[str, BackoffRecord] = {}
        """podBackoffStore: the backoff record of each Job key."""
        self.counted: dict[str, set[str]] = {}
        """Job key -> uids of its finished pods already taken into its backoff record."""

    def sync(self, key):
        """syncJob: count the Job's pods, pick its finishing condition, delete or create pods, then the status."""
        job = self.primary.cache.get(key)
        if job is None or _true(job, "Complete") or _true(job, "Failed"):
            self.backoff.pop(key, None)
            self.counted.pop(key, None)
            return
        satisfied = self.expect.satisfied(key)
        pods = controlled(self.pods, job)
        active = [p for p in pods if active_pod(p)]
        terminating = sum(bool(p["metadata"].get("deletionTimestamp")) and not _terminal(p) for p in pods)
        new = [p for p in pods if _terminal(p) and p["metadata"]["uid"] not in self.counted.get(key, ())]
        won = [p for p in new if p["status"]["phase"] == "Succeeded"]
        record = self.backoff.get(key, BackoffRecord()).updated(won, [p for p in new if p not in won])
        self.backoff[key] = record
        self.counted.setdefault(key, set()).update(p["metadata"]["uid"] for p in new)
        succeeded = sum(p.get("status", {}).get("phase") == "Succeeded" for p in pods)
        failed = sum(p.get("status", {}).get("phase") == "Failed" for p in pods)
        started = job.get("status", {}).get("startTime") or self.now_stamp()
        finish = self._finishing(job, key, failed, seconds(started))
        count, ready = len(active), sum(pod_ready(p) for p in active)
        if finish is not None:
            deleted, deleted_ready = yield from self._delete_active(job, active)
            if deleted != len(active) or not satisfied:
                finish = None
            count, ready, terminating = count - deleted, ready - deleted_ready, terminating + deleted
        else:
            if satisfied:
                count += yield from self._manage(job, key, count, succeeded, record)
            completions = defaulted(job["spec"])[0]
            if (succeeded > 0 if completions is None else succeeded >= completions) and count == 0:
                finish = job_condition("SuccessCriteriaMet", "CompletionsReached", COMPLETIONS_MESSAGE, "")
        counts = {"active": count, "succeeded": succeeded, "failed": failed, "ready": ready, "terminating": terminating}
        yield from self._track_status(job, counts, started, finish)

    def _finishing(self, job: Mapping, key: str, failed: int, started: float) -> dict | None:
        """The condition the Job is finishing with: one it already has (SuccessCriteriaMet, or Failed after its
        FailureTarget), or a new FailureTarget (backoff limit, active deadline); else requeue for the deadline."""
        spec, now = job["spec"], self.engine.now
        met = _true(job, "SuccessCriteriaMet")
        if met is not None:
            return dict(met)
        target = _true(job, "FailureTarget")
        if target is not None:
            return dict(target)
        if failed > defaulted(spec)[2]:
            return job_condition("FailureTarget", "BackoffLimitExceeded", BACKOFF_LIMIT_MESSAGE, "")
        deadline = spec.get("activeDeadlineSeconds")
        if deadline is not None and now - started >= deadline:
            return job_condition("FailureTarget", "DeadlineExceeded", DEADLINE_MESSAGE, "")
        if deadline is not None:
            self.queue.add_after(key, started + deadline - now)
        return None

    def _delete_active(self, job: Mapping, active: list[Mapping]):
        """Process body: deleteActivePods; returns how many deletions succeeded (gone counts as deleted) and how
        many of those pods were ready."""
        deleted, deleted_ready, ns = 0, 0, job["metadata"]["namespace"]
        for pod in active:
            name = pod["metadata"]["name"]
            try:
                yield self.client.call("delete", "pods", namespace=ns, name=name)
            except APIError as err:
                if err.code != 404:
                    self.recorder.event(job, "Warning", "FailedDelete", f"Error deleting: {err.message}")
                    continue
            else:
                self.recorder.event(job, "Normal", "SuccessfulDelete", f"Deleted pod: {name}")
            deleted += 1
            deleted_ready += pod_ready(pod)
        return deleted, deleted_ready

    def _manage(self, job: Mapping, key: str, active: int, succeeded: int, record: BackoffRecord):
        """Process body: manageJob: create the pods missing for ``parallelism`` (at most 500, in slow-start batches)
        once the pod-failure backoff has passed (else requeue the key for when it does); returns how many pods it
        created."""
        completions, parallelism, _ = defaulted(job["spec"])
        want = min(parallelism, completions - succeeded) if completions is not None else parallelism
        if completions is None and succeeded > 0:
            want = 0
        missing = want - active
        if missing <= 0:
            return 0
        wait = record.remaining(self.engine.now)
        if wait > 0:
            self.queue.add_after(key, wait)
            return 0
        missing = min(missing, MAX_POD_CREATE_DELETE_PER_SYNC)
        yield from self.create_pods(job, key, missing, lambda: self._pod_for(job))
        return missing

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

    def _track_status(self, job: Mapping, counts: dict, started: str, finish: dict | None):
        """Process body: trackJobStatusAndRemoveFinalizers: write the counts and any new interim condition
        (FailureTarget, SuccessCriteriaMet); then, when no pod is terminating, the terminal condition (Failed,
        Complete) in a second write (enactJobFinished) and its Event (recordJobFinished)."""
        status = dict(job.get("status") or {})
        conditions = list(status.get("conditions") or [])
        new = {**counts, "startTime": started}
        stamp = self.now_stamp()
        if finish is not None and finish["type"] in ("FailureTarget", "SuccessCriteriaMet"):
            if _true(job, finish["type"]) is None:
                conditions.append({**finish, "lastProbeTime": stamp, "lastTransitionTime": stamp})
            kind = "Failed" if finish["type"] == "FailureTarget" else "Complete"
            finish = job_condition(kind, finish["reason"], finish["message"], stamp)
        if conditions != (status.get("conditions") or []):
            new["conditions"] = conditions
        if any(status.get(k) != v for k, v in new.items()):
            status.update(new)
            job = yield from self._write(job, status)
        if finish is None or counts["terminating"] > 0:
            return
        status = {**status, "conditions": [*conditions, finish]}
        if finish["type"] == "Complete":
            status["completionTime"] = stamp
        yield from self._write(job, status)
        if finish["type"] == "Complete":
            self.recorder.event(job, "Normal", "Completed", "Job completed")
        else:
            self.recorder.event(job, "Warning", finish["reason"], finish["message"])

    def _write(self, job: Mapping, status: dict):
        """Process body: update the Job's status subresource; returns the Job written."""
        body = self.copy(job)
        body["status"] = status
        return (yield self.client.call("update", "jobs", body=body, subresource="status"))


def _terminal(pod: Mapping) -> bool:
    return (pod.get("status") or {}).get("phase") in TERMINAL
