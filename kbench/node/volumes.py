"""The kubelet's volumes (v1.35): ConfigMap, Secret, projected (service account token, ConfigMap, Secret, downward
API) and emptyDir, mounted before the pod's sandbox starts.

- **References** (pkg/kubelet/util/manager/watch_based_manager.go, the default
  ``configMapAndSecretChangeDetectionStrategy: Watch``): when the kubelet admits a pod (podManager.AddPod ->
  RegisterPod), each ConfigMap and Secret the pod references (volumes, projected sources, env, envFrom,
  imagePullSecrets) gets one reflector of its own, LIST then WATCH with ``fieldSelector=metadata.name=<name>`` through
  the kubelet's client (``kubeAPIQPS`` / ``kubeAPIBurst`` pace the LISTs), shared by every pod that references the
  object and stopped when the last of them goes (DeleteReference). A read (``objectCache.Get``) waits for the
  reflector's first list, polling every 10 ms for up to 1 s (then ``failed to sync configmap cache``); an object not
  in the cache is ``configmap "<name>" not found``; an ``immutable`` object's reflector is stopped after the read.
- **Tokens** (pkg/kubelet/token/token_manager.go): one TokenRequest per pod and projection (the cache key holds the
  pod it is bound to), cached, and requested again once within 20% of its TTL of expiry (less a jitter of 0-9 whole
  seconds) or 24 h old. Upstream checks this when it sets the volume up again at a pod resync; kbench requests it at
  that moment.
- **Mounts** (pkg/kubelet/volumemanager): the desired-state populator (every 100 ms) adds the pod's mounted volumes,
  the reconciler (every 100 ms) starts one mount operation per volume; a failed SetUp records ``FailedMount``
  (``MountVolume.SetUp failed for volume "<v>" : <error>``) and may not be retried for 0.5 s, doubling to 2m2s
  (pkg/util/goroutinemap/exponentialbackoff). The pod worker's WaitForAttachAndMount checks at once and then every
  300 ms (podAttachAndMountRetryInterval) for up to 2m3s; after a timeout the worker retries the sync 10-15 s later
  (pod_workers.go: backOffPeriod 10 s jittered by 0.5).

Writing a volume's files (AtomicWriter, mkdir for emptyDir) costs the profile's ``kubelet.volume_setup``. Volumes of
other plugins (hostPath, PVCs, ...) are set up at that local cost too: kbench models no storage.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from kbench.apiserver.objects import APIError
from kbench.client import Client, Informer
from kbench.profiles import UnitCosts
from kbench.sim import Engine, Event, Interrupt

POPULATOR_PERIOD = 0.1
"""volume_manager.go desiredStateOfWorldPopulatorLoopSleepPeriod."""
RECONCILER_PERIOD = 0.1
"""volume_manager.go reconcilerLoopSleepPeriod."""
MOUNT_POLL, MOUNT_TIMEOUT = 0.3, 123.0
"""volume_manager.go podAttachAndMountRetryInterval 300 ms, podAttachAndMountTimeout 2m3s."""
CACHE_SYNC_POLL, CACHE_SYNC_TIMEOUT = 0.01, 1.0
"""watch_based_manager.go objectCache.Get: wait.PollImmediate(10ms, 1s, item.hasSynced)."""
RETRY_INITIAL, RETRY_MAX = 0.5, 122.0
"""exponentialbackoff: initialDurationBeforeRetry 500 ms, maxDurationBeforeRetry 2m2s."""
SYNC_BACKOFF, SYNC_BACKOFF_JITTER = 10.0, 0.5
"""kubelet.go backOffPeriod 10 s; pod_workers.go workerBackOffPeriodJitterFactor 0.5 (a failed sync's retry)."""
TOKEN_MAX_TTL, TOKEN_MAX_JITTER, TOKEN_REFRESH_PERCENT = 86400.0, 10, 20
"""token_manager.go maxTTL 24 h, maxJitter 10 s; a token is refreshed within 20% of its TTL of expiry."""
DEFAULT_TOKEN_EXPIRATION = 3600
"""core/v1 SetDefaults_ServiceAccountTokenProjection: expirationSeconds 1 h."""
TOKEN_REQUEST = ("create", "token")
"""The request a TokenRequest is sent as: POST serviceaccounts/<name>/token (CreateToken; kube-apiserver's TokenREST,
pkg/registry/core/serviceaccount/storage/token.go), one rate-limited request per token, as upstream."""
SYNC_FREQUENCY = 60.0
"""KubeletConfiguration syncFrequency default 1m: a refresh that failed is tried again at the pod's next resync."""


@dataclass(frozen=True)
class VolumeCosts(UnitCosts):
    """The kubelet's volume unit costs: the profile's ``kubelet`` section."""

    section = "kubelet"
    volume_setup: float
    """Seconds to write one volume's files (or make an emptyDir)."""


class MountError(Exception):
    """A volume SetUp (or a read it makes) failed; the message is upstream's error text."""


@dataclass(frozen=True)
class Source:
    """One thing a volume is made of: an API object (configMap, secret), a token, or local data."""

    kind: str
    """``configMap``, ``secret``, ``serviceAccountToken`` or ``local``."""
    name: str = ""
    optional: bool = False
    expiration: int = DEFAULT_TOKEN_EXPIRATION
    audience: str = ""


@dataclass(frozen=True)
class Volume:
    """A pod volume the kubelet mounts: its name, plugin and sources (in the order SetUp reads them)."""

    name: str
    plugin: str
    sources: tuple[Source, ...]


def _object_source(kind: str, spec: Mapping, name_key: str) -> Source:
    return Source(kind, str(spec.get(name_key, "")), bool(spec.get("optional", False)))


def _projected_source(item: Mapping) -> Source:
    if "serviceAccountToken" in item:
        tok = item["serviceAccountToken"] or {}
        return Source(
            "serviceAccountToken",
            expiration=int(tok.get("expirationSeconds", DEFAULT_TOKEN_EXPIRATION)),
            audience=str(tok.get("audience", "")),
        )
    for kind in ("configMap", "secret"):
        if kind in item:
            return _object_source(kind, item[kind] or {}, "name")
    return Source("local")  # downwardAPI, clusterTrustBundle, podCertificate: no API read modelled


def volume_of(spec: Mapping) -> Volume:
    """The :class:`Volume` of one ``spec.volumes`` entry."""
    name = spec["name"]
    if "configMap" in spec:
        return Volume(name, "kubernetes.io/configmap", (_object_source("configMap", spec["configMap"] or {}, "name"),))
    if "secret" in spec:
        return Volume(name, "kubernetes.io/secret", (_object_source("secret", spec["secret"] or {}, "secretName"),))
    if "projected" in spec:
        items = (spec["projected"] or {}).get("sources") or []
        return Volume(name, "kubernetes.io/projected", tuple(_projected_source(s) for s in items))
    plugins = {"emptyDir": "kubernetes.io/empty-dir", "downwardAPI": "kubernetes.io/downward-api"}
    plugin = next((p for k, p in plugins.items() if k in spec), "local")  # other plugins: no storage modelled
    return Volume(name, plugin, (Source("local"),))


def _containers(spec: Mapping) -> list[Mapping]:
    return [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]


def mounted_volumes(pod: Mapping) -> list[Volume]:
    """The volumes WaitForAttachAndMount waits for: those a container mounts (getExpectedVolumes)."""
    spec = pod.get("spec", {})
    used = {m["name"] for c in _containers(spec) for m in c.get("volumeMounts") or []}
    return [volume_of(v) for v in spec.get("volumes") or [] if v["name"] in used]


def referenced(pod: Mapping, kind: str) -> set[str]:
    """Names of the ConfigMaps (``kind`` configMap) or Secrets (secret) a pod references: volumes, projected sources,
    env and envFrom, and (Secrets) imagePullSecrets (podutil.VisitPodConfigmapNames / VisitPodSecretNames)."""
    spec = pod.get("spec", {})
    names = {s.name for v in spec.get("volumes") or [] for s in volume_of(v).sources if s.kind == kind and s.name}
    ref, key = ("configMapKeyRef", "configMapRef") if kind == "configMap" else ("secretKeyRef", "secretRef")
    for c in _containers(spec):
        for env in c.get("env") or []:
            name = ((env.get("valueFrom") or {}).get(ref) or {}).get("name")
            names.update([name] if name else [])
        for env in c.get("envFrom") or []:
            name = (env.get(key) or {}).get("name")
            names.update([name] if name else [])
    if kind == "secret":
        names.update(s["name"] for s in spec.get("imagePullSecrets") or [] if s.get("name"))
    return names


def tick(t: float, period: float, phase: float) -> float:
    """The first tick at or after ``t`` of a loop running every ``period`` from ``phase``."""
    return phase + math.ceil(round((t - phase) / period, 9)) * period


# -- the watch-based object cache ------------------------------------------------------------------------------------
@dataclass
class _Item:
    """objectCacheItem: one object's reflector, its reference count, and whether it was stopped as immutable."""

    informer: Informer
    refs: int = 0
    immutable: bool = False


class ObjectCache:
    """watch_based_manager.go objectCache for one resource (``configmaps`` or ``secrets``): a reflector per referenced
    object, shared between the pods that reference it.

    Parameters
    ----------
    client : Client
        The kubelet's client (its LISTs are paced by kubeAPIQPS / kubeAPIBurst; watches are not).
    resource : str
        ``configmaps`` or ``secrets``.
    """

    def __init__(self, client: Client, resource: str) -> None:
        kinds = {"configmaps": "configmap", "secrets": "secret"}
        if resource not in kinds:
            raise ValueError(f"ObjectCache: resource must be one of {', '.join(kinds)}; got {resource!r}")
        self.client, self.engine, self.resource = client, client.engine, resource
        self.kind = kinds[resource]
        """The group resource upstream's errors name (corev1.Resource("configmap"))."""
        self.items: dict[str, _Item] = {}
        self.reflectors = 0
        """Reflectors started so far (one LIST + WATCH each)."""

    def add_reference(self, namespace: str, name: str) -> None:
        """AddReference: count a reference; the first one starts the object's reflector."""
        key = f"{namespace}/{name}"
        item = self.items.get(key)
        if item is None:
            informer = Informer(self.client, self.resource, namespace=namespace, field_selector=f"metadata.name={name}")
            item = self.items[key] = _Item(informer.start())
            self.reflectors += 1
        item.refs += 1

    def stop(self) -> None:
        """The kubelet is cut off: every reflector stops (its cache stays as it was)."""
        for item in self.items.values():
            item.informer.stop()

    def restart(self) -> None:
        """The kubelet is back: each object's reflector lists and watches again (an immutable one stays stopped)."""
        for key, item in self.items.items():
            if not item.immutable:
                namespace, name = key.split("/", 1)
                old = item.informer
                item.informer = Informer(
                    self.client, self.resource, namespace=namespace, field_selector=f"metadata.name={name}"
                )
                item.informer.cache = dict(old.cache)
                item.informer.start()
                self.reflectors += 1

    def delete_reference(self, namespace: str, name: str) -> None:
        """DeleteReference: the last reference gone stops the reflector and forgets the object."""
        key = f"{namespace}/{name}"
        item = self.items.get(key)
        if item is not None:
            item.refs -= 1
            if item.refs <= 0:
                item.informer.stop()
                del self.items[key]

    def get(self, namespace: str, name: str):
        """Process body, objectCache.Get: the object once its reflector has listed (polled every 10 ms for up to 1 s);
        raises :class:`MountError` when it is not registered, not synced in time, or not found."""
        key = f"{namespace}/{name}"
        item = self.items.get(key)
        if item is None:
            raise MountError(f'object "{namespace}"/"{name}" not registered')
        synced = item.informer.synced
        if not synced.triggered:
            start = self.engine.now
            yield self.engine.any_of([synced, self.engine.timeout(CACHE_SYNC_TIMEOUT)])
            if not synced.triggered:
                raise MountError(f"failed to sync {self.kind} cache: timed out waiting for the condition")
            waited = self.engine.now - start
            yield math.ceil(round(waited / CACHE_SYNC_POLL, 9)) * CACHE_SYNC_POLL - waited
        obj = item.informer.cache.get(key)
        if obj is None:
            raise MountError(f'{self.kind} "{name}" not found')
        if obj.get("immutable") and not item.immutable:  # an immutable object needs no watch
            item.immutable = True
            item.informer.stop()
        return obj


def token_request(pod: Mapping, source: Source) -> dict:
    """The TokenRequest the projected volume plugin sends for a pod (pkg/volume/projected: audiences, expiration,
    bound to the pod)."""
    meta = pod["metadata"]
    spec: dict = {
        "expirationSeconds": source.expiration,
        "boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": meta["name"], "uid": meta["uid"]},
    }
    if source.audience:
        spec["audiences"] = [source.audience]
    return {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec}


def token_key(namespace: str, account: str, source: Source, pod: Mapping) -> str:
    """token_manager.go keyFunc as its errors print it: ``%q/%q/%#v/%#v/%#v`` of the account, namespace, audiences,
    expirationSeconds and boundObjectRef."""
    meta = pod["metadata"]
    audiences = f'[]string{{"{source.audience}"}}' if source.audience else "[]string(nil)"
    ref = f'v1.BoundObjectReference{{Kind:"Pod", APIVersion:"v1", Name:"{meta["name"]}", UID:"{meta["uid"]}"}}'
    return f'"{account}"/"{namespace}"/{audiences}/{source.expiration}/{ref}'


# -- the token manager ---------------------------------------------------------------------------------------------
@dataclass
class Token:
    """A TokenRequest's answer as the token manager caches it, with when it needs refreshing."""

    issued: float
    expiration: int
    pod_uid: str
    refresh: float = math.inf
    """When requiresRefresh first holds (its 0-9 s jitter drawn once, at issue)."""

    @property
    def expires(self) -> float:
        """When the token expires."""
        return self.issued + self.expiration


class TokenManager:
    """pkg/kubelet/token Manager: service account tokens for the node's pods, cached per (account, audience, TTL,
    pod) and refreshed near expiry."""

    def __init__(self, client: Client, rng: random.Random) -> None:
        self.client, self.engine, self.rng = client, client.engine, rng
        self.reachable = True
        """False while the kubelet is cut off: a TokenRequest fails without reaching the apiserver."""
        self.cache: dict[str, dict[tuple, Token]] = {}
        """Each pod's tokens (by its uid), by (namespace, account, audience, TTL, pod uid)."""
        self.requests = 0
        """TokenRequests sent."""

    def refresh_at(self, token: Token) -> float:
        """When requiresRefresh first holds: within 20% of the TTL of expiry, or 24 h old, less a jitter of 0-9 whole
        seconds (``time.Duration(rand.Float64()*maxJitter.Seconds()) * time.Second``)."""
        jitter = int(self.rng.random() * TOKEN_MAX_JITTER)
        refresh = token.expires - token.expiration * TOKEN_REFRESH_PERCENT // 100 - jitter
        return min(refresh, token.issued + TOKEN_MAX_TTL - jitter)

    def get(self, namespace: str, account: str, source: Source, pod: Mapping):
        """Process body, GetServiceAccountToken: the cached token, or a new one from the apiserver (a failure with no
        valid cached token raises :class:`MountError`)."""
        pod_uid = pod["metadata"]["uid"]
        key = (namespace, account, source.audience, source.expiration, pod_uid)
        cached = self.cache.get(pod_uid, {}).get(key)
        if cached is not None and self.engine.now < cached.refresh:
            return cached
        verb, subresource = TOKEN_REQUEST
        body = token_request(pod, source)
        try:
            if not self.reachable:
                raise APIError(503, "ServiceUnavailable", "the apiserver cannot be reached")
            self.requests += 1
            yield self.client.call(
                verb, "serviceaccounts", namespace=namespace, name=account, subresource=subresource, body=body
            )
        except APIError as err:
            if cached is None:
                raise MountError(f"failed to fetch token: {err.message}") from None
            if self.engine.now > cached.expires:
                raise MountError(
                    f"token {token_key(namespace, account, source, pod)} expired and refresh failed: {err.message}"
                ) from None
            return cached  # a failed refresh keeps the old token while it is valid ("Couldn't update token")
        token = self.cache.setdefault(pod_uid, {})[key] = Token(self.engine.now, source.expiration, pod_uid)
        token.refresh = self.refresh_at(token)
        return token

    def delete(self, pod_uid: str) -> None:
        """DeleteServiceAccountToken: forget the tokens bound to a pod."""
        self.cache.pop(pod_uid, None)

    def of_pod(self, pod_uid: str) -> list[Token]:
        """The tokens cached for a pod, in the order first cached (kept per pod: a node's whole cache was scanned
        for them, with a dataclass comparison a token: 1.3% of the 150,000-pod density run)."""
        return list(self.cache.get(pod_uid, {}).values())


# -- the volume manager --------------------------------------------------------------------------------------------
@dataclass
class PodVolumes:
    """One pod's volumes on the node: what is mounted, and when all of them are."""

    pod: Mapping
    volumes: list[Volume]
    mounted: set[str] = field(default_factory=set)
    done: Event | None = None
    processes: list = field(default_factory=list)
    failures: int = 0
    """FailedMount events recorded for the pod."""

    @property
    def key(self) -> str:
        """``namespace/name`` of the pod."""
        meta = self.pod["metadata"]
        return f"{meta.get('namespace', '')}/{meta['name']}"


class VolumeManager:
    """The kubelet's volume manager with its ConfigMap and Secret managers and token manager.

    Parameters
    ----------
    client : Client
        The kubelet's rate-limited client.
    costs : VolumeCosts
    rng : random.Random
        The node's stream (token refresh jitter, pod worker backoff jitter).
    phase : float
        Where in its 100 ms period this node's populator and reconciler loops run (nodes are out of step).
    on_event : callable, optional
        ``on_event(pod, type, reason, message)`` for the kubelet's Events (FailedMount).
    """

    def __init__(
        self,
        client: Client,
        costs: VolumeCosts,
        rng: random.Random,
        phase: float = 0.0,
        on_event: Callable[[Mapping, str, str, str], None] | None = None,
    ) -> None:
        self.engine: Engine = client.engine
        self.costs, self.rng, self.phase = costs, rng, phase
        self.configmaps = ObjectCache(client, "configmaps")
        self.secrets = ObjectCache(client, "secrets")
        self.tokens = TokenManager(client, rng)
        self.on_event = on_event
        self.pods: dict[str, PodVolumes] = {}

    def stop(self) -> None:
        """The kubelet is cut off (or dead): the reflectors stop and no TokenRequest gets through."""
        self.configmaps.stop()
        self.secrets.stop()
        self.tokens.reachable = False

    def restart(self) -> None:
        """The kubelet is back: the reflectors list and watch again and TokenRequests get through."""
        self.configmaps.restart()
        self.secrets.restart()
        self.tokens.reachable = True

    # -- pods -------------------------------------------------------------------------------------------------
    def register_pod(self, pod: Mapping) -> None:
        """The pod manager took the pod: reference its ConfigMaps and Secrets (RegisterPod) and let the populator add
        its mounted volumes, whose mounts then start."""
        uid, ns = pod["metadata"]["uid"], pod["metadata"].get("namespace", "")
        if uid in self.pods:
            return
        for name in referenced(pod, "configMap"):
            self.configmaps.add_reference(ns, name)
        for name in referenced(pod, "secret"):
            self.secrets.add_reference(ns, name)
        pv = self.pods[uid] = PodVolumes(pod, mounted_volumes(pod), done=self.engine.event())
        if not pv.volumes:
            pv.done.succeed()  # type: ignore[union-attr]
            return
        for vol in pv.volumes:
            pv.processes.append(self.engine.process(self._mount(pv, vol), name=f"mount/{pv.key}/{vol.name}"))

    def unregister_pod(self, pod: Mapping) -> None:
        """The pod is gone from the node: its references, tokens and pending mounts go."""
        uid, ns = pod["metadata"]["uid"], pod["metadata"].get("namespace", "")
        pv = self.pods.pop(uid, None)
        if pv is None:
            return
        for proc in pv.processes:
            if proc.is_alive:
                proc.interrupt()
        for name in referenced(pv.pod, "configMap"):
            self.configmaps.delete_reference(ns, name)
        for name in referenced(pv.pod, "secret"):
            self.secrets.delete_reference(ns, name)
        self.tokens.delete(uid)

    # -- the reconciler's mount operations ------------------------------------------------------------------------
    def _mount(self, pv: PodVolumes, vol: Volume):
        """One volume's mount operation: first at the reconciler's tick after the populator added the pod, retried
        after a failure with the operation's exponential backoff."""
        try:
            added = tick(self.engine.now, POPULATOR_PERIOD, self.phase)
            yield tick(added, RECONCILER_PERIOD, self.phase / 2) - self.engine.now
            backoff = 0.0
            while True:
                try:
                    yield from self._set_up(pv, vol)
                    break
                except MountError as err:
                    pv.failures += 1
                    self._event(
                        pv.pod, "Warning", "FailedMount", f'MountVolume.SetUp failed for volume "{vol.name}" : {err}'
                    )
                    backoff = RETRY_INITIAL if backoff == 0 else min(2 * backoff, RETRY_MAX)
                    retry = tick(self.engine.now + backoff, RECONCILER_PERIOD, self.phase / 2)
                    yield retry - self.engine.now
            pv.mounted.add(vol.name)
            if len(pv.mounted) == len(pv.volumes) and pv.done is not None and not pv.done.triggered:
                pv.done.succeed()
            yield from self._refresh_tokens(pv, vol)
        except Interrupt:
            return

    def _refresh_tokens(self, pv: PodVolumes, vol: Volume):
        """A volume with a token is set up again when the token needs refreshing (upstream: at the pod's first resync
        after that point), which requests a new one; a failure keeps the old token while it is valid."""
        uid = pv.pod["metadata"]["uid"]
        while True:
            tokens = self.tokens.of_pod(uid)
            if not any(s.kind == "serviceAccountToken" for s in vol.sources) or not tokens:
                return
            yield max(0.0, min(t.refresh for t in tokens) - self.engine.now)
            try:
                yield from self._set_up(pv, vol)
            except MountError as err:
                self._event(
                    pv.pod, "Warning", "FailedMount", f'MountVolume.SetUp failed for volume "{vol.name}" : {err}'
                )
            current = self.tokens.of_pod(uid)
            if all(t in current for t in tokens):  # not refreshed: try at the next resync
                yield SYNC_FREQUENCY

    def _set_up(self, pv: PodVolumes, vol: Volume):
        """SetUp: read each source (a projected volume reads them all, one after another, and fails with every error
        met), then write the files."""
        meta, spec = pv.pod["metadata"], pv.pod.get("spec", {})
        ns = meta.get("namespace", "")
        errors = []
        for source in vol.sources:
            try:
                if source.kind == "serviceAccountToken":
                    account = spec.get("serviceAccountName") or "default"
                    yield from self.tokens.get(ns, account, source, pv.pod)
                elif source.kind in ("configMap", "secret"):
                    cache = self.configmaps if source.kind == "configMap" else self.secrets
                    try:
                        yield from cache.get(ns, source.name)
                    except MountError as err:
                        if not (source.optional and str(err).endswith("not found")):
                            raise
            except MountError as err:
                errors.append(str(err))
        if errors:
            raise MountError(errors[0] if len(errors) == 1 else "[" + ", ".join(errors) + "]")
        yield self.costs.volume_setup

    def _event(self, pod: Mapping, kind: str, reason: str, message: str) -> None:
        if self.on_event is not None:
            self.on_event(pod, kind, reason, message)

    # -- the pod worker's wait ------------------------------------------------------------------------------------
    def wait_for_attach_and_mount(self, pod: Mapping):
        """Process body, WaitForAttachAndMount: returns at the first 300 ms poll (from now) that finds every mounted
        volume set up; returns False after 2m3s without (the sync fails; the worker retries later)."""
        pv = self.pods.get(pod["metadata"]["uid"])
        if pv is None or pv.done is None or pv.done.triggered:
            return True
        start = self.engine.now
        yield self.engine.any_of([pv.done, self.engine.timeout(MOUNT_TIMEOUT)])
        if not pv.done.triggered:
            return False
        waited = self.engine.now - start
        yield math.ceil(round(waited / MOUNT_POLL, 9)) * MOUNT_POLL - waited
        return True

    def sync_backoff(self) -> float:
        """Seconds until the pod worker retries a failed sync: wait.Jitter(backOffPeriod, 0.5)."""
        return SYNC_BACKOFF * (1 + self.rng.random() * SYNC_BACKOFF_JITTER)
