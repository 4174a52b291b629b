"""The collector settings of long runs: restored afterwards, and no garbage kept alive by them."""

import gc
from collections import Counter

from kbench.cluster import Cluster
from kbench.scenarios import library
from kbench.scenarios.steps import Driver
from kbench.sim import Engine, collector


def test_long_run_restores_thresholds_and_unfreezes():
    before = gc.get_threshold()
    with collector.long_run():
        assert gc.get_threshold() == collector.THRESHOLDS
        assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_run_settled_reaches_the_horizon_and_freezes_what_survives_each_step():
    engine, fired = Engine(), []
    engine.schedule(25.0, fired.append, "a")
    engine.schedule(31.0, fired.append, "b")
    with collector.long_run():
        frozen = gc.get_freeze_count()
        kept = [[i] for i in range(1000)]  # alive across the steps, so frozen by the first settle
        collector.run_settled(engine, 27.5)
        assert gc.get_freeze_count() >= frozen + len(kept)
    assert engine.now == 27.5 and fired == ["a"]


def test_a_settled_run_leaves_no_reference_cycle_behind():
    """Objects frozen by ``settle`` are never collected during the run, so a reference cycle frozen while alive
    (e.g. a Lease renewal scheduled ahead, whose handle holds its own callback) would stay in memory until the run
    ends: millions of them in a 5,000-node run. Run as scenarios do (settle every 10 s) and collect with the
    collector saving what it finds instead of freeing it: nothing."""
    scenario = library.density(20, 5, 20.0)
    cluster = Cluster(scenario.cluster)
    cluster.settle()
    done = cluster.engine.process(Driver(cluster, scenario).run())
    saved = gc.get_debug()
    with collector.long_run():
        while not done.processed:
            cluster.engine.run(until=cluster.engine.now + 10.0)
            collector.settle()
        cluster.engine.run(until=cluster.engine.now + 60.0)  # Lease renewals sent and answered after the freezes
        assert done.ok
        gc.unfreeze()
        gc.set_debug(gc.DEBUG_SAVEALL)
        try:
            gc.collect()
            kinds = Counter(type(o).__qualname__ for o in gc.garbage)
        finally:
            gc.set_debug(saved)
            gc.garbage.clear()
    assert cluster.watcher.pending == set() and len(cluster.watcher.pods) == 100
    assert not kinds, f"reference cycles left for the collector: {kinds.most_common(5)}"
