"""The bound pods' slots (what the compiled preemption dry run reads) stay equal to the scheduler's state under any
sequence of binds, removals, batch records, temporary additions and refreshes."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from kbench.api.core import Node, Pod
from kbench.scheduler.podslots import NOT_STARTED, label_group
from kbench.scheduler.state import ClusterState

NODES = 4


def _pod(i: int, cpu: int, priority: int, app: str, start: int | None) -> Pod:
    manifest = {
        "metadata": {"name": f"p{i}", "labels": {"app": app}},
        "spec": {"priority": priority, "containers": [{"name": "c", "resources": {"requests": {"cpu": f"{cpu}m"}}}]},
    }
    if start is not None:
        manifest["status"] = {"startTime": f"2026-01-01T00:00:{start:02d}Z"}
    return Pod.from_manifest(manifest)


ops = st.lists(
    st.tuples(
        st.sampled_from(["bind", "remove", "batch", "placed", "added", "refresh"]),
        st.integers(0, NODES - 1),
        st.integers(1, 4),
        st.integers(0, 3),
        st.sampled_from(["a", "b"]),
        st.one_of(st.none(), st.integers(0, 59)),
    ),
    max_size=40,
)


def check(state: ClusterState) -> None:
    slots = state.slots
    assert int((slots.node >= 0).sum()) == len(state.pods)
    seqs = set()
    for bound in state.pods.values():
        s, pod = bound.slot, bound.pod
        assert slots.node[s] == bound.node and slots.priority[s] == pod.priority and slots.pods[s] is pod
        assert slots.start[s] == (NOT_STARTED if pod.start_time is None else pod.start_time)
        assert np.array_equal(slots.requests[:, s], state.vector(pod.requests))
        assert slots.group[s] == slots.groups[label_group(pod)]
        seqs.add(int(slots.seq[s]))
    assert len(seqs) == len(state.pods)


@settings(max_examples=80, deadline=None)
@given(ops)
def test_slots_follow_the_state(sequence):
    state = ClusterState(
        Node.from_manifest({"metadata": {"name": f"n{i}"}, "status": {"allocatable": {"cpu": "64", "pods": "500"}}})
        for i in range(NODES)
    )
    for k, (op, node, cpu, priority, app, start) in enumerate(sequence):
        pods = [_pod(10 * k + j, 100 * cpu, priority, app, start) for j in range(3)]
        if op == "bind":
            state.bind(pods[0], node)
        elif op == "remove" and state.pods:
            state.remove(sorted(state.pods)[node % len(state.pods)])
        elif op == "batch":  # a kernel already added their resources; only the registration is checked here
            state.record_bound(pods, np.array([node, (node + 1) % NODES, node]))
        elif op == "placed":
            placed = [pods[0], _pod(10 * k + 5, 50, 3, "b", None)]
            requests = np.stack([state.vector(p.requests) for p in placed], axis=1)
            state.record_placed(placed, [node, (node + 2) % NODES], requests)
        elif op == "added":
            with state.added([(pods[0], node)]):
                check(state)
        elif op == "refresh" and state.pods:
            old = state.pods[sorted(state.pods)[node % len(state.pods)]].pod
            manifest = {**old.manifest, "status": {"startTime": "2026-01-01T00:01:00Z"}}
            state.refresh(Pod.from_manifest(manifest))
        check(state)


def test_a_reused_slot_forgets_a_resource_its_new_pod_does_not_request():
    """A kernel's bind vectors may predate a resource row: the slot a GPU pod left must not keep its GPUs."""
    allocatable = {"cpu": "8", "pods": "10", "x/gpu": "4"}
    state = ClusterState([Node.from_manifest({"metadata": {"name": "n0"}, "status": {"allocatable": allocatable}})])
    gpu = Pod.from_manifest({"metadata": {"name": "g"}, "spec": {"containers": [
        {"name": "c", "resources": {"requests": {"cpu": "1", "x/gpu": "2"}}}]}})  # fmt: skip
    state.bind(gpu, 0)
    state.remove(gpu.key)
    plain = _pod(1, 100, 0, "a", None)
    state.record_placed([plain], [0], np.array([[100], [0], [0], [0]], np.int64))  # the four core rows only
    check(state)
