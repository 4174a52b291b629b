"""One replay of an openb trace through one policy, as the paper's simulator runs an experiment.

The arrival process of ``pkg/simulator/core.go`` ``Simulate`` with the run scripts' flags (``--shuffle-pod=true
-tune 1.3``): the trace's pods in a seeded random order (``SortClusterPods``: sorted by name, then shuffled), then
``TunePodsByNodeTotalResource``: random pods removed until the GPU demand is at most ``ratio`` of the cluster's GPUs,
or random clones of trace pods appended until the next clone's per-GPU milli would pass that share (the repository
tests a clone's per-GPU milli but adds its total, so a multi-GPU clone may overshoot; kept). Pods arrive one at a time
and never leave; a pod that fits nowhere is dropped. Ties between equally scored nodes go to a node order drawn once
per run (:meth:`Workload.node_order`). Seeds drive NumPy streams, not Go's math/rand, so compare
distributions over seeds, not single runs.

Metrics as ``ClusterGpuFragReport`` logs them after every pod and ``experiments/analysis/merge_*_discrete.py`` turn
them into curves: GPU allocation (allocated milli-GPU over the cluster's, shared GPUs fractionally) and the
fragmentation ratio (F summed over nodes over idle milli-GPU), each averaged over the pods whose arrived GPU demand
rounds to each whole percent of capacity (0-130).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from kbench.gpushare import arrays, kernel, reference
from kbench.gpushare.config import SCORE_PLUGINS, SELF_SELECTING, Policy
from kbench.gpushare.model import KINDS, MAX_GPUS, MILLI, Nodes, PodSpec, read_workload
from kbench.gpushare.plugins import dotproduct, opengpushare

SELECTIONS = {"best": opengpushare.SEL_BEST, "worst": opengpushare.SEL_WORST, "random": opengpushare.SEL_RANDOM}
DIMENSIONS = {"merge": dotproduct.DIM_MERGE, "share": dotproduct.DIM_SHARE}
NORMS = {"max": dotproduct.NORM_MAX, "node": dotproduct.NORM_NODE, "pod": dotproduct.NORM_POD}
PAPER_RATIO = 1.3
"""The paper's arrived GPU demand: 130% of the cluster's GPUs."""


@dataclass(frozen=True)
class Workload:
    """A trace's pods (names and requests, in file order) on a cluster."""

    trace: str
    names: list[str]
    specs: list[PodSpec]
    nodes: Nodes
    typical: list[reference.TypicalPod] = field(repr=False)

    @classmethod
    def read(cls, trace: str = "default", directory: str | Path | None = None, nodes: Nodes | None = None) -> Workload:
        """``openb_pod_list_<trace>.csv`` on the paper's cluster (or ``nodes``); typical pods from the trace."""
        names, specs = read_workload(trace, directory)
        nodes = Nodes.read(directory) if nodes is None else nodes
        return cls(trace, names, specs, nodes, reference.typical_pods(specs))

    @cached_property
    def ids(self) -> dict[str, int]:
        """The cluster's GPU models as bits (:func:`~kbench.gpushare.arrays.model_ids`)."""
        return arrays.model_ids(self.nodes)

    @cached_property
    def columns(self) -> arrays.Pods:
        """The pods' requests as kernel columns (computed once for all the replays of the workload)."""
        return arrays.pods(self.specs, self.ids)

    @cached_property
    def typical_columns(self) -> arrays.Typical:
        """FGD's typical pods as kernel columns."""
        return typical_arrays(self.typical, self.ids)

    @cached_property
    def kinds(self) -> np.ndarray:
        """Each pod's kind (:data:`~kbench.gpushare.model.KINDS`)."""
        return np.array([p.kind for p in self.specs])

    @cached_property
    def by_name(self) -> np.ndarray:
        """Indices of :attr:`specs` in name order (the repository sorts pods by name before it shuffles or clones)."""
        return np.array(sorted(range(len(self.names)), key=self.names.__getitem__), np.int64)

    def arrivals(self, ratio: float, rng: np.random.Generator) -> np.ndarray:
        """Indices into :attr:`specs` in arrival order (clones repeat an index)."""
        by_name, total_milli = self.by_name, self.columns.milli * self.columns.gpus
        order = list(by_name[rng.permutation(len(by_name))])
        target = ratio * self.nodes.total_milli
        demand = int(total_milli.sum())
        if not ratio > 0 or demand == 0:  # Go panics on a trace without GPU demand ("podTotalMilliGpuReq <= 0")
            raise ValueError(
                f"ratio: cannot tune trace {self.trace!r} to {ratio!r} of the cluster's GPUs (it asks for {demand} "
                "milli-GPU): the ratio must be > 0 and the trace must ask for GPUs"
            )
        while demand > target and order:  # tuneDownPods
            demand -= int(total_milli[order.pop(int(rng.integers(len(order))))])
        if demand < target:  # tuneUpPods
            while True:
                i = int(by_name[rng.integers(len(by_name))])
                if demand + self.specs[i].milli > target:
                    break
                demand += int(total_milli[i])
                order.append(i)
        return np.array(order, np.int64)

    def node_order(self, rng: np.random.Generator) -> np.ndarray:
        """Each node's place in the order selectHost breaks ties by: ``syncClusterResourceList`` prefixes the
        name-sorted nodes with a random permutation (``"%04d-"``) and selectHost prefers the smallest name, so ties
        go to a node order drawn once per run."""
        rank = np.empty(len(self.nodes), np.int64)
        rank[np.argsort(np.array(self.nodes.names), kind="stable")] = rng.permutation(len(self.nodes))
        return rank


class Draws(NamedTuple):
    """A replay's randomness from one seed, drawn in this order: the arrivals, the nodes' tie order, and two
    uniforms per arrival (RandomScore's node, a random GPU)."""

    order: np.ndarray
    rank: np.ndarray
    u: np.ndarray


def draws(workload: Workload, seed: int, ratio: float = PAPER_RATIO) -> Draws:
    """What a replay of ``workload`` with ``seed`` draws."""
    rng = np.random.default_rng(seed)
    order = workload.arrivals(ratio, rng)
    return Draws(order, workload.node_order(rng), rng.random((len(order), 2)))


@dataclass
class Replay:
    """One replay's per-pod outcome and report."""

    trace: str
    policy: str
    seed: int
    ratio: float
    kinds: np.ndarray
    node: np.ndarray
    gpus: np.ndarray
    report: np.ndarray
    gpu_milli: int
    cpu_milli: int
    free_gpus: int
    wall_s: float

    def curves(self) -> pd.DataFrame:
        """GPU allocation and fragmentation ratio (%) by whole percent of arrived GPU demand, 0 to the end, as
        ``merge_alloc_discrete.py`` and ``merge_frag_ratio_discrete.py`` compute them (the report before the first
        pod included)."""
        report = np.vstack([np.zeros((1, 4)), self.report])
        per_gpu = self.gpu_milli / MILLI
        arrive = np.round(report[:, kernel.ARRIVED] / per_gpu / 10)
        alloc = np.round(report[:, kernel.USED] / per_gpu / 10, 2)
        idle = self.gpu_milli - report[:, kernel.USED]
        frag = np.round(100 * report[:, kernel.FRAG] / np.where(idle > 0, idle, np.nan), 2)
        known = ~np.isnan(frag)
        # arrived demand only grows, so each percent's reports are one slice; numpy's mean over it is pandas'
        starts = np.searchsorted(arrive, np.arange(arrive.max() + 4) - 1)  # starts[k]: first report at k - 1 or more
        rows = {}
        for x in range(int(arrive.max()) + 1):
            at = slice(starts[x + 1], starts[x + 2])
            if at.start == at.stop:  # none: the percents either side
                at = slice(starts[x], starts[x + 3])
            if at.start < at.stop:
                rows[x] = (np.round(alloc[at].mean(), 2), np.nanmean(frag[at]) if known[at].any() else np.nan)
        frame = pd.DataFrame.from_dict(rows, orient="index", columns=["gpu_alloc_pct", "frag_ratio_pct"])
        return frame.rename_axis("arrived_pct")

    def summary(self) -> dict:
        """The replay's end state: allocation, fragmentation, CPU, failures by kind, unallocated GPUs, speed."""
        last = self.report[-1]
        failed = self.node < 0
        out = {
            "trace": self.trace,
            "policy": self.policy,
            "seed": self.seed,
            "ratio": self.ratio,
            "pods": int(len(self.node)),
            "arrived_pct": 100 * last[kernel.ARRIVED] / self.gpu_milli,
            "gpu_alloc_pct": 100 * last[kernel.USED] / self.gpu_milli,
            "frag_ratio_pct": 100 * last[kernel.FRAG] / max(self.gpu_milli - last[kernel.USED], 1),
            "cpu_alloc_pct": 100 * last[kernel.CPU_USED] / self.cpu_milli,
            "failed": int(failed.sum()),
            "unallocated_gpus": self.free_gpus,
            "wall_s": self.wall_s,
        }
        out.update({f"failed_{kind}": int((failed & (self.kinds == kind)).sum()) for kind in KINDS})
        return out


def _codes(policy: Policy) -> tuple[np.ndarray, np.ndarray, int, int]:
    codes = np.array([SCORE_PLUGINS.index(name) for name, _ in policy.scores], np.int64)
    weights = np.array([weight for _, weight in policy.scores], np.int64)
    if policy.gpu_sel in SELF_SELECTING:
        return codes, weights, opengpushare.SEL_PLUGIN, SCORE_PLUGINS.index(policy.gpu_sel)
    return codes, weights, SELECTIONS[policy.gpu_sel], -1


def typical_arrays(typical: list[reference.TypicalPod], ids: dict[str, int]) -> arrays.Typical:
    """FGD's typical pods as kernel columns."""
    keys = [key for key, _ in typical]
    return arrays.Typical(
        np.array([k[0] for k in keys], np.int64),
        np.array([k[1] for k in keys], np.int64),
        np.array([k[2] for k in keys], np.int64),
        np.array([arrays.mask(k[3], ids) for k in keys], np.int64),
        np.array([p for _, p in typical], np.float64),
    )


@dataclass
class Placement:
    """What :func:`place` returns: per arrival the node (-1: dropped), its GPUs (-1 padded) and the report row,
    and the cluster's state after the last."""

    node: np.ndarray
    gpus: np.ndarray
    report: np.ndarray
    state: arrays.State


def place(workload: Workload, policy: Policy, order: np.ndarray, rank: np.ndarray, u: np.ndarray) -> Placement:
    """Schedule ``workload.specs[order[j]]`` in turn through ``policy`` on an empty cluster; ``rank`` is the tie
    order of the nodes, ``u[j]`` the draws of arrival j (RandomScore's node, a random GPU)."""
    state = arrays.state(workload.nodes)
    codes, weights, sel, sel_code = _codes(policy)
    out = Placement(np.empty(len(order), np.int64), np.empty((len(order), MAX_GPUS), np.int64),
                    np.zeros((len(order), 4)), state)  # fmt: skip
    kernel.replay(
        state, rank, workload.columns, order, u, codes, weights, sel, sel_code, DIMENSIONS[policy.dim_ext],
        NORMS[policy.norm], workload.typical_columns, out.node, out.gpus, out.report,
    )  # fmt: skip
    return out


def run(workload: Workload, policy: Policy, seed: int = 0, ratio: float = PAPER_RATIO) -> Replay:
    """Replay ``workload`` through ``policy`` with arrivals, node order and draws from ``seed``."""
    started = time.perf_counter()
    order, rank, u = draws(workload, seed, ratio)
    placed = place(workload, policy, order, rank, u)
    kinds = workload.kinds[order]
    free = int((placed.state.gpu_left == MILLI).sum())
    cpu = int(workload.nodes.cpu.sum())
    wall = time.perf_counter() - started
    return Replay(workload.trace, policy.name, seed, ratio, kinds, placed.node, placed.gpus, placed.report,
                  workload.nodes.total_milli, cpu, free, wall)  # fmt: skip
