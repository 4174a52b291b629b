"""A modelled cloud provider API: instances, routes, load balancers, with per-call latency, a rate limit,
quotas and injectable failures.

Each call is an engine event: it waits for the provider's API rate limit (a token bucket), takes its latency
from the profile's ``cloud`` section, and fails with :class:`CloudError` when a failure was injected or a
quota would be exceeded. Calls return Events for the controllers' processes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kbench.client import TokenBucket
from kbench.profiles import Profile, UnitCosts, load_profile
from kbench.sim import Engine, Streams
from kbench.sim.dist import Distribution

LATENCIES = ("instance", "route", "load_balancer", "load_balancer_update")
"""The kinds of cloud call, each with its latency distribution (``<kind>_latency``)."""


class CloudError(Exception):
    """A failed cloud API call (injected, quota, or missing resource)."""


@dataclass(frozen=True)
class CloudCosts(UnitCosts):
    """The modelled provider's unit costs: its API rate limit, each call's latency, and its quotas."""

    section = "cloud"

    api_qps: float
    api_burst: int
    instance_latency: Distribution
    route_latency: Distribution
    load_balancer_latency: Distribution
    load_balancer_update_latency: Distribution
    route_table_limit: int
    load_balancer_quota: int


@dataclass
class Instance:
    """A VM as the provider's InstanceMetadata describes it."""

    name: str
    provider_id: str
    instance_type: str
    zone: str
    region: str


@dataclass
class LoadBalancer:
    """A provisioned load balancer: its address, backend nodes and ports."""

    name: str
    ip: str
    backends: list[str]
    ports: list[int]


@dataclass
class Cloud:
    """The provider's state and its API. ``fail(call, count)`` makes the next ``count`` calls of a kind fail."""

    engine: Engine
    profile: Profile = field(default_factory=load_profile)
    streams: Streams = field(default_factory=lambda: Streams(0))
    region: str = "region-1"
    instances: dict[str, Instance] = field(default_factory=dict)
    routes: dict[str, str] = field(default_factory=dict)
    """node name -> pod CIDR routed to it."""
    load_balancers: dict[str, LoadBalancer] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        costs = self.costs = CloudCosts.from_profile(self.profile)
        self.route_limit = costs.route_table_limit
        self.lb_limit = costs.load_balancer_quota
        self.limiter = TokenBucket(costs.api_qps, costs.api_burst)
        self.latency = {
            kind: getattr(costs, f"{kind}_latency").sampler(self.streams(f"cloud/{kind}")) for kind in LATENCIES
        }
        self._failures: dict[str, int] = {}
        self._next_ip = 1

    def add_instance(self, name: str, instance_type: str = "n2-standard-4", zone: str = "zone-a") -> Instance:
        """A new VM named ``name`` (the node that runs on it registers under the same name)."""
        inst = Instance(name, f"kbench://{self.region}/{zone}/{name}", instance_type, zone, self.region)
        self.instances[name] = inst
        return inst

    def remove_instance(self, name: str) -> None:
        """The VM is gone (terminated outside Kubernetes)."""
        self.instances.pop(name, None)

    def fail(self, call: str, count: int = 1) -> None:
        """The next ``count`` calls of ``call`` (e.g. ``"InstanceMetadata"``) fail."""
        self._failures[call] = self._failures.get(call, 0) + count

    def _call(self, call: str, kind: str, action):
        done = self.engine.event()
        wait = self.limiter.reserve(self.engine.now) + self.latency[kind]()
        self.calls[call] = self.calls.get(call, 0) + 1

        def finish(_):
            if self._failures.get(call, 0) > 0:
                self._failures[call] -= 1
                done.fail(CloudError(f"{call}: injected failure"))
                return
            try:
                done.succeed(action())
            except CloudError as err:
                done.fail(err)

        self.engine.schedule(wait, finish)
        return done

    # -- the API -------------------------------------------------------------------------------------------
    def instance_metadata(self, name: str):
        """InstancesV2.InstanceMetadata: an Event with the :class:`Instance` (fails if there is none)."""

        def action():
            inst = self.instances.get(name)
            if inst is None:
                raise CloudError(f"instance {name} not found")
            return inst

        return self._call("InstanceMetadata", "instance", action)

    def instance_exists(self, name: str):
        """InstancesV2.InstanceExists: an Event with whether the VM still exists."""
        return self._call("InstanceExists", "instance", lambda: name in self.instances)

    def create_route(self, node: str, cidr: str):
        """Routes.CreateRoute: ``cidr`` to ``node`` (fails at the route table limit)."""

        def action():
            if node not in self.routes and len(self.routes) >= self.route_limit:
                raise CloudError(f"CreateRoute {node}: route table limit of {self.route_limit} routes reached")
            self.routes[node] = cidr

        return self._call("CreateRoute", "route", action)

    def delete_route(self, node: str):
        """Routes.DeleteRoute: the route to ``node``."""
        return self._call("DeleteRoute", "route", lambda: self.routes.pop(node, None))

    def ensure_load_balancer(self, name: str, backends: list[str], ports: list[int]):
        """LoadBalancer.EnsureLoadBalancer: an Event with the balancer, created if missing (within the quota)."""

        def action():
            lb = self.load_balancers.get(name)
            if lb is None:
                if len(self.load_balancers) >= self.lb_limit:
                    raise CloudError(f"EnsureLoadBalancer {name}: quota of {self.lb_limit} load balancers reached")
                lb = self.load_balancers[name] = LoadBalancer(name, f"203.0.113.{self._next_ip}", [], [])
                self._next_ip += 1
            lb.backends, lb.ports = sorted(backends), list(ports)
            return lb

        return self._call("EnsureLoadBalancer", "load_balancer", action)

    def update_load_balancer(self, name: str, backends: list[str]):
        """LoadBalancer.UpdateLoadBalancer: new backends for an existing balancer."""

        def action():
            lb = self.load_balancers.get(name)
            if lb is None:
                raise CloudError(f"UpdateLoadBalancer {name}: not found")
            lb.backends = sorted(backends)
            return lb

        return self._call("UpdateLoadBalancer", "load_balancer_update", action)

    def delete_load_balancer(self, name: str):
        """LoadBalancer.EnsureLoadBalancerDeleted."""
        return self._call("EnsureLoadBalancerDeleted", "load_balancer", lambda: self.load_balancers.pop(name, None))
