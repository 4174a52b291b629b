"""client-go's SharedInformer: a Reflector (list, then watch; relist on 410 Gone), a cache, event handlers."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from kbench.apiserver.objects import APIError, object_key
from kbench.client.client import Client


class Informer:
    """Keeps ``cache`` (key -> object, read-only) in step with the apiserver and calls the handlers.

    Parameters
    ----------
    client : Client
    resource : str
    namespace, label_selector, field_selector
        What to list and watch.
    resync : float
        Seconds between resyncs (each cached object handed to ``on_update`` again); 0 for none.
    """

    def __init__(
        self,
        client: Client,
        resource: str,
        namespace: str = "",
        label_selector=None,
        field_selector: str | None = None,
        resync: float = 0.0,
    ) -> None:
        self.client, self.engine, self.resource = client, client.engine, resource
        self.selectors = {"namespace": namespace, "label_selector": label_selector, "field_selector": field_selector}
        self.resync = resync
        self.cache: dict[str, Mapping] = {}
        self.rv = 0
        self.handlers: tuple[list[Callable], list[Callable], list[Callable]] = ([], [], [])
        """The ``on_add``, ``on_update`` and ``on_delete`` handlers, each in the order added."""
        self.synced = self.engine.event()
        """Triggered once the first list has filled the cache (cache.WaitForCacheSync)."""
        self.lists = 0
        self._watch = None
        self._stopped = False

    def add_handler(
        self, on_add: Callable | None = None, on_update: Callable | None = None, on_delete: Callable | None = None
    ) -> None:
        """``on_add(obj)``, ``on_update(old, new)``, ``on_delete(obj)``."""
        for handlers, fn in zip(self.handlers, (on_add, on_update, on_delete)):
            if fn is not None:
                handlers.append(fn)

    def start(self, delay: float = 0.0) -> Informer:
        """Run: list (``delay`` seconds from now), then watch; resync every ``resync`` seconds if set."""
        self._list(delay)
        if self.resync > 0:
            self.engine.schedule(self.resync, self._resync)
        return self

    def stop(self) -> None:
        """Stop listing and watching (the cache stays as it is)."""
        self._stopped = True
        if self._watch is not None:
            self._watch.stop()
            self._watch = None  # the watch's callback holds this informer: a cycle otherwise

    def disconnect(self, seconds: float) -> None:
        """Drop the watch (a broken connection); the reflector re-watches from its resourceVersion later."""
        if self._watch is not None:
            self._watch.stop()
            self._watch = None
        self.engine.schedule(seconds, lambda _: self._start_watch())

    # -- the reflector --------------------------------------------------------------------------------------
    def _list(self, delay: float = 0.0) -> None:
        if delay > 0:  # sent then, unless the informer has stopped by then
            self.engine.schedule(delay, lambda _: self._list())
            return
        if self._stopped:
            return
        self.lists += 1
        self.client.request("list", self.resource, self._listed, **self.selectors)

    def _listed(self, result, error: APIError | None, delay: float) -> None:
        if error is not None:  # back off and relist (the reflector's 1 s .. 30 s backoff, first step)
            self._list(delay + 1.0)
            return
        self.engine.schedule(delay, self._replace, result)

    def _replace(self, result) -> None:
        """cache.Replace: the list's objects become the cache; the differences go to the handlers."""
        if self._stopped:
            return
        fresh = {object_key(obj): obj for obj in result["items"]}
        old = self.cache
        self.cache = fresh
        self.rv = int(result["metadata"]["resourceVersion"])
        for key, obj in old.items():
            if key not in fresh:
                self._notify(2, obj, None)
        for key, obj in fresh.items():
            prev = old.get(key)
            if prev is None:
                self._notify(0, obj, None)
            elif prev["metadata"].get("resourceVersion") != obj["metadata"].get("resourceVersion"):
                self._notify(1, prev, obj)
        if not self.synced.triggered:
            self.synced.succeed()  # no value: the informer as its value would be a reference cycle
        self._start_watch()

    def _start_watch(self) -> None:
        if self._stopped:
            return
        self.client.request(
            "watch",
            self.resource,
            self._watching,
            resourceVersion=str(self.rv),
            on_events=self._events,
            **self.selectors,
        )

    def _watching(self, result, error: APIError | None, delay: float) -> None:
        if self._stopped:  # stopped while the watch was being set up
            if error is None:
                result["watch"].stop()
            return
        if error is not None:
            if error.code == 410:  # the watch cache no longer has our resourceVersion: list again
                self._list(delay)
            else:
                self.engine.schedule(delay + 1.0, lambda _: self._start_watch())
            return
        self._watch = result["watch"]

    def _events(self, events: list) -> None:
        cache, notify = self.cache, self._notify  # (handlers run synchronously; a relist replaces the cache later)
        for kind, obj, rv in events:
            key = object_key(obj)
            if kind == "DELETED":
                cache.pop(key, None)
                notify(2, obj, None)
            else:
                prev = cache.get(key)
                cache[key] = obj
                notify(0, obj, None) if prev is None else notify(1, prev, obj)
            self.rv = rv

    def _notify(self, which: int, obj, new) -> None:
        if which == 1:
            for fn in self.handlers[1]:
                fn(obj, new)
        else:
            for fn in self.handlers[which]:
                fn(obj)

    def _resync(self, _=None) -> None:
        if self._stopped:
            return
        for obj in list(self.cache.values()):
            self._notify(1, obj, obj)
        self.engine.schedule(self.resync, self._resync)
