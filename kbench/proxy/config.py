"""KubeProxyConfiguration (kubeproxy.config.k8s.io/v1alpha1): the kube-proxy settings kbench models, upstream-named.

v1.35's v1alpha1 format has no top-level ``syncPeriod`` / ``minSyncPeriod``: each mode has its own section
(``iptables``, ``ipvs``, ``nftables``) with its own periods, and ``masqueradeAll`` lives in ``iptables`` and
``nftables`` (staging/src/k8s.io/kube-proxy/config/v1alpha1/types.go). The conversion to upstream's internal
configuration (pkg/proxy/apis/config/v1alpha1/conversion.go) takes the periods of the section of the running
mode, and ``masqueradeAll`` from ``nftables`` in nftables mode, else from ``iptables`` (IPVS mode too):
:attr:`KubeProxyConfiguration.sync_period`, :attr:`~KubeProxyConfiguration.min_sync_period` and
:attr:`~KubeProxyConfiguration.masquerade_all` do the same.

Defaults are v1.35's ``SetDefaults_KubeProxyConfiguration`` (pkg/proxy/apis/config/v1alpha1/defaults.go): every
mode's ``syncPeriod`` 30s, ``minSyncPeriod`` 1s for iptables and nftables and 0s for IPVS (not defaulted),
``masqueradeBit`` 14, ``localhostNodePorts`` true, client QPS 5 / burst 10. A manifest gets that defaulting of the
zero values it holds (:meth:`KubeProxyConfiguration.from_manifest`: a ``minSyncPeriod: 0s`` in an iptables section
is 1s, as upstream); a change made field by field (flags, sweeps) sets exactly what it names. Rules are
v1.35's ``Validate`` (pkg/proxy/apis/config/validation/validation.go). Every other upstream field is accepted and
ignored (:data:`ACCEPTED`), so a real kube-proxy config file loads.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Self

from kbench.api.network import parse_cidr
from kbench.client.client import DEFAULT_BURST
from kbench.componentconfig import DURATION, ComponentConfig, ConfigError, is_zero, option, parse_duration

TYPES = "staging/src/k8s.io/kube-proxy/config/v1alpha1/types.go (v1.35)"
DEFAULTS = "pkg/proxy/apis/config/v1alpha1/defaults.go (v1.35)"
VALIDATION = "pkg/proxy/apis/config/validation/validation.go (v1.35)"
MODES = ("iptables", "ipvs", "nftables")
"""The Linux proxy modes (``ProxyMode``); a blank mode is the platform's default."""
DEFAULT_MODE = "iptables"
"""What a blank ``mode`` means on Linux (cmd/kube-proxy/app/server_linux.go platformApplyDefaults)."""
IPVS_SCHEDULERS = ("rr", "wrr", "lc", "sh")
"""The IPVS schedulers kbench implements (ipvs.py); upstream passes any name on to the kernel."""
DEFAULT_IPVS_SCHEDULER = "rr"
"""What a blank ``ipvs.scheduler`` means (pkg/proxy/ipvs/proxier.go NewProxier: defaultScheduler)."""
NODE_PORT_PRIMARY = "primary"
"""``nodePortAddresses`` keyword: the node's primary IP of each family (NodePortAddressesPrimary)."""

UPSTREAM_FIELDS = """
    featureGates logging hostnameOverride bindAddress healthzBindAddress metricsBindAddress bindAddressHardFail
    enableProfiling showHiddenMetricsForVersion winkernel detectLocal oomScoreAdj configSyncPeriod portRange
    windowsRunAsService
    clientConnection.kubeconfig clientConnection.acceptContentTypes clientConnection.contentType
    iptables.snatNodeInternalIP
    ipvs.excludeCIDRs ipvs.strictARP ipvs.tcpTimeout ipvs.tcpFinTimeout ipvs.udpTimeout
    conntrack.maxPerCore conntrack.min conntrack.tcpEstablishedTimeout conntrack.tcpCloseWaitTimeout
    conntrack.udpTimeout conntrack.udpStreamTimeout
"""
ACCEPTED = frozenset(UPSTREAM_FIELDS.split())
"""Upstream's other v1alpha1 fields (types.go): accepted, not modelled by kbench's kube-proxy."""

ZERO_IS_UNSET = (
    "iptables.syncPeriod",
    "iptables.minSyncPeriod",
    "ipvs.syncPeriod",
    "nftables.syncPeriod",
    "nftables.minSyncPeriod",
    "clientConnection.qps",
    "clientConnection.burst",
)
"""Fields whose zero value SetDefaults_KubeProxyConfiguration replaces with the default (it tests ``== 0``)."""


def _period(mode: str, go_name: str, which: str, default: str, flag: bool = True) -> Any:
    """The ``<mode>.syncPeriod`` / ``<mode>.minSyncPeriod`` option (``go_name``: the section's Go field name)."""
    if which == "syncPeriod":
        text = f"{mode} mode: the longest time between syncs of the rules (the periodic resync)"
        rule = f"{VALIDATION}: must be greater than 0"
        flag_name = f"{mode}-sync-period"
    else:
        text = f"{mode} mode: the shortest time between syncs (0s: every change syncs at once)"
        rule = f"{VALIDATION}: must be greater than or equal to 0, and at most {mode}.syncPeriod"
        flag_name = f"{mode}-min-sync-period"
    field = go_name + "." + which[0].upper() + which[1:]
    return option(
        f"{mode}.{which}",
        parse_duration(default, "default"),
        DURATION,
        text,
        f"{DEFAULTS}: {field} {default}" + (" (not defaulted)" if default == "0s" else "") + f"; {rule}",
        flag=flag_name if flag else None,
        minimum=0.0,
    )


@dataclass(frozen=True)
class KubeProxyConfiguration(ComponentConfig):
    """kube-proxy's configuration: its mode and per-mode sync periods and masquerading, local traffic detection,
    NodePort addresses and its API client's limits.

    Every field is upstream's v1alpha1 field, with its v1.35 default. Use :attr:`proxy_mode`, :attr:`sync_period`,
    :attr:`min_sync_period`, :attr:`masquerade_all` and :attr:`masquerade_mark` for the values the running mode
    uses, as upstream's conversion to its internal configuration picks them.
    """

    component = "kube-proxy"
    kind = "KubeProxyConfiguration"
    api_version = "kubeproxy.config.k8s.io/v1alpha1"
    accepted = ACCEPTED

    mode: str = option(
        "mode",
        "",
        str,
        "proxy mode: iptables, ipvs or nftables (blank: iptables, the Linux default)",
        f"{TYPES}: ProxyMode; {VALIDATION}: validateProxyModeLinux",
        flag="proxy-mode",
        choices=("", *MODES),
    )
    qps: float = option(
        "clientConnection.qps",
        5.0,
        float,
        "QPS of kube-proxy's client to the apiserver",
        f"{DEFAULTS}: ClientConnection.QPS 5",
        flag="kube-api-qps",
        minimum=0.0,
    )
    burst: int = option(
        "clientConnection.burst",
        10,
        int,
        "burst of kube-proxy's client to the apiserver",
        f"{DEFAULTS}: ClientConnection.Burst 10; {VALIDATION}: validateClientConnectionConfiguration, non-negative",
        flag="kube-api-burst",
        minimum=0,
    )
    cluster_cidr: str = option(
        "clusterCIDR",
        "",
        str,
        "the pods' CIDR (or a comma-separated dual-stack pair): traffic from it is local, other traffic to a "
        "ClusterIP is masqueraded (blank: no local traffic detection)",
        f"{TYPES}: ClusterCIDR; {VALIDATION}: validateDualStackCIDRStrings",
        flag="cluster-cidr",
    )
    detect_local_mode: str = option(
        "detectLocalMode",
        "",
        str,
        "how local traffic is detected (blank: ClusterCIDR); NodeCIDR, BridgeInterface and InterfaceNamePrefix "
        "are not modelled",
        f"{TYPES}: LocalMode; cmd/kube-proxy/app/server_linux.go: blank means ClusterCIDR",
        flag="detect-local-mode",
        choices=("", "ClusterCIDR"),
    )
    node_port_addresses: tuple[str, ...] | None = option(
        "nodePortAddresses",
        None,
        list,
        "CIDRs (or 'primary') of the node addresses that accept NodePorts (null: all in iptables and ipvs mode, "
        "the primary IP in nftables mode)",
        f"{TYPES}: NodePortAddresses; {VALIDATION}: validateKubeProxyNodePortAddress",
        flag="nodeport-addresses",
        nullable=True,
    )
    iptables_masquerade_all: bool = option(
        "iptables.masqueradeAll",
        False,
        bool,
        "iptables and ipvs mode: masquerade all traffic sent to ClusterIPs",
        f"{DEFAULTS}: IPTables.MasqueradeAll false",
        flag="masquerade-all",
    )
    iptables_masquerade_bit: int = option(
        "iptables.masqueradeBit",
        14,
        int,
        "iptables and ipvs mode: the fwmark bit that marks packets for masquerading",
        f"{DEFAULTS}: IPTables.MasqueradeBit 14; {VALIDATION}: must be within the range [0, 31]",
        flag="iptables-masquerade-bit",
        minimum=0,
        maximum=31,
    )
    localhost_node_ports: bool = option(
        "iptables.localhostNodePorts",
        True,
        bool,
        "iptables mode, IPv4: NodePorts also accept connections to 127.0.0.1",
        f"{DEFAULTS}: IPTables.LocalhostNodePorts true",
        flag="iptables-localhost-nodeports",
    )
    iptables_sync_period: float = _period("iptables", "IPTables", "syncPeriod", "30s")
    iptables_min_sync_period: float = _period("iptables", "IPTables", "minSyncPeriod", "1s")
    ipvs_scheduler: str = option(
        "ipvs.scheduler",
        "",
        str,
        "IPVS scheduler (blank: rr); kbench implements rr, wrr, lc and sh",
        "pkg/proxy/ipvs/proxier.go NewProxier: a blank scheduler is rr",
        flag="ipvs-scheduler",
        choices=("", *IPVS_SCHEDULERS),
    )
    ipvs_sync_period: float = _period("ipvs", "IPVS", "syncPeriod", "30s")
    ipvs_min_sync_period: float = _period("ipvs", "IPVS", "minSyncPeriod", "0s")
    nftables_masquerade_all: bool = option(
        "nftables.masqueradeAll",
        False,
        bool,
        "nftables mode: masquerade all traffic sent to ClusterIPs",
        f"{DEFAULTS}: NFTables.MasqueradeAll false",
    )
    nftables_masquerade_bit: int = option(
        "nftables.masqueradeBit",
        14,
        int,
        "nftables mode: the fwmark bit that marks packets for masquerading",
        f"{DEFAULTS}: NFTables.MasqueradeBit 14; {VALIDATION}: must be within the range [0, 31]",
        minimum=0,
        maximum=31,
    )
    nftables_sync_period: float = _period("nftables", "NFTables", "syncPeriod", "30s", flag=False)
    nftables_min_sync_period: float = _period("nftables", "NFTables", "minSyncPeriod", "1s", flag=False)
    conntrack_tcp_be_liberal: bool = option(
        "conntrack.tcpBeLiberal",
        False,
        bool,
        "conntrack is liberal about TCP packets out of window (iptables mode then writes no INVALID drop rule)",
        f"{TYPES}: Conntrack.TCPBeLiberal (default false)",
        flag="conntrack-tcp-be-liberal",
    )

    @classmethod
    def from_manifest(cls, doc: Mapping[str, Any], where: str | None = None) -> Self:
        """From a KubeProxyConfiguration manifest, with upstream's defaulting of the zero values it holds."""
        if isinstance(doc, Mapping):
            doc = defaulted(doc)
        return super().from_manifest(doc, where)

    def validate(self, where: str) -> None:
        """Validate's rules across fields: the running mode's periods, the client, clusterCIDR, NodePort CIDRs."""
        prefix = self.proxy_mode
        if self.sync_period <= 0:
            raise ConfigError(f"{where}.{prefix}.syncPeriod: must be greater than 0; got {self.sync_period:g}s")
        if self.min_sync_period > self.sync_period:
            raise ConfigError(
                f"{where}.{prefix}.syncPeriod: must be greater than or equal to {prefix}.minSyncPeriod "
                f"({self.sync_period:g}s < {self.min_sync_period:g}s)"
            )
        if self.qps <= 0:
            raise ConfigError(
                f"{where}.clientConnection.qps: {self.qps:g} is out of range; expected a number > 0 (kbench models a "
                "rate-limited client; a manifest's 0 is defaulted to 5)"
            )
        _check_cluster_cidr(self.cluster_cidr, f"{where}.clusterCIDR")
        _check_node_port_addresses(self.node_port_addresses or (), f"{where}.nodePortAddresses")

    # -- what the running mode uses (conversion.go: v1alpha1 -> internal) -----------------------------------
    @property
    def proxy_mode(self) -> str:
        """The mode kube-proxy runs in: ``mode``, or iptables when it is blank."""
        return self.mode or DEFAULT_MODE

    @property
    def sync_period(self) -> float:
        """Seconds: the running mode's ``syncPeriod`` (the internal configuration's SyncPeriod)."""
        return float(getattr(self, f"{self.proxy_mode}_sync_period"))

    @property
    def min_sync_period(self) -> float:
        """Seconds: the running mode's ``minSyncPeriod`` (the internal configuration's MinSyncPeriod)."""
        return float(getattr(self, f"{self.proxy_mode}_min_sync_period"))

    @property
    def masquerade_all(self) -> bool:
        """``nftables.masqueradeAll`` in nftables mode, else ``iptables.masqueradeAll`` (Linux.MasqueradeAll)."""
        return self.nftables_masquerade_all if self.proxy_mode == "nftables" else self.iptables_masquerade_all

    @property
    def masquerade_mark(self) -> str:
        """The masquerade fwmark as the rules write it: ``1 << masqueradeBit`` in hex (``0x4000`` for bit 14)."""
        bit = self.nftables_masquerade_bit if self.proxy_mode == "nftables" else self.iptables_masquerade_bit
        return f"{1 << bit:#x}"

    @property
    def client_burst(self) -> int:
        """Burst of kube-proxy's API client: ``clientConnection.burst``, or client-go's default (10) when it is 0
        (rest.RESTClientFor)."""
        return self.burst if self.burst > 0 else DEFAULT_BURST

    @property
    def scheduler(self) -> str:
        """The IPVS scheduler: ``ipvs.scheduler``, or rr when it is blank."""
        return self.ipvs_scheduler or DEFAULT_IPVS_SCHEDULER

    @property
    def cluster_cidrs(self) -> tuple[str, ...]:
        """``clusterCIDR`` split at commas (the internal DetectLocal.ClusterCIDRs)."""
        return tuple(c.strip() for c in self.cluster_cidr.split(",") if c.strip())

    def for_mode(self, mode: str) -> KubeProxyConfiguration:
        """A copy running in ``mode`` (the other settings unchanged)."""
        return self if self.mode == mode else self.replace({"mode": mode})


def defaulted(doc: Mapping[str, Any]) -> dict[str, Any]:
    """``doc`` without the zero values SetDefaults_KubeProxyConfiguration replaces (:data:`ZERO_IS_UNSET`)."""
    out = dict(doc)
    for path in ZERO_IS_UNSET:
        section, _, name = path.partition(".")
        node = out.get(section)
        if isinstance(node, Mapping) and is_zero(node.get(name)):
            out[section] = {k: v for k, v in node.items() if k != name}
    return out


def _check_cluster_cidr(text: str, where: str) -> None:
    """validateDualStackCIDRStrings: one CIDR or a dual-stack pair."""
    cidrs = [c.strip() for c in text.split(",")] if text else []
    for i, cidr in enumerate(cidrs):
        try:
            parse_cidr(cidr)
        except ValueError:
            raise ConfigError(
                f"{where}: {text!r}: item {i} {cidr!r} must be a valid CIDR block (e.g. 10.100.0.0/16 or "
                "fde4:8dba:82e1::/48)"
            ) from None
    if len(cidrs) > 2 or (len(cidrs) == 2 and parse_cidr(cidrs[0]).version == parse_cidr(cidrs[1]).version):
        raise ConfigError(
            f"{where}: {text!r} must be a either a single CIDR or dual-stack pair of CIDRs "
            "(e.g. 10.100.0.0/16,fde4:8dba:82e1::/48)"
        )


def _check_node_port_addresses(values: tuple[str, ...], where: str) -> None:
    """validateKubeProxyNodePortAddress: CIDRs, or 'primary' alone."""
    for i, value in enumerate(values):
        if value == NODE_PORT_PRIMARY:
            if i != 0 or len(values) != 1:
                raise ConfigError(f"{where}[{i}]: {value!r}: can't use both 'primary' and CIDRs")
            return
        try:
            parse_cidr(value)
        except ValueError:
            raise ConfigError(f"{where}[{i}]: {value!r} must be a valid CIDR (or 'primary' alone)") from None
