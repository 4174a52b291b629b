"""Tests for kbench.sim.rng: named streams are reproducible and independent."""

import numpy as np
import pytest

from kbench.sim import Streams


def test_same_seed_and_name_give_the_same_numbers():
    assert np.array_equal(Streams(5)("etcd").random(10), Streams(5)("etcd").random(10))
    assert Streams(5).python("x").random() == Streams(5).python("x").random()


def test_streams_are_cached_per_name():
    s = Streams(1)
    assert s("a") is s("a") and s.python("a") is s.python("a")


def test_adding_a_stream_never_shifts_another():
    lone = Streams(9)
    alone = lone("scheduler").random(5)
    crowded = Streams(9)
    crowded("kubelet").random(1000)
    crowded("proxy").random(3)
    assert np.array_equal(crowded("scheduler").random(5), alone)


def test_different_names_or_seeds_differ():
    s = Streams(2)
    assert not np.array_equal(s("a").random(4), s("b").random(4))
    assert not np.array_equal(Streams(2)("a").random(4), Streams(3)("a").random(4))


@pytest.mark.parametrize("seed", [-1, 1.5, "7", True])
def test_bad_seed_is_rejected(seed):
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        Streams(seed)


def test_empty_stream_name_is_rejected():
    with pytest.raises(ValueError, match="stream name"):
        Streams(0)("")
