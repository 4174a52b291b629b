"""The GPU-sharing cluster of the FGD paper's simulator, as struct-of-arrays.

Resources as the public simulator of "Beware of Fragmentation: Scheduling GPU-Sharing Workloads with
Fragmentation Gradient Descent" (Weng et al., USENIX ATC '23; repository ``hkust-adsl/kubernetes-scheduler-simulator``,
commit 8f3d641) models them with its Open-Gpu-Share plugin: a node has CPU, memory and ``gpus`` GPUs of one model,
each with ``MILLI`` milli-GPU; a pod asks for CPU, memory, ``gpus`` GPUs of ``milli`` milli-GPU each (a sharing pod:
one GPU, ``milli`` < 1000; an n-GPU pod: n whole GPUs) and optionally a set of GPU models (``models``, ``|``-separated
as the trace's ``gpu_spec`` and the repository's ``GpuType``).

Constants are the repository's (``pkg/type/open-gpu-share/utils/const.go``, ``pkg/type/const.go``); nodes are the
paper's cluster, the 1,213 GPU nodes of ``openb_node_list_gpu_node.csv``, with the ``pods: 1001`` allocatable of
its ``data/node_yaml/openb_node_list_gpu_node.yaml``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from kbench.traces import openb

MILLI = 1000
"""Milli-GPU of one GPU (``MILLI``)."""
MAX_SPEC_CPU = 128_000
"""``MaxSpecCpu``: the largest node's milli-CPU, BestFit's and DotProd's CPU normaliser."""
MAX_SPEC_GPU = 8_000
"""``MaxSpecGpu``: eight GPUs in milli, the GPU normaliser."""
MAX_GPUS = 8
"""``MaxNumGpuPerNode``: the width of the per-GPU arrays."""
DEFAULT_MILLI_CPU_REQUEST = 100
"""``schedutil.DefaultMilliCPURequest``: a pod's CPU as the plugins see it when it requests none
(``GetPodResource`` uses ``GetNonzeroRequests``; the node's CPU left uses the real request)."""
POD_LIMIT = 1001
"""Allocatable ``pods`` of every node in the repository's node YAML."""
GPU_NODES = "openb_node_list_gpu_node.csv"

KINDS = ("cpu", "share", "one", "multi")
"""A pod's kind by its GPU request: none, part of one GPU, one whole GPU, several whole GPUs."""


class PodSpec(NamedTuple):
    """A pod's request (the repository's ``PodResource`` plus memory, which only the fit filter reads)."""

    cpu: int
    memory: int
    gpus: int = 0
    milli: int = 0
    models: str = ""

    @property
    def nonzero_cpu(self) -> int:
        """The CPU the GPU plugins score with (``GetNonzeroRequests``)."""
        return self.cpu or DEFAULT_MILLI_CPU_REQUEST

    @property
    def total_milli(self) -> int:
        """``TotalMilliGpu``: milli-GPU over all its GPUs."""
        return self.milli * self.gpus

    @property
    def kind(self) -> str:
        """One of :data:`KINDS`."""
        if self.gpus == 0:
            return "cpu"
        if self.milli < MILLI:
            return "share"
        return "one" if self.gpus == 1 else "multi"


def pod_spec(row: openb.PodRow) -> PodSpec:
    """A trace line as the repository's ``pod_csv_to_yaml.py`` turns it into a pod: a GPU pod's per-GPU milli is
    its ``gpu_milli`` (1000 when absent), a CPU pod has no GPU annotations."""
    if row.num_gpu == 0:
        return PodSpec(row.cpu_milli, row.memory_mib)
    models = "|".join(m.strip() for m in row.gpu_spec.split("|") if m.strip())
    return PodSpec(row.cpu_milli, row.memory_mib, row.num_gpu, row.gpu_milli or MILLI, models)


def read_workload(variant: str = "default", directory: str | Path | None = None) -> tuple[list[str], list[PodSpec]]:
    """The names and requests of ``openb_pod_list_<variant>.csv`` in file order."""
    rows = openb.pod_rows(directory, variant)
    return [r.name for r in rows], [pod_spec(r) for r in rows]


@dataclass
class Nodes:
    """The cluster's nodes as arrays (index = the node's position in the node list)."""

    names: list[str]
    cpu: np.ndarray
    memory: np.ndarray
    gpus: np.ndarray
    models: list[str]

    def __post_init__(self) -> None:
        if len(self.gpus) and int(self.gpus.max()) > MAX_GPUS:
            raise ValueError(f"gpu: at most {MAX_GPUS} GPUs a node (MaxNumGpuPerNode), got {int(self.gpus.max())}")

    def __len__(self) -> int:
        return len(self.names)

    @property
    def total_milli(self) -> int:
        """Milli-GPU of the whole cluster."""
        return int(self.gpus.sum()) * MILLI

    @classmethod
    def from_rows(cls, rows: list[tuple[str, int, int, int, str]]) -> Nodes:
        """Nodes from (name, milli-CPU, memory MiB, GPU count, GPU model) rows."""

        def column(i: int) -> np.ndarray:
            return np.array([r[i] for r in rows], dtype=np.int64)

        return cls([r[0] for r in rows], column(1), column(2), column(3), [r[4] for r in rows])

    @classmethod
    def read(cls, directory: str | Path | None = None, file: str = GPU_NODES) -> Nodes:
        """The trace's node list (the paper's cluster by default)."""
        return cls.from_rows(list(openb.node_rows(directory, file)))
