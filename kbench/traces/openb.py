"""The openb GPU cluster trace (Alibaba cluster-trace-gpu-v2023) as kbench Nodes and Pods.

The trace (``openb_node_list_*.csv``, ``openb_pod_list_*.csv``; the USENIX ATC'23 paper "Beware of
Fragmentation", Weng et al.) is read in place from :func:`data_dir`: ``$KBENCH_OPENB_DIR`` when set, else
``../shared/data/openb`` beside the kbench checkout. Columns are validated at this entry point; an error names
the file, the line and the field.

What the modelled objects carry:

- A node: allocatable ``cpu`` (``cpu_milli``), ``memory`` (``memory_mib``), ``pods`` (110, the kubelet's
  default maxPods; the trace has no pod limit) and, when it has GPUs, ``nvidia.com/gpu`` = its GPU count, as
  the NVIDIA device plugin without sharing advertises them. Labels ``kubernetes.io/hostname`` and, for a GPU
  node, ``nvidia.com/gpu.product`` = the trace's GPU model (the label GPU feature discovery sets).
- A pod: requests ``cpu`` and ``memory``; a GPU pod asks for ``nvidia.com/gpu`` = ``num_gpu`` whole GPUs, and a
  GPU-sharing pod (``gpu_milli`` < 1000) for 1 whole GPU, since a device plugin without sharing cannot hand out
  less. A ``gpu_spec`` becomes a required node affinity on ``nvidia.com/gpu.product``. The trace's own columns
  (``gpu_milli``, ``qos``, times, ...) are kept as ``openb.kbench.io/<column>`` annotations for models that share
  GPUs; they do not enter the pod's scheduling signature.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import NamedTuple

from kbench.api.core import Node, Pod

ENV = "KBENCH_OPENB_DIR"
SOURCE = "https://github.com/alibaba/clusterdata/tree/master/cluster-trace-gpu-v2023/csv"
NODES_FILE = "openb_node_list_all_node.csv"
NODE_COLUMNS = ("sn", "cpu_milli", "memory_mib", "gpu", "model")
POD_COLUMNS = ("name", "cpu_milli", "memory_mib", "num_gpu", "gpu_milli")
"""Every pod list has these; ``default`` adds gpu_spec, qos, pod_phase and the times."""
OPTIONAL_POD_COLUMNS = ("gpu_spec", "qos", "pod_phase", "creation_time", "deletion_time", "scheduled_time")
MAX_PODS = 110
GPU = "nvidia.com/gpu"
GPU_MODEL_LABEL = "nvidia.com/gpu.product"
ANNOTATION = "openb.kbench.io/"


class TraceError(ValueError):
    """A trace file that is missing or malformed (the message names the file, line and field)."""


def data_dir(directory: str | Path | None = None) -> Path:
    """The trace directory: ``directory``, else ``$KBENCH_OPENB_DIR``, else ``../shared/data/openb`` beside the
    checkout."""
    if directory is not None:
        return Path(directory)
    if os.environ.get(ENV):
        return Path(os.environ[ENV])
    return Path(__file__).resolve().parents[2].parent / "shared" / "data" / "openb"


def _rows(path: Path, required: tuple[str, ...]) -> list[tuple[int, dict[str, str]]]:
    """(line number, row) of a CSV file whose header has every ``required`` column."""
    if not path.is_file():
        raise TraceError(f"{path}: not found; download the openb CSV files from {SOURCE} and set ${ENV}")
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in required if c not in (reader.fieldnames or ())]
        if missing:
            raise TraceError(f"{path}: missing column(s) {', '.join(missing)} (has {reader.fieldnames})")
        return [(line, row) for line, row in enumerate(reader, start=2)]


def _count(path: Path, line: int, row: dict[str, str], field: str) -> int:
    """A non-negative integer field."""
    text = (row.get(field) or "").strip()
    try:
        value = float(text)
    except ValueError:
        raise TraceError(f"{path}:{line}: {field}: expected a non-negative integer, got {text!r}") from None
    if value < 0 or value != int(value):
        raise TraceError(f"{path}:{line}: {field}: expected a non-negative integer, got {text!r}")
    return int(value)


def _name(path: Path, line: int, row: dict[str, str], field: str, seen: set[str]) -> str:
    name = (row.get(field) or "").strip()
    if not name:
        raise TraceError(f"{path}:{line}: {field}: required")
    if name in seen:
        raise TraceError(f"{path}:{line}: {field}: {name!r} appears twice")
    seen.add(name)
    return name


class NodeRow(NamedTuple):
    """One validated line of a node list."""

    name: str
    cpu_milli: int
    memory_mib: int
    gpu: int
    model: str


class PodRow(NamedTuple):
    """One validated line of a pod list (``gpu_spec`` is ``""`` when the variant has none)."""

    name: str
    cpu_milli: int
    memory_mib: int
    num_gpu: int
    gpu_milli: int
    gpu_spec: str
    row: dict[str, str]


def node_rows(directory: str | Path | None = None, file: str = NODES_FILE) -> list[NodeRow]:
    """The validated lines of a node list (``openb_node_list_all_node.csv`` or ``openb_node_list_gpu_node.csv``)."""
    path, seen, rows = data_dir(directory) / file, set[str](), []
    for line, row in _rows(path, NODE_COLUMNS):
        name = _name(path, line, row, "sn", seen)
        cpu, memory, gpus = (_count(path, line, row, f) for f in ("cpu_milli", "memory_mib", "gpu"))
        rows.append(NodeRow(name, cpu, memory, gpus, (row.get("model") or "").strip()))
    return rows


def pod_rows(directory: str | Path | None = None, variant: str = "default") -> list[PodRow]:
    """The validated lines of ``openb_pod_list_<variant>.csv`` in file order (the trace's creation order)."""
    path, seen, rows = data_dir(directory) / f"openb_pod_list_{variant}.csv", set[str](), []
    for line, row in _rows(path, POD_COLUMNS):
        name = _name(path, line, row, "name", seen)
        cpu, memory, num_gpu, gpu_milli = (_count(path, line, row, f) for f in POD_COLUMNS[1:])
        if gpu_milli > 1000:
            raise TraceError(f"{path}:{line}: gpu_milli: at most 1000 (a whole GPU), got {gpu_milli}")
        for field in ("creation_time", "deletion_time", "scheduled_time"):
            if (row.get(field) or "").strip():  # optional (empty: not yet scheduled, or not in the variant)
                _count(path, line, row, field)
        rows.append(PodRow(name, cpu, memory, num_gpu, gpu_milli, (row.get("gpu_spec") or "").strip(), row))
    return rows


def read_nodes(directory: str | Path | None = None, file: str = NODES_FILE) -> list[Node]:
    """The trace's nodes (``openb_node_list_all_node.csv``, or ``openb_node_list_gpu_node.csv`` as ``file``)."""
    nodes = []
    for name, cpu, memory, gpus, model in node_rows(directory, file):
        allocatable = {"cpu": f"{cpu}m", "memory": f"{memory}Mi", "pods": str(MAX_PODS)}
        labels = {"kubernetes.io/hostname": name}
        if gpus:
            allocatable[GPU] = str(gpus)
        if model:
            labels[GPU_MODEL_LABEL] = model
        manifest = {"metadata": {"name": name, "labels": labels}, "status": {"allocatable": allocatable}}
        nodes.append(Node.from_manifest(manifest))
    return nodes


def read_pods(directory: str | Path | None = None, variant: str = "default", namespace: str = "default") -> list[Pod]:
    """The pods of ``openb_pod_list_<variant>.csv`` in file order (the trace's creation order)."""
    specs: dict[tuple, dict] = {}
    pods = []
    for name, cpu, memory, num_gpu, _, gpu_spec, row in pod_rows(directory, variant):
        shape = (cpu, memory, num_gpu, gpu_spec)
        if shape not in specs:
            specs[shape] = _spec(*shape)
        pods.append(_pod(name, namespace, row, specs[shape]))
    return pods


def _spec(cpu: int, memory: int, num_gpu: int, gpu_spec: str) -> dict:
    """The pod spec of one shape (pods of one shape share it, read-only, as pods of one template do)."""
    requests = {"cpu": f"{cpu}m", "memory": f"{memory}Mi"}
    resources: dict = {"requests": requests}
    if num_gpu:  # a sharing pod (gpu_milli < 1000) still takes a whole device without a sharing plugin
        requests[GPU] = str(num_gpu)
        resources["limits"] = {GPU: str(num_gpu)}
    spec: dict = {"containers": [{"name": "main", "image": "openb", "resources": resources}]}
    models = [m.strip() for m in gpu_spec.split("|") if m.strip()]
    if models:
        expression = {"key": GPU_MODEL_LABEL, "operator": "In", "values": models}
        required = {"nodeSelectorTerms": [{"matchExpressions": [expression]}]}
        spec["affinity"] = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": required}}
    return spec


def _pod(name: str, namespace: str, row: dict[str, str], spec: dict) -> Pod:
    annotations = {
        ANNOTATION + column: row[column].strip()
        for column in POD_COLUMNS[1:] + OPTIONAL_POD_COLUMNS
        if (row.get(column) or "").strip()
    }
    meta = {"name": name, "namespace": namespace, "annotations": annotations}
    return Pod.from_manifest({"metadata": meta, "spec": spec})
