"""The kubelet's Events (pkg/kubelet/events reasons; messages of kuberuntime_container.go, images/image_manager.go,
prober, kuberuntime_manager.go) through its event recorder (client-go tools/record): reason, type, message, source."""

from __future__ import annotations

import pytest

from kbench.node.kubelet import go_duration
from tests.node.test_kubelet import Node, app

IMAGE = "registry.k8s.io/pause:3.10"


def events(node: Node, name: str) -> list[tuple[str, str, str, int]]:
    """(type, reason, message, count) of the Events about pod ``name``, in the order they were first recorded."""
    found = [e for e in node.plane.objects("events", "default") if e["involvedObject"]["name"] == name]
    found.sort(key=lambda e: (e["firstTimestamp"], e["metadata"]["name"]))
    return [(e["type"], e["reason"], e["message"], e["count"]) for e in found]


def test_a_pod_start_records_pulled_created_started_from_the_kubelet():
    node = Node()
    node.pod("a", [app()])
    node.until(5)
    assert events(node, "a") == [
        ("Normal", "Pulled", f'Container image "{IMAGE}" already present on machine and can be accessed by the pod', 1),
        ("Normal", "Created", "Container created", 1),
        ("Normal", "Started", "Container started", 1),
    ]
    stored = next(e for e in node.plane.objects("events", "default") if e["reason"] == "Started")
    assert stored["source"] == {"component": "kubelet", "host": "node-0"}
    assert stored["involvedObject"]["kind"] == "Pod"


def test_an_image_pull_records_pulling_and_pulled_with_its_times_and_size():
    node = Node({"app:1": {"size": "100M"}})
    node.pod("a", [app(image="app:1")])
    node.until(10)
    found = events(node, "a")
    assert found[0] == ("Normal", "Pulling", 'Pulling image "app:1"', 1)
    took = node.worker("a").pull_seconds
    assert found[1] == (
        "Normal",
        "Pulled",
        f'Successfully pulled image "app:1" in {go_duration(took)} ({go_duration(took)} including waiting). '
        "Image size: 100000000 bytes.",
        1,
    )


def test_crash_loop_records_back_off_and_deletion_records_killing():
    node = Node()
    node.pod("a", [app()], behavior={"exitAfter": 1, "exitCode": 1})
    node.until(40)
    backoff = [e for e in events(node, "a") if e[1] == "BackOff"]
    uid = node.worker("a").uid
    assert backoff and backoff[0][:3] == (
        "Warning",
        "BackOff",
        f"Back-off restarting failed container app in pod a_default({uid})",
    )
    live = Node()
    live.pod("b", [app()])
    live.until(3)
    live.plane.ok("delete", "pods", namespace="default", name="b")
    live.until(6)
    assert ("Normal", "Killing", "Stopping container app", 1) in events(live, "b")


def test_liveness_failures_record_unhealthy_then_killing():
    node = Node()
    probe = {"periodSeconds": 2, "failureThreshold": 3}
    node.pod("a", [app(livenessProbe=probe)], behavior={"livenessFailsAfter": 5})
    node.until(13)
    found = events(node, "a")
    assert ("Warning", "Unhealthy", "Liveness probe failed: ", 3) in found  # one per failed probe, aggregated
    assert ("Normal", "Killing", "Container app failed liveness probe, will be restarted", 1) in found


def test_readiness_failures_before_ready_record_unhealthy():
    node = Node()
    node.pod("a", [app(readinessProbe={"periodSeconds": 1})], behavior={"readyAfter": 3.5})
    node.until(10)
    unhealthy = [e for e in events(node, "a") if e[1] == "Unhealthy"]
    assert unhealthy == [("Warning", "Unhealthy", "Readiness probe failed: ", 4)]  # ticks 0, 1, 2, 3 fail; 4 passes


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.5123, "512ms"),
        (1.5, "1.5s"),
        (123.25, "2m3.25s"),
        (2.0, "2s"),
        (120.0, "2m0s"),
        (3605.0, "1h0m5s"),  # Go prints hours, not 60m5s
        (7384.5, "2h3m4.5s"),
    ],
)
def test_go_duration(seconds, text):
    assert go_duration(seconds) == text
