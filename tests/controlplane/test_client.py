"""Client side: token bucket, informers (list, watch, handlers, relist on 410), rate-limited workqueue."""

from __future__ import annotations

import pytest

from kbench.client import Client, Informer, TokenBucket, WorkQueue
from kbench.sim import Engine
from tests.controlplane.helpers import Plane
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
    inf.add_handler(on_add=lambda o: seen.append(("add", o["metadata"]["name"])),
                    on_update=lambda o, n: seen.append(("update", n["metadata"]["name"])),
                    on_delete=lambda o: seen.append(("delete", o["metadata"]["name"])))
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
    inf.add_handler(on_add=lambda o: seen.append(("add", o["metadata"]["name"])),
                    on_delete=lambda o: seen.append(("delete", o["metadata"]["name"])))
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
