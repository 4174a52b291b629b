"""API Priority and Fairness and max-in-flight: classification, seats, shuffle sharding, 429s."""

from __future__ import annotations

import math

import pytest

from kbench.apiserver.config import KubeAPIServerConfig
from kbench.apiserver.flowcontrol import LEVELS, MaxInFlight, PriorityAndFairness, classify, deal
from kbench.componentconfig import ConfigError

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


def nominal(apf: PriorityAndFairness, timers: list | None = None) -> PriorityAndFairness:
    """Hold every level at its nominal concurrency limit: drop the periodic re-allocation (borrowing) the constructor
    scheduled, so these tests see the queuing alone (borrowing has its own tests, tests/apiserver)."""
    if timers is not None:
        timers.clear()
    for level in apf.levels.values():
        level.limit = level.nominal
    return apf


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
    limits = {name: level.nominal for name, level in apf.levels.items()}
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
    nominal(apf, timers)
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
    apf = nominal(PriorityAndFairness(lambda d, cb: None, lambda: now[0], server_limit=6, wait_limit=WAIT_LIMIT))
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


def test_max_in_flight_tracks_no_watch_and_always_answers_system_masters():
    """maxinflight.go: long-running requests (watch) skip the limit and take no slot; a system:masters request that
    finds its kind full is served (untracked) instead of 429."""
    log: list = []
    mif = MaxInFlight(now=lambda: 0.0, readonly=1, mutating=1)
    for verb in ("watch", "watch", "get", "watch", "get"):
        mif.arrive(Req("u", verb=verb, log=log))
    assert [e[0] for e in log] == ["run", "run", "run", "run", "429"]
    assert len(mif.busy[False]) == 1  # the get alone holds the read-only slot
    log.clear()
    mif.arrive(Req("admin", groups=("system:masters",), verb="list", log=log))
    mif.arrive(Req("admin", groups=("system:masters",), verb="create", log=log))
    mif.arrive(Req("u", verb="create", log=log))
    assert [e[0] for e in log] == ["run", "run", "429"]  # the master's create took the free mutating slot
    assert len(mif.busy[False]) == 1 and len(mif.busy[True]) == 1


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


def test_kube_apiserver_flags_default_as_upstream():
    assert KubeAPIServerConfig().to_manifest() == {
        "max-requests-inflight": 400,
        "max-mutating-requests-inflight": 200,
        "enable-priority-and-fairness": True,
        "request-timeout": "1m0s",
        "etcd-compaction-interval": "5m0s",
        "delete-collection-workers": 1,
        "watch-cache": True,
        "watch-cache-sizes": [],
        "etcd-servers-overrides": [],
        "event-ttl": "1h0m0s",
        "default-not-ready-toleration-seconds": 300,
        "default-unreachable-toleration-seconds": 300,
        "service-node-port-range": "30000-32767",
    }
    assert KubeAPIServerConfig.from_flags({}) == FLAGS
    assert FLAGS.values()["maxRequestsInflight"] == 400


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (
            {"--max-requests-inflight": "-1"},
            r"^kube-apiserver\.maxRequestsInflight: '-1' is out of range; expected an ",
        ),
        ({"max-mutating-requests-inflight": -5}, r"^kube-apiserver\.maxMutatingRequestsInflight: -5 is out of range"),
        (
            {"max-requests-inflight": 0, "max-mutating-requests-inflight": 0},
            r"^kube-apiserver\.maxRequestsInflight: 0 and maxMutatingRequestsInflight 0 must add up to something "
            r"positive when enablePriorityAndFairness is true$",
        ),
        ({"request-timeout": "-1s"}, r"^kube-apiserver\.requestTimeout: '-1s' is out of range; expected a duration"),
        ({"request-timeout": "60"}, r"^kube-apiserver\.requestTimeout: '60' is not a duration"),
        ({"etcd-compaction-interval": "-5m"}, r"^kube-apiserver\.etcdCompactionInterval: '-5m' is out of range"),
        ({"enable-priority-and-fairness": "yes"}, r"enablePriorityAndFairness: 'yes' is not true or false"),
        ({"service-node-port-range": "30000"}, None),
        ({"service-node-port-range": "32767-30000"}, r"serviceNodePortRange: '32767-30000' is not a port range; exp"),
        ({"service-node-port-range": "3e4-3.2e4"}, r"serviceNodePortRange: '3e4-3\.2e4' is not a port range"),
        (
            {"watch-cache-sizes": "pods"},
            r"watchCacheSizes: invalid value of watch cache size: 'pods'; expected resource",
        ),
        ({"watch-cache-sizes": "pods#-1"}, r"watchCacheSizes: watch cache size cannot be negative: 'pods#-1'"),
        ({"watch-cache-sizes": ["pods#x"]}, r"watchCacheSizes: invalid size of watch cache size: 'pods#x'"),
        ({"max-requests-in-flight": 1}, r"^kube-apiserver: --max-requests-in-flight: unknown flag; allowed: --max-"),
    ],
)
def test_kube_apiserver_flag_validation_names_the_flag(flags, message):
    if message is None:  # allowed: one port is a range of one (ParsePortRange)
        assert KubeAPIServerConfig.from_flags(flags).node_port_range == (30000, 30000)
        return
    with pytest.raises(ConfigError, match=message):
        KubeAPIServerConfig.from_flags(flags)


def test_without_apf_zero_in_flight_limits_are_allowed_and_mean_no_limit():
    off = KubeAPIServerConfig.from_flags(
        {"enable-priority-and-fairness": "false", "max-requests-inflight": 0, "max-mutating-requests-inflight": 0}
    )
    log = []
    mif = MaxInFlight(lambda: 0.0, off.max_requests_inflight, off.max_mutating_requests_inflight)
    for verb in ("get", "list", "create", "delete") * 100:
        mif.arrive(Req("u", verb=verb, log=log))
    assert [e[0] for e in log].count("run") == 400


def _burst_of_lists(config: KubeAPIServerConfig, count: int = 10) -> list[int]:
    """``count`` LISTs sent at once to one instance; their answers' codes."""
    from kbench.client import Client
    from tests.controlplane.helpers import Plane

    plane = Plane(instances=1, config=config)
    user = Client(plane.api, "alice", qps=1e6, burst=10**6)
    codes: list[int] = []
    for _ in range(count):
        user.request("list", "pods", lambda r, e, d: codes.append(e.code if e else 200))
    plane.run(plane.engine.now + 1.0)
    return codes


def test_max_requests_inflight_bounds_concurrency_with_apf_off():
    capped = KubeAPIServerConfig().replace({"enablePriorityAndFairness": False, "maxRequestsInflight": 3})
    assert sorted(_burst_of_lists(capped)) == [200] * 3 + [429] * 7
    unlimited = capped.replace({"maxRequestsInflight": 0})
    assert _burst_of_lists(unlimited) == [200] * 10


def test_in_flight_flags_are_the_apf_server_concurrency_limit():
    from tests.controlplane.helpers import Plane

    doubled = KubeAPIServerConfig.from_flags({"max-requests-inflight": 800, "max-mutating-requests-inflight": 400})
    levels = Plane(instances=1, config=doubled).api.instances[0].flow.levels
    assert levels["workload-low"].nominal == math.ceil(1200 * 100 / 245) == 490
    assert levels["global-default"].nominal == math.ceil(1200 * 20 / 245) == 98


def test_request_timeout_bounds_the_wait_in_an_apf_queue():
    """A request waits at most request-timeout / 4 in its queue: 2 s for an 8 s timeout, then it gets 429."""
    config = KubeAPIServerConfig.from_flags({"request-timeout": "8s"})
    assert config.request_wait_limit == 2.0
    assert KubeAPIServerConfig.from_flags({"request-timeout": "10m"}).request_wait_limit == 60.0  # at most 1 min
    timers, now, log = [], [0.0], []
    apf = PriorityAndFairness(
        lambda d, cb: timers.append((now[0] + d, cb)), lambda: now[0], 6, config.request_wait_limit
    )
    nominal(apf, timers)
    for _ in range(10):
        apf.arrive(Req("alice", log=log, now=lambda: now[0], hold=1.0))
    while timers:
        timers.sort(key=lambda t: t[0])
        now[0], callback = timers.pop(0)
        callback(None)
    assert [t for kind, _, t in log if kind == "run"] == [0.0, 1.0, 2.0]  # one seat; the rest waited past 2 s
    assert [kind for kind, _, _ in log].count("429") == 7
