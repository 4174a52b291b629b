"""KubeSchedulerConfiguration parsing, defaults and errors that name the field."""

from __future__ import annotations

import pytest

from kbench.scheduler import ConfigError, SchedulerConfig, parse_config

YAML = """
apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
percentageOfNodesToScore: 30
profiles:
- schedulerName: default-scheduler
  plugins:
    score:
      disabled: [{name: ImageLocality}]
      enabled: [{name: NodeResourcesFit, weight: 5}]
  pluginConfig:
  - name: NodeResourcesFit
    args:
      scoringStrategy:
        type: MostAllocated
        resources: [{name: cpu, weight: 2}, {name: memory, weight: 1}, {name: nvidia.com/gpu, weight: 3}]
- schedulerName: bin-packer
  plugins:
    multiPoint:
      disabled: [{name: NodeResourcesBalancedAllocation}]
  pluginConfig:
  - name: NodeResourcesFit
    args:
      scoringStrategy:
        type: RequestedToCapacityRatio
        resources: [{name: cpu}]
        requestedToCapacityRatio: {shape: [{utilization: 0, score: 0}, {utilization: 100, score: 10}]}
"""


def test_defaults_are_upstreams():
    profile = parse_config().profile()
    assert profile.weights == {
        "TaintToleration": 3,
        "NodeAffinity": 2,
        "NodeResourcesFit": 1,
        "VolumeBinding": 1,
        "PodTopologySpread": 2,
        "InterPodAffinity": 2,
        "NodeResourcesBalancedAllocation": 1,
        "ImageLocality": 1,
    }
    assert profile.enabled("filter") == [
        "NodeUnschedulable",
        "NodeName",
        "TaintToleration",
        "NodeAffinity",
        "NodePorts",
        "NodeResourcesFit",
        "PodTopologySpread",
        "InterPodAffinity",
    ]
    assert profile.args["NodeResourcesFit"]["scoringStrategy"]["type"] == "LeastAllocated"
    assert profile.args["PodTopologySpread"]["defaultingType"] == "System"


def test_a_real_configuration_with_two_profiles():
    config = parse_config(YAML)
    default, packer = config.profile("default-scheduler"), config.profile("bin-packer")
    assert config.percentage_of_nodes_to_score == 30
    assert "ImageLocality" not in default.enabled("score") and default.weights["NodeResourcesFit"] == 5
    assert default.args["NodeResourcesFit"]["scoringStrategy"]["resources"][2] == {
        "name": "nvidia.com/gpu",
        "weight": 3,
    }
    assert "NodeResourcesBalancedAllocation" not in packer.enabled("score")
    assert packer.args["NodeResourcesFit"]["scoringStrategy"]["type"] == "RequestedToCapacityRatio"


@pytest.mark.parametrize(
    "config, message",
    [
        (
            {"profiles": [{"plugins": {"score": {"enabled": [{"name": "Nope"}]}}}]},
            r"profiles\[0\].plugins.score.enabled\[0\].name: Invalid value: 'Nope': plugin 'Nope' does not exist",
        ),
        (
            {"profiles": [{"plugins": {"score": {"enabled": [{"name": "ImageLocality", "weight": -2}]}}}]},
            r"profiles\[0\].plugins.score.enabled\[0\].weight: Invalid value: -2",
        ),
        (
            {"profiles": [{"plugins": {"filter": {"enabled": [{"name": "ImageLocality"}]}}}]},
            r"does not extend filter plugin",
        ),
        (
            {
                "profiles": [
                    {"pluginConfig": [{"name": "NodeResourcesFit", "args": {"scoringStrategy": {"type": "Best"}}}]}
                ]
            },
            r"profiles\[0\].pluginConfig\[0\].args.scoringStrategy.type: Unsupported value: 'Best': supported values: "
            r"'LeastAllocated', 'MostAllocated', 'RequestedToCapacityRatio'",
        ),
        (
            {
                "profiles": [
                    {
                        "pluginConfig": [
                            {
                                "name": "NodeResourcesFit",
                                "args": {
                                    "scoringStrategy": {
                                        "type": "LeastAllocated",
                                        "resources": [{"name": "cpu", "weight": 101}],
                                    }
                                },
                            }
                        ]
                    }
                ]
            },
            r"scoringStrategy.resources\[0\].weight: Invalid value: 101: "
            r"resource weight of cpu not in valid range \(0, 100\]",
        ),
        (
            {
                "profiles": [
                    {
                        "pluginConfig": [
                            {
                                "name": "NodeResourcesFit",
                                "args": {
                                    "scoringStrategy": {
                                        "type": "RequestedToCapacityRatio",
                                        "requestedToCapacityRatio": {
                                            "shape": [{"utilization": 50, "score": 5}, {"utilization": 10, "score": 1}]
                                        },
                                    }
                                },
                            }
                        ]
                    }
                ]
            },
            r"shape\[1\].utilization: Invalid value: 10: utilization values must be sorted in increasing order",
        ),
        (
            {"percentageOfNodesToScore": 120},
            r"^KubeSchedulerConfiguration\.percentageOfNodesToScore: 120 is out of range; "
            r"expected an integer in \[0, 100\]$",
        ),
        ({"profiles": [{}, {}]}, r"profiles\[1\].schedulerName: Duplicate value: 'default-scheduler'"),
        (
            {"profiles": [{"pluginConfig": [{"name": "InterPodAffinity", "args": {"hardPodAffinityWeight": 500}}]}]},
            r"hardPodAffinityWeight: Invalid value: 500: not in valid range \[0, 100\]",
        ),
        (
            {"profiles": [{"pluginConfig": [{"name": "NodeAffinity", "args": {"bogus": 1}}]}]},
            r"unknown field\(s\) \['bogus'\] for NodeAffinityArgs",
        ),
        (
            {"apiVersion": "kubescheduler.config.k8s.io/v1beta1"},
            r"^KubeSchedulerConfiguration: apiVersion/kind: expected kubescheduler\.config\.k8s\.io/v1 "
            r"KubeSchedulerConfiguration; got 'kubescheduler\.config\.k8s\.io/v1beta1' None$",
        ),
    ],
)
def test_invalid_configuration_names_the_field(config, message):
    with pytest.raises(ConfigError, match=message):
        parse_config(config)


def test_component_config_protocol_and_upstream_defaults():
    """kube-scheduler's configuration is a ComponentConfig with upstream's defaults (v1 defaults.go)."""
    config = SchedulerConfig()
    assert (SchedulerConfig.component, SchedulerConfig.kind, SchedulerConfig.api_version) == (
        "kube-scheduler",
        "KubeSchedulerConfiguration",
        "kubescheduler.config.k8s.io/v1",
    )
    assert config.values() == {
        "parallelism": 16,
        "percentageOfNodesToScore": 0,
        "podInitialBackoffSeconds": 1,
        "podMaxBackoffSeconds": 10,
        "clientConnection.qps": 50.0,
        "clientConnection.burst": 100,
    }
    assert config == parse_config() == SchedulerConfig.from_manifest({})
    assert [p.scheduler_name for p in config.profiles] == ["default-scheduler"]
    assert SchedulerConfig.lookup("clientConnection.qps")[0] == "client_connection_qps"


def test_client_connection_from_a_manifest_and_by_field():
    doc = {
        "apiVersion": "kubescheduler.config.k8s.io/v1",
        "kind": "KubeSchedulerConfiguration",
        "clientConnection": {"qps": 20, "burst": 40, "kubeconfig": "/etc/kubernetes/scheduler.conf"},
        "leaderElection": {"leaderElect": True},
        "percentageOfNodesToScore": None,  # a nil pointer: the default
    }
    config = SchedulerConfig.from_manifest(doc)
    assert (config.client_connection_qps, config.client_connection_burst) == (20.0, 40)
    assert config.percentage_of_nodes_to_score == 0
    tuned = config.replace({"clientConnection.qps": 100, "percentageOfNodesToScore": 30, "parallelism": 4})
    assert tuned.values()["clientConnection.qps"] == 100.0 and tuned.percentage_of_nodes_to_score == 30
    assert tuned.profiles == config.profiles and tuned.parallelism == 4
    # the scheduler's opinion about QPS/Burst: zero means its own defaults
    zero = SchedulerConfig.from_manifest({"clientConnection": {"qps": 0, "burst": 0}})
    assert (zero.client_connection_qps, zero.client_connection_burst) == (50.0, 100)


def test_manifest_round_trip_keeps_profiles_and_settings():
    config = parse_config(YAML).replace({"clientConnection.burst": 7})
    manifest = config.to_manifest()
    assert manifest["kind"] == "KubeSchedulerConfiguration" and manifest["clientConnection"]["burst"] == 7
    assert SchedulerConfig.from_manifest(manifest) == config
    assert SchedulerConfig.from_manifest(SchedulerConfig().to_manifest()) == SchedulerConfig()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"clientConnection": {"burst": -1}},
            r"^KubeSchedulerConfiguration\.clientConnection\.burst: -1 is out of range; "
            r"expected an integer in \[0, inf\]$",
        ),
        (
            {"clientConnection": {"qps": "fast"}},
            r"^KubeSchedulerConfiguration\.clientConnection\.qps: 'fast' is not a number in \[0, inf\]$",
        ),
        ({"parallelism": 0}, r"^KubeSchedulerConfiguration\.parallelism: 0 is out of range"),
        (
            {"podInitialBackoffSeconds": 5, "podMaxBackoffSeconds": 2},
            r"^KubeSchedulerConfiguration\.podMaxBackoffSeconds: Invalid value: 2: "
            r"must be greater than or equal to PodInitialBackoffSeconds$",
        ),
        ({"clientConnection": {"rate": 1}}, r"^KubeSchedulerConfiguration\.clientConnection\.rate: unknown field"),
        ({"bindTimeoutSeconds": 600}, r"^KubeSchedulerConfiguration\.bindTimeoutSeconds: unknown field"),
    ],
)
def test_invalid_settings_name_the_field(change, message):
    with pytest.raises(ConfigError, match=message):
        SchedulerConfig.from_manifest(change)


def test_replace_errors_name_the_field_and_where():
    with pytest.raises(ConfigError, match=r"^sweep\.percentageOfNodesToScore: 101 is out of range"):
        SchedulerConfig().replace({"percentageOfNodesToScore": 101}, "sweep")
    with pytest.raises(
        ConfigError, match=r"^KubeSchedulerConfiguration\.profiles: unknown field; allowed: parallelism"
    ):
        SchedulerConfig().replace({"profiles": []})


def test_profile_errors_carry_where():
    with pytest.raises(ConfigError, match=r"^scenario\.yaml\.profiles\[0\]\.plugins\.score\.enabled\[0\]\.name"):
        SchedulerConfig.from_manifest(
            {"profiles": [{"plugins": {"score": {"enabled": [{"name": "Nope"}]}}}]}, "scenario.yaml"
        )
