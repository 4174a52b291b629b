"""The registry's write strategies (k8s.io/apiserver/pkg/registry/generic/registry and pkg/registry/core/...): what a
create, update, patch, delete or binding stores, decided against the object as the watch cache holds it, and the
precondition etcd checks when the write applies (:func:`compare_and_write`).

Deletion follows upstream: objects with finalizers get ``deletionTimestamp`` and stay until the last finalizer is
removed; a Pod bound to a node is deleted gracefully (``deletionTimestamp`` plus its grace period) and removed by a
second delete with grace period 0 (the kubelet's), or by a forced delete.

Events are stored with a TTL (pkg/registry/core/event/storage: ``TTLFunc`` returns kube-apiserver's ``--event-ttl``,
default 1h, on create and on update): every write of an Event attaches its key to an etcd lease from the
:class:`LeaseManager` (k8s.io/apiserver/pkg/storage/etcd3/lease_manager.go), so etcd deletes it when the lease
expires, and the watch cache sees the deletes.
"""

from __future__ import annotations

import base64
import itertools
import random
from collections.abc import Callable, Mapping
from typing import Protocol

import orjson

from kbench.api.network import allocates_node_ports
from kbench.apiserver.admission import admit
from kbench.apiserver.config import KubeAPIServerConfig
from kbench.apiserver.objects import (
    APIError,
    Resource,
    already_exists,
    conflict,
    copy_object,
    generate_name,
    invalid,
    not_found,
    object_key,
    timestamp,
)
from kbench.apiserver.priority import PARSERS, admit_update, refuse_system_class_delete
from kbench.apiserver.watchcache import WatchCache

TOKEN_DEFAULT_EXPIRATION, TOKEN_MIN_EXPIRATION, TOKEN_MAX_EXPIRATION = 3600, 600, 1 << 32
"""authentication/v1 SetDefaults_TokenRequestSpec: expirationSeconds 1 h; pkg/apis/authentication/validation
ValidateTokenRequest: at least 10 min, at most 2^32 s."""
TOKEN_ISSUER = "https://kubernetes.default.svc.cluster.local"
"""The --service-account-issuer kubeadm sets (cmd/kubeadm/app/phases/controlplane/manifests.go), also the default
--api-audiences."""
Plan = tuple[str, dict, tuple]
"""(event kind ADDED / MODIFIED / DELETED, the object to store, the precondition: ("absent",), ("exists",) or
("rev", resourceVersion); an Event's write carries a third item, its :class:`LeaseAttach`)."""
LEASE_REUSE_DURATION_SECONDS, LEASE_REUSE_DURATION_PERCENT = 60, 0.05
"""etcd3/lease_manager.go: a lease is reused for min(60 s, 5 % of the TTL) (defaultLeaseReuseDurationSeconds,
newDefaultLeaseManager's 0.05) ..."""
LEASE_MAX_OBJECT_COUNT = 1000
"""... and for at most 1000 objects (defaultLeaseMaxObjectCount)."""


class WriteRequest(Protocol):
    """What the registry reads of a write request."""

    resource: Resource
    verb: str
    namespace: str
    name: str
    body: Mapping | None
    subresource: str
    options: dict

    @property
    def cache(self) -> WatchCache:
        """The watch cache of the request's resource."""
        ...

    @property
    def key(self) -> str:
        """``namespace/name`` (``name`` for a cluster-scoped resource)."""
        ...


class Registry:
    """The write strategies of every resource, with what they allocate: uids, generated names (from the seeded
    ``names`` stream), ClusterIPs and NodePorts (``--service-node-port-range``); admission as ``config`` sets it."""

    def __init__(
        self,
        config: KubeAPIServerConfig,
        caches: Mapping[str, WatchCache],
        now: Callable[[], float],
        names: random.Random,
    ) -> None:
        self.config, self.caches, self.now, self.names = config, caches, now, names
        self._uid = itertools.count(1)
        self._service_ips, self._node_ports = itertools.count(10), itertools.count()
        self._node_port_range = config.node_port_range  # parsed once, not per allocated port
        self.event_ttl = config.event_ttl  # --event-ttl (seconds)
        self.leases = LeaseManager(caches["events"]) if "events" in caches else None
        self._token: tuple = (None, {})
        """The TokenRequest a token create's plan issued, for its answer (:meth:`unwritten`)."""

    def new_uid(self) -> str:
        """The next object's metadata.uid."""
        return f"uid-{next(self._uid)}"

    def plan(self, op: WriteRequest) -> Plan | None:
        """(event kind, object to store, precondition) of a write, after admission; None if there is nothing to do.
        An Event's create or update also asks for its lease (TTLFunc: ``--event-ttl``)."""
        plan = self._plan(op)
        if plan is None or plan[0] == "DELETED" or op.resource.name != "events" or self.leases is None:
            return plan
        ttl = int(self.event_ttl)  # uint64(EventTTL.Seconds()); 0 stores without a lease (etcd3 store ttlOpts)
        if ttl <= 0:
            return plan
        kind, obj, expect = plan
        rev = expect[1] if len(expect) > 1 else 0
        # the stored object's key: a create by generateName has its name only now
        return kind, obj, (expect[0], rev, LeaseAttach(self.leases, self.event_ttl, object_key(obj)))

    def _plan(self, op: WriteRequest) -> Plan | None:
        current = op.cache.objects.get(op.key) if op.name else None
        if op.subresource == "binding":
            if current is None:
                raise not_found(op.resource, op.name)
            return self._plan_binding(op, current[0], current[1])
        if op.subresource == "token":  # TokenREST.Create: answered, never stored (:meth:`unwritten`)
            self._token = (op, token_request(op, current, self.caches["pods"], self.now()))
            return None
        if op.verb == "create":
            return self._plan_create(op)
        if current is None:
            raise not_found(op.resource, op.name)
        stored, rv, _ = current
        if op.verb == "delete":
            return self._plan_delete(op, stored, rv)
        return self._plan_update(op, stored, rv)

    def unwritten(self, op: WriteRequest) -> tuple | None:
        """What a write with nothing to store answers, as the watch cache holds an object (object, resourceVersion,
        encoded size): the object as it is, or the TokenRequest its plan issued."""
        if op.subresource == "token" and self._token[0] is op:
            answer = self._token[1]
            self._token = (None, {})
            return answer, 0, len(orjson.dumps(answer))
        return op.cache.get(op.key)

    def _plan_create(self, op: WriteRequest) -> Plan:
        """A create (BeforeCreate): the name generated if asked, admission, allocations, uid and timestamp."""
        res = op.resource
        obj = own(op.body or {})
        if isinstance(obj.get("spec"), Mapping):  # admission and allocators set fields of the stored copy only
            obj["spec"] = dict(obj["spec"])
        meta = obj["metadata"]
        if res.namespaced:
            meta["namespace"] = op.namespace
        if not meta.get("name"):
            if not meta.get("generateName"):
                raise invalid(res, "", "metadata.name", "Required value: name or generateName is required")
            meta["name"] = generate_name(meta["generateName"], self.names)
        admit(res, obj, op.namespace, self.caches, self.config, self.names)
        if res.name == "services":
            self._allocate_service(obj)
        meta["uid"] = self.new_uid()
        meta["creationTimestamp"] = timestamp(self.now())
        meta.pop("resourceVersion", None)
        obj.setdefault("apiVersion", res.api_version)
        obj.setdefault("kind", res.kind)
        if res.name == "namespaces":
            obj.setdefault("spec", {})["finalizers"] = ["kubernetes"]
            obj["status"] = {"phase": "Active"}
        return "ADDED", obj, ("absent",)

    def _plan_update(self, op: WriteRequest, stored: Mapping, rv: int) -> Plan:
        """An update or patch (of the main resource, or its status or finalize subresource): a stale
        resourceVersion is 409 Conflict; removing the last finalizer of an object being deleted deletes it."""
        res, verb, body = op.resource, op.verb, op.body or {}
        if verb == "patch":
            obj = merge_patch(stored, body)
            if obj["metadata"] is stored["metadata"]:  # its fields are set below
                obj["metadata"] = dict(stored["metadata"])
        else:
            obj = own(body)
        meta = obj["metadata"]
        want = meta.get("resourceVersion") if verb == "update" else None
        if want and int(want) != rv:
            raise conflict(res, op.name)
        kept = stored["metadata"]
        for k in ("uid", "creationTimestamp", "name", "namespace", "deletionTimestamp"):
            if k in kept:
                meta[k] = kept[k]
        if res.status:
            if op.subresource == "status":
                obj = {**stored, "metadata": meta, "status": obj.get("status", {})}
            else:
                obj["status"] = stored.get("status", {})
        checked = res.name in PARSERS and op.subresource in (None, "", "status")
        if checked or (res.name == "pods" and not op.subresource):
            admit_update(res, obj, stored, self.caches)  # the object as it would be stored: spec and status checked
        if op.subresource == "finalize" and res.name == "namespaces":
            obj = {
                **stored,
                "metadata": meta,
                "spec": {**stored.get("spec", {}), "finalizers": obj.get("spec", {}).get("finalizers", [])},
            }
        if (
            stored["metadata"].get("deletionTimestamp")
            and finalizers(res, stored)
            and not finalizers(res, obj)
            and not stored["metadata"].get("deletionGracePeriodSeconds")
        ):
            return "DELETED", dict(stored), ("rev", rv)  # the last finalizer is gone
        return "MODIFIED", obj, ("rev", rv) if want or verb == "patch" else ("exists",)

    def _plan_binding(self, op: WriteRequest, stored: Mapping, rv: int) -> Plan:
        """POST pods/<name>/binding (pkg/registry/core/pod/storage.BindingREST): set ``spec.nodeName`` once and
        the PodScheduled condition; a pod already bound or terminating is 409 Conflict."""
        if op.resource.name != "pods":
            raise invalid(op.resource, op.name, "subresource", "binding exists only for pods")
        target = (op.body or {}).get("target", {}).get("name")
        if not target:
            raise invalid(op.resource, op.name, "target.name", "Required value")
        if stored["spec"].get("nodeName") or stored["metadata"].get("deletionTimestamp"):
            raise APIError(
                409,
                "Conflict",
                f'Operation cannot be fulfilled on pods/binding "{op.name}": pod '
                f'{op.name} is already assigned to node "{stored["spec"].get("nodeName")}"',
            )
        # a new object sharing what it does not change with the stored one (stored objects are never changed)
        obj = {**stored, "metadata": dict(stored["metadata"]), "spec": {**stored["spec"], "nodeName": target}}
        obj["status"] = status = dict(obj.get("status", {}))
        conditions = [c for c in status.get("conditions", []) if c["type"] != "PodScheduled"]
        status["conditions"] = [
            *conditions,
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": timestamp(self.now())},
        ]
        return "MODIFIED", obj, ("rev", rv)

    def _allocate_service(self, obj: dict) -> None:
        """The Service registry's allocators (pkg/registry/core/service/ipallocator, portallocator): a ClusterIP
        from the service range and NodePorts from ``--service-node-port-range`` where the Service needs them."""
        spec = obj.setdefault("spec", {})
        if spec.get("type", "ClusterIP") == "ExternalName":
            return
        if not spec.get("clusterIP"):
            n = next(self._service_ips)
            spec["clusterIP"] = f"10.96.{n // 254 % 256}.{n % 254 + 1}"
            spec["clusterIPs"] = [spec["clusterIP"]]
        if allocates_node_ports(spec) and spec.get("ports"):
            spec["ports"] = [dict(port) for port in spec["ports"]]
            low, high = self._node_port_range
            for port in spec["ports"]:
                if not port.get("nodePort"):
                    port["nodePort"] = low + next(self._node_ports) % (high - low + 1)

    def _plan_delete(self, op: WriteRequest, stored: Mapping, rv: int) -> Plan | None:
        """Graceful deletion (bound Pods), finalizers (deletionTimestamp first), else removal."""
        meta, res = stored["metadata"], op.resource
        refuse_system_class_delete(res, op.name)
        grace = op.options.get("gracePeriodSeconds")
        if res.name == "pods" and stored.get("spec", {}).get("nodeName"):
            if grace is None:
                grace = stored["spec"].get("terminationGracePeriodSeconds", 30)
        else:
            grace = 0
        if not finalizers(res, stored) and grace == 0:
            return "DELETED", dict(stored), ("rev", rv)
        if meta.get("deletionTimestamp") and grace >= (meta.get("deletionGracePeriodSeconds") or 0):
            return None  # already terminating at least as soon
        obj = copy_object(stored)
        obj["metadata"]["deletionTimestamp"] = timestamp(self.now() + grace)
        obj["metadata"]["deletionGracePeriodSeconds"] = grace
        if res.name == "namespaces":
            obj["status"]["phase"] = "Terminating"
        return "MODIFIED", obj, ("rev", rv)


def token_request(op: WriteRequest, account: tuple | None, pods: WatchCache, now: float) -> dict:
    """POST serviceaccounts/<name>/token (pkg/registry/core/serviceaccount/storage/token.go TokenREST.Create): the
    account must exist (404), as must a bound Pod (404) running as it (400) with the reference's uid (409);
    ``expirationSeconds`` is an integer (400), defaults to 1 h and lies between 10 min and 2^32 s (422). Nothing is
    written to etcd. The answer's ``status.expirationTimestamp`` is now + expirationSeconds; its token has the claims
    of pkg/serviceaccount/claims.go and the length of an RS256 JWT (the signature is not computed)."""
    if op.resource.name != "serviceaccounts" or op.verb != "create":
        raise invalid(op.resource, op.name, "subresource", "token is served for POST serviceaccounts/<name>/token")
    if account is None:
        raise not_found(op.resource, op.name)
    body = copy_object(op.body or {})
    spec = body.setdefault("spec", {})
    seconds = spec.setdefault("expirationSeconds", TOKEN_DEFAULT_EXPIRATION)
    if isinstance(seconds, bool) or not isinstance(seconds, int):  # the body does not decode into an int64
        raise APIError(400, "BadRequest", f"spec.expirationSeconds: must be an integer; got {seconds!r}")
    if not TOKEN_MIN_EXPIRATION <= seconds <= TOKEN_MAX_EXPIRATION:
        bound = "less than 10 minutes" if seconds < TOKEN_MIN_EXPIRATION else "larger than 2^32 seconds"
        raise APIError(
            422,
            "Invalid",
            f'TokenRequest.authentication.k8s.io "{op.name}" is invalid: spec.expirationSeconds: '
            f"Invalid value: {seconds}: may not specify a duration {bound}",
        )
    spec.setdefault("audiences", [TOKEN_ISSUER])  # the apiserver's --api-audiences, by default its issuer
    pod = None
    ref = spec.get("boundObjectRef")
    if ref and ref.get("kind") == "Pod":
        found = pods.get(f"{op.namespace}/{ref['name']}")
        if found is None:
            raise APIError(404, "NotFound", f'pods "{ref["name"]}" not found')
        pod = found[0]
        if pod["spec"].get("serviceAccountName") != op.name:
            raise APIError(
                400,
                "BadRequest",
                f'cannot bind token for serviceaccount "{op.name}" to pod running with '
                f'serviceaccount "{pod["spec"].get("serviceAccountName")}"',
            )
        if ref.get("uid") and ref["uid"] != pod["metadata"]["uid"]:
            raise APIError(
                409,
                "Conflict",
                f'Operation cannot be fulfilled on Pod "{ref["name"]}": the UID in the bound object '
                f"reference ({ref['uid']}) does not match the UID in record ({pod['metadata']['uid']})",
            )
    body.update(apiVersion="authentication.k8s.io/v1", kind="TokenRequest")
    body["metadata"] = {"name": op.name, "namespace": op.namespace, "creationTimestamp": None}
    body["status"] = {
        "token": _token(op, account[0], pod, spec["audiences"], int(now), seconds),
        "expirationTimestamp": timestamp(now + seconds),
    }
    return body


def _token(op: WriteRequest, account: Mapping, pod: Mapping | None, audiences: list, now: int, seconds: int) -> str:
    """A bound service account token as claims.go fills it, in JWT form: header and claims base64url-encoded, and a
    signature of an RS256 signature's length (256 bytes)."""
    claims: dict = {
        "aud": audiences,
        "exp": now + seconds,
        "iat": now,
        "iss": TOKEN_ISSUER,
        "kubernetes.io": {
            "namespace": op.namespace,
            "serviceaccount": {"name": op.name, "uid": account["metadata"].get("uid", "")},
        },
        "nbf": now,
        "sub": f"system:serviceaccount:{op.namespace}:{op.name}",
    }
    if pod is not None:
        claims["kubernetes.io"]["pod"] = {"name": pod["metadata"]["name"], "uid": pod["metadata"]["uid"]}
        node = pod["spec"].get("nodeName")
        if node:
            claims["kubernetes.io"]["node"] = {"name": node}
    parts = [orjson.dumps({"alg": "RS256", "kid": "kbench"}), orjson.dumps(claims), bytes(256)]
    return ".".join(base64.urlsafe_b64encode(p).rstrip(b"=").decode() for p in parts)


def failed_precondition(expect: tuple, mod: int) -> str | None:
    """The precondition ``expect`` fails ("exists", "missing" or "conflict") on a key at mod revision ``mod`` (0:
    absent), or holds (None)."""
    if expect[0] == "absent":
        return "exists" if mod else None
    if not mod:
        return "missing"
    return "conflict" if expect[0] == "rev" and mod != expect[1] else None


def compare_and_write(store, key: bytes, kind: str, value: bytes, expect: tuple):
    """The etcd txn of a write, evaluated when it applies: (error or None, new revision)."""
    failed = failed_precondition(expect, store.mod_revision(key))
    if failed is not None:
        return failed, 0
    if kind == "DELETED":
        return None, store.delete_range(key).revision
    lease = expect[2].lease(store, key) if len(expect) > 2 else 0
    return None, store.put(key, value, lease=lease).revision


def compare_and_write_many(store, writes: list[tuple[bytes, str, bytes, tuple]]) -> list[tuple] | None:
    """:func:`compare_and_write` of each write (key, kind, value, precondition), in order, in one call of the store
    (:meth:`~kbench.etcd.store.Store.compare_and_put_many`): the same answers. None, with nothing written, when a
    write is a delete or carries a lease, or the store would meet more than the compares: the caller then writes
    them one at a time."""
    keys, values, wants = [], [], []
    for key, kind, value, expect in writes:
        if kind == "DELETED" or len(expect) > 2 or (expect[0] == "rev" and not expect[1] > 0):
            return None  # (a revision wanted is > 0: the store reads 0 and -1 as absent and present)
        keys.append(key)
        values.append(value)
        wants.append(0 if expect[0] == "absent" else -1 if expect[0] == "exists" else expect[1])
    done = store.compare_and_put_many(keys, values, wants)
    if done is None:
        return None
    return [
        (None, rev) if rev else (failed_precondition(write[3], mod), 0)
        for write, rev, mod in zip(writes, *done, strict=True)
    ]


class LeaseManager:
    """etcd3's leaseManager for one resource: a write with a TTL reuses the last lease it granted while that lease
    expires within ``ttl`` to ``ttl`` + the reuse duration from now and has fewer than 1000 objects, else grants a
    new one of ``ttl`` + the reuse duration (GetLease). When a lease expires, etcd deletes its keys (the lessor
    revokes it); the deletes reach ``cache`` (the resource's watch cache, or its view of etcd) at that moment.

    The grant is applied with the write that needs it (upstream it is an etcd request of its own, once per reused
    lease, so once a minute or per 1000 Events: not charged)."""

    def __init__(self, cache: WatchCache) -> None:
        self.cache = cache
        self.lease_id, self.expires, self.attached = 0, float("-inf"), 0
        self.keys: dict[int, list[tuple[str, bytes]]] = {}
        """lease id -> (cache key, etcd key) of the writes attached to it."""

    def get_lease(self, store, ttl: int) -> int:
        """GetLease: the lease id for a write with ``ttl`` seconds to live, granted in ``store`` if needed."""
        now = self.cache.now()
        reuse = min(LEASE_REUSE_DURATION_SECONDS, int(LEASE_REUSE_DURATION_PERCENT * ttl))
        valid = now + ttl < self.expires
        sufficient = now + ttl + reuse > self.expires
        self.attached += 1
        if valid and sufficient and self.attached <= LEASE_MAX_OBJECT_COUNT and self.lease_id in self.keys:
            return self.lease_id
        granted = store.lease_grant(ttl + reuse)
        self.lease_id, self.expires, self.attached = granted.id, now + granted.ttl, 1
        self.keys[granted.id] = []
        self.cache.schedule(granted.ttl, self._expired, (store, granted.id))  # after the lessor's own timer
        return granted.id

    def _expired(self, arg) -> None:
        """The lease's TTL ran out and etcd revoked it: each of its keys that etcd no longer holds is deleted from
        the cache (a key written again since belongs to a later lease, and is still there)."""
        store, lease_id = arg
        for cache_key, key in self.keys.pop(lease_id, ()):
            current = self.cache.get(cache_key)
            if current is None or store.range(key).kvs:
                continue
            gone = own(current[0])
            rev = store.revision
            gone["metadata"]["resourceVersion"] = str(rev)
            self.cache.apply("DELETED", cache_key, gone, rev, 0)


class LeaseAttach:
    """A write's request for a lease (the registry's TTLFunc result): ``lease(store, key)`` runs when the write
    applies in etcd and returns the lease to attach ``key`` to."""

    __slots__ = ("manager", "ttl", "cache_key")

    def __init__(self, manager: LeaseManager, ttl: float, cache_key: str) -> None:
        self.manager, self.ttl, self.cache_key = manager, int(ttl), cache_key

    def lease(self, store, key: bytes) -> int:
        """The lease id (recording the key under it)."""
        lease_id = self.manager.get_lease(store, self.ttl)
        self.manager.keys[lease_id].append((self.cache_key, key))
        return lease_id


def precondition_error(error: str, res: Resource, name: str) -> APIError:
    """The APIError of a write whose etcd precondition failed (:func:`compare_and_write`'s error)."""
    if error == "exists":
        return already_exists(res, name)
    if error == "missing":
        return not_found(res, name)
    return conflict(res, name)


def finalizers(res: Resource, obj: Mapping) -> list:
    """metadata.finalizers, and a Namespace's spec.finalizers (removed through its finalize subresource)."""
    out = list(obj["metadata"].get("finalizers") or [])
    if res.name == "namespaces":
        out += obj.get("spec", {}).get("finalizers") or []
    return out


def own(body: Mapping) -> dict:
    """The apiserver's object for a request body: the body's top level and metadata copied, the rest shared
    (a caller does not change a body after sending it; stored objects are never changed)."""
    obj = dict(body)
    obj["metadata"] = dict(body.get("metadata") or {})
    return obj


def merge_patch(stored: Mapping, patch: Mapping) -> dict:
    """JSON merge patch (RFC 7386) of ``stored`` into a new object: mappings merge, null removes, anything else
    replaces. Only the mappings the patch changes are copied; the rest is shared with ``stored`` (never changed)."""
    target = dict(stored)
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(target.get(key), dict):
            target[key] = merge_patch(target[key], value)
        else:
            target[key] = copy_object(value) if isinstance(value, (dict, list)) else value
    return target
