"""The benchmark regression gate: read a pytest-benchmark JSON run, print what regressed, exit 1 if anything did.

Two checks, each printed as one table row per benchmark, never as a traceback:

- **Ratio floors** (any machine): a benchmark that records ``extra_info["ratio"]`` (its speed over the plain
  reference timed in the same process) must stay at or above its floor in ``data/baselines/floors.yaml``.
  Floors are measured, not guessed: ``floors`` takes several runs and sets each floor to ``FLOOR_SHARE`` of the
  lowest ratio seen, so run-to-run noise does not trip them.
- **Absolute medians** (same machine only): against ``data/baselines/baseline.json`` when the baseline was
  recorded on this machine (:func:`fingerprint`: pytest-benchmark's machine id, i.e. system, implementation,
  Python version and architecture, plus the CPU model and count). A median more than ``TOLERANCE`` slower
  fails (a benchmark may widen its own with ``extra_info["regression_tolerance"]``), unless the benchmark's plain
  reference, timed in the same run, slowed alike: when the reference itself is slower than the baseline's by more
  than the tolerance too, and the ratio to it held within the tolerance, the machine is slower, not the
  benchmark's own code (a shared host here ran the openb replay and its NumPy reference both about 30% slower one
  day than the next), and the gate names it as drift without failing. A slowdown of code the benchmark and its
  reference share (cluster state, pod parsing) looks the same and passes too; the ratio floors and the benchmarks
  with nothing in common with theirs (the engine's against SimPy) are the check left for it. On another machine the
  absolute check is skipped, with the reason, and ``python3 dev.py bench --refresh-baseline`` stores one.

Usage: ``python -m benchmarks.gate check RUN.json`` or ``python -m benchmarks.gate floors RUN.json...``.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
BASELINE = ROOT / "data" / "baselines" / "baseline.json"
FLOORS = ROOT / "data" / "baselines" / "floors.yaml"
TOLERANCE = 0.20
"""Median slowdown against a same-machine baseline that fails the gate (single-round whole-cluster runs vary by
about 10% here, so 20% is outside the noise)."""
FLOOR_SHARE = 0.7
"""A floor is this share of the lowest ratio measured over several runs."""


def fingerprint(run: dict) -> dict:
    """What makes two runs comparable in absolute time: pytest-benchmark's machine id plus the CPU."""
    info = run.get("machine_info", {})
    cpu = info.get("cpu", {})
    version = ".".join(str(info.get("python_version", "")).split(".")[:2])
    return {
        "machine_id": "-".join(
            [str(info.get("system")), str(info.get("python_implementation")), version, str(info.get("machine"))]
        ),
        "cpu": str(cpu.get("brand_raw")),
        "cores": cpu.get("count"),
    }


def ratio_failures(run: dict, floors: dict) -> list[tuple[str, str]]:
    """(benchmark, why) for each ratio below its floor, and each ratio without a floor."""
    failures = []
    for bench in run["benchmarks"]:
        ratio = bench.get("extra_info", {}).get("ratio")
        if ratio is None:
            continue
        floor = floors.get(bench["name"])
        if floor is None:
            failures.append((bench["name"], f"ratio {ratio:.3g} has no floor in {FLOORS.name}"))
        elif not ratio >= floor:
            failures.append((bench["name"], f"ratio to the plain reference {ratio:.3g} < floor {floor}"))
    return failures


def median_failures(run: dict, baseline: dict) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(failures, drifts): (benchmark, why) for each median slower than the same-machine baseline's by more than its
    tolerance; those whose in-run reference slowed by more than the tolerance too, their ratio to it holding
    within the tolerance, are drifts of the machine."""
    before = {b["name"]: b for b in baseline["benchmarks"]}
    failures, drifts = [], []
    for bench in run["benchmarks"]:
        base = before.get(bench["name"])
        if base is None:
            continue
        extra = bench.get("extra_info", {})
        tolerance = extra.get("regression_tolerance", TOLERANCE)
        old, new = base["stats"]["median"], bench["stats"]["median"]
        if not new > old * (1 + tolerance):
            continue
        why = f"median {new:.4g} s vs baseline {old:.4g} s (+{new / old - 1:.0%} > {tolerance:.0%})"
        ratio, base_ratio = extra.get("ratio"), base.get("extra_info", {}).get("ratio")
        if _finite(ratio) and _finite(base_ratio):
            reference = new / old * ratio / base_ratio  # how much slower the reference ran (ratio = its time / ours)
            if ratio * (1 + tolerance) >= base_ratio and reference > 1 + tolerance:
                held = f"ratio {ratio:.3g} vs {base_ratio:.3g}"
                drifts.append((bench["name"], f"{why}, its reference +{reference - 1:.0%} ({held})"))
                continue
        failures.append((bench["name"], why))
    return failures, drifts


def _finite(value) -> bool:
    return isinstance(value, int | float) and math.isfinite(value) and value > 0


def check(run: dict, baseline: dict | None, floors: dict) -> tuple[list[tuple[str, str]], str]:
    """Every failure of ``run``, and a line saying which checks ran."""
    failures = ratio_failures(run, floors)
    if baseline is None:
        return failures, "absolute medians: not checked (no baseline; python3 dev.py bench --refresh-baseline)"
    here, there = fingerprint(run), fingerprint(baseline)
    if here != there:
        return failures, (
            f"absolute medians: skipped, the baseline is from another machine ({there}; this one: {here}); "
            "ratio floors only. python3 dev.py bench --refresh-baseline stores this machine's baseline"
        )
    slower, drifts = median_failures(run, baseline)
    note = "absolute medians: against the baseline of this machine"
    if drifts:
        width = max(len(name) for name, _ in drifts)
        note += f"; {len(drifts)} slower with their in-run reference, so the machine is (not failed):" + "".join(
            f"\n  {name:<{width}}  {why}" for name, why in drifts
        )
    return failures + slower, note


def measured_floors(runs: list[dict]) -> dict[str, tuple[float, list[float]]]:
    """Per benchmark with a ratio: (floor, the ratios measured), the floor ``FLOOR_SHARE`` of the lowest."""
    seen: dict[str, list[float]] = {}
    for run in runs:
        for bench in run["benchmarks"]:
            ratio = bench.get("extra_info", {}).get("ratio")
            if ratio is not None and math.isfinite(ratio):
                seen.setdefault(bench["name"], []).append(ratio)
    return {name: (_round2(FLOOR_SHARE * min(ratios)), ratios) for name, ratios in seen.items()}


def _round2(value: float) -> float:
    """Two significant digits, rounded down (a floor never rises by rounding)."""
    if not value > 0:
        return 0.0
    digits = 1 - math.floor(math.log10(value))
    return round(math.floor(value * 10**digits) / 10**digits, max(digits, 0))


def floors_yaml(floors: dict[str, tuple[float, list[float]]], runs: int, kept: str = "") -> str:
    """floors.yaml's text: each floor with the ratios it was measured from; the entries of ``kept`` (the old
    file's text) whose benchmark was not measured this time stay as they were."""
    lines = [
        "# Ratio floors of the benchmark regression gate (benchmarks/gate.py): each benchmark's speed over its plain",
        "# reference in the same run must stay at or above its floor. Measured, not guessed: written by",
        "# `python3 dev.py bench --measure-floors N` (N runs; `-k` selects benchmarks, the others are kept), each",
        f"# floor {FLOOR_SHARE:.0%} of the lowest ratio measured.",
    ]
    entries = {line.split(":", 1)[0]: line for line in kept.splitlines() if line and not line.startswith("#")}
    for name, (floor, ratios) in floors.items():
        seen = ", ".join(f"{r:.3g}" for r in ratios)
        entries[name] = f"{name}: {floor:<10g}  # {runs} runs: {seen} (median {statistics.median(ratios):.3g})"
    return "\n".join(lines + [entries[name] for name in sorted(entries)]) + "\n"


def _load(path: Path) -> dict:
    try:
        run = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        sys.exit(f"benchmark gate: cannot read {path}: {err}")
    if not isinstance(run, dict) or not isinstance(run.get("benchmarks"), list):
        sys.exit(f"benchmark gate: {path} is not a pytest-benchmark run (--benchmark-json): no 'benchmarks' list")
    return run


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gate", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    check_cmd = sub.add_parser("check", help="check one run against the floors and a same-machine baseline")
    check_cmd.add_argument("run", type=Path)
    check_cmd.add_argument("--no-baseline", action="store_true", help="ratio floors only")
    floors_cmd = sub.add_parser("floors", help=f"write {FLOORS.name} from several runs")
    floors_cmd.add_argument("runs", type=Path, nargs="+")
    args = parser.parse_args(argv)
    if args.command == "floors":
        runs = [_load(path) for path in args.runs]
        FLOORS.write_text(floors_yaml(measured_floors(runs), len(runs), FLOORS.read_text() if FLOORS.exists() else ""))
        print(f"benchmark gate: wrote {FLOORS} from {len(runs)} runs")
        return 0
    run = _load(args.run)
    baseline = None if args.no_baseline or not BASELINE.exists() else _load(BASELINE)
    failures, note = check(run, baseline, yaml.safe_load(FLOORS.read_text()) or {})
    print(f"benchmark gate: {len(run['benchmarks'])} benchmarks; {note}")
    if not failures:
        print("benchmark gate: passed")
        return 0
    width = max(len(name) for name, _ in failures)
    print(f"benchmark gate: FAILED, {len(failures)} regression(s):")
    for name, why in failures:
        print(f"  {name:<{width}}  {why}")
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
