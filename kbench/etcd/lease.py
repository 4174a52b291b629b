"""Leases: TTLs on the engine's virtual clock and the keys attached to each lease.

Follows etcd 3.4's ``lease/lessor.go``: a TTL below the minimum is raised to it,
a TTL above ``MaxLeaseTTL`` is refused, granting an existing id fails, and a
lease that is not kept alive for its TTL expires, which revokes it (deleting
its keys). Without an engine the clock stands still and leases never expire.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from kbench.etcd.errors import (
    LeaseExistError,
    LeaseNotFoundError,
    LeaseTTLTooLargeError,
)
from kbench.sim import Engine, Timer

MIN_LEASE_TTL = 2
"""Seconds: ceil((3 * electionTicks / 2) * heartbeat) = ceil(15 * 100 ms)
(etcdserver/server.go NewServer, etcd 3.4 defaults)."""
MAX_LEASE_TTL = 9_000_000_000
"""Seconds: MaxLeaseTTL in lease/lessor.go (etcd 3.4)."""


@dataclass(eq=False)
class Lease:
    """A granted lease: ``expiry`` on the engine's clock, the ``keys`` attached, the ``timer`` that expires it."""

    id: int
    ttl: int
    expiry: float
    keys: set[bytes] = field(default_factory=set)
    timer: Timer | None = None


class Lessor:
    """Granted leases and their keys; ``on_expire(id)`` is called when a lease's TTL runs out."""

    def __init__(self, engine: Engine | None, on_expire: Callable[[int], None]) -> None:
        self._engine = engine
        self._on_expire = on_expire
        self._leases: dict[int, Lease] = {}
        self._key_lease: dict[bytes, int] = {}
        self._next_id = 1

    def _now(self) -> float:
        return self._engine.now if self._engine is not None else 0.0

    def __contains__(self, lease_id: int) -> bool:
        return lease_id in self._leases

    def __len__(self) -> int:
        return len(self._leases)

    @property
    def attached(self) -> int:
        """Number of keys attached to some lease."""
        return len(self._key_lease)

    def ids(self) -> list[int]:
        """Granted lease ids, ascending."""
        return sorted(self._leases)

    def effective_ttl(self, lease_id: int, ttl: int) -> int:
        """Check a grant and return the TTL it would get; raises as etcd does."""
        if ttl > MAX_LEASE_TTL:
            raise LeaseTTLTooLargeError()
        if lease_id in self._leases:
            raise LeaseExistError()
        return max(ttl, MIN_LEASE_TTL)

    def grant(self, lease_id: int, ttl: int) -> Lease:
        """Grant a lease (``lease_id`` 0 picks a free id)."""
        ttl = self.effective_ttl(lease_id, ttl)
        if lease_id == 0:
            while self._next_id in self._leases:
                self._next_id += 1
            lease_id = self._next_id
        lease = self._leases[lease_id] = Lease(lease_id, ttl, math.inf)
        self._refresh(lease)
        return lease

    def get(self, lease_id: int) -> Lease:
        """The lease, or :class:`LeaseNotFoundError`."""
        lease = self._leases.get(lease_id)
        if lease is None:
            raise LeaseNotFoundError()
        return lease

    def _refresh(self, lease: Lease) -> None:
        if self._engine is None:
            return
        if lease.timer is not None:
            Engine.cancel(lease.timer)
        lease.expiry = self._now() + lease.ttl
        lease.timer = self._engine.schedule(lease.ttl, self._on_expire, lease.id)

    def keepalive(self, lease_id: int) -> Lease:
        """Restart the lease's TTL."""
        lease = self.get(lease_id)
        self._refresh(lease)
        return lease

    def remaining(self, lease: Lease) -> int:
        """Whole seconds left (etcd truncates); the TTL itself when the clock stands still."""
        if self._engine is None:
            return lease.ttl
        return max(0, int(lease.expiry - self._now()))

    def remove(self, lease_id: int) -> list[bytes]:
        """Forget the lease; returns its keys sorted (the order etcd deletes them in)."""
        lease = self.get(lease_id)
        if lease.timer is not None:
            Engine.cancel(lease.timer)
        del self._leases[lease_id]
        for key in lease.keys:
            del self._key_lease[key]
        return sorted(lease.keys)

    def attach(self, key: bytes, lease_id: int) -> None:
        """Attach ``key`` to ``lease_id`` (0 detaches), leaving any previous lease."""
        old = self._key_lease.get(key, 0)
        if old == lease_id:
            return
        if old:
            self._leases[old].keys.discard(key)
            del self._key_lease[key]
        if lease_id:
            self._leases[lease_id].keys.add(key)
            self._key_lease[key] = lease_id

    def detach_all(self, keys: Iterable[bytes]) -> None:
        """:meth:`detach` each of ``keys``: nothing to do, and no Python call a key, when none has a lease."""
        if not self._key_lease:
            return
        keys = list(keys)
        if not self._key_lease.keys().isdisjoint(keys):
            for key in keys:
                self.attach(key, 0)

    def detach(self, key: bytes) -> None:
        """Detach ``key`` from its lease, if any."""
        if self._key_lease:
            self.attach(key, 0)
