"""CPU usage per control-plane component, as ClusterLoader2's ResourceUsageSummary reports it.

CL2's ResourceUsageSummary (perf-tests clusterloader2/pkg/measurement/common/resource_usage.go) samples every master
container's CPU usage every 10 s (``MasterResourceDataGatheringPeriod``; 60 s on other nodes) and reports per
container the percentiles 50, 90, 99 and 100 of its samples (``StopAndSummarize([]int{50, 90, 99, 100})``), each the
nearest-rank sample: the sorted samples' element ``ceil(n * p / 100) - 1`` (measurement/util ``ComputePercentiles``).
A sample is the container's CPU usage in cores; here, the mean busy cores over the 10 s window before it, read from the
component's busy-time record (:class:`kbench.sim.busy.BusyTime`).

What each component exposes:

- **kube-apiserver**, per instance: its CPU model (:mod:`kbench.apiserver.cpu`), every request and watch event.
- **etcd**, per member (``etcd/<i>``; a second cluster from --etcd-servers-overrides under its own name): a write's
  ``proposal_overhead`` on the member that takes it and ``apply_per_write`` on every member, a read's CPU on its
  member (:mod:`kbench.etcd.cluster`); the WAL's fsync waits on the disk, not a core, and is not counted.
- **kube-scheduler**: its scheduling loop's busy time (``Scheduler.busy``: one core while a cycle runs), so the
  filter's parallel workers' extra cores and the informers' and binding goroutines' CPU are not counted.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

from kbench.sim.busy import BusyTime

PERIOD = 10.0
"""Seconds between samples: CL2's MasterResourceDataGatheringPeriod."""
PERCENTILES = (50, 90, 99, 100)
"""The percentiles CL2's ResourceUsageSummary reports."""
COLUMNS = ["component", "samples", "Perc50", "Perc90", "Perc99", "Perc100", "mean", "unit", "source"]


def nearest_rank(samples, p: float) -> float:
    """CL2's percentile of ``samples``: the sorted samples' element ``ceil(n * p / 100) - 1`` (nan when empty)."""
    values = np.sort(np.asarray(samples, dtype=np.float64))
    if not 0 < p <= 100:
        raise ValueError(f"p: a percentile in (0, 100]; got {p!r}")
    if values.size == 0:
        return math.nan
    return float(values[math.ceil(values.size * p / 100) - 1])


def cpu_samples(busy: BusyTime, start: float, end: float, period: float = PERIOD) -> np.ndarray:
    """Mean busy cores in each full ``period``-second window from ``start`` to ``end`` (a sample every ``period``)."""
    if not period > 0:
        raise ValueError(f"period: must be > 0 seconds; got {period!r}")
    windows = int((end - start) // period) if end > start else 0
    if windows == 0:
        return np.zeros(0)
    done = busy.between(start + period * np.arange(windows + 1))
    return np.diff(done) / period


def _row(component: str, samples: np.ndarray, mean: float, source: str) -> dict:
    row = {"component": component, "samples": int(samples.size), "mean": mean, "unit": "cores", "source": source}
    row.update({f"Perc{p}": nearest_rank(samples, p) for p in PERCENTILES})
    return row


def summarize(busy: Mapping[str, BusyTime], start: float, end: float, period: float = PERIOD) -> pd.DataFrame:
    """One row per component of ``busy`` (name -> busy-time record): its sample count, CL2's percentiles of its CPU
    usage (cores) and its mean over ``start`` to ``end``."""
    rows = []
    for name, record in busy.items():
        done = record.between([start, end])
        mean = float(done[1] - done[0]) / (end - start) if end > start else math.nan
        rows.append(_row(name, cpu_samples(record, start, end, period), mean, "busy time"))
    return pd.DataFrame(rows, columns=COLUMNS)


def collect(cluster, started: float = 0.0, period: float = PERIOD) -> pd.DataFrame:
    """The ResourceUsageSummary of a cluster after a run, from ``started`` (simulated seconds) to now: each
    kube-apiserver instance (``kube-apiserver/<i>``) from its CPU model, kube-scheduler from its scheduling cycles,
    and each etcd member (``etcd/<i>``) from its requests' CPU."""
    end = cluster.engine.now
    busy = {f"kube-apiserver/{inst.index}": inst.cpu.busy for inst in cluster.api.instances}
    table = summarize(busy, started, end, period)
    scheduler = getattr(cluster, "scheduler", None)
    if scheduler is not None:  # its cycles' time: the filter's 16 parallel workers' extra cores are not counted
        cycles = summarize({"kube-scheduler": scheduler.scheduler.busy}, started, end, period)
        table = pd.concat([table, cycles.assign(source="scheduling cycles (one core)")], ignore_index=True)
    etcds = {id(e): e for e in cluster.api.etcds.values()}.values()  # one per distinct cluster
    members = {f"{e.name}/{i}": busy for e in etcds for i, busy in enumerate(e.busy)}
    table = pd.concat([table, summarize(members, started, end, period).assign(source="requests' CPU")])
    return table.reset_index(drop=True)


def sli_rows(cluster, started: float = 0.0, period: float = PERIOD) -> list[dict]:
    """:func:`collect` as rows of the run's SLI table (``kbench.metrics.slis.COLUMNS``): SLI ``ResourceUsageSummary``,
    metric ``cpu``, the component in ``resource``; p50 / p90 / p99 / max are CL2's Perc50 / 90 / 99 / 100 (cores)."""
    rows = []
    for r in collect(cluster, started, period).to_dict("records"):
        rows.append(
            {
                "sli": "ResourceUsageSummary",
                "metric": "cpu",
                "verb": "",
                "resource": r["component"],
                "scope": "",
                "count": r["samples"],
                "p50": r["Perc50"],
                "p90": r["Perc90"],
                "p99": r["Perc99"],
                "max": r["Perc100"],
                "unit": "cores",
                "threshold": None,
                "verdict": "no SLO" if r["samples"] else "not measured",
                "passed": None,
            }
        )
    return rows
