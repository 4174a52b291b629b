"""What each result column is: simulated or measured, its quantity, unit and label; and how numbers are written.

One table (:data:`COLUMNS`) names every ``sim_*`` and ``wall_*`` column the sweeps write, by pattern. Figures
take their axis labels, legend labels and panels from it (a simulated and a measured column never share an
axis), ``kbench plot`` takes the columns it may draw from it, and the report its units. :func:`number` is the
one way kbench writes a number in a table or a sentence; :func:`tick` the short form for axis ticks.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

KINDS = {"sim_": "simulated", "wall_": "measured"}
"""Column prefix -> kind: simulated (virtual time of the modelled cluster) or measured (kbench on this machine)."""

_Q = r"(?P<q>p\d+|perc\d+|average|mean|max)"
COLUMNS: tuple[tuple[str, str, str, str], ...] = (
    # (pattern matching the whole column name, quantity, unit, legend label from the pattern's groups)
    # cluster sweep: ClusterLoader2's SLIs
    (
        rf"sim_(?P<phase>pod_startup|create_to_schedule|schedule_to_run|run_to_watch)_{_Q}_s",
        "latency",
        "s",
        "{phase} {q}",
    ),
    (r"sim_api_(?P<scope>resource|namespace|cluster)_p99_max_s", "latency", "s", "API {scope} scope p99 (worst)"),
    (rf"sim_scheduling_throughput_{_Q}", "throughput", "pods/s", "scheduling throughput {q}"),
    (rf"sim_npl_{_Q}_s", "latency", "s", "network programming {q}"),
    (rf"sim_etcd_write_{_Q}_s", "latency", "s", "etcd write {q}"),
    (
        r"sim_(?P<what>pods_created|pods_started|pods_bound|pods_never_started|pods_measured_startup|"
        r"pods_measured_throughput)",
        "count",
        "pods",
        "{what}",
    ),
    (r"sim_container_restarts", "count", "restarts", "container restarts"),
    (r"sim_(?P<what>preemptions|victims)", "count", "pods", "{what} (DefaultPreemption)"),
    (r"sim_(?P<what>pdb_violations|pdbs_violated)", "count", "", "{what}"),
    (r"sim_api_(?P<what>requests|rejected)", "count", "requests", "API {what}"),
    (r"sim_slo_passed", "verdict", "", "every SLO met"),
    # etcd sweep
    (rf"sim_(?P<op>write|read|all)_latency_{_Q}_ms", "latency", "ms", "{op} {q}"),
    (r"sim_throughput_ops_per_s", "throughput", "requests/s", "all requests"),
    (r"sim_(?P<op>write|read)_ops_per_s", "throughput", "requests/s", "{op}s"),
    (r"sim_requests_per_raft_round", "batch size", "requests/round", "requests per raft round"),
    (r"wall_(?P<op>put_many|range_many|put|range)_ops_per_s", "throughput", "ops/s", "{op}"),
    # scheduler sweep
    (rf"sim_throughput_{_Q}", "throughput", "pods/s", "SchedulingThroughput {q}"),
    (r"sim_threshold_pods_per_s", "throughput", "pods/s", "scheduler_perf CI threshold"),
    (rf"sim_scheduling_latency_{_Q}_s", "latency", "s", "scheduling {q}"),
    (r"sim_cost_(?P<part>\w+)_s", "duration", "s", "cycle cost: {part}"),
    (r"sim_(?P<what>scheduled_pods|cycles|failed_cycles)", "count", "", "{what}"),
    (r"wall_pods_per_s", "throughput", "pods/s", "per-cycle kernel"),
    (r"wall_batch_pods_per_s", "throughput", "pods/s", "signature batch kernel"),
    # proxy sweep
    (rf"sim_first_packet_{_Q}_ms", "latency", "ms", "first packet {q}"),
    (r"sim_full_sync_s", "duration", "s", "full sync"),
    (rf"sim_partial_sync_{_Q}_s", "duration", "s", "partial sync {q}"),
    (r"sim_syncs", "count", "syncs", "partial syncs"),
    (r"wall_pkts_per_s", "throughput", "packets/s", "matcher"),
    (r"wall_ns_per_pkt", "time per packet", "ns", "matcher"),
    # trace sweep (GPU sharing): the replay's end state, and its curves by arrived GPU demand
    (
        r"sim_(?P<what>gpu_alloc|frag_ratio)_pct_at_(?P<x>\d+)",
        "share",
        "%",
        "{what} at {x}% arrived",
    ),
    (r"sim_(?P<what>gpu_alloc|frag_ratio|cpu_alloc|arrived)_pct", "share", "%", "{what}"),
    (r"sim_(?P<what>pods|failed_pods|failed_(cpu|share|one|multi)_pods)", "count", "pods", "{what}"),
    (r"sim_unallocated_gpus", "count", "GPUs", "unallocated GPUs"),
    (r"wall_replay_s", "duration", "s", "replay"),
    # validation sweep: kbench's figure beside each published one (in the unit its data/validation file gives)
    (r"sim_\[(?P<key>.+)\]", "validation figure", "unit of the published figure", "{key}"),
    # every sweep: the run's length and kbench's own speed
    (r"sim_seconds", "duration", "s", "simulated time"),
    (r"wall_sim_seconds_per_(s|wall_second)", "speed", "simulated s per wall s", "simulated s per wall s"),
    (r"wall_(engine_)?events_per_s", "throughput", "events/s", "engine events"),
    (r"wall_events", "count", "events", "engine events"),
    (r"wall_sim_seconds", "duration", "s", "simulation"),
    (r"wall_point_seconds", "duration", "s", "point"),
    (r"wall_compile_s", "duration", "s", "compile"),
    (r"wall_seconds(_run)?", "duration", "s", "run"),
)
"""Every ``sim_*`` / ``wall_*`` column, by pattern (the first that matches the whole name wins)."""
_PATTERNS = [(re.compile(pattern), quantity, unit, label) for pattern, quantity, unit, label in COLUMNS]


@dataclass(frozen=True)
class Column:
    """One result column as a reader sees it."""

    name: str
    kind: str
    """``simulated`` or ``measured``."""
    quantity: str
    unit: str
    label: str
    """What the column is, for a legend (e.g. ``pod_startup p99``)."""

    @property
    def axis(self) -> tuple[str, str, str]:
        """Columns with the same key may share an axis: same kind, quantity and unit."""
        return self.kind, self.quantity, self.unit

    @property
    def axis_label(self) -> str:
        """The y (or x) axis label, e.g. ``latency (s, simulated)``."""
        return f"{self.quantity} ({', '.join(part for part in (self.unit, self.kind) if part)})"


def column(name: str) -> Column:
    """The metadata of result column ``name``.

    Raises
    ------
    ValueError
        If ``name`` is not a ``sim_*`` / ``wall_*`` column of :data:`COLUMNS`.
    """
    kind = next((k for prefix, k in KINDS.items() if name.startswith(prefix)), None)
    if kind is not None:
        for pattern, quantity, unit, label in _PATTERNS:
            match = pattern.fullmatch(name)
            if match:
                return Column(name, kind, quantity, unit, label.format(**match.groupdict()))
    raise ValueError(f"column {name!r}: not a sim_/wall_ result column known to kbench.columns.COLUMNS")


def plottable(table: pd.DataFrame) -> list[str]:
    """The columns of ``table`` that can be plotted: numeric (not boolean) ``sim_*`` / ``wall_*`` columns."""
    return [
        c
        for c in table
        if isinstance(c, str)
        and c.startswith(tuple(KINDS))
        and pd.api.types.is_numeric_dtype(table[c])
        and not pd.api.types.is_bool_dtype(table[c])
    ]


def number(value) -> str:
    """A number as kbench writes it in tables and text: thousands separated, about four significant digits,
    no exponent between 0.001 and 10^15, no trailing zeros (``12,345``, ``2.5``, ``0.01234``); ``-`` for none."""
    if value is None or value is pd.NA or (isinstance(value, (float, np.floating)) and math.isnan(value)):
        return "-"
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)):
        return str(value)
    size = abs(float(value))
    if size == 0 or 1e-3 <= size < 1e15:
        decimals = max(0, 3 - math.floor(math.log10(size))) if size else 0
        text = f"{float(value):,.{decimals}f}"
        return text.rstrip("0").rstrip(".") if "." in text else text
    return f"{float(value):.3g}"


def tick(value: float) -> str:
    """The short form for axis ticks: ``100``, ``1k``, ``2.5M``, ``0.1``."""
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= scale:
            return number(round(value / scale, 2)) + suffix
    return number(value)
