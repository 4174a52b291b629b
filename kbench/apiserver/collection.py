"""DeleteCollection after its list (k8s.io/apiserver/pkg/registry/generic/registry/store.go DeleteCollection).

The apiserver (:mod:`kbench.apiserver.server`) lists the matching items as a list does, then hands them to a
:class:`DeleteCollection`, which deletes each through the per-object delete path with ``--delete-collection-workers``
workers and answers the request with what the deletes returned.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import TYPE_CHECKING

from kbench.apiserver.objects import APIError

if TYPE_CHECKING:
    from kbench.apiserver.server import APIServer, _Op


class DeleteCollection:
    """One DeleteCollection after its list: ``--delete-collection-workers`` workers (at most one per item) each take
    the next item and delete it through the per-object delete path, taking another once that delete has answered
    (store.go DeleteCollection's toProcess channel); the answer is the list of what the deletes returned. An item
    already gone (404) is skipped, one changed meanwhile (409) is deleted again (the storage's delete retries);
    another error stops the workers and is the answer.

    Parameters
    ----------
    server : APIServer
    op : _Op
        The deletecollection request; its seats are held until :meth:`finish` (``op.held``).
    listed : dict
        The list's result (its ``items`` are deleted).
    size : int
        The list's encoded size (bytes): the answer is encoded at that size.
    """

    def __init__(self, server: APIServer, op: _Op, listed: dict, size: int) -> None:
        self.server, self.op, self.listed, self.size = server, op, listed, size
        self.names = [obj["metadata"]["name"] for obj in listed["items"]]
        self.next = self.running = 0
        self.deleted: list[Mapping] = []
        self.error: APIError | None = None

    def start(self, _=None) -> None:
        """The list is done: start the workers."""
        workers = max(1, min(self.server.config.delete_collection_workers, len(self.names)))
        for _ in range(workers):
            self.take()

    def take(self, _=None) -> None:
        """A worker takes the next item and deletes it; the last worker out answers the request."""
        if self.error is not None or self.next >= len(self.names):
            if not self.running:
                self.finish()
            return
        name = self.names[self.next]
        self.next += 1
        self.running += 1
        item = self.op.internal_delete(name, partial(self.deleted_one, name))
        self.server._write(item, self.server.engine.now)

    def deleted_one(self, name: str, result: Mapping | None, error: APIError | None, delay: float) -> None:
        """An item's delete has its answer; the worker takes the next item when the answer is back (``delay``)."""
        if error is None and result is not None:
            self.deleted.append(result)
        elif error is not None and error.code == 409:
            self.names.append(name)
        elif error is not None and error.code != 404 and self.error is None:
            self.error = error
        self.server.engine.schedule(delay, self.answered)

    def answered(self, _=None) -> None:
        """A worker is free again."""
        self.running -= 1
        self.take()

    def finish(self) -> None:
        """Answer the request and free its seat once the answer is encoded."""
        server, op = self.server, self.op
        now = server.engine.now
        if self.error is not None:
            server._finish(op, None, self.error, 0.0)
            release = now
        else:
            encoded = server._cpu(op, self.size * server.costs.encode_per_byte)
            server._finish(op, {**self.listed, "items": self.deleted}, None, encoded)
            release = now + encoded
        if op.held is not None:
            op.held(release)
