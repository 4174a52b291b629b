"""The benchmark regression gate (benchmarks/gate.py): floors on any machine, medians on the same machine only."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from benchmarks import gate

MACHINE = {
    "system": "Linux",
    "python_implementation": "CPython",
    "python_version": "3.11.7",
    "machine": "x86_64",
    "cpu": {"brand_raw": "Intel(R) Xeon(R) Processor", "count": 2},
}


def run(medians: dict[str, float], ratios: dict[str, float] | None = None, machine: dict = MACHINE) -> dict:
    ratios = ratios or {}
    return {
        "machine_info": machine,
        "benchmarks": [
            {"name": name, "stats": {"median": m}, "extra_info": {"ratio": ratios[name]} if name in ratios else {}}
            for name, m in medians.items()
        ],
    }


def test_a_median_slower_than_the_same_machine_baseline_fails_by_name():
    failures, note = gate.check(run({"a": 1.3, "b": 1.1}), run({"a": 1.0, "b": 1.0}), {})
    assert [name for name, _ in failures] == ["a"]
    assert "+30%" in failures[0][1] and "this machine" in note


def test_another_machine_skips_absolute_medians_and_keeps_the_floors():
    other = {**MACHINE, "cpu": {"brand_raw": "AMD EPYC", "count": 64}}
    failures, note = gate.check(run({"a": 9.0}, {"a": 2.0}), run({"a": 1.0}, machine=other), {"a": 3.0})
    assert failures == [("a", "ratio to the plain reference 2 < floor 3.0")]
    assert "another machine" in note and "AMD EPYC" in note


def test_a_ratio_without_a_floor_fails_and_a_benchmark_may_widen_its_tolerance():
    current = run({"a": 1.4, "b": 1.0}, {"b": 5.0})
    current["benchmarks"][0]["extra_info"]["regression_tolerance"] = 0.5
    failures, _ = gate.check(current, run({"a": 1.0, "b": 1.0}), {})
    assert failures == [("b", "ratio 5 has no floor in floors.yaml")]


def test_floors_are_a_share_of_the_lowest_ratio_over_runs_rounded_down():
    runs = [run({"a": 1.0}, {"a": r}) for r in (10.0, 8.7, 12.0)]
    floor, seen = gate.measured_floors(runs)["a"]
    assert seen == [10.0, 8.7, 12.0]
    assert floor == 6.0  # 0.7 x 8.7 = 6.09 -> 6.0
    assert gate._round2(0.6467) == 0.64 and gate._round2(1234.0) == 1200.0
    text = gate.floors_yaml(gate.measured_floors(runs), 3, kept="# old\na: 1  # old\nb: 2  # kept\n")
    assert "a: 6 " in text and "8.7" in text and "b: 2  # kept" in text and "a: 1" not in text


def test_the_command_prints_the_regressions_without_a_traceback(tmp_path):
    path = tmp_path / "run.json"
    path.write_text(json.dumps(run({"slow": 1.0}, {"slow": 0.1})))
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.gate", "check", str(path), "--no-baseline"], capture_output=True, text=True
    )
    assert done.returncode == 1
    assert "FAILED, 1 regression" in done.stdout and "slow" in done.stdout
    assert "Traceback" not in done.stdout + done.stderr


@pytest.mark.parametrize("content", ["", "{not json", "[]", '{"machine_info": {}}'])
def test_an_unreadable_run_names_the_file(tmp_path, content):
    path = tmp_path / "run.json"
    path.write_text(content)
    done = subprocess.run([sys.executable, "-m", "benchmarks.gate", "check", str(path)], capture_output=True, text=True)
    assert done.returncode != 0 and str(path) in done.stderr and "Traceback" not in done.stderr


def test_a_median_slower_with_its_reference_is_the_machine_and_does_not_fail():
    """openb's replay and its NumPy reference both ran 30% slower on this shared host one day: its ratio held and
    its reference slowed beyond the tolerance, so the gate names the drift and passes. A slowdown the reference did
    not share, a reference slower only within the noise, and a benchmark without a ratio still fail."""
    baseline = run(
        {"drift": 0.090, "slower": 0.090, "noisy": 0.090, "plain": 1.0, "wide": 1.0},
        {"drift": 88.1, "slower": 88.1, "noisy": 10.0, "wide": 10.0},
    )
    current = run(
        {"drift": 0.120, "slower": 0.120, "noisy": 0.1215, "plain": 1.3, "wide": 1.7},
        {"drift": 85.9, "slower": 66.0, "noisy": 8.52, "wide": 6.0},
    )
    current["benchmarks"][4]["extra_info"]["regression_tolerance"] = 1.0  # wide: +70% is within its own tolerance
    failures, note = gate.check(current, baseline, {"drift": 60.0, "slower": 60.0, "noisy": 5.0, "wide": 5.0})
    assert [name for name, _ in failures] == ["slower", "noisy", "plain"]  # noisy: +35%, its reference only +15%
    assert "1 slower with their in-run reference, so the machine is (not failed):" in note
    assert "\n  drift  median 0.12 s vs baseline 0.09 s (+33% > 20%), its reference +30%" in note  # a row each
    assert "ratio 85.9 vs 88.1" in note and "wide" not in note
