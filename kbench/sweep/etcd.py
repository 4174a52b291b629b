"""The ``etcd`` sweep: key count, value size, op mix, members and clients.

Each point measures two things:

- ``wall_*``: kbench's own MVCC kernels on this machine at that key count
  (batched puts and point ranges at ten revisions per key, single-call put and
  range), Numba compilation excluded by a warm-up;
- ``sim_*``: the modelled etcd member set under closed-loop clients with the
  calibrated profile: throughput and p50/p99 latency of writes and reads.
"""

from __future__ import annotations

import time

import numpy as np

from kbench import plot
from kbench.etcd import Store
from kbench.etcd.workload import run_closed_loop
from kbench.profiles import load_profile
from kbench.sweep.grid import PROFILE, Param

PARAMS = (
    Param("keys", int, "keys in the store", minimum=1, maximum=10_000_000),
    Param("value_size", int, "bytes per value", minimum=0, maximum=1_000_000),
    Param("write_ratio", float, "share of requests that are puts (the rest are one-key ranges)", minimum=0, maximum=1),
    Param("members", int, "etcd members", choices=(1, 3, 5)),
    Param("clients", int, "closed-loop clients", minimum=1, maximum=100_000),
    Param("consistency", str, "read consistency", choices=("linearizable", "serializable")),
    Param("duration", float, "simulated seconds measured per point", minimum=0.01, maximum=3600),
    PROFILE,
)

PRESETS = {
    "quick": {
        "keys": [1_000, 10_000, 100_000],
        "value_size": [256],
        "write_ratio": [0.5],
        "members": [1, 3, 5],
        "clients": [1, 30, 300],
        "consistency": ["linearizable"],
        "duration": [0.5],
        "profile": ["default"],
    },
    "full": {
        "keys": [1_000, 10_000, 100_000, 1_000_000],
        "value_size": [256, 4096],
        "write_ratio": [0.0, 0.5, 1.0],
        "members": [1, 3, 5],
        "clients": [1, 10, 100, 1000],
        "consistency": ["linearizable"],
        "duration": [1.0],
        "profile": ["default"],
    },
}


def _rate(ops: int, fn) -> float:
    start = time.perf_counter()
    fn()
    return ops / (time.perf_counter() - start)


def measure_kernels(keys: int, value_size: int, seed: int) -> dict[str, float]:
    """Wall-clock ops/s of kbench's MVCC at ``keys`` keys with ten revisions per key."""
    rng = np.random.default_rng(seed)
    value = b"v" * value_size
    revisions = 10 * keys
    store = Store(capacity=2 * revisions + 1024)
    keyset = store.keyset([b"/bench/key-%08d" % i for i in range(keys)])
    warm = keyset[np.zeros(1, np.int64)]
    store.put_many(warm, value)  # compile (or load from cache) outside the timings
    store.range_many(warm)
    store.put(warm.keys[0], value)
    store.range(warm.keys[0])
    batch = keyset[rng.integers(0, keys, revisions)]
    put_rate = _rate(revisions, lambda: store.put_many(batch, value))
    range_rate = _rate(revisions, lambda: store.range_many(batch))
    single = [keyset.keys[i] for i in rng.integers(0, keys, 5_000).tolist()]
    put_one = _rate(len(single), lambda: [store.put(key, value) for key in single])
    range_one = _rate(len(single), lambda: [store.range(key) for key in single])
    return {
        "wall_put_many_ops_per_s": put_rate,
        "wall_range_many_ops_per_s": range_rate,
        "wall_put_ops_per_s": put_one,
        "wall_range_ops_per_s": range_one,
    }


def run_point(params: dict, seed: int) -> dict:
    """Measure the kernels, then simulate the workload; returns wall_* and sim_* columns."""
    metrics = measure_kernels(params["keys"], params["value_size"], seed)
    started = time.perf_counter()
    result = run_closed_loop(
        clients=params["clients"],
        write_ratio=params["write_ratio"],
        keys=params["keys"],
        value_size=params["value_size"],
        members=params["members"],
        duration=params["duration"],
        serializable=params["consistency"] == "serializable",
        profile=load_profile(params["profile"]),
        seed=seed,
    )
    wall = time.perf_counter() - started
    metrics.update({f"sim_{name}": value for name, value in result.summary().items()})
    metrics["wall_sim_seconds"] = wall
    metrics["wall_sim_seconds_per_wall_second"] = (params["duration"] + 0.2) / wall
    metrics["wall_engine_events_per_s"] = result.engine_steps / wall
    return metrics


FIGURES = (
    plot.Spec(
        "etcd_throughput", "Modelled etcd: throughput", ["sim_throughput_ops_per_s"], "keys", facet="members", logy=True
    ),
    plot.Spec(
        "etcd_latency",
        "Modelled etcd: read and write latency",
        [
            ["sim_read_latency_p50_ms", "sim_read_latency_p99_ms"],
            ["sim_write_latency_p50_ms", "sim_write_latency_p99_ms"],
        ],
        "keys",
        facet="members",
        logy=True,
    ),
    plot.Spec(
        "etcd_kernels",
        "kbench MVCC kernels on this machine",
        ["wall_put_many_ops_per_s", "wall_range_many_ops_per_s", "wall_put_ops_per_s", "wall_range_ops_per_s"],
        "keys",
        split=["value_size"],
        logy=True,
    ),
    plot.Spec(
        "etcd_latency_vs_throughput",
        "Modelled etcd: p99 latency",
        [["sim_read_latency_p99_ms"], ["sim_write_latency_p99_ms"]],
        "sim_throughput_ops_per_s",
        facet="members",
        along="clients",
        logy=True,
    ),
)
"""Throughput and latency (reads and writes apart: a p50 over both jumps between the two) against keys, the
kernels' own speed (measured once per point: the points at one key count and value size are its repeats), and
latency against throughput as clients grow."""


NAME = "etcd"
DESCRIPTION = "etcd MVCC kernels (measured) and the modelled member set (simulated)"
SUMMARY = (
    "keys",
    "members",
    "clients",
    "write_ratio",
    "sim_throughput_ops_per_s",
    "sim_write_latency_p50_ms",
    "sim_write_latency_p99_ms",
    "sim_read_latency_p99_ms",
    "wall_put_many_ops_per_s",
    "wall_range_many_ops_per_s",
)
