"""A watch holds its APF seat until its initial events are sent (WatchInitialized, cache_watcher.go), and is counted
for the mutating work estimate while it runs (watch_tracker.go), through the apiserver in virtual time."""

from __future__ import annotations

import pytest

from kbench.client import Client
from tests.controlplane.helpers import Plane
from tests.controlplane.test_apiserver import pod


def watch_seat(plane: Plane, client: Client, **options) -> tuple[float, object]:
    """Send one watch as ``client`` (global-default); (how long it held its seat after dispatch, the watch)."""
    level = plane.api.instances[0].flow.levels["global-default"]
    level.busy.clear()
    box: dict = {}
    client.request(
        "watch", "pods", lambda r, e, d: box.update(r=r), namespace="default", on_events=lambda ev: None, **options
    )
    sent = plane.engine.now
    while "r" not in box:
        plane.run(plane.engine.now + 1e-4)
    dispatched = sent + plane.api.costs.network_rtt / 2
    assert len(level.busy) == 1  # one seat: a watch from a resourceVersion is the minimum width
    return level.busy[0] - dispatched, box["r"]["watch"]


def test_a_watch_holds_its_seat_while_it_sends_its_initial_events():
    plane = Plane(instances=1)
    alice = Client(plane.api, "alice", qps=1e6, burst=10**6)
    first = int(plane.ok("create", "pods", body=pod("p0"))["metadata"]["resourceVersion"])
    for i in range(1, 50):
        plane.ok("create", "pods", body=pod(f"p{i}"))
    empty, _ = watch_seat(plane, alice, resourceVersion=str(plane.api.caches["pods"].rv))
    replay, watch = watch_seat(plane, alice, resourceVersion=str(first - 1))
    assert watch.initial_events == 50
    sizes = sum(event[5] for event in plane.api.caches["pods"].history if event[2] == "ADDED")
    c = plane.api.costs
    assert replay - empty == pytest.approx(50 * c.list_per_object + sizes * c.encode_per_byte)


def test_watches_are_counted_for_mutating_requests_until_they_stop():
    """Ten watches of every pod make a pod create hold one more seat 5 ms after it ends (mutating_work_estimator.go:
    ceil(10 / watchesPerSeat) seats x eventAdditionalDuration); a kubelet-style watch on spec.nodeName is served by the
    index and not counted; a stopped watch no longer counts."""
    plane = Plane(instances=1)
    flow = plane.api.instances[0].flow
    alice = Client(plane.api, "alice", qps=1e6, burst=10**6)
    rv = str(plane.api.caches["pods"].rv)
    watches = [watch_seat(plane, alice, resourceVersion=rv)[1] for _ in range(10)]
    watch_seat(plane, alice, resourceVersion=rv, field_selector="spec.nodeName=n1")
    assert flow.watches.interested("create", "pods", "default", "") == 10
    create = _Probe("create", "pods", "default")
    work = flow.estimator.estimate(create, "global-default")
    assert (work.initial_seats, work.final_seats, work.additional_latency) == (1, 1, pytest.approx(0.005))
    watches[0].stop()
    assert flow.watches.interested("create", "pods", "default", "") == 9
    assert flow.estimator.estimate(create, "global-default").final_seats == 0


class _Probe:
    """A request's attributes as the work estimator reads them."""

    def __init__(self, verb: str, resource: str, namespace: str) -> None:
        self.verb, self.resource_name, self.namespace = verb, resource, namespace
        self.name, self.subresource, self.options, self.filter = "", "", {}, None
