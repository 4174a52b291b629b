"""Leader election through a Lease (k8s.io/client-go/tools/leaderelection, resourcelock.LeaseLock).

Defaults are the components' flags (``--leader-elect-lease-duration`` 15 s, ``--leader-elect-renew-deadline``
10 s, ``--leader-elect-retry-period`` 2 s): every retry period a candidate reads the lease; it takes it when
no one holds it or the holder has not renewed for a lease duration as this candidate observed it (its own
clock, not the renewTime written by another), and the leader renews it every retry period, giving up when it
could not renew within the renew deadline.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kbench.apiserver.objects import APIError, copy_object, timestamp

LEASE_DURATION, RENEW_DEADLINE, RETRY_PERIOD = 15.0, 10.0, 2.0
"""k8s.io/component-base/config/v1alpha1 RecommendedDefaultLeaderElectionConfiguration."""
NAMESPACE = "kube-system"


@dataclass(frozen=True)
class LeaderElection:
    """A component's leader-election settings (``--leader-elect-*``): the Lease ``namespace/name`` and its timing."""

    name: str
    namespace: str = NAMESPACE
    lease_duration: float = LEASE_DURATION
    renew_deadline: float = RENEW_DEADLINE
    retry_period: float = RETRY_PERIOD


def leader_election(config: Any) -> LeaderElection | None:
    """A controller manager's ``--leader-elect*`` settings (GenericControllerManagerConfiguration's, shared by
    kube- and cloud-controller-manager) as a :class:`LeaderElection`; None without ``--leader-elect``."""
    if not config.leader_elect:
        return None
    return LeaderElection(
        config.leader_elect_resource_name,
        config.leader_elect_resource_namespace,
        config.leader_elect_lease_duration,
        config.leader_elect_renew_deadline,
        config.leader_elect_retry_period,
    )


class LeaderElector:
    """One candidate for the lease ``namespace/lease``: ``on_started`` when it takes the lease, ``on_stopped`` when
    it could not renew it within the renew deadline."""

    def __init__(
        self,
        client,
        lease: str,
        identity: str,
        on_started: Callable[[], None],
        on_stopped: Callable[[], None],
        lease_duration: float = LEASE_DURATION,
        renew_deadline: float = RENEW_DEADLINE,
        retry_period: float = RETRY_PERIOD,
        namespace: str = NAMESPACE,
    ) -> None:
        self.client, self.engine = client, client.engine
        self.lease, self.identity, self.namespace = lease, identity, namespace
        self.on_started, self.on_stopped = on_started, on_stopped
        self.lease_duration, self.renew_deadline, self.retry_period = lease_duration, renew_deadline, retry_period
        self.leader = False
        """(time, identity) whenever this candidate saw leadership change hands or took it."""
        self._observed: tuple[str, str] | None = None  # (holder, renewTime) last read
        self._observed_at = 0.0
        self._last_renew = 0.0
        self._stopped = False

    def run(self) -> None:
        """Start campaigning (leaderelection.RunOrDie)."""
        self.engine.process(self._loop(), name=f"leader-election-{self.identity}")

    def stop(self) -> None:
        """The process is gone: no more reads or renewals."""
        self._stopped = True

    def _loop(self):
        while not self._stopped:
            with contextlib.suppress(APIError):  # a failed read or write: try again next period
                yield from self._try()
            if self.leader and self.engine.now - self._last_renew > self.renew_deadline:
                self.leader = False  # failed to renew in time: stop leading
                self.on_stopped()
                return
            # the leader renews every retry period (wait.Until); candidates retry with wait.JitterUntil's
            # jitter factor 1.2, taken at its mean (period x 1.6)
            yield self.retry_period * (1.0 if self.leader else 1.6)

    def _try(self):
        """Process body: tryAcquireOrRenew: read the lease; take or renew it unless another holds it fresh."""
        try:
            lease = yield self.client.call("get", "leases", namespace=self.namespace, name=self.lease)
        except APIError as err:
            if err.code != 404:
                raise
            lease = None
        now = self.engine.now
        spec = lease["spec"] if lease else {}
        holder, renewed = spec.get("holderIdentity", ""), spec.get("renewTime", "")
        if (holder, renewed) != self._observed:
            self._observed, self._observed_at = (holder, renewed), now
        if holder and holder != self.identity and now < self._observed_at + self.lease_duration:
            return  # someone else holds a lease that is still fresh as we see it
        new_spec = self._record(spec, now)
        if lease is None:
            yield self.client.call(
                "create",
                "leases",
                namespace=self.namespace,
                body={"metadata": {"name": self.lease, "namespace": self.namespace}, "spec": new_spec},
            )
        else:
            body = copy_object(lease)
            body["spec"] = new_spec
            yield self.client.call("update", "leases", namespace=self.namespace, body=body)
        self._last_renew = self.engine.now
        if not self.leader:
            self.leader = True
            self.on_started()

    def _record(self, spec: dict, now: float) -> dict:
        """The LeaderElectionRecord this candidate writes: itself as holder, renewed now (acquired now and one more
        transition when it takes the lease from another)."""
        holder = spec.get("holderIdentity", "")
        return {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": int(self.lease_duration),
            "renewTime": timestamp(now, micro=True),
            "acquireTime": spec.get("acquireTime") if holder == self.identity else timestamp(now, micro=True),
            "leaseTransitions": spec.get("leaseTransitions", 0) + (holder not in ("", self.identity)),
        }
