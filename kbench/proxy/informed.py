"""kube-proxy on a cluster node: Service and EndpointSlice informers feed the node's :class:`KubeProxy`.

As upstream's ServiceChangeTracker / EndpointsChangeTracker (pkg/proxy/servicechangetracker.go,
endpointschangetracker.go, endpointslicecache.go): a change to a Service or to one of its slices recomputes that
Service's ports and endpoints for this node and asks the sync runner for a sync. An EndpointSlice event is a change
only when the slice differs from the one the cache holds (esDataChanged: a removal of a slice it holds, an add or
update of a different object; an IPv4/IPv6 slice only, ``supportedEndpointSliceAddressTypes``); a change that adds or
updates a slice carries its ``endpoints.kubernetes.io/last-change-trigger-time``, the start of the network
programming latency, when it is later than the tracker's start (``trackerStartTime``); a removal carries none and
drops the Service's pending trigger times (the deleted slice's annotation dates from its last update). Service
changes carry no trigger time.
kube-proxy's client runs at its configuration's ``clientConnection`` QPS and burst (5 / 10 by default). The
kube-proxies of one cluster share what every node would compute alike (:class:`Shared`): the parsed manifests, and
the sync counts of a Service compiled the same on every node.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields

from kbench.api.network import SERVICE_NAME_LABEL, EndpointSlice, Service
from kbench.apiserver.objects import object_key, seconds
from kbench.client import Client, Informer
from kbench.controllers.endpointslice import TRIGGER
from kbench.proxy.config import KubeProxyConfiguration
from kbench.proxy.kube_proxy import KubeProxy, ProxyCosts, service_counts
from kbench.proxy.model import ProxierConfig, ServicePortInfo, service_ports

SUPPORTED_ADDRESS_TYPES = ("IPv4", "IPv6")
"""pkg/proxy/endpointschangetracker.go supportedEndpointSliceAddressTypes: kube-proxy ignores FQDN slices."""


NODE_FIELDS = ("node_name", "node_ips")
"""The :class:`~kbench.proxy.model.ProxierConfig` fields that are the node's own: the kube-proxies of a cluster
share a Service's counts when the rest of their configurations are equal."""


class Shared:
    """What the kube-proxies of one cluster share: every node sees the same objects.

    - ``parsed``: each manifest parsed once, by (uid, resourceVersion);
    - ``counts``: by Service, its sync counts (:func:`~kbench.proxy.kube_proxy.service_counts`) with what they were
      compiled from (the configuration but its node fields, the versions of the Service and of its slices in the
      node's order), kept when its ports are compiled alike on every node
      (:attr:`~kbench.proxy.model.ServicePortInfo.same_on_every_node`). A node holding the same takes them instead
      of compiling them again: every change of a Service's endpoints costs one compile, not one a node (at 80
      nodes and 200 endpoints, a rolling update spent 95% of its wall compiling)."""

    def __init__(self) -> None:
        self.parsed: dict[tuple, Service | EndpointSlice] = {}
        self.counts: dict[str, tuple[tuple, list[int] | None]] = {}


def _version(obj: Mapping) -> tuple[str, str | None]:
    """(uid, resourceVersion): one version of one object."""
    meta = obj["metadata"]
    return meta["uid"], meta.get("resourceVersion")


def _parse(parsed: dict, cls, obj: Mapping):
    key = _version(obj)
    out = parsed.get(key)
    if out is None:
        if len(parsed) > 100_000:  # old versions are never asked for again
            parsed.clear()
        out = parsed[key] = cls.from_manifest(obj)
    return out


class NodeProxy:
    """kube-proxy on node ``node_name`` (address ``node_ip``), configured by ``config``.

    Parameters
    ----------
    server : APIServer
        What its client talks to.
    node_name, node_ip : str
        The node it runs on.
    config : KubeProxyConfiguration, optional
        The operator's settings (mode, sync periods, clusterCIDR, client limits); upstream's defaults if omitted.
    costs : ProxyCosts, optional
        Unit costs (the ``default`` profile's if omitted).
    shared : Shared, optional
        What the kube-proxies of one cluster share (a node's own if omitted).
    """

    def __init__(
        self,
        server,
        node_name: str,
        node_ip: str,
        config: KubeProxyConfiguration | None = None,
        costs: ProxyCosts | None = None,
        shared: Shared | None = None,
    ) -> None:
        configuration = config if config is not None else KubeProxyConfiguration()
        self.engine = server.engine
        self.client = Client(
            server,
            f"system:kube-proxy:{node_name}",
            ("system:node-proxier",),
            qps=configuration.qps,
            burst=configuration.client_burst,
        )
        self.config = ProxierConfig(node_name=node_name, node_ips=(node_ip,), configuration=configuration)
        self.proxy = KubeProxy(self.engine, [], self.config, costs)
        self.shared = Shared() if shared is None else shared
        self._config_key = tuple(getattr(self.config, f.name) for f in fields(self.config) if f.name not in NODE_FIELDS)
        self.started = self.engine.now
        """Upstream's ``trackerStartTime``: trigger times up to it are not observed."""
        self.slices_of: dict[str, dict[str, Mapping]] = {}
        self.services = Informer(self.client, "services")
        self.services.add_handler(
            on_add=self._service, on_update=lambda old, new: self._service(new), on_delete=self._service
        )
        self.slices = Informer(self.client, "endpointslices")
        self.slices.add_handler(
            on_add=self._slice,
            on_update=lambda old, new: self._slice(new),
            on_delete=lambda obj: self._slice(obj, deleted=True),
        )
        self.services.start()
        self.slices.start()

    @property
    def latencies(self) -> list[float]:
        """Network programming latency samples (s) of this node's kube-proxy."""
        return self.proxy.latencies

    def _service(self, svc: Mapping) -> None:
        self._recompute(object_key(svc), None)

    def _slice(self, es: Mapping, deleted: bool = False) -> None:
        """EndpointSliceUpdate(es, removeSlice=deleted) (pkg/proxy/endpointschangetracker.go)."""
        meta = es["metadata"]
        service = (meta.get("labels") or {}).get(SERVICE_NAME_LABEL)
        if not service or es.get("addressType") not in SUPPORTED_ADDRESS_TYPES:
            return
        key = f"{meta['namespace']}/{service}"
        slices = self.slices_of.setdefault(key, {})
        held = slices.get(meta["name"])
        if deleted:
            if held is None:  # esDataChanged: removing a slice the cache does not hold changes nothing
                return
            del slices[meta["name"]]
            self._recompute(key, None, removed_slice=True)
            return
        if held is not None and (held is es or held == es):  # reflect.DeepEqual: no change, no sync
            return
        slices[meta["name"]] = es
        stamp = (meta.get("annotations") or {}).get(TRIGGER)
        trigger = seconds(stamp) if stamp else None
        self._recompute(key, trigger if trigger is not None and trigger > self.started else None)

    def _recompute(self, key: str, trigger: float | None, removed_slice: bool = False) -> None:
        self.proxy.changed(key, self._counts(key), trigger, removed_slice)

    def _counts(self, key: str) -> list[int] | None:
        """Service ``key``'s sync counts on this node (None: no ports), shared with the cluster's other kube-proxies
        when its ports are compiled alike on every node (:class:`Shared`)."""
        svc = self.services.cache.get(key)
        if svc is None:  # deleted: what was shared of it is dropped (a node still holding it compiles its own)
            self.shared.counts.pop(key, None)
            return None
        version = (self._config_key, _version(svc), *map(_version, self.slices_of.get(key, {}).values()))
        shared = self.shared.counts.get(key)
        if shared is not None and shared[0] == version:
            return shared[1]
        ports = self.ports(key)
        counts = service_counts(self.proxy.mode, ports, self.config, key) if ports else None
        if all(sp.same_on_every_node for sp in ports):
            self.shared.counts[key] = (version, counts)
        return counts

    def ports(self, key: str) -> list[ServicePortInfo]:
        """Service ``key``'s ports on this node, with their endpoints, as its informers hold them now."""
        svc = self.services.cache.get(key)
        if svc is None:
            return []
        parsed = self.shared.parsed
        slices = [_parse(parsed, EndpointSlice, es) for es in self.slices_of.get(key, {}).values()]
        return service_ports([_parse(parsed, Service, svc)], slices, self.config)
