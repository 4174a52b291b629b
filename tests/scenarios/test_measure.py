"""The scenario's ``measure:`` section: ClusterLoader2's PodStartupLatency and SchedulingThroughput count only the
pods their ``labelSelector`` matches (perf-tests clusterloader2/testing/density/config.yaml: PodStartupLatency on
``group = latency``, SchedulingThroughput on ``group = saturation``); without it every pod counts."""

from __future__ import annotations

import pytest
import yaml

from kbench.metrics.slis import collect
from kbench.scenarios.spec import Scenario, ScenarioError

HEAD = "apiVersion: kbench.io/v1\nkind: Scenario\nmetadata: {name: groups}\n"
TWO_GROUPS = (
    HEAD + "cluster: {nodes: 3}\n"
    "steps:\n"
    "- createPods: {count: 12, rate: 20, namespace: density, template: {apiVersion: v1, kind: Pod,\n"
    "    metadata: {labels: {group: saturation}}, spec: {containers: [{name: c, image: pause}]}}}\n"
    "- waitForPods: {timeout: 120}\n"
    "- createPods: {count: 5, rate: 5, namespace: density, template: {apiVersion: v1, kind: Pod,\n"
    "    metadata: {labels: {group: latency}}, spec: {containers: [{name: c, image: pause}]}}}\n"
    "- waitForPods: {timeout: 120}\n"
    "drain: 5\n"
)
MEASURE = (
    "measure:\n"
    '  podStartupLatency: {labelSelector: "group = latency"}\n'
    '  schedulingThroughput: {labelSelector: "group = saturation"}\n'
)


def _startup(result, metric: str) -> int:
    s = result.slis
    return int(s[(s.sli == "PodStartupLatency") & (s.metric == metric)]["count"].iloc[0])


@pytest.fixture(scope="module")
def measured():
    """The two-group scenario run with the CL2 density selectors (one run shared by the module's tests)."""
    return Scenario.from_text(TWO_GROUPS + MEASURE, "two-groups.yaml").run(progress=False)


def test_startup_counts_only_the_latency_pods_throughput_only_the_saturation_pods(measured):
    assert measured.counts["pods_created"] == 17 and measured.counts["pods_started"] == 17
    assert measured.counts["pods_measured_startup"] == 5
    assert len(measured.pod_startup) == 5 and set(measured.pod_startup["pod"]) == {
        f"density/pod-2-{i}" for i in range(5)
    }
    for metric in ("pod_startup", "cl2_pod_startup", "cl2_legacy_pod_startup", "cl2_create_to_schedule"):
        assert _startup(measured, metric) == 5, metric
    # the scheduler bound 12 saturation pods; the 5 latency pods are not throughput samples
    assert measured.counts["pods_measured_throughput"] == 12 and measured.counts["pods_bound"] == 17


def test_throughput_samples_come_from_the_selected_pods_only(measured):
    cluster = measured.cluster
    every = collect(cluster, 0.0)
    latency = collect(
        cluster,
        0.0,
        measure=Scenario.from_text(
            TWO_GROUPS + "measure: {schedulingThroughput: {labelSelector: {matchLabels: {group: latency}}}}"
        ).measure,
    )
    assert every.counts["pods_measured_throughput"] == 17 and latency.counts["pods_measured_throughput"] == 5

    def thr(r):
        row = r.slis[r.slis.sli == "SchedulingThroughput"].iloc[0]
        return row

    # 5 latency pods created at 5/s: about 1 pod/s in each 5 s window, far below the saturation burst's peak
    assert thr(latency)["max"] <= 1.2 < thr(measured)["max"]
    assert thr(every)["max"] >= thr(measured)["max"]


def test_without_measure_every_pod_counts_and_never_started_still_considers_every_pod(measured):
    every = collect(measured.cluster, 0.0)
    assert _startup(every, "pod_startup") == 17 and _startup(every, "cl2_pod_startup") == 17
    assert every.counts["pods_measured_startup"] == 17

    # a selector that matches no pod: no startup sample, but an unschedulable pod outside it is still a problem
    sc = Scenario.from_text(
        HEAD + "cluster: {nodes: 1}\nsteps:\n"
        "- createPods: {count: 1, template: {apiVersion: v1, kind: Pod, metadata: {labels: {group: big}},\n"
        "    spec: {containers: [{name: c, image: pause, resources: {requests: {cpu: '1000'}}}]}}}\n"
        "- wait: {seconds: 5}\n"
        'drain: 1\nmeasure: {podStartupLatency: {labelSelector: "group in (latency)"}}\n'
    )
    result = sc.run(progress=False)
    assert _startup(result, "pod_startup") == 0
    assert result.counts["pods_never_started"] == 1
    assert any("1 pod never started" in p and "default/pod-0-0" in p for p in result.problems)


@pytest.mark.parametrize(
    ("measure", "message"),
    [
        ("measure: [group]", "measure: expected a mapping of measurements (podStartupLatency, schedulingThroughput)"),
        (
            "measure: {podStartup: {labelSelector: a}}",
            "measure.podStartup: unknown measurement; allowed: podStartupLatency, schedulingThroughput",
        ),
        (
            "measure: {podStartupLatency: {selector: a}}",
            "measure.podStartupLatency.selector: unknown field; allowed: labelSelector, threshold",
        ),
        (
            "measure: {schedulingThroughput: {threshold: 5s}}",
            "measure.schedulingThroughput.threshold: unknown field; allowed: labelSelector",
        ),
        ("measure: {podStartupLatency: {threshold: 5}}", "measure.podStartupLatency.threshold: 5 is not a duration"),
        (
            "measure: {podStartupLatency: {threshold: 0s}}",
            "measure.podStartupLatency.threshold: expected a duration > 0",
        ),
        ("measure: {podStartupLatency: {labelSelector: 3}}", "measure.podStartupLatency.labelSelector: expected a"),
        (
            "measure: {schedulingThroughput: {labelSelector: 'group in latency'}}",
            "measure.schedulingThroughput.labelSelector: 'group in latency' is not a valid selector",
        ),
        (
            "measure: {podStartupLatency: {labelSelector: '=latency'}}",
            "measure.podStartupLatency.labelSelector: key '': name part must be 1-63 characters",
        ),
        (
            "measure: {podStartupLatency: {labelSelector: 'group > 3'}}",
            "measure.podStartupLatency.labelSelector: key 'group > 3': name part",
        ),
        (
            "measure: {podStartupLatency: {labelSelector: 'group = late ncy'}}",
            "measure.podStartupLatency.labelSelector: value 'late ncy' of 'group': a valid label must be",
        ),
        (
            "measure: {podStartupLatency: {labelSelector: {matchLabel: {group: latency}}}}",
            "measure.podStartupLatency.labelSelector.matchLabel: unknown field; allowed: matchLabels, matchExpressions",
        ),
        (
            "measure: {podStartupLatency: {labelSelector: {matchExpressions: [{key: group, operator: Is}]}}}",
            "measure.podStartupLatency.labelSelector.matchExpressions[0].operator: must be one of In, NotIn, Exists",
        ),
    ],
)
def test_bad_measure_sections_are_refused_naming_the_field(measure, message):
    with pytest.raises(ScenarioError) as err:
        Scenario.from_text(HEAD + "cluster: {nodes: 1}\nsteps: []\n" + measure, "bad.yaml")
    assert f"bad.yaml: document 0: {message}" in str(err.value)


def test_measure_round_trips_through_show():
    text = TWO_GROUPS + (
        "measure:\n  podStartupLatency: {labelSelector: 'group = latency', threshold: 1m30s}\n"
        "  schedulingThroughput:\n"
        "    labelSelector: {matchExpressions: [{key: group, operator: In, values: [saturation]}]}\n"
    )
    sc = Scenario.from_text(text)
    shown = yaml.safe_dump_all(sc.documents())
    again = Scenario.from_text(shown)
    assert again.measure == sc.measure
    assert again.to_dict()["measure"] == {
        "podStartupLatency": {"labelSelector": "group = latency", "threshold": "90s"},
        "schedulingThroughput": {
            "labelSelector": {"matchExpressions": [{"key": "group", "operator": "In", "values": ["saturation"]}]}
        },
    }
    assert again.measure["podStartupLatency"].matches({"group": "latency"})
    assert not again.measure["podStartupLatency"].matches({"group": "saturation"})
    assert "measure" not in Scenario.from_text(TWO_GROUPS).to_dict()  # absent: every pod, as before
    everyone = Scenario.from_text(TWO_GROUPS + "measure: {podStartupLatency: {}}")  # CL2's defaults: every pod
    assert everyone.measure["podStartupLatency"].matches({}) and everyone.to_dict()["measure"] == {
        "podStartupLatency": {}
    }


def test_threshold_is_the_pod_startup_slo(measured):
    def row(result):
        s = result.slis
        return s[(s.sli == "PodStartupLatency") & (s.metric == "pod_startup")].iloc[0]

    assert row(measured)["threshold"] == 5.0  # CL2's default
    tiny = Scenario.from_text(TWO_GROUPS + "measure: {podStartupLatency: {threshold: 1ms}}").measure
    strict = collect(measured.cluster, 0.0, measure=tiny)
    assert row(strict)["threshold"] == 0.001 and row(strict)["verdict"] == "broken" and not strict.passed
    assert row(strict)["count"] == 17  # no labelSelector: every pod


def test_a_set_selector_of_several_values_is_accepted():
    """labels.Parse's 'key in (a,b)' (the commas inside the parentheses are not term separators)."""
    sc = Scenario.from_text(TWO_GROUPS + "measure: {podStartupLatency: {labelSelector: 'group notin (a, b),x=y'}}")
    m = sc.measure["podStartupLatency"]
    assert m.matches({"group": "latency", "x": "y"}) and not m.matches({"group": "b", "x": "y"})
    both = Scenario.from_text(TWO_GROUPS + "measure: {podStartupLatency: {labelSelector: 'group in (a,b)'}}")
    assert both.measure["podStartupLatency"].matches({"group": "b"})
