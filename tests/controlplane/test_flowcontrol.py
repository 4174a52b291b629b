"""API Priority and Fairness and max-in-flight: classification, seats, shuffle sharding, 429s."""

from __future__ import annotations

import math

import pytest

from kbench.apiserver.config import KubeAPIServerConfig
from kbench.apiserver.flowcontrol import LEVELS, MaxInFlight, PriorityAndFairness, classify, deal

FLAGS = KubeAPIServerConfig()
SERVER_LIMIT, WAIT_LIMIT = FLAGS.server_concurrency_limit, FLAGS.request_wait_limit


class Req:
    def __init__(
        self,
        user,
        groups=(),
        resource="pods",
        namespace="default",
        verb="get",
        seats=1,
        hold=1.0,
        log=None,
        now=lambda: 0.0,
    ):
        self.user, self.groups, self.resource_name, self.namespace = user, tuple(groups), resource, namespace
        self.verb, self.seats, self.arrival, self.hold, self.log, self._now = verb, seats, 0.0, hold, log, now

    def dispatch(self):
        self.log.append(("run", self.user, self._now()))
        return self._now() + self.hold

    def reject(self):
        self.log.append(("429", self.user, self._now()))


def test_bootstrap_flow_schemas_classify_as_upstream():
    assert classify(Req("system:node:n1", ["system:nodes"], "leases", "kube-node-lease"))[0] == "node-high"
    assert classify(Req("system:node:n1", ["system:nodes"], "pods"))[0] == "system"
    assert (
        classify(Req("system:kube-controller-manager", resource="leases", namespace="kube-system"))[0]
        == "leader-election"
    )
    assert classify(Req("system:kube-scheduler"))[0] == "workload-high"
    assert classify(Req("system:serviceaccount:kube-system:replicaset-controller"))[0] == "workload-high"
    assert classify(Req("system:serviceaccount:apps:web"))[0] == "workload-low"
    assert classify(Req("alice"))[0] == "global-default"
    assert classify(Req("admin", ["system:masters"]))[0] == "exempt"


def test_nominal_concurrency_limits_follow_the_shares():
    apf = PriorityAndFairness(lambda d, cb: None, lambda: 0.0, SERVER_LIMIT, WAIT_LIMIT)
    total = sum(level.shares for level in LEVELS)
    assert total == 245 and SERVER_LIMIT == 600 and WAIT_LIMIT == 15.0
    limits = {name: level.limit for name, level in apf.levels.items()}
    assert limits == {
        "exempt": 0,
        "system": 74,
        "node-high": 98,
        "leader-election": 25,
        "workload-high": 98,
        "workload-low": 245,
        "global-default": 49,
        "catch-all": 13,
    }
    assert all(limits[lv.name] == math.ceil(600 * lv.shares / 245) for lv in LEVELS if not lv.exempt)


def test_shuffle_sharding_deals_distinct_queues_deterministically():
    for value in (0, 1, 12345678901234567, 2**64 - 1):
        hand = deal(value, 128, 6)
        assert len(set(hand)) == 6 and all(0 <= c < 128 for c in hand)
        assert hand == deal(value, 128, 6)
    assert deal(0, 10, 3) == [0, 1, 2]  # remainders 0, 0, 0 -> cards 0, 1, 2


def test_requests_queue_when_seats_are_busy_and_get_429_when_their_queue_is_full():
    timers, now, log = [], [0.0], []
    apf = PriorityAndFairness(
        lambda d, cb: timers.append((now[0] + d, cb)), lambda: now[0], server_limit=6, wait_limit=WAIT_LIMIT
    )
    level = apf.levels["global-default"]
    assert level.limit == 1  # ceil(6 * 20 / 245)
    for _ in range(302):  # one flow spreads over its hand of 6 queues, 50 each
        apf.arrive(Req("alice", log=log, now=lambda: now[0], hold=1.0))
    assert [e[0] for e in log].count("run") == 1 and [e[0] for e in log].count("429") == 1
    assert level.waiting == 300 and sorted(len(q) for q in level.queues if q) == [50] * 6
    while timers:
        timers.sort(key=lambda t: t[0])
        at, cb = timers.pop(0)
        now[0] = at
        cb(None)
    ran = [t for kind, _, t in log if kind == "run"]
    assert ran[:3] == [0.0, 1.0, 2.0]  # one seat: one request per second
    assert [e[0] for e in log].count("429") > 1  # those waiting past request-timeout / 4 (15 s) are rejected


def test_catch_all_rejects_instead_of_queueing_and_max_in_flight_rejects_at_once():
    now, log = [0.0], []
    apf = PriorityAndFairness(lambda d, cb: None, lambda: now[0], server_limit=6, wait_limit=WAIT_LIMIT)
    for _ in range(3):
        apf.arrive(Req("", log=log, now=lambda: now[0]))
    assert [e[0] for e in log] == ["run", "429", "429"]  # catch-all has ceil(6*5/245) = 1 seat, no queues
    log.clear()
    mif = MaxInFlight(now=lambda: now[0], readonly=2, mutating=1)
    for verb in ("get", "get", "get", "create", "create"):
        mif.arrive(Req("u", verb=verb, log=log, now=lambda: now[0]))
    assert [e[0] for e in log] == ["run", "run", "429", "run", "429"]
    now[0] = 1.5
    mif.arrive(Req("u", verb="get", log=log, now=lambda: now[0]))
    assert log[-1][0] == "run"


@pytest.mark.parametrize("mode", ["apf", "max-inflight"])
def test_overloaded_single_instance_answers_429(mode):
    from tests.controlplane.helpers import Plane

    config = KubeAPIServerConfig(enable_priority_and_fairness=mode == "apf")
    plane = Plane(instances=1, config=config)
    inst = plane.api.instances[0]
    if mode == "apf":
        inst.flow.levels["global-default"].limit = 1
        inst.flow.levels["global-default"].config = type(inst.flow.levels["global-default"].config)(
            "global-default", 20, 1, 1, 2
        )
    else:
        inst.flow.limits[False] = 1
    from kbench.client import Client

    user = Client(plane.api, "alice", qps=1e6, burst=10**6)
    codes = []
    for _ in range(10):
        user.request("list", "pods", lambda r, e, d: codes.append(e.code if e else 200))
    plane.run(plane.engine.now + 60)
    assert 429 in codes and 200 in codes and plane.api.sli.rejected == codes.count(429)
