"""The work estimator against upstream's tables (golden data ported from k8s.io/apiserver v1.35
pkg/util/flowcontrol/request/list_work_estimator_test.go TestListWorkEstimator and width_test.go TestWorkEstimator)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from kbench.apiserver.objects import Filter
from kbench.apiserver.workestimator import (
    DEFAULT_CONFIG,
    Stats,
    WatchTracker,
    WorkEstimate,
    WorkEstimator,
    WorkEstimatorConfig,
    level_max_seats,
    seats_by_object_count,
    seats_by_object_size,
)

# (total size, object count, limit, selector, from cache, matches single, by count, by size): TestListWorkEstimator
LIST_CASES = [
    (100_000 - 1, 99, 0, False, False, False, 2, 1),
    (100_000 - 1, 10, 0, False, False, False, 1, 1),
    (100_000 - 1, 99, 0, False, True, False, 1, 1),
    (100_000 - 1, 10, 0, False, True, False, 1, 1),
    (1_000_000 - 1, 1000, 0, False, False, False, 20, 10),
    (1_000_000 - 1, 1000, 100, False, False, False, 2, 1),
    (1_000_000 - 1, 1000, 100, True, False, False, 11, 5),
    (1_000_000 - 1, 1000, 0, False, True, False, 10, 10),
    (1_000_000 - 1, 1000, 100, False, True, False, 10, 1),
    (1_000_000 - 1, 1000, 100, True, True, False, 10, 1),
    (1_000_000 - 1, 99, 0, False, False, False, 2, 10),
    (1_000_000 - 1, 99, 10, False, False, False, 1, 2),
    (1_000_000 - 1, 99, 10, True, False, False, 2, 5),
    (1_000_000 - 1, 99, 0, False, True, False, 1, 10),
    (10_000_000 - 1, 1000, 0, False, False, False, 20, 100),
    (10_000_000 - 1, 1000, 100, False, False, False, 2, 10),
    (10_000_000 - 1, 1000, 100, True, False, False, 11, 50),
    (10_000_000 - 1, 1000, 0, False, True, False, 10, 10),
    (10_000_000 - 1, 1000, 100, False, True, False, 10, 10),
    (10_000_000 - 1, 99, 0, False, False, False, 2, 100),
    (10_000_000 - 1, 99, 10, False, False, False, 1, 11),
    (10_000_000 - 1, 99, 10, True, False, False, 2, 50),
    (10_000_000 - 1, 99, 10, True, True, False, 1, 10),
    (1_000_000_000 - 1, 1000, 0, False, False, True, 1, 10),
    (1_000_000_000 - 1, 1000, 0, False, True, True, 1, 10),
]


@pytest.mark.parametrize(("total", "count", "limit", "selector", "cache", "single", "by_count", "by_size"), LIST_CASES)
def test_list_seats_by_object_count_and_size_as_upstream(
    total, count, limit, selector, cache, single, by_count, by_size
):
    stats = Stats(count, total // count)
    assert seats_by_object_count(stats, limit, cache, single, selector, DEFAULT_CONFIG) == by_count
    assert seats_by_object_size(stats, limit, cache, single, selector, DEFAULT_CONFIG) == by_size


class Req:
    def __init__(self, verb, options=None, name="", label=None, field=None, resource="events", subresource=""):
        self.verb, self.options, self.name, self.subresource = verb, options or {}, name, subresource
        self.resource_name, self.namespace = resource, ""
        self.filter = None
        if verb in ("list", "watch"):
            self.filter = Filter(labels={"app": "test"} if label else None, fields=field or ())


UNIT_TEST_ETCD = WorkEstimatorConfig(consistent_list_from_cache=False)
"""width_test.go runs without etcd's RequestWatchProgress: consistent reads go to etcd."""

# (verb, options, name, label selector, stats, max seats, initial seats): TestWorkEstimator (list and watch rows)
WIDTH_CASES = [
    ("list", {"limit": 399, "resourceVersion": "1"}, "", False, Stats(699, 10_000), 100, 40),
    ("list", {"resourceVersion": "1"}, "", False, Stats(699, 10_000), 100, 10),
    ("list", {"resourceVersion": "1"}, "", False, Stats(69, 10_000), 100, 7),
    ("list", {"limit": 399}, "", False, Stats(699, 10_000), 100, 40),
    ("list", {}, "", False, Stats(399, 10_000), 100, 40),
    ("list", {}, "", False, None, 100, 1),
    ("list", {"continue": "token", "limit": 399}, "", False, Stats(699, 10_000), 100, 40),
    ("list", {"limit": 299, "resourceVersion": "0"}, "", False, Stats(399, 10_000), 100, 10),
    ("list", {"limit": 20, "resourceVersion": "0"}, "", False, Stats(399, 10_000), 100, 2),
    ("list", {"resourceVersion": "0"}, "", False, Stats(79, 10_000), 100, 8),
    (
        "list",
        {"resourceVersion": "1", "resourceVersionMatch": "Exact", "limit": 399},
        "",
        False,
        Stats(699, 10_000),
        100,
        40,
    ),
    ("list", {"resourceVersion": "1", "resourceVersionMatch": "NotOlderThan"}, "", False, Stats(799, 10_000), 100, 10),
    ("list", {"resourceVersion": "1", "resourceVersionMatch": "Exact"}, "", False, Stats(5000, 10_000), 20, 20),
    ("list", {"resourceVersionMatch": "foo"}, "", False, Stats(200, 10_000), 100, 20),
    ("list", {}, "", False, Stats(1, 0), 100, 15),
    ("list", {"limit": 499, "resourceVersion": "0"}, "", False, Stats(1, 0), 100, 10),
    ("list", {}, "test", False, Stats(799, 200_000), 100, 2),
    ("list", {}, "test", False, Stats(799, 1_500_000), 100, 15),
    ("list", {"limit": 500, "resourceVersion": "0"}, "test", False, Stats(799, 200_000), 100, 2),
    ("list", {}, "", True, Stats(799, 10_000), 100, 80),
    ("list", {"limit": 49}, "", True, Stats(799, 10_000), 100, 40),
    ("list", {"limit": 699}, "", True, Stats(799, 10_000), 100, 70),
    ("list", {"resourceVersion": "0"}, "", True, Stats(799, 10_000), 100, 10),
    ("list", {"resourceVersion": "0", "limit": 29}, "", True, Stats(799, 10_000), 100, 3),
    ("watch", {}, "", False, Stats(799, 1_000), 100, 8),
    ("watch", {"resourceVersion": "0"}, "", False, Stats(799, 1_000), 100, 8),
    ("watch", {"resourceVersion": "1"}, "", False, Stats(799, 1_000), 100, 1),
    ("watch", {"sendInitialEvents": False, "resourceVersion": "1"}, "", False, Stats(799, 1_000), 100, 1),
    ("watch", {"sendInitialEvents": True, "resourceVersion": "1"}, "", False, Stats(799, 1_000), 100, 8),
    ("get", {}, "", False, Stats(799, 1_000), 10, 1),
]


@pytest.mark.parametrize(("verb", "options", "name", "label", "stats", "max_seats", "seats"), WIDTH_CASES)
def test_list_and_watch_width_as_upstream(verb, options, name, label, stats, max_seats, seats):
    estimator = WorkEstimator(lambda _: stats, lambda _: 0, lambda _: max_seats, UNIT_TEST_ETCD)
    assert estimator.estimate(Req(verb, options, name, label), "testPL") == WorkEstimate(seats)


# (verb, resource, subresource, watches, max seats, final seats, additional latency): TestWorkEstimator (mutating)
MUTATING_CASES = [
    ("create", "foos", "", 0, 10, 0, 0.0),
    ("create", "foos", "", 29, 10, 3, 0.005),
    ("create", "foos", "", 5, 10, 0, 0.0),
    ("create", "foos", "", 199, 10, 10, 0.010),
    ("update", "foos", "", 29, 10, 3, 0.005),
    ("patch", "foos", "", 100, 5, 5, 0.010),
    ("delete", "foos", "", 29, 10, 3, 0.005),
    ("create", "serviceaccounts", "token", 5777, 10, 0, 0.0),
    ("create", "serviceaccounts", "", 1000, 20, 10, 0.050),
]


@pytest.mark.parametrize(("verb", "resource", "sub", "watches", "max_seats", "final", "latency"), MUTATING_CASES)
def test_mutating_width_as_upstream(verb, resource, sub, watches, max_seats, final, latency):
    estimator = WorkEstimator(lambda _: None, lambda _: watches, lambda _: max_seats)
    work = estimator.estimate(Req(verb, resource=resource, subresource=sub), "testPL")
    assert (work.initial_seats, work.final_seats) == (1, final)
    assert work.additional_latency == pytest.approx(latency)


def test_level_max_seats_keep_10_at_the_default_server_limit():
    """apf_controller.go: MAX(1, MIN(ceil(0.15 x nominalCL), nominalCL / handSize)) for the default levels at 600
    seats (workload-low 245 / 6, global-default 49 / 6, leader-election 25 / 4), and at least 1."""
    assert level_max_seats(245, 6) == 37 and level_max_seats(49, 6) == 8 and level_max_seats(25, 4) == 4
    assert level_max_seats(1, 6) == 1


def test_watch_tracker_counts_resource_namespace_and_name_watches_not_indexed_ones():
    tracker = WatchTracker()
    forget = tracker.register("pods", "", "")
    tracker.register("pods", "ns", "")
    tracker.register("pods", "ns", "p")
    tracker.register("pods", "", "", (("spec.nodeName", True, "n1"),))  # served by the index: not counted
    assert tracker.interested("create", "pods", "ns", "p") == 3
    assert tracker.interested("get", "pods", "ns", "p") == 0
    request = SimpleNamespace(verb="update", resource_name="pods", namespace="ns", name="p", filter=None)
    assert tracker.watch_count(request) == 3  # a request's verb, resource, namespace and name
    forget()
    assert tracker.interested("update", "pods", "other", "") == 0
