"""Shared helpers for the benchmarks: timing the plain reference in the same process."""

from __future__ import annotations

import time
from collections.abc import Callable


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
