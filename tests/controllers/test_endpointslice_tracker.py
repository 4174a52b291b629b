"""The EndpointSlice controller's staleness tracking (staging/src/k8s.io/endpointslice/util/endpointslice_tracker.go,
pkg/controller/endpointslice/endpointslice_controller.go syncService) and the reconciler's finalize
(staging/src/k8s.io/endpointslice/reconciler.go), v1.35, in virtual time."""

from __future__ import annotations

import pytest

from kbench.apiserver.objects import copy_object, seconds
from kbench.controllers.endpointslice import TRIGGER, finalize, new_slice
from kbench.controllers.endpointslicetracker import EndpointSliceTracker
from tests.controlplane.helpers import Plane, kcm, record, running_status

SERVICE = {"metadata": {"name": "web"}, "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}}


def _slice(uid: str, rv: int, service: str = "web") -> dict:
    labels = {"kubernetes.io/service-name": service}
    return {"metadata": {"namespace": "default", "uid": uid, "resourceVersion": str(rv), "labels": labels}}


def _svc(uid: str = "svc-1") -> dict:
    return {"kind": "Service", "metadata": {"namespace": "default", "name": "web", "uid": uid}}


# -- the tracker alone (endpointslice_tracker_test.go's cases) ---------------------------------------------------
def test_should_sync_only_a_slice_newer_than_the_controllers_own_write():
    tracker = EndpointSliceTracker()
    assert tracker.should_sync(_slice("a", 5))  # untracked Service
    tracker.update(_slice("a", 5))
    assert not tracker.should_sync(_slice("a", 5)) and not tracker.should_sync(_slice("a", 4))
    assert tracker.should_sync(_slice("a", 6)) and tracker.should_sync(_slice("b", 1))


def test_stale_slices_older_missing_or_expected_deleted():
    tracker = EndpointSliceTracker()
    assert not tracker.stale_slices(_svc(), [])  # nothing written yet
    tracker.update(_slice("a", 5))
    assert tracker.stale_slices(_svc(), [])  # the controller's own create is not in the cache yet
    assert tracker.stale_slices(_svc(), [_slice("a", 4)])  # an older copy
    assert not tracker.stale_slices(_svc(), [_slice("a", 5)]) and not tracker.stale_slices(_svc(), [_slice("a", 7)])
    tracker.expect_deletion(_slice("a", 5))
    assert tracker.stale_slices(_svc(), [_slice("a", 5)])  # deleted by the controller, still in the cache
    assert not tracker.stale_slices(_svc(), [])  # an expected deletion need not be listed


def test_the_tracker_forgets_handled_deletions_and_deleted_services():
    tracker = EndpointSliceTracker()
    tracker.update(_slice("a", 5))
    tracker.expect_deletion(_slice("b", 3))
    assert tracker.handle_deletion(_slice("b", 3))  # expected
    assert not tracker.has(_slice("b", 3))
    assert not tracker.handle_deletion(_slice("a", 5))  # someone else deleted it: the Service must be synced
    assert not tracker.has(_slice("a", 5)) and not tracker.stale_slices(_svc(), [])
    tracker.update(_slice("c", 2))
    tracker.delete_service("default", "web")
    assert tracker.generations_by_service == {} and tracker.services_by_uid == {}


def test_a_recreated_service_is_not_held_back_by_the_old_ones_writes():
    tracker = EndpointSliceTracker()
    assert not tracker.stale_slices(_svc("old"), [])
    tracker.update(_slice("a", 5))
    assert tracker.stale_slices(_svc("old"), [])
    assert not tracker.stale_slices(_svc("new"), [])  # same name, new uid: the old generations are dropped


def test_finalize_turns_a_create_and_a_delete_into_an_update():
    svc = {**_svc(), "apiVersion": "v1"}
    owned = {**new_slice(svc), "metadata": {**new_slice(svc)["metadata"], "name": "web-abcde", "resourceVersion": "9"}}
    foreign = copy_object(owned)
    foreign["metadata"].update(name="web-old", ownerReferences=[{"uid": "another-service"}])
    body = new_slice(svc)
    creates, updates, deletes = finalize(svc, [body], [], [foreign, owned])
    assert creates == [] and deletes == [foreign]  # a slice of an older Service of that name is not reused
    assert updates == [body] and body["metadata"]["name"] == "web-abcde" and body["metadata"]["resourceVersion"] == "9"
    other = new_slice(svc)
    other["addressType"] = "IPv6"
    assert finalize(svc, [other], [], [owned]) == ([other], [], [owned])  # addressType is immutable


# -- the controller in virtual time -------------------------------------------------------------------------------
def _plane(**flags):
    plane = Plane(nodes=1)
    manager = kcm(plane, "endpointslice", **flags).start()
    plane.run(1.0)
    plane.ok("create", "services", namespace="default", body=SERVICE)
    return plane, manager.controller("endpointslice-controller")


def _pods(plane: Plane, n: int) -> list[dict]:
    body = {"metadata": {"labels": {"app": "web"}}, "spec": {"nodeName": "node-0", "containers": [{"name": "c"}]}}
    return [
        plane.ok(
            "create", "pods", namespace="default", body={**body, "metadata": {**body["metadata"], "name": f"p{i}"}}
        )
        for i in range(n)
    ]


def _ready_at(plane: Plane, pod: dict, at: float, ready: bool = True) -> None:
    """At ``at``, the pod becomes Running with an IP (Ready or not), without waiting for the answer."""

    def send(_):
        body = copy_object(pod)
        body["status"] = running_status(pod, plane.engine.now, ready)
        plane.admin.request("update", "pods", lambda *a: None, subresource="status", body=body)

    plane.engine.schedule(at - plane.engine.now, send)


def _slice_writes(log: list[dict]) -> list[tuple[str, str]]:
    return [(r["verb"], r["name"]) for r in log if r["resource"] == "endpointslices"]


@pytest.mark.parametrize("tracked", [True, False])
def test_pods_turning_ready_quickly_get_one_slice(tracked):
    """Six pods turn Ready 1 ms apart: the second sync starts before the informer has seen the slice the first one
    created. With the tracker it is requeued and the slice updated (one create, no delete); without it (the check
    switched off) a second slice is created for endpoints the first one holds, as kbench did before."""
    plane, ctl = _plane()
    if not tracked:
        ctl.tracker.stale_slices = lambda svc, slices: False
    pods = _pods(plane, 6)
    log = record(ctl.client)
    start = plane.engine.now + 0.5
    for i, pod in enumerate(pods):
        _ready_at(plane, pod, start + 0.001 * i)
    plane.run(start + 5.0)
    writes = _slice_writes(log)
    slices = plane.objects("endpointslices", "default")
    creates = [w for w in writes if w[0] == "create"]
    if tracked:
        assert ctl.stale_syncs > 0, "the race this test is about did not happen"
        assert len(creates) == 1 and not [w for w in writes if w[0] == "delete"]
        assert len(slices) == 1 and len(slices[0]["endpoints"]) == 6
    else:
        assert len(creates) == 2 and len(slices) == 2


def test_a_sync_with_a_stale_cache_is_requeued_not_written():
    """The slice informer loses its watch; the controller's update of the slice is not seen, so the next pod change's
    sync finds the cache stale: nothing is written, the Service is requeued through the rate limiter until the
    informer has caught up, then the slice is updated with the earliest unwritten trigger time."""
    plane, ctl = _plane()
    pods = _pods(plane, 3)
    _ready_at(plane, pods[0], plane.engine.now + 0.1)
    plane.run(plane.engine.now + 2.0)
    assert len(plane.objects("endpointslices", "default")) == 1
    log = record(ctl.client)
    ctl.slices.disconnect(3.0)
    cut = plane.engine.now
    _ready_at(plane, pods[1], cut + 0.1)  # written; the informer does not see the write
    _ready_at(plane, pods[2], cut + 1.0)  # its sync finds the cache behind the controller's own write
    plane.run(cut + 2.5)
    assert [verb for verb, _ in _slice_writes(log)] == ["update"] and ctl.stale_syncs > 0  # p2's sync wrote nothing
    assert ctl.queue.failures.get("default/web", 0) > 0  # requeued through the rate limiter
    plane.run(cut + 15.0)
    writes = [r for r in log if r["resource"] == "endpointslices"]
    assert [r["verb"] for r in writes] == ["update", "update"] and writes[1]["at"] > cut + 3.0
    final = plane.objects("endpointslices", "default")
    assert len(final) == 1 and len(final[0]["endpoints"]) == 3
    trigger = seconds(writes[1]["body"]["metadata"]["annotations"][TRIGGER])
    assert trigger == int(cut + 1.0)  # pod p2's Ready transition (a whole-second stamp), kept across the requeues
    assert "default/web" not in ctl.queue.failures  # forgotten after the sync succeeded


def test_the_controller_forgets_slices_it_deleted_and_services_that_are_gone():
    plane, ctl = _plane(max_endpoints_per_slice=2)
    pods = _pods(plane, 3)
    for i, pod in enumerate(pods):
        _ready_at(plane, pod, plane.engine.now + 0.1 + i)
    plane.run(plane.engine.now + 5.0)
    slices = plane.objects("endpointslices", "default")
    assert sorted(len(s["endpoints"]) for s in slices) == [1, 2]
    single = next(s for s in slices if len(s["endpoints"]) == 1)
    gone = next(p for p in pods if p["metadata"]["name"] == single["endpoints"][0]["targetRef"]["name"])
    done = copy_object(plane.ok("get", "pods", namespace="default", name=gone["metadata"]["name"]))
    done["status"] = {**running_status(done, plane.engine.now, ready=False), "phase": "Succeeded"}  # its slice empties
    plane.ok("update", "pods", subresource="status", body=done)
    plane.run(plane.engine.now + 5.0)
    assert len(plane.objects("endpointslices", "default")) == 1
    assert not ctl.tracker.has(single)  # its deletion was expected, then seen: forgotten
    assert len(ctl.tracker.generations_by_service["default/web"]) == 1
    plane.ok("delete", "services", namespace="default", name="web")
    plane.run(plane.engine.now + 5.0)
    assert plane.objects("endpointslices", "default") == []
    assert ctl.tracker.generations_by_service == {} and ctl.tracker.services_by_uid == {}
