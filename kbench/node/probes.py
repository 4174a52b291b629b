"""What a container does (its behaviour spec) and when the kubelet's probes notice it.

A scenario says what each container does with the pod annotation ``kbench.io/behavior`` (YAML or JSON):
keys apply to every container, ``containers: {name: {...}}`` overrides per container::

    startedAfter: 5          # the startup probe's check passes from 5 s after the container started
    readyAfter: 8            # the readiness check passes from 8 s
    livenessFailsAfter: 60   # the liveness check fails from 60 s (the kubelet then kills the container)
    exitAfter: 30            # the process exits 30 s after it started ...
    exitCode: 0              # ... with this code
    stopAfter: 2             # on SIGTERM it takes 2 s to exit (capped by the grace period)
    probeLatency: 0.1        # each probe takes 0.1 s to answer (> timeoutSeconds: the probe fails)

Probes are upstream's (pkg/kubelet/prober/worker.go): a worker per probe runs every ``periodSeconds`` from
the container's start; results before ``initialDelaySeconds`` are ignored; ``successThreshold`` /
``failureThreshold`` consecutive results flip the state; liveness and readiness wait for the startup probe
to succeed. Because a behaviour is a step in time, the tick at which each probe flips is computed directly
(the same tick a ticking worker would reach) instead of simulating every period.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, fields

import yaml

ANNOTATION = "kbench.io/behavior"
_FIELDS = {
    "startedAfter": "started_after",
    "readyAfter": "ready_after",
    "livenessFailsAfter": "liveness_fails_after",
    "exitAfter": "exit_after",
    "exitCode": "exit_code",
    "stopAfter": "stop_after",
    "probeLatency": "probe_latency",
}


@dataclass(frozen=True)
class Behaviour:
    """How a container behaves, in seconds from its start (the ``kbench.io/behavior`` annotation): when it has
    started and is ready, when its liveness probe starts failing, when it exits and with what code, how long it
    takes to stop, and how long a probe takes."""

    started_after: float = 0.0
    ready_after: float = 0.0
    liveness_fails_after: float = math.inf
    exit_after: float = math.inf
    exit_code: int = 0
    stop_after: float = 0.0
    probe_latency: float = 0.0


def _behaviour(spec: Mapping, where: str, base: Behaviour) -> Behaviour:
    values = {f.name: getattr(base, f.name) for f in fields(Behaviour)}
    for key, value in spec.items():
        if key not in _FIELDS:
            raise ValueError(f"{where}: unknown field {key!r}; allowed: {', '.join(_FIELDS)}, containers")
        if key == "exitCode":
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 255:
                raise ValueError(f"{where}.exitCode: expected an integer in [0, 255]; got {value!r}")
        elif isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise ValueError(f"{where}.{key}: expected seconds >= 0; got {value!r}")
        values[_FIELDS[key]] = value
    return Behaviour(**values)


def parse_behaviour(spec, where: str) -> tuple[Behaviour, dict[str, Behaviour]]:
    """A behaviour mapping: (the behaviour of every container, per-container overrides)."""
    if not isinstance(spec, Mapping):
        raise ValueError(f"{where}: expected a mapping; got {json.dumps(spec)}")
    per_container = spec.get("containers") or {}
    if not isinstance(per_container, Mapping):
        raise ValueError(f"{where}.containers: expected a mapping of container name to behaviour")
    base = _behaviour({k: v for k, v in spec.items() if k != "containers"}, where, Behaviour())
    overrides = {}
    for name, sub in per_container.items():
        if not isinstance(sub, Mapping):
            raise ValueError(f"{where}.containers.{name}: expected a mapping; got {sub!r}")
        overrides[name] = _behaviour(sub, f"{where}.containers.{name}", base)
    return base, overrides


def behaviours(pod: Mapping) -> dict[str, Behaviour]:
    """Each container's behaviour (init containers included), from the pod's annotation."""
    meta = pod.get("metadata", {})
    where = f"pod {meta.get('namespace', '')}/{meta.get('name', '')}: annotation {ANNOTATION}"
    text = (meta.get("annotations") or {}).get(ANNOTATION)
    spec = pod.get("spec", {})
    names = [c["name"] for c in (spec.get("initContainers") or []) + (spec.get("containers") or [])]
    if text is None:
        return dict.fromkeys(names, Behaviour())
    try:
        parsed = yaml.safe_load(text) if isinstance(text, str) else text
    except yaml.YAMLError as err:
        raise ValueError(f"{where}: not valid YAML/JSON: {err}") from None
    base, overrides = parse_behaviour(parsed, where)
    unknown = set(overrides) - set(names)
    if unknown:
        raise ValueError(f"{where}.containers.{sorted(unknown)[0]}: no such container; containers: {', '.join(names)}")
    return {name: overrides.get(name, base) for name in names}


@dataclass(frozen=True)
class Probe:
    """One probe's settings (core/v1 Probe defaults: period 10 s, timeout 1 s, thresholds 1 and 3)."""

    initial_delay: float = 0.0
    period: float = 10.0
    timeout: float = 1.0
    success: int = 1
    failure: int = 3

    @classmethod
    def of(cls, spec: Mapping | None, where: str) -> Probe | None:
        """The probe of a container's ``*Probe`` spec (None without one), defaulted as core/v1; errors name
        ``where``."""
        if spec is None:
            return None
        names = {
            "initialDelaySeconds": "initial_delay",
            "periodSeconds": "period",
            "timeoutSeconds": "timeout",
            "successThreshold": "success",
            "failureThreshold": "failure",
        }
        values = {}
        for key, attr in names.items():
            if key in spec:
                value = spec[key]
                low = 0 if key == "initialDelaySeconds" else 1
                if isinstance(value, bool) or not isinstance(value, int) or value < low:
                    raise ValueError(f"{where}.{key}: expected an integer >= {low}; got {value!r}")
                values[attr] = value
        return cls(**values)

    def _first_tick(self, start: float, after: float) -> int:
        """Index k of the first counted tick (start + k x period) at or after ``after``. Offsets are taken to the
        nanosecond, so a behaviour step on a tick (readyAfter 8 with period 4) lands on it despite float noise."""
        earliest = max(self.initial_delay, round(after - start, 9))
        return max(0, math.ceil(earliest / self.period))

    def passes_at(self, start: float, ok_from: float, latency: float = 0.0) -> float:
        """When the probe turns successful, its check passing from ``ok_from`` (inf: never)."""
        if latency > self.timeout or math.isinf(ok_from):
            return math.inf
        k = self._first_tick(start, ok_from)
        return start + (k + self.success - 1) * self.period + latency

    def fails_at(self, start: float, bad_from: float, latency: float = 0.0) -> float:
        """When the probe has failed ``failureThreshold`` times in a row, failing from ``bad_from``."""
        if latency > self.timeout:
            bad_from = start
        if math.isinf(bad_from):
            return math.inf
        k = self._first_tick(start, bad_from)
        return start + (k + self.failure - 1) * self.period + min(latency, self.timeout)
