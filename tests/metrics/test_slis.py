"""SLI arithmetic, SLO verdicts and the PerfData format."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from kbench.metrics.perfdata import perfdata, write_perfdata
from kbench.metrics.slis import COLUMNS, RunResult, _row, throughput_samples


def test_throughput_counts_bindings_per_five_second_window():
    times = [0.0, 1.0, 2.0, 6.0, 7.0, 12.0]
    assert list(throughput_samples(times)) == pytest.approx([3 / 5, 2 / 5, 1 / 5])
    assert throughput_samples([1.0]).size == 0


def test_row_percentiles_and_verdicts():
    row = _row("PodStartupLatency", "pod_startup", np.linspace(0, 10, 101), threshold=5.0)
    assert row["p50"] == pytest.approx(5.0) and row["p99"] == pytest.approx(9.9) and row["passed"] is False
    assert _row("X", "m", [1.0, 2.0], threshold=5.0)["passed"] is True
    assert _row("X", "m", [], threshold=5.0)["passed"] is False and np.isnan(_row("X", "m", [])["p99"])  # no data
    assert _row("X", "m", [], threshold=5.0, expected=False)["passed"] is None  # not measured


def _result(rows):
    return RunResult(pd.DataFrame(rows, columns=COLUMNS), pd.DataFrame(), 10.0, 1.0, 100)


def test_failing_lists_the_worst_breach_first():
    result = _result(
        [
            _row("PodStartupLatency", "pod_startup", [6.0], 5.0),
            _row("APIResponsiveness", "request_latency", [3.0], 1.0, verb="LIST", resource="pods", scope="resource"),
            _row("NetworkProgrammingLatency", "network_programming_latency", [1.0], 30.0),
        ]
    )
    assert not result.passed
    assert result.failing() == ["APIResponsiveness/request_latency LIST pods resource", "PodStartupLatency/pod_startup"]


def test_perfdata_is_clusterloader2_shaped(tmp_path):
    slis = pd.DataFrame(
        [
            _row("PodStartupLatency", "pod_startup", [1.0, 2.0], 5.0),
            _row("APIResponsiveness", "request_latency", [0.01], 1.0, verb="GET", resource="pods", scope="resource"),
            _row("SchedulingThroughput", "pods_per_second", [10.0, 20.0], unit="pods/s"),
        ],
        columns=COLUMNS,
    )
    docs = perfdata(slis)
    item = docs["PodStartupLatency"]["dataItems"][0]
    assert docs["PodStartupLatency"]["version"] == "v1"
    assert item["unit"] == "ms" and item["labels"] == {"Metric": "pod_startup"}
    assert item["data"]["Perc50"] == pytest.approx(1500.0)
    api = docs["APIResponsiveness"]["dataItems"][0]
    assert api["labels"] == {
        "Metric": "request_latency",
        "Verb": "GET",
        "Resource": "pods",
        "Scope": "resource",
        "Count": "1",
    }
    assert docs["SchedulingThroughput"]["dataItems"][0]["data"]["Max"] == 20.0
    files = write_perfdata(slis, tmp_path, "run1")
    assert sorted(f.name for f in files) == [
        "APIResponsivenessPrometheus_run1.json",
        "PodStartupLatency_PodStartupLatency_run1.json",
        "SchedulingThroughput_run1.json",
    ]
    assert json.loads(files[0].read_text())["version"] == "v1"
