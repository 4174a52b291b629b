"""Sweep grids: typed parameters, presets, overrides, stable point ids and seeds."""

from __future__ import annotations

import pytest

from kbench.sweep import get_sweep, sweep_names
from kbench.sweep.grid import Param, point_id, point_seed


def test_param_parses_and_validates():
    p = Param("keys", int, "keys", minimum=1)
    assert p.parse("1000, 1e4") == [1000, 10_000]
    with pytest.raises(ValueError, match="'keys': 0 is out of range"):
        p.parse("0")
    with pytest.raises(ValueError, match="'keys': '2.5' is not a finite int"):
        p.parse("2.5")
    with pytest.raises(ValueError, match="empty value list"):
        p.parse("1,,2")
    choice = Param("mode", str, "mode", choices=("a", "b"))
    with pytest.raises(ValueError, match="'mode': 'c' is not allowed; mode: mode \\(one of a, b\\)"):
        choice.check("c")
    flag = Param("on", bool, "switch")
    assert flag.parse("true,0") == [True, False]


def test_grid_is_the_product_of_the_preset_with_overrides():
    sweep = get_sweep("etcd")
    quick = sweep.grid("quick")
    assert len(quick) == 3 * 3 * 3
    assert set(quick[0]) == set(sweep.param_names)
    small = sweep.grid("quick", sweep.parse_overrides(["keys=10", "members=3", "clients=1,2"]))
    assert [(p["keys"], p["members"], p["clients"]) for p in small] == [(10, 3, 1), (10, 3, 2)]


def test_bad_sweep_inputs_list_what_is_valid():
    assert sweep_names() == ["cluster", "etcd", "proxy", "scheduler", "trace", "validation"]
    with pytest.raises(ValueError, match="unknown sweep .x.; valid: cluster, etcd, proxy, scheduler"):
        get_sweep("x")
    sweep = get_sweep("etcd")
    with pytest.raises(ValueError, match="no parameter 'size'; valid: keys, value_size"):
        sweep.parse_overrides(["size=1"])
    with pytest.raises(ValueError, match="expected name=value"):
        sweep.parse_overrides(["keys"])
    with pytest.raises(ValueError, match="unknown preset 'huge'; valid: quick, full"):
        sweep.grid("huge")


def test_point_ids_and_seeds_are_stable_and_order_free():
    a = point_id("etcd", {"keys": 1, "members": 3})
    assert a == point_id("etcd", {"members": 3, "keys": 1})
    assert a != point_id("etcd", {"keys": 2, "members": 3})
    assert point_seed(0, a) == point_seed(0, a) != point_seed(1, a)
