"""The node lifecycle controller's index of the fleet: each node's health record and what a pass needs, as arrays.

monitorNodeHealth looks at every node every pass, and leaves almost all of them alone: a node whose Ready condition
is True, that has no taints, is not queued for a NoExecute taint and was heard from within its grace period is only
counted in its zone, its probe time moved to the pass when its Lease renewTime or its Ready heartbeat changed.
:class:`FleetIndex` keeps, in the node informer's cache order, the health records (nodeHealthData: probe time, the
renewTime and heartbeat seen) and, from each Node, whether it is Ready and untainted, its zone and its grace period,
updated from the informers' handlers for the Nodes and Leases that changed, so a pass settles the quiet nodes with
NumPy and walks only the others, with the decisions of a walk over every node.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import Any

import numpy as np

NODE_LEASE_NAMESPACE = "kube-node-lease"
"""Where the kubelets' Leases live (v1.NamespaceNodeLease)."""

Record = tuple[float, Any, Any]
"""A node's health record: (probe time, Lease renewTime seen, Ready heartbeat seen)."""


def renew_time(lease: Mapping | None):
    """A node Lease's renewTime (None without a Lease)."""
    return lease["spec"].get("renewTime") if lease else None


class FleetIndex:
    """The nodes of an informer cache in its order, with per-node arrays, and what changed since they were set.

    Per node: ``ok`` (Ready True and untainted), ``zone`` (an id in :attr:`zone_names`) and ``grace`` (its grace
    period) as of the Node last looked at; its health record (``recorded``, ``probe``, ``renew_seen``,
    ``beat_seen``); ``renew``, its Lease's renewTime now. :attr:`dirty` names the nodes whose Node changed since their
    entries were set, :attr:`renewed` the positions whose Lease changed since the last pass, :attr:`stale` says nodes
    came or went (the order itself is stale) and :attr:`changes` counts every change the handlers saw.

    Parameters
    ----------
    lease_of : callable
        ``lease_of(node name)``: its Lease as the informer has it now (None without one).
    """

    def __init__(self, lease_of: Callable[[str], Mapping | None]) -> None:
        self.lease_of = lease_of
        self.cache: Mapping | None = None
        """The informer cache the order was taken from (a relist makes a new one)."""
        self.names: list[str] = []
        self.pos: dict[str, int] = {}
        self.zone_names: list[str] = []
        self._zone_ids: dict[str, int] = {}
        self.ok, self.zone, self.grace = np.zeros(0, dtype=bool), np.zeros(0, dtype=np.int64), np.zeros(0)
        self.recorded, self.probe = np.zeros(0, dtype=bool), np.zeros(0)
        self.renew_seen, self.beat_seen, self.renew = (np.empty(0, dtype=object) for _ in range(3))
        self.orphans: dict[str, Record] = {}
        """Health records of nodes gone from the cache, kept until the end of the pass (as upstream's map)."""
        self.dirty: set[str] = set()
        self.renewed: set[int] = set()
        self.stale = True
        self.changes = 0

    # -- informer handlers --------------------------------------------------------------------------------------
    def node_added_or_deleted(self, node: Mapping) -> None:
        """A node came or went: the order is rebuilt at the next pass."""
        self.stale = True
        self.changes += 1

    def node_updated(self, old: Mapping, new: Mapping) -> None:
        """A node changed: its entries are set again."""
        self.dirty.add(new["metadata"]["name"])
        self.changes += 1

    def lease_set(self, lease: Mapping, new: Mapping | None = None) -> None:
        """A Lease was added or renewed: a node Lease's renewTime is taken."""
        self._renewed(new or lease, True)

    def lease_deleted(self, lease: Mapping) -> None:
        """A Lease was deleted: a node Lease's node has none."""
        self._renewed(lease, False)

    def _renewed(self, lease: Mapping, present: bool) -> None:
        self.changes += 1
        meta = lease["metadata"]
        if meta.get("namespace") == NODE_LEASE_NAMESPACE:
            i = self.pos.get(meta["name"])
            if i is not None:
                self.renew[i] = renew_time(lease if present else None)
                self.renewed.add(i)

    # -- health records -----------------------------------------------------------------------------------------
    def record(self, i: int) -> Record | None:
        """The health record of the node at position ``i``, if it has one."""
        return self._stored(i) if self.recorded[i] else None

    def _stored(self, i: int) -> Record:
        return (self.probe[i], self.renew_seen[i], self.beat_seen[i])

    def keep(self, i: int, record: Record) -> None:
        """Store the node at position ``i``'s health record."""
        self.recorded[i] = True
        self.probe[i], self.renew_seen[i], self.beat_seen[i] = record

    def forget(self, cache: Mapping) -> None:
        """Drop the health records of the nodes not in ``cache`` (the end of a pass)."""
        for i, name in enumerate(self.names):
            if name not in cache:
                self.recorded[i] = False
        self.orphans = {name: record for name, record in self.orphans.items() if name in cache}

    def records(self) -> dict[str, Record]:
        """Every health record by node name (nodeHealthData)."""
        kept = {name: self._stored(i) for i, name in enumerate(self.names) if self.recorded[i]}
        return {**self.orphans, **{name: (float(r[0]), r[1], r[2]) for name, r in kept.items()}}

    # -- the order ----------------------------------------------------------------------------------------------
    def rebuild(self, cache: Mapping) -> None:
        """Take the order of ``cache``, each node's health record carried over; every node is dirty until set."""
        old: dict[str, Record] = {
            **self.orphans,
            **{name: self._stored(i) for i, name in enumerate(self.names) if self.recorded[i]},
        }
        self.cache = cache
        self.names = list(cache)
        self.pos = {name: i for i, name in enumerate(self.names)}
        n = len(self.names)
        self.ok, self.zone, self.grace = np.zeros(n, dtype=bool), np.zeros(n, dtype=np.int64), np.zeros(n)
        self.recorded, self.probe = np.zeros(n, dtype=bool), np.zeros(n)
        self.renew_seen, self.beat_seen = np.empty(n, dtype=object), np.empty(n, dtype=object)
        self.renew = np.empty(n, dtype=object)
        self.renew[:] = [renew_time(self.lease_of(name)) for name in self.names]
        for i, name in enumerate(self.names):
            record = old.pop(name, None)
            if record is not None:
                self.keep(i, record)
        self.orphans = old
        self.dirty, self.renewed = set(self.names), set()
        self.stale = False

    def set_nodes(self, rows: list[tuple[int, bool, str, float]]) -> None:
        """Set what the Nodes say: (position, ok, zone, grace) each."""
        if rows:
            positions, ok, zone, grace = zip(*rows)
            index = np.array(positions, dtype=np.int64)
            self.ok[index], self.grace[index] = ok, grace
            self.zone[index] = [self._zone_id(z) for z in zone]

    def _zone_id(self, zone: str) -> int:
        zid = self._zone_ids.get(zone)
        if zid is None:
            zid = self._zone_ids[zone] = len(self.zone_names)
            self.zone_names.append(zone)
        return zid

    def zone_counts(self, start: int, stop: int) -> list[tuple[str, int]]:
        """The zones of the nodes at positions ``start`` to ``stop``, in the order they first appear there, with
        how many of those nodes each has."""
        zones, first, counts = np.unique(self.zone[start:stop], return_index=True, return_counts=True)
        return [(self.zone_names[zones[k]], int(counts[k])) for k in np.argsort(first, kind="stable")]


class Tentative:
    """Health records as a pass would leave them, before it commits them run by run: a copy of the fleet's."""

    def __init__(self, fleet: FleetIndex) -> None:
        self.fleet = fleet
        self.probe, self.renew_seen, self.beat_seen = (
            fleet.probe.copy(),
            fleet.renew_seen.copy(),
            fleet.beat_seen.copy(),
        )

    def reset(self, start: int) -> None:
        """Positions from ``start`` on back to the fleet's records."""
        f = self.fleet
        self.probe[start:], self.renew_seen[start:], self.beat_seen[start:] = (
            f.probe[start:],
            f.renew_seen[start:],
            f.beat_seen[start:],
        )

    def set(self, i: int, record: Record) -> None:
        """The record of the node at position ``i``."""
        self.probe[i], self.renew_seen[i], self.beat_seen[i] = record

    def renewals(self, positions: Collection[int], start: int, now: float) -> list[int]:
        """The nodes at ``positions`` (from ``start`` on) whose Lease alone changed: the probe time moves to ``now``
        where the renewTime is not the one recorded. Returns those with no record yet, to be judged in full."""
        f = self.fleet
        index = np.fromiter(positions, dtype=np.int64, count=len(positions))
        index = index[index >= start]
        known = f.recorded[index]
        moved = index[known & (f.renew[index] != f.renew_seen[index])]
        self.probe[moved] = now
        self.renew_seen[moved] = f.renew[moved]
        return index[~known].tolist()

    def unsettled(self, start: int, now: float) -> np.ndarray:
        """Positions from ``start`` on of the nodes not Ready and untainted, or silent at ``now``."""
        f = self.fleet
        bad = ~f.ok[start:] | (now > self.probe[start:] + f.grace[start:])
        return np.flatnonzero(bad) + start

    def commit(self, start: int, stop: int) -> None:
        """The records of the nodes at positions ``start`` to ``stop`` become the fleet's."""
        f = self.fleet
        f.recorded[start:stop] = True
        f.probe[start:stop] = self.probe[start:stop]
        f.renew_seen[start:stop] = self.renew_seen[start:stop]
        f.beat_seen[start:stop] = self.beat_seen[start:stop]
