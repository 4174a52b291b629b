"""Probe timing: the closed form against a worker that ticks every period, and behaviour parsing."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kbench.node.probes import Behaviour, Probe, behaviours


def ticking(probe: Probe, start: float, check, want: bool, threshold: int) -> float:
    """pkg/kubelet/prober/worker.go, literally: probe at start + k x period, ignore results before
    initialDelaySeconds, flip after ``threshold`` consecutive results equal to ``want``."""
    run = 0
    for k in range(10_000):
        t = start + k * probe.period
        if k * probe.period < probe.initial_delay:
            continue
        run = run + 1 if check(t) == want else 0
        if run >= threshold:
            return t
    return math.inf


probes = st.builds(
    Probe,
    initial_delay=st.integers(0, 30),
    period=st.integers(1, 20),
    timeout=st.integers(1, 5),
    success=st.integers(1, 4),
    failure=st.integers(1, 6),
)


times = st.integers(0, 200 * 64).map(lambda v: v / 64)  # exact binary fractions: no float noise in the reference


@settings(deadline=None)
@given(probes, times, times)
def test_readiness_passes_at_the_tick_a_worker_reaches(probe, start, after):
    expected = ticking(probe, start, lambda t: t >= start + after, True, probe.success)
    assert probe.passes_at(start, start + after) == pytest.approx(expected)


@settings(deadline=None)
@given(probes, times, times)
def test_liveness_fails_at_the_tick_a_worker_reaches(probe, start, after):
    expected = ticking(probe, start, lambda t: t >= start + after, True, probe.failure)
    assert probe.fails_at(start, start + after) == pytest.approx(expected)


def test_a_step_on_a_tick_lands_on_it_despite_float_noise():
    probe = Probe(period=4)
    start = 0.3
    assert probe.passes_at(start, start + 8) == pytest.approx(start + 8)  # (0.3 + 8) - 0.3 > 8 in floats


def test_a_probe_slower_than_its_timeout_never_passes_and_always_fails():
    probe = Probe(period=10, timeout=1, failure=3)
    assert math.isinf(probe.passes_at(0.0, 0.0, latency=2.0))
    assert probe.fails_at(0.0, math.inf, latency=2.0) == pytest.approx(20 + 1)  # third probe, timed out at 1 s


def test_probe_defaults_are_upstreams():
    assert Probe.of({}, "p") == Probe(initial_delay=0, period=10, timeout=1, success=1, failure=3)
    assert Probe.of(None, "p") is None


@pytest.mark.parametrize(
    "spec, message",
    [
        ({"periodSeconds": 0}, "livenessProbe.periodSeconds: expected an integer >= 1"),
        ({"failureThreshold": "3"}, "livenessProbe.failureThreshold: expected an integer >= 1"),
        ({"initialDelaySeconds": -1}, "livenessProbe.initialDelaySeconds: expected an integer >= 0"),
    ],
)
def test_bad_probe_fields_are_named(spec, message):
    with pytest.raises(ValueError, match=message):
        Probe.of(spec, "pod a/b: container c.livenessProbe")


def _pod(annotation, containers=("app", "side")):
    return {
        "metadata": {"name": "p", "namespace": "ns", "annotations": {"kbench.io/behavior": annotation}},
        "spec": {"containers": [{"name": c} for c in containers]},
    }


def test_behaviour_applies_to_every_container_with_per_container_overrides():
    got = behaviours(_pod("readyAfter: 5\ncontainers: {side: {exitAfter: 30, exitCode: 2}}"))
    assert got["app"] == Behaviour(ready_after=5)
    assert got["side"] == Behaviour(ready_after=5, exit_after=30, exit_code=2)


@pytest.mark.parametrize(
    "annotation, message",
    [
        ("readyAfterr: 5", r"annotation kbench.io/behavior: unknown field 'readyAfterr'; allowed: startedAfter"),
        ("exitCode: 300", r"exitCode: expected an integer in \[0, 255\]"),
        ("readyAfter: -1", "readyAfter: expected seconds >= 0"),
        ("containers: {nope: {readyAfter: 1}}", "containers.nope: no such container; containers: app, side"),
        ("[1, 2]", "expected a mapping"),
    ],
)
def test_bad_behaviour_names_the_pod_and_field(annotation, message):
    with pytest.raises(ValueError, match=message):
        behaviours(_pod(annotation))
