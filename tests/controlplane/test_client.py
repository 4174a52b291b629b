"""Client side: token bucket, informers (list, watch, handlers, relist on 410), rate-limited workqueue,
read-modify-write retried on conflict."""

from __future__ import annotations

import pytest

from kbench.apiserver.objects import APIError
from kbench.client import Backoff, Client, Informer, TokenBucket, WorkQueue, update_fresh
from kbench.sim import Engine
from tests.controlplane.helpers import Plane, fail_next, record
from tests.controlplane.test_apiserver import pod


def test_token_bucket_is_golang_rate_limiter():
    bucket = TokenBucket(qps=10, burst=3)
    assert [bucket.reserve(0.0) for _ in range(5)] == pytest.approx([0, 0, 0, 0.1, 0.2])
    assert bucket.reserve(1.0) == 0.0  # refilled (capped at the burst)
    with pytest.raises(ValueError, match="qps must be > 0 and burst >= 1"):
        TokenBucket(0, 1)


def test_informer_lists_watches_and_calls_handlers():
    plane = Plane()
    plane.ok("create", "pods", body=pod("a"))
    seen = []
    inf = Informer(Client(plane.api, "watcher"), "pods", namespace="default")
    inf.add_handler(
        on_add=lambda o: seen.append(("add", o["metadata"]["name"])),
        on_update=lambda o, n: seen.append(("update", n["metadata"]["name"])),
        on_delete=lambda o: seen.append(("delete", o["metadata"]["name"])),
    )
    inf.start()
    plane.run(1.0)
    assert inf.synced.triggered and seen == [("add", "a")]
    b = plane.ok("create", "pods", body=pod("b"))
    plane.ok("update", "pods", body={**b, "metadata": {**b["metadata"], "labels": {"x": "y"}}})
    plane.ok("delete", "pods", namespace="default", name="a")
    plane.run(plane.engine.now + 1)
    assert seen[1:] == [("add", "b"), ("update", "b"), ("delete", "a")]
    assert set(inf.cache) == {"default/b"}


def test_informer_relists_after_410_and_replays_the_differences():
    plane = Plane()
    for name in ("a", "b"):
        plane.ok("create", "pods", body=pod(name))
    seen = []
    inf = Informer(Client(plane.api, "watcher"), "pods", namespace="default")
    inf.add_handler(
        on_add=lambda o: seen.append(("add", o["metadata"]["name"])),
        on_delete=lambda o: seen.append(("delete", o["metadata"]["name"])),
    )
    inf.start()
    plane.run(1.0)
    inf.disconnect(200.0)  # a long outage: its resourceVersion leaves the watch cache's 75 s window
    plane.ok("delete", "pods", namespace="default", name="a")
    plane.ok("create", "pods", body=pod("c"))
    plane.run(100.0)
    plane.ok("create", "pods", body=pod("d"))  # an event after the window moved on
    plane.run(250.0)
    assert inf.lists == 2
    assert seen[2:] == [("delete", "a"), ("add", "c"), ("add", "d")]
    assert set(inf.cache) == {"default/b", "default/c", "default/d"}


def test_informer_stopped_while_its_watch_is_set_up_hears_nothing():
    plane = Plane()
    seen = []
    inf = Informer(Client(plane.api, "watcher"), "pods", namespace="default")
    inf.add_handler(on_add=lambda o: seen.append(o["metadata"]["name"]))
    inf.start()
    while not inf.synced.triggered:
        plane.run(plane.engine.now + 1e-4)
    inf.stop()  # the list is in; the watch request is on its way
    plane.ok("create", "pods", body=pod("late"))
    plane.run(plane.engine.now + 1)
    assert seen == [] and inf.cache == {}


def test_informer_stopped_while_it_waits_to_relist_sends_no_list():
    plane = Plane()
    client = Client(plane.api, "watcher")
    fail_next(client, "list", "pods", code=500)
    sent = record(client)
    inf = Informer(client, "pods", namespace="default").start()
    plane.run(0.5)  # the list failed; the reflector lists again a second later
    inf.stop()
    plane.run(5.0)
    assert [(r["verb"], r["code"]) for r in sent] == [("list", 500)] and inf.lists == 1


def _run(plane: Plane, body):
    """Run a process body to its end; (result, error)."""
    proc = plane.engine.process(body)
    out = {}
    proc.add_callback(lambda ev: out.setdefault("r", (ev.value, None) if ev.ok else (None, ev.value)))
    while "r" not in out:
        plane.run(plane.engine.now + 0.01)
    return out["r"]


def test_update_fresh_retries_a_conflict_on_a_fresh_read():
    plane = Plane()
    stale = plane.ok("create", "pods", body=pod("a"))
    plane.ok("update", "pods", body={**stale, "metadata": {**stale["metadata"], "labels": {"other": "writer"}}})
    client = Client(plane.api, "controller")
    sent = record(client)

    def label(obj) -> bool:
        obj["metadata"].setdefault("labels", {})["mine"] = "yes"
        return True

    written, error = _run(
        plane, update_fresh(client, "pods", "a", label, Backoff(3, 0.01), namespace="default", current=stale)
    )
    # 409 on the stale copy, then a fresh GET after the backoff's wait
    assert error is None and [(r["verb"], r["code"]) for r in sent] == [("update", 409), ("get", 200), ("update", 200)]
    assert sent[1]["at"] == pytest.approx(sent[0]["answered"] + 0.01)
    assert written["metadata"]["labels"] == {"other": "writer", "mine": "yes"}  # the other write survives
    sent.clear()
    assert (
        _run(plane, update_fresh(client, "pods", "a", lambda obj: False, Backoff(3, 0.01), namespace="default"))[0]
        == written
    )
    assert [r["verb"] for r in sent] == ["get"]  # nothing to change: nothing written
    sent.clear()
    _, error = _run(plane, update_fresh(client, "pods", "gone", label, Backoff(3, 0.01), namespace="default"))
    assert isinstance(error, APIError) and error.code == 404 and [r["verb"] for r in sent] == ["get"]  # not retried
    sent.clear()
    _, error = _run(
        plane, update_fresh(client, "pods", "a", label, Backoff(1, 0.01), namespace="default", current=stale)
    )
    assert isinstance(error, APIError) and error.code == 409 and [r["verb"] for r in sent] == ["update"]  # tries spent
    with pytest.raises(ValueError, match="Backoff.steps: expected an integer >= 1"):
        Backoff(0, 0.01)


def test_workqueue_deduplicates_and_backs_off_exponentially():
    engine = Engine()
    q = WorkQueue(engine)
    for key in ("a", "b", "a"):
        q.add(key)
    assert len(q) == 2
    got = []
    ev = q.get()
    ev.add_callback(lambda e: got.append(e.value))
    engine.run(until=0.1)
    assert got == ["a"]
    q.add("a")  # added while processing: queued again when done
    assert len(q) == 1
    q.done("a")
    assert len(q) == 2
    q2, t = WorkQueue(engine), engine.now
    for expected in (0.005, 0.010, 0.020):  # per-item exponential backoff from 5 ms
        q2.add_rate_limited("z")
        engine.run(until=t + expected * 0.9)
        assert "z" not in q2.queue
        engine.run(until=t + expected * 1.1)
        assert "z" in q2.queue
        q2.queue.clear()
        q2.dirty.discard("z")
        t = engine.now
    q2.forget("z")
    assert "z" not in q2.failures
