"""Closed-loop clients on a modelled etcd, as etcd's ``benchmark`` tool drives a real one.

Each client sends one request, waits for the answer, and sends the next: a put
of a random key (with probability ``write_ratio``) or a one-key range, spread
over the members round-robin ("all members" in etcd's op-guide tables, or
``target="leader"``). Latencies are recorded after a warm-up.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kbench.etcd.cluster import EtcdCluster
from kbench.profiles import Profile
from kbench.sim import Engine, Streams

TARGETS = ("all", "leader")


@dataclass
class WorkloadResult:
    """Latencies (seconds) of the writes and reads completed in the measured window."""

    duration: float
    write_latency: np.ndarray
    read_latency: np.ndarray
    raft_rounds: int
    engine_steps: int

    @property
    def throughput(self) -> float:
        """Requests completed per simulated second."""
        return (len(self.write_latency) + len(self.read_latency)) / self.duration

    def summary(self) -> dict[str, float]:
        """Throughput and p50/p99 latency (ms) of writes, reads and all requests."""
        out = {
            "throughput_ops_per_s": self.throughput,
            "write_ops_per_s": len(self.write_latency) / self.duration,
            "read_ops_per_s": len(self.read_latency) / self.duration,
        }
        both = np.concatenate([self.write_latency, self.read_latency])
        for name, values in (("write", self.write_latency), ("read", self.read_latency), ("all", both)):
            for q in (50, 99):
                out[f"{name}_latency_p{q}_ms"] = float(np.percentile(values, q) * 1e3) if len(values) else np.nan
            out[f"{name}_latency_mean_ms"] = float(values.mean() * 1e3) if len(values) else np.nan
        out["requests_per_raft_round"] = len(self.write_latency) / max(self.raft_rounds, 1)
        return out


def run_closed_loop(
    *,
    clients: int,
    write_ratio: float,
    keys: int,
    value_size: int,
    members: int | None = None,
    duration: float = 1.0,
    warmup: float = 0.2,
    serializable: bool = False,
    target: str = "all",
    profile: Profile | None = None,
    seed: int = 0,
) -> WorkloadResult:
    """Run ``clients`` closed-loop clients for ``warmup + duration`` simulated seconds.

    The key space is pre-loaded (one revision per key) so reads find values.
    """
    if target not in TARGETS:
        raise ValueError(f"target must be one of {', '.join(TARGETS)}; got {target!r}")
    if not 0.0 <= write_ratio <= 1.0:
        raise ValueError(f"write_ratio must be in [0, 1]; got {write_ratio!r}")
    for name, number in (("clients", clients), ("keys", keys)):
        if isinstance(number, bool) or not isinstance(number, (int, np.integer)) or number < 1:
            raise ValueError(f"{name} must be a positive integer; got {number!r}")
    engine, streams = Engine(), Streams(seed)
    cluster = EtcdCluster(engine, profile, streams, members)
    names = [b"/bench/key-%08d" % i for i in range(keys)]
    value = b"v" * value_size
    cluster.store.put_many(cluster.store.keyset(names), value)
    writes: list[float] = []
    reads: list[float] = []
    start_measure = warmup

    def client(i: int):
        rng = streams.python(f"etcd/client/{i}")
        member = 0 if target == "leader" else i % cluster.members
        while True:
            key = names[rng.randrange(keys)]
            began = engine.now
            if rng.random() < write_ratio:
                yield cluster.put(key, value, member=member)
                sink = writes
            else:
                yield cluster.range(key, member=member, serializable=serializable)
                sink = reads
            if began >= start_measure:
                sink.append(engine.now - began)

    for i in range(clients):
        engine.process(client(i), name=f"client/{i}")
    engine.run(until=warmup)
    rounds = cluster.rounds
    engine.run(until=warmup + duration)
    return WorkloadResult(duration, np.asarray(writes), np.asarray(reads), cluster.rounds - rounds, engine.steps)
