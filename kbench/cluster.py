"""One whole modelled cluster on one engine.

kube-apiserver instances over the etcd model; kube-controller-manager (every controller kbench models);
kube-scheduler; on every node a kubelet with its CRI runtime, and kube-proxy (on every node, or on the
first ``proxyNodes`` nodes to keep big runs fast); optionally the cloud-controller-manager over a
modelled cloud; and ClusterLoader2's pod startup watcher. Only the apiserver touches etcd: every component
talks to it through its own client. Each component is built from its configuration (:mod:`kbench.components`),
its unit costs from the profile.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from kbench import components
from kbench.api.quantity import resource_amount
from kbench.apiserver import APIServer
from kbench.apiserver.renewals import MAX_WINDOW, CoalescedRenewals, valid_window
from kbench.client import Client
from kbench.cloud import Cloud, cloud_controller_manager
from kbench.controllers import controller_manager
from kbench.metrics.pod_startup import PodStartupWatcher
from kbench.node.config import KubeletConfiguration
from kbench.node.kubelet import Kubelet
from kbench.node.runtime import RUNTIMES, RuntimeModel
from kbench.profiles import Profile, available, load_profile
from kbench.proxy.informed import NodeProxy, Shared
from kbench.proxy.kube_proxy import ProxyCosts
from kbench.scheduler.component import KubeScheduler
from kbench.sim import Engine, Streams

MAX_NODES = 20_000
"""Largest cluster kbench builds (scenarios and the cluster sweep): past upstream's 5,000-node scalability
limit (sig-scalability thresholds) and the 15,000 nodes asked of it, short of what a mistyped size would fill
memory with."""
MAX_PODS_PER_NODE = 1_000
"""Bound on pods per scenario step per node (``perNode``): well past kubelet's default maxPods (110) and a /24
pod CIDR's 256 addresses, so over-full nodes can be tried, without a typo building millions of pods."""
NODE_CAPACITY = {"cpu": "8", "memory": "32Gi"}
"""Each node's machine unless the scenario says otherwise (its pods capacity is the kubelet's maxPods)."""
APISERVERS = 3
"""kube-apiserver instances behind the load balancer: Kubernetes scalability tests run HA control planes of 3
(kubernetes/perf-tests clusterloader2 5000-node presubmit setup, and kubeadm's HA topology docs)."""
YAML_KEYS = {  # YAML key -> ClusterSpec field
    "nodes": "nodes",
    "zones": "zones",
    "nodeCapacity": "node_capacity",
    "profile": "profile",
    "profileOverrides": "overrides",
    "apiservers": "apiservers",
    "runtime": "runtime",
    "proxyNodes": "proxy_nodes",
    "cloud": "cloud",
    "images": "images",
    "seed": "seed",
    "coalesceLeases": "coalesce_leases",
}


@dataclass(frozen=True)
class ClusterSpec:
    """What cluster to build: its shape (nodes, machines, profile of unit costs) and every component's
    configuration (``config``: component name -> configuration, see :mod:`kbench.components`).

    YAML uses the camelCase keys of :data:`YAML_KEYS`, plus the flags of the components configured by flags under
    their names (``kube-controller-manager: {kube-api-qps: 100}``); errors name the field. In Python,
    ``config`` maps a component to its configuration object or to ``{field: value}`` changes of its defaults,
    e.g. ``ClusterSpec(nodes=500, config={"kube-controller-manager": {"kubeAPIQPS": 100}})``.
    """

    nodes: int = 100
    zones: int = 3
    node_capacity: Mapping = field(default_factory=lambda: dict(NODE_CAPACITY))
    profile: str = "default"
    overrides: Mapping = field(default_factory=dict)
    apiservers: int = APISERVERS
    runtime: str = "containerd"
    proxy_nodes: int | None = None
    """Nodes running kube-proxy (the first ones), to keep big runs fast; ``None``: every node."""
    cloud: bool = False
    images: Mapping = field(default_factory=dict)
    seed: int = 0
    coalesce_leases: float = 0.0
    """A window (seconds, at most 0.1) in which the nodes' Lease renewals are coalesced to keep big runs fast
    (:mod:`kbench.apiserver.renewals`: an approximation bounded by the window); 0, the default: none."""
    config: Mapping[str, Any] = field(default_factory=dict)
    """Component name -> configuration or ``{field: value}`` changes; held as every component's configuration
    (the rest upstream's defaults, :func:`kbench.components.defaults`)."""

    def __post_init__(self) -> None:
        if not isinstance(self.config, Mapping):
            raise ValueError("cluster.config: expected a mapping of component name to configuration")
        full = components.defaults()
        for name, given in self.config.items():
            if name not in full:
                raise ValueError(f"cluster.config.{name}: unknown component; allowed: {', '.join(full)}")
            full[name] = full[name].replace(given, f"cluster.config.{name}") if isinstance(given, Mapping) else given
            if not isinstance(full[name], components.CONFIGS[name]):
                raise ValueError(
                    f"cluster.config.{name}: expected a {components.CONFIGS[name].__name__} or a "
                    f"mapping of its fields; got {type(given).__name__}"
                )
        object.__setattr__(self, "config", full)

    @classmethod
    def from_dict(cls, spec: Mapping | None, where: str = "cluster", config: Mapping | None = None) -> ClusterSpec:
        """From a scenario's ``cluster`` section (its flags applied over ``config``, default: upstream's)."""
        spec = spec or {}
        if not isinstance(spec, Mapping):
            raise ValueError(f"{where}: expected a mapping; got {spec!r}")
        unknown = set(spec) - set(YAML_KEYS) - set(components.FLAGGED)
        for name in sorted(unknown & set(components.CONFIGS)):
            raise ValueError(
                f"{where}.{name}: not a component configured by flags; give its {components.CONFIGS[name].kind} "
                "as a document of the file (flags: " + ", ".join(components.FLAGGED) + ")"
            )
        if unknown:
            allowed = ", ".join([*YAML_KEYS, *components.FLAGGED])
            raise ValueError(f"{where}.{sorted(unknown)[0]}: unknown field; allowed: {allowed}")
        flags = {k: v for k, v in spec.items() if k in components.FLAGGED}
        config = components.from_documents({}, flags, config, where)
        built = cls(**{YAML_KEYS[k]: v for k, v in spec.items() if k in YAML_KEYS}, config=config)
        built.check(where, {v: k for k, v in YAML_KEYS.items()})
        return built

    def configure(self, values: Mapping[str, Any]) -> ClusterSpec:
        """A copy with ``{"<component>.<field>": value}`` set (how sweeps set one field), each validated."""
        return replace(self, config=components.apply_fields(self.config, values, "cluster"))

    def check(self, where: str = "cluster", names: Mapping[str, str] | None = None) -> None:
        """Validate every field; errors name it and what is allowed."""
        names = names or {f.name: f.name for f in fields(self)}

        def bad(attr: str, allowed: str) -> ValueError:
            return ValueError(f"{where}.{names[attr]}: {getattr(self, attr)!r} is not allowed; expected {allowed}")

        for attr, low, high in (("nodes", 1, MAX_NODES), ("zones", 1, None), ("seed", 0, None), ("apiservers", 1, 100)):
            value = getattr(self, attr)
            if isinstance(value, bool) or not isinstance(value, int) or value < low or (high and value > high):
                raise bad(attr, f"an integer >= {low}" + (f" and <= {high:,}" if high else ""))
        if self.proxy_nodes is not None and (
            isinstance(self.proxy_nodes, bool) or not isinstance(self.proxy_nodes, int) or self.proxy_nodes < 0
        ):
            raise bad("proxy_nodes", "an integer >= 0 (nodes running kube-proxy; default: every node)")
        window = self.coalesce_leases
        if window != 0 and not valid_window(window):
            raise bad("coalesce_leases", f"a window in seconds, >= 0 and <= {MAX_WINDOW} (0: renewals not coalesced)")
        if self.runtime not in RUNTIMES:
            raise bad("runtime", "one of " + ", ".join(RUNTIMES))
        if self.profile not in available():
            raise bad("profile", "one of " + ", ".join(available()))
        if not isinstance(self.cloud, bool):
            raise bad("cloud", "true or false")
        if not isinstance(self.node_capacity, Mapping) or set(self.node_capacity) - set(NODE_CAPACITY):
            raise bad("node_capacity", "a mapping with cpu and memory (pods: the kubelet's maxPods)")
        capacity = {**NODE_CAPACITY, **self.node_capacity}
        for resource in ("cpu", "memory"):  # quantities as the apiserver parses them; the field is named
            if resource_amount(resource, capacity[resource], f"{where}.{names['node_capacity']}.{resource}") <= 0:
                raise bad("node_capacity", f"{resource} > 0")
        self.load_profile()  # overrides must name parameters

    def load_profile(self) -> Profile:
        """The profile of unit costs, with the overrides applied."""
        profile = load_profile(self.profile)
        return profile.override(dict(self.overrides)) if self.overrides else profile


class Cluster:
    """A built cluster; ``run(until)`` advances it; components are attributes for scenarios and SLIs."""

    def __init__(self, spec: ClusterSpec | None = None, **kwargs: Any) -> None:
        spec = spec or ClusterSpec(**kwargs)
        spec.check()
        self.spec = spec
        config = spec.config
        self.engine = engine = Engine()
        self.streams = Streams(spec.seed)
        self.profile = profile = spec.load_profile()
        self.api = APIServer(
            engine,
            profile=profile,
            config=config["kube-apiserver"],
            instances=spec.apiservers,
            streams=self.streams,
        )
        if spec.coalesce_leases:
            CoalescedRenewals(self.api, spec.coalesce_leases)
        self.admin = Client(self.api, "clusterloader", ("system:masters",), qps=1e9, burst=10**9)
        self.watcher = PodStartupWatcher(self.api)
        self.kcm = controller_manager(self.api, config=config["kube-controller-manager"]).start()
        self.cloud = None
        if spec.cloud:
            self.cloud = Cloud(engine, profile, self.streams)
            for i in range(spec.nodes):
                self.cloud.add_instance(self.node_name(i), zone=self.zone(i))
            self.ccm = cloud_controller_manager(self.api, self.cloud, config=config["cloud-controller-manager"]).start()
        self.scheduler = KubeScheduler(self.api, profile, self.streams, config["kube-scheduler"])
        self.scheduler.scheduler.on_bound = lambda pod, node: self.watcher.scheduled(pod.key, engine.now)
        self.runtime = RuntimeModel(engine, spec.runtime, profile, self.streams("runtime"), spec.images)
        self.kubelets = self._kubelets(config["kubelet"])
        costs = ProxyCosts.from_profile(profile)
        shared = Shared()
        count = spec.nodes if spec.proxy_nodes is None else spec.proxy_nodes
        self.proxies = [
            NodeProxy(self.api, k.name, k.ip, config=config["kube-proxy"], costs=costs, shared=shared)
            for k in self.kubelets[:count]
        ]

    def _kubelets(self, config: KubeletConfiguration) -> list[Kubelet]:
        capacity = {**NODE_CAPACITY, **self.spec.node_capacity}

        def started(worker) -> None:
            self.watcher.running(worker.key, self.engine.now, worker.pull_seconds)

        return [
            Kubelet(
                self.api,
                self.node_name(i),
                self.runtime,
                config=config,
                index=i,
                observer=started,
                zone=self.zone(i),
                cpu=str(capacity["cpu"]),
                memory=str(capacity["memory"]),
                uninitialized=self.spec.cloud,
            )
            for i in range(self.spec.nodes)
        ]

    @staticmethod
    def node_name(i: int) -> str:
        """The name of node ``i``."""
        return f"node-{i}"

    def zone(self, i: int) -> str:
        """The zone of node ``i`` (nodes are spread round-robin over ``spec.zones``)."""
        return f"zone-{i % self.spec.zones}"

    def run(self, until: float) -> None:
        """Advance the cluster to simulated time ``until`` (seconds)."""
        self.engine.run(until=until)

    def settle(self, limit: float = 120.0) -> float:
        """Run until every node is registered with the scheduler and the default namespace has its ServiceAccount
        and its ``kube-root-ca.crt`` ConfigMap (which every pod's projected API-access volume mounts)."""
        accounts, configmaps = self.api.caches["serviceaccounts"], self.api.caches["configmaps"]
        while self.engine.now < limit:
            if (
                self.scheduler.state.num_nodes >= self.spec.nodes
                and accounts.get("default/default") is not None
                and configmaps.get("default/kube-root-ca.crt") is not None
            ):
                break
            self.engine.run(until=self.engine.now + 0.5)
        return self.engine.now
