"""ResourceUsageSummary: per-component CPU percentiles of 10 s samples, as ClusterLoader2 computes them."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest

from kbench.apiserver.cpu import Cores
from kbench.metrics import resource_usage
from kbench.metrics.resource_usage import cpu_samples, nearest_rank, summarize
from kbench.sim.busy import BusyTime


def test_nearest_rank_is_cl2s_percentile():
    """ComputePercentiles: sorted samples' element ceil(n * p / 100) - 1."""
    samples = [10, 1, 9, 2, 8, 3, 7, 4, 6, 5]
    assert [nearest_rank(samples, p) for p in (50, 90, 99, 100)] == [5, 9, 10, 10]
    assert nearest_rank([3.0], 50) == 3.0
    assert math.isnan(nearest_rank([], 50))
    with pytest.raises(ValueError, match="percentile"):
        nearest_rank(samples, 0)


def test_samples_are_mean_busy_cores_per_10_s_window():
    busy = BusyTime()
    busy.add(0.0, 10.0)  # one core for the first window
    for _ in range(4):
        busy.add(10.0, 15.0)  # four cores for half the second window
    busy.add(25.0, 26.0)
    assert list(cpu_samples(busy, 0.0, 30.0)) == pytest.approx([1.0, 2.0, 0.1])
    assert list(cpu_samples(busy, 0.0, 29.0)) == pytest.approx([1.0, 2.0])  # only full windows
    assert cpu_samples(busy, 0.0, 5.0).size == 0
    with pytest.raises(ValueError, match="period"):
        cpu_samples(busy, 0.0, 30.0, period=0)


def test_summary_of_an_instance_kept_busy():
    """Four cores: two busy for 60 s, then all four for 20 s: samples 2,2,2,2,2,2,4,4 cores."""
    cpu = Cores(4)
    for _ in range(2):
        cpu.run(0.0, 60.0)
    for _ in range(4):
        cpu.run(60.0, 20.0)
    row = summarize({"kube-apiserver/0": cpu.busy}, 0.0, 80.0).iloc[0]
    assert row["samples"] == 8
    assert (row["Perc50"], row["Perc90"], row["Perc99"], row["Perc100"]) == pytest.approx((2.0, 4.0, 4.0, 4.0))
    assert row["mean"] == pytest.approx(2.5)


def fake_cluster(now: float):
    instances = [SimpleNamespace(index=i, cpu=Cores(2)) for i in range(2)]
    instances[0].cpu.run(0.0, 20.0)
    scheduler = SimpleNamespace(scheduler=SimpleNamespace(busy=BusyTime()))  # kube-scheduler and its loop
    for start in (0.0, 10.0, 20.0, 30.0):
        scheduler.scheduler.busy.add(start, start + 1.0)  # 4 cycles of 1 s: 0.1 core in every window
    etcd = SimpleNamespace(name="etcd", busy=[BusyTime(), BusyTime()])
    etcd.busy[1].add(0.0, 40.0)  # member 1 busy on one core throughout
    api = SimpleNamespace(instances=instances, etcds={"pods": etcd, "events": etcd})  # one cluster for both
    return SimpleNamespace(engine=SimpleNamespace(now=now), api=api, scheduler=scheduler)


def test_collect_reports_every_apiserver_instance_the_scheduler_and_every_etcd_member():
    table = resource_usage.collect(fake_cluster(40.0)).set_index("component")
    assert list(table.index) == ["kube-apiserver/0", "kube-apiserver/1", "kube-scheduler", "etcd/0", "etcd/1"]
    assert table.loc["etcd/1", ["mean", "Perc50", "Perc100"]].tolist() == pytest.approx([1.0] * 3)
    assert table.loc["etcd/0", "Perc100"] == 0.0
    assert table.loc["kube-apiserver/0", "Perc100"] == pytest.approx(1.0)
    # samples 1, 1, 0, 0 cores: nearest rank p50 is the 2nd of 0, 0, 1, 1, p90 the 4th
    assert (table.loc["kube-apiserver/0", "Perc50"], table.loc["kube-apiserver/0", "Perc90"]) == (0.0, 1.0)
    assert table.loc["kube-apiserver/1", "Perc99"] == 0.0
    assert table.loc["kube-scheduler", ["mean", "Perc50", "Perc100"]].tolist() == pytest.approx([0.1] * 3)


def test_sli_rows_fit_the_run_sli_table():
    from kbench.metrics.slis import COLUMNS

    rows = resource_usage.sli_rows(fake_cluster(40.0))
    assert all(list(r) == COLUMNS for r in rows)
    first = rows[0]
    assert (first["sli"], first["metric"], first["resource"], first["unit"]) == (
        "ResourceUsageSummary",
        "cpu",
        "kube-apiserver/0",
        "cores",
    )
    assert (first["count"], first["max"], first["verdict"], first["passed"]) == (4, pytest.approx(1.0), "no SLO", None)
    assert rows[3]["resource"] == "etcd/0" and rows[3]["verdict"] == "no SLO"


def test_a_run_reports_resource_usage_in_its_slis_and_perfdata(tmp_path):
    import json

    import kbench
    from kbench.metrics.perfdata import write_perfdata

    result = kbench.SCENARIOS["density"](nodes=4, pods_per_node=3, rate=10).run(progress=False)
    usage = result.slis[result.slis["sli"] == "ResourceUsageSummary"].set_index("resource")
    assert {f"kube-apiserver/{i}" for i in range(3)} | {f"etcd/{i}" for i in range(3)} <= set(usage.index)
    assert (usage.loc[[f"etcd/{i}" for i in range(3)], "max"] > 0).all()  # every member applies every write
    assert (usage.loc[[f"kube-apiserver/{i}" for i in range(3)], "max"] > 0).all()  # every instance did work
    assert (usage["verdict"] != "broken").all()
    path = next(p for p in write_perfdata(result.slis, tmp_path) if p.name == "ResourceUsageSummary.json")
    names = {item["labels"]["Name"] for item in json.loads(path.read_text())["dataItems"]}
    assert "kube-apiserver/0" in names
