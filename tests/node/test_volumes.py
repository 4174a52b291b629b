"""The kubelet's volumes in virtual time: ConfigMaps and Secrets through watch-based reflectors on the kubelet's
rate-limited client, TokenRequests, and WaitForAttachAndMount before the sandbox (pkg/kubelet/volumemanager,
pkg/kubelet/util/manager/watch_based_manager.go, pkg/kubelet/token)."""

from __future__ import annotations

import pytest

from kbench.node.config import KubeletConfiguration
from kbench.node.volumes import (
    MOUNT_POLL,
    MOUNT_TIMEOUT,
    RETRY_INITIAL,
    TOKEN_REQUEST,
    MountError,
    ObjectCache,
    mounted_volumes,
    referenced,
    tick,
    token_request,
    volume_of,
)
from tests.controlplane.helpers import reached, record
from tests.node.test_kubelet import CREATE, SANDBOX, START, Node, app

NS = "default"


def configmap(node: Node, name: str, **extra) -> None:
    node.plane.ok(
        "create", "configmaps", body={"metadata": {"name": name, "namespace": NS}, "data": {"k": "v"}, **extra}
    )


def mounting(name: str, volume: dict) -> dict:
    """A container and the volume it mounts."""
    return {
        "containers": [app(volumeMounts=[{"name": name, "mountPath": "/etc/x"}])],
        "volumes": [{"name": name, **volume}],
    }


def api_access(expiration: int = 3607) -> dict:
    """The projected volume the ServiceAccount admission plugin adds to every pod (kube-api-access-<suffix>)."""
    return {
        "projected": {
            "defaultMode": 420,
            "sources": [
                {"serviceAccountToken": {"expirationSeconds": expiration, "path": "token"}},
                {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"fieldPath": "metadata.namespace"}}]}},
            ],
        }
    }


def pod(node: Node, name: str, spec: dict) -> float:
    containers = spec.pop("containers")
    return node.pod(name, containers, **spec)


def sandbox_wait(node: Node, name: str) -> float:
    """Seconds from the pod worker's start to RunPodSandbox (WaitForAttachAndMount's share)."""
    w = node.worker(name)
    c = (w.init or w.containers)[0]
    return c.started_at - w.started - SANDBOX - CREATE - START


def events(node: Node, reason: str) -> list[dict]:
    return [e for e in node.plane.objects("events", NS) if e["reason"] == reason]


def test_volumes_a_pod_waits_for_and_references_it_counts():
    spec = mounting("cfg", {"configMap": {"name": "a"}})
    spec["volumes"].append({"name": "unused", "secret": {"secretName": "s"}})
    spec["containers"][0]["env"] = [{"name": "E", "valueFrom": {"configMapKeyRef": {"name": "b", "key": "k"}}}]
    spec["imagePullSecrets"] = [{"name": "pull"}]
    manifest = {"metadata": {"name": "p"}, "spec": spec}
    assert [v.name for v in mounted_volumes(manifest)] == ["cfg"]  # a volume no container mounts is not waited for
    assert referenced(manifest, "configMap") == {"a", "b"} and referenced(manifest, "secret") == {"s", "pull"}


def test_pod_without_volumes_starts_at_once():
    node = Node()
    node.pod("a", [app()])
    node.until(node.plane.engine.now + 3)
    assert sandbox_wait(node, "a") == pytest.approx(0.0)


def test_configmap_volume_is_read_before_the_sandbox_and_seen_at_the_300ms_poll():
    node = Node()
    configmap(node, "cfg")
    sent = record(node.kubelet.client)
    pod(node, "a", mounting("cfg", {"configMap": {"name": "cfg"}}))
    node.until(node.plane.engine.now + 3)
    lists = [r for r in reached(sent) if (r["verb"], r["resource"]) == ("list", "configmaps")]
    assert len(lists) == 1 and lists[0]["namespace"] == NS
    w = node.worker("a")
    assert lists[0]["answered"] < w.started + MOUNT_POLL  # fetched, then mounted, before the first poll after
    assert sandbox_wait(node, "a") == pytest.approx(MOUNT_POLL)  # the immediate check fails; the next one passes
    assert node.status("a")["phase"] == "Running"


def test_list_slower_than_a_poll_period_moves_the_start_to_a_later_poll():
    node = Node(config=KubeletConfiguration().replace({"kubeAPIQPS": 1, "kubeAPIBurst": 1}))
    configmap(node, "one")
    configmap(node, "two")
    node.until(node.plane.engine.now + 5)  # the bucket refills
    pod(node, "a", mounting("cfg", {"configMap": {"name": "one"}}))  # its LIST takes the one token
    pod(node, "b", mounting("cfg", {"configMap": {"name": "two"}}))  # its LIST waits behind a's and the statuses
    node.until(node.plane.engine.now + 8)
    wait = sandbox_wait(node, "b")
    assert wait == pytest.approx(round(wait / MOUNT_POLL) * MOUNT_POLL)  # on a poll tick
    assert wait > 1.0  # the LIST waited for a token
    assert sandbox_wait(node, "a") == pytest.approx(MOUNT_POLL)


def test_startup_is_paced_by_the_client_with_qps_1_and_distinct_configmaps():
    n = 8
    starts = {}
    for qps in (1, 50):
        node = Node(config=KubeletConfiguration().replace({"kubeAPIQPS": qps, "kubeAPIBurst": 1}))
        for i in range(n):
            configmap(node, f"cfg-{i}")
        node.until(node.plane.engine.now + 5)
        sent = record(node.kubelet.client)
        t0 = node.plane.engine.now
        for i in range(n):
            pod(node, f"p{i}", mounting("cfg", {"configMap": {"name": f"cfg-{i}"}}))
        node.until(t0 + 60)
        lists = sorted(r["answered"] for r in reached(sent) if (r["verb"], r["resource"]) == ("list", "configmaps"))
        assert len(lists) == n
        if qps == 1:  # one token a second, shared with the pods' status patches
            assert all(b - a >= 1.0 - 0.01 for a, b in zip(lists, lists[1:]))  # (answers: +- the apiserver's time)
        starts[qps] = sorted(node.worker(f"p{i}").containers[0].started_at - t0 for i in range(n))
        assert all(node.status(f"p{i}")["phase"] == "Running" for i in range(n))
    assert starts[50][-1] < 1.5  # all within a couple of polls
    assert starts[1][-1] > n  # the last pod waited for its LIST behind the others' requests
    assert starts[1][-1] - starts[1][0] > (n - 1) * 1.0


def test_two_pods_referencing_one_configmap_share_one_reflector_stopped_with_the_last():
    node = Node()
    configmap(node, "shared")
    sent = record(node.kubelet.client)
    for name in ("a", "b"):
        pod(node, name, mounting("cfg", {"configMap": {"name": "shared"}}))
    node.until(node.plane.engine.now + 3)
    calls = [(r["verb"], r["resource"]) for r in reached(sent)]
    assert calls.count(("list", "configmaps")) == 1 and calls.count(("watch", "configmaps")) == 1
    cache = node.kubelet.volumes.configmaps
    assert cache.reflectors == 1 and cache.items[f"{NS}/shared"].refs == 2
    informer = cache.items[f"{NS}/shared"].informer
    assert informer.selectors["field_selector"] == "metadata.name=shared"
    watch = informer._watch
    for name, left in (("a", 1), ("b", 0)):
        node.plane.ok("delete", "pods", namespace=NS, name=name, gracePeriodSeconds=0)
        node.until(node.plane.engine.now + 3)
        assert len(cache.items) == left
    assert informer._stopped and watch is not None and watch.stopped and informer._watch is None


def test_missing_configmap_keeps_the_pod_creating_until_it_is_created():
    node = Node()
    t0 = pod(node, "a", mounting("cfg", {"configMap": {"name": "late"}}))
    node.until(t0 + 5)
    status = node.status("a")
    assert status["phase"] == "Pending"
    assert status["containerStatuses"][0]["state"] == {"waiting": {"reason": "ContainerCreating"}}
    failed = events(node, "FailedMount")
    assert failed and failed[0]["type"] == "Warning" and failed[0]["involvedObject"]["name"] == "a"
    assert failed[0]["message"] == 'MountVolume.SetUp failed for volume "cfg" : configmap "late" not found'
    assert failed[0]["source"] == {"component": "kubelet", "host": "node-0"}
    assert sum(e["count"] for e in failed) >= 4  # retried at 0.5, 1, 2 s ... (aggregated by the recorder)
    created = node.plane.engine.now
    configmap(node, "late")
    node.until(created + 20)
    c = node.worker("a").containers[0]
    assert node.status("a")["phase"] == "Running"
    # the next mount retry after the watch delivered it (backoff 0.5 s doubling: the gap before it is <= 8 s)
    assert created < c.started_at - SANDBOX - CREATE - START <= created + 8.0 + MOUNT_POLL + 0.2


def test_missing_configmap_past_the_mount_timeout_is_retried_by_the_pod_worker():
    node = Node()
    t0 = pod(node, "a", mounting("cfg", {"configMap": {"name": "late"}}))
    node.until(t0 + MOUNT_TIMEOUT + 20)
    assert node.status("a")["phase"] == "Pending"
    configmap(node, "late")
    node.until(t0 + 400)
    assert node.status("a")["phase"] == "Running"


def test_optional_missing_configmap_mounts_and_emptydir_is_local():
    node = Node()
    sent = record(node.kubelet.client)
    pod(node, "opt", mounting("cfg", {"configMap": {"name": "none", "optional": True}}))
    pod(node, "tmp", mounting("scratch", {"emptyDir": {}}))
    node.until(node.plane.engine.now + 3)
    assert node.status("opt")["phase"] == node.status("tmp")["phase"] == "Running"
    assert sandbox_wait(node, "tmp") == pytest.approx(MOUNT_POLL)  # populator + reconciler ticks miss the first check
    assert not events(node, "FailedMount")
    assert [r["resource"] for r in reached(sent) if r["verb"] in ("list", "get")] == ["configmaps"]  # the optional one


def test_every_pod_gets_its_own_token_and_shares_the_root_ca_configmap():
    node = Node()
    configmap(node, "kube-root-ca.crt")
    sent = record(node.kubelet.client)
    for i in range(3):
        pod(node, f"p{i}", mounting("kube-api-access-x", api_access(expiration=600)))
    node.until(node.plane.engine.now + 3)
    verb, _ = TOKEN_REQUEST
    tokens = [r for r in reached(sent) if (r["verb"], r["resource"]) == (verb, "serviceaccounts")]
    assert len(tokens) == 3 and node.kubelet.volumes.tokens.requests == 3
    assert [r["resource"] for r in reached(sent)].count("configmaps") == 2  # one LIST + one WATCH for all three
    assert all(node.status(f"p{i}")["phase"] == "Running" for i in range(3))
    issued = node.plane.engine.now
    node.until(issued + 600 * 0.8 - 12)
    assert node.kubelet.volumes.tokens.requests == 3
    node.until(issued + 600 * 0.8 + 1)  # requested again within 20% of the TTL (less 0-9 s of jitter)
    manager = node.kubelet.volumes.tokens
    assert manager.requests == 6
    held = {uid: manager.of_pod(uid) for uid in manager.cache}  # each pod's token, the refreshed one in its place
    assert len(held) == 3 and all(
        [t.pod_uid for t in ts] == [uid] and ts[0].issued > issued for uid, ts in held.items()
    )
    gone = node.plane.ok("get", "pods", namespace=NS, name="p0")["metadata"]["uid"]
    node.plane.ok("delete", "pods", namespace=NS, name="p0", gracePeriodSeconds=0)
    node.until(node.plane.engine.now + 3)  # DeleteServiceAccountToken: the deleted pod's token goes, the others stay
    assert manager.of_pod(gone) == [] and sorted(manager.cache) == sorted(set(held) - {gone})


def test_projected_volume_waits_for_the_root_ca_configmap():
    node = Node()
    t0 = pod(node, "a", mounting("kube-api-access-x", api_access()))
    node.until(t0 + 3)
    assert node.status("a")["phase"] == "Pending"
    message = events(node, "FailedMount")[0]["message"]
    assert message == 'MountVolume.SetUp failed for volume "kube-api-access-x" : configmap "kube-root-ca.crt" not found'
    configmap(node, "kube-root-ca.crt")
    node.until(t0 + 15)
    assert node.status("a")["phase"] == "Running"


def test_immutable_configmap_stops_its_watch_after_the_read():
    node = Node()
    configmap(node, "frozen", immutable=True)
    pod(node, "a", mounting("cfg", {"configMap": {"name": "frozen"}}))
    node.until(node.plane.engine.now + 3)
    item = node.kubelet.volumes.configmaps.items[f"{NS}/frozen"]
    assert item.immutable and item.informer._stopped
    assert node.status("a")["phase"] == "Running"


def test_tick_is_the_first_loop_tick_at_or_after():
    assert tick(1.0, 0.1, 0.03) == pytest.approx(1.03)
    assert tick(1.03, 0.1, 0.03) == pytest.approx(1.03)
    assert tick(0.0, 0.3, 0.0) == 0.0
    assert RETRY_INITIAL == 0.5


def test_a_stopped_kubelet_stops_its_reflectors_and_lists_again_when_back():
    node = Node()
    configmap(node, "kube-root-ca.crt")
    pod(node, "a", mounting("kube-api-access-x", api_access(expiration=600)))
    node.until(node.plane.engine.now + 3)
    cache = node.kubelet.volumes.configmaps
    before = cache.items[f"{NS}/kube-root-ca.crt"].informer
    sent = record(node.kubelet.client)
    node.kubelet.stop()
    node.until(node.plane.engine.now + 500)  # past the token's refresh point: the refresh cannot get through
    assert before._stopped and not reached(sent)
    assert node.kubelet.volumes.tokens.requests == 1
    node.kubelet.restart()
    node.until(node.plane.engine.now + 70)  # the failed refresh is tried again at the next resync
    calls = [(r["verb"], r["resource"]) for r in reached(sent)]
    assert calls.count(("list", "configmaps")) == 1 and cache.items[f"{NS}/kube-root-ca.crt"].informer is not before
    assert node.kubelet.volumes.tokens.requests == 2


def test_token_request_is_bound_to_the_pod():
    pod = {"metadata": {"name": "p", "namespace": NS, "uid": "uid-7"}}
    source = volume_of({"name": "v", **api_access(expiration=900)}).sources[0]
    assert source.kind == "serviceAccountToken" and source.expiration == 900
    assert token_request(pod, source) == {
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenRequest",
        "spec": {
            "expirationSeconds": 900,
            "boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "p", "uid": "uid-7"},
        },
    }


def test_object_cache_refuses_a_resource_it_has_no_manager_for():
    node = Node()
    with pytest.raises(ValueError, match="resource must be one of configmaps, secrets; got 'pods'"):
        ObjectCache(node.kubelet.client, "pods")


def test_a_token_that_expired_while_its_refresh_failed_is_an_error_naming_its_key():
    """GetServiceAccountToken: a failed refresh keeps a still-valid token; once it has expired the error is
    ``token <keyFunc> expired and refresh failed: <err>`` (pkg/kubelet/token/token_manager.go)."""
    node = Node()
    configmap(node, "kube-root-ca.crt")
    pod(node, "a", mounting("kube-api-access-x", api_access(expiration=600)))
    node.until(node.plane.engine.now + 3)
    manager, issued = node.kubelet.volumes.tokens, node.plane.engine.now
    manifest = node.worker("a").pod
    source = volume_of({"name": "v", **api_access(expiration=600)}).sources[0]
    outcomes = []

    def read():
        try:
            token = yield from manager.get(NS, "default", source, manifest)
            outcomes.append(token.issued)
        except MountError as err:
            outcomes.append(str(err))

    manager.reachable = False
    node.until(issued + 590)
    node.plane.engine.process(read())
    node.until(issued + 601)
    node.plane.engine.process(read())
    node.until(issued + 602)
    uid = manifest["metadata"]["uid"]
    assert outcomes[0] < issued  # the old token, past its refresh point but valid
    assert outcomes[1] == (
        f'token "default"/"{NS}"/[]string(nil)/600/v1.BoundObjectReference{{Kind:"Pod", APIVersion:"v1", Name:"a", '
        f'UID:"{uid}"}} expired and refresh failed: the apiserver cannot be reached'
    )
