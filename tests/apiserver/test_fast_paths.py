"""The request path's shortcuts give what the general code gives: stored values encoded in bytes of their own size,
timestamps formatted once per second, the watch
event of an unfiltered watcher, the demand integrator's inline update, held seats counted apart from the heap of
release times, the request's target, patches and bindings that copy only what they change, an indexed event's
watchers in a fixed order."""

import datetime as dt
import math
import tracemalloc

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kbench.apiserver import APIServer
from kbench.apiserver.flowcontrol import BORROWING_ADJUSTMENT_PERIOD, HELD, Integrator, Level, PriorityAndFairness
from kbench.apiserver.objects import EPOCH, RESOURCES, Filter, copy_object, encode, timestamp
from kbench.apiserver.registry import merge_patch
from kbench.apiserver.server import request_target
from kbench.apiserver.watchcache import WatchCache, _event_for
from kbench.sim import Engine


@pytest.mark.parametrize("text", ["", "x" * 300, "%b %s 100%" * 90])
def test_a_stored_value_is_the_objects_json_in_bytes_of_its_own_size(text):
    """encode gives orjson's bytes, in an object of their size: orjson's own output sits in a buffer of about 4 KiB
    however short the JSON, which etcd's history would keep for every revision."""
    obj = {"metadata": {"name": "n", "annotations": {"a": text}}, "spec": {"x": [1, 2.5, None]}}
    tracemalloc.start()
    try:
        values = [encode(obj) for _ in range(200)]
        held = tracemalloc.get_traced_memory()[0] / len(values)
    finally:
        tracemalloc.stop()
    assert values[0] == orjson.dumps(obj) and type(values[0]) is bytes
    assert held < len(values[0]) + 120  # the bytes object's header and the list's slot; orjson's is ~4,100 bytes


@settings(deadline=None)
@given(st.floats(min_value=0.0, max_value=1e8), st.booleans())
def test_timestamp_is_rfc3339_of_the_simulated_time(seconds, micro):
    """The cached clock string plus the fraction is what datetime writes for EPOCH + seconds (to the microsecond
    kbench truncates to)."""
    whole = math.floor(seconds)
    at = EPOCH + dt.timedelta(seconds=whole, microseconds=int((seconds - whole) * 1e6))
    expected = at.strftime("%Y-%m-%dT%H:%M:%S") + (f".{at.microsecond:06d}Z" if micro else "Z")
    assert timestamp(seconds, micro) == expected
    assert timestamp(seconds, micro) == timestamp(seconds, micro)  # served from the cache the second time


OBJECTS = st.one_of(
    st.none(),
    st.fixed_dictionaries(
        {
            "metadata": st.fixed_dictionaries(
                {"name": st.sampled_from(["a", "b"]), "namespace": st.sampled_from(["x", "y"])}
            )
        }
    ),
)


@settings(deadline=None)
@given(st.sampled_from(["ADDED", "MODIFIED", "DELETED"]), OBJECTS, OBJECTS, st.integers(1, 10))
def test_an_unfiltered_watchers_event_is_the_general_conversion(kind, obj, prev, rv):
    """Filter.everything's shortcut gives what convertToWatchEvent gives a filter that matches every object."""
    obj = obj or {"metadata": {"name": "c", "namespace": "z"}}
    matches_all = Filter()  # no namespace, labels or fields, but not flagged: the general path
    assert not matches_all.everything
    assert _event_for(Filter(everything=True), kind, obj, prev, rv) == _event_for(matches_all, kind, obj, prev, rv)


def test_integrator_integrates_the_old_value_up_to_each_change_and_resets():
    integ = Integrator(0.0)
    integ.set(2, 1.0)  # 0 over [0, 1)
    integ.set(4, 3.0)  # 2 over [1, 3)
    integ.set(1, 3.0)  # no time passed: only the value changes
    duration, avg, dev, high = integ.reset(4.0)  # 1 over [3, 4)
    assert (duration, high) == (4.0, 4)
    assert avg == pytest.approx((0 * 1 + 2 * 2 + 1 * 1) / 4)
    assert dev == pytest.approx(math.sqrt((0 + 4 * 2 + 1 * 1) / 4 - avg * avg))
    assert (integ.low, integ.high, integ.reset(5.0)[1]) == (1, 1, 1.0)  # restarts at the current value


@pytest.mark.parametrize(
    ("resource", "verb", "namespace", "name", "body", "expected"),
    [
        ("pods", "create", "", "", {"metadata": {"name": "p", "namespace": "ns"}}, ("ns", "p")),
        ("pods", "create", "", "", {"metadata": {"generateName": "p-"}}, ("default", "")),
        ("pods", "update", "given", "", {"metadata": {"name": "p", "namespace": "ns"}}, ("given", "p")),
        ("pods", "patch", "", "named", {"metadata": {"name": "p"}}, ("default", "named")),
        ("pods", "create", "", "", {}, ("", "")),
        ("pods", "get", "ns", "p", None, ("ns", "p")),
        ("pods", "delete", "ns", "p", {"metadata": {"name": "q"}}, ("ns", "p")),
        ("nodes", "create", "ns", "", {"metadata": {"name": "n", "namespace": "ns"}}, ("", "n")),
        ("nodes", "get", "ns", "n", None, ("", "n")),
    ],
)
def test_request_target_from_the_request_or_the_body(resource, verb, namespace, name, body, expected):
    assert request_target(RESOURCES[resource], verb, namespace, name, body) == expected


def _deep_merge_patch(target: dict, patch: dict) -> dict:
    """RFC 7386 on a private deep copy (the reference :func:`merge_patch` must agree with)."""
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            _deep_merge_patch(target[key], value)
        else:
            target[key] = copy_object(value) if isinstance(value, (dict, list)) else value
    return target


KEYS = st.sampled_from(["a", "b", "c", "d"])
JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.text(max_size=3),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=4),
    max_leaves=12,
)


@settings(deadline=None)
@given(st.dictionaries(KEYS, JSON, max_size=4), st.dictionaries(KEYS, JSON, max_size=4))
def test_merge_patch_copies_only_what_it_changes_and_gives_the_deep_copys_result(stored, patch):
    before = orjson.dumps(stored)
    merged = merge_patch(stored, patch)
    assert orjson.dumps(merged) == orjson.dumps(_deep_merge_patch(copy_object(stored), patch))  # key order too
    assert orjson.dumps(stored) == before  # the stored object is unchanged


def test_binding_shares_the_unchanged_parts_and_leaves_the_stored_pod_alone():
    engine = Engine()
    api = APIServer(engine, instances=1)
    conn = api.connect("system:kube-scheduler")
    answers = []
    account = {"metadata": {"name": "default", "namespace": "default"}}
    conn.request("create", "serviceaccounts", lambda r, e, d: answers.append((r, e)), body=account)
    pod = {"metadata": {"name": "p", "namespace": "default"}, "spec": {"containers": [{"name": "c"}]}}
    conn.request("create", "pods", lambda r, e, d: answers.append((r, e)), body=pod, delay=0.5)
    engine.run(until=1.0)
    stored, error = answers[-1]
    assert error is None
    snapshot = orjson.dumps(stored)
    target = {"target": {"name": "node-1"}}
    conn.request("create", "pods", lambda r, e, d: answers.append((r, e)), name="p", subresource="binding", body=target)
    engine.run(until=2.0)
    bound, error = answers[-1]
    assert error is None and bound["spec"]["nodeName"] == "node-1"
    assert [c["type"] for c in bound["status"]["conditions"]] == ["PodScheduled"]
    assert bound["spec"]["containers"] is stored["spec"]["containers"]  # shared, not copied
    assert orjson.dumps(stored) == snapshot and "nodeName" not in stored["spec"]


class _HeldRequest:
    """A request flow control dispatches; the first holds its seat (its end unknown at dispatch, as a write's until
    etcd answers)."""

    def __init__(self, now: list[float], log: list, held: bool) -> None:
        self.now, self.log, self.holds = now, log, held
        self.user, self.groups, self.resource_name, self.namespace, self.verb = "u", (), "pods", "", "get"
        self.seats, self.arrival, self.held = 1, 0.0, None

    def dispatch(self) -> float:
        self.log.append(self.now[0])
        return HELD if self.holds else self.now[0] + 1.0

    def reject(self) -> None:
        self.log.append("rejected")


def test_held_seats_count_as_busy_until_released_then_the_waiting_request_runs():
    now, timers, log = [0.0], [], []
    apf = PriorityAndFairness(
        lambda delay, callback: timers.append((now[0] + delay, callback)),
        lambda: now[0],
        server_limit=1,
        wait_limit=60.0,
        levels=(Level("only", 1, 1, 1, 50),),
        classifier=lambda req: ("only", "only/u"),
    )
    level = apf.levels["only"]
    first, second = _HeldRequest(now, log, True), _HeldRequest(now, log, False)
    apf.arrive(first)
    apf.arrive(second)  # the held seat is the level's only one: it waits, and no wake-up is set for it
    assert (log, level.held, level.busy, level.waiting) == ([0.0], 1, [], 1)
    assert all(at == BORROWING_ADJUSTMENT_PERIOD for at, _ in timers)
    now[0] = 2.0
    first.held(3.0)  # it ends at 3 s: the seat frees then and the waiting request runs
    assert (level.held, level.busy) == (0, [3.0])
    at, serve = next((at, cb) for at, cb in timers if at == 3.0)
    now[0] = at
    serve(None)
    assert log == [0.0, 3.0] and level.waiting == 0 and level.demand.high == 2  # one held + one waiting at most


def test_an_indexed_event_reaches_the_new_values_watchers_then_the_old_ones_whatever_the_hashes():
    """A binding moves a pod from ``spec.nodeName=""`` to a node: the watchers of both values get it, in a fixed
    order (the new value's, then the old one's), not in a set's hash order (PYTHONHASHSEED)."""
    cache = WatchCache("pods", lambda delay, callback, *args: None, lambda: 0.0, lambda size: 0.0)
    watches = {}
    for node in ("", "node-1", "node-2"):
        flt = Filter.of(RESOURCES["pods"], field_selector=f"spec.nodeName={node}")
        watches[node] = cache.watch(flt, 0, lambda events: None)
    everyone = cache.watch(Filter(everything=True), 0, lambda events: None)
    pending = {"metadata": {"name": "p", "namespace": "ns"}, "spec": {"nodeName": ""}}
    bound = {"metadata": {"name": "p", "namespace": "ns"}, "spec": {"nodeName": "node-1"}}
    assert cache.watchers(bound, pending) == [everyone, watches["node-1"], watches[""]]
    assert cache.watchers(bound, bound) == [everyone, watches["node-1"]]
    assert cache.watchers(pending, None) == [everyone, watches[""]]
