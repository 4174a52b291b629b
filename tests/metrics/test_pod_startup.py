"""PodStartupLatency as ClusterLoader2 computes it (perf-tests clusterloader2 pod_startup_latency.go, before and
after kubernetes/perf-tests#3891) beside kbench's exact phases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from kbench.apiserver.objects import copy_object, seconds, timestamp
from kbench.metrics.pod_startup import CL2_METHODS, PodStartupWatcher, cl2_percentiles
from kbench.metrics.slis import _row
from tests.controlplane.helpers import Plane


def test_cl2_percentiles_are_nearest_rank():
    """NewLatencyMetric: latencies[ceil(n * q / 100) - 1] of the sorted latencies."""
    assert cl2_percentiles(np.arange(1.0, 101.0)) == (50.0, 90.0, 99.0)
    assert cl2_percentiles([3.0, 1.0, 2.0]) == (2.0, 3.0, 3.0)
    assert cl2_percentiles([7.0]) == (7.0, 7.0, 7.0)
    assert cl2_percentiles([]) == (0.0, 0.0, 0.0)
    row = _row("PodStartupLatency", "cl2_pod_startup", np.arange(1.0, 11.0), percentiles=cl2_percentiles)
    assert (row["p50"], row["p90"], row["p99"]) == (5.0, 9.0, 10.0)  # NumPy would interpolate 5.5, 9.1, 9.91


def _at(plane: Plane, t: float) -> None:
    plane.run(t)


def _pod_story(plane: Plane, watcher: PodStartupWatcher) -> dict:
    """A pod created at 10.6 s, bound at 11.3 s, its container started at 12.7 s and reported Running at 13.2 s."""
    _at(plane, 10.6)
    pod = plane.ok("create", "pods", namespace="default", body={"metadata": {"name": "p"}, "spec": {"containers": []}})
    _at(plane, 11.3)
    body = copy_object(pod)
    body["spec"] = {**body["spec"], "nodeName": "node-0", "containers": [{"name": "c", "image": "x"}]}
    pod = plane.ok("update", "pods", body=body)
    watcher.scheduled("default/p", plane.engine.now)
    _at(plane, 13.2)
    status = {
        "phase": "Running",
        "containerStatuses": [{"name": "c", "state": {"running": {"startedAt": timestamp(12.7)}}}],
    }
    watcher.running("default/p", 12.7, pulls=0.0)
    pod = plane.ok("update", "pods", subresource="status", body={**pod, "status": status})
    _at(plane, 15.0)
    return pod


def test_cl2_and_legacy_cl2_phases_beside_the_exact_ones():
    plane = Plane()
    watcher = PodStartupWatcher(plane.api)
    pod = _pod_story(plane, watcher)
    times = watcher.pods["default/p"]
    created = seconds(pod["metadata"]["creationTimestamp"])
    assert created == math.floor(created) and 10.0 <= created <= 10.6  # metav1.Time: whole seconds

    now = watcher.cl2_phases("cl2")["default/p"]  # perf-tests#3891: CL2's receive times
    assert now["create"] == times.create and now["schedule"] == times.seen_bound
    assert now["run"] == now["watch"] == times.seen_running
    assert 10.6 <= now["create"] < now["schedule"] < 11.6 and 13.2 <= now["run"] < 13.6

    legacy = watcher.cl2_phases("cl2_legacy")["default/p"]
    assert legacy["create"] == created and legacy["run"] == 12.0  # startedAt truncated to the second
    assert legacy["schedule"] == pytest.approx(times.schedule, abs=1e-6) and legacy["watch"] == times.seen_running

    exact = watcher.table().iloc[0]
    new, old = watcher.cl2_table("cl2").iloc[0], watcher.cl2_table("cl2_legacy").iloc[0]
    assert list(watcher.cl2_table("cl2").columns[1:]) == list(CL2_METHODS["cl2"])
    assert new["run_to_watch"] == 0.0 and new["create_to_run"] == new["pod_startup"]
    assert old["schedule_to_run"] == pytest.approx(12.0 - times.schedule, abs=1e-6)  # 0.7 s, read as less
    assert old["pod_startup"] == pytest.approx(times.seen_running - created)
    assert exact["schedule_to_run"] == pytest.approx(12.7 - times.schedule)
    assert exact["pod_startup"] == pytest.approx(new["pod_startup"])
    assert old["pod_startup"] > new["pod_startup"]  # legacy's clock starts at the whole second before creation


def test_legacy_cl2_records_only_pods_seen_running_and_run_needs_a_running_container():
    plane = Plane()
    watcher = PodStartupWatcher(plane.api)
    plane.ok("create", "pods", namespace="default", body={"metadata": {"name": "waiting"}, "spec": {"containers": []}})
    pod = plane.ok("create", "pods", namespace="default", body={"metadata": {"name": "r"}, "spec": {"containers": []}})
    status = {"phase": "Running", "containerStatuses": [{"name": "c", "state": {"waiting": {}}}]}
    plane.ok("update", "pods", subresource="status", body={**pod, "status": status})
    plane.run(plane.engine.now + 1)
    assert set(watcher.cl2_phases("cl2_legacy")) == {"default/r"}
    assert "run" not in watcher.cl2_phases("cl2_legacy")["default/r"]  # "reported to be running, but none ..."
    assert set(watcher.cl2_phases("cl2")) == {"default/waiting", "default/r"}
    table = watcher.cl2_table("cl2_legacy")
    assert math.isnan(table.iloc[0]["schedule_to_run"]) and not math.isnan(table.iloc[0]["pod_startup"])


def test_unknown_method_is_refused_naming_the_allowed_ones():
    watcher = PodStartupWatcher(Plane().api)
    with pytest.raises(ValueError, match=r"^method: unknown 'cl3'; allowed: cl2, cl2_legacy$"):
        watcher.cl2_table("cl3")
