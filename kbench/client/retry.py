"""Read-modify-write with retries (k8s.io/client-go/util/retry: RetryOnConflict over wait.Backoff)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from kbench.apiserver.objects import APIError, copy_object
from kbench.client.client import Client


@dataclass(frozen=True)
class Backoff:
    """k8s.io/apimachinery/pkg/util/wait.Backoff without growth: at most ``steps`` tries, ``duration`` seconds
    apart; ``jitter`` stretches each wait by up to that fraction (wait.Jitter), taken at its mean so runs stay
    deterministic."""

    steps: int
    duration: float
    jitter: float = 0.0

    def __post_init__(self) -> None:
        if isinstance(self.steps, bool) or not isinstance(self.steps, int) or self.steps < 1:
            raise ValueError(f"Backoff.steps: expected an integer >= 1; got {self.steps!r}")
        if not (self.duration >= 0 and self.jitter >= 0):
            raise ValueError(f"Backoff.duration, Backoff.jitter: expected >= 0; got {self.duration!r}, {self.jitter!r}")

    @property
    def wait(self) -> float:
        """Seconds between two tries."""
        return self.duration * (1.0 + self.jitter / 2)


def is_conflict(error: APIError) -> bool:
    """apierrors.IsConflict: 409, the object changed since it was read."""
    return error.code == 409


def update_fresh(
    client: Client,
    resource: str,
    name: str,
    change: Callable[[dict], bool],
    backoff: Backoff,
    *,
    namespace: str = "",
    subresource: str = "",
    current: Mapping | None = None,
    retriable: Callable[[APIError], bool] = is_conflict,
):
    """Process body: ``retry.RetryOnConflict(backoff, read; change; update)``.

    Each try reads the object with a GET (the first may start from ``current`` instead, e.g. the informer's copy),
    lets ``change`` edit a private copy of it, and writes that copy back carrying the resourceVersion it was read
    at, so a write based on a stale copy gets 409 Conflict rather than overwriting what it did not see.

    Parameters
    ----------
    client : Client
    resource, name, namespace, subresource
        The object to write (``subresource="status"`` for UpdateStatus).
    change : callable
        ``change(obj) -> bool`` edits ``obj`` in place; False means nothing needs writing.
    backoff : Backoff
        How many tries, and the wait between them.
    current : mapping, optional
        The object as the caller last saw it, for the first try (no GET).
    retriable : callable
        Which failed writes read again and retry (conflicts by default); others propagate at once.

    Returns
    -------
    The object as written, or as read when nothing needed writing; the last APIError propagates when the tries
    are spent (a failed GET propagates at once).
    """
    for attempt in range(backoff.steps):
        if current is None:
            current = yield client.call("get", resource, namespace=namespace, name=name)
        body = copy_object(current)
        if not change(body):
            return current
        try:
            return (yield client.call("update", resource, namespace=namespace, body=body, subresource=subresource))
        except APIError as err:
            if attempt + 1 == backoff.steps or not retriable(err):
                raise
        current = None
        yield backoff.wait
