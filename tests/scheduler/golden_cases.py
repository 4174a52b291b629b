"""Loading the golden YAML tables (tests/scheduler/golden) into kbench objects."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from kbench.api.core import Node, Pod
from kbench.scheduler.pluginargs import check_args
from kbench.scheduler.state import ClusterState

GOLDEN = Path(__file__).parent / "golden"


@dataclass
class Case:
    file: str
    plugin: str
    extension: str
    name: str
    raw: dict
    raw_args: dict

    @property
    def args(self) -> dict:
        """The plugin's args with defaults, checked as a KubeSchedulerConfiguration would check them."""
        return check_args(self.plugin, self.raw_args, "args")

    @property
    def id(self) -> str:
        return f"{self.file}::{self.name}"


def _named(manifest: dict, name: str) -> dict:
    meta = dict(manifest.get("metadata") or {})
    meta.setdefault("name", name)
    return {**manifest, "metadata": meta}


def cases() -> list[Case]:
    out = []
    for path in sorted(GOLDEN.glob("*.yaml")):
        doc = yaml.safe_load(path.read_text())
        seen: dict[str, int] = {}
        for raw in doc["cases"]:
            name = raw["name"].strip()
            seen[name] = seen.get(name, 0) + 1
            if seen[name] > 1:
                name = f"{name} #{seen[name]}"
            out.append(
                Case(path.stem, doc["plugin"], doc["extension"], name, raw, raw.get("args", doc.get("args")) or {})
            )
    return out


def build(case: Case) -> tuple[ClusterState, Pod]:
    """The case's cluster (nodes, bound pods, namespace labels) and incoming pod."""
    state = ClusterState(Node.from_manifest(n) for n in case.raw.get("nodes") or [])
    for ns in case.raw.get("namespaces") or []:
        state.namespaces[ns["metadata"]["name"]] = dict(ns["metadata"].get("labels") or {})
    for i, manifest in enumerate(case.raw.get("pods") or []):
        pod = Pod.from_manifest(_named(manifest, f"existing-{i}"))
        if pod.node_name in state.index:
            state.bind(pod, pod.node_name)
    return state, Pod.from_manifest(_named(case.raw["pod"], "incoming"))
