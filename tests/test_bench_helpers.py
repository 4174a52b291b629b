"""The benchmarks' shared helpers (benchmarks/conftest.py): where a run's time goes."""

from __future__ import annotations

import math

import pytest

from benchmarks.conftest import where_time_goes
from kbench.sim import Engine
from kbench.sim.busy import BusyTime


def test_where_time_goes_charges_a_builtin_to_the_kbench_module_that_called_it():
    """BusyTime's flush of a batch of spans is nearly all built-ins (struct.pack, numpy, its compiled loop): their time
    goes to sim.busy, not python/other; the shares are of the profiled run only and each level sums to one."""
    engine, busy = Engine(), BusyTime()
    batch = [x for i in range(20_000) for x in (float(i), i + 0.5)]

    def spans(_=None):  # this test module's own code: python/other
        busy.extend(batch)
        engine.schedule(1.0, spans)

    engine.schedule(0.0, spans)
    engine.run(until=5.0)
    shares = where_time_goes(engine, 10.0)
    assert engine.now == pytest.approx(15.0)
    by_module, by_package = shares["time_share_by_module"], shares["time_share_by_package"]
    assert set(by_module) <= {"sim.busy", "sim.engine", "sim.collector", "python/other"}
    assert by_module["sim.busy"] > 0.85
    assert by_module.get("python/other", 0.0) < 0.1  # 0.26 when built-ins are not charged to their callers
    assert by_package["sim"] == pytest.approx(sum(v for k, v in by_module.items() if k.startswith("sim.")), abs=0.003)
    for level in (by_module, by_package):
        assert sum(level.values()) == pytest.approx(1.0, abs=0.01)
        assert list(level.values()) == sorted(level.values(), reverse=True)


@pytest.mark.parametrize("seconds", [0, -1.0, math.nan, math.inf, True, "30"])
def test_where_time_goes_refuses_a_bad_length_naming_it_before_running(seconds):
    engine = Engine()
    engine.schedule(1.0, lambda _: None)
    with pytest.raises(ValueError, match="seconds: .* > 0"):
        where_time_goes(engine, seconds)
    assert engine.now == 0.0 and engine.peek() == 1.0  # nothing ran


@pytest.mark.parametrize("warmup", [-1.0, math.nan, math.inf, True, "10"])
def test_where_time_goes_refuses_a_bad_warmup_naming_it_before_running(warmup):
    engine = Engine()
    engine.schedule(1.0, lambda _: None)
    with pytest.raises(ValueError, match="warmup: .* >= 0"):
        where_time_goes(engine, 5.0, warmup)
    assert engine.now == 0.0 and engine.peek() == 1.0  # nothing ran


def test_where_time_goes_profiles_only_after_its_warmup():
    """The warm-up runs in the same long run but unprofiled: the shares are of the profiled seconds only."""
    engine, busy, calls = Engine(), BusyTime(), []
    batch = [x for i in range(20_000) for x in (float(i), i + 0.5)]
    busy.extend(batch)  # its compiled flush loaded before anything is profiled (a load would dominate any profile)

    def spans(_=None):
        calls.append(engine.now)
        if engine.now < 10.0:  # the warm-up's work only: a flush-heavy busy record
            busy.extend(batch)
        engine.schedule(1.0, spans)

    engine.schedule(0.0, spans)
    shares = where_time_goes(engine, 5.0, warmup=10.0)
    assert engine.now == pytest.approx(15.0) and len(calls) == 16
    assert shares["time_share_by_module"].get("sim.busy", 0.0) < 0.1  # its flushes ran before the profile


def _peak_in_fresh_process() -> float:
    from benchmarks.conftest import peak_rss_mib

    return peak_rss_mib()


def test_a_fresh_process_reports_its_own_peak_memory_not_its_parents():
    """A worker spawned while this process holds 300 MiB more reports its own peak (an interpreter with kbench
    imported, under 300 MiB), where ``ru_maxrss`` reported at least the parent's resident set; and the peak is this
    process's high-water mark: it does not drop with the 300 MiB freed."""
    from benchmarks.conftest import in_fresh_process, peak_rss_mib

    held = bytearray(300 * 1024 * 1024)
    held[::4096] = b"x" * len(held[::4096])  # touched: resident
    parent = peak_rss_mib()
    assert parent >= 300
    child = in_fresh_process(_peak_in_fresh_process)
    assert 0 < child < 300 <= parent
    del held
    assert peak_rss_mib() > parent - 16  # (the kernel syncs its per-thread counters lazily: a few KiB either way)
