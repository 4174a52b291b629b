"""Admission on create: the plugins kbench's requests meet, in upstream's order (v1.35's default plugins that act on
them, pkg/kubeapiserver/options/plugins.go AllOrderedPlugins): NamespaceLifecycle, ServiceAccount, Priority,
DefaultTolerationSeconds (the mutating phase); then the object's validation and the validating phase (Priority's
check of PriorityClasses: :mod:`kbench.apiserver.priority`). LimitRanger and ResourceQuota are not modelled
(kbench's namespaces hold no LimitRanges or quotas).

ServiceAccount (plugin/pkg/admission/serviceaccount/admission.go, v1.35) also mounts the account's API credentials:
unless ``automountServiceAccountToken`` is false (the pod's setting wins, then the account's), every container and
init container without a mount at :data:`DEFAULT_API_TOKEN_MOUNT_PATH` gets a read-only one of the projected volume
``kube-api-access-<5 random characters>`` (:func:`token_volume_source`): a bound token, the ``kube-root-ca.crt``
ConfigMap's ``ca.crt`` and the namespace. Not modelled: the account's imagePullSecrets, mirror pods, and the up to 10
live GETs (100-200 ms apart) upstream makes for a ``default`` account its informer has not seen yet.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from functools import cache, lru_cache

from kbench.apiserver.config import KubeAPIServerConfig
from kbench.apiserver.objects import APIError, Resource, generate_name
from kbench.apiserver.priority import admit_pod_priority, validate
from kbench.apiserver.watchcache import WatchCache

SERVICE_ACCOUNT_VOLUME_NAME = "kube-api-access"
"""admission.go ServiceAccountVolumeName: the prefix of the projected volume's name."""
DEFAULT_API_TOKEN_MOUNT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
"""admission.go DefaultAPITokenMountPath."""
WARN_ONLY_BOUND_TOKEN_EXPIRATION_SECONDS = 3607
"""pkg/serviceaccount/claims.go WarnOnlyBoundTokenExpirationSeconds (1 h + 7 s): the admission volume's token TTL."""
PROJECTED_VOLUME_SOURCE_DEFAULT_MODE = 0o644
"""core/v1 ProjectedVolumeSourceDefaultMode, set explicitly by TokenVolumeSource (kubernetes#104464)."""
ROOT_CA_CONFIGMAP = "kube-root-ca.crt"
"""pkg/controller/certificates/rootcacertpublisher RootCACertConfigMapName."""
NOT_READY, UNREACHABLE = "node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"
"""The taints the DefaultTolerationSeconds plugin gives every pod a toleration of."""


def admit(
    resource: Resource,
    obj: dict,
    namespace: str,
    caches: Mapping[str, WatchCache],
    config: KubeAPIServerConfig,
    names: random.Random,
):
    """Run the admission plugins on an object being created in ``namespace``; a refusal raises :class:`APIError`.
    ``names`` draws generated names (the apiserver's seeded stream)."""
    if resource.namespaced:
        namespace_lifecycle(caches["namespaces"], namespace)
    if resource.name == "pods":
        spec = obj.setdefault("spec", {})
        account = service_account(caches["serviceaccounts"], namespace, spec)
        if should_automount(account, spec):
            mount_service_account_token(spec, names)
        admit_pod_priority(obj, caches["priorityclasses"], resource)
        default_toleration_seconds(spec, config)
    else:
        validate(resource, obj, caches)


def namespace_lifecycle(namespaces: WatchCache, namespace: str) -> None:
    """plugin/pkg/admission/namespace/lifecycle: no content in a namespace that does not exist or is terminating."""
    ns = namespaces.get(namespace)
    if ns is None:
        raise APIError(404, "NotFound", f'namespaces "{namespace}" not found')
    if ns[0].get("status", {}).get("phase") == "Terminating":
        raise APIError(
            403,
            "Forbidden",
            f"unable to create new content in namespace {namespace} because it is being terminated",
        )


def service_account(accounts: WatchCache, namespace: str, spec: dict) -> Mapping:
    """plugin/pkg/admission/serviceaccount: a pod runs as ``default`` unless it names an account, which must exist
    (v1.35 still refuses a pod whose account is missing: getServiceAccount's NotFound is Forbidden); returns it."""
    account = spec.get("serviceAccountName") or "default"
    spec["serviceAccountName"] = account
    found = accounts.get(f"{namespace}/{account}")
    if found is None:
        raise APIError(
            403,
            "Forbidden",
            f'error looking up service account {namespace}/{account}: serviceaccount "{account}" not found',
        )
    return found[0]


def should_automount(account: Mapping, spec: Mapping) -> bool:
    """shouldAutomount: the pod's ``automountServiceAccountToken`` wins, then the account's; default true."""
    if spec.get("automountServiceAccountToken") is not None:
        return bool(spec["automountServiceAccountToken"])
    if account.get("automountServiceAccountToken") is not None:
        return bool(account["automountServiceAccountToken"])
    return True


def mount_service_account_token(spec: dict, names: random.Random) -> None:
    """mountServiceAccountToken: a read-only mount of the ``kube-api-access-*`` volume (an existing one, or a new
    name) at :data:`DEFAULT_API_TOKEN_MOUNT_PATH` in every init container and container without a mount there; the
    volume is added if one of them needs it. Containers and lists are copied: the request's body stays as sent."""
    volumes = list(spec.get("volumes") or [])
    prefix = SERVICE_ACCOUNT_VOLUME_NAME + "-"
    existing = next((v["name"] for v in volumes if v.get("name", "").startswith(prefix)), None)
    name = existing or generate_name(prefix, names)
    mount = {"name": name, "readOnly": True, "mountPath": DEFAULT_API_TOKEN_MOUNT_PATH}
    needs = False
    for field in ("initContainers", "containers"):
        if not spec.get(field):
            continue
        containers = spec[field] = [dict(c) for c in spec[field]]
        for container in containers:
            mounts = container.get("volumeMounts") or []
            if not any(m.get("mountPath") == DEFAULT_API_TOKEN_MOUNT_PATH for m in mounts):
                container["volumeMounts"] = [*mounts, dict(mount)]
                needs = True
    if existing is None and needs:
        spec["volumes"] = [*volumes, {"name": name, "projected": token_volume_source()}]


@cache
def token_volume_source() -> dict:
    """TokenVolumeSource: the projected volume of a pod's API credentials (a token bound to the pod, expiring in
    3607 s; the cluster's CA from ``kube-root-ca.crt``; the pod's namespace), mode 0644. One object, shared by every
    pod (stored objects are never changed): 3.4 KB of Python objects a pod otherwise."""
    return {
        "defaultMode": PROJECTED_VOLUME_SOURCE_DEFAULT_MODE,
        "sources": [
            {"serviceAccountToken": {"expirationSeconds": WARN_ONLY_BOUND_TOKEN_EXPIRATION_SECONDS, "path": "token"}},
            {"configMap": {"name": ROOT_CA_CONFIGMAP, "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
            {
                "downwardAPI": {
                    "items": [
                        {"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}
                    ]
                }
            },
        ],
    }


def default_toleration_seconds(spec: dict, config: KubeAPIServerConfig) -> None:
    """plugin/pkg/admission/defaulttolerationseconds: a pod that does not tolerate the not-ready or unreachable
    NoExecute taint gets a toleration of it for ``--default-not-ready-toleration-seconds`` /
    ``--default-unreachable-toleration-seconds`` (300 s each)."""
    tolerations = spec["tolerations"] = list(spec.get("tolerations") or [])  # the request's list stays as sent
    seconds = {
        NOT_READY: config.default_not_ready_toleration_seconds,
        UNREACHABLE: config.default_unreachable_toleration_seconds,
    }
    for taint, toleration_seconds in seconds.items():
        if not any(_tolerates(t, taint) for t in tolerations):
            tolerations.append(_default_toleration(taint, toleration_seconds))


@lru_cache(maxsize=None, typed=True)  # typed: 300 and 300.0 are written differently
def _default_toleration(taint: str, seconds: int) -> dict:
    """The toleration DefaultTolerationSeconds adds: one object per taint and seconds, shared by every pod."""
    return {"key": taint, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": seconds}


def _tolerates(toleration: Mapping, taint: str) -> bool:
    """Whether a toleration already covers the NoExecute ``taint`` (its key with that effect or none, or a wildcard)."""
    return (toleration.get("key") == taint and toleration.get("effect") in ("NoExecute", None, "")) or (
        toleration.get("operator") == "Exists" and not toleration.get("key")
    )
