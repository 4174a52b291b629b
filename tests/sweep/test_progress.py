"""Progress inside running points: a point's simulated seconds reach the sweep's bar from any executor."""

from __future__ import annotations

import pytest

from kbench.sweep import progress, run_sweep

TINY = {
    "nodes": [4, 6],
    "pods_per_node": [1],
    "churn": [50.0],
    "services": [1],
    "proxy_nodes": [2],
    "degrade": ["none"],
    "profile": ["default"],
}


class _Bar:
    def __init__(self) -> None:
        self.postfix = []

    def set_postfix_str(self, text: str, refresh: bool = True) -> None:
        self.postfix.append(text)


def test_report_sends_at_most_one_message_a_second_about_the_running_point(monkeypatch):
    sent = []
    clock = iter([100.0, 100.5, 101.2, 101.3])  # wall seconds of the four reports below
    monkeypatch.setattr(progress.time, "monotonic", lambda: next(clock))
    progress.set_sink(sent.append)
    try:
        progress.report(1.0)  # no point running: nothing to say
        with progress.running("p1"):
            for sim in (10.0, 20.0, 30.0, 40.0):
                progress.report(sim)
    finally:
        progress.set_sink(None)
    assert sent == [("p1", 10.0), ("p1", 30.0)]


def test_board_shows_each_running_point_until_it_is_stored():
    bar = _Bar()
    names = progress.labels([{"nodes": 4, "seed": 1}, {"nodes": 6, "seed": 1}], ["a", "b"])
    assert names == {"a": "nodes=4", "b": "nodes=6"}
    board = progress.Board(bar, names)
    board.update(("a", 120.0))
    board.update(("b", 30.0))
    board.update(("zz", 1.0))  # not this sweep's point
    board.done("a")
    assert bar.postfix == ["nodes=4: 120 sim s", "nodes=4: 120 sim s; nodes=6: 30 sim s", "nodes=6: 30 sim s"]


@pytest.mark.parametrize("jobs", [1, 2])
def test_cluster_points_report_simulated_seconds_from_workers(tmp_path, monkeypatch, jobs):
    seen = []
    original = progress.Board.update
    monkeypatch.setattr(progress.Board, "update", lambda self, message: (seen.append(message), original(self, message)))
    table, _, _ = run_sweep("cluster", params=TINY, out=tmp_path, jobs=jobs, progress=False)
    assert {pid for pid, _ in seen} == set(table["point_id"])  # every point spoke, from its worker
    assert all(0 < sim <= 3600 for _, sim in seen)


def test_cluster_points_report_simulated_seconds_from_a_dask_cluster(tmp_path, monkeypatch):
    from distributed import Client, LocalCluster

    seen = []
    original = progress.Board.update
    monkeypatch.setattr(progress.Board, "update", lambda self, message: (seen.append(message), original(self, message)))
    with (
        LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        table, _, _ = run_sweep("cluster", params={**TINY, "nodes": [4]}, out=tmp_path, dask=client, progress=False)
    assert [pid for pid, _ in seen][:1] == table["point_id"].tolist()  # through Dask's event topic
