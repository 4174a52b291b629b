"""One whole modelled cluster on one engine.

kube-apiserver instances over the etcd model; kube-controller-manager (every controller kbench models);
kube-scheduler; on every node a kubelet with its CRI runtime, and kube-proxy (on every node, or on the
first ``kubeProxy.nodes`` nodes to keep big runs fast); optionally the cloud-controller-manager over a
modelled cloud; and ClusterLoader2's pod startup watcher. Only the apiserver touches etcd: every component
talks to it through its own client.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from kbench.api.quantity import resource_amount
from kbench.apiserver import APIServer
from kbench.client import Client
from kbench.cloud import Cloud, cloud_controller_manager
from kbench.controllers import controller_manager
from kbench.metrics.pod_startup import PodStartupWatcher
from kbench.node.kubelet import Kubelet
from kbench.node.runtime import RUNTIMES, RuntimeModel
from kbench.profiles import Profile, available, load_profile
from kbench.proxy.informed import NodeProxy
from kbench.proxy.kube_proxy import ProxyCosts
from kbench.proxy.model import MODES
from kbench.scheduler.component import KubeScheduler
from kbench.sim import Engine, Streams

MAX_NODES = 20_000
"""Largest cluster kbench builds (scenarios and the cluster sweep): past upstream's 5,000-node scalability
limit (sig-scalability thresholds) and the 15,000 nodes asked of it, short of what a mistyped size would fill
memory with."""
MAX_PODS_PER_NODE = 1_000
"""Bound on pods per node (node capacity, a scenario's ``perNode``): well past kubelet's default maxPods (110)
and a /24 pod CIDR's 256 addresses, so over-full nodes can be tried, without a typo building a cluster of
millions of pods."""
NODE_CAPACITY = {"cpu": "8", "memory": "32Gi", "pods": 110}
"""Each node's capacity unless the scenario says otherwise (keys it leaves out keep these values)."""
_KEYS = {
    "nodes": "nodes",
    "zones": "zones",
    "nodeCapacity": "node_capacity",
    "profile": "profile",
    "profileOverrides": "overrides",
    "apiservers": "apiservers",
    "flowControl": "flow_control",
    "runtime": "runtime",
    "kubeProxy": "kube_proxy",
    "cloud": "cloud",
    "images": "images",
    "seed": "seed",
    "maxParallelImagePulls": "parallel_pulls",
}


@dataclass(frozen=True)
class ClusterSpec:
    """What cluster to build; YAML uses the camelCase keys of :data:`_KEYS` (errors name the field)."""

    nodes: int = 100
    zones: int = 3
    node_capacity: Mapping = field(default_factory=lambda: dict(NODE_CAPACITY))
    profile: str = "default"
    overrides: Mapping = field(default_factory=dict)
    apiservers: int | None = None
    flow_control: str | None = None
    runtime: str = "containerd"
    kube_proxy: Mapping = field(default_factory=lambda: {"mode": "iptables"})
    cloud: bool = False
    images: Mapping = field(default_factory=dict)
    seed: int = 0
    parallel_pulls: int = 1

    @classmethod
    def from_dict(cls, spec: Mapping | None, where: str = "cluster") -> ClusterSpec:
        spec = spec or {}
        if not isinstance(spec, Mapping):
            raise ValueError(f"{where}: expected a mapping; got {spec!r}")
        unknown = set(spec) - set(_KEYS)
        if unknown:
            raise ValueError(f"{where}.{sorted(unknown)[0]}: unknown field; allowed: {', '.join(_KEYS)}")
        built = cls(**{_KEYS[k]: v for k, v in spec.items()})
        built.check(where, {v: k for k, v in _KEYS.items()})
        return built

    def check(self, where: str = "cluster", names: Mapping[str, str] | None = None) -> None:
        """Validate every field; errors name it and what is allowed."""
        names = names or {f.name: f.name for f in fields(self)}

        def bad(attr: str, allowed: str) -> ValueError:
            return ValueError(f"{where}.{names[attr]}: {getattr(self, attr)!r} is not allowed; expected {allowed}")

        for attr, low, high in (
            ("nodes", 1, MAX_NODES),
            ("zones", 1, None),
            ("seed", 0, None),
            ("parallel_pulls", 1, None),
        ):
            value = getattr(self, attr)
            if isinstance(value, bool) or not isinstance(value, int) or value < low or (high and value > high):
                raise bad(attr, f"an integer >= {low}" + (f" and <= {high:,}" if high else ""))
        if self.apiservers is not None and (
            isinstance(self.apiservers, bool) or not isinstance(self.apiservers, int) or self.apiservers < 1
        ):
            raise bad("apiservers", "an integer >= 1")
        if self.flow_control not in (None, "apf", "max-inflight"):
            raise bad("flow_control", "apf or max-inflight")
        if self.runtime not in RUNTIMES:
            raise bad("runtime", "one of " + ", ".join(RUNTIMES))
        if self.profile not in available():
            raise bad("profile", "one of " + ", ".join(available()))
        if not isinstance(self.cloud, bool):
            raise bad("cloud", "true or false")
        if not isinstance(self.node_capacity, Mapping) or set(self.node_capacity) - {"cpu", "memory", "pods"}:
            raise bad("node_capacity", "a mapping with cpu, memory and pods")
        capacity = {**NODE_CAPACITY, **self.node_capacity}
        for resource in ("cpu", "memory"):  # quantities as the apiserver parses them; the field is named
            if resource_amount(resource, capacity[resource], f"{where}.{names['node_capacity']}.{resource}") <= 0:
                raise bad("node_capacity", f"{resource} > 0")
        pods = capacity["pods"]
        if isinstance(pods, bool) or not isinstance(pods, int) or not 1 <= pods <= MAX_PODS_PER_NODE:
            raise bad("node_capacity", f"pods as an integer in [1, {MAX_PODS_PER_NODE}]")
        proxy = self.kube_proxy
        if (
            not isinstance(proxy, Mapping)
            or set(proxy) - {"mode", "nodes"}
            or proxy.get("mode", "iptables") not in MODES
        ):
            raise bad("kube_proxy", "{mode: " + " | ".join(MODES) + ", nodes: <count, default every node>}")
        count = proxy.get("nodes", self.nodes)
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise bad("kube_proxy", "kubeProxy.nodes as an integer >= 0")
        self.load_profile()  # overrides must name parameters

    def load_profile(self) -> Profile:
        profile = load_profile(self.profile)
        return profile.override(dict(self.overrides)) if self.overrides else profile


class Cluster:
    """A built cluster; ``run(until)`` advances it; components are attributes for scenarios and SLIs."""

    def __init__(self, spec: ClusterSpec | None = None, **kwargs: Any) -> None:
        spec = spec or ClusterSpec(**kwargs)
        spec.check()
        self.spec = spec
        self.engine = engine = Engine()
        self.streams = Streams(spec.seed)
        self.profile = profile = spec.load_profile()
        self.api = APIServer(
            engine, profile=profile, instances=spec.apiservers, flow_control=spec.flow_control, streams=self.streams
        )
        self.admin = Client(self.api, "clusterloader", ("system:masters",), qps=1e9, burst=10**9)
        self.watcher = PodStartupWatcher(self.api)
        self.kcm = controller_manager(self.api).start()
        self.cloud = None
        if spec.cloud:
            self.cloud = Cloud(engine, profile, self.streams)
            for i in range(spec.nodes):
                self.cloud.add_instance(self.node_name(i), zone=self.zone(i))
            self.ccm = cloud_controller_manager(self.api, self.cloud).start()
        self.scheduler = KubeScheduler(self.api, profile, self.streams)
        self.scheduler.scheduler.on_bound = lambda pod, node: self.watcher.scheduled(pod.key, engine.now)
        self.runtime = RuntimeModel(engine, spec.runtime, profile, self.streams("runtime"), spec.images)
        capacity = {**NODE_CAPACITY, **spec.node_capacity}

        def started(worker) -> None:
            self.watcher.running(worker.key, engine.now, worker.pull_seconds)

        self.kubelets = [
            Kubelet(
                self.api,
                self.node_name(i),
                self.runtime,
                index=i,
                parallel_pulls=spec.parallel_pulls,
                observer=started,
                zone=self.zone(i),
                cpu=str(capacity["cpu"]),
                memory=str(capacity["memory"]),
                pods=int(capacity["pods"]),
                uninitialized=spec.cloud,
            )
            for i in range(spec.nodes)
        ]
        costs = ProxyCosts.from_profile(profile)
        parsed: dict = {}
        mode = spec.kube_proxy.get("mode", "iptables")
        self.proxies = [
            NodeProxy(self.api, k.name, k.ip, mode, costs, parsed)
            for k in self.kubelets[: spec.kube_proxy.get("nodes", spec.nodes)]
        ]

    @staticmethod
    def node_name(i: int) -> str:
        return f"node-{i}"

    def zone(self, i: int) -> str:
        return f"zone-{i % self.spec.zones}"

    def run(self, until: float) -> None:
        self.engine.run(until=until)

    def settle(self, limit: float = 120.0) -> float:
        """Run until every node is registered with the scheduler and the default ServiceAccount exists."""
        cache = self.api.caches["serviceaccounts"]
        while self.engine.now < limit:
            if self.scheduler.state.num_nodes >= self.spec.nodes and cache.get("default/default") is not None:
                break
            self.engine.run(until=self.engine.now + 0.5)
        return self.engine.now
