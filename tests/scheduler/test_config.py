"""KubeSchedulerConfiguration parsing, defaults and errors that name the field."""

from __future__ import annotations

import pytest

from kbench.scheduler import ConfigError, parse_config

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
