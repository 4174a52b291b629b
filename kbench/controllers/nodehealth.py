"""The node lifecycle controller's index of the fleet: what monitorNodeHealth needs of each node, as arrays.

monitorNodeHealth looks at every node every pass, and leaves almost all of them alone: a node whose Ready condition
is True, that has no taints, is not queued for a NoExecute taint and was heard from within its grace period is only
counted in its zone (and its probe time moved when its Lease or heartbeat changed). :class:`FleetIndex` keeps, in the
node informer's cache order, whether each node is Ready and untainted, its zone and the time its grace period ends,
updated from the informers' handlers for the nodes and Leases that changed, so a pass finds the few nodes it must
walk with NumPy and settles the others in bulk, with the decisions of a walk over every node.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

NODE_LEASE_NAMESPACE = "kube-node-lease"
"""Where the kubelets' Leases live (v1.NamespaceNodeLease)."""


class FleetIndex:
    """The nodes of an informer cache in its order, with per-node arrays, and what changed since they were set.

    ``ok`` (Ready True and untainted), ``zone`` (an id in :attr:`zone_names`), ``probe`` and ``grace`` (the node is
    silent once the clock passes ``probe + grace``) hold for each node as of the last time it was set; :attr:`dirty`
    names the nodes whose Node or Lease changed since (their entries are stale), :attr:`stale` says nodes were added
    or removed (the order itself is stale) and :attr:`changes` counts every change the handlers saw.
    """

    def __init__(self) -> None:
        self.cache: Mapping | None = None
        """The informer cache the order was taken from (a relist makes a new one)."""
        self.names: list[str] = []
        self.pos: dict[str, int] = {}
        self.zone_names: list[str] = []
        self._zone_ids: dict[str, int] = {}
        self.ok = np.zeros(0, dtype=bool)
        self.zone = np.zeros(0, dtype=np.int64)
        self.probe = np.zeros(0)
        self.grace = np.zeros(0)
        self.dirty: set[str] = set()
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

    def lease_changed(self, lease: Mapping, new: Mapping | None = None) -> None:
        """A Lease was added, renewed or deleted: a node Lease's node has its entries set again."""
        meta = (new or lease)["metadata"]
        if meta.get("namespace") == NODE_LEASE_NAMESPACE:
            self.dirty.add(meta["name"])
        self.changes += 1

    # -- the arrays ---------------------------------------------------------------------------------------------
    def rebuild(self, cache: Mapping) -> None:
        """Take the order of ``cache``; every node is dirty until it is set."""
        self.cache = cache
        self.names = list(cache)
        self.pos = {name: i for i, name in enumerate(self.names)}
        n = len(self.names)
        self.ok, self.zone = np.zeros(n, dtype=bool), np.zeros(n, dtype=np.int64)
        self.probe, self.grace = np.zeros(n), np.zeros(n)
        self.dirty = set(self.names)
        self.stale = False

    def set(self, rows: list[tuple[int, bool, str, float, float]]) -> None:
        """Set the entries of nodes: (position, ok, zone, probe, grace) each."""
        if not rows:
            return
        index, ok, zone, probe, grace = zip(*rows)
        index = np.array(index, dtype=np.int64)
        self.ok[index] = ok
        self.zone[index] = [self._zone_id(z) for z in zone]
        self.probe[index] = probe
        self.grace[index] = grace

    def _zone_id(self, zone: str) -> int:
        zid = self._zone_ids.get(zone)
        if zid is None:
            zid = self._zone_ids[zone] = len(self.zone_names)
            self.zone_names.append(zone)
        return zid

    def unsettled(self, start: int, now: float) -> np.ndarray:
        """Positions from ``start`` on of the nodes not Ready and untainted, or silent at ``now``."""
        bad = ~self.ok[start:] | (now > self.probe[start:] + self.grace[start:])
        return np.flatnonzero(bad) + start

    def zone_counts(self, start: int, stop: int) -> list[tuple[str, int]]:
        """The zones of the nodes at positions ``start`` to ``stop``, in the order they first appear there, with
        how many of those nodes each has."""
        zones, first, counts = np.unique(self.zone[start:stop], return_index=True, return_counts=True)
        return [(self.zone_names[zones[k]], int(counts[k])) for k in np.argsort(first, kind="stable")]
