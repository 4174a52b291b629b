"""The ``kbench`` command line."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

import kbench
from kbench.sweep import get_sweep, run_sweep, sweep_names


def _sweep_help() -> str:
    lines = []
    for name in sweep_names():
        sweep = get_sweep(name)
        lines.append(f"{name}: {sweep.description}")
        lines += [f"    {p.describe()}" for p in sweep.params]
        lines.append(f"    presets: {', '.join(sweep.presets)}")
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kbench", description="Performance benchmark suite for a modelled Kubernetes cluster.")
    parser.add_argument("--version", action="version", version=f"kbench {kbench.__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    sweep = commands.add_parser(
        "sweep", help="run a parameter sweep, store tidy results and plots",
        description="Run a sweep's grid on local worker processes; write Parquet, PNG and SVG under "
                    "OUT/<sweep>/<run>/ and print a summary.",
        epilog="sweeps and their parameters:\n" + _sweep_help(), formatter_class=argparse.RawDescriptionHelpFormatter)
    sweep.add_argument("name", help="which sweep (" + ", ".join(sweep_names()) + ")")
    sweep.add_argument("--preset", default="quick", help="grid preset (default: quick)")
    sweep.add_argument("--param", action="append", default=[], metavar="NAME=V1[,V2...]",
                       help="replace one axis of the preset's grid (repeatable)")
    sweep.add_argument("--out", default="results", type=Path, help="results root (default: results)")
    sweep.add_argument("--run", default=None, help="run directory name (default: a timestamp)")
    sweep.add_argument("--jobs", type=int, default=None, help="worker processes (default: CPU count)")
    sweep.add_argument("--seed", type=int, default=0, help="base seed (default: 0)")
    sweep.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser


def _sweep(args: argparse.Namespace) -> int:
    sweep = get_sweep(args.name)
    overrides = sweep.parse_overrides(args.param)
    points = sweep.grid(args.preset, overrides)
    print(f"kbench sweep {sweep.name}: {len(points)} points, preset {args.preset}, seed {args.seed}")
    started = time.perf_counter()
    table, run_dir, figures = run_sweep(sweep.name, args.preset, overrides, args.out, args.run, args.seed,
                                        args.jobs, progress=not args.no_progress)
    with pd.option_context("display.width", 200, "display.max_columns", 20, "display.float_format", "{:,.3g}".format):
        print(table[list(sweep.summary)].to_string(index=False))
    print(f"\n{len(table)} points in {time.perf_counter() - started:.1f} s wall")
    print(f"results: {run_dir / 'results.parquet'}")
    print("figures: " + ", ".join(str(f) for f in figures if f.suffix == ".png"))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``kbench`` command."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "sweep":
            return _sweep(args)
    except ValueError as err:
        print(f"kbench: error: {err}", file=sys.stderr)
        return 2
    return 1


if __name__ == "__main__":
    sys.exit(main())
