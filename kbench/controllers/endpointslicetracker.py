"""The EndpointSlice controller's EndpointSliceTracker (staging/src/k8s.io/endpointslice/util/endpointslice_tracker.go,
v1.35): the generation of every EndpointSlice the controller wrote, by Service, so a sync can tell that its informer
cache has not yet seen the controller's own writes (:meth:`EndpointSliceTracker.stale_slices`) and the informer
handlers can tell the controller's own changes from others' (:meth:`EndpointSliceTracker.should_sync`).

kbench's apiserver does not set ``metadata.generation`` on EndpointSlices (upstream's strategy sets it to 1 on
create and bumps it when anything but metadata changes); :func:`slice_generation` then uses the slice's
resourceVersion, which also grows with every write of the object, so every comparison the tracker makes keeps its
meaning (a metadata-only change by another writer counts as newer, where upstream's generation would not)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

SERVICE_NAME = "kubernetes.io/service-name"
"""discovery.LabelServiceName."""
DELETION_EXPECTED = -1
"""deletionExpected: the generation recorded for a slice the controller deleted."""


def slice_generation(es: Mapping) -> int:
    """The slice's ``metadata.generation``, or its resourceVersion where the apiserver sets no generation."""
    meta = es["metadata"]
    return int(meta["generation"]) if meta.get("generation") is not None else int(meta.get("resourceVersion") or 0)


def service_key(es: Mapping) -> str:
    """getServiceNN: ``namespace/name`` of the Service the slice's ``kubernetes.io/service-name`` label names."""
    return f"{es['metadata'].get('namespace', '')}/{(es['metadata'].get('labels') or {}).get(SERVICE_NAME, '')}"


class EndpointSliceTracker:
    """EndpointSliceTracker: expected generations of EndpointSlices (by uid), by Service (``namespace/name``)."""

    def __init__(self) -> None:
        self.generations_by_service: dict[str, dict[str, int]] = {}
        self.services_by_uid: dict[str, str] = {}

    def has(self, es: Mapping) -> bool:
        """Has: a generation (or an expected deletion) is tracked for the slice."""
        return es["metadata"]["uid"] in self.generations_by_service.get(service_key(es), {})

    def should_sync(self, es: Mapping) -> bool:
        """ShouldSync: the slice is untracked or newer than the generation the controller wrote."""
        gfs = self.generations_by_service.get(service_key(es))
        if gfs is None:
            return True
        g = gfs.get(es["metadata"]["uid"])
        return g is None or slice_generation(es) > g

    def stale_slices(self, svc: Mapping, slices: Iterable[Mapping]) -> bool:
        """StaleSlices: the cache lags the controller's writes for this Service: a given slice is older than the
        tracked generation or expected to be deleted, or a tracked (not deleted) slice is missing.
        Not upstream (which keys by name only and forgets a Service only when a sync finds it gone, DeleteService):
        kbench also clears what was tracked when the Service's uid changed (deleted and recreated between two
        syncs), so the old Service's slice writes do not hold the new one back."""
        key, uid = f"{svc['metadata']['namespace']}/{svc['metadata']['name']}", svc["metadata"].get("uid", "")
        tracked_uid = self.services_by_uid.get(key, "")
        if tracked_uid and uid and tracked_uid != uid:
            self.generations_by_service.pop(key, None)
        self.services_by_uid[key] = uid
        gfs = self.generations_by_service.get(key)
        if gfs is None:
            return False
        provided = set()
        for es in slices:
            provided.add(es["metadata"]["uid"])
            g = gfs.get(es["metadata"]["uid"])
            if g is not None and (g == DELETION_EXPECTED or g > slice_generation(es)):
                return True
        return any(g != DELETION_EXPECTED and slice_uid not in provided for slice_uid, g in gfs.items())

    def update(self, es: Mapping) -> None:
        """Update: record the generation of a slice the controller wrote (the apiserver's answer)."""
        self.generations_by_service.setdefault(service_key(es), {})[es["metadata"]["uid"]] = slice_generation(es)

    def expect_deletion(self, es: Mapping) -> None:
        """ExpectDeletion: the controller deleted the slice; its deletion is still to be seen."""
        self.generations_by_service.setdefault(service_key(es), {})[es["metadata"]["uid"]] = DELETION_EXPECTED

    def handle_deletion(self, es: Mapping) -> bool:
        """HandleDeletion: forget the slice; False when its deletion was not expected (another writer deleted it)."""
        gfs = self.generations_by_service.get(service_key(es))
        if gfs is not None:
            g = gfs.pop(es["metadata"]["uid"], None)
            if g is not None and g != DELETION_EXPECTED:
                return False
        return True

    def delete_service(self, namespace: str, name: str) -> None:
        """DeleteService: forget every generation tracked for the Service."""
        self.generations_by_service.pop(f"{namespace}/{name}", None)
        self.services_by_uid.pop(f"{namespace}/{name}", None)
