"""kube-scheduler's Events (pkg/scheduler/schedule_one.go): Scheduled on each binding, FailedScheduling with the
FitError's message, through its own event client."""

from __future__ import annotations

from collections import Counter

import kbench
from kbench.apiserver import APIServer
from kbench.client import Client
from kbench.profiles import load_profile
from kbench.scheduler.component import KubeScheduler, truncate_message
from kbench.sim import Engine, Streams


def test_density_run_records_one_scheduled_event_per_pod():
    result = kbench.SCENARIOS["density"](nodes=4, pods_per_node=5, rate=20).run()
    api = result.cluster.api
    events = [obj for obj, _, _ in api.caches["events"].objects.values()]
    scheduled = [e for e in events if e["reason"] == "Scheduled"]
    pods = {key: obj for key, (obj, _, _) in api.caches["pods"].objects.items()}
    assert len(pods) == 20
    assert Counter(f"{e['involvedObject']['namespace']}/{e['involvedObject']['name']}" for e in scheduled) == {
        key: 1 for key in pods
    }
    for e in scheduled:
        ns, name = e["involvedObject"]["namespace"], e["involvedObject"]["name"]
        assert e["message"] == f"Successfully assigned {ns}/{name} to {pods[f'{ns}/{name}']['spec']['nodeName']}"
        assert (e["type"], e["action"], e["reportingComponent"]) == ("Normal", "Binding", "default-scheduler")


def test_unschedulable_pod_records_failed_scheduling_with_the_fit_error():
    engine = Engine()
    api = APIServer(engine)
    admin = Client(api, "admin", ("system:masters",), qps=1e6, burst=10**6)
    scheduler = KubeScheduler(api, load_profile(), Streams(0))
    admin.request(
        "create",
        "serviceaccounts",
        lambda *a: None,
        namespace="default",
        body={"metadata": {"name": "default", "namespace": "default"}},
    )
    engine.run(until=1.0)
    admin.request(
        "create",
        "nodes",
        lambda *a: None,
        body={"metadata": {"name": "n0"}, "status": {"allocatable": {"cpu": "1", "memory": "1Gi", "pods": "10"}}},
    )
    big = {"containers": [{"name": "c", "image": "pause", "resources": {"requests": {"cpu": "4"}}}]}
    admin.request(
        "create",
        "pods",
        lambda *a: None,
        namespace="default",
        body={"metadata": {"name": "big", "namespace": "default"}, "spec": big},
    )
    engine.run(until=5.0)
    (event,) = [obj for obj, _, _ in api.caches["events"].objects.values()]
    condition = next(c for c in api.caches["pods"].get("default/big")[0]["status"]["conditions"])
    assert (event["reason"], event["type"], event["action"]) == ("FailedScheduling", "Warning", "Scheduling")
    assert event["message"] == condition["message"] and event["message"].startswith("0/1 nodes are available")
    # its writes took tokens from the event client's bucket, not the scheduler's
    assert scheduler.recorder.client is not scheduler.client and scheduler.recorder.written == 1


def test_truncate_message_keeps_1024_characters():
    assert truncate_message("x" * 1024) == "x" * 1024
    cut = truncate_message("y" * 2000)
    assert len(cut) == 1024 and cut.endswith("y ...")
