"""The apiserver CPU model: k cores serving jobs first come, first served, and its busy-time record."""

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kbench.apiserver.cpu import Cores
from kbench.sim.busy import BusyTime


@pytest.mark.parametrize("cores", [1, 2, 3, 8])
def test_n_equal_jobs_arriving_together_end_in_waves_of_k(cores):
    """With k cores, n jobs of c seconds arriving at once: job i ends at (i // k + 1) * c."""
    cpu = Cores(cores)
    ends = [cpu.run(0.0, 0.5) for _ in range(10)]
    assert ends == [pytest.approx((i // cores + 1) * 0.5) for i in range(10)]
    assert cpu.busy.total() == pytest.approx(5.0)


def test_a_job_never_waits_for_a_later_one_and_an_idle_core_starts_at_once():
    cpu = Cores(2)
    assert cpu.run(0.0, 3.0) == 3.0
    assert cpu.run(1.0, 1.0) == 2.0  # the second core is idle
    assert cpu.run(1.5, 1.0) == 3.0  # waits for the second core (free at 2)
    assert cpu.run(1.5, 1.0) == 4.0  # both cores busy until 3
    assert cpu.run(10.0, 1.0) == 11.0  # idle again


def test_latency_grows_with_offered_load_and_saturates_at_the_core_count():
    """Jobs of 10 ms arriving evenly: mean wait stays 0 below k cores of demand and grows without bound above."""

    def mean_latency(cores: int, rate: float, jobs: int = 2000) -> float:
        cpu = Cores(cores)
        return sum(cpu.run(i / rate, 0.01) - i / rate for i in range(jobs)) / jobs

    assert mean_latency(1, 50) == pytest.approx(0.01)  # 0.5 cores of demand
    assert mean_latency(4, 300) == pytest.approx(0.01)  # 3 cores of 4
    assert mean_latency(1, 200) > 1.0  # 2 cores of demand on 1: the queue grows
    assert mean_latency(4, 600) > 0.5 > mean_latency(4, 400)  # 6 cores of demand on 4; 4 on 4 holds


def test_zero_cost_job_and_bad_input():
    cpu = Cores(1)
    assert cpu.run(1.0, 0.0) == 1.0 and cpu.jobs == 0
    with pytest.raises(ValueError, match="seconds"):
        cpu.run(1.0, -1.0)
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="cores: must be a positive integer"):
            Cores(bad)
    with pytest.raises(ValueError, match="resolution"):
        BusyTime(0)


def test_busy_time_spreads_work_over_its_bins():
    busy = BusyTime(resolution=1.0)
    busy.add(0.5, 2.25)
    busy.add(2.0, 2.5)
    busy.add(3.0, 3.0)  # nothing
    assert busy.bins == pytest.approx([0.5, 1.0, 0.75])
    assert busy.total() == pytest.approx(2.25)
    assert list(busy.between([0.0, 1.0, 2.0, 2.5, 3.0, 10.0])) == pytest.approx([0.0, 0.5, 1.5, 1.875, 2.25, 2.25])


def test_utilization_is_busy_cores_over_cores():
    cpu = Cores(4)
    for _ in range(8):
        cpu.run(0.0, 1.0)  # 4 cores busy for 2 s
    assert cpu.utilization(0.0, 2.0) == pytest.approx(1.0)
    assert cpu.utilization(0.0, 4.0) == pytest.approx(0.5)


@settings(max_examples=200, deadline=None)
@given(
    cores=st.integers(1, 4),
    history=st.lists(st.tuples(st.floats(0.0, 5.0), st.floats(0.0, 2.0)), max_size=12),
    jobs=st.lists(st.sampled_from([0.0, 0.001, 0.25, 1.0, 3.5]), max_size=12),
)
def test_a_batch_of_jobs_runs_as_each_one_would(cores, history, jobs):
    """run_all(now, jobs) gives the ends, the core heap, the job count and the busy bins of run(now, job) for each."""
    one, batch = Cores(cores), Cores(cores)
    for at, seconds in sorted(history):
        one.run(at, seconds)
        batch.run(at, seconds)
    now = max((at for at, _ in history), default=0.0)
    assert batch.run_all(now, jobs) == [one.run(now, seconds) for seconds in jobs]
    assert (batch.free, batch.jobs) == (one.free, one.jobs)
    assert batch.busy.bins.tolist() == one.busy.bins.tolist()


@pytest.mark.parametrize("bad", [-1.0, math.nan, math.inf])
def test_a_batch_with_a_bad_job_is_refused_after_the_jobs_before_it(bad):
    batch, one = Cores(2), Cores(2)
    with pytest.raises(ValueError, match="seconds: a job's CPU time must be >= 0 and finite"):
        batch.run_all(1.0, [0.5, 0.0, 0.25, bad, 2.0])
    for seconds in (0.5, 0.0, 0.25):
        one.run(1.0, seconds)
    assert (batch.free, batch.jobs, batch.busy.bins.tolist()) == (one.free, one.jobs, one.busy.bins.tolist())


def test_a_job_too_short_to_move_the_clock_records_no_busy_time_in_a_batch_either():
    batch, one = Cores(1), Cores(1)
    assert batch.run_all(1e4, [1e-13]) == [one.run(1e4, 1e-13)] == [1e4]
    assert (batch.jobs, batch.busy.bins.size) == (one.jobs, one.busy.bins.size) == (1, 0)
