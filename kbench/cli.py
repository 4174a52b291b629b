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
    proxy = commands.add_parser(
        "proxy", help="kube-proxy rules for Service / EndpointSlice manifests: render or trace a packet",
        description="Compile one node's kube-proxy rules from Kubernetes manifests (multi-document YAML).")
    proxy.add_argument("action", choices=("render", "trace"), help="render the rules, or trace one packet")
    proxy.add_argument("manifests", type=Path, help="YAML file with Services and EndpointSlices")
    proxy.add_argument("--mode", default="iptables", help="iptables (default), ipvs or nftables")
    proxy.add_argument("--proxier", type=Path, default=None,
                       help="YAML with the node's settings (nodeName, nodeIPs, localDetector.clusterCIDR, ...)")
    proxy.add_argument("--format", default=None, help="render format: iptables-save, nft, nft-list, ipvsadm, ipset")
    proxy.add_argument("--source", default="10.0.0.2", help="trace: source IP (default 10.0.0.2, a pod)")
    proxy.add_argument("--destination", default=None, metavar="IP:PORT", help="trace: destination")
    proxy.add_argument("--protocol", default="TCP", help="trace: TCP (default), UDP or SCTP")
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


def _proxy(args: argparse.Namespace) -> int:
    import yaml

    from kbench.api.core import load_manifests
    from kbench.proxy import Proxier, ProxierConfig

    config = ProxierConfig.from_dict(yaml.safe_load(args.proxier.read_text()) if args.proxier else None)
    proxier = Proxier(args.mode, config)
    proxier.sync(load_manifests(args.manifests.read_text()))
    if args.action == "render":
        print(proxier.render(args.format), end="")
        return 0
    if not args.destination or ":" not in args.destination:
        raise ValueError("--destination: required for trace, as IP:PORT (e.g. 172.30.0.41:80)")
    host, _, port = args.destination.rpartition(":")
    if not port.isdigit():
        raise ValueError(f"--destination: port must be a number, got {port!r}")
    outputs, masq = proxier.trace(args.source, args.protocol, host.strip("[]"), int(port))
    print(f"{', '.join(outputs) or '(no kube-proxy rule matched)'}{'  [masqueraded]' if masq else ''}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``kbench`` command."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "sweep":
            return _sweep(args)
        if args.command == "proxy":
            return _proxy(args)
    except (ValueError, OSError) as err:
        print(f"kbench: error: {err}", file=sys.stderr)
        return 2
    return 1


if __name__ == "__main__":
    sys.exit(main())
