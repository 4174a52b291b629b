"""PerfData JSON, the format ClusterLoader2 writes its measurements in (perf-tests
perfdash/clusterloader2 ``measurementutil.PerfData``): ``{"version": "v1", "dataItems": [{"data": {...},
"unit": "ms", "labels": {...}}]}``, one document per measurement, latencies in milliseconds."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

_FILES = {
    "PodStartupLatency": "PodStartupLatency_PodStartupLatency",
    "APIResponsiveness": "APIResponsivenessPrometheus",
    "SchedulingThroughput": "SchedulingThroughput",
    "NetworkProgrammingLatency": "NetworkProgrammingLatency",
    "EtcdRequestLatency": "EtcdRequestLatency",
    "ResourceUsageSummary": "ResourceUsageSummary",
}


def data_item(data: Mapping[str, Any], unit: str, labels: Mapping[str, str]) -> dict[str, Any]:
    """One PerfData data item: ``data`` (``Perc50``, ``Perc99`` ...) in ``unit`` and its ``labels`` (``Metric`` ...)."""
    return {"data": data, "unit": unit, "labels": labels}


def document(items: list[dict[str, Any]]) -> dict[str, Any]:
    """The PerfData document of ``items`` (:func:`data_item`)."""
    return {"version": "v1", "dataItems": items}


def write(path: Path, doc: Mapping[str, Any]) -> Path:
    """Write PerfData document ``doc`` to ``path`` as indented JSON (NumPy numbers as plain ones); returns ``path``."""
    path.write_text(json.dumps(doc, indent=2, default=float))
    return path


def _item(row) -> dict:
    if row.unit == "s":
        data = {"Perc50": row.p50 * 1e3, "Perc90": row.p90 * 1e3, "Perc99": row.p99 * 1e3}
        unit = "ms"
    else:
        data = {"Perc50": row.p50, "Perc90": row.p90, "Perc99": row.p99, "Max": row.max}
        unit = row.unit
    labels = {"Metric": row.metric}
    if row.sli == "ResourceUsageSummary":  # one item per component, named as CL2 names the container
        labels["Name"] = row.resource
    if row.verb:
        labels.update(Verb=row.verb, Resource=row.resource, Scope=row.scope, Count=str(row.count))
    return data_item(data, unit, labels)


def perfdata(slis: pd.DataFrame) -> dict[str, dict]:
    """Measurement name -> PerfData document."""
    out = {}
    for sli, rows in slis.groupby("sli", sort=False):
        # rows["count"], not r.count: to a type checker a row's .count is tuple.count, not the column
        items = [_item(r) for r, count in zip(rows.itertuples(), rows["count"]) if count]
        out[str(sli)] = document(items)
    return out


def write_perfdata(slis: pd.DataFrame, out_dir: Path, suffix: str = "") -> list[Path]:
    """One ``<Measurement>_<suffix>.json`` per measurement (CL2's file naming), returns the files."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = []
    for sli, doc in perfdata(slis).items():
        files.append(write(out_dir / f"{_FILES[sli]}{'_' + suffix if suffix else ''}.json", doc))
    return files
