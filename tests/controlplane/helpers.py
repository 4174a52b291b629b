"""A small control plane for tests: apiserver, an admin client, hollow nodes, and stand-ins for the
scheduler and kubelets (they bind pods and set their status directly through the API)."""

from __future__ import annotations

from kbench.apiserver import APIServer
from kbench.apiserver.objects import copy_object, timestamp
from kbench.client import Client
from kbench.node import HollowNode
from kbench.sim import Engine


class Plane:
    def __init__(self, nodes: int = 0, zones: int = 1, **server) -> None:
        self.engine = Engine()
        self.api = APIServer(self.engine, **server)
        self.admin = Client(self.api, "admin", ("system:masters",), qps=1e6, burst=10**6)
        self.nodes = [HollowNode(self.api, f"node-{i}", zone=f"zone-{i % zones}") for i in range(nodes)]
        self.ok("create", "serviceaccounts", namespace="default",
                body={"metadata": {"name": "default", "namespace": "default"}})

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


def running_status(pod: dict, now: float, ready: bool = True, ip: str | None = None) -> dict:
    stamp = timestamp(now)
    uid = int(pod["metadata"]["uid"].split("-")[1])
    return {"phase": "Running", "podIP": ip or f"10.1.{uid // 250}.{uid % 250 + 1}",
            "conditions": [{"type": "Ready", "status": "True" if ready else "False", "lastTransitionTime": stamp}]}


def workload(kind: str, name: str, replicas: int, namespace: str = "default", **spec) -> dict:
    group = {"ReplicaSet": "apps/v1", "Deployment": "apps/v1", "Job": "batch/v1"}[kind]
    template = {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": "c", "image": "app:1"}]}}
    body = {"apiVersion": group, "kind": kind, "metadata": {"name": name, "namespace": namespace},
            "spec": {"template": template, **spec}}
    if kind != "Job":
        body["spec"].update(replicas=replicas, selector={"matchLabels": {"app": name}})
    return body
