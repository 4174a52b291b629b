"""selectHost: reservoir sampling among the top-scored nodes, from a seeded splitmix64 stream.

Upstream (kube-scheduler up to v1.34, ``schedule_one.go`` selectHost) keeps the
first node with the top score and lets the i-th tied node replace it with
probability 1/i. kbench draws the same sampler with skips: after the i-th tie
the next replacement is tie number floor(i / u) + 1, u uniform in (0, 1], which
is exactly reservoir sampling with about ln(ties) draws instead of one per tie.
The compiled kernel implements the same steps; both read the generator state
from a one-element ``uint64`` array, so they stay in lockstep.
"""

from __future__ import annotations

import math

import numpy as np

MASK = (1 << 64) - 1


def new_rng(seed: int) -> np.ndarray:
    """Generator state for a seed."""
    return np.array([seed & MASK], np.uint64)


def next_unit(rng: np.ndarray) -> float:
    """splitmix64 step; returns u in (0, 1]."""
    state = (int(rng[0]) + 0x9E3779B97F4A7C15) & MASK
    rng[0] = state
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    z ^= z >> 31
    return ((z >> 11) + 1) * 2.0**-53


def reservoir_pick(ties: int, rng: np.ndarray) -> int:
    """Index (0-based, in evaluation order) of the tie reservoir sampling keeps; no draw for a single tie."""
    chosen, seen = 0, 1
    while ties > 1:
        nxt = math.floor(seen / next_unit(rng)) + 1
        if nxt > ties:
            break
        chosen, seen = nxt - 1, nxt
    return chosen


def select_host(totals: np.ndarray, rng: np.ndarray) -> int:
    """Position (in ``totals``) of the chosen node: a uniform pick among the maxima by reservoir sampling."""
    top = totals.max()
    tied = np.flatnonzero(totals == top)
    return int(tied[reservoir_pick(len(tied), rng)])
