"""What every controller shares: a manager (one client, shared informers, leader election) and the
informer -> workqueue -> worker loop of client-go controllers."""

from __future__ import annotations

from collections.abc import Mapping

from kbench.apiserver.objects import APIError, copy_object, object_key, timestamp
from kbench.apiserver.server import APIServer
from kbench.client import Client, Informer, WorkQueue
from kbench.controllers.leaderelection import LeaderElector


class Manager:
    """A controller-manager process: one client as ``user``, shared informers, controllers started when this
    instance leads (leader election through the Lease ``kube-system/<lease>``).

    Parameters
    ----------
    server : APIServer
    user : str
        The component's identity (e.g. ``system:kube-controller-manager``).
    identity : str
        This instance's name in the leader-election lease.
    qps, burst : client-side rate limit.
    lease : str or None
        Leader-election lease name; None runs the controllers at once, without election.
    """

    def __init__(
        self, server: APIServer, user: str, identity: str, qps: float, burst: int, lease: str | None = None
    ) -> None:
        self.server, self.engine = server, server.engine
        self.client = Client(server, user, qps=qps, burst=burst)
        self.identity = identity
        self.informers: dict[str, Informer] = {}
        self.controllers: list[Controller] = []
        self.elector = LeaderElector(self.client, lease, identity, self._lead, self._lose) if lease else None
        self.leading = False
        self.stopped = False

    def informer(self, resource: str) -> Informer:
        """The shared informer of ``resource`` (all namespaces), created on first use."""
        inf = self.informers.get(resource)
        if inf is None:
            inf = self.informers[resource] = Informer(self.client, resource)
        return inf

    def add(self, controller: Controller) -> Controller:
        self.controllers.append(controller)
        return controller

    def start(self) -> Manager:
        if self.elector is None:
            self._lead()
        else:
            self.elector.run()
        return self

    def stop(self) -> None:
        """The process dies: it stops renewing its lease and its controllers stop."""
        self.stopped = True
        if self.elector is not None:
            self.elector.stop()
        self._lose()

    def _lead(self) -> None:
        if self.stopped or self.leading:
            return
        self.leading = True
        for inf in self.informers.values():
            inf.start()
        for controller in self.controllers:
            controller.start()

    def _lose(self) -> None:
        self.leading = False
        for controller in self.controllers:
            controller.stopped = True
        for inf in self.informers.values():
            inf.stop()


class Controller:
    """A work-queue controller: informer handlers enqueue keys, ``workers`` processes run ``sync(key)``
    (a generator that may yield API calls); a failed sync (an APIError) is retried with rate-limited backoff."""

    name = "controller"
    workers = 1

    def __init__(self, manager: Manager) -> None:
        self.manager, self.engine, self.client = manager, manager.engine, manager.client
        self.queue = WorkQueue(self.engine)
        self.stopped = False
        manager.add(self)

    def start(self) -> None:
        self.stopped = False
        for i in range(self.workers):
            self.engine.process(self._worker(), name=f"{self.name}-{i}")

    def _worker(self):
        while not self.stopped:
            key = yield self.queue.get()
            if self.stopped:
                break
            try:
                yield from self.sync(key)
                self.queue.forget(key)
            except APIError:
                self.queue.add_rate_limited(key)
            finally:
                self.queue.done(key)

    def sync(self, key):
        yield from ()

    def delete(self, resource: str, namespace: str, name: str, **options):
        """Process body: delete an object; one already gone (404) counts as deleted but returns False, other API
        errors propagate to the worker (which retries the key)."""
        try:
            yield self.client.call("delete", resource, namespace=namespace, name=name, **options)
        except APIError as err:
            if err.code != 404:
                raise
            return False
        return True

    def enqueue(self, obj: Mapping, _=None) -> None:
        self.queue.add(object_key(obj if _ is None else _))

    # helpers for syncs ------------------------------------------------------------------------------------
    def now_stamp(self, micro: bool = False) -> str:
        return timestamp(self.engine.now, micro)

    @staticmethod
    def copy(obj: Mapping) -> dict:
        return copy_object(obj)


class Expectations:
    """ControllerExpectations: creations and deletions a controller made and has not yet seen through its
    informer; while any are pending it does not act again on that key (unless they are 5 minutes old)."""

    TIMEOUT = 300.0

    def __init__(self, engine) -> None:
        self.engine = engine
        self.pending: dict[str, list] = {}

    def expect(self, key: str, adds: int, deletes: int) -> None:
        self.pending[key] = [adds, deletes, self.engine.now]

    def observed(self, key: str, which: int) -> None:
        """``which`` 0: an add was seen, 1: a delete."""
        exp = self.pending.get(key)
        if exp is not None and exp[which] > 0:
            exp[which] -= 1

    def lower(self, key: str, which: int, count: int = 1) -> None:
        """A request failed: stop expecting what it would have caused."""
        exp = self.pending.get(key)
        if exp is not None:
            exp[which] -= count

    def satisfied(self, key: str) -> bool:
        exp = self.pending.get(key)
        return exp is None or (exp[0] <= 0 and exp[1] <= 0) or self.engine.now - exp[2] > self.TIMEOUT

    def forget(self, key: str) -> None:
        self.pending.pop(key, None)


def owned_by(obj: Mapping, owner: Mapping) -> bool:
    """Whether ``obj`` has ``owner`` as its controller (ownerReferences with controller: true)."""
    uid = owner["metadata"]["uid"]
    return any(ref.get("uid") == uid and ref.get("controller") for ref in obj["metadata"].get("ownerReferences") or ())


def controller_key(obj: Mapping, kind: str) -> str | None:
    """``ns/name`` of ``obj``'s controller of ``kind`` (metav1.GetControllerOf), if it has one."""
    for ref in obj["metadata"].get("ownerReferences") or ():
        if ref.get("kind") == kind and ref.get("controller"):
            return f"{obj['metadata']['namespace']}/{ref['name']}"
    return None


def owner_reference(owner: Mapping) -> dict:
    return {
        "apiVersion": owner.get("apiVersion", "v1"),
        "kind": owner["kind"],
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def condition(obj: Mapping, kind: str) -> Mapping | None:
    return next((c for c in obj.get("status", {}).get("conditions") or () if c.get("type") == kind), None)


def pod_ready(pod: Mapping) -> bool:
    cond = condition(pod, "Ready")
    return bool(cond) and cond.get("status") == "True"


def active_pod(pod: Mapping) -> bool:
    """controller.IsPodActive: not Succeeded, not Failed, not being deleted."""
    return pod.get("status", {}).get("phase") not in ("Succeeded", "Failed") and not pod["metadata"].get(
        "deletionTimestamp"
    )
