"""kube-apiserver's flags that kbench models (v1.35), named by their camelCase flag names.

kube-apiserver has no component-config file: an operator sets it with flags, so does kbench
(``{"max-requests-inflight": 800}``, or ``kube-apiserver.maxRequestsInflight=800`` in a sweep). Defaults and rules are
upstream's: k8s.io/apiserver/pkg/server/options (``ServerRunOptions``: the in-flight limits and request timeout;
``FeatureOptions``: API Priority and Fairness; ``EtcdOptions``: the compaction interval, the watch cache and
DeleteCollection's workers), the generic server's ``server.NewConfig``, pkg/kubeapiserver/options (the NodePort range)
and the DefaultTolerationSeconds admission plugin's flags.

API Priority and Fairness itself is configured by API objects upstream (PriorityLevelConfigurations and FlowSchemas),
not by flags: kbench's flow control uses the bootstrap objects (:data:`kbench.apiserver.flowcontrol.LEVELS`,
apiserver/pkg/apis/flowcontrol/bootstrap/default.go); these flags set what they share, the server's concurrency
limit and how long a request may wait in a queue.
"""

from __future__ import annotations

from dataclasses import dataclass

from kbench.api.network import SERVICE_NODE_PORT_RANGE
from kbench.componentconfig import DURATION, ComponentConfig, ConfigError, option

SERVER_OPTIONS = "k8s.io/apiserver/pkg/server/options/server_run_options.go (v1.35)"
SERVER_CONFIG = "k8s.io/apiserver/pkg/server/config.go NewConfig (v1.35)"
MAX_REQUEST_WAIT_LIMIT = 60.0
"""The hard limit on a request's wait in an APF queue (getRequestWaitContext, apiserver/pkg/server/filters/
priority-and-fairness.go: one minute)."""
DEFAULT_WATCH_CACHE_SIZES = {"events": 0, "events.events.k8s.io": 0}
"""pkg/kubeapiserver/default_storage_factory_builder.go DefaultWatchCacheSizes: no watch cache for Events (v1.35),
applied under --watch-cache-sizes (pkg/kubeapiserver/options: the user's entries override these)."""


@dataclass(frozen=True)
class KubeAPIServerConfig(ComponentConfig):
    """The kube-apiserver flags kbench models: flow control (APF or max-in-flight), its limits, the request timeout
    that bounds a request's wait in an APF queue, and how often the apiserver compacts etcd."""

    component = "kube-apiserver"

    max_requests_inflight: int = option(
        "maxRequestsInflight",
        400,
        int,
        "non-mutating requests in flight at once (max-in-flight mode), or with the next flag the server's APF "
        "concurrency limit; 0 is no limit in max-in-flight mode",
        f"{SERVER_CONFIG}: MaxRequestsInFlight 400; {SERVER_OPTIONS} Validate: can not be negative",
        flag="max-requests-inflight",
        minimum=0,
    )
    max_mutating_requests_inflight: int = option(
        "maxMutatingRequestsInflight",
        200,
        int,
        "mutating requests in flight at once (max-in-flight mode), or with the previous flag the server's APF "
        "concurrency limit; 0 is no limit in max-in-flight mode",
        f"{SERVER_CONFIG}: MaxMutatingRequestsInFlight 200; {SERVER_OPTIONS} Validate: can not be negative",
        flag="max-mutating-requests-inflight",
        minimum=0,
    )
    enable_priority_and_fairness: bool = option(
        "enablePriorityAndFairness",
        True,
        bool,
        "API Priority and Fairness (else the max-in-flight filter)",
        "k8s.io/apiserver/pkg/server/options/feature.go NewFeatureOptions: EnablePriorityAndFairness true",
        flag="enable-priority-and-fairness",
    )
    request_timeout: float = option(
        "requestTimeout",
        60.0,
        DURATION,
        "a request's deadline; a request waits in an APF queue at most a quarter of it (and at most 1m)",
        f"{SERVER_CONFIG}: RequestTimeout 60s; {SERVER_OPTIONS} Validate: can not be negative; "
        "server/config.go passes RequestTimeout/4 to WithPriorityAndFairness",
        flag="request-timeout",
        minimum=0,
    )
    etcd_compaction_interval: float = option(
        "etcdCompactionInterval",
        300.0,
        DURATION,
        "how often the apiserver compacts etcd to the revision it saw one interval earlier (0: never)",
        "k8s.io/apiserver/pkg/storage/storagebackend/config.go DefaultCompactInterval 5m; "
        "apiserver/pkg/storage/etcd3/compact.go",
        flag="etcd-compaction-interval",
        minimum=0,
    )

    delete_collection_workers: int = option(
        "deleteCollectionWorkers",
        1,
        int,
        "workers a DeleteCollection request deletes its items with, each taking the next item (they speed up "
        "namespace cleanup); below 1 is 1",
        "k8s.io/apiserver/pkg/server/options/etcd.go NewEtcdOptions: DeleteCollectionWorkers 1 (no validation); "
        "apiserver/pkg/registry/generic/registry/store.go DeleteCollection: workersNumber < 1 is 1",
        flag="delete-collection-workers",
    )
    watch_cache: bool = option(
        "watchCache",
        True,
        bool,
        "serve reads and watches from the watch cache (else every get, list and watch goes to etcd)",
        "k8s.io/apiserver/pkg/server/options/etcd.go NewEtcdOptions: EnableWatchCache true",
        flag="watch-cache",
    )
    watch_cache_sizes: tuple = option(
        "watchCacheSizes",
        [],
        list,
        "resource[.group]#size settings; since caches size themselves the only meaningful size is 0, which "
        "disables the resource's watch cache (any other size keeps it)",
        "k8s.io/apiserver/pkg/server/options/etcd.go --watch-cache-sizes (v1.35 help text) and ParseWatchCacheSizes",
        flag="watch-cache-sizes",
    )
    etcd_servers_overrides: tuple = option(
        "etcdServersOverrides",
        [],
        list,
        "per-resource etcd servers, group/resource#servers (servers semicolon separated), e.g. /events#https://"
        "etcd-events:4002: each distinct server list is an etcd cluster of its own (the profile's etcd), as the "
        "scale tests' separate etcd for Events",
        "k8s.io/apiserver/pkg/server/options/etcd.go --etcd-servers-overrides and its Validate; "
        "pkg/kubeapiserver/default_storage_factory_builder.go New: SetEtcdLocation per group/resource",
        flag="etcd-servers-overrides",
    )
    event_ttl: float = option(
        "eventTTL",
        3600.0,
        DURATION,
        "how long Events are kept: each Event is stored on an etcd lease of this TTL (0: no lease, kept forever)",
        "cmd/kube-apiserver/app/options/options.go NewServerRunOptions: EventTTL 1 * time.Hour; "
        "pkg/registry/core/event/storage/storage.go TTLFunc",
        flag="event-ttl",
        minimum=0,
    )
    default_not_ready_toleration_seconds: int = option(
        "defaultNotReadyTolerationSeconds",
        300,
        int,
        "tolerationSeconds of the not-ready:NoExecute toleration admission gives every pod without one",
        "plugin/pkg/admission/defaulttolerationseconds/admission.go: --default-not-ready-toleration-seconds 300",
        flag="default-not-ready-toleration-seconds",
    )
    default_unreachable_toleration_seconds: int = option(
        "defaultUnreachableTolerationSeconds",
        300,
        int,
        "tolerationSeconds of the unreachable:NoExecute toleration admission gives every pod without one",
        "plugin/pkg/admission/defaulttolerationseconds/admission.go: --default-unreachable-toleration-seconds 300",
        flag="default-unreachable-toleration-seconds",
    )
    service_node_port_range: str = option(
        "serviceNodePortRange",
        "{}-{}".format(*SERVICE_NODE_PORT_RANGE),
        str,
        "the port range NodePorts are allocated from (min-max, or base+offset)",
        "pkg/kubeapiserver/options/options.go DefaultServiceNodePortRange 30000-32767 (utilnet.ParsePortRange syntax)",
        flag="service-node-port-range",
    )

    def validate(self, where: str) -> None:
        """The node port range parses (ParsePortRange); with APF the two in-flight limits must add up to something
        positive (BuildPriorityAndFairness / FeatureOptions.ApplyTo: they are its server concurrency limit)."""
        parse_port_range(self.service_node_port_range, f"{where}.serviceNodePortRange")
        parse_watch_cache_sizes(self.watch_cache_sizes, f"{where}.watchCacheSizes")
        parse_etcd_servers_overrides(self.etcd_servers_overrides, f"{where}.etcdServersOverrides")
        if self.enable_priority_and_fairness and self.server_concurrency_limit <= 0:
            raise ConfigError(
                f"{where}.maxRequestsInflight: {self.max_requests_inflight} and maxMutatingRequestsInflight "
                f"{self.max_mutating_requests_inflight} must add up to something positive when "
                "enablePriorityAndFairness is true"
            )

    @property
    def server_concurrency_limit(self) -> int:
        """APF's server concurrency limit: max-requests-inflight + max-mutating-requests-inflight."""
        return self.max_requests_inflight + self.max_mutating_requests_inflight

    @property
    def request_wait_limit(self) -> float:
        """Seconds a request may wait in an APF queue: requestTimeout / 4, at most one minute."""
        return min(self.request_timeout / 4, MAX_REQUEST_WAIT_LIMIT)

    def cached(self, resource: str) -> bool:
        """Whether ``resource`` (``pods``, ``deployments.apps``: resource[.group]) is served from a watch cache:
        --watch-cache-sizes over kube-apiserver's defaults, which turn the cache off for Events."""
        sizes = {**DEFAULT_WATCH_CACHE_SIZES, **parse_watch_cache_sizes(self.watch_cache_sizes, "watchCacheSizes")}
        return self.watch_cache and sizes.get(resource, 1) != 0

    def etcd_servers(self, resource: str) -> str | None:
        """The etcd servers --etcd-servers-overrides gives ``resource`` (``events``, ``deployments.apps``), or None
        for the main etcd."""
        return parse_etcd_servers_overrides(self.etcd_servers_overrides, "etcdServersOverrides").get(resource)

    @property
    def node_port_range(self) -> tuple[int, int]:
        """``--service-node-port-range`` as (first, last) port, both included."""
        return parse_port_range(self.service_node_port_range, "serviceNodePortRange")


def parse_port_range(text: str, where: str) -> tuple[int, int]:
    """k8s.io/apimachinery/pkg/util/net ParsePortRange: ``min-max``, ``base+offset`` or one port, within 0-65535."""
    body = text.strip()
    try:
        if "-" in body:
            low, high = (int(part) for part in body.split("-", 1))
        elif "+" in body:
            base, offset = (int(part) for part in body.split("+", 1))
            low, high = base, base + offset
        else:
            low = high = int(body)
    except ValueError:
        low, high = -1, -1
    if not 0 <= low <= high <= 65535:
        raise ConfigError(
            f"{where}: {text!r} is not a port range; expected min-max or base+offset within 0-65535 (e.g. 30000-32767)"
        )
    return low, high


def parse_watch_cache_sizes(entries: tuple, where: str) -> dict[str, int]:
    """ParseWatchCacheSizes (k8s.io/apiserver/pkg/server/options/etcd.go): ``resource[.group]#size`` entries, the
    size a non-negative integer; errors name the entry."""
    sizes = {}
    for entry in entries:
        resource, mark, size = entry.partition("#")
        if not mark or "#" in size or not resource:
            raise ConfigError(f"{where}: invalid value of watch cache size: {entry!r}; expected resource[.group]#size")
        if not size.strip().lstrip("-").isdigit():
            raise ConfigError(f"{where}: invalid size of watch cache size: {entry!r}; expected an integer")
        if int(size) < 0:
            raise ConfigError(f"{where}: watch cache size cannot be negative: {entry!r}")
        sizes[resource.strip()] = int(size)
    return sizes


def parse_etcd_servers_overrides(entries: tuple, where: str) -> dict[str, str]:
    """--etcd-servers-overrides (k8s.io/apiserver/pkg/server/options/etcd.go Validate): ``group/resource#servers``
    entries (core resources have an empty group: ``/events#...``) -> ``{resource[.group]: servers}``."""
    out = {}
    for entry in entries:
        tokens = str(entry).split("#")
        parts = tokens[0].split("/")
        if len(tokens) != 2 or len(parts) != 2 or not parts[1] or not tokens[1]:
            raise ConfigError(
                f"{where}: {entry!r} is invalid; must be of format group/resource#servers, where servers are URLs, "
                "semicolon separated (e.g. /events#https://etcd-events:4002)"
            )
        group, resource = parts
        out[f"{resource}.{group}" if group else resource] = tokens[1]
    return out
