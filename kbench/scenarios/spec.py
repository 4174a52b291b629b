"""Scenario files: a cluster, Kubernetes manifests to create first, and steps, validated at one entry point.

A scenario file is multi-document YAML. The first document is the scenario; every further document is a
Kubernetes manifest (Namespace, Service, Deployment, Job, ...) created before the first step, or a component's
configuration (KubeletConfiguration, KubeProxyConfiguration, KubeSchedulerConfiguration)::

    apiVersion: kbench.io/v1
    kind: Scenario
    metadata: {name: density}
    cluster: {nodes: 100, kube-controller-manager: {kube-api-qps: 100}}   # kbench.cluster.ClusterSpec
    steps:
      - createPods: {perNode: 30, rate: 20, namespace: density}
      - waitForPods: {timeout: 600}
    ---
    apiVersion: v1
    kind: Namespace
    metadata: {name: density}
    ---
    apiVersion: kubeproxy.config.k8s.io/v1alpha1        # component configs: see kbench.components
    kind: KubeProxyConfiguration
    mode: nftables

Errors name the file, the document and the field: ``density.yaml: document 0: steps[0].createPods.rate:
expected a number >= 0; got -1``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from kbench import components
from kbench.api.core import ManifestError, load_manifests
from kbench.apiserver.objects import KINDS, RESOURCES
from kbench.cluster import MAX_PODS_PER_NODE, YAML_KEYS, ClusterSpec
from kbench.metrics.slis import Measure
from kbench.node.probes import parse_behaviour
from kbench.scenarios import measures, presets

API_VERSION = "kbench.io/v1"
MAX_OBJECTS = 1_000_000
"""Bound on one step's object count (the largest published density run, 5,000 nodes x 30, is 150,000 pods)."""
MAX_RATE = 100_000.0
"""Bound on a step's rate (objects per simulated second)."""
MAXIMUM = {"count": MAX_OBJECTS, "perNode": MAX_PODS_PER_NODE, "replicas": MAX_OBJECTS, "rate": MAX_RATE}
TOP_LEVEL = ("preset", "cluster", "steps", "drain", "measure")
"""The scenario document's fields beside apiVersion, kind and metadata."""
STEPS: dict[str, dict[str, tuple]] = {
    # step -> field -> (types, required, help)
    "createPods": {
        "count": (int, False, "pods to create"),
        "perNode": (int, False, "pods per node"),
        "rate": ((int, float), False, "pods per second (0: all at once)"),
        "namespace": (str, False, "namespace (default: default)"),
        "template": (dict, False, "Pod manifest (default: a pause pod)"),
        "behavior": (dict, False, "container behaviour, see kbench.node.probes"),
    },
    "createObjects": {
        "template": (dict, True, "manifest; '{i}' anywhere in it is the object's index"),
        "count": (int, False, "objects (default 1)"),
        "rate": ((int, float), False, "per second"),
        "namespace": (str, False, "namespace for namespaced kinds"),
    },
    "deleteObjects": {
        "resource": (str, True, "resource, e.g. pods"),
        "namespace": (str, False, "namespace"),
        "count": (int, False, "how many (default: all)"),
        "rate": ((int, float), False, "per second"),
        "labelSelector": (dict, False, "matchLabels"),
    },
    "churn": {
        "rate": ((int, float), True, "pods created and deleted per second"),
        "duration": ((int, float), True, "seconds"),
        "lifetime": ((int, float), False, "seconds each pod lives (default 30)"),
        "namespace": (str, False, "namespace"),
        "template": (dict, False, "Pod manifest"),
    },
    "stopNodes": {
        "count": (int, False, "nodes"),
        "fraction": ((int, float), False, "share of nodes"),
        "restartAfter": ((int, float), False, "seconds until they come back (default: never)"),
        "mode": (str, False, "partition (default: cut off, containers run on) or shutdown"),
    },
    "rollingUpdate": {
        "deployment": (str, True, "Deployment name"),
        "namespace": (str, False, "namespace"),
        "image": (str, True, "new image"),
    },
    "scale": {
        "deployment": (str, True, "Deployment name"),
        "namespace": (str, False, "namespace"),
        "replicas": (int, True, "replicas"),
    },
    "wait": {"seconds": ((int, float), True, "simulated seconds")},
    "waitForLoadBalancers": {
        "timeout": ((int, float), False, "give up after (default 1800 s)"),
        "namespace": (str, False, "only this namespace"),
    },
    "waitForPods": {
        "timeout": ((int, float), False, "give up after (default 600 s)"),
        "namespace": (str, False, "only this namespace"),
    },
    "watchDisruptionBudgets": {
        "namespace": (str, False, "only this namespace's PodDisruptionBudgets"),
        "timeout": ((int, float), False, "seconds for every budget to be met first (default 120 s)"),
    },
}


class ScenarioError(ValueError):
    """A scenario that cannot run; the message names the file, the document and the field."""


@dataclass
class Step:
    """One step of a scenario: its action (``createPods``, ``waitForPods``, ...) and validated arguments."""

    action: str
    args: dict


@dataclass
class Scenario:
    """A scenario: the cluster to build, the objects to create first, and the steps; ``run()`` it."""

    name: str
    cluster: ClusterSpec
    steps: list[Step]
    objects: list[dict] = field(default_factory=list)
    drain: float = 30.0
    """Simulated seconds to keep running after the last step (status, endpoints and proxies settle)."""
    measure: dict[str, Measure] = field(default_factory=dict)
    """Which pods each measurement counts (``measure:``; :data:`kbench.metrics.slis.MEASUREMENTS`): absent,
    every pod."""

    @classmethod
    def from_yaml(cls, path: str | Path) -> Scenario:
        """Read a scenario file (errors name the file, the document and the field)."""
        path = Path(path)
        try:
            text = path.read_text()
        except OSError as err:
            raise ScenarioError(f"{path}: cannot read: {err.strerror}") from None
        return cls.from_text(text, str(path))

    @classmethod
    def from_preset(cls, name: str) -> Scenario:
        """Preset ``name`` (:mod:`kbench.scenarios.presets`): its cluster, configuration and workload."""
        try:
            path = presets.preset_path(name)
        except ValueError as err:
            raise ScenarioError(str(err)) from None
        if name in _LOADING:
            chain = " -> ".join([*_LOADING, name])
            raise ScenarioError(f"preset: {name!r} takes itself as its base ({chain})")
        _LOADING.append(name)
        try:
            return cls.from_yaml(path)
        finally:
            _LOADING.pop()

    @classmethod
    def from_text(cls, text: str, origin: str = "<scenario>") -> Scenario:
        """Parse a scenario file's text; ``origin`` names it in errors."""
        try:
            docs = [d for d in yaml.safe_load_all(text) if d is not None]
        except yaml.YAMLError as err:
            raise ScenarioError(f"{origin}: not valid YAML: {err}") from None
        if not docs:
            raise ScenarioError(f"{origin}: empty file; expected a Scenario document")
        return cls.from_dict(docs[0], origin, docs[1:])

    @classmethod
    def from_dict(cls, doc, origin: str = "<scenario>", objects: list | None = None) -> Scenario:
        """From the scenario document ``doc`` and the file's further documents ``objects`` (manifests to create,
        and component configurations)."""
        where = f"{origin}: document 0"
        if not isinstance(doc, Mapping):
            raise ScenarioError(f"{where}: expected a mapping (kind: Scenario)")
        if doc.get("apiVersion") != API_VERSION or doc.get("kind") != "Scenario":
            raise ScenarioError(
                f"{where}: apiVersion/kind: expected {API_VERSION} Scenario; "
                f"got {doc.get('apiVersion')!r} {doc.get('kind')!r}"
            )
        unknown = set(doc) - {"apiVersion", "kind", "metadata", *TOP_LEVEL}
        if unknown:
            raise ScenarioError(
                f"{where}: {sorted(unknown)[0]}: unknown field; allowed: metadata, {', '.join(TOP_LEVEL)}"
            )
        numbered = list(enumerate(objects or [], start=1))
        documents = {f"{origin}: document {i}": d for i, d in numbered if components.is_config_document(d)}
        base, raw = _preset_cluster(doc.get("preset"), doc.get("cluster"), where)
        try:
            config = components.from_documents(documents, base=base)
        except ValueError as err:
            raise ScenarioError(str(err)) from None
        try:
            cluster = ClusterSpec.from_dict(raw, "cluster", config)
        except (ValueError, KeyError) as err:
            raise ScenarioError(f"{where}: {str(err).strip(chr(39))}") from None
        steps = [_step(s, f"{where}: steps[{i}]") for i, s in enumerate(doc.get("steps") or [])]
        drain = doc.get("drain", 30.0)
        if isinstance(drain, bool) or not isinstance(drain, (int, float)) or not 0 <= drain < math.inf:
            raise ScenarioError(f"{where}: drain: expected seconds >= 0; got {drain!r}")
        try:
            measure = measures.parse(doc.get("measure"), f"{where}: measure")
        except ValueError as err:
            raise ScenarioError(str(err)) from None
        name = (doc.get("metadata") or {}).get("name", "scenario")
        manifests = []
        for i, raw in numbered:
            if components.is_config_document(raw):
                continue
            try:  # a kind: List document (kubectl get -o yaml) stands for its items
                expanded = load_manifests([raw], origin, KINDS, first=i)
            except ManifestError as err:
                raise ScenarioError(str(err)) from None
            for obj in expanded:
                if not isinstance(obj.get("metadata"), Mapping) or not obj["metadata"].get("name"):
                    raise ScenarioError(f"{origin}: document {i}: metadata.name: required")
                manifests.append(dict(obj))
        return cls(str(name), cluster, steps, manifests, float(drain), measure)

    def add_steps(self, steps: list) -> Scenario:
        """Append steps given as ``{action: {field: value}}`` mappings, validated like a file's; returns self."""
        first = len(self.steps)
        self.steps += [_step(s, f"{self.name}: steps[{first + i}]") for i, s in enumerate(steps)]
        return self

    def to_dict(self) -> dict:
        """The scenario document: every cluster field, defaults included, and the flags of every component
        configured by flags (its component-config documents are in :meth:`documents`)."""
        names = {v: k for k, v in YAML_KEYS.items()}
        cluster = {names[f.name]: getattr(self.cluster, f.name) for f in fields(ClusterSpec) if f.name in names}
        cluster.update({name: self.cluster.config[name].to_manifest() for name in components.FLAGGED})
        doc = {
            "apiVersion": API_VERSION,
            "kind": "Scenario",
            "metadata": {"name": self.name},
            "cluster": {k: dict(v) if isinstance(v, Mapping) else v for k, v in cluster.items()},
            "steps": [{s.action: s.args} for s in self.steps],
            "drain": self.drain,
        }
        if self.measure:
            doc["measure"] = {key: m.to_dict() for key, m in self.measure.items()}
        return doc

    def documents(self) -> list[dict]:
        """The whole scenario file (``kbench scenario show``): the scenario, every component-config document
        (defaults included), then the objects."""
        configs = [c.to_manifest() for name, c in self.cluster.config.items() if name not in components.FLAGGED]
        return [self.to_dict(), *configs, *self.objects]

    def run(self, progress: bool = True, on_advance=None):
        """Build the cluster, run every step; returns the :class:`kbench.metrics.slis.RunResult`.

        ``on_advance(simulated_seconds)`` is called as the run advances (every 10 simulated seconds)."""
        from kbench.scenarios.steps import run_scenario

        return run_scenario(self, progress, on_advance)


_LOADING: list[str] = []
"""The presets being read, outermost first (a preset whose ``preset:`` chain comes back to itself is refused)."""


def _preset_cluster(preset, cluster, where: str) -> tuple[Mapping | None, Any]:
    """The base configuration and the ``cluster`` section of a scenario with ``preset: <name>``: the preset's
    cluster fields, changed by the file's (``profileOverrides`` merged), over the preset's configuration."""
    if preset is None:
        return None, cluster
    if not isinstance(preset, str):
        raise ScenarioError(f"{where}: preset: expected a preset's name; got {preset!r}")
    if cluster is not None and not isinstance(cluster, Mapping):
        return None, cluster  # ClusterSpec.from_dict names the error
    try:
        base = Scenario.from_preset(preset).cluster
    except ScenarioError as err:
        raise ScenarioError(f"{where}: {err}") from None
    raw = {key: getattr(base, name) for key, name in YAML_KEYS.items()}
    raw.update(cluster or {})
    raw["profileOverrides"] = {**base.overrides, **((cluster or {}).get("profileOverrides") or {})}
    return base.config, raw


def _step(raw, where: str) -> Step:
    if not isinstance(raw, Mapping) or len(raw) != 1:
        raise ScenarioError(
            f"{where}: expected one action mapping, e.g. {{wait: {{seconds: 10}}}}; actions: {', '.join(STEPS)}"
        )
    ((action, args),) = raw.items()
    if action not in STEPS:
        raise ScenarioError(f"{where}: unknown action {action!r}; allowed: {', '.join(STEPS)}")
    args = args or {}
    if not isinstance(args, Mapping):
        raise ScenarioError(f"{where}.{action}: expected a mapping of fields")
    spec = STEPS[action]
    for name, value in args.items():
        if name not in spec:
            raise ScenarioError(f"{where}.{action}.{name}: unknown field; allowed: {', '.join(spec)}")
        kinds = spec[name][0]
        if isinstance(value, bool) or not isinstance(value, kinds):
            raise ScenarioError(f"{where}.{action}.{name}: expected {_kind_name(kinds)}; got {value!r}")
        if (
            isinstance(value, (int, float))
            and not (0 <= value <= MAXIMUM.get(name, math.inf))
            or isinstance(value, float)
            and not math.isfinite(value)
        ):
            bound = f" and <= {MAXIMUM[name]:,.0f}" if name in MAXIMUM else " (finite)"
            raise ScenarioError(f"{where}.{action}.{name}: expected a number >= 0{bound}; got {value!r}")
    for name, (_, required, _help) in spec.items():
        if required and name not in args:
            raise ScenarioError(f"{where}.{action}.{name}: required ({_help})")
    if action == "createObjects" and args["template"].get("kind") not in KINDS:
        raise ScenarioError(
            f"{where}.createObjects.template.kind: {args['template'].get('kind')!r} is not a kind "
            f"kbench models; allowed: {', '.join(KINDS)}"
        )
    if action == "deleteObjects" and args["resource"] not in RESOURCES:
        raise ScenarioError(
            f"{where}.deleteObjects.resource: unknown {args['resource']!r}; allowed: {', '.join(sorted(RESOURCES))}"
        )
    if action == "createPods" and ("count" in args) == ("perNode" in args):
        raise ScenarioError(f"{where}.createPods: give exactly one of count and perNode")
    if action == "stopNodes" and ("count" in args) == ("fraction" in args):
        raise ScenarioError(f"{where}.stopNodes: give exactly one of count and fraction")
    if action == "stopNodes" and args.get("mode", "partition") not in ("partition", "shutdown"):
        raise ScenarioError(f"{where}.stopNodes.mode: must be partition or shutdown; got {args['mode']!r}")
    if action == "stopNodes" and args.get("fraction", 0) > 1:
        raise ScenarioError(f"{where}.stopNodes.fraction: expected a share in [0, 1]; got {args['fraction']!r}")
    if "behavior" in args:
        try:
            parse_behaviour(args["behavior"], f"{where}.{action}.behavior")
        except ValueError as err:
            raise ScenarioError(str(err)) from None
    return Step(action, dict(args))


def _kind_name(kinds) -> str:
    kinds = kinds if isinstance(kinds, tuple) else (kinds,)
    names = {int: "an integer", float: "a number", str: "a string", dict: "a mapping"}
    return " or ".join(names[k] for k in kinds)
