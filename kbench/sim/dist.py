"""Latency distributions, built from profile specs and sampled from named streams.

A spec is a number (a constant) or a mapping with ``dist`` and its fields::

    0.0016                                   # constant 1.6 ms
    {dist: uniform, low: 0.001, high: 0.002}
    {dist: exponential, mean: 0.002}
    {dist: lognormal, median: 0.0008, p99: 0.004}   # or mu + sigma (log space)
    {dist: empirical, quantiles: {0.0: 0.0005, 0.5: 0.0016, 0.99: 0.006, 1.0: 0.01}}

Extra keys ``source`` and ``assumed`` (the citation) are allowed and ignored here.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from itertools import chain, repeat
from statistics import NormalDist
from typing import Any, overload

import numpy as np

_Z99 = NormalDist().inv_cdf(0.99)
_CITATION_KEYS = {"source", "assumed", "unit"}


class Distribution:
    """A non-negative latency distribution (seconds)."""

    @overload
    def sample(self, rng: np.random.Generator, size: None = None) -> float: ...
    @overload
    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray: ...
    def sample(self, rng: np.random.Generator, size: int | None = None) -> float | np.ndarray:
        """Draw one value (``size=None``) or an array of ``size`` values."""
        raise NotImplementedError

    def mean(self) -> float:
        """Expected value."""
        raise NotImplementedError

    def quantile(self, q: float) -> float:
        """Inverse CDF at ``q`` in [0, 1]."""
        raise NotImplementedError

    def sampler(self, rng: np.random.Generator, block: int = 1024) -> Callable[[], float]:
        """A zero-argument callable drawing one value at a time from blocks of ``block`` draws.

        Draw order is fixed by ``rng`` and ``block``, so runs stay deterministic: a block is drawn when the one
        before it is used up. The callable is a C iterator's ``__next__`` (no Python frame per draw).
        """

        def blocks() -> Iterator[list[float]]:
            while True:
                yield self.sample(rng, block).tolist()

        return chain.from_iterable(blocks()).__next__


@dataclass(frozen=True)
class Constant(Distribution):
    """Always ``value`` seconds."""

    value: float

    def sample(self, rng: np.random.Generator, size: int | None = None) -> Any:
        return self.value if size is None else np.full(size, self.value)

    def mean(self) -> float:
        return self.value

    def quantile(self, q: float) -> float:
        return self.value

    def sampler(self, rng: np.random.Generator, block: int = 1024) -> Callable[[], float]:
        return repeat(self.value).__next__


@dataclass(frozen=True)
class Uniform(Distribution):
    """Uniform on [``low``, ``high``] seconds."""

    low: float
    high: float

    def sample(self, rng: np.random.Generator, size: int | None = None) -> Any:
        return rng.uniform(self.low, self.high, size)

    def mean(self) -> float:
        return (self.low + self.high) / 2

    def quantile(self, q: float) -> float:
        return self.low + q * (self.high - self.low)


@dataclass(frozen=True)
class Exponential(Distribution):
    """Exponential with mean ``mean_`` seconds."""

    mean_: float

    def sample(self, rng: np.random.Generator, size: int | None = None) -> Any:
        return rng.exponential(self.mean_, size)

    def mean(self) -> float:
        return self.mean_

    def quantile(self, q: float) -> float:
        return math.inf if q >= 1 else -self.mean_ * math.log1p(-q)


@dataclass(frozen=True)
class LogNormal(Distribution):
    """Log-normal: the log of the value is normal with mean ``mu`` and standard deviation ``sigma``."""

    mu: float
    sigma: float

    @classmethod
    def from_median_p99(cls, median: float, p99: float) -> LogNormal:
        """The log-normal with this median and 99th percentile."""
        return cls(math.log(median), math.log(p99 / median) / _Z99)

    def sample(self, rng: np.random.Generator, size: int | None = None) -> Any:
        return rng.lognormal(self.mu, self.sigma, size)

    def mean(self) -> float:
        return math.exp(self.mu + self.sigma**2 / 2)

    def quantile(self, q: float) -> float:
        if q <= 0:
            return 0.0
        if q >= 1:
            return math.inf
        return math.exp(self.mu + self.sigma * NormalDist().inv_cdf(q))


@dataclass(frozen=True)
class Empirical(Distribution):
    """Piecewise-linear inverse CDF through (quantile, value) points; clamped outside them."""

    qs: tuple[float, ...]
    values: tuple[float, ...]
    _q: np.ndarray = field(init=False, repr=False, compare=False)
    _v: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_q", np.asarray(self.qs, float))
        object.__setattr__(self, "_v", np.asarray(self.values, float))

    def sample(self, rng: np.random.Generator, size: int | None = None) -> Any:
        u = rng.random(size)
        out = np.interp(u, self._q, self._v)
        return float(out) if size is None else out

    def mean(self) -> float:
        # Mean of the piecewise-linear inverse CDF, with flat tails outside the points.
        q, v = self._q, self._v
        inner = float(np.sum(np.diff(q) * (v[1:] + v[:-1]) / 2))
        return inner + q[0] * v[0] + (1 - q[-1]) * v[-1]

    def quantile(self, q: float) -> float:
        return float(np.interp(q, self._q, self._v))


def _number(spec: Mapping, key: str, where: str, positive: bool = False) -> float:
    if key not in spec:
        raise ValueError(f"{where}: missing field {key!r}")
    value = spec[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{where}.{key}: must be a finite number, got {value!r}")
    if value < 0 or (positive and value == 0):
        raise ValueError(f"{where}.{key}: must be {'> 0' if positive else '>= 0'}, got {value!r}")
    return float(value)


def _check_keys(spec: Mapping, allowed: set[str], where: str) -> None:
    extra = set(spec) - allowed - _CITATION_KEYS - {"dist"}
    if extra:
        raise ValueError(f"{where}: unknown field(s) {sorted(extra)}; allowed: {sorted(allowed)}")


def _lognormal(spec: Mapping, where: str) -> LogNormal:
    if "median" in spec:
        _check_keys(spec, {"median", "p99"}, where)
        median, p99 = _number(spec, "median", where, True), _number(spec, "p99", where, True)
        if p99 < median:
            raise ValueError(f"{where}.p99: must be >= median ({median}), got {p99}")
        return LogNormal.from_median_p99(median, p99)
    _check_keys(spec, {"mu", "sigma"}, where)
    mu = spec.get("mu")
    if isinstance(mu, bool) or not isinstance(mu, (int, float)) or not math.isfinite(mu):
        raise ValueError(f"{where}.mu: must be a finite number (or give median and p99), got {mu!r}")
    return LogNormal(float(mu), _number(spec, "sigma", where))


def _empirical(spec: Mapping, where: str) -> Empirical:
    _check_keys(spec, {"quantiles"}, where)
    points = spec.get("quantiles")
    if not isinstance(points, Mapping) or len(points) < 2:
        raise ValueError(f"{where}.quantiles: must map at least two quantiles in [0, 1] to values")
    pairs = []
    for q, v in points.items():
        qf = _number({"q": q}, "q", f"{where}.quantiles")
        if qf > 1:
            raise ValueError(f"{where}.quantiles: quantile {q!r} is outside [0, 1]")
        pairs.append((qf, _number({str(q): v}, str(q), f"{where}.quantiles")))
    pairs.sort()
    qs, vs = zip(*pairs)
    if any(b <= a for a, b in zip(qs, qs[1:])):
        raise ValueError(f"{where}.quantiles: quantiles must be distinct")
    if any(b < a for a, b in zip(vs, vs[1:])):
        raise ValueError(f"{where}.quantiles: values must not decrease as the quantile grows")
    return Empirical(tuple(qs), tuple(vs))


DISTRIBUTIONS = ("constant", "uniform", "exponential", "lognormal", "empirical")


def from_spec(spec: float | int | Mapping, where: str = "distribution") -> Distribution:
    """Build a distribution from a profile spec; errors name ``where`` and the field.

    Parameters
    ----------
    spec : number or mapping
        See the module docstring.
    where : str
        Dotted path of the spec in its file, used in error messages.
    """
    if isinstance(spec, Distribution):
        return spec
    if not isinstance(spec, Mapping):
        return Constant(_number({"value": spec}, "value", where))
    kind = spec.get("dist", "constant")
    if kind == "constant":
        _check_keys(spec, {"value"}, where)
        return Constant(_number(spec, "value", where))
    if kind == "uniform":
        _check_keys(spec, {"low", "high"}, where)
        low, high = _number(spec, "low", where), _number(spec, "high", where)
        if high < low:
            raise ValueError(f"{where}.high: must be >= low ({low}), got {high}")
        return Uniform(low, high)
    if kind == "exponential":
        _check_keys(spec, {"mean"}, where)
        return Exponential(_number(spec, "mean", where, True))
    if kind == "lognormal":
        return _lognormal(spec, where)
    if kind == "empirical":
        return _empirical(spec, where)
    raise ValueError(f"{where}.dist: unknown distribution {kind!r}; allowed: {', '.join(DISTRIBUTIONS)}")
