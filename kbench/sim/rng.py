"""Named random streams derived from one seed.

Each stream's state comes from ``SeedSequence(seed, spawn_key=hash(name))``, so
a stream depends only on the seed and its own name: adding a component (a new
name) never shifts the numbers another component draws.
"""

from __future__ import annotations

import hashlib
import random

import numpy as np


def _spawn_key(name: str) -> tuple[int, ...]:
    digest = hashlib.blake2b(name.encode("utf-8"), digest_size=16).digest()
    return tuple(int.from_bytes(digest[i : i + 4], "little") for i in range(0, 16, 4))


class Streams:
    """Factory of named, independent random generators.

    Parameters
    ----------
    seed : int
        The one seed of a run (a non-negative integer).
    """

    __slots__ = ("seed", "_numpy", "_python")

    def __init__(self, seed: int) -> None:
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        self.seed = int(seed)
        self._numpy: dict[str, np.random.Generator] = {}
        self._python: dict[str, random.Random] = {}

    def seed_sequence(self, name: str) -> np.random.SeedSequence:
        """The SeedSequence of stream ``name``."""
        if not isinstance(name, str) or not name:
            raise ValueError(f"stream name must be a non-empty string, got {name!r}")
        return np.random.SeedSequence(self.seed, spawn_key=_spawn_key(name))

    def __call__(self, name: str) -> np.random.Generator:
        """The NumPy generator of stream ``name`` (the same object on every call)."""
        gen = self._numpy.get(name)
        if gen is None:
            gen = self._numpy[name] = np.random.Generator(np.random.PCG64(self.seed_sequence(name)))
        return gen

    def python(self, name: str) -> random.Random:
        """A ``random.Random`` for stream ``name``: cheaper per scalar draw than NumPy."""
        gen = self._python.get(name)
        if gen is None:
            state = self.seed_sequence("python:" + name).generate_state(4, np.uint64)
            gen = self._python[name] = random.Random(int.from_bytes(state.tobytes(), "little"))
        return gen
