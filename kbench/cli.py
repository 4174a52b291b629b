"""The ``kbench`` command line."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import pandas as pd

import kbench
from kbench import components
from kbench.sim import collector
from kbench.sweep import get_sweep, run_sweep, sweep_names
from kbench.sweep.runner import Interrupted

INTERRUPTED = 130
"""Exit status after Ctrl-C (128 + SIGINT, as shells report it)."""


def _sweep_help() -> str:
    lines = []
    for name in sweep_names():
        sweep = get_sweep(name)
        lines.append(f"{name}: {sweep.description}")
        lines += [f"    {p.describe()}" for p in sweep.params]
        if sweep.components:
            lines.append("    <component>.<field>: any field of a component's configuration (see kbench config)")
        lines.append(f"    presets: {', '.join(sweep.presets)}")
    return "\n".join(lines)


def _run_options(parser: argparse.ArgumentParser) -> None:
    """Where a sweep's run goes and how its points run (kbench sweep and kbench validate)."""
    parser.add_argument("--out", default="results", type=Path, help="results root (default: results)")
    parser.add_argument("--run", default=None, help="run directory name (default: a timestamp)")
    parser.add_argument("--jobs", type=int, default=None, help="worker processes (default: CPU count)")
    parser.add_argument("--seed", type=int, default=None, help="base seed (default: 0; with --resume: the run's)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.add_argument(
        "--dask",
        default=None,
        metavar="ADDRESS",
        help="run the points on a Dask cluster (scheduler address, e.g. tcp://host:8786)",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue the run given by --run (default: the latest) with its own grid, without "
        "recomputing finished points",
    )
    parser.add_argument(
        "--seeds",
        type=int,
        default=None,
        help="runs per point with different seeds (default 1; with --resume: the run's)",
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kbench", description="Performance benchmark suite for a modelled Kubernetes cluster."
    )
    parser.add_argument("--version", action="version", version=f"kbench {kbench.__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    sweep = commands.add_parser(
        "sweep",
        help="run a parameter sweep, store tidy results and plots",
        description="Run a sweep's grid on local worker processes; write Parquet, PNG and SVG under "
        "OUT/<sweep>/<run>/ and print a summary.",
        epilog="sweeps and their parameters:\n" + _sweep_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sweep.add_argument("name", help="which sweep (" + ", ".join(sweep_names()) + ")")
    sweep.add_argument("--preset", default=None, help="grid preset (default: quick; with --resume: the run's)")
    sweep.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=V1[,V2...]",
        help="replace one axis of the preset's grid (repeatable); the cluster sweep also takes any component field as "
        "<component>.<field>, e.g. kube-controller-manager.kubeAPIQPS=20,100 (kbench config lists them)",
    )
    sweep.add_argument(
        "--config",
        type=Path,
        default=None,
        metavar="FILE",
        help="component configuration for every point (cluster sweep): KubeletConfiguration, KubeProxyConfiguration "
        "or KubeSchedulerConfiguration documents and flags by component; each field it sets becomes a "
        "one-value axis (a --param of the same field wins); see kbench config",
    )
    _run_options(sweep)
    run = commands.add_parser(
        "run",
        help="the main job: the cluster sweep's quick preset, then the component sweeps' (a few minutes)",
        description="Run the quick preset of the cluster sweep and of every component sweep (etcd, scheduler, "
        "proxy); write each under OUT/<sweep>/<run>/ and print one summary per sweep.",
    )
    run.add_argument("--preset", default="quick", help="preset for every sweep (default: quick)")
    run.add_argument("--sweeps", default="cluster,etcd,scheduler,proxy", help="which sweeps, comma-separated")
    run.add_argument("--out", default="results", type=Path, help="results root (default: results)")
    run.add_argument("--jobs", type=int, default=None, help="worker processes (default: CPU count)")
    run.add_argument("--seed", type=int, default=0, help="base seed (default: 0)")
    run.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    validate = commands.add_parser(
        "validate",
        help="run the published experiments (data/validation) and print kbench beside their figures",
        description="Run every experiment of data/validation by its preset (the quick ones by default) as the "
        "validation sweep; print experiment | metric | published | kbench | ratio | within tolerance and write "
        "validation.csv, validation.md and validation.png under OUT/validation/<run>/.",
    )
    validate.add_argument("--full", action="store_true", help="every experiment, the 5,000-node ones included")
    validate.add_argument(
        "--experiment", action="append", default=[], metavar="NAME", help="only this experiment (repeatable)"
    )
    _run_options(validate)
    report = commands.add_parser(
        "report",
        help="write one self-contained HTML report (and a PDF) of a sweep run",
        description="Write report.html and report.pdf into a run directory: summary, SLO pass/fail per point, "
        "every figure (PNG inline, SVG and PDF beside it), environment metadata, all results.",
    )
    report.add_argument(
        "run", type=Path, help="a run directory (results/<sweep>/<run>) or a sweep's directory (its latest run)"
    )
    replot = commands.add_parser(
        "plot",
        help="re-draw a sweep run's figures, or one figure of chosen metrics",
        description="Re-draw the figures of a stored run (no point is recomputed).",
    )
    replot.add_argument("run", type=Path, help="a run directory or a sweep's directory (its latest run)")
    replot.add_argument(
        "--metric",
        action="append",
        default=[],
        help="a sim_/wall_ column to plot (repeatable); default: the sweep's own figures",
    )
    replot.add_argument(
        "--x",
        default=None,
        help="numeric parameter on the x axis of every figure (default: each "
        "figure's own; with --metric, the first numeric one the run varies)",
    )
    replot.add_argument(
        "--linear-x",
        action="store_true",
        help="linear x axis in every figure (default: log where the values span a decade or more)",
    )
    replot.add_argument("--log-y", action="store_true", help="log y axis in every figure (default: each figure's own)")
    replot.add_argument("--no-bands", action="store_true", help="no band over seeds (runs with --seeds > 1)")
    replot.add_argument("--formats", default="png,svg", help="comma-separated: png, svg, pdf (default png,svg)")
    proxy = commands.add_parser(
        "proxy",
        help="kube-proxy rules for Service / EndpointSlice manifests: render or trace a packet",
        description="Compile one node's kube-proxy rules from Kubernetes manifests (multi-document YAML).",
    )
    proxy.add_argument("action", choices=("render", "trace"), help="render the rules, or trace one packet")
    proxy.add_argument(
        "manifests",
        type=Path,
        help="YAML file with Services and EndpointSlices (or a List, as kubectl get -o yaml writes)",
    )
    proxy.add_argument("--mode", default="iptables", help="iptables (default), ipvs or nftables")
    proxy.add_argument(
        "--proxier",
        type=Path,
        default=None,
        help="YAML with the node's settings (nodeName, nodeIPs, localDetector.clusterCIDR, ...)",
    )
    proxy.add_argument("--format", default=None, help="render format: iptables-save, nft, nft-list, ipvsadm, ipset")
    proxy.add_argument("--source", default="10.0.0.2", help="trace: source IP (default 10.0.0.2, a pod)")
    proxy.add_argument("--destination", default=None, metavar="IP:PORT", help="trace: destination (port 1-65535)")
    proxy.add_argument("--protocol", default="TCP", help="trace: TCP (default), UDP or SCTP")
    scenario = commands.add_parser(
        "scenario",
        help="run a whole-cluster scenario (a YAML file or a built-in) and report its SLIs",
        description="Run one scenario on the modelled cluster; print its SLIs against the SLOs and write them "
        "(slis.csv, pod_startup.parquet, ClusterLoader2 PerfData JSON) under OUT.",
    )
    scenario.add_argument("action", choices=("run", "show", "list"), help="run it, print its YAML, or list built-ins")
    scenario.add_argument("scenario", nargs="?", help="a scenario YAML file, a built-in or a preset")
    scenario.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="built-ins: a keyword argument, e.g. nodes=200 or pods_per_node=30 (repeatable)",
    )
    scenario.add_argument(
        "--out",
        default=None,
        type=Path,
        help="write results into this new or empty folder (default: a new folder "
        "results/scenario/<name>/<time>, linked as latest)",
    )
    scenario.add_argument(
        "--config",
        type=Path,
        default=None,
        metavar="FILE",
        help="component configuration over the scenario's: component-config documents (KubeletConfiguration, "
        "KubeProxyConfiguration, KubeSchedulerConfiguration) and flags by component; see kbench config",
    )
    scenario.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    _trace_parser(commands)
    config = commands.add_parser(
        "config",
        help="list every component's configuration: fields, flags, upstream defaults, allowed values, sources",
        description="Every setting kbench models, per component, as upstream names it; set them in scenario "
        "files, --config files and sweeps (--param <component>.<field>=V1,V2).",
    )
    config.add_argument("component", nargs="?", help="one component (default: all)")
    config.add_argument("--yaml", action="store_true", help="print the defaults as a --config file instead")
    return parser


def _trace_parser(commands) -> None:
    """``kbench trace run``: one replay of the GPU-sharing lab."""
    from kbench.gpushare.config import POLICIES

    trace = commands.add_parser(
        "trace",
        help="GPU-sharing lab: replay an openb trace through a policy of the FGD paper",
        description="Replay one openb pod list on the FGD paper's 1,213-GPU-node cluster through one scheduling "
        "policy until the arrived GPU demand reaches --ratio of the cluster's GPUs; print the end state and, with "
        "--out, write summary.json, summary.csv, curves.parquet and curves.png. Sweeps: kbench sweep trace.",
    )
    trace.add_argument("action", choices=("run",), help="run one replay")
    trace.add_argument("--trace", default="default", help="pod list openb_pod_list_<TRACE>.csv (default: default)")
    which = trace.add_mutually_exclusive_group()
    which.add_argument("--policy", choices=tuple(POLICIES), default=None, help="one of the paper's six (default: FGD)")
    which.add_argument(
        "--scheduler-config",
        type=Path,
        default=None,
        metavar="FILE",
        help="a KubeSchedulerConfiguration as the paper's simulator writes it (score plugins, Open-Gpu-Share args)",
    )
    trace.add_argument("--seed", type=int, default=0, help="the replay's seed (default 0; the paper's runs: 42-51)")
    trace.add_argument("--ratio", type=float, default=1.3, help="GPU demand as a share of capacity (default 1.3)")
    trace.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="openb directory (default: $KBENCH_OPENB_DIR, else ../shared/data/openb)",
    )
    trace.add_argument("--out", type=Path, default=None, metavar="DIR", help="write the results into DIR (created)")


def _trace(args: argparse.Namespace) -> int:
    import yaml

    from kbench.gpushare import config
    from kbench.gpushare.replay import run
    from kbench.sweep import trace

    try:
        ratio = trace.RATIO.check(args.ratio)
    except ValueError as err:
        raise ValueError(f"--ratio: {err}") from None
    if args.seed < 0:
        raise ValueError(f"--seed: a non-negative integer, got {args.seed}")
    present = trace.available(args.data_dir)
    if args.trace not in present:
        shown = ", ".join(present) or "none"
        raise ValueError(f"--trace {args.trace!r}: no openb_pod_list_{args.trace}.csv; pod lists present: {shown}")
    if args.scheduler_config is not None:
        try:
            policy = config.parse(args.scheduler_config.read_text())
        except (OSError, ValueError, yaml.YAMLError) as err:
            raise ValueError(f"--scheduler-config {args.scheduler_config}: {err}") from None
    else:
        policy = config.policy(args.policy or "FGD")
    replay = run(trace.workload(args.trace, args.data_dir), policy, args.seed, ratio)
    print(trace.describe(replay))
    if args.out is not None:
        try:
            files = trace.write_replay(replay, args.out)
        except OSError as err:
            raise ValueError(f"--out {args.out}: {err}") from None
        print("results: " + ", ".join(str(f) for f in files))
    return 0


def _scenario(args: argparse.Namespace) -> int:
    import yaml

    from kbench.metrics.perfdata import write_perfdata
    from kbench.metrics.slis import COLUMNS
    from kbench.scenarios import presets
    from kbench.scenarios.library import SCENARIOS
    from kbench.scenarios.spec import Scenario
    from kbench.sweep import results

    if args.action == "list":
        for builtin in SCENARIOS.values():
            print("\n".join(builtin.describe()))
        print("\npresets (data/presets; the published experiments' configurations and workloads):")
        for name in presets.preset_names():
            print(f"  {name}")
        return 0
    if not args.scenario:
        raise ValueError(
            f"scenario: give a YAML file, a built-in ({', '.join(SCENARIOS)}) or a preset "
            f"({', '.join(presets.preset_names())})"
        )
    if args.scenario in SCENARIOS:
        kwargs = {}
        for item in args.set:
            key, sep, value = item.partition("=")
            if not sep:
                raise ValueError(f"--set {item!r}: expected NAME=VALUE")
            kwargs[key.strip()] = yaml.safe_load(value)
        sc = SCENARIOS[args.scenario](**kwargs)
    elif args.scenario in presets.preset_names():
        if args.set:
            raise ValueError("--set applies to built-in scenarios; give a scenario file with preset: <name>")
        sc = Scenario.from_preset(args.scenario)
    elif Path(args.scenario).exists():
        if args.set:
            raise ValueError("--set applies to built-in scenarios; edit the YAML file instead")
        sc = Scenario.from_yaml(args.scenario)
    else:
        raise ValueError(
            f"scenario {args.scenario!r}: no such file, built-in or preset; built-ins: {', '.join(SCENARIOS)}; "
            f"presets: {', '.join(presets.preset_names())}"
        )
    if args.config is not None:
        sc.cluster = replace(sc.cluster, config=components.load_file(args.config, sc.cluster.config))
    document = yaml.safe_dump_all(sc.documents(), sort_keys=False).encode()
    if args.action == "show":
        print(document.decode(), end="")
        return 0
    if args.out is None:  # a new folder per run; scenario.yaml (what ran) is its claim
        parent = Path("results") / "scenario" / sc.name
        out = results.new_run_folder(parent, "scenario.yaml", document)
        results.set_latest(parent, out)
    else:
        out = args.out
        held = sorted(p.name for p in out.iterdir()) if out.is_dir() else []
        if held:
            shown = ", ".join(held[:3]) + (", ..." if len(held) > 3 else "")
            raise ValueError(
                f"--out {out}: already holds files ({shown}); give a new or empty folder, or leave "
                "--out out for a new one"
            )
        results.claim(out, "scenario.yaml", document)
    result = sc.run(progress=not args.no_progress)
    result.slis.to_csv(out / "slis.csv", index=False)
    result.pod_startup.to_parquet(out / "pod_startup.parquet", index=False)
    files = write_perfdata(result.slis, out)
    shown = result.slis[result.slis["sli"] != "APIResponsiveness"]
    api = result.slis[result.slis["sli"] == "APIResponsiveness"].sort_values("p99", ascending=False).head(5)
    with pd.option_context("display.width", 200, "display.max_columns", 20, "display.float_format", "{:,.4g}".format):
        print(pd.concat([shown, api])[[c for c in COLUMNS if c not in ("max", "passed")]].to_string(index=False))
    for failure in result.failing():
        print(f"FAILED: {failure}")
    print(
        f"\n{sc.name}: {result.sim_seconds:,.0f} simulated s in {result.wall_seconds:,.1f} wall s "
        f"({result.events:,} events); {result.verdict()}"
    )
    print(f"results: {out / 'slis.csv'}, {len(files)} PerfData files")
    return 0 if result.passed else 1


def _run(args: argparse.Namespace) -> int:
    names = [n.strip() for n in args.sweeps.split(",") if n.strip()]
    for name in names:
        sweep = get_sweep(name)  # every name is checked before anything runs
        sweep.grid(args.preset)
    started = time.perf_counter()
    status = 0
    shared = {k: getattr(args, k) for k in ("preset", "out", "seed", "jobs", "no_progress")}
    parser = _parser()
    for name in names:
        code = _sweep(argparse.Namespace(**{**vars(parser.parse_args(["sweep", name])), **shared}))
        if code == INTERRUPTED:
            return code
        status = max(status, code)
        print()
    print(
        f"kbench run: {len(names)} sweeps ({', '.join(names)}) in {time.perf_counter() - started:.0f} s wall; "
        f"results under {args.out}/<sweep>/latest/"
    )
    return status


def _sweep(args: argparse.Namespace) -> int:
    return _run_sweep(args)[0]


def _run_sweep(args: argparse.Namespace) -> tuple[int, Path | None]:
    """``kbench sweep``: run it and print its summary; the exit code and the run's folder (None if interrupted)."""
    sweep = get_sweep(args.name)
    overrides = sweep.parse_overrides(args.param) if args.param else None
    if args.config is not None:
        if not sweep.components:
            raise ValueError(f"--config: sweep {sweep.name!r} does not build a cluster; the cluster sweep takes it")
        fields = components.sweepable(components.load_file(args.config), str(args.config))
        overrides = {**{k: [sweep.param(k).check(v)] for k, v in fields.items()}, **(overrides or {})}
    print(
        f"kbench sweep {sweep.name}: {'resuming' if args.resume else 'preset ' + (args.preset or 'quick')}"
        f"{'' if args.seed is None else f', seed {args.seed}'}"
    )
    print(f"  {sweep.description}")
    started = time.perf_counter()
    try:
        table, run_dir, figures = run_sweep(
            sweep.name,
            args.preset,
            overrides,
            args.out,
            args.run,
            args.seed,
            args.jobs,
            progress=not args.no_progress,
            dask=args.dask,
            resume=args.resume,
            seeds=args.seeds,
        )
    except Interrupted as stop:
        print(
            f"\nkbench: {stop}; resume with: kbench sweep {sweep.name} --out {args.out} --run {stop.run_dir.name} "
            "--resume",
            file=sys.stderr,
        )
        return INTERRUPTED, None
    with pd.option_context("display.width", 200, "display.max_columns", 20, "display.float_format", "{:,.3g}".format):
        print(table[list(sweep.summary)].to_string(index=False))
    print(f"\n{len(table)} points in {time.perf_counter() - started:.1f} s wall")
    print(f"results: {run_dir / 'results.parquet'}")
    print("figures: " + ", ".join(str(f) for f in figures if f.suffix == ".png"))
    failed = table[table["problems"].fillna("") != ""] if "problems" in table else table.iloc[:0]
    for row in failed.itertuples():
        print(f"FAILED point {row.point_id}: {row.problems}", file=sys.stderr)
    return (1 if len(failed) else 0), run_dir


def _validate(args: argparse.Namespace) -> int:
    from kbench.validation import OUT_OF_SAMPLE, TABLE_COLUMNS

    given = ["sweep", "validation"]
    if args.full or not args.resume:  # a resumed run keeps its own preset
        given += ["--preset", "full" if args.full else "quick"]
    if args.experiment:
        given += ["--param", "experiment=" + ",".join(args.experiment)]
    shared = {k: getattr(args, k) for k in ("out", "run", "jobs", "seed", "seeds", "dask", "resume", "no_progress")}
    code, run_dir = _run_sweep(argparse.Namespace(**{**vars(_parser().parse_args(given)), **shared}))
    if run_dir is None:  # interrupted
        return code
    table = pd.read_csv(run_dir / "validation.csv")
    print()
    with pd.option_context("display.width", 250, "display.max_columns", 20, "display.max_colwidth", 60):
        shown = [c for c in TABLE_COLUMNS if c not in ("source", "known_gap")]
        print(table[shown].to_string(index=False, float_format="{:,.4g}".format))
    for line in table[~table["within"]].itertuples():
        gap = line.known_gap if isinstance(line.known_gap, str) and line.known_gap else "no known_gap recorded"
        print(f"outside tolerance: {line.experiment} {line.metric}: {gap}")
    oos = table[table["role"] == OUT_OF_SAMPLE]
    print(
        f"\n{int(oos['within'].sum())} of {len(oos)} out-of-sample figures within tolerance "
        f"({int(table['within'].sum())} of {len(table)} in all); report: {run_dir / 'validation.md'}"
    )
    return code


def _config(args: argparse.Namespace) -> int:
    if not args.yaml:
        print(components.describe(args.component))
        return 0
    import yaml

    names = components.select(args.component)
    configs = components.defaults()
    flags = {n: configs[n].to_manifest() for n in names if n in components.FLAGGED}
    docs = ([flags] if flags else []) + [configs[n].to_manifest() for n in names if n not in components.FLAGGED]
    print(yaml.safe_dump_all(docs, sort_keys=False), end="")
    return 0


def _proxy(args: argparse.Namespace) -> int:
    from kbench.api.core import load_manifests
    from kbench.proxy import Proxier, ProxierConfig

    settings = load_manifests(args.proxier.read_text(), str(args.proxier)) if args.proxier else []
    if len(settings) > 1:
        raise ValueError(f"--proxier {args.proxier}: expected one mapping of settings; got {len(settings)} documents")
    proxier = Proxier(args.mode, ProxierConfig.from_dict(settings[0] if settings else None))
    for line in proxier.sync(args.manifests.read_text(), str(args.manifests)):
        print(f"kbench: warning: {line}", file=sys.stderr)  # what kube-proxy ignores (it logs it)
    if args.action == "render":
        print(proxier.render(args.format), end="")
        return 0
    if not args.destination or ":" not in args.destination:
        raise ValueError("--destination: required for trace, as IP:PORT (e.g. 172.30.0.41:80)")
    host, _, port = args.destination.rpartition(":")
    if not port.isdigit():
        raise ValueError(f"--destination: port must be a number, got {port!r}")
    outputs, masq = proxier.trace(args.source, args.protocol, host.strip("[]"), int(port))
    if not outputs and not masq:
        print(proxier.unmatched(host.strip("[]"), args.protocol, int(port)))
        return 0
    print(f"{', '.join(outputs)}{'  [masqueraded]' if masq else ''}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``kbench`` command."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "sweep":
            return _sweep(args)
        if args.command == "run":
            return _run(args)
        if args.command == "report":
            from kbench.report import write_report

            print("\n".join(str(f) for f in write_report(args.run)))
            return 0
        if args.command == "plot":
            from kbench.report import replot

            formats = tuple(f.strip() for f in args.formats.split(",") if f.strip())
            if not formats or set(formats) - {"png", "svg", "pdf"}:
                raise ValueError(f"--formats: choose from png, svg, pdf; got {args.formats!r}")
            files = replot(
                args.run,
                args.metric,
                args.x,
                False if args.linear_x else None,
                args.log_y or None,
                not args.no_bands,
                formats,
            )
            print("\n".join(str(f) for f in files))
            return 0
        if args.command == "proxy":
            return _proxy(args)
        if args.command == "scenario":
            return _scenario(args)
        if args.command == "config":
            return _config(args)
        if args.command == "trace":
            return _trace(args)
        if args.command == "validate":
            return _validate(args)
    except (ValueError, OSError) as err:
        print(f"kbench: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\nkbench: interrupted", file=sys.stderr)
        return INTERRUPTED
    return 1


def entry() -> None:
    """The ``kbench`` command: :func:`main`, then exit without collecting what the command made
    (:func:`kbench.sim.collector.skip_final_collection`)."""
    code = main()
    collector.skip_final_collection()
    sys.exit(code)


if __name__ == "__main__":
    entry()
