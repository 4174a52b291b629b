"""Tests for kbench.sim.dist: specs, quantiles, sampling and errors."""

import math

import numpy as np
import pytest

from kbench.sim import Constant, Empirical, Exponential, LogNormal, Uniform, from_spec


def rng():
    return np.random.default_rng(42)


def test_number_spec_is_a_constant():
    d = from_spec(0.002)
    assert d == Constant(0.002)
    assert d.sampler(rng())() == 0.002 and d.quantile(0.99) == 0.002


def test_each_kind_from_spec_with_citation_keys_allowed():
    assert from_spec({"dist": "uniform", "low": 1, "high": 3, "source": "x"}) == Uniform(1.0, 3.0)
    assert from_spec({"dist": "exponential", "mean": 2, "assumed": "why"}) == Exponential(2.0)
    assert isinstance(from_spec({"dist": "lognormal", "mu": 0, "sigma": 1}), LogNormal)
    assert isinstance(from_spec({"dist": "empirical", "quantiles": {0: 1, 1: 2}}), Empirical)


def test_lognormal_from_median_and_p99_hits_both():
    d = from_spec({"dist": "lognormal", "median": 0.001, "p99": 0.01})
    assert d.quantile(0.5) == pytest.approx(0.001)
    assert d.quantile(0.99) == pytest.approx(0.01)
    samples = d.sample(rng(), 200_000)
    assert np.median(samples) == pytest.approx(0.001, rel=0.02)
    assert np.mean(samples) == pytest.approx(d.mean(), rel=0.05)


def test_empirical_interpolates_and_clamps():
    d = from_spec({"dist": "empirical", "quantiles": {0.5: 2.0, 0.0: 1.0, 1.0: 4.0}})
    assert d.quantile(0.25) == pytest.approx(1.5)
    assert d.quantile(0.75) == pytest.approx(3.0)
    assert d.mean() == pytest.approx(0.5 * 1.5 + 0.5 * 3.0)
    s = d.sample(rng(), 100_000)
    assert s.min() >= 1.0 and s.max() <= 4.0
    assert np.mean(s) == pytest.approx(d.mean(), rel=0.02)
    clamped = from_spec({"dist": "empirical", "quantiles": {0.5: 2.0, 0.9: 3.0}})
    assert clamped.quantile(0.1) == 2.0 and clamped.quantile(0.99) == 3.0


def test_uniform_and_exponential_moments():
    u, e = Uniform(1.0, 3.0), Exponential(0.5)
    assert np.mean(u.sample(rng(), 100_000)) == pytest.approx(2.0, rel=0.01)
    assert np.mean(e.sample(rng(), 100_000)) == pytest.approx(0.5, rel=0.02)
    assert e.quantile(0.5) == pytest.approx(0.5 * math.log(2))


def test_sampler_is_deterministic_and_matches_block_draws():
    d = Exponential(1.0)
    draw = d.sampler(np.random.default_rng(1), block=8)
    values = [draw() for _ in range(20)]
    again = d.sampler(np.random.default_rng(1), block=8)
    assert values == [again() for _ in range(20)]
    reference = np.random.default_rng(1)
    expected = np.concatenate([d.sample(reference, 8) for _ in range(3)])[:20]
    assert np.allclose(values, expected)


@pytest.mark.parametrize(
    "spec, message",
    [
        ({"dist": "gamma"}, r"fsync\.dist: unknown distribution 'gamma'; allowed: constant, uniform"),
        ({"dist": "uniform", "low": 2, "high": 1}, r"fsync\.high: must be >= low"),
        ({"dist": "exponential", "mean": 0}, r"fsync\.mean: must be > 0"),
        ({"dist": "exponential"}, r"fsync: missing field 'mean'"),
        ({"dist": "lognormal", "median": 2, "p99": 1}, r"fsync\.p99: must be >= median"),
        ({"dist": "lognormal", "median": 1, "p99": 2, "p90": 1}, r"fsync: unknown field\(s\) \['p90'\]"),
        ({"dist": "empirical", "quantiles": {0.5: 1}}, r"fsync\.quantiles: must map at least two"),
        ({"dist": "empirical", "quantiles": {0.1: 2, 0.9: 1}}, r"values must not decrease"),
        ({"dist": "empirical", "quantiles": {0.1: 1, 1.5: 2}}, r"outside \[0, 1\]"),
        ("fast", r"fsync\.value: must be a finite number"),
        (-1, r"fsync\.value: must be >= 0"),
    ],
)
def test_bad_specs_name_the_field(spec, message):
    with pytest.raises(ValueError, match=message):
        from_spec(spec, where="fsync")
