"""TTL-after-finished controller (pkg/controller/ttlafterfinished, v1.35).

A finished Job (condition Complete or Failed) with ``ttlSecondsAfterFinished`` is deleted that many seconds after
its finish time; until then its key comes back when the TTL runs out. Workers:
``--concurrent-ttl-after-finished-syncs``. Not modelled: the fresh GET and the delete precondition on the Job's
resourceVersion upstream makes before deleting.
"""

from __future__ import annotations

from kbench.apiserver.objects import seconds
from kbench.controllers.base import Controller, condition


class TTLAfterFinishedController(Controller):
    """Deletes finished Jobs once their ``ttlSecondsAfterFinished`` has passed."""

    name = "ttl-after-finished-controller"
    resource, workers_option = "jobs", "concurrent_ttl_after_finished_syncs"

    def sync(self, key):
        """processJob: delete the Job when its TTL after finishing has run out, else come back then."""
        job = self.primary.cache.get(key)
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
