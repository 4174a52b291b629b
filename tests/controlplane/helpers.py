"""A small control plane for tests: apiserver, an admin client, hollow nodes, and stand-ins for the
scheduler and kubelets (they bind pods and set their status directly through the API); controller managers running
some controllers (:func:`kcm`, :func:`ccm`); and taps on a component's client (:func:`record` its requests,
:func:`fail_next` to make some fail, :func:`race` another writer against it)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from kbench.apiserver import APIServer
from kbench.apiserver.objects import APIError, copy_object, timestamp
from kbench.client import Client
from kbench.cloud import Cloud, CloudControllerManagerConfiguration, cloud_controller_manager
from kbench.cloud.config import ROUTE_FLAGS
from kbench.cluster import Cluster
from kbench.controllers import KubeControllerManagerConfiguration, Manager, controller_manager
from kbench.controllers.config import KUBEADM_FLAGS
from kbench.node import HollowNode
from kbench.sim import Engine


class Plane:
    def __init__(self, nodes: int = 0, zones: int = 1, **server) -> None:
        self.engine = Engine()
        self.api = APIServer(self.engine, **server)
        self.admin = Client(self.api, "admin", ("system:masters",), qps=1e6, burst=10**6)
        self.nodes = [HollowNode(self.api, f"node-{i}", zone=f"zone-{i % zones}") for i in range(nodes)]
        self.ok(
            "create",
            "serviceaccounts",
            namespace="default",
            body={"metadata": {"name": "default", "namespace": "default"}},
        )

    def run(self, until: float) -> None:
        self.engine.run(until=until)

    def call(self, verb: str, resource: str, **kwargs):
        """Run one admin request to completion; returns (result, error)."""
        box = {}

        def done(result, error, delay):
            box["r"] = (result, error)

        self.admin.request(verb, resource, done, **kwargs)
        while "r" not in box:
            self.engine.run(until=self.engine.now + 0.01)
        return box["r"]

    def ok(self, verb: str, resource: str, **kwargs):
        result, error = self.call(verb, resource, **kwargs)
        assert error is None, error
        return result

    def touch(self, resource: str, name: str, namespace: str = "") -> None:
        """Another writer changes the object (the label ``racing: writer``), without waiting for the answer."""
        body = {"metadata": {"labels": {"racing": "writer"}}}
        self.admin.request("patch", resource, lambda *a: None, namespace=namespace, name=name, body=body)

    def touch_node(self, name: str) -> None:
        """Another writer changes the node (:meth:`touch`)."""
        self.touch("nodes", name)

    def objects(self, resource: str, namespace: str = "") -> list[dict]:
        return self.ok("list", resource, namespace=namespace)["items"]

    def run_pods(self, namespace: str = "default", nodes: list[str] | None = None, ready: bool = True) -> int:
        """Scheduler + kubelet stand-in: bind unbound pods round robin and mark bound pods Running (and Ready)."""
        names = nodes or [n.name for n in self.nodes]
        changed = 0
        for i, pod in enumerate(self.objects("pods", namespace)):
            if pod["metadata"].get("deletionTimestamp"):
                continue
            body = copy_object(pod)
            if not body["spec"].get("nodeName"):
                body["spec"]["nodeName"] = names[i % len(names)]
                pod = self.ok("update", "pods", body=body)
                body = copy_object(pod)
            if body.get("status", {}).get("phase") != "Running":
                body["status"] = running_status(pod, self.engine.now, ready)
                self.ok("update", "pods", body=body, subresource="status")
                changed += 1
        return changed


def kcm_config(*controllers: str, **flags: Any) -> KubeControllerManagerConfiguration:
    """kube-controller-manager running ``controllers`` (names or aliases; all by default) with kubeadm's node-CIDR
    flags and ``flags`` (``kube_api_qps=100`` for ``--kube-api-qps``)."""
    values: dict[str, Any] = {**KUBEADM_FLAGS, "controllers": list(controllers) or ["*"]}
    values.update({name.replace("_", "-"): value for name, value in flags.items()})
    return KubeControllerManagerConfiguration.from_flags(values)


def kcm(plane: Plane, *controllers: str, identity: str = "kcm-0", **flags: Any) -> Manager:
    """A kube-controller-manager of :func:`kcm_config` on ``plane``, not started."""
    return controller_manager(plane.api, identity, kcm_config(*controllers, **flags))


def ccm(
    plane: Plane, cloud: Cloud, *controllers: str, identity: str = "ccm-0", flags: Mapping[str, Any] | None = None
) -> Manager:
    """A cloud-controller-manager running ``controllers`` (all by default) with routes configured, not started."""
    values = {**ROUTE_FLAGS, "controllers": list(controllers) or ["*"], **(flags or {})}
    config = CloudControllerManagerConfiguration.from_flags(values)
    return cloud_controller_manager(plane.api, cloud, identity, config)


def running_status(pod: dict, now: float, ready: bool = True, ip: str | None = None) -> dict:
    stamp = timestamp(now)
    uid = int(pod["metadata"]["uid"].split("-")[1])
    return {
        "phase": "Running",
        "podIP": ip or f"10.1.{uid // 250}.{uid % 250 + 1}",
        "conditions": [{"type": "Ready", "status": "True" if ready else "False", "lastTransitionTime": stamp}],
    }


def workload(kind: str, name: str, replicas: int, namespace: str = "default", **spec) -> dict:
    group = {"ReplicaSet": "apps/v1", "Deployment": "apps/v1", "Job": "batch/v1"}[kind]
    template = {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": "c", "image": "app:1"}]}}
    body = {
        "apiVersion": group,
        "kind": kind,
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"template": template, **spec},
    }
    if kind != "Job":
        body["spec"].update(replicas=replicas, selector={"matchLabels": {"app": name}})
    return body


def record(client: Client) -> list[dict]:
    """Every request ``client`` sends from now on: when it leaves (``at``), what it is (with ``sent_rv``, the
    resourceVersion its body carries), when and how it is answered (``answered``, ``code``, and ``got_rv``, the
    resourceVersion of the object answered; a request taken back before it left is never answered)."""
    sent: list[dict] = []
    request = client.request

    def logged(verb, resource, callback, delay=0.0, **kwargs):
        body = kwargs.get("body") or {}
        meta = body.get("metadata", {})
        entry = {
            "at": client.engine.now + delay,
            "verb": verb,
            "resource": resource,
            "body": body,
            "namespace": kwargs.get("namespace") or meta.get("namespace", ""),
            "name": kwargs.get("name") or meta.get("name", ""),
            "subresource": kwargs.get("subresource", ""),
            "sent_rv": meta.get("resourceVersion"),
        }
        sent.append(entry)

        def answered(result, error, answer_delay):
            entry["answered"], entry["code"] = client.engine.now + answer_delay, error.code if error else 200
            if error is None and isinstance(result, dict):
                entry["got_rv"] = result.get("metadata", {}).get("resourceVersion")
            return callback(result, error, answer_delay)

        return request(verb, resource, answered, delay=delay, **kwargs)

    client.request = logged
    return sent


def read_before(sent: list[dict], write: dict) -> dict:
    """The last GET of the object of ``write`` that :func:`record` saw sent before it."""
    return max(
        (
            r
            for r in sent
            if r["verb"] == "get"
            and r["resource"] == write["resource"]
            and r["name"] == write["name"]
            and r["at"] <= write["at"]
        ),
        key=lambda r: r["at"],
    )


def reached(sent: list[dict]) -> list[dict]:
    """The requests of :func:`record` that reached the apiserver (it answered them)."""
    return [r for r in sent if "answered" in r]


def fail_next(
    client: Client,
    verb: str,
    resource: str,
    subresource: str = "",
    times: int = 1,
    code: int = 429,
    reason: str = "TooManyRequests",
) -> None:
    """The next ``times`` ``verb`` requests of ``resource`` (``subresource``) that ``client`` sends fail with
    ``code`` and ``reason`` without reaching the apiserver (as APF's rejection would)."""
    request = client.request
    left = [times]

    def maybe(v, res, callback, delay=0.0, **kwargs):
        if left[0] and (v, res, kwargs.get("subresource", "")) == (verb, resource, subresource):
            left[0] -= 1
            error = APIError(code, reason, "injected")
            return client.engine.schedule(delay, lambda _: callback(None, error, 0.0))
        return request(v, res, callback, delay=delay, **kwargs)

    client.request = maybe


RACE_HEAD_START = 0.005
"""Seconds the other writer's request leads the component's in :func:`race`: through its apiserver instance's CPU
and into etcd first, whichever instance each connection is pinned to."""


def race(
    client: Client,
    verb: str,
    resource: str,
    subresource: str,
    other: Callable[[dict], object],
    lead: float = RACE_HEAD_START,
) -> None:
    """Just before ``client`` sends its next ``verb`` of ``resource`` (``subresource``), ``other(request's keyword
    arguments)`` runs, e.g. sends another writer's request, which reaches etcd first (the component's request leaves
    ``lead`` seconds later): the component's write then works from a stale copy."""
    request = client.request
    armed = [True]

    def racing(v, res, callback, delay=0.0, **kwargs):
        if armed[0] and (v, res, kwargs.get("subresource", "")) == (verb, resource, subresource):
            armed[0] = False
            other(kwargs)
            delay += lead
        return request(v, res, callback, delay=delay, **kwargs)

    client.request = racing


def taint_no_execute(plane: Plane, name: str, key: str | None) -> None:
    """Replace node ``name``'s taints with ``key``:NoExecute (none when ``key`` is None)."""
    body = copy_object(plane.ok("get", "nodes", name=name))
    body["spec"]["taints"] = [{"key": key, "effect": "NoExecute"}] if key else []
    plane.ok("update", "nodes", body=body)


def running_pod(plane: Plane, name: str, node: str) -> None:
    """Create pod ``name`` in default and run it on ``node`` (:meth:`Plane.run_pods`)."""
    plane.ok(
        "create",
        "pods",
        namespace="default",
        body={"metadata": {"name": name}, "spec": {"containers": [{"name": "c", "image": "app:1"}]}},
    )
    plane.run_pods(nodes=[node])


def cluster_call(cluster: Cluster, verb: str, resource: str, **kwargs):
    """One admin request run to completion on the whole cluster; returns the result."""
    box: dict = {}
    cluster.admin.request(verb, resource, lambda result, error, delay: box.setdefault("r", (result, error)), **kwargs)
    while "r" not in box:
        cluster.run(cluster.engine.now + 0.01)
    assert box["r"][1] is None, box["r"][1]
    return box["r"][0]
