"""Every notebook runs top to bottom with small parameters, and is committed without outputs."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import nbformat
import papermill
import pytest

from tests.gpushare.helpers import write_openb

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
SMALL = {
    "00_quickstart.ipynb": {"nodes": 8, "pods_per_node": 2, "sweep_nodes": [8, 16], "seeds": 2, "jobs": 1},
    "01_etcd_mvcc.ipynb": {"keys": [1000], "members": [1, 3], "clients": [1, 8], "duration": 0.05, "jobs": 1},
    "02_scheduler_scaling.ipynb": {
        "workloads": ["SchedulingBasic", "TopologySpreading"],
        "nodes": [100, 300],
        "pods": 500,
        "jobs": 1,
    },
    "03_kube_proxy_modes.ipynb": {"services": [100, 400], "endpoints": [3], "churn": 5.0, "jobs": 1},
    "04_cluster_scaling.ipynb": {
        "nodes": [10, 20],
        "pods_per_node": [2],
        "services": 2,
        "proxy_nodes": 0,
        "degrade_nodes": 20,
        "qps_nodes": 10,
        "qps_services": 20,
        "jobs": 1,
    },
    "05_gpu_fragmentation.ipynb": {
        "traces": ["gpushare100"],  # tests.gpushare.helpers' tiny trace that reaches 130%
        "policies": ["BestFit", "FGD"],
        "tune_seeds": [42, 43],
        "jobs": 1,
    },
    "05_validation.ipynb": {
        "experiments": ["density-100-v1.0-10pct"],
        "cores": [1, 8],
        "cores_nodes": 10,
        "cores_pods_per_node": 5,
        "jobs": 1,
    },
}
EXPORTS = {
    "00_quickstart.ipynb": [
        "cluster/latest/report.html",
        "cluster/latest/report.pdf",
        "scenario/quickstart/PodStartupLatency_PodStartupLatency.json",
        "cluster/latest/quickstart_pod_startup.pdf",
    ],
    "04_cluster_scaling.ipynb": [
        "cluster/*/cluster_perfdata.json",
        "cluster/kcm-qps/results.parquet",
        "scenario/density/*.json",
        "scenario/density/density_pod_startup_hist.pdf",
    ],
    "05_validation.ipynb": [
        "validation/latest/validation.csv",
        "validation/latest/validation.md",
        "validation/latest/validation_cores.pdf",
    ],
}
"""What a notebook says it exports, beyond its figures."""
NOT_IN_A_SWEEP = ["perfdata", "PodStartupLatency*", "*hist*"]
"""Files of a single scenario run, which do not belong in a sweep's run folder."""
FINDINGS = re.compile(r"\b(grows?|grew|rises|falls|drops|dominated|dominates|barely|saturates|faster|slower)\b", re.I)
"""Words that state a finding: a notebook's prose must not (its code prints findings from the run)."""


def test_every_notebook_has_small_parameters():
    assert sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")) == sorted(SMALL)


def test_notebooks_install_ipywidgets_so_progress_bars_render():
    extras = tomllib.loads((NOTEBOOKS.parent / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    for extra in ("notebooks", "test"):
        assert any(re.match(r"ipywidgets\b", requirement) for requirement in extras[extra]), extra


@pytest.mark.parametrize("name", sorted(SMALL))
def test_notebook_is_committed_clean_with_a_parameters_cell(name):
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in code)
    assert any("parameters" in c.metadata.get("tags", []) for c in code)


@pytest.mark.parametrize("name", sorted(SMALL))
def test_notebook_prose_states_no_finding_of_its_own(name):
    prose = [c.source for c in nbformat.read(NOTEBOOKS / name, as_version=4).cells if c.cell_type == "markdown"]
    assert not [match.group(0) for text in prose for match in FINDINGS.finditer(text)]


@pytest.mark.parametrize("name", sorted(SMALL))
def test_notebook_runs(name, tmp_path, monkeypatch):
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel draws inline, as in JupyterLab (dev.py sets Agg)
    monkeypatch.setenv("KBENCH_OPENB_DIR", str(write_openb(tmp_path)))  # 05_gpu_fragmentation's traces, tiny
    out = tmp_path / "results"
    papermill.execute_notebook(  # raises PapermillExecutionError on any failing cell
        str(NOTEBOOKS / name),
        str(tmp_path / name),
        parameters={**SMALL[name], "out": str(out)},
        cwd=str(tmp_path),
        kernel_name="python3",
        progress_bar=False,
    )
    assert list(out.glob("*/latest/*.png")), "the notebook should export its figures"
    if name in EXPORTS:
        assert all(list(out.glob(pattern)) for pattern in EXPORTS[name]), EXPORTS[name]
    sweeps = [folder for folder in out.glob("*/*") if (folder / "meta.json").exists()]
    assert sweeps and not [f for folder in sweeps for pattern in NOT_IN_A_SWEEP for f in folder.glob(pattern)]
    outputs = [
        o for c in nbformat.read(tmp_path / name, as_version=4).cells if c.cell_type == "code" for o in c.outputs
    ]
    images = [o["data"]["image/png"] for o in outputs if "image/png" in o.get("data", {})]
    assert images, "the notebook shows its figures"
    assert len(images) == len(set(images)), "each figure is shown once"
    text = "".join(o.get("text", "") for o in outputs)
    assert "IProgress not found" not in text  # tqdm found ipywidgets
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in outputs)
