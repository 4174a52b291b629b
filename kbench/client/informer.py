"""client-go's SharedInformer: a Reflector (list, then watch; relist on 410 Gone), a cache, event handlers."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping

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
        self._indexes: dict[str, tuple[Callable[[Mapping], Iterable[Hashable]], dict[Hashable, set[str]]]] = {}
        """Indexers by name: each one's function and, for each value it gives, the keys of the objects given it."""
        self._order: dict[str, int] = {}
        """With indexes: each cached key's place in the cache's order (a dict's: a new key goes last, an update keeps
        its place), so what an index finds comes back in the order a scan of the cache would find it."""
        self._indexed: dict[str, Mapping] | None = None
        """The cache the indexes describe (the informer's own until a relist or a caller replaces it)."""
        self._next = 0
        """The place the next new key takes."""

    def add_handler(
        self, on_add: Callable | None = None, on_update: Callable | None = None, on_delete: Callable | None = None
    ) -> None:
        """``on_add(obj)``, ``on_update(old, new)``, ``on_delete(obj)``."""
        for handlers, fn in zip(self.handlers, (on_add, on_update, on_delete)):
            if fn is not None:
                handlers.append(fn)

    def add_index(self, name: str, fn: Callable[[Mapping], Iterable[Hashable]]) -> None:
        """client-go's ``AddIndexers``: keep, for each value ``fn(obj)`` gives, the cached objects it gives it for
        (:meth:`by_index`). Informers are shared: an index already added under ``name`` stays."""
        if name not in self._indexes:
            self._indexes[name] = (fn, {})
            self._indexed = None  # (re)built from the cache at the next lookup

    def by_index(self, name: str, values: Iterable[Hashable], every: bool = True) -> list[Mapping]:
        """The cached objects that index ``name`` gives every one of ``values`` (client-go's ``ByIndex`` for one
        value), or any one of them (``every`` False), in the cache's order: what a scan of the cache for them would
        find, without the scan. No values: every object, or none."""
        if self._indexed is not self.cache:
            self._rebuild()
        keys = self._indexes[name][1]
        found = sorted((keys.get(v, set()) for v in values), key=len)
        if not found:
            return list(self.cache.values()) if every else []
        matched = found[0].intersection(*found[1:]) if every else found[0].union(*found[1:])
        cache = self.cache
        return [cache[k] for k in sorted(matched, key=self._order.__getitem__)]

    def _rebuild(self) -> None:
        """Index the whole cache (a relist replaced it, or an index is new)."""
        self._order = {key: i for i, key in enumerate(self.cache)}
        self._next = len(self._order)
        for fn, keys in self._indexes.values():
            keys.clear()
            for key, obj in self.cache.items():
                for value in fn(obj):
                    keys.setdefault(value, set()).add(key)
        self._indexed = self.cache

    def _reindex(self, key: str, prev: Mapping | None, obj: Mapping | None) -> None:
        """The cache's ``key`` went from ``prev`` to ``obj`` (None: absent): its index entries and place follow."""
        for fn, keys in self._indexes.values():
            if prev is not None:
                for value in fn(prev):
                    held = keys[value]
                    held.discard(key)
                    if not held:
                        del keys[value]
            if obj is not None:
                for value in fn(obj):
                    keys.setdefault(value, set()).add(key)
        if obj is None:
            self._order.pop(key, None)
        elif prev is None:
            self._order[key] = self._next
            self._next += 1

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
            indexed = self._indexed is cache  # (else the next lookup indexes the cache anew; a handler may look up)
            if kind == "DELETED":
                gone = cache.pop(key, None)
                if indexed and gone is not None:
                    self._reindex(key, gone, None)
                notify(2, obj, None)
            else:
                prev = cache.get(key)
                cache[key] = obj
                if indexed:
                    self._reindex(key, prev, obj)
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
