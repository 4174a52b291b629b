"""The request path's shortcuts give what the general code gives: timestamps formatted once per second, the watch
event of an unfiltered watcher, the demand integrator's inline update, the request's target."""

import datetime as dt
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kbench.apiserver.flowcontrol import Integrator
from kbench.apiserver.objects import EPOCH, RESOURCES, Filter, timestamp
from kbench.apiserver.server import request_target
from kbench.apiserver.watchcache import _event_for


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
