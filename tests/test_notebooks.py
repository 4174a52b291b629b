"""Every notebook runs top to bottom with small parameters, and is committed without outputs."""

from __future__ import annotations

from pathlib import Path

import nbformat
import papermill
import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
SMALL = {
    "00_quickstart.ipynb": {"nodes": 8, "pods_per_node": 2, "sweep_nodes": [8, 16], "seeds": 2, "jobs": 1},
    "01_etcd_mvcc.ipynb": {"keys": [1000], "members": [1, 3], "clients": [1, 8], "duration": 0.05, "jobs": 1},
    "02_scheduler_scaling.ipynb": {"workloads": ["SchedulingBasic", "TopologySpreading"], "nodes": [100, 300],
                                   "pods": 500, "jobs": 1},
    "03_kube_proxy_modes.ipynb": {"services": [100, 400], "endpoints": [3], "churn": 5.0, "jobs": 1},
    "04_cluster_scaling.ipynb": {"nodes": [10, 20], "pods_per_node": [2], "services": 2, "proxy_nodes": 0,
                                 "degrade_nodes": 20, "jobs": 1},
}
EXPORTS = {
    "00_quickstart.ipynb": ["cluster/latest/report.html", "cluster/latest/report.pdf",
                            "cluster/latest/perfdata/PodStartupLatency_PodStartupLatency.json",
                            "cluster/latest/quickstart_pod_startup.pdf"],
    "04_cluster_scaling.ipynb": ["cluster/*/cluster_perfdata.json", "cluster/*/perfdata/*.json",
                                 "cluster/*/cluster_pod_startup_hist.pdf"],
}
"""What a notebook says it exports, beyond its figures."""


def test_every_notebook_has_small_parameters():
    assert sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")) == sorted(SMALL)


@pytest.mark.parametrize("name", sorted(SMALL))
def test_notebook_is_committed_clean_with_a_parameters_cell(name):
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in code)
    assert any("parameters" in c.metadata.get("tags", []) for c in code)


@pytest.mark.parametrize("name", sorted(SMALL))
def test_notebook_runs(name, tmp_path):
    out = tmp_path / "results"
    papermill.execute_notebook(  # raises PapermillExecutionError on any failing cell
        str(NOTEBOOKS / name), str(tmp_path / name), parameters={**SMALL[name], "out": str(out)},
        cwd=str(tmp_path), kernel_name="python3", progress_bar=False)
    assert list(out.glob("*/latest/*.png")), "the notebook should export its figures"
    if name in EXPORTS:
        assert all(list(out.glob(pattern)) for pattern in EXPORTS[name]), EXPORTS[name]
