"""KubeProxyConfiguration: upstream's v1alpha1 fields and defaults, its validation's named-field errors, and the
settings reaching the rules and the sync runner."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from kbench.componentconfig import ConfigError
from kbench.proxy import iptables, nftables, workload
from kbench.proxy.config import KubeProxyConfiguration
from kbench.proxy.kube_proxy import KubeProxy, ProxyCosts
from kbench.proxy.model import ProxierConfig
from kbench.sim import Engine

API = {"apiVersion": "kubeproxy.config.k8s.io/v1alpha1", "kind": "KubeProxyConfiguration"}
COSTS = ProxyCosts.from_profile()
KUBEADM_DEFAULTS = {
    **API,
    "bindAddress": "0.0.0.0",
    "bindAddressHardFail": False,
    "clientConnection": {
        "acceptContentTypes": "",
        "burst": 10,
        "contentType": "application/vnd.kubernetes.protobuf",
        "kubeconfig": "/var/lib/kube-proxy/kubeconfig.conf",
        "qps": 5,
    },
    "clusterCIDR": "10.244.0.0/16",
    "configSyncPeriod": "15m0s",
    "conntrack": {
        "maxPerCore": 32768,
        "min": 131072,
        "tcpBeLiberal": False,
        "tcpCloseWaitTimeout": "1h0m0s",
        "tcpEstablishedTimeout": "24h0m0s",
        "udpStreamTimeout": "0s",
        "udpTimeout": "0s",
    },
    "detectLocal": {"bridgeInterface": "", "interfaceNamePrefix": ""},
    "detectLocalMode": "",
    "enableProfiling": False,
    "healthzBindAddress": "0.0.0.0:10256",
    "hostnameOverride": "",
    "iptables": {
        "localhostNodePorts": True,
        "masqueradeAll": False,
        "masqueradeBit": 14,
        "minSyncPeriod": "1s",
        "syncPeriod": "30s",
    },
    "ipvs": {
        "excludeCIDRs": None,
        "minSyncPeriod": "0s",
        "scheduler": "",
        "strictARP": False,
        "syncPeriod": "30s",
        "tcpFinTimeout": "0s",
        "tcpTimeout": "0s",
        "udpTimeout": "0s",
    },
    "logging": {"flushFrequency": 0, "format": "text", "verbosity": 0},
    "metricsBindAddress": "127.0.0.1:10249",
    "mode": "",
    "nftables": {"masqueradeAll": False, "masqueradeBit": 14, "minSyncPeriod": "1s", "syncPeriod": "30s"},
    "nodePortAddresses": None,
    "oomScoreAdj": -999,
    "portRange": "",
    "showHiddenMetricsForVersion": "",
    "winkernel": {"enableDSR": False, "networkName": "", "sourceVip": ""},
}
"""A defaulted v1alpha1 file as kubeadm writes it (its kube-proxy ConfigMap)."""


def test_defaults_are_upstreams():
    """SetDefaults_KubeProxyConfiguration (v1.35): 30s every mode's syncPeriod; minSyncPeriod 1s for iptables and
    nftables, 0s (not defaulted) for IPVS; masqueradeBit 14; localhostNodePorts true; client 5 QPS / burst 10."""
    assert KubeProxyConfiguration().values() == {
        "mode": "",
        "clientConnection.qps": 5.0,
        "clientConnection.burst": 10,
        "clusterCIDR": "",
        "detectLocalMode": "",
        "nodePortAddresses": None,
        "iptables.masqueradeAll": False,
        "iptables.masqueradeBit": 14,
        "iptables.localhostNodePorts": True,
        "iptables.syncPeriod": "30s",
        "iptables.minSyncPeriod": "1s",
        "ipvs.scheduler": "",
        "ipvs.syncPeriod": "30s",
        "ipvs.minSyncPeriod": "0s",
        "nftables.masqueradeAll": False,
        "nftables.masqueradeBit": 14,
        "nftables.syncPeriod": "30s",
        "nftables.minSyncPeriod": "1s",
        "conntrack.tcpBeLiberal": False,
    }
    config = KubeProxyConfiguration()
    assert (config.proxy_mode, config.sync_period, config.min_sync_period) == ("iptables", 30.0, 1.0)
    assert (config.masquerade_mark, config.scheduler, config.client_burst) == ("0x4000", "rr", 10)


def test_a_real_file_loads_and_round_trips():
    config = KubeProxyConfiguration.from_manifest(KUBEADM_DEFAULTS)
    assert config == KubeProxyConfiguration().replace({"clusterCIDR": "10.244.0.0/16"})
    assert KubeProxyConfiguration.from_manifest(config.to_manifest()) == config
    with pytest.raises(ConfigError, match=r"^KubeProxyConfiguration.iptables.syncPerod: unknown field; allowed: mode"):
        KubeProxyConfiguration.from_manifest({**API, "iptables": {"syncPerod": "1s"}})
    with pytest.raises(ConfigError, match="apiVersion/kind: expected kubeproxy.config.k8s.io/v1alpha1"):
        KubeProxyConfiguration.from_manifest({**API, "apiVersion": "kubeproxy.config.k8s.io/v1alpha2"})


def test_the_running_modes_section_gives_its_settings():
    """conversion.go: the periods of the running mode's section; masqueradeAll of nftables in nftables mode, of
    iptables otherwise (IPVS too)."""
    config = KubeProxyConfiguration().replace(
        {
            "iptables.syncPeriod": "40s",
            "iptables.minSyncPeriod": "2s",
            "iptables.masqueradeAll": True,
            "ipvs.syncPeriod": "50s",
            "ipvs.minSyncPeriod": "3s",
            "nftables.syncPeriod": "60s",
            "nftables.minSyncPeriod": "4s",
            "nftables.masqueradeBit": 15,
        }
    )
    by_mode = {m: config.for_mode(m) for m in ("", "iptables", "ipvs", "nftables")}
    assert {m: (c.sync_period, c.min_sync_period, c.masquerade_all) for m, c in by_mode.items()} == {
        "": (40.0, 2.0, True),
        "iptables": (40.0, 2.0, True),
        "ipvs": (50.0, 3.0, True),
        "nftables": (60.0, 4.0, False),
    }
    assert by_mode["nftables"].masquerade_mark == "0x8000" and by_mode["ipvs"].masquerade_mark == "0x4000"


def test_a_manifests_zero_values_are_defaulted_and_flags_set_them():
    """SetDefaults_KubeProxyConfiguration replaces zero values (``Duration == 0``, ``QPS == 0``): a file cannot
    set iptables.minSyncPeriod to 0s, a flag can (flags apply after defaulting)."""
    doc = {
        **API,
        "iptables": {"minSyncPeriod": "0s", "syncPeriod": "0s"},
        "ipvs": {"minSyncPeriod": "0s"},
        "clientConnection": {"qps": 0, "burst": 0},
    }
    config = KubeProxyConfiguration.from_manifest(doc)
    assert (config.iptables_min_sync_period, config.iptables_sync_period, config.ipvs_min_sync_period) == (1, 30, 0)
    assert (config.qps, config.burst) == (5.0, 10)
    flags = KubeProxyConfiguration.from_flags({"--iptables-min-sync-period": "0s", "kube-api-burst": "0"})
    assert flags.iptables_min_sync_period == 0.0 and flags.burst == 0 and flags.client_burst == 10


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"iptables.syncPeriod": "0s"}, r"\.iptables\.syncPeriod: must be greater than 0"),
        ({"mode": "ipvs", "ipvs.syncPeriod": "0s"}, r"\.ipvs\.syncPeriod: must be greater than 0"),
        (
            {"iptables.minSyncPeriod": "1m0s"},
            r"\.iptables\.syncPeriod: must be greater than or equal to iptables\.minSyncPeriod \(30s < 60s\)",
        ),
        (
            {"mode": "nftables", "nftables.syncPeriod": "500ms"},
            r"\.nftables\.syncPeriod: must be greater than or equal to nftables\.minSyncPeriod",
        ),
        ({"ipvs.minSyncPeriod": "-1s"}, r"\.ipvs\.minSyncPeriod: '-1s' is out of range; expected a duration in \[0s"),
        ({"mode": "userspace"}, r"\.mode: 'userspace' is not allowed; expected one of \"\", iptables, ipvs, nftables"),
        (
            {"iptables.masqueradeBit": 32},
            r"\.iptables\.masqueradeBit: 32 is out of range; expected an integer in \[0, 31",
        ),
        ({"nftables.masqueradeBit": -1}, r"\.nftables\.masqueradeBit: -1 is out of range"),
        ({"clientConnection.burst": -1}, r"\.clientConnection\.burst: -1 is out of range"),
        ({"clientConnection.qps": 0}, r"\.clientConnection\.qps: 0 is out of range; expected a number > 0"),
        ({"clusterCIDR": "10.0.0.0/8,x"}, r"\.clusterCIDR: '10.0.0.0/8,x': item 1 'x' must be a valid CIDR"),
        ({"clusterCIDR": "10.0.0.0/8,11.0.0.0/8"}, r"\.clusterCIDR: .* single CIDR or dual-stack pair"),
        ({"nodePortAddresses": ["10.0.0.0/8", "x"]}, r"\.nodePortAddresses\[1\]: 'x' must be a valid CIDR"),
        ({"nodePortAddresses": ["10.0.0.0/8", "primary"]}, r"\.nodePortAddresses\[1\]: 'primary': can't use both"),
        ({"ipvs.scheduler": "mh"}, r"\.ipvs\.scheduler: 'mh' is not allowed; expected one of \"\", rr, wrr, lc, sh"),
        (
            {"detectLocalMode": "NodeCIDR"},
            r"\.detectLocalMode: 'NodeCIDR' is not allowed; expected one of \"\", Cluster",
        ),
    ],
)
def test_validation_names_the_field(values, message):
    with pytest.raises(ConfigError, match=r"^KubeProxyConfiguration" + message):
        KubeProxyConfiguration().replace(values)


def test_the_operators_settings_reach_the_rules():
    """masqueradeBit, masqueradeAll, clusterCIDR, localhostNodePorts and conntrack.tcpBeLiberal change the rules."""
    ports = workload.service_ports(3, 2)
    base = workload.CONFIGURATION

    def rules(mode: str, **settings) -> str:
        config = dataclasses.replace(workload.CONFIG, configuration=base.replace(settings).for_mode(mode))
        compiled = (iptables if mode == "iptables" else nftables).compile_rules(ports, config)
        return compiled.text() if mode == "iptables" else compiled.dump()

    default = rules("iptables")
    assert "--or-mark 0x4000" in default and "! -s 10.0.0.0/8 -j KUBE-MARK-MASQ" in default
    assert "--or-mark 0x2000" in rules("iptables", **{"iptables.masqueradeBit": 13})
    assert "-d 172.16.0.1 --dport 80 -j KUBE-MARK-MASQ" in rules("iptables", **{"iptables.masqueradeAll": True})
    assert "! -s 10.0.0.0/8" not in rules("iptables", clusterCIDR="")
    assert "KUBE-FIREWALL" in default and "KUBE-FIREWALL" not in rules(
        "iptables", **{"iptables.localhostNodePorts": False}
    )
    assert "--ctstate INVALID" in default and "--ctstate INVALID" not in rules(
        "iptables", **{"conntrack.tcpBeLiberal": True}
    )
    nft_masq_all = rules("nftables", **{"nftables.masqueradeAll": True})
    assert nft_masq_all != rules("nftables") == rules("nftables", **{"iptables.masqueradeAll": True})


def _syncs(configuration: KubeProxyConfiguration, changes: int = 60, every: float = 0.1) -> list[float]:
    """Start times of the syncs after the first while a Service changes every ``every`` seconds."""
    engine = Engine()
    config = dataclasses.replace(workload.CONFIG, configuration=configuration)
    proxy = KubeProxy(engine, workload.service_ports(50, 3), config, COSTS)
    engine.run(until=proxy.ready)
    key = sorted(proxy.services)[0]

    def churn():
        for _ in range(changes):
            yield engine.timeout(every)
            proxy.apply(key, proxy.services[key], trigger=engine.now)

    engine.process(churn())
    engine.run(until=engine.now + changes * every + 5)
    return [s.start for s in proxy.syncs[1:]]


@pytest.mark.parametrize(("mode", "min_sync"), [("iptables", 2.0), ("nftables", 0.5), ("ipvs", 1.5)])
def test_min_sync_period_spaces_the_modelled_syncs(mode, min_sync):
    configuration = workload.CONFIGURATION.for_mode(mode).replace({f"{mode}.minSyncPeriod": f"{min_sync}s"})
    starts = np.array(_syncs(configuration))
    assert np.all(np.diff(starts) >= min_sync - 1e-9)  # v1.34's runner: no burst, one sync per minSyncPeriod
    assert len(starts) == pytest.approx(6.0 / min_sync, abs=1.5)


def test_ipvs_default_min_sync_period_syncs_every_change():
    """ipvs.minSyncPeriod defaults to 0s: each change gets its own sync (none arrives during one)."""
    starts = _syncs(workload.CONFIGURATION.for_mode("ipvs"), changes=30)
    assert len(starts) == 30


@pytest.mark.parametrize(("mode", "resyncs"), [("ipvs", 3), ("iptables", 0), ("nftables", 0)])
def test_sync_period_is_the_ipvs_resync_interval(mode, resyncs):
    """IPVS resyncs every ipvs.syncPeriod when nothing changes; iptables and nftables only every FullSyncPeriod."""
    configuration = workload.CONFIGURATION.for_mode(mode).replace({f"{mode}.syncPeriod": "10s"})
    engine = Engine()
    proxy = KubeProxy(engine, workload.service_ports(5, 1), ProxierConfig(configuration=configuration), COSTS)
    engine.run(until=35.0)
    assert len(proxy.syncs) - 1 == resyncs


def test_node_proxy_runs_as_its_configuration_says():
    """NodeProxy reads the mode, the sync periods and the client's limits from its KubeProxyConfiguration."""
    from kbench.apiserver import APIServer
    from kbench.proxy.informed import NodeProxy

    api = APIServer(Engine())
    configuration = KubeProxyConfiguration().replace(
        {"mode": "ipvs", "clientConnection.qps": 20, "clientConnection.burst": 0, "ipvs.minSyncPeriod": "2s"}
    )
    node = NodeProxy(api, "node-3", "192.168.0.13", configuration)
    assert (node.proxy.mode, node.proxy.min_sync_period, node.proxy.max_interval) == ("ipvs", 2.0, 30.0)
    assert (node.client.limiter.qps, node.client.limiter.burst) == (20.0, 10)
    assert node.config.node_name == "node-3" and node.config.local_cidr is None  # upstream: clusterCIDR unset
    default = NodeProxy(api, "node-4", "192.168.0.14")
    assert default.proxy.mode == "iptables" and default.config.configuration == KubeProxyConfiguration()
