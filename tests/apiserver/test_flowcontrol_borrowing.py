"""APF seat borrowing in virtual time, against upstream v1.35 (k8s.io/apiserver/pkg/util/flowcontrol:
borrowing_test.go TestBorrowing, conc_alloc_test.go TestConcAlloc, apf_controller.go updateBorrowingLocked)."""

from __future__ import annotations

import heapq
import itertools

import numpy as np
import pytest

from kbench.apiserver.flowcontrol import (
    BORROWING_ADJUSTMENT_PERIOD,
    LEVELS,
    MIN_TARGET,
    Integrator,
    Level,
    PriorityAndFairness,
    compute_concurrency_allocation,
)


class Sim:
    """A virtual clock and timer heap standing in for the engine."""

    def __init__(self) -> None:
        self.now = 0.0
        self.timers: list = []
        self.seq = itertools.count()

    def wake(self, delay: float, callback) -> None:
        heapq.heappush(self.timers, (self.now + delay, next(self.seq), callback))

    def run(self, until: float) -> None:
        while self.timers and self.timers[0][0] <= until:
            self.now, _, callback = heapq.heappop(self.timers)
            callback(None)
        self.now = until


class Client:
    """A closed-loop client (TestBorrowing's threads): one request at a time, each executing ``hold`` seconds, the
    next sent as the last ends (a rejected one after 1 ms)."""

    def __init__(self, sim: Sim, apf: PriorityAndFairness, user: str, executing: Integrator, hold: float = 0.25):
        self.sim, self.apf, self.user, self.executing, self.hold = sim, apf, user, executing, hold
        self.groups, self.resource_name, self.namespace, self.verb = (), "", "", "get"
        self.seats, self.arrival, self.held = 1, 0.0, None

    def send(self, _=None) -> None:
        self.apf.arrive(self)

    def dispatch(self) -> float:
        self.executing.set(self.executing.x + 1, self.sim.now)
        self.sim.wake(self.hold, self.done)
        return self.sim.now + self.hold

    def done(self, _=None) -> None:
        self.executing.set(self.executing.x - 1, self.sim.now)
        self.send()

    def reject(self) -> None:
        self.sim.wake(0.001, self.send)


def two_levels(lendable: tuple[int, int], borrowing: tuple[int, int]) -> tuple[Level, ...]:
    """TestBorrowing's two priority levels: 100 shares each, 10 queues, hand 2, queue length 10."""
    return tuple(
        Level(f"test-pl{i}", 100, 10, 2, 10, lendable_percent=lendable[i], borrowing_limit_percent=borrowing[i])
        for i in range(2)
    )


@pytest.mark.parametrize(
    ("lendable", "borrowing"),
    [((50, 33), (67, 50)), ((50, 67), (33, 50))],
    ids=["lendable-limited", "borrowing-limited"],
)
def test_borrowing_as_upstream(lendable, borrowing):
    """Server limit 24, 24 clients on one level and 6 on the other: after 10 s the busy level runs about 16 at once and
    the other its 6 (TestBorrowing expects 15.5-16.1 and 5.5-6.1 over the next 15 s)."""
    sim = Sim()
    apf = PriorityAndFairness(
        sim.wake,
        lambda: sim.now,
        24,
        60.0,
        levels=two_levels(lendable, borrowing),
        classifier=lambda req: (f"test-pl{req.user[-1]}", f"test-fs{req.user[-1]}/{req.user}"),
    )
    executing = [Integrator(0.0), Integrator(0.0)]
    for flow, clients in enumerate((24, 6)):
        for _ in range(clients):
            Client(sim, apf, f"test-user{flow}", executing[flow]).send()
    sim.run(10.001)
    for integrator in executing:
        integrator.reset(sim.now)
    sim.run(25.001)
    busy, light = (integrator.reset(sim.now)[1] for integrator in executing)
    assert 15.5 <= busy <= 16.1 and 5.5 <= light <= 6.1
    assert apf.levels["test-pl0"].limit == 16


def test_idle_levels_lend_to_a_busy_one_within_their_limits():
    """global-default busy (200 closed-loop clients), every other level idle: from the first adjustment on it runs far
    more than its nominal 49 seats, the idle levels keep at least their nominal less what they may lend."""
    sim = Sim()
    apf = PriorityAndFairness(sim.wake, lambda: sim.now, 600, 15.0)
    executing = Integrator(0.0)
    for _ in range(200):
        Client(sim, apf, "alice", executing, hold=0.5).send()
    gd = apf.levels["global-default"]
    assert gd.limit < 100  # before the first adjustment: the initial allocation of an idle server
    sim.run(2 * BORROWING_ADJUSTMENT_PERIOD + 0.001)
    assert gd.nominal == 49 and gd.nominal < gd.limit <= gd.max_cl
    assert gd.limit >= 200  # its smoothed demand: all 200 clients run at once
    assert sum(level.limit for level in apf.levels.values()) <= apf.nominal_sum + len(apf.levels)  # rounding
    for name, level in apf.levels.items():
        assert level.limit >= level.min_cl, name
    executing.reset(sim.now - 5.0)
    sim.run(sim.now + 5.0)
    assert executing.reset(sim.now)[1] == pytest.approx(200, abs=1)


def test_a_level_with_lendable_percent_zero_never_lends():
    """leader-election (lendablePercent 0) idle while every other level is saturated: it keeps its nominal 25 seats
    through every adjustment, while the idle workload-low (lendablePercent 90) gives all but its 24 seats away."""
    sim = Sim()
    apf = PriorityAndFairness(sim.wake, lambda: sim.now, 600, 15.0)
    users = {
        "system": ("bob", ("system:nodes",)),
        "workload-high": ("system:kube-scheduler", ()),
        "global-default": ("alice", ()),
    }
    for user, groups in users.values():
        executing = Integrator(0.0)
        for _ in range(300):
            client = Client(sim, apf, user, executing, hold=1.0)
            client.groups = groups
            client.send()
    le, wl = apf.levels["leader-election"], apf.levels["workload-low"]
    for _ in range(6):
        sim.run(sim.now + BORROWING_ADJUSTMENT_PERIOD)
        assert le.limit >= le.nominal == 25
    assert wl.limit == wl.min_cl == 24
    assert next(lv for lv in LEVELS if lv.name == "leader-election").lendable_percent == 0


def test_exempt_demand_squeezes_the_others_to_their_floor():
    """updateBorrowingLocked: the exempt level's seat demand high watermark comes off the nominal sum; when what is
    left cannot cover the limited levels' minimum limits they all get exactly those; with more left, upstream still
    allocates the whole nominal sum among them (computeConcurrencyAllocation(nominalCLSum, ...))."""
    apf = PriorityAndFairness(lambda d, cb: None, lambda: 0.0, 600, 15.0)
    apf.levels["exempt"].stats.high_watermark = 400  # 602 - 400 = 202 < the minimum limits' sum 258
    limits = apf.allocate()
    assert limits["exempt"] == 400
    assert all(limits[name] == level.min_cl for name, level in apf.levels.items() if name != "exempt")
    apf.levels["exempt"].stats.high_watermark = 100
    limits = apf.allocate()
    assert sum(limit for name, limit in limits.items() if name != "exempt") == pytest.approx(602, abs=len(limits))


def test_exempt_demand_between_the_floors_shares_what_is_left_in_proportion():
    """updateBorrowingLocked: when what the exempt level leaves lies between the limited levels' minimum limits and
    their floors (here every level's demand reached its nominal limit), each gets its minimum plus the same fraction
    of (floor - minimum); levels that lend nothing (leader-election, catch-all) keep their nominal limit."""
    apf = PriorityAndFairness(lambda d, cb: None, lambda: 0.0, 600, 15.0)
    for level in apf.levels.values():
        level.stats.high_watermark = level.nominal
    apf.levels["exempt"].stats.high_watermark = 100  # 602 - 100 = 502: between 258 (minimums) and 602 (floors)
    limits = apf.allocate()
    limited = {name: level for name, level in apf.levels.items() if name != "exempt"}
    assert limits["exempt"] == 100
    assert sum(limits[name] for name in limited) == pytest.approx(502, abs=len(limited))
    assert all(
        level.min_cl < limits[name] < level.nominal for name, level in limited.items() if level.min_cl < level.nominal
    )
    assert limits["leader-election"] == limited["leader-election"].nominal
    assert limits["catch-all"] == limited["catch-all"].nominal


def test_concurrency_allocation_properties_as_upstream():
    """TestConcAlloc: random problems (bound from below, from above, or not set by bounds, plus zero-target classes);
    the allocation sums to the required total, and each class is at its lower bound, its upper bound, or fairProp x
    target between them; infeasible bounds are an error."""
    rng = np.random.default_rng(1234567890)
    for _ in range(2000):
        required, items = _problem(rng)
        low, high = sum(i[1] for i in items), sum(i[2] for i in items)
        if low - required > 1e-10 or required - high > 1e-10:
            with pytest.raises(ValueError):
                compute_concurrency_allocation(required, items)
            continue
        allocs, fair = compute_concurrency_allocation(required, items)
        assert sum(allocs) == pytest.approx(required, rel=1e-9, abs=1e-9)
        for (target, lower, upper), got in zip(items, allocs, strict=True):
            want = fair * max(target, MIN_TARGET)
            if want <= lower:
                assert got == lower
            elif want >= upper:
                assert got == upper
            else:
                assert got == pytest.approx(want, rel=1e-9)


def _problem(rng) -> tuple[int, list[tuple[float, float, float]]]:
    """One of test1ConcAlloc's random problems: (required sum, [(target, lower, upper)])."""
    n = int(rng.choice([0, 1, 2, 3, 4, 6, 9]))
    items: list[tuple[float, float, float]] = []
    required = 0
    style = int(rng.integers(20)) if n else -1
    if style == 0:  # bound from below
        required = int(rng.integers(n * 3))
        for x in _partition(rng, n, required):
            items.append((x + 2 * rng.random(), x, x + 3 * rng.random()))
    elif style == 1:  # bound from above
        required = int(rng.integers(n * 3)) + 1
        for x in _partition(rng, n, required):
            lower = x * max(0.0, 1.25 * rng.random() - 1)
            items.append((lower + rng.random(), lower, x))
    elif n:
        for _ in range(n):
            x = max(0.0, rng.random() * 5 - 1)
            items.append((x + 2 * rng.random(), x, x + 3 * rng.random()))
        low, high = sum(i[1] for i in items), sum(i[2] for i in items)
        required = int(np.floor(low + (high - low) * rng.random() + 0.5))
    while rng.random() < 0.25:  # a class with a target of zero
        items.insert(int(rng.integers(len(items) + 1)), (0.0, 0.0, rng.random() + 0.00001))
    return required, items


def _partition(rng, n: int, total: float) -> list[float]:
    """partition64: n non-negative parts summing to total."""
    cuts = np.sort(rng.random(n - 1))
    edges = np.concatenate(([0.0], cuts, [1.0]))
    return list(np.diff(edges) * total)
