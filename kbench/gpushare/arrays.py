"""The lab's struct-of-arrays: node state, pod requests and typical pods as the kernels read them.

GPU models become bit positions (:func:`model_ids`): a pod's ``mask`` has the bits of the models it may use, or
:data:`ANY` when it names none (``IsNodeAccessibleToPodByType``: an empty ``GpuType`` fits every node, a list fits
only nodes of a listed model, so a list of models absent from the cluster fits nothing: mask 0).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from kbench.gpushare.model import MAX_GPUS, MILLI, POD_LIMIT, Nodes, PodSpec

ANY = -1
"""Mask of a pod that names no GPU model."""
TAGS = MAX_GPUS + 1
"""GpuAffinity tags: slot 0 is ``share-gpu``, slot n is ``<n>-gpu``."""


class State(NamedTuple):
    """Per-node state (``NodeResource``): what is left, the GPUs, and the GpuAffinity counts."""

    cpu_left: np.ndarray
    cpu_capacity: np.ndarray
    memory_left: np.ndarray
    pods_left: np.ndarray
    gpu_left: np.ndarray
    """(nodes, MAX_GPUS) milli-GPU left; columns past a node's GPU count stay 0."""
    gpu_count: np.ndarray
    model: np.ndarray
    """The node's GPU model bit, -1 for a node without GPUs."""
    affinity: np.ndarray
    """(nodes, TAGS) pods of each tag on the node."""


class Pod(NamedTuple):
    """One pod's request as the kernels read it (``cpu`` real, ``ncpu`` the non-zero CPU the plugins score)."""

    cpu: int
    ncpu: int
    memory: int
    gpus: int
    milli: int
    mask: int


class Pods(NamedTuple):
    """Requests of many pods, by column."""

    cpu: np.ndarray
    ncpu: np.ndarray
    memory: np.ndarray
    gpus: np.ndarray
    milli: np.ndarray
    mask: np.ndarray
    shape: np.ndarray
    """Index of the pod's (ncpu, gpus, milli, mask): pods of one shape score alike on a node."""


class Typical(NamedTuple):
    """FGD's typical pods by column (``TargetPodList``), ``p`` their normalised frequencies."""

    cpu: np.ndarray
    milli: np.ndarray
    gpus: np.ndarray
    mask: np.ndarray
    p: np.ndarray


MAX_MODELS = 62
"""GPU models a cluster may have: a mask is an int64 and -1 (:data:`ANY`) stays apart."""


def model_ids(nodes: Nodes) -> dict[str, int]:
    """GPU model -> bit, in order of first appearance."""
    ids = {m: i for i, m in enumerate(dict.fromkeys(m for m in nodes.models if m))}
    if len(ids) > MAX_MODELS:
        raise ValueError(f"model: at most {MAX_MODELS} GPU models in a cluster, got {len(ids)}")
    return ids


def mask(models: str, ids: dict[str, int]) -> int:
    """The model bits a pod may use."""
    names = [m for m in models.split("|") if m]
    return sum(1 << ids[m] for m in set(names) if m in ids) if names else ANY


def state(nodes: Nodes) -> State:
    """Every node empty."""
    n, ids = len(nodes), model_ids(nodes)
    gpu_left = (np.arange(MAX_GPUS) < nodes.gpus[:, None]) * np.int64(MILLI)
    return State(
        nodes.cpu.copy(),
        nodes.cpu.copy(),
        nodes.memory.copy(),
        np.full(n, POD_LIMIT, np.int64),
        gpu_left.astype(np.int64),
        nodes.gpus.copy(),
        np.array([ids.get(m, -1) if m else -1 for m in nodes.models], np.int64),
        np.zeros((n, TAGS), np.int64),
    )


def pods(specs: list[PodSpec], ids: dict[str, int]) -> Pods:
    """Columns of ``specs``; a pod on several GPUs must ask for whole ones (the kernels' filter counts each GPU
    once, where Go's ``AllocateGpuId`` would stack shares of one pod on one GPU)."""
    for i, p in enumerate(specs):
        if p.gpus > 1 and p.milli != MILLI:
            raise ValueError(f"pod {i}: gpu_milli: a pod on {p.gpus} GPUs asks for whole GPUs (1000), got {p.milli}")
    masks = [mask(p.models, ids) for p in specs]
    keys = [(p.nonzero_cpu, p.gpus, p.milli, m) for p, m in zip(specs, masks)]
    index = {k: i for i, k in enumerate(dict.fromkeys(keys))}
    columns = (
        [p.cpu for p in specs],
        [p.nonzero_cpu for p in specs],
        [p.memory for p in specs],
        [p.gpus for p in specs],
    )
    return Pods(*(np.array(c, np.int64) for c in (*columns, [p.milli for p in specs], masks, [index[k] for k in keys])))
