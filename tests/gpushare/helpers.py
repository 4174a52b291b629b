"""A tiny openb directory for tests that must not depend on the shared trace files being present."""

from __future__ import annotations

from pathlib import Path

NODES = "sn,cpu_milli,memory_mib,gpu,model\nnode-a,64000,262144,2,A\nnode-b,32000,131072,1,B\n"
"""Two nodes, 3 GPUs (3,000 milli-GPU), 96 CPUs."""
PODS = (
    "name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec\n"
    "pod-whole,8000,16384,1,1000,\n"
    "pod-half,4000,8192,1,500,\n"
    "pod-cpu,12000,4096,0,0,\n"
)
"""1,500 milli-GPU: at ratio 0.5 exactly the target, so no pod is removed or cloned and every pod fits."""
SMALL = "name,cpu_milli,memory_mib,num_gpu,gpu_milli\npod-tenth,1000,1024,1,100\npod-cpu,500,1024,0,0\n"
"""Tenth-GPU pods: tuned up by clones to exactly 130% of the 3 GPUs (39 GPU pods, 30 of them fit)."""


def write_openb(parent: Path) -> Path:
    """``parent/openb``: the GPU node list, :data:`PODS` as ``tiny`` and ``default``, :data:`SMALL` as
    ``gpushare100``."""
    folder = parent / "openb"
    folder.mkdir()
    (folder / "openb_node_list_gpu_node.csv").write_text(NODES)
    for name, pods in (("tiny", PODS), ("default", PODS), ("gpushare100", SMALL)):
        (folder / f"openb_pod_list_{name}.csv").write_text(pods)
    return folder
