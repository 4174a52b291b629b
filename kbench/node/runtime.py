"""A CRI runtime model (containerd or CRI-O): how long each CRI call takes, and the node's image store.

Durations come from the profile's ``runtime.<name>`` section (:class:`RuntimeCosts`: one distribution per CRI
operation, as the kubelet's ``kubelet_runtime_operations_duration_seconds`` splits them). An image is a list of layers
(digest, compressed size); pulling it costs ``pull_overhead`` plus, for each layer the node does not hold
yet, ``size / pull_bandwidth + size x unpack_per_byte``: layers shared between images are pulled once per
node. The kubelet pulls one image at a time (``serializeImagePulls: true``) unless its configuration says otherwise
(``maxParallelImagePulls``), as pkg/kubelet/images/puller.go.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

from kbench.api import quantity
from kbench.profiles import Profile, UnitCosts
from kbench.sim import Engine
from kbench.sim.dist import Distribution
from kbench.sim.resource import Resource

RUNTIMES = ("containerd", "crio")
OPERATIONS = ("sandbox_create", "container_create", "container_start")
PAUSE_IMAGE = "registry.k8s.io/pause:3.10"
"""The sandbox image (kubelet's --pod-infra-container-image default since v1.31); pinned, never pulled here."""


@dataclass(frozen=True)
class RuntimeCosts(UnitCosts):
    """One CRI runtime's unit costs: the profile's ``runtime.<name>`` section (read with ``section=``)."""

    section = "runtime.containerd"
    sandbox_create: Distribution
    container_create: Distribution
    container_start: Distribution
    container_stop: float
    sandbox_stop: float
    pull_overhead: float
    pull_bandwidth: float
    """Bytes per second a node downloads layers at."""
    unpack_per_byte: float
    default_image_size: int
    """Compressed bytes of an image a scenario does not describe."""


@dataclass(frozen=True)
class Image:
    """An image: its name and layers."""

    name: str
    layers: tuple[tuple[str, int], ...]
    """(digest, compressed bytes) per layer."""


def _size(value, where: str) -> int:
    size = quantity.value(value, where)
    if size < 0:
        raise ValueError(f"{where}: expected a size in bytes (a number or a quantity such as 50Mi); got {value!r}")
    return size


def image_catalog(spec: Mapping | None, default_size: int) -> dict[str, Image]:
    """Images from a scenario's ``images`` mapping: ``name: {size: 50Mi}`` (one layer) or
    ``name: {layers: [{digest: sha256:.., size: 20Mi}, ...]}``; errors name the image and field."""
    out = {}
    for name, entry in (spec or {}).items():
        where = f"images.{name}"
        if not isinstance(entry, Mapping) or not ({"size", "layers"} & set(entry)) or set(entry) - {"size", "layers"}:
            raise ValueError(f"{where}: expected a mapping with 'size' or 'layers'; got {entry!r}")
        if "layers" in entry:
            layers = []
            for i, layer in enumerate(entry["layers"] or []):
                if not isinstance(layer, Mapping) or "digest" not in layer or "size" not in layer:
                    raise ValueError(f"{where}.layers[{i}]: expected {{digest, size}}; got {layer!r}")
                layers.append((str(layer["digest"]), _size(layer["size"], f"{where}.layers[{i}].size")))
            out[name] = Image(name, tuple(layers))
        else:
            out[name] = Image(name, ((_digest(name), _size(entry["size"], f"{where}.size")),))
    out.setdefault(PAUSE_IMAGE, Image(PAUSE_IMAGE, ((_digest(PAUSE_IMAGE), 320_000),)))
    return out


def _digest(name: str) -> str:
    return "sha256:" + hashlib.sha256(name.encode()).hexdigest()


class RuntimeModel:
    """What every node's runtime of one kind shares: the profile's costs, samplers and the image catalog."""

    def __init__(self, engine: Engine, name: str, profile: Profile, rng, images: Mapping | None = None) -> None:
        if name not in RUNTIMES:
            raise ValueError(f"runtime: must be one of {', '.join(RUNTIMES)}; got {name!r}")
        self.engine, self.name, self.profile = engine, name, profile
        self.costs = costs = RuntimeCosts.from_profile(profile, f"runtime.{name}")
        self._draw = {op: getattr(costs, op).sampler(rng) for op in OPERATIONS}
        self.images = image_catalog(images, costs.default_image_size)

    def duration(self, op: str) -> float:
        """Seconds one CRI call ``op`` (sandbox_create, container_create, container_start) takes."""
        return self._draw[op]()

    def image(self, name: str) -> Image:
        """The image ``name``: from the catalog, or one layer of the default size if the scenario did not describe
        it."""
        image = self.images.get(name)
        if image is None:
            image = self.images[name] = Image(name, ((_digest(name), self.costs.default_image_size),))
        return image


class NodeRuntime:
    """One node's runtime: its image store (layers held) and the image puller."""

    def __init__(self, model: RuntimeModel, parallel_pulls: int = 1) -> None:
        """``parallel_pulls``: image pulls at once (the kubelet configuration's, 1 when serialized)."""
        self.model = model
        self.layers: set[str] = {layer for layer, _ in model.image(PAUSE_IMAGE).layers}
        self.puller = Resource(model.engine, parallel_pulls)
        self.pulled_bytes = 0
        self.last_pull: tuple[float, int] = (0.0, 0)
        """The seconds the last pull took (its wait for the puller left out) and its image's size in bytes."""

    def present(self, image: str) -> bool:
        """Whether every layer of ``image`` is on the node."""
        return all(layer in self.layers for layer, _ in self.model.image(image).layers)

    def pull(self, image: str):
        """Process body: wait for the puller, fetch the missing layers; returns the seconds it took including the
        wait for the puller (:attr:`last_pull` holds the pull itself: its seconds and the image's bytes)."""
        engine, model = self.model.engine, self.model
        costs = model.costs
        asked = engine.now
        slot = self.puller.acquire()
        try:
            yield slot
        except BaseException:  # interrupted while queued (the pod went away)
            self.puller.cancel(slot)
            raise
        try:
            missing = [(d, s) for d, s in model.image(image).layers if d not in self.layers]
            nbytes = sum(s for _, s in missing)
            pulling = costs.pull_overhead + nbytes / costs.pull_bandwidth + nbytes * costs.unpack_per_byte
            yield pulling
            self.last_pull = (pulling, sum(s for _, s in model.image(image).layers))
            self.layers.update(d for d, _ in missing)
            self.pulled_bytes += nbytes
        finally:
            self.puller.release()
        return engine.now - asked
