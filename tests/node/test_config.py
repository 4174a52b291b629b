"""KubeletConfiguration: upstream's v1.35 defaults, its validation rules by field, its manifest defaulting."""

from __future__ import annotations

import pytest

from kbench.componentconfig import ConfigError
from kbench.node.config import UNLIMITED, KubeletConfiguration

API = {"apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration"}


def manifest(**fields) -> KubeletConfiguration:
    return KubeletConfiguration.from_manifest({**API, **fields})


def test_defaults_are_upstreams():
    """pkg/kubelet/apis/config/v1beta1/defaults.go (v1.35)."""
    assert KubeletConfiguration().to_manifest() == {
        **API,
        "kubeAPIQPS": 50,
        "kubeAPIBurst": 100,
        "eventRecordQPS": 50,
        "eventBurst": 100,
        "nodeStatusUpdateFrequency": "10s",
        "nodeStatusReportFrequency": "5m0s",
        "nodeLeaseDurationSeconds": 40,
        "maxPods": 110,
        "podsPerCore": 0,
        "serializeImagePulls": True,
        "maxParallelImagePulls": None,
    }
    defaults = KubeletConfiguration()
    assert defaults.lease_renew_interval == 10.0  # 40 s x nodeLeaseRenewIntervalFraction 0.25
    assert (defaults.client_qps, defaults.client_burst, defaults.parallel_image_pulls) == (50.0, 100, 1)
    assert manifest() == defaults  # an empty document is all defaults


def test_event_client_limits():
    """eventRecordQPS 0 is no limit (cmd/kubelet/app/server.go: QPS -1); eventBurst 0 is defaulted to 100."""
    assert (KubeletConfiguration().event_qps, KubeletConfiguration().event_burst_size) == (50.0, 100)
    unlimited = manifest(eventRecordQPS=0, eventBurst=0)
    assert unlimited.event_qps >= 1e9 and unlimited.event_burst == 100
    with pytest.raises(ConfigError, match="eventRecordQPS"):
        manifest(eventRecordQPS=-1)
    flagged = KubeletConfiguration.from_flags({"event-burst": "0"})  # a flag is not defaulted: client-go's 10
    assert flagged.event_burst == 0 and flagged.event_burst_size == 10


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"kubeAPIQPS": -1},
            r"KubeletConfiguration\.kubeAPIQPS: -1 is out of range; expected an integer in \[0, inf\]",
        ),
        ({"kubeAPIBurst": -1}, r"KubeletConfiguration\.kubeAPIBurst: -1 is out of range"),
        ({"nodeLeaseDurationSeconds": -5}, r"KubeletConfiguration\.nodeLeaseDurationSeconds: -5 is out of range; "),
        ({"maxPods": -1}, r"KubeletConfiguration\.maxPods: -1 is out of range"),
        ({"podsPerCore": -2}, r"KubeletConfiguration\.podsPerCore: -2 is out of range"),
        ({"maxParallelImagePulls": 0}, r"KubeletConfiguration\.maxParallelImagePulls: 0 is out of range; expected "),
        (
            {"serializeImagePulls": True, "maxParallelImagePulls": 3},
            r"KubeletConfiguration\.maxParallelImagePulls: 3 cannot be larger than 1 unless serializeImagePulls is "
            r"false",
        ),
        ({"nodeStatusUpdateFrequency": "10"}, r"KubeletConfiguration\.nodeStatusUpdateFrequency: '10' is not a dur"),
        ({"kubeAPIQPS": 2.5}, r"KubeletConfiguration\.kubeAPIQPS: 2\.5 is not an integer"),
        ({"maxPod": 10}, r"KubeletConfiguration\.maxPod: unknown field; allowed: kubeAPIQPS, "),
    ],
)
def test_validation_names_the_field(fields, message):
    with pytest.raises(ConfigError, match=message):
        manifest(**fields)


def test_a_field_set_field_by_field_is_validated_too():
    """A sweep's change is not defaulted: parallel pulls with serialized pulls is refused, as upstream validates."""
    with pytest.raises(ConfigError, match=r"^kubelet\.maxParallelImagePulls: 2 cannot be larger than 1"):
        KubeletConfiguration().replace({"maxParallelImagePulls": 2}, "kubelet")
    with pytest.raises(ConfigError, match=r"nodeLeaseDurationSeconds: 0 is out of range; expected an integer in \[1,"):
        KubeletConfiguration().replace({"nodeLeaseDurationSeconds": 0})
    both = KubeletConfiguration().replace({"serializeImagePulls": False, "max-parallel-image-pulls": "2"})
    assert both.parallel_image_pulls == 2


def test_manifest_defaulting_as_set_defaults_kubelet_configuration():
    # nodeStatusReportFrequency defaults to an explicit nodeStatusUpdateFrequency (backward compatibility)
    assert manifest(nodeStatusUpdateFrequency="20s").node_status_report_frequency == 20.0
    both = manifest(nodeStatusUpdateFrequency="20s", nodeStatusReportFrequency="1m")
    assert both.node_status_report_frequency == 60.0
    # serializeImagePulls defaults to false when maxParallelImagePulls >= 2 is set, true otherwise
    assert manifest(maxParallelImagePulls=3).parallel_image_pulls == 3
    assert manifest(maxParallelImagePulls=1).serialize_image_pulls is True
    assert manifest(serializeImagePulls=False).parallel_image_pulls == UNLIMITED  # nil: no limit
    # a zero (unset) count or duration is the default
    zeros = manifest(maxPods=0, nodeLeaseDurationSeconds=0, kubeAPIBurst=0, nodeStatusUpdateFrequency="0s")
    assert zeros == KubeletConfiguration()
    # kubeAPIQPS is a pointer upstream: 0 stays 0, and client-go then uses its default 5 QPS
    assert manifest(kubeAPIQPS=0).client_qps == 5.0


def test_a_real_kubelet_config_file_loads():
    """Fields kbench does not model are accepted (upstream's v1beta1 types.go), so a kubeadm-style file loads."""
    config = manifest(
        authentication={"anonymous": {"enabled": False}, "webhook": {"enabled": True, "cacheTTL": "0s"}},
        authorization={"mode": "Webhook"},
        cgroupDriver="systemd",
        clusterDNS=["10.96.0.10"],
        clusterDomain="cluster.local",
        containerRuntimeEndpoint="unix:///var/run/containerd/containerd.sock",
        evictionHard={"memory.available": "100Mi"},
        rotateCertificates=True,
        staticPodPath="/etc/kubernetes/manifests",
        syncFrequency="0s",
        maxPods=250,
    )
    assert config.max_pods == 250 and config.values()["kubeAPIQPS"] == 50
    assert KubeletConfiguration.from_manifest(config.to_manifest()) == config


def test_pods_capacity_is_max_pods_capped_by_pods_per_core():
    assert KubeletConfiguration().pods_capacity(cores=4) == 110
    assert KubeletConfiguration().replace({"podsPerCore": 10}).pods_capacity(cores=4) == 40
    assert KubeletConfiguration().replace({"podsPerCore": 100}).pods_capacity(cores=4) == 110
