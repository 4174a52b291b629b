"""Admission on create: the plugins kbench's requests meet, in upstream's order (v1.35's default plugins that act on
them): NamespaceLifecycle, ServiceAccount, DefaultTolerationSeconds. LimitRanger and ResourceQuota are not modelled
(kbench's namespaces hold no LimitRanges or quotas)."""

from __future__ import annotations

from collections.abc import Mapping

from kbench.apiserver.config import KubeAPIServerConfig
from kbench.apiserver.objects import APIError, Resource
from kbench.apiserver.watchcache import WatchCache

NOT_READY, UNREACHABLE = "node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"
"""The taints the DefaultTolerationSeconds plugin gives every pod a toleration of."""


def admit(resource: Resource, obj: dict, namespace: str, caches: Mapping[str, WatchCache], config: KubeAPIServerConfig):
    """Run the admission plugins on an object being created in ``namespace``; a refusal raises :class:`APIError`."""
    if not resource.namespaced:
        return
    namespace_lifecycle(caches["namespaces"], namespace)
    if resource.name != "pods":
        return
    spec = obj.setdefault("spec", {})
    service_account(caches["serviceaccounts"], namespace, spec)
    default_toleration_seconds(spec, config)


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


def service_account(accounts: WatchCache, namespace: str, spec: dict) -> None:
    """plugin/pkg/admission/serviceaccount: a pod runs as ``default`` unless it names an account, which must
    exist."""
    account = spec.setdefault("serviceAccountName", "default")
    if accounts.get(f"{namespace}/{account}") is None:
        raise APIError(
            403,
            "Forbidden",
            f'error looking up service account {namespace}/{account}: serviceaccount "{account}" not found',
        )


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
            tolerations.append(
                {"key": taint, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": toleration_seconds}
            )


def _tolerates(toleration: Mapping, taint: str) -> bool:
    """Whether a toleration already covers the NoExecute ``taint`` (its key with that effect or none, or a wildcard)."""
    return (toleration.get("key") == taint and toleration.get("effect") in ("NoExecute", None, "")) or (
        toleration.get("operator") == "Exists" and not toleration.get("key")
    )
