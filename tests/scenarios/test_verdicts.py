"""Verdicts never hide failures: a wait that times out, pods that never start and an SLI the run should have
measured but has no sample of all fail the run, in its summary and in the command's exit status."""

from __future__ import annotations

import numpy as np
import pandas as pd

from kbench.cli import main
from kbench.metrics.slis import COLUMNS, RunResult, _row
from kbench.node.probes import ANNOTATION
from kbench.scenarios import library
from kbench.scenarios.spec import Scenario

HEAD = "apiVersion: kbench.io/v1\nkind: Scenario\nmetadata: {name: t}\n"


def test_pods_that_never_start_fail_the_run_and_the_command(tmp_path, capsys):
    result = library.density(nodes=3, pods_per_node=200).run(progress=False)  # 110 pods fit a node
    assert result.counts["pods_created"] == 600 and result.counts["pods_started"] == 330
    assert result.counts["pods_never_started"] == 270
    assert not result.passed
    assert result.problems == [
        "steps[1] waitForPods: timed out after 3600 s; 270 pods not Running: density/pod-0-330, density/pod-0-331, "
        "density/pod-0-332, ...",
        "270 pods never started (still Pending when the run ended): density/pod-0-330, density/pod-0-331, "
        "density/pod-0-332, ...",
    ]
    assert result.verdict() == "FAILED: 2 problems"
    assert result.summary()["sim_slo_passed"] is False and "270 pods never started" in result.summary()["problems"]

    code = main(
        [
            "scenario",
            "run",
            "density",
            "--set",
            "nodes=3",
            "--set",
            "pods_per_node=200",
            "--out",
            str(tmp_path / "out"),
            "--no-progress",
        ]
    )
    out = capsys.readouterr().out
    assert code == 1
    assert "FAILED: steps[1] waitForPods: timed out after 3600 s; 270 pods not Running" in out
    assert "every SLO met" not in out and "FAILED: 2 problems" in out


def test_a_wait_for_load_balancers_that_times_out_fails_the_run():
    sc = Scenario.from_text(
        HEAD + "cluster: {nodes: 2}\nsteps:\n"
        "- createObjects: {template: {apiVersion: v1, kind: Service, metadata: {name: lb},\n"
        "    spec: {type: LoadBalancer, selector: {app: x}, ports: [{port: 80}]}}}\n"
        "- waitForLoadBalancers: {timeout: 20}\n"
    )  # no cloud: nobody provisions it
    result = sc.run(progress=False)
    assert result.problems == [
        "steps[1] waitForLoadBalancers: timed out after 20 s; 1 LoadBalancer Service "
        "without an ingress address: default/lb"
    ]
    assert not result.passed


def test_a_deployment_that_never_gets_ready_fails_the_wait_naming_it():
    sc = library.rolling_update(nodes=2, replicas=2)
    sc.steps = sc.steps[:1]
    template = sc.steps[0].args["template"]["spec"]["template"]
    template["metadata"]["annotations"] = {ANNOTATION: "readyAfter: 100000"}  # Running, never Ready
    sc.add_steps([{"waitForPods": {"namespace": "apps", "timeout": 30}}])
    result = sc.run(progress=False)
    assert len(result.problems) == 1 and result.problems[0].startswith(
        "steps[1] waitForPods: timed out after 30 s; 2 controllers short of ready replicas: deployment apps/web, "
        "replicaset apps/web-"
    )
    assert result.counts["pods_never_started"] == 0 and not result.passed


def test_a_run_that_meets_its_slos_passes_and_says_so(capsys, tmp_path):
    result = library.density(nodes=3, pods_per_node=2).run(progress=False)
    assert result.passed and not result.problems and result.counts["pods_never_started"] == 0
    verdicts = result.slis.set_index(["sli", "metric"])["verdict"]
    assert verdicts["NetworkProgrammingLatency", "network_programming_latency"] == "not measured"  # no Service
    assert verdicts["SchedulingThroughput", "pods_per_second"] == "no SLO"
    assert (
        main(
            [
                "scenario",
                "run",
                "density",
                "--set",
                "nodes=3",
                "--set",
                "pods_per_node=2",
                "--out",
                str(tmp_path / "o"),
                "--no-progress",
            ]
        )
        == 0
    )
    assert "every SLO met, every wait satisfied" in capsys.readouterr().out


def test_an_expected_sli_without_data_is_a_failure_not_a_pass():
    rows = [
        _row("PodStartupLatency", "pod_startup", [], 5.0),  # pods were created: none started
        _row("NetworkProgrammingLatency", "network_programming_latency", [], 30.0, expected=False),
        _row("APIResponsiveness", "request_latency", [0.1, 0.2], 1.0, verb="GET", resource="pods", scope="resource"),
    ]
    assert [r["verdict"] for r in rows] == ["no data", "not measured", "met"]
    assert [r["passed"] for r in rows] == [False, None, True]
    result = RunResult(pd.DataFrame(rows, columns=COLUMNS), pd.DataFrame(), 1.0, 1.0, 1)
    assert not result.passed
    assert result.failing() == ["PodStartupLatency/pod_startup (no data)"]
    assert result.verdict() == "FAILED: 1 SLI without data"
    broken = _row("PodStartupLatency", "pod_startup", [9.0], 5.0)
    assert (broken["verdict"], broken["passed"]) == ("broken", False) and np.isclose(broken["p99"], 9.0)


def test_network_programming_is_expected_once_services_have_endpoints():
    result = library.load(nodes=4, deployments=2, replicas=2, churn=0, proxy_nodes=2).run(progress=False)
    npl = ("NetworkProgrammingLatency", "network_programming_latency")
    row = result.slis.set_index(["sli", "metric"]).loc[npl]
    assert row["verdict"] == "met" and row["count"] > 0
    # the same run with kube-proxy's samples lost is a failure, not a pass
    for proxy in result.cluster.proxies:
        proxy.latencies.clear()
    from kbench.metrics.slis import collect

    again = collect(result.cluster, 1.0)
    assert again.slis.set_index(["sli", "metric"]).loc[npl, "verdict"] == "no data"
    assert not again.passed


def test_a_sweep_whose_point_leaves_pods_pending_says_so_and_exits_1(tmp_path, capsys):
    code = main(
        [
            "sweep",
            "cluster",
            "--param",
            "nodes=2",
            "--param",
            "pods_per_node=200",
            "--param",
            "services=0",
            "--param",
            "proxy_nodes=0",
            "--out",
            str(tmp_path),
            "--jobs",
            "1",
            "--no-progress",
        ]
    )
    err = capsys.readouterr().err
    assert code == 1
    assert "FAILED point" in err and "180 pods never started (still Pending when the run ended)" in err
    table = pd.read_parquet(next((tmp_path / "cluster").glob("2*/results.parquet")))
    assert not table["sim_slo_passed"].any() and (table["sim_pods_never_started"] == 180).all()
