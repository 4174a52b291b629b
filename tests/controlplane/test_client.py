"""Client side: token bucket, informers (list, watch, handlers, relist on 410), rate-limited workqueue,
read-modify-write retried on conflict."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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


def _leaving(client: Client) -> list[tuple[float, str]]:
    """When each request ``client`` sends leaves it for the apiserver (after the rate limiter), from now on and
    counted from now, and its name."""
    left: list[tuple[float, str]] = []
    send, start = client.conn.request, client.engine.now

    def logged(verb, resource, callback, delay=0.0, **kwargs):
        left.append((client.engine.now + delay - start, kwargs.get("name", "")))
        return send(verb, resource, callback, delay=delay, **kwargs)

    client.conn.request = logged
    return left


def _node_client(qps: float, burst: int) -> tuple[Client, list[tuple[float, str]], Callable[[float], None]]:
    """A kubelet's client paced at ``qps`` / ``burst``, when its requests leave, and a run to ``t`` s from now."""
    plane = Plane()
    client = Client(plane.api, "system:node:node-0", ("system:nodes",), qps=qps, burst=burst)
    start = plane.engine.now
    return client, _leaving(client), lambda t: plane.run(start + t)


def _get(client: Client, name: str, delay: float = 0.0, answered: list[str] | None = None):
    """Read the Lease ``name`` ``delay`` s from now; its name goes to ``answered`` when the answer comes."""

    def answer(result, error, answer_delay):
        if answered is not None:
            answered.append(name)

    return client.request("get", "leases", answer, delay=delay, namespace="kube-node-lease", name=name)


def test_request_scheduled_ahead_takes_its_token_when_it_is_sent():
    """rest.Request waits for the token just before sending: a request scheduled 10 s ahead (a Lease renewal)
    reserves nothing now, so requests sent before then are not held up behind it."""
    client, left, run = _node_client(qps=1, burst=1)
    _get(client, "renewal", delay=10.0)
    _get(client, "now")  # the only token, at once
    run(4.5)
    _get(client, "refilled")  # the bucket has refilled by 4.5 s
    run(5.0)
    _get(client, "busy")  # half a token left: waits 0.5 s
    run(20.0)
    left.sort()
    assert [name for _, name in left] == ["now", "refilled", "busy", "renewal"]
    assert [at for at, _ in left] == pytest.approx([0.0, 4.5, 5.5, 10.0])  # reserved ahead: 11, 12, 13 and 10


def test_requests_due_together_leave_in_the_order_they_were_made_and_watches_take_no_token():
    client, left, run = _node_client(qps=2, burst=1)
    for name in ("a", "b", "c"):
        _get(client, name, delay=1.0)
    client.request("watch", "leases", lambda *a: None, delay=1.0, namespace="kube-node-lease", on_events=len)
    run(5.0)
    gets = [(at, name) for at, name in left if name]
    assert [name for _, name in gets] == ["a", "b", "c"]
    assert [at for at, _ in gets] == pytest.approx([1.0, 1.5, 2.0])
    assert [at for at, name in left if not name] == pytest.approx([1.0])  # the watch took no token


def test_request_taken_back_before_it_leaves_is_never_sent():
    """A stopped kubelet takes back what it has not sent: a request not yet due (it takes no token) or one due
    but still waiting for a token."""
    client, left, run = _node_client(qps=1, burst=1)
    answered: list[str] = []
    early = _get(client, "not-yet-due", delay=5.0, answered=answered)
    _get(client, "now", answered=answered)
    waiting = _get(client, "waiting", delay=0.5, answered=answered)  # due at 0.5 s, its token comes at 1 s
    run(0.75)
    client.engine.cancel(waiting)
    client.engine.cancel(early)
    run(5.0)
    _get(client, "later", answered=answered)  # at once: the request taken back before 5 s took no token
    run(10.0)
    assert answered == ["now", "later"]
    assert [name for _, name in left] == ["now", "later"]
    assert [at for at, _ in left] == pytest.approx([0.0, 5.0])  # reserved ahead: "later" would wait until 8 s
    with pytest.raises(ValueError, match="delay must be >= 0 seconds"):
        _get(client, "x", delay=-1.0)


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
    inf.disconnect(200.0)  # a long outage: its resourceVersion leaves the watch cache's buffer
    plane.ok("delete", "pods", namespace="default", name="a")
    plane.ok("create", "pods", body=pod("c"))
    plane.run(100.0)
    for i in range(100):  # the full buffer (100 events), its oldest older than 75 s, drops the informer's rv
        plane.ok("patch", "pods", namespace="default", name="b", body={"metadata": {"labels": {"n": str(i)}}})
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


NAMES, NAMESPACES, VALUES, OWNERS = ["p0", "p1", "p2", "p3", "p4"], ["default", "other"], ["a", "b"], ["u1", "u2"]
INDEX_OPS = st.lists(
    st.one_of(
        st.tuples(st.just("create"), st.sampled_from(NAMES), st.sampled_from(NAMESPACES), st.sampled_from(VALUES)),
        st.tuples(st.just("label"), st.sampled_from(NAMES), st.sampled_from(NAMESPACES), st.sampled_from(VALUES)),
        st.tuples(st.just("owner"), st.sampled_from(NAMES), st.sampled_from(NAMESPACES), st.sampled_from(OWNERS)),
        st.tuples(st.just("delete"), st.sampled_from(NAMES), st.sampled_from(NAMESPACES), st.just("")),
        st.tuples(st.just("relist"), st.just(""), st.just(""), st.just("")),
    ),
    max_size=25,
)


def _pairs(ns: str) -> list[tuple]:
    """A two-label selector's index values in ``ns``."""
    return [("label", ns, "app", "a"), ("label", ns, "tier", "b")]


def _index_values(obj) -> list[tuple]:
    meta = obj["metadata"]
    labels = [("label", meta["namespace"], k, v) for k, v in (meta.get("labels") or {}).items()]
    return labels + [("owner", ref["uid"]) for ref in meta.get("ownerReferences") or () if ref.get("controller")]


@settings(max_examples=40, deadline=None)
@given(INDEX_OPS)
def test_informer_index_finds_what_a_scan_finds_in_the_caches_order(ops):
    """by_index (objects with every one of the values, or any one) against a scan of the cache, after random creates,
    label and owner changes, deletes and relists, and from a handler while a batch of watch events is being applied."""
    plane = Plane()
    plane.ok("create", "namespaces", body={"metadata": {"name": "other"}})
    plane.ok("create", "serviceaccounts", body={"metadata": {"name": "default", "namespace": "other"}})
    inf = Informer(Client(plane.api, "watcher"), "pods")
    inf.add_index("values", _index_values)
    lookups = [("label", ns, "app", v) for ns in NAMESPACES for v in VALUES] + [("owner", u) for u in OWNERS]

    def agrees() -> bool:
        scans = {value: [o for o in inf.cache.values() if value in _index_values(o)] for value in lookups}
        both = {
            ns: [o for o in inf.cache.values() if all(v in _index_values(o) for v in _pairs(ns))] for ns in NAMESPACES
        }
        either = {
            ns: [o for o in inf.cache.values() if any(v in _index_values(o) for v in _pairs(ns))] for ns in NAMESPACES
        }
        return (
            all(inf.by_index("values", (value,)) == scans[value] for value in lookups)
            and all(inf.by_index("values", _pairs(ns)) == both[ns] for ns in NAMESPACES)
            and all(inf.by_index("values", _pairs(ns), every=False) == either[ns] for ns in NAMESPACES)
        )

    checked_in_handler = []
    inf.add_handler(
        on_add=lambda o: checked_in_handler.append(agrees()), on_delete=lambda o: checked_in_handler.append(agrees())
    )
    inf.start()
    plane.run(1.0)
    for op, name, ns, value in ops:
        if op == "relist":  # as after a 410: the watch is gone and the reflector lists again
            if inf._watch is not None:
                inf._watch.stop()
                inf._watch = None
            inf._list()
        else:
            exists = plane.call("get", "pods", namespace=ns, name=name)[1] is None
            if op == "create" and not exists:
                labels = {"app": value, "tier": "b"}
                plane.ok(
                    "create", "pods", body={**pod(name), "metadata": {"name": name, "namespace": ns, "labels": labels}}
                )
            elif op == "label" and exists:
                plane.ok("patch", "pods", namespace=ns, name=name, body={"metadata": {"labels": {"app": value}}})
            elif op == "owner" and exists:
                ref = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": value, "controller": True}
                plane.ok("patch", "pods", namespace=ns, name=name, body={"metadata": {"ownerReferences": [ref]}})
            elif op == "delete" and exists:
                plane.ok("delete", "pods", namespace=ns, name=name)
        plane.run(plane.engine.now + 0.5)
        assert agrees()
    assert all(checked_in_handler)


def test_informer_index_follows_a_batch_looked_up_in_its_middle():
    """Indexes not yet built when a batch of watch events arrives are built by a handler's lookup in its middle; the
    batch's later events are indexed too (a coalesced Lease tick delivers such batches)."""
    inf = Informer(Client(Plane().api, "watcher"), "pods")
    inf.add_index("values", _index_values)
    seen = []

    def looked_up(_obj) -> None:
        seen.append([o["metadata"]["name"] for o in inf.by_index("values", [("label", "default", "app", "a")])])

    inf.add_handler(on_add=looked_up, on_delete=looked_up)
    pods = [pod(name, {"app": "a"}) for name in ("p0", "p1", "p2")]
    inf._events([("ADDED", p, rv) for rv, p in enumerate(pods, 1)])
    assert seen == [["p0"], ["p0", "p1"], ["p0", "p1", "p2"]]
    inf._events([("DELETED", pods[0], 4), ("DELETED", pods[2], 5)])
    assert seen[3:] == [["p1", "p2"], ["p1"]]
