"""client-go's event recorder in virtual time: the correlator's spam filter, aggregation and counting
(tools/record/events_cache.go), the writes through the component's client, the events.k8s.io/v1 series
(tools/events), and the apiserver's --event-ttl (Events vanish when their etcd lease expires)."""

from __future__ import annotations

import pytest

from kbench.apiserver import APIServer
from kbench.apiserver.config import KubeAPIServerConfig
from kbench.apiserver.registry import LEASE_REUSE_DURATION_SECONDS
from kbench.client import Client, Informer
from kbench.client.record import (
    COMBINED_PREFIX,
    DEFAULT_AGGREGATE_MAX_EVENTS,
    DEFAULT_SPAM_BURST,
    DEFAULT_SPAM_QPS,
    FINISH_TIME,
    REFRESH_TIME,
    EventCorrelator,
    EventRecorder,
    EventsV1Recorder,
)
from kbench.sim import Engine
from tests.controlplane.helpers import record


def _pod(name: str = "p", uid: str = "u-1") -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default", "uid": uid}}


def _setup(qps: float = 1e6, burst: int = 10**6) -> tuple[Engine, APIServer, Client]:
    engine = Engine()
    api = APIServer(engine)
    return engine, api, Client(api, "system:kube-controller-manager", qps=qps, burst=burst)


def _events(api: APIServer) -> list[dict]:
    return [obj for obj, _, _ in api.caches["events"].objects.values()]


def _event(recorder: EventRecorder, obj: dict, reason: str, message: str, type: str = "Normal") -> dict:
    """The Event the recorder makes (what correlate() sees)."""
    return recorder.make_event(
        {**obj["metadata"], "kind": obj["kind"], "apiVersion": obj["apiVersion"]}, type, reason, message
    )


# -- the correlator, alone ------------------------------------------------------------------------------
def test_spam_filter_passes_a_burst_of_25_then_one_event_per_300_seconds():
    """EventSourceObjectSpamFilter: a token bucket per source + object (burst 25, 1/300 s), whatever the reason."""
    engine, _, client = _setup()
    recorder = EventRecorder(client, "kubelet", "node-1")
    correlator = EventCorrelator()
    passed = [
        correlator.correlate(_event(recorder, _pod(), f"Reason{i % 3}", f"message {i}"), 0.0) is not None
        for i in range(DEFAULT_SPAM_BURST + 1)
    ]
    assert passed == [True] * DEFAULT_SPAM_BURST + [False]
    refill = 1 / DEFAULT_SPAM_QPS
    assert refill == 300.0
    assert correlator.correlate(_event(recorder, _pod(), "Late", "x"), refill - 1) is None
    assert correlator.correlate(_event(recorder, _pod(), "Late", "y"), refill + 0.5) is not None
    assert correlator.correlate(_event(recorder, _pod(), "Late", "z"), refill + 1) is None
    # another object has a bucket of its own
    assert correlator.correlate(_event(recorder, _pod("q", "u-2"), "Late", "x"), refill + 1) is not None


def test_aggregation_combines_similar_events_from_the_tenth_distinct_message():
    """EventAggregator: events differing only in message, within 600 s of each other, are combined once the
    set of messages reaches defaultAggregateMaxEvents (10): upstream's ``Len() < maxEvents`` lets 9 through."""
    engine, _, client = _setup()
    recorder = EventRecorder(client, "replicaset-controller")
    correlator = EventCorrelator()
    out = []
    for i in range(12):
        event, patch = correlator.correlate(_event(recorder, _pod(), "SuccessfulCreate", f"Created pod: p-{i}"), i)
        out.append((event["message"], event["count"], patch))
    first = DEFAULT_AGGREGATE_MAX_EVENTS - 1
    assert [m for m, _, _ in out[:first]] == [f"Created pod: p-{i}" for i in range(first)]
    assert all(p is None for _, _, p in out[: first + 1])
    assert out[first][0] == COMBINED_PREFIX + f"Created pod: p-{first}"
    # later ones are the same combined event again: a PATCH of its count
    assert [(c, p["count"]) for _, c, p in out[first + 1 :]] == [(2, 2), (3, 3)]


def test_aggregation_starts_over_after_600_quiet_seconds():
    engine, _, client = _setup()
    recorder = EventRecorder(client, "replicaset-controller")
    correlator = EventCorrelator()
    for i in range(9):
        correlator.correlate(_event(recorder, _pod(), "SuccessfulCreate", f"m{i}"), 0.0)
    event, _ = correlator.correlate(_event(recorder, _pod(), "SuccessfulCreate", "m9"), 601.0)
    assert not event["message"].startswith(COMBINED_PREFIX)


# -- the recorder against the apiserver -------------------------------------------------------------------
def test_a_repeated_event_is_patched_with_count_and_last_timestamp():
    engine, api, client = _setup()
    sent = record(client)
    recorder = EventRecorder(client, "kubelet", "node-1")
    for at in (0.0, 5.0, 9.0):
        engine.schedule(at, lambda _: recorder.event(_pod(), "Warning", "BackOff", "Back-off restarting"))
    engine.run(until=20.0)
    assert [r["verb"] for r in sent] == ["create", "patch", "patch"]
    (event,) = _events(api)
    assert event["count"] == 3
    assert event["firstTimestamp"] == "2026-01-01T00:00:00Z" and event["lastTimestamp"] == "2026-01-01T00:00:09Z"
    assert event["involvedObject"] == {
        "kind": "Pod",
        "namespace": "default",
        "name": "p",
        "uid": "u-1",
        "apiVersion": "v1",
    }
    assert event["source"] == {"component": "kubelet", "host": "node-1"}
    assert (event["reportingComponent"], event["reportingInstance"], event["type"]) == ("kubelet", "node-1", "Warning")
    assert event["metadata"]["name"].startswith("p.")


def test_the_26th_event_about_one_object_is_not_sent():
    engine, api, client = _setup()
    sent = record(client)
    recorder = EventRecorder(client, "kubelet", "node-1")
    for i in range(30):
        recorder.event(_pod(), "Normal", f"R{i}", "m")
    engine.run(until=10.0)
    assert len(sent) == DEFAULT_SPAM_BURST and recorder.skipped == 30 - DEFAULT_SPAM_BURST
    assert len(_events(api)) == DEFAULT_SPAM_BURST


def test_events_are_written_one_at_a_time_at_the_clients_pace():
    """The sink writes through the component's client: with 5 QPS / burst 10 the 11th and later creations leave
    0.2 s apart; and the watcher sends an event only once the previous one is answered."""
    engine, api, client = _setup(qps=5.0, burst=10)
    sent = record(client)
    recorder = EventRecorder(client, "node-controller")
    for i in range(20):
        recorder.event(_pod(f"p{i}", f"u-{i}"), "Normal", "R", "m")
    engine.run(until=30.0)
    assert len(sent) == 20
    assert all(r["answered"] <= nxt["at"] for r, nxt in zip(sent, sent[1:]))  # one in flight at a time
    done = [r["answered"] for r in sent]
    assert done[9] < 0.1  # the burst of 10 goes at the round trips' pace
    assert done[19] > (20 - 10) / 5.0  # then 5 per second: the last token is there 2 s in
    gaps = [b - a for a, b in zip(done[-5:], done[-4:])]
    assert gaps == pytest.approx([0.2] * 4, abs=0.01)  # the bucket is empty: one token each 1/QPS


def test_the_queue_drops_events_beyond_1000():
    engine, api, client = _setup()
    recorder = EventRecorder(client, "x")
    for i in range(1002):
        recorder.event(_pod(f"p{i}", f"u-{i}"), "Normal", "R", "m")
    assert recorder.dropped == 1  # the watcher took the first at once; 1000 wait in its channel; one dropped


def test_event_type_must_be_normal_or_warning():
    _, _, client = _setup()
    with pytest.raises(ValueError, match="Normal, Warning"):
        EventRecorder(client, "x").event(_pod(), "Error", "R", "m")


# -- --event-ttl -----------------------------------------------------------------------------------------
def test_events_vanish_after_the_event_ttl_and_watchers_see_the_deletes():
    """Each Event is attached to an etcd lease of --event-ttl (1 h) plus the lease manager's reuse duration
    (min(60 s, 5 %)); etcd deletes it when the lease expires and an events watch gets DELETED."""
    engine, api, client = _setup()
    seen = []
    informer = Informer(client, "events")
    informer.add_handler(on_delete=lambda obj: seen.append((engine.now, obj["metadata"]["name"])))
    informer.start()
    recorder = EventRecorder(client, "kubelet", "node-1")
    for i in range(3):
        engine.schedule(1.0 + i, lambda _, i=i: recorder.event(_pod(f"p{i}", f"u-{i}"), "Normal", "Pulled", "ok"))
    engine.run(until=10.0)
    assert len(_events(api)) == 3 and len(api.etcd.store.leases()) == 1  # one lease reused by all three
    lifetime = KubeAPIServerConfig().event_ttl + LEASE_REUSE_DURATION_SECONDS
    engine.run(until=lifetime)
    assert len(_events(api)) == 3
    engine.run(until=lifetime + 2.0)
    assert _events(api) == [] and api.etcd.store.leases() == []
    assert api.etcd.store.range(b"/registry/events/", b"/registry/events0").kvs == []
    assert len(seen) == 3 and all(lifetime < t < lifetime + 2.0 for t, _ in seen)


def test_a_short_event_ttl_and_a_patch_that_renews_the_lease():
    """With --event-ttl 20 s (lease 21 s: 5 % reuse): a PATCH re-attaches the Event to a current lease, so it
    outlives the first lease; a PATCH after it expired (404) creates it again."""
    engine, api, client = _setup()
    api.registry.event_ttl = 20.0
    sent = record(client)
    recorder = EventRecorder(client, "kubelet", "node-1")
    for at in (0.0, 15.0, 50.0):
        engine.schedule(at, lambda _: recorder.event(_pod(), "Warning", "BackOff", "x"))
    engine.run(until=30.0)
    (event,) = _events(api)
    assert event["count"] == 2  # renewed at 15 s: alive past the first lease's 21 s
    engine.run(until=40.0)
    assert _events(api) == []  # gone 21 s after its last write
    engine.run(until=60.0)
    assert [(r["verb"], r["code"]) for r in sent] == [("create", 200), ("patch", 200), ("patch", 404), ("create", 200)]
    (event,) = _events(api)
    assert event["count"] == 3


# -- events.k8s.io/v1 (kube-scheduler's) ------------------------------------------------------------------
def test_events_v1_series_create_then_patch_then_count_in_memory_until_finish():
    engine, api, client = _setup()
    sent = record(client)
    recorder = EventsV1Recorder(client, "default-scheduler")
    for at in (0.0, 1.0, 2.0, 3.0):
        engine.schedule(at, lambda _: recorder.event(_pod(), "Warning", "FailedScheduling", "0/3 nodes", "Scheduling"))
    engine.run(until=10.0)
    assert [r["verb"] for r in sent] == ["create", "patch"]
    (event,) = _events(api)
    assert event["series"]["count"] == 2 and event["reportingComponent"] == "default-scheduler"
    assert event["action"] == "Scheduling" and event["message"] == "0/3 nodes" and "source" not in event
    engine.run(until=3.0 + 2 * FINISH_TIME + 1)  # the series ends 6 min after its last event: written once more
    assert [r["verb"] for r in sent] == ["create", "patch", "patch"]
    assert _events(api)[0]["series"]["count"] == 4 and recorder.cache == {}


@pytest.mark.parametrize("v1", [False, True])
def test_two_events_about_one_object_in_one_instant_get_distinct_names(v1):
    """makeEvent names an Event ``<object>.<UnixNano hex>``: events recorded at one virtual instant take successive
    nanoseconds, so both are created (a shared name would make the second a 409 AlreadyExists, dropped)."""
    engine, api, client = _setup()
    recorder = EventsV1Recorder(client, "default-scheduler") if v1 else EventRecorder(client, "kubelet", "node-1")
    engine.schedule(1.0, lambda _: [recorder.event(_pod(), "Normal", reason, "m") for reason in ("Pulled", "Created")])
    engine.run(until=5.0)
    names = sorted(e["metadata"]["name"] for e in _events(api))
    assert len(names) == 2 and names[0] != names[1]
    assert int(names[1].split(".")[1], 16) - int(names[0].split(".")[1], 16) == 1


def test_events_v1_a_live_series_is_written_again_every_30_minutes():
    """refreshExistingEventSeries (every refreshTime, 30 min): a series still seen within finishTime (6 min) is
    PATCHed with its current count, so the Event outlives its TTL while it recurs."""
    engine, api, client = _setup()
    sent = record(client)
    recorder = EventsV1Recorder(client, "default-scheduler")
    for k in range(31):  # every minute from 30 s to 1830 s
        engine.schedule(
            30.0 + 60 * k, lambda _: recorder.event(_pod(), "Warning", "FailedScheduling", "m", "Scheduling")
        )
    engine.run(until=REFRESH_TIME - 1)
    assert [r["verb"] for r in sent] == ["create", "patch"]
    engine.run(until=REFRESH_TIME + 1)
    assert [r["verb"] for r in sent] == ["create", "patch", "patch"]
    assert _events(api)[0]["series"]["count"] == 30  # the events of 30 s .. 1770 s
