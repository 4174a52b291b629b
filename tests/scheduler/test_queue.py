"""The scheduling queue on virtual time: priority order, backoff, event-driven requeue, 5-minute flush."""

from __future__ import annotations

from kbench.api.core import Pod
from kbench.scheduler.queue import SchedulingQueue
from kbench.sim import Engine


def pod(name: str, priority: int = 0) -> Pod:
    return Pod.from_manifest({"metadata": {"name": name}, "spec": {"priority": priority, "containers": []}})


def drain(engine: Engine, queue: SchedulingQueue, n: int) -> list[tuple[float, str]]:
    got = []

    def consumer():
        for _ in range(n):
            qp = yield queue.pop()
            got.append((engine.now, qp.pod.name))

    engine.process(consumer())
    engine.run(until=engine.now + 1000)
    return got


def test_active_queue_pops_priority_then_age():
    engine = Engine()
    q = SchedulingQueue(engine)
    for name, prio in (("low", 0), ("high", 10), ("low2", 0)):
        q.add(pod(name, prio))
    assert [n for _, n in drain(engine, q, 3)] == ["high", "low", "low2"]


def test_backoff_doubles_to_the_maximum():
    q = SchedulingQueue(Engine(), initial_backoff=1, max_backoff=10)
    assert [q.backoff_duration(a) for a in range(1, 7)] == [1, 2, 4, 8, 10, 10]


def test_unschedulable_pod_moves_on_a_relevant_event_after_its_backoff():
    engine = Engine()
    q = SchedulingQueue(engine)
    q.add(pod("p"))
    (qp,) = [qp for qp in [q._pop_now()]]
    q.add_unschedulable(qp, {"NodeResourcesFit"})
    assert q.pending == (0, 0, 1)
    assert q.on_event("Node", "Update") == 1  # NodeResourcesFit registers node updates
    assert q.pending == (0, 1, 0)  # still backing off (1 s for the first attempt)
    got = drain(engine, q, 1)
    assert got == [(1.0, "p")]


def test_unrelated_events_leave_the_pod_and_five_minutes_flush_it():
    engine = Engine()
    q = SchedulingQueue(engine)
    q.add(pod("p"))
    qp = q._pop_now()
    q.add_unschedulable(qp, {"NodeResourcesFit"})
    assert q.on_event("Pod", "Add") == 0
    got = drain(engine, q, 1)
    assert got[0][1] == "p" and 300 < got[0][0] <= 330  # flushed by the 30-s leftover check after 5 min
