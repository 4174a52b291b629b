"""What every controller shares: a manager (a client builder, shared informers, leader election) and the
informer -> workqueue -> worker loop of client-go controllers (k8s.io/controller-manager, client-go's
controller pattern)."""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable, Mapping
from typing import Any, ClassVar, TypeVar

from kbench.apiserver.objects import APIError, copy_object, object_key, timestamp
from kbench.apiserver.server import APIServer
from kbench.client import Client, Informer, WorkQueue
from kbench.client.record import EventRecorder
from kbench.controllers.clientbuilder import RestConfig, SimpleControllerClientBuilder
from kbench.controllers.leaderelection import LeaderElection, LeaderElector, leader_election


class Manager:
    """A controller-manager process: a client builder (a client per controller), shared informers on their own
    client, and controllers started while this instance leads (leader election through a Lease on its own
    client).

    Parameters
    ----------
    server : APIServer
    identity : str
        This instance's name in the leader-election lease.
    rest : RestConfig
        The process's user and ``--kube-api-qps`` / ``--kube-api-burst``.
    config : object
        The component's configuration (controllers read their settings from it).
    election : LeaderElection or None
        The lease and its timing; None runs the controllers at once, without election.
    """

    def __init__(
        self, server: APIServer, identity: str, rest: RestConfig, config: Any, election: LeaderElection | None
    ) -> None:
        self.server, self.engine, self.config = server, server.engine, config
        self.builder = SimpleControllerClientBuilder(server, rest)
        self.informer_client = self.builder.client_or_die("shared-informers")
        self.identity = identity
        self.informers: dict[str, Informer] = {}
        self.controllers: list[Controller] = []
        self.elector = None
        if election is not None:
            self.elector = LeaderElector(
                self.builder.client_or_die("leader-election"),
                election.name,
                identity,
                self._lead,
                self._lose,
                election.lease_duration,
                election.renew_deadline,
                election.retry_period,
                election.namespace,
            )
        self.leading = False
        self.stopped = False

    def informer(self, resource: str) -> Informer:
        """The shared informer of ``resource`` (all namespaces), created on first use."""
        inf = self.informers.get(resource)
        if inf is None:
            inf = self.informers[resource] = Informer(self.informer_client, resource)
        return inf

    def add(self, controller: Controller) -> Controller:
        """Register a controller (its constructor does this)."""
        self.controllers.append(controller)
        return controller

    def controller(self, name: str) -> Controller:
        """The controller named ``name`` (upstream's controller name)."""
        found = next((c for c in self.controllers if c.name == name), None)
        if found is None:
            raise KeyError(f"no controller {name!r}; running: {', '.join(c.name for c in self.controllers)}")
        return found

    def start(self) -> Manager:
        """Campaign for the lease (or lead at once without election)."""
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


Handler = Callable[..., Any] | None
T = TypeVar("T", bound="type[Controller]")


class Controller:
    """A work-queue controller: informer handlers enqueue keys, ``workers`` processes run ``sync(key)``
    (a generator that may yield API calls); a failed sync (an APIError) is retried with rate-limited backoff.

    ``name`` is upstream's controller name (cmd/kube-controller-manager/names), ``client_name`` the name its
    client is built for (``ClientOrDie(name)`` in cmd/kube-controller-manager/app); every controller gets a
    client, so a token bucket, of its own. A controller with a ``resource`` watches it (:attr:`primary`): its adds
    and updates (and deletes, with ``enqueue_deletes``) queue the object's key. ``workers_option`` names the
    configuration field with its worker count (a ``--concurrent-*-syncs``); without one it runs ``workers``.
    """

    name: ClassVar[str] = "controller"
    client_name: ClassVar[str] = ""
    """The ``ClientOrDie`` name (default: ``name``)."""
    resource: ClassVar[str] = ""
    enqueue_deletes: ClassVar[bool] = False
    workers_option: ClassVar[str] = ""
    workers = 1
    event_source: ClassVar[str] = ""
    """``v1.EventSource.Component`` of the controller's event recorder (upstream's ``NewRecorder`` call); empty for
    a controller that records no Events."""

    def __init__(self, manager: Manager, client: Client | None = None) -> None:
        self.manager, self.engine, self.config = manager, manager.engine, manager.config
        self.client = client or manager.builder.client_or_die(self.client_name or self.name)
        self.queue = WorkQueue(self.engine)
        self.stopped = False
        self._recorder: EventRecorder | None = None
        if self.workers_option:
            self.workers = getattr(self.config, self.workers_option)
        if self.resource:
            self.primary = self.watch_keys(self.resource, self.enqueue_deletes)
        manager.add(self)

    @staticmethod
    def runs(config: Any) -> bool:
        """Whether the manager starts this controller under ``config`` when ``--controllers`` enables it (some run
        only with a flag of their own, as upstream's start functions return early)."""
        return True

    def watch(
        self, resource: str, on_add: Handler = None, on_update: Handler = None, on_delete: Handler = None
    ) -> Informer:
        """The shared informer of ``resource``, with this controller's handlers added (if any)."""
        inf = self.manager.informer(resource)
        if on_add or on_update or on_delete:
            inf.add_handler(on_add=on_add, on_update=on_update, on_delete=on_delete)
        return inf

    def watch_keys(self, resource: str, deletes: bool = False) -> Informer:
        """The shared informer of ``resource``, whose adds and updates (and deletes) queue the object's key."""
        return self.watch(resource, self.enqueue, self.enqueue, self.enqueue if deletes else None)

    def start(self) -> None:
        """Start the workers (the manager does this when it leads)."""
        self.stopped = False
        for i in range(self.workers):
            self.engine.process(self._worker(), name=f"{self.name}-{i}")

    def until(
        self,
        body: Callable[[], Generator],
        period: float,
        name: str,
        synced: Iterable[Informer] = (),
        wait_first: bool = False,
    ) -> None:
        """Start a process running ``body`` every ``period`` seconds after it ends (wait.Until) while the controller
        runs, once the ``synced`` informers have listed (cache.WaitForCacheSync); ``wait_first`` waits a period
        before the first run."""

        def loop():
            for inf in synced:
                yield inf.synced
            if wait_first:
                yield period
            while not self.stopped:
                yield from body()
                yield period

        self.engine.process(loop(), name=name)

    sync_errors: tuple[type[Exception], ...] = (APIError,)
    """What a failed sync raises that requeues its key (:meth:`handle_err`)."""

    def _worker(self):
        while not self.stopped:
            key = yield self.queue.get()
            if self.stopped:
                break
            try:
                yield from self.sync(key)
                self.queue.forget(key)
            except self.sync_errors:
                self.handle_err(key)
            finally:
                self.queue.done(key)

    def handle_err(self, key) -> None:
        """A sync of ``key`` failed: requeue it through the rate limiter."""
        self.queue.add_rate_limited(key)

    def sync(self, key) -> Generator:
        """Process body: bring the object of ``key`` to its desired state (subclasses)."""
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

    def enqueue(self, obj: Mapping, new: Mapping | None = None) -> None:
        """Informer handler: queue the object's key (the new object's, for an update)."""
        self.queue.add(object_key(obj if new is None else new))

    @property
    def recorder(self) -> EventRecorder:
        """The controller's event recorder, built on first use: its own ``record.NewBroadcaster`` recording to a
        sink on the controller's client (``StartRecordingToSink(&v1core.EventSinkImpl{Interface:
        kubeClient.CoreV1().Events("")})``), so its Events take tokens from the controller's bucket."""
        if self._recorder is None:
            if not self.event_source:
                raise ValueError(f"{type(self).__name__}: set event_source (upstream's EventSource.Component)")
            self._recorder = EventRecorder(self.client, self.event_source)
        return self._recorder

    @recorder.setter
    def recorder(self, recorder: EventRecorder) -> None:
        """A controller may build its recorder itself (e.g. with another component name)."""
        self._recorder = recorder

    def now_stamp(self, micro: bool = False) -> str:
        """The current time as a Kubernetes timestamp."""
        return timestamp(self.engine.now, micro)

    @staticmethod
    def copy(obj: Mapping) -> dict:
        """A private, writable copy of an object from a cache."""
        return copy_object(obj)


class PodOwner(Controller):
    """A controller of the pods it creates (ReplicaSet, Job): pod events queue the key of the pod's controller of
    ``owner_kind`` (GetControllerOf), and count toward the expectations of its creations and deletions
    (ControllerExpectations: a pod that starts terminating counts as a deletion seen, as updatePod calls
    deletePod upstream)."""

    owner_kind: ClassVar[str] = ""

    def __init__(self, manager: Manager) -> None:
        super().__init__(manager)
        self.pods = self.watch("pods", self._pod_added, self._pod_updated, self._pod_deleted)
        self.expect = Expectations(self.engine)

    def _pod_added(self, pod: Mapping) -> None:
        self._pod(pod, Expectations.ADDED)

    def _pod_updated(self, old: Mapping, new: Mapping) -> None:
        terminating = new["metadata"].get("deletionTimestamp") and not old["metadata"].get("deletionTimestamp")
        self._pod(new, Expectations.DELETED if terminating else None)

    def _pod_deleted(self, pod: Mapping) -> None:
        self._pod(pod, Expectations.DELETED if not pod["metadata"].get("deletionTimestamp") else None)

    def _pod(self, pod: Mapping, observed: int | None) -> None:
        key = controller_key(pod, self.owner_kind)
        if key is not None:
            if observed is not None:
                self.expect.observed(key, observed)
            self.queue.add(key)

    def create_pods(self, owner: Mapping, key: str, count: int, body: Callable[[], dict]):
        """Process body: slowStartBatch (pkg/controller/controller_utils.go, SlowStartInitialBatchSize 1) as
        manageReplicas and manageJob run it: ``count`` pods of ``body()`` created 1, 2, 4, ... at a time, each
        batch's creates in flight together, with RealPodControl's ``SuccessfulCreate`` / ``FailedCreate`` events
        (none for a terminating namespace). A batch with a failure ends it: each failed creation and every one never
        tried are lowered from the expectations, then the error is raised."""
        self.expect.expect(key, count, 0)
        batch, done, ns = 1, 0, owner["metadata"]["namespace"]
        while done < count:
            size = min(batch, count - done)
            events = [self.client.call("create", "pods", namespace=ns, body=body()) for _ in range(size)]
            failed = None
            for ev in events:
                try:
                    pod = yield ev
                except APIError as err:
                    self.expect.lower(key, Expectations.ADDED)
                    if not namespace_terminating(err):
                        self.recorder.event(owner, "Warning", "FailedCreate", f"Error creating: {err.message}")
                    failed = err
                    continue
                self.recorder.event(owner, "Normal", "SuccessfulCreate", f"Created pod: {pod['metadata']['name']}")
            if failed is not None:
                self.expect.lower(key, Expectations.ADDED, count - done - size)
                raise failed
            done += size
            batch *= 2


class Expectations:
    """ControllerExpectations: creations and deletions a controller made and has not yet seen through its
    informer; while any are pending it does not act again on that key (unless they are 5 minutes old)."""

    TIMEOUT = 300.0
    ADDED, DELETED = 0, 1
    """What :meth:`observed` and :meth:`lower` count: creations, deletions."""

    def __init__(self, engine) -> None:
        self.engine = engine
        self.pending: dict[str, list] = {}

    def expect(self, key: str, adds: int, deletes: int) -> None:
        """ExpectCreations / ExpectDeletions: ``adds`` creations and ``deletes`` deletions are to be seen."""
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
        """SatisfiedExpectations: nothing pending for ``key`` (or what is pending has expired)."""
        exp = self.pending.get(key)
        return exp is None or (exp[0] <= 0 and exp[1] <= 0) or self.engine.now - exp[2] > self.TIMEOUT

    def forget(self, key: str) -> None:
        """DeleteExpectations: the object is gone."""
        self.pending.pop(key, None)


def build_manager(
    server: APIServer, identity: str, user: str, config: Any, registry: Mapping[str, type[Controller]], *args: Any
) -> Manager:
    """A controller-manager process of ``user`` running the controllers of ``registry`` that ``config`` enables
    (``--controllers``) and that run under it (:meth:`Controller.runs`), each built as ``cls(manager, *args)``, in
    the registry's order; not yet started."""
    rest = RestConfig(user, config.kube_api_qps, config.kube_api_burst)
    manager = Manager(server, identity, rest, config, leader_election(config))
    for name, cls in registry.items():
        if config.enabled(name) and cls.runs(config):
            cls(manager, *args)
    return manager


def by_name(*classes: T) -> dict[str, T]:
    """A registry of controller classes by their upstream names, in the order given (the order they start)."""
    return {cls.name: cls for cls in classes}


def controlled(informer: Informer, owner: Mapping) -> list[Mapping]:
    """The objects of ``informer`` in ``owner``'s namespace that ``owner`` controls (ClaimPods' adoption role), in
    the cache's order, looked up by their controllers' uids (:func:`controller_uids`) rather than by a scan."""
    ns = owner["metadata"]["namespace"]
    informer.add_index("controller", controller_uids)
    candidates = informer.by_index("controller", (owner["metadata"]["uid"],))
    return [obj for obj in candidates if obj["metadata"]["namespace"] == ns and owned_by(obj, owner)]


def controller_uids(obj: Mapping) -> tuple[str, ...]:
    """The uids ``obj``'s controlling ownerReferences name (the values :func:`controlled`'s index keeps)."""
    refs = obj["metadata"].get("ownerReferences") or ()
    return tuple(uid for ref in refs if ref.get("controller") and not isinstance(uid := ref.get("uid"), list | dict))


def owned_by(obj: Mapping, owner: Mapping) -> bool:
    """Whether ``obj`` has ``owner`` as its controller (ownerReferences with controller: true)."""
    uid = owner["metadata"]["uid"]
    return any(ref.get("uid") == uid and ref.get("controller") for ref in obj["metadata"].get("ownerReferences") or ())


def controller_of(obj: Mapping) -> Mapping | None:
    """metav1.GetControllerOf: the ownerReference with ``controller: true``, if any."""
    return next((r for r in obj["metadata"].get("ownerReferences") or () if r.get("controller")), None)


def controller_key(obj: Mapping, kind: str) -> str | None:
    """``ns/name`` of ``obj``'s controller of ``kind`` (metav1.GetControllerOf), if it has one."""
    ref = controller_of(obj)
    return f"{obj['metadata']['namespace']}/{ref['name']}" if ref is not None and ref.get("kind") == kind else None


def owner_reference(owner: Mapping) -> dict:
    """metav1.NewControllerRef: an ownerReference to ``owner`` with controller and blockOwnerDeletion set."""
    return {
        "apiVersion": owner.get("apiVersion", "v1"),
        "kind": owner["kind"],
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def condition(obj: Mapping, kind: str) -> Mapping | None:
    """The status condition of type ``kind``, if the object has one."""
    for c in obj.get("status", {}).get("conditions") or ():
        if c.get("type") == kind:
            return c
    return None


def namespace_terminating(err: APIError) -> bool:
    """apierrors.HasStatusCause(err, v1.NamespaceTerminatingCause): the NamespaceLifecycle admission refused the
    create because the namespace is being deleted (kbench's error carries no causes; its message says so)."""
    return err.code == 403 and "because it is being terminated" in err.message


def pod_ready(pod: Mapping) -> bool:
    """podutil.IsPodReady: the Ready condition is True."""
    cond = condition(pod, "Ready")
    return cond is not None and cond.get("status") == "True"


def active_pod(pod: Mapping) -> bool:
    """controller.IsPodActive: not Succeeded, not Failed, not being deleted."""
    return pod.get("status", {}).get("phase") not in ("Succeeded", "Failed") and not pod["metadata"].get(
        "deletionTimestamp"
    )
