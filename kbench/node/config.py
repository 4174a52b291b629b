"""KubeletConfiguration (kubelet.config.k8s.io/v1beta1): the kubelet settings kbench models, as upstream names them.

Defaults are v1.35's (``SetDefaults_KubeletConfiguration``, pkg/kubelet/apis/config/v1beta1/defaults.go) and the rules
upstream's validation's (``ValidateKubeletConfiguration``, pkg/kubelet/apis/config/validation/validation.go). A
manifest gets upstream's defaulting of the fields it leaves out (:meth:`KubeletConfiguration.from_manifest`): a zero
or absent duration or count is the default; ``nodeStatusReportFrequency`` follows an explicit
``nodeStatusUpdateFrequency``; ``serializeImagePulls`` is false when ``maxParallelImagePulls`` is 2 or more. A change
made field by field (sweeps, :meth:`~kbench.componentconfig.ComponentConfig.replace`) sets exactly what it names.

Every other top-level field of upstream's v1beta1 KubeletConfiguration (staging/src/k8s.io/kubelet/config/v1beta1/
types.go) is accepted and ignored (:attr:`KubeletConfiguration.accepted`), so a real kubelet config file loads.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Self

from kbench.componentconfig import DURATION, ComponentConfig, ConfigError, is_zero, option

DEFAULTS = "pkg/kubelet/apis/config/v1beta1/defaults.go (v1.35)"
VALIDATION = "pkg/kubelet/apis/config/validation/validation.go (v1.35)"
NODE_LEASE_RENEW_INTERVAL_FRACTION = 0.25
"""pkg/kubelet/kubelet.go nodeLeaseRenewIntervalFraction: the lease is renewed every 0.25 x its duration."""
CLIENT_GO_QPS, CLIENT_GO_BURST = 5.0, 10
"""client-go rest.Config's DefaultQPS / DefaultBurst, what a zero kubeAPIQPS / kubeAPIBurst falls back to
(rest.RESTClientFor)."""
UNLIMITED_QPS = 1e9
"""A client without a rate limit (rest.Config QPS -1), as a token bucket no request waits for."""
UNLIMITED = sys.maxsize
"""Image pulls at once when ``serializeImagePulls`` is false and ``maxParallelImagePulls`` is null (no limit)."""

UPSTREAM_FIELDS = """
    enableServer staticPodPath podLogsDir syncFrequency fileCheckFrequency httpCheckFrequency staticPodURL
    staticPodURLHeader address port readOnlyPort tlsCertFile tlsPrivateKeyFile tlsCipherSuites tlsCurvePreferences
    tlsMinVersion rotateCertificates serverTLSBootstrap authentication authorization registryPullQPS registryBurst
    imagePullCredentialsVerificationPolicy preloadedImagesVerificationAllowlist
    enableDebuggingHandlers enableContentionProfiling healthzPort healthzBindAddress oomScoreAdj clusterDomain
    clusterDNS streamingConnectionIdleTimeout imageMinimumGCAge imageMaximumGCAge imageGCHighThresholdPercent
    imageGCLowThresholdPercent volumeStatsAggPeriod kubeletCgroups systemCgroups cgroupRoot cgroupsPerQOS
    cgroupDriver cpuManagerPolicy singleProcessOOMKill cpuManagerPolicyOptions cpuManagerReconcilePeriod
    draManagerReconcilePeriod memoryManagerPolicy topologyManagerPolicy topologyManagerScope
    topologyManagerPolicyOptions qosReserved runtimeRequestTimeout hairpinMode podCIDR podPidsLimit resolvConf
    runOnce cpuCFSQuota cpuCFSQuotaPeriod nodeStatusMaxImages maxOpenFiles contentType evictionHard evictionSoft
    evictionSoftGracePeriod evictionPressureTransitionPeriod evictionMaxPodGracePeriod evictionMinimumReclaim
    mergeDefaultEvictionSettings enableControllerAttachDetach protectKernelDefaults makeIPTablesUtilChains
    iptablesMasqueradeBit iptablesDropBit featureGates failSwapOn memorySwap containerLogMaxSize
    containerLogMaxFiles containerLogMaxWorkers containerLogMonitorInterval
    configMapAndSecretChangeDetectionStrategy systemReserved kubeReserved reservedSystemCPUs
    showHiddenMetricsForVersion systemReservedCgroup kubeReservedCgroup enforceNodeAllocatable allowedUnsafeSysctls
    volumePluginDir providerID kernelMemcgNotification logging enableSystemLogHandler enableSystemLogQuery
    shutdownGracePeriod shutdownGracePeriodCriticalPods shutdownGracePeriodByPodPriority crashLoopBackOff
    reservedMemory enableProfilingHandler enableDebugFlagsHandler seccompDefault memoryThrottlingFactor
    memoryReservationPolicy registerWithTaints registerNode tracing localStorageCapacityIsolation
    containerRuntimeEndpoint imageServiceEndpoint failCgroupV1 userNamespaces podHousekeepingPeriod
"""
ACCEPTED = frozenset(UPSTREAM_FIELDS.split())
"""Upstream's other top-level v1beta1 fields (types.go): accepted, not modelled by kbench's kubelet."""

ZERO_IS_UNSET = ("nodeStatusUpdateFrequency", "nodeLeaseDurationSeconds", "maxPods", "kubeAPIBurst", "eventBurst")
"""Fields whose zero value upstream's defaulting replaces with the default (a non-pointer field left out is zero)."""


@dataclass(frozen=True)
class KubeletConfiguration(ComponentConfig):
    """The kubelet's configuration: API client limits, node heartbeats, pods capacity and image pulls.

    Every field is upstream's, with its v1.35 default. ``nodeStatusUpdateFrequency`` is how often the kubelet checks
    its node status (a status that has not changed is posted once ``nodeStatusReportFrequency`` has passed);
    ``nodeLeaseDurationSeconds`` is the Lease's duration, renewed every quarter of it.
    """

    component = "kubelet"
    kind = "KubeletConfiguration"
    api_version = "kubelet.config.k8s.io/v1beta1"
    accepted = ACCEPTED

    kube_api_qps: int = option(
        "kubeAPIQPS",
        50,
        int,
        "QPS of the kubelet's client to the apiserver (0: client-go's default, 5)",
        f"{DEFAULTS}: KubeAPIQPS 50; {VALIDATION}: must not be negative",
        flag="kube-api-qps",
        minimum=0,
    )
    kube_api_burst: int = option(
        "kubeAPIBurst",
        100,
        int,
        "burst of the kubelet's client to the apiserver (0: client-go's default, 10)",
        f"{DEFAULTS}: KubeAPIBurst 100; {VALIDATION}: must not be negative",
        flag="kube-api-burst",
        minimum=0,
    )
    event_record_qps: int = option(
        "eventRecordQPS",
        50,
        int,
        "event creations per second of the kubelet's event client (0: no limit)",
        f"{DEFAULTS}: EventRecordQPS 50; {VALIDATION}: must not be negative; cmd/kubelet/app/server.go: 0 is QPS -1 "
        "(no limit)",
        flag="event-qps",
        minimum=0,
    )
    event_burst: int = option(
        "eventBurst",
        100,
        int,
        "burst of event creations of the kubelet's event client",
        f"{DEFAULTS}: EventBurst 100; {VALIDATION}: must not be negative",
        flag="event-burst",
        minimum=0,
    )
    node_status_update_frequency: float = option(
        "nodeStatusUpdateFrequency",
        10.0,
        DURATION,
        "how often the kubelet computes its node status and checks whether to post it",
        f"{DEFAULTS}: NodeStatusUpdateFrequency 10s",
        flag="node-status-update-frequency",
        minimum=0,
    )
    node_status_report_frequency: float = option(
        "nodeStatusReportFrequency",
        300.0,
        DURATION,
        "how often the kubelet posts its node status when it has not changed",
        f"{DEFAULTS}: NodeStatusReportFrequency 5m0s (nodeStatusUpdateFrequency when only that is set)",
        minimum=0,
    )
    node_lease_duration_seconds: int = option(
        "nodeLeaseDurationSeconds",
        40,
        int,
        "duration of the node's Lease in kube-node-lease, renewed every quarter of it",
        f"{DEFAULTS}: NodeLeaseDurationSeconds 40; {VALIDATION}: must be greater than 0",
        minimum=1,
    )
    max_pods: int = option(
        "maxPods",
        110,
        int,
        "pods the node can run (its pods capacity)",
        f"{DEFAULTS}: MaxPods 110; {VALIDATION}: must not be a negative number",
        flag="max-pods",
        minimum=0,
    )
    pods_per_core: int = option(
        "podsPerCore",
        0,
        int,
        "pods per CPU core, capping maxPods (0: no cap)",
        f"{DEFAULTS}: PodsPerCore 0; {VALIDATION}: must not be a negative number",
        flag="pods-per-core",
        minimum=0,
    )
    serialize_image_pulls: bool = option(
        "serializeImagePulls",
        True,
        bool,
        "pull one image at a time",
        f"{DEFAULTS}: SerializeImagePulls true (false when maxParallelImagePulls >= 2 is set)",
        flag="serialize-image-pulls",
    )
    max_parallel_image_pulls: int | None = option(
        "maxParallelImagePulls",
        None,
        int,
        "image pulls at once when serializeImagePulls is false (null: no limit)",
        f"{DEFAULTS}: MaxParallelImagePulls nil; {VALIDATION}: must be a positive number, and at most 1 unless "
        "serializeImagePulls is false",
        flag="max-parallel-image-pulls",
        minimum=1,
        nullable=True,
    )

    def validate(self, where: str) -> None:
        """ValidateKubeletConfiguration's rule across fields: parallel pulls need serializeImagePulls false."""
        pulls = self.max_parallel_image_pulls
        if self.serialize_image_pulls and pulls is not None and pulls > 1:
            raise ConfigError(
                f"{where}.maxParallelImagePulls: {pulls} cannot be larger than 1 unless serializeImagePulls is "
                "false; expected serializeImagePulls: false, or maxParallelImagePulls 1 or null"
            )

    @classmethod
    def from_manifest(cls, doc: Mapping[str, Any], where: str | None = None) -> Self:
        """From a KubeletConfiguration manifest, with upstream's defaulting of the fields it leaves out or zeroes."""
        if isinstance(doc, Mapping):
            doc = defaulted(doc)
        return super().from_manifest(doc, where)

    @property
    def lease_renew_interval(self) -> float:
        """Seconds between the node Lease's renewals: ``nodeLeaseDurationSeconds`` x 0.25 (pkg/kubelet/kubelet.go)."""
        return self.node_lease_duration_seconds * NODE_LEASE_RENEW_INTERVAL_FRACTION

    @property
    def client_qps(self) -> float:
        """QPS of the kubelet's API client: kubeAPIQPS, or client-go's default when it is 0."""
        return float(self.kube_api_qps) if self.kube_api_qps > 0 else CLIENT_GO_QPS

    @property
    def client_burst(self) -> int:
        """Burst of the kubelet's API client: kubeAPIBurst, or client-go's default when it is 0."""
        return self.kube_api_burst if self.kube_api_burst > 0 else CLIENT_GO_BURST

    @property
    def event_qps(self) -> float:
        """QPS of the kubelet's event client: eventRecordQPS, unlimited when it is 0."""
        return float(self.event_record_qps) if self.event_record_qps > 0 else UNLIMITED_QPS

    @property
    def event_burst_size(self) -> int:
        """Burst of the kubelet's event client: eventBurst, or client-go's default when it is 0 (a ``--event-burst=0``
        flag is not defaulted; server.go copies it into the event client's rest.Config, whose RESTClientFor reads a
        zero Burst as DefaultBurst)."""
        return self.event_burst if self.event_burst > 0 else CLIENT_GO_BURST

    @property
    def parallel_image_pulls(self) -> int:
        """Image pulls at once: 1 when serialized, else maxParallelImagePulls (no limit when null)."""
        if self.serialize_image_pulls:
            return 1
        return UNLIMITED if self.max_parallel_image_pulls is None else self.max_parallel_image_pulls

    def pods_capacity(self, cores: int) -> int:
        """The node's pods capacity on ``cores`` CPU cores: maxPods, capped at podsPerCore x cores when that is set
        (pkg/kubelet/nodestatus MachineInfo)."""
        if self.pods_per_core > 0:
            return min(self.pods_per_core * cores, self.max_pods)
        return self.max_pods


def defaulted(doc: Mapping[str, Any]) -> dict[str, Any]:
    """``doc`` with SetDefaults_KubeletConfiguration's rules that depend on what the document sets: zero counts and
    durations are unset; an explicit nodeStatusUpdateFrequency is the nodeStatusReportFrequency's default; an explicit
    maxParallelImagePulls of 2 or more makes serializeImagePulls default to false."""
    out = dict(doc)
    for field in ZERO_IS_UNSET:
        if is_zero(out.get(field)):
            out.pop(field)
    if is_zero(out.get("nodeStatusReportFrequency")):
        out.pop("nodeStatusReportFrequency")
        if "nodeStatusUpdateFrequency" in out:
            out["nodeStatusReportFrequency"] = out["nodeStatusUpdateFrequency"]
    elif "nodeStatusReportFrequency" not in out and "nodeStatusUpdateFrequency" in out:
        out["nodeStatusReportFrequency"] = out["nodeStatusUpdateFrequency"]
    if out.get("serializeImagePulls") is None and "maxParallelImagePulls" in out:
        pulls = out["maxParallelImagePulls"]
        out["serializeImagePulls"] = not (isinstance(pulls, int) and not isinstance(pulls, bool) and pulls >= 2)
    return out
