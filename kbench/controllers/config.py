"""KubeControllerManagerConfiguration: kube-controller-manager's flags kbench models, v1.35 defaults.

kube-controller-manager is configured by flags (cmd/kube-controller-manager/app/options); each option here is
named by its flag's camelCase name (``kubeAPIQPS`` for ``--kube-api-qps``) and carries the flag. Defaults are
upstream's: ``k8s.io/kube-controller-manager/config/v1alpha1`` defaulting, applied by
``pkg/controller/*/config/v1alpha1/defaults.go`` and ``cmd/kube-controller-manager/app/options/*.go``.

``--controllers`` takes upstream's controller names (cmd/kube-controller-manager/names) and their aliases, ``*``
for every controller on by default, ``-name`` to turn one off; kbench runs the ones it models
(:data:`kbench.controllers.CONTROLLERS`) and accepts the others' names (``--controllers=*,bootstrapsigner``
is a valid command line) without running anything for them.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import ClassVar

from kbench.componentconfig import DURATION, ComponentConfig, ConfigError, option

OPTIONS = "cmd/kube-controller-manager/app/options"
NAMES = "cmd/kube-controller-manager/names/controller_names.go"
KNOWN_CONTROLLERS: dict[str, tuple[str, ...]] = {
    "serviceaccount-token-controller": ("serviceaccount-token",),
    "endpoints-controller": ("endpoint",),
    "endpointslice-controller": ("endpointslice",),
    "endpointslice-mirroring-controller": ("endpointslicemirroring",),
    "replicationcontroller-controller": ("replicationcontroller",),
    "pod-garbage-collector-controller": ("podgc",),
    "resourcequota-controller": ("resourcequota",),
    "namespace-controller": ("namespace",),
    "serviceaccount-controller": ("serviceaccount",),
    "garbage-collector-controller": ("garbagecollector",),
    "daemonset-controller": ("daemonset",),
    "job-controller": ("job",),
    "deployment-controller": ("deployment",),
    "replicaset-controller": ("replicaset",),
    "horizontal-pod-autoscaler-controller": ("horizontalpodautoscaling",),
    "disruption-controller": ("disruption",),
    "statefulset-controller": ("statefulset",),
    "cronjob-controller": ("cronjob",),
    "certificatesigningrequest-signing-controller": ("csrsigning",),
    "certificatesigningrequest-approving-controller": ("csrapproving",),
    "certificatesigningrequest-cleaner-controller": ("csrcleaner",),
    "ttl-controller": ("ttl",),
    "bootstrap-signer-controller": ("bootstrapsigner",),
    "token-cleaner-controller": ("tokencleaner",),
    "node-ipam-controller": ("nodeipam",),
    "node-lifecycle-controller": ("nodelifecycle",),
    "taint-eviction-controller": (),
    "service-lb-controller": ("service",),
    "node-route-controller": ("route",),
    "cloud-node-lifecycle-controller": ("cloud-node-lifecycle",),
    "persistentvolume-binder-controller": ("persistentvolume-binder",),
    "persistentvolume-attach-detach-controller": ("attachdetach",),
    "persistentvolume-expander-controller": ("persistentvolume-expander",),
    "clusterrole-aggregation-controller": ("clusterrole-aggregation",),
    "persistentvolumeclaim-protection-controller": ("pvc-protection",),
    "persistentvolume-protection-controller": ("pv-protection",),
    "ttl-after-finished-controller": ("ttl-after-finished",),
    "root-ca-certificate-publisher-controller": ("root-ca-cert-publisher",),
    "ephemeral-volume-controller": ("ephemeral-volume",),
    "storageversion-garbage-collector-controller": ("storage-version-gc",),
    "resourceclaim-controller": ("resource-claim-controller",),
    "legacy-serviceaccount-token-cleaner-controller": ("legacy-service-account-token-cleaner",),
    "validatingadmissionpolicy-status-controller": (),
    "service-cidr-controller": (),
    "storage-version-migrator-controller": (),
    "selinux-warning-controller": (),
    "volumeattributesclass-protection-controller": (),
    "device-taint-eviction-controller": (),
    "kube-apiserver-serving-clustertrustbundle-publisher-controller": (),
    "podcertificaterequest-cleaner-controller": (),
}
"""Every kube-controller-manager controller name (names/controller_names.go) -> its aliases (each descriptor's
``aliases`` in cmd/kube-controller-manager/app/*.go: the pre-1.30 short names)."""
DISABLED_BY_DEFAULT = frozenset(
    {
        "bootstrap-signer-controller",
        "token-cleaner-controller",
        "selinux-warning-controller",
        "kube-apiserver-serving-clustertrustbundle-publisher-controller",
    }
)
"""Controllers ``*`` leaves off (ControllersDisabledByDefault, cmd/kube-controller-manager/app)."""


def canonical_names(known: dict[str, tuple[str, ...]]) -> dict[str, str]:
    """Name or alias -> canonical controller name."""
    names = {name: name for name in known}
    names.update({alias: name for name, aliases in known.items() for alias in aliases})
    return names


def check_controllers(values: tuple[str, ...], known: dict[str, tuple[str, ...]], where: str) -> None:
    """GenericControllerManagerConfigurationOptions.Validate: every entry is ``*``, a name or alias, or ``-`` one."""
    names = canonical_names(known)
    for entry in values:
        if entry != "*" and entry.removeprefix("-") not in names:
            raise ConfigError(
                f"{where}.controllers: {entry!r} is not in the list of known controllers; expected *, a controller "
                f"name or alias, or -name to disable it: {', '.join(sorted(names))}"
            )


def controller_enabled(name: str, values: tuple[str, ...], known: dict[str, tuple[str, ...]], off: frozenset) -> bool:
    """IsControllerEnabled (k8s.io/controller-manager/app/helper.go) with aliases read as their names: the first
    explicit ``name`` or ``-name`` decides; otherwise ``*`` turns on what is not disabled by default."""
    names = canonical_names(known)
    star = False
    for entry in values:
        if entry == "*":
            star = True
        elif names.get(entry) == name:
            return True
        elif entry.startswith("-") and names.get(entry[1:]) == name:
            return False
    return star and name not in off


def check_leader_election(lease: float, renew: float, retry: float, where: str) -> None:
    """component-base's leader election validation: lease duration > renew deadline > retry period x 1.2."""
    if not lease > renew:
        raise ConfigError(f"{where}.leaderElectLeaseDuration: {lease}s must be greater than leaderElectRenewDeadline")
    if not renew > retry * 1.2:
        raise ConfigError(
            f"{where}.leaderElectRenewDeadline: {renew}s must be greater than leaderElectRetryPeriod x 1.2 "
            "(the jitter factor)"
        )


def check_cluster_cidr(cluster_cidr: str, where: str) -> ipaddress.IPv4Network:
    """``--cluster-cidr`` parsed: a valid IPv4 CIDR (required where pod CIDRs are allocated or routed)."""
    try:
        return ipaddress.IPv4Network(cluster_cidr)
    except ValueError:
        raise ConfigError(
            f"{where}.clusterCIDR: {cluster_cidr!r} is not an IPv4 CIDR; --allocate-node-cidrs needs one, "
            "e.g. 10.0.0.0/8"
        ) from None


def check_node_cidrs(cluster_cidr: str, mask: int, where: str) -> None:
    """The node IPAM controller's checks: a valid ``--cluster-cidr``, and ``--node-cidr-mask-size`` at least its
    prefix and at most 16 bits more (pkg/controller/nodeipam/ipam/cidrset: ErrCIDRSetSubNetTooBig)."""
    network = check_cluster_cidr(cluster_cidr, where)
    if not network.prefixlen <= mask <= min(32, network.prefixlen + 16):
        raise ConfigError(
            f"{where}.nodeCIDRMaskSize: {mask} does not fit clusterCIDR {cluster_cidr}; expected an integer in "
            f"[{network.prefixlen}, {min(32, network.prefixlen + 16)}]"
        )


@dataclass(frozen=True)
class GenericControllerManagerConfiguration(ComponentConfig):
    """The flags every controller manager has (k8s.io/controller-manager/options/generic.go and component-base's
    leader election): its clients' rate limit, ``--controllers`` and leader election. ``known_controllers`` (name ->
    aliases) and ``disabled_by_default`` are the manager's own."""

    known_controllers: ClassVar[dict[str, tuple[str, ...]]] = {}
    disabled_by_default: ClassVar[frozenset[str]] = frozenset()

    kube_api_qps: float = option(
        "kubeAPIQPS",
        20.0,
        float,
        "QPS of each controller's client (each controller has its own token bucket)",
        "k8s.io/kube-controller-manager/config/v1alpha1 and k8s.io/cloud-provider/config/v1alpha1 defaults: "
        "Generic.ClientConnection.QPS 20",
        flag="kube-api-qps",
        minimum=0,
    )
    kube_api_burst: int = option(
        "kubeAPIBurst",
        30,
        int,
        "burst of each controller's client",
        "k8s.io/kube-controller-manager/config/v1alpha1 and k8s.io/cloud-provider/config/v1alpha1 defaults: "
        "Generic.ClientConnection.Burst 30",
        flag="kube-api-burst",
        minimum=1,
    )
    controllers: tuple = option(
        "controllers",
        ["*"],
        list,
        "controllers to run: * for those on by default, name (or alias) to enable, -name to disable",
        f"{NAMES}; k8s.io/cloud-provider/names; k8s.io/controller-manager/options/generic.go (default *)",
        flag="controllers",
    )
    leader_elect: bool = option(
        "leaderElect",
        True,
        bool,
        "run the controllers only while holding the leader-election lease",
        "k8s.io/component-base/config/options/leaderelectionconfig.go (--leader-elect, default true)",
        flag="leader-elect",
    )
    leader_elect_lease_duration: float = option(
        "leaderElectLeaseDuration",
        15.0,
        DURATION,
        "how long a candidate waits after the last renewal it saw before taking the lease",
        "k8s.io/component-base/config/v1alpha1/defaults.go RecommendedDefaultLeaderElectionConfiguration",
        flag="leader-elect-lease-duration",
        minimum=0.001,
    )
    leader_elect_renew_deadline: float = option(
        "leaderElectRenewDeadline",
        10.0,
        DURATION,
        "how long the leader keeps trying to renew before it gives up leading",
        "k8s.io/component-base/config/v1alpha1/defaults.go RecommendedDefaultLeaderElectionConfiguration",
        flag="leader-elect-renew-deadline",
        minimum=0.001,
    )
    leader_elect_retry_period: float = option(
        "leaderElectRetryPeriod",
        2.0,
        DURATION,
        "how often candidates read and the leader renews the lease",
        "k8s.io/component-base/config/v1alpha1/defaults.go RecommendedDefaultLeaderElectionConfiguration",
        flag="leader-elect-retry-period",
        minimum=0.001,
    )
    leader_elect_resource_name: str = option(
        "leaderElectResourceName",
        "kube-controller-manager",
        str,
        "name of the leader-election Lease",
        f"{OPTIONS}/options.go (LeaderElection.ResourceName)",
        flag="leader-elect-resource-name",
    )
    leader_elect_resource_namespace: str = option(
        "leaderElectResourceNamespace",
        "kube-system",
        str,
        "namespace of the leader-election Lease",
        f"{OPTIONS}/options.go; k8s.io/cloud-provider/options/options.go (LeaderElection.ResourceNamespace)",
        flag="leader-elect-resource-namespace",
    )

    def validate(self, where: str) -> None:
        """GenericControllerManagerConfigurationOptions.Validate and leader election's: known controller names,
        a positive QPS, leader-election timing."""
        check_controllers(self.controllers, self.known_controllers, where)
        if self.kube_api_qps <= 0:
            raise ConfigError(f"{where}.kubeAPIQPS: {self.kube_api_qps} must be greater than 0")
        if self.leader_elect:
            check_leader_election(
                self.leader_elect_lease_duration,
                self.leader_elect_renew_deadline,
                self.leader_elect_retry_period,
                where,
            )

    def enabled(self, name: str) -> bool:
        """Whether ``--controllers`` runs controller ``name`` (its canonical name)."""
        return controller_enabled(name, self.controllers, self.known_controllers, self.disabled_by_default)


@dataclass(frozen=True)
class KubeCloudSharedConfiguration(GenericControllerManagerConfiguration):
    """The flags kube-controller-manager and cloud-controller-manager share (k8s.io/cloud-provider/options/
    kubecloudshared.go, KubeCloudSharedConfiguration) that kbench models: the node monitor period and the pod
    CIDRs."""

    node_monitor_period: float = option(
        "nodeMonitorPeriod",
        5.0,
        DURATION,
        "period of the node lifecycle controllers' passes (kube-controller-manager's and the cloud's)",
        "k8s.io/cloud-provider/config/v1alpha1/defaults.go SetDefaults_KubeCloudSharedConfiguration (5s)",
        flag="node-monitor-period",
        minimum=0.001,
    )
    allocate_node_cidrs: bool = option(
        "allocateNodeCIDRs",
        False,
        bool,
        "allocate each Node a pod CIDR out of clusterCIDR (node IPAM and cloud routes run only then)",
        "k8s.io/cloud-provider/options/kubecloudshared.go (--allocate-node-cidrs, default false); "
        "cmd/kube-controller-manager/app/core.go startNodeIpamController",
        flag="allocate-node-cidrs",
    )
    cluster_cidr: str = option(
        "clusterCIDR",
        "",
        str,
        "CIDR range of the cluster's pods (required with allocateNodeCIDRs)",
        "k8s.io/cloud-provider/options/kubecloudshared.go (--cluster-cidr, default empty)",
        flag="cluster-cidr",
    )


@dataclass(frozen=True)
class KubeControllerManagerConfiguration(KubeCloudSharedConfiguration):
    """kube-controller-manager's flags that kbench models (``--controllers`` names are validated)."""

    component = "kube-controller-manager"
    known_controllers = KNOWN_CONTROLLERS
    disabled_by_default = DISABLED_BY_DEFAULT

    node_monitor_grace_period: float = option(
        "nodeMonitorGracePeriod",
        50.0,
        DURATION,
        "how long a running node may be silent before it is marked Unknown",
        "pkg/controller/nodelifecycle/config/v1alpha1/defaults.go (50s since v1.32)",
        flag="node-monitor-grace-period",
        minimum=0,
    )
    node_startup_grace_period: float = option(
        "nodeStartupGracePeriod",
        60.0,
        DURATION,
        "how long a starting node (no Ready condition yet) may be silent",
        "pkg/controller/nodelifecycle/config/v1alpha1/defaults.go (60s)",
        flag="node-startup-grace-period",
        minimum=0,
    )
    node_eviction_rate: float = option(
        "nodeEvictionRate",
        0.1,
        float,
        "nodes per second tainted NoExecute in a healthy zone",
        f"{OPTIONS}/nodelifecyclecontroller.go (0.1)",
        flag="node-eviction-rate",
        minimum=0,
    )
    secondary_node_eviction_rate: float = option(
        "secondaryNodeEvictionRate",
        0.01,
        float,
        "nodes per second tainted NoExecute in an unhealthy zone of a large cluster",
        f"{OPTIONS}/nodelifecyclecontroller.go (0.01)",
        flag="secondary-node-eviction-rate",
        minimum=0,
    )
    unhealthy_zone_threshold: float = option(
        "unhealthyZoneThreshold",
        0.55,
        float,
        "fraction of a zone's nodes not ready (at least 3) that makes it unhealthy",
        f"{OPTIONS}/nodelifecyclecontroller.go (0.55)",
        flag="unhealthy-zone-threshold",
        minimum=0,
        maximum=1,
    )
    large_cluster_size_threshold: int = option(
        "largeClusterSizeThreshold",
        50,
        int,
        "zone size above which an unhealthy zone is tainted at the secondary rate (else not at all)",
        f"{OPTIONS}/nodelifecyclecontroller.go (50)",
        flag="large-cluster-size-threshold",
        minimum=0,
    )
    concurrent_replicaset_syncs: int = option(
        "concurrentReplicasetSyncs",
        5,
        int,
        "ReplicaSet controller workers",
        "pkg/controller/replicaset/config/v1alpha1/defaults.go ConcurrentRSSyncs 5",
        flag="concurrent-replicaset-syncs",
        minimum=1,
    )
    concurrent_deployment_syncs: int = option(
        "concurrentDeploymentSyncs",
        5,
        int,
        "Deployment controller workers",
        "pkg/controller/deployment/config/v1alpha1/defaults.go ConcurrentDeploymentSyncs 5",
        flag="concurrent-deployment-syncs",
        minimum=1,
    )
    concurrent_job_syncs: int = option(
        "concurrentJobSyncs",
        5,
        int,
        "Job controller workers",
        "pkg/controller/job/config/v1alpha1/defaults.go ConcurrentJobSyncs 5",
        flag="concurrent-job-syncs",
        minimum=1,
    )
    concurrent_ttl_after_finished_syncs: int = option(
        "concurrentTTLAfterFinishedSyncs",
        5,
        int,
        "TTL-after-finished controller workers",
        "pkg/controller/ttlafterfinished/config/v1alpha1/defaults.go ConcurrentTTLSyncs 5",
        flag="concurrent-ttl-after-finished-syncs",
        minimum=1,
    )
    concurrent_service_endpoint_syncs: int = option(
        "concurrentServiceEndpointSyncs",
        5,
        int,
        "EndpointSlice controller workers",
        "pkg/controller/endpointslice/config/v1alpha1/defaults.go ConcurrentServiceEndpointSyncs 5",
        flag="concurrent-service-endpoint-syncs",
        minimum=1,
    )
    max_endpoints_per_slice: int = option(
        "maxEndpointsPerSlice",
        100,
        int,
        "endpoints in one EndpointSlice at most",
        "pkg/controller/endpointslice/config/v1alpha1/defaults.go (100); "
        f"{OPTIONS}/endpointslicecontroller.go (1..1000)",
        flag="max-endpoints-per-slice",
        minimum=1,
        maximum=1000,
    )
    endpointslice_updates_batch_period: float = option(
        "endpointsliceUpdatesBatchPeriod",
        0.0,
        DURATION,
        "how long a pod change waits before its Services are synced (changes within it are batched)",
        f"{OPTIONS}/endpointslicecontroller.go (--endpointslice-updates-batch-period, default 0: no batching)",
        flag="endpointslice-updates-batch-period",
        minimum=0,
    )
    enable_garbage_collector: bool = option(
        "enableGarbageCollector",
        True,
        bool,
        "run the garbage collector",
        "pkg/controller/garbagecollector/config/v1alpha1/defaults.go (true)",
        flag="enable-garbage-collector",
    )
    concurrent_gc_syncs: int = option(
        "concurrentGCSyncs",
        20,
        int,
        "garbage collector workers",
        "pkg/controller/garbagecollector/config/v1alpha1/defaults.go ConcurrentGCSyncs 20",
        flag="concurrent-gc-syncs",
        minimum=1,
    )
    concurrent_namespace_syncs: int = option(
        "concurrentNamespaceSyncs",
        10,
        int,
        "namespace controller workers",
        "pkg/controller/namespace/config/v1alpha1/defaults.go ConcurrentNamespaceSyncs 10",
        flag="concurrent-namespace-syncs",
        minimum=1,
    )
    node_cidr_mask_size: int = option(
        "nodeCIDRMaskSize",
        24,
        int,
        "prefix length of each Node's pod CIDR",
        f"{OPTIONS}/nodeipamcontroller.go; cmd/kube-controller-manager/app/core.go defaultNodeMaskCIDRIPv4 24",
        flag="node-cidr-mask-size",
        minimum=1,
        maximum=32,
    )

    def validate(self, where: str) -> None:
        """Upstream's cross-field rules: the generic ones, and node CIDRs for the node IPAM controller."""
        super().validate(where)
        if self.allocate_node_cidrs and self.enabled("node-ipam-controller"):
            check_node_cidrs(self.cluster_cidr, self.node_cidr_mask_size, where)


KUBEADM_FLAGS = {"allocate-node-cidrs": "true", "cluster-cidr": "10.0.0.0/8"}
"""The node-CIDR flags kubeadm sets on kube-controller-manager when ``networking.podSubnet`` is set
(cmd/kubeadm/app/phases/controlplane/manifests.go getControllerManagerCommand), with kbench's pod subnet
10.0.0.0/8: how kbench's clusters have always allocated node CIDRs."""
