"""The root CA certificate publisher in virtual time (pkg/controller/certificates/rootcacertpublisher, v1.35), and
pod startup with the ServiceAccount admission plugin's API-access volume end to end."""

from __future__ import annotations

import kbench
from kbench.controllers import CONTROLLERS, controller_manager
from kbench.controllers.rootcacertpublisher import (
    DESCRIPTION,
    DESCRIPTION_ANNOTATION,
    ROOT_CA,
    ROOT_CA_CERT_CONFIGMAP_NAME,
    RootCACertPublisher,
)
from tests.controlplane.helpers import Plane, kcm, kcm_config, record

NAME = "root-ca-certificate-publisher-controller"


def published(plane: Plane, namespace: str) -> dict | None:
    found = plane.api.caches["configmaps"].get(f"{namespace}/{ROOT_CA_CERT_CONFIGMAP_NAME}")
    return found[0] if found else None


def test_is_registered_under_its_upstream_name_and_alias():
    plane = Plane()
    assert CONTROLLERS[NAME] is RootCACertPublisher
    assert NAME in [c.name for c in controller_manager(plane.api).controllers]
    off = controller_manager(plane.api, config=kcm_config("*", "-root-ca-cert-publisher"))
    assert NAME not in [c.name for c in off.controllers]


def test_a_new_namespace_gets_the_configmap_from_the_controllers_own_client():
    plane = Plane()
    manager = kcm(plane, "root-ca-cert-publisher")
    sent = record(manager.controller(NAME).client)
    manager.start()
    plane.run(1.0)
    assert published(plane, "kube-system") is not None and published(plane, "default") is not None
    plane.ok("create", "namespaces", body={"metadata": {"name": "team"}})
    created = plane.engine.now
    plane.run(created + 0.5)
    cm = published(plane, "team")
    assert cm is not None and cm["data"] == {"ca.crt": ROOT_CA}
    assert cm["metadata"]["annotations"] == {DESCRIPTION_ANNOTATION: DESCRIPTION}
    writes = [(r["verb"], r["namespace"]) for r in sent if r["resource"] == "configmaps"]
    assert ("create", "team") in writes and len(writes) == 5  # the 4 system namespaces + team, one create each
    assert manager.builder.clients["root-ca-cert-publisher"] == [manager.controller(NAME).client]


def test_a_deleted_configmap_is_created_again_and_a_changed_one_is_put_back():
    plane = Plane()
    kcm(plane, "root-ca-cert-publisher").start()
    plane.run(1.0)
    first = published(plane, "default")
    deleted = plane.ok("delete", "configmaps", namespace="default", name=ROOT_CA_CERT_CONFIGMAP_NAME)
    assert deleted["metadata"]["uid"] == first["metadata"]["uid"]
    plane.run(plane.engine.now + 0.5)
    again = published(plane, "default")
    assert again is not None and again["metadata"]["uid"] != first["metadata"]["uid"]  # a new object
    plane.ok(
        "update",
        "configmaps",
        body={**again, "data": {"ca.crt": "tampered"}, "metadata": {**again["metadata"], "annotations": {}}},
    )
    plane.run(plane.engine.now + 0.5)
    restored = published(plane, "default")
    assert restored["data"] == {"ca.crt": ROOT_CA} and restored["metadata"]["annotations"][DESCRIPTION_ANNOTATION]


def test_a_deleted_namespace_takes_its_configmap_with_it():
    plane = Plane()
    kcm(plane, "root-ca-cert-publisher", "namespace", "serviceaccount").start()
    plane.ok("create", "namespaces", body={"metadata": {"name": "gone"}})
    plane.run(2.0)
    assert published(plane, "gone") is not None
    plane.ok("delete", "namespaces", name="gone")
    plane.run(plane.engine.now + 10)
    assert plane.api.caches["namespaces"].get("gone") is None  # its content, the ConfigMap too, was deleted
    assert published(plane, "gone") is None  # and not created again in the terminating namespace


def test_density_pods_all_start_with_one_token_request_each():
    nodes, per_node = 3, 4
    result = kbench.SCENARIOS["density"](nodes=nodes, pods_per_node=per_node, rate=20).run(progress=False)
    cluster = result.cluster
    pods = [obj for obj, _, _ in cluster.api.caches["pods"].objects.values()]
    assert len(pods) == nodes * per_node
    assert all(p["status"]["phase"] == "Running" for p in pods)  # none left ContainerCreating
    assert all(v["name"].startswith("kube-api-access-") for p in pods for v in p["spec"]["volumes"])
    assert result.counts["pods_never_started"] == 0
    assert sum(k.volumes.tokens.requests for k in cluster.kubelets) == len(pods)
    creates = len(cluster.api.sli.samples[("create", "serviceaccounts", "resource")])
    accounts = len(cluster.api.caches["serviceaccounts"].objects)  # each created once by the serviceaccount controller
    assert creates - accounts == len(pods)  # and each pod's token one POST serviceaccounts/default/token
    assert published_in(cluster, "density")


def published_in(cluster, namespace: str) -> bool:
    return cluster.api.caches["configmaps"].get(f"{namespace}/{ROOT_CA_CERT_CONFIGMAP_NAME}") is not None
