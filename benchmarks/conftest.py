"""Shared helpers for the benchmarks: timing the plain reference in the same process, peak memory of a run, where
a whole-cluster run's time goes."""

from __future__ import annotations

import atexit
import cProfile
import math
import multiprocessing
import pstats
import resource
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager

from kbench.sim import Engine, collector


def best_of(fn: Callable[[], object], repeat: int = 5) -> float:
    """Fastest wall time of ``repeat`` calls of ``fn`` (seconds), the same statistic for every reference."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def record(benchmark, ops: int, reference_seconds: float, target: float | None = None, **extra) -> None:
    """Store ops/s of the timed body, of the reference, their ratio and the target in ``extra_info``.

    ``ops_per_s`` comes from the median round (robust to a noisy neighbour on a shared
    machine); the mean and best rounds are kept beside it. The reference is timed as
    its best round, so the ratio is conservative.
    """
    stats = benchmark.stats.stats if benchmark.stats else None
    median, mean, best = (stats.median, stats.mean, stats.min) if stats else (float("nan"),) * 3
    rate = ops / median
    reference = ops / reference_seconds
    benchmark.extra_info.update(
        ops_per_round=ops,
        ops_per_s=rate,
        ops_per_s_mean=ops / mean,
        ops_per_s_best_round=ops / best,
        reference_ops_per_s=reference,
        ratio=rate / reference,
        **extra,
    )
    if target is not None:
        benchmark.extra_info.update(target_ops_per_s=target, meets_target=rate >= target)


@contextmanager
def fresh_process() -> Iterator[ProcessPoolExecutor]:
    """One spawned worker with kbench imported, for a run whose peak memory is recorded as asv's ``peakmem``
    records it (the resident set's high-water mark of a process that ran only that benchmark)."""
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        pool.submit(_import_kbench).result()
        yield pool


def in_fresh_process(fn: Callable[..., dict], *args) -> dict:
    """``fn(*args)`` run in a fresh process (its peak memory is that run's)."""
    with fresh_process() as pool:
        return pool.submit(fn, *args).result()


def timed_in_fresh_process(benchmark, fn: Callable[..., dict], *args) -> dict:
    """One benchmark round of ``fn(*args)`` in a fresh process; its start and imports stay out of the timing."""
    result: dict = {}
    with fresh_process() as pool:
        benchmark.pedantic(lambda: result.update(pool.submit(fn, *args).result()), rounds=1, iterations=1)
    return result


def per_request_against_smaller(
    benchmark, fn: Callable[..., dict], full: tuple, small: tuple, reference: str, **info
) -> tuple[dict, dict]:
    """A whole-cluster benchmark against the same at a smaller size: ``fn(*full)`` timed as the benchmark's round and
    ``fn(*small)`` beside it, each in a fresh process (``fn`` returns :func:`scenario_figures`). ``extra_info`` gets
    the full run's figures, ``info``, the reference (described by ``reference``) and the ratio of its wall per API
    request over the full run's, which a cost per request growing with the cluster lowers. Returns both runs'
    figures."""
    result = timed_in_fresh_process(benchmark, fn, *full)
    smaller = in_fresh_process(fn, *small)
    benchmark.extra_info.update(
        **result,
        **info,
        reference=f"{reference}: its wall per API request",
        reference_wall_s=smaller["wall_s"],
        reference_apiserver_requests=smaller["apiserver_requests"],
        ratio=smaller["wall_us_per_request"] / result["wall_us_per_request"],
    )
    return result, smaller


def _import_kbench() -> None:
    import kbench.cluster  # noqa: F401  (the import and kernel loading stay out of the timed call)

    atexit.register(collector.skip_final_collection)  # the worker ends without scanning the cluster it ran


def scenario_figures(scenario) -> dict:
    """Run a whole-cluster ``scenario``; its wall time, rates, verdict and peak memory (the whole-cluster benchmarks'
    figures)."""
    started = time.perf_counter()
    result = scenario.run(progress=False)
    wall = time.perf_counter() - started
    return {
        "wall_s": wall,
        "sim_s": result.sim_seconds,
        "sim_s_per_wall_s": result.sim_seconds / wall,
        "events_per_s": result.events / wall,
        "pods_per_wall_s": result.counts["pods_started"] / wall,
        "pods_started": result.counts["pods_started"],
        "apiserver_requests": result.cluster.api.requests,
        "wall_us_per_request": wall / result.cluster.api.requests * 1e6,
        "slo_passed": result.passed,
        "peak_rss_mib": peak_rss_mib(),
    }


def peak_rss_mib() -> float:
    """This process's peak resident set so far, MiB: Linux's ``VmHWM`` (/proc/self/status, KiB), the high-water mark
    of the process's own address space. ``ru_maxrss`` is not that in a spawned worker: Linux carries the spawning
    process's resident set into it across the exec, so a worker spawned by a pytest process holding 2.3 GiB (after
    the proxy benchmarks) reported 2,314 MiB for runs that peak at 291 and 537 MiB. ``ru_maxrss`` (KiB on Linux)
    where there is no /proc."""
    try:
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def where_time_goes(engine: Engine, seconds: float, warmup: float = 0.0) -> dict[str, dict[str, float]]:
    """Share of wall time per kbench package and per module over ``seconds`` simulated seconds of ``engine``'s run,
    after ``warmup`` simulated seconds not profiled, as a benchmark's ``extra_info`` keeps them:
    ``{"time_share_by_package": {...},
    "time_share_by_module": {...}}``, largest first. Each function's own time (cProfile's tottime) goes to its module;
    a built-in's (``dict.get``, ``orjson.dumps``, ``heapq`` ...) to the modules that called it, in proportion to the
    time each call site spent in it (to its calls when none took a measurable time), so ``python/other`` is the Python
    code outside kbench and the built-ins it called. The collector runs as scenarios run it: with the default
    thresholds a young collection every 700 allocations was charged to whichever function allocated, which moved the
    shares by several points from run to run."""
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not 0 < seconds < math.inf:
        raise ValueError(f"seconds: simulated seconds to profile, a number > 0; got {seconds!r}")
    if isinstance(warmup, bool) or not isinstance(warmup, int | float) or not 0 <= warmup < math.inf:
        raise ValueError(f"warmup: simulated seconds to run before profiling, a number >= 0; got {warmup!r}")
    profile = cProfile.Profile()
    with collector.long_run():
        collector.run_settled(engine, engine.now + warmup)
        profile.enable()
        collector.run_settled(engine, engine.now + seconds)
        profile.disable()

    def module(path: str) -> str:
        parts = path.replace("\\", "/").split("/kbench/")
        return parts[-1].removesuffix(".py").replace("/", ".") if len(parts) > 1 else "python/other"

    by_module: dict[str, float] = defaultdict(float)
    for (path, _, _), (_, _, tottime, _, callers) in pstats.Stats(profile).stats.items():
        if path != "~" or not callers:
            by_module[module(path)] += tottime
            continue
        weight = 2 if any(edge[2] for edge in callers.values()) else 1  # each call site's time, else its calls
        spent = sum(edge[weight] for edge in callers.values())
        for (caller, _, _), edge in callers.items():
            by_module[module(caller)] += tottime * edge[weight] / spent
    by_package: dict[str, float] = defaultdict(float)
    for name, t in by_module.items():
        by_package[name.split(".")[0]] += t
    total = sum(by_module.values())

    def shares(times: dict[str, float]) -> dict[str, float]:
        return {name: round(t / total, 3) for name, t in sorted(times.items(), key=lambda kv: -kv[1])}

    return {"time_share_by_package": shares(by_package), "time_share_by_module": shares(by_module)}
