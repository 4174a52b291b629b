"""The ServiceAccount admission plugin's API-access volume and kube-apiserver's TokenRequest, as upstream v1.35
(plugin/pkg/admission/serviceaccount/admission.go, pkg/registry/core/serviceaccount/storage/token.go)."""

from __future__ import annotations

import base64
import copy
import re

import orjson

from kbench.apiserver.admission import DEFAULT_API_TOKEN_MOUNT_PATH
from kbench.apiserver.objects import timestamp
from tests.controlplane.helpers import Plane

NAME = re.compile(r"^kube-api-access-[bcdfghjklmnpqrstvwxz2456789]{5}$")
"""ServiceAccountVolumeName + "-" + SimpleNameGenerator's 5 characters."""
EXPECTED_SOURCE = {  # admission.go TokenVolumeSource
    "defaultMode": 0o644,
    "sources": [
        {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
        {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
        {
            "downwardAPI": {
                "items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]
            }
        },
    ],
}


def container(name: str, **extra) -> dict:
    return {"name": name, "image": "registry.k8s.io/pause:3.10", **extra}


def create_pod(plane: Plane, name: str, **spec) -> dict:
    spec.setdefault("containers", [container("app")])
    return plane.ok("create", "pods", body={"metadata": {"name": name, "namespace": "default"}, "spec": spec})


def api_access(pod: dict) -> list[dict]:
    return [v for v in pod["spec"].get("volumes", []) if v["name"].startswith("kube-api-access-")]


def test_every_container_and_init_container_mounts_the_projected_api_access_volume():
    plane = Plane()
    spec = {
        "initContainers": [container("init")],
        "containers": [container("a"), container("b", volumeMounts=[{"name": "data", "mountPath": "/data"}])],
        "volumes": [{"name": "data", "emptyDir": {}}],
    }
    sent = copy.deepcopy(spec)
    pod = create_pod(plane, "p", **spec)
    assert spec == sent  # the request's body is not changed by admission
    assert pod["spec"]["serviceAccountName"] == "default"
    (volume,) = api_access(pod)
    assert NAME.match(volume["name"]) and volume["projected"] == EXPECTED_SOURCE
    assert [v["name"] for v in pod["spec"]["volumes"]] == ["data", volume["name"]]  # appended
    mount = {"name": volume["name"], "readOnly": True, "mountPath": DEFAULT_API_TOKEN_MOUNT_PATH}
    for c in pod["spec"]["initContainers"] + pod["spec"]["containers"]:
        assert c["volumeMounts"][-1] == mount
    assert pod["spec"]["containers"][1]["volumeMounts"][0] == {"name": "data", "mountPath": "/data"}
    other = create_pod(plane, "q")
    assert api_access(other)[0]["name"] != volume["name"]  # a name drawn per pod


def test_automount_false_on_the_pod_or_its_account_adds_nothing_and_the_pod_wins():
    plane = Plane()
    plane.ok(
        "create",
        "serviceaccounts",
        namespace="default",
        body={"metadata": {"name": "quiet", "namespace": "default"}, "automountServiceAccountToken": False},
    )
    off = create_pod(plane, "off", automountServiceAccountToken=False)
    assert "volumes" not in off["spec"] and "volumeMounts" not in off["spec"]["containers"][0]
    quiet = create_pod(plane, "quiet", serviceAccountName="quiet")
    assert not api_access(quiet) and "volumeMounts" not in quiet["spec"]["containers"][0]
    wins = create_pod(plane, "wins", serviceAccountName="quiet", automountServiceAccountToken=True)
    assert len(api_access(wins)) == 1


def test_a_container_mounting_the_token_path_already_keeps_its_mount():
    plane = Plane()
    own = [{"name": "mine", "mountPath": DEFAULT_API_TOKEN_MOUNT_PATH}]
    volumes = [{"name": "mine", "emptyDir": {}}]
    both = create_pod(plane, "both", containers=[container("a", volumeMounts=own), container("b")], volumes=volumes)
    assert both["spec"]["containers"][0]["volumeMounts"] == own
    assert both["spec"]["containers"][1]["volumeMounts"][0]["name"] == api_access(both)[0]["name"]
    none = create_pod(plane, "none", containers=[container("a", volumeMounts=own)], volumes=volumes)
    assert not api_access(none)  # no container needs it: no volume


def test_an_existing_kube_api_access_volume_is_reused():
    plane = Plane()
    mine = {"name": "kube-api-access-abcde", "projected": EXPECTED_SOURCE}
    pod = create_pod(plane, "p", volumes=[mine])
    assert pod["spec"]["volumes"] == [mine]
    assert pod["spec"]["containers"][0]["volumeMounts"][0]["name"] == "kube-api-access-abcde"


def test_a_pod_of_a_missing_service_account_is_forbidden():
    plane = Plane()
    _, err = plane.call(
        "create",
        "pods",
        body={
            "metadata": {"name": "p", "namespace": "default"},
            "spec": {"serviceAccountName": "nope", "containers": [container("a")]},
        },
    )
    assert err.code == 403
    assert err.message == 'error looking up service account default/nope: serviceaccount "nope" not found'


def token_request(plane: Plane, account: str, **spec) -> tuple:
    body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec}
    return plane.call("create", "serviceaccounts", namespace="default", name=account, subresource="token", body=body)


def test_token_request_for_a_missing_account_is_404():
    plane = Plane()
    result, err = token_request(plane, "ghost", expirationSeconds=3607)
    assert result is None and err.code == 404 and err.message == 'serviceaccounts "ghost" not found'


def test_token_request_answers_a_bound_token_without_writing_to_etcd():
    plane = Plane()
    pod = create_pod(plane, "p")
    revision = plane.api.etcd.store.revision
    ref = {"kind": "Pod", "apiVersion": "v1", "name": "p", "uid": pod["metadata"]["uid"]}
    issued = plane.engine.now
    result, err = token_request(plane, "default", expirationSeconds=3607, boundObjectRef=ref)
    assert err is None and plane.api.etcd.store.revision == revision  # nothing stored
    assert result["kind"] == "TokenRequest" and result["apiVersion"] == "authentication.k8s.io/v1"
    assert result["status"]["expirationTimestamp"] == timestamp(issued + 3607)
    header, claims, signature = result["status"]["token"].split(".")
    decoded = orjson.loads(base64.urlsafe_b64decode(claims + "=" * (-len(claims) % 4)))
    assert decoded["sub"] == "system:serviceaccount:default:default" and decoded["exp"] - decoded["iat"] == 3607
    assert decoded["kubernetes.io"]["pod"] == {"name": "p", "uid": pod["metadata"]["uid"]}
    assert len(signature) == 342  # base64url of an RS256 (2048-bit) signature


def test_token_request_checks_the_bound_pod_and_the_expiration():
    plane = Plane()
    create_pod(plane, "p")
    _, err = token_request(plane, "default", boundObjectRef={"kind": "Pod", "name": "p", "uid": "uid-stale"})
    assert err.code == 409
    _, err = token_request(plane, "default", boundObjectRef={"kind": "Pod", "name": "gone"})
    assert err.code == 404
    plane.ok(
        "create", "serviceaccounts", namespace="default", body={"metadata": {"name": "other", "namespace": "default"}}
    )
    _, err = token_request(plane, "other", boundObjectRef={"kind": "Pod", "name": "p"})
    assert err.code == 400 and 'running with serviceaccount "default"' in err.message
    _, err = token_request(plane, "default", expirationSeconds=599)
    assert err.code == 422 and "spec.expirationSeconds" in err.message and "less than 10 minutes" in err.message
    _, err = token_request(plane, "default", expirationSeconds=(1 << 32) + 1)
    assert err.code == 422 and "larger than 2^32 seconds" in err.message
    _, err = token_request(plane, "default", expirationSeconds="1h")
    assert err.code == 400 and "spec.expirationSeconds: must be an integer" in err.message
    result, err = token_request(plane, "default")
    assert err is None and result["spec"]["expirationSeconds"] == 3600  # SetDefaults_TokenRequestSpec
