"""A client of a real etcd's JSON gateway with :class:`~kbench.etcd.store.Store`'s API.

Standard library only. Keys and values travel base64-encoded, int64 fields come
back as strings and zero fields are omitted, as grpc-gateway renders etcd's
protobuf. Errors come back as kbench's :class:`~kbench.etcd.errors.EtcdError`
subclasses, so a test can run the same calls on a real etcd and on kbench and
compare responses and errors field by field. A watch is read by a thread and
looks like kbench's :class:`~kbench.etcd.watch.Watcher`.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from typing import Any

from kbench.etcd.errors import ERRORS, EtcdError
from kbench.etcd.types import (
    RANGE_INT_FIELDS,
    CompactionResponse,
    Compare,
    DeleteRangeRequest,
    DeleteRangeResponse,
    Event,
    KeyValue,
    LeaseGrantResponse,
    LeaseKeepAliveResponse,
    LeaseRevokeResponse,
    LeaseTimeToLiveResponse,
    PutRequest,
    PutResponse,
    RangeRequest,
    RangeResponse,
    ResponseOp,
    TxnRequest,
    TxnResponse,
)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str | None) -> bytes:
    return base64.b64decode(text) if text else b""


def _kv(obj: dict) -> KeyValue:
    return KeyValue(
        _unb64(obj.get("key")),
        int(obj.get("create_revision", 0)),
        int(obj.get("mod_revision", 0)),
        int(obj.get("version", 0)),
        _unb64(obj.get("value")),
        int(obj.get("lease", 0)),
    )


def _checked(obj: dict) -> dict:
    """``obj``, unless it is an error: then kbench's error for its message (a known message with a
    detail in parentheses keeps the detail)."""
    if "error" not in obj:
        return obj
    error = obj["error"]
    message = error if isinstance(error, str) else error.get("message", "")  # a stream's error is an object
    if message in ERRORS:
        raise ERRORS[message]()
    base, _, detail = message.partition(" (")
    if base in ERRORS and detail.endswith(")"):
        raise ERRORS[base](detail[:-1])
    raise EtcdError(message)


def _revision(obj: dict) -> int:
    return int(obj.get("header", {}).get("revision", 0))


def _range_json(r: RangeRequest) -> dict:
    body: dict[str, Any] = {"key": _b64(r.key)}
    if r.range_end:
        body["range_end"] = _b64(r.range_end)
    for name in RANGE_INT_FIELDS:
        if getattr(r, name):
            body[name] = str(getattr(r, name))
    for name in ("serializable", "keys_only", "count_only"):
        if getattr(r, name):
            body[name] = True
    if r.sort_order != "NONE":
        body["sort_order"] = r.sort_order
    if r.sort_target != "KEY":
        body["sort_target"] = r.sort_target
    return body


def _put_json(p: PutRequest) -> dict:
    body: dict[str, Any] = {"key": _b64(p.key), "value": _b64(p.value)}
    if p.lease:
        body["lease"] = str(p.lease)
    for name in ("prev_kv", "ignore_value", "ignore_lease"):
        if getattr(p, name):
            body[name] = True
    return body


def _delete_json(d: DeleteRangeRequest) -> dict:
    body: dict[str, Any] = {"key": _b64(d.key)}
    if d.range_end:
        body["range_end"] = _b64(d.range_end)
    if d.prev_kv:
        body["prev_kv"] = True
    return body


def _compare_json(c: Compare) -> dict:
    body: dict[str, Any] = {"key": _b64(c.key), "target": c.target, "result": c.result}
    if c.range_end:
        body["range_end"] = _b64(c.range_end)
    if c.target == "VALUE":
        body["value"] = _b64(c.value)
    else:
        field = {"VERSION": "version", "CREATE": "create_revision", "MOD": "mod_revision", "LEASE": "lease"}[c.target]
        body[field] = str(getattr(c, field))
    return body


def _txn_json(t: TxnRequest) -> dict:
    def op(o) -> dict:
        if isinstance(o, RangeRequest):
            return {"request_range": _range_json(o)}
        if isinstance(o, PutRequest):
            return {"request_put": _put_json(o)}
        if isinstance(o, DeleteRangeRequest):
            return {"request_delete_range": _delete_json(o)}
        return {"request_txn": _txn_json(o)}

    return {
        "compare": [_compare_json(c) for c in t.compare],
        "success": [op(o) for o in t.success],
        "failure": [op(o) for o in t.failure],
    }


def _range_resp(obj: dict) -> RangeResponse:
    return RangeResponse(
        _revision(obj), [_kv(kv) for kv in obj.get("kvs", [])], bool(obj.get("more", False)), int(obj.get("count", 0))
    )


def _put_resp(obj: dict) -> PutResponse:
    prev = obj.get("prev_kv")
    return PutResponse(_revision(obj), _kv(prev) if prev else None)


def _delete_resp(obj: dict) -> DeleteRangeResponse:
    return DeleteRangeResponse(_revision(obj), int(obj.get("deleted", 0)), [_kv(kv) for kv in obj.get("prev_kvs", [])])


def _txn_resp(obj: dict) -> TxnResponse:
    parsers: dict[str, Callable[[dict], ResponseOp]] = {
        "response_range": _range_resp,
        "response_put": _put_resp,
        "response_delete_range": _delete_resp,
        "response_txn": _txn_resp,
    }
    responses: list[ResponseOp] = []
    for item in obj.get("responses", []):
        ((kind, body),) = item.items()
        responses.append(parsers[kind](body))
    return TxnResponse(_revision(obj), bool(obj.get("succeeded", False)), responses)


class Gateway:
    """Talks to ``url`` (e.g. ``http://127.0.0.1:2379``) through etcd's /v3 JSON gateway."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout

    def _post(self, path: str, body: dict) -> dict:
        request = urllib.request.Request(self.url + path, json.dumps(body).encode(), method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as resp:
                text = resp.read().decode()
        except urllib.error.HTTPError as err:
            text = err.read().decode()
        obj = json.loads(text.splitlines()[0])
        return _checked(obj.get("result", obj))  # streaming endpoints wrap each message

    def member_id(self) -> int:
        """The answering member's ID (from a status response's header)."""
        return int(self._post("/v3/maintenance/status", {})["header"]["member_id"])

    def put(
        self,
        key: bytes,
        value: bytes = b"",
        lease: int = 0,
        prev_kv: bool = False,
        ignore_value: bool = False,
        ignore_lease: bool = False,
    ) -> PutResponse:
        """Put ``key`` (etcd's /v3/kv/put), as :meth:`kbench.etcd.store.Store.put`."""
        return _put_resp(
            self._post("/v3/kv/put", _put_json(PutRequest(key, value, lease, prev_kv, ignore_value, ignore_lease)))
        )

    def range(self, key: bytes, range_end: bytes = b"", **options: Any) -> RangeResponse:
        """Read ``[key, range_end)`` (/v3/kv/range); ``options`` are :class:`RangeRequest`'s fields."""
        return _range_resp(self._post("/v3/kv/range", _range_json(RangeRequest(key, range_end, **options))))

    def delete_range(self, key: bytes, range_end: bytes = b"", prev_kv: bool = False) -> DeleteRangeResponse:
        """Delete ``[key, range_end)`` (/v3/kv/deleterange)."""
        return _delete_resp(self._post("/v3/kv/deleterange", _delete_json(DeleteRangeRequest(key, range_end, prev_kv))))

    def txn(self, compare: Sequence[Compare] = (), success: Sequence = (), failure: Sequence = ()) -> TxnResponse:
        """Run a transaction (/v3/kv/txn): ``success`` if every ``compare`` holds, else ``failure``."""
        request = TxnRequest(tuple(compare), tuple(success), tuple(failure))
        return _txn_resp(self._post("/v3/kv/txn", _txn_json(request)))

    def compact(self, revision: int, physical: bool = False) -> CompactionResponse:
        """Compact the history before ``revision`` (/v3/kv/compaction)."""
        body: dict[str, Any] = {"revision": str(revision)}
        if physical:
            body["physical"] = True
        return CompactionResponse(_revision(self._post("/v3/kv/compaction", body)))

    def lease_grant(self, ttl: int, id: int = 0) -> LeaseGrantResponse:
        """Grant a lease of ``ttl`` seconds (/v3/lease/grant); ``id`` 0 lets etcd choose it."""
        obj = self._post("/v3/lease/grant", {"TTL": str(ttl), "ID": str(id)})
        return LeaseGrantResponse(_revision(obj), int(obj["ID"]), int(obj.get("TTL", 0)))

    def lease_revoke(self, id: int) -> LeaseRevokeResponse:
        """Revoke lease ``id``, deleting its keys (/v3/lease/revoke)."""
        return LeaseRevokeResponse(_revision(self._post("/v3/lease/revoke", {"ID": str(id)})))

    def lease_keepalive(self, id: int) -> LeaseKeepAliveResponse:
        """Renew lease ``id`` once (/v3/lease/keepalive); an unknown lease raises :class:`LeaseNotFoundError`."""
        obj = self._post("/v3/lease/keepalive", {"ID": str(id)})
        if int(obj.get("TTL", 0)) <= 0:  # etcd answers an unknown lease with TTL 0
            raise ERRORS["etcdserver: requested lease not found"]()
        return LeaseKeepAliveResponse(_revision(obj), int(obj["ID"]), int(obj["TTL"]))

    def lease_time_to_live(self, id: int, keys: bool = False) -> LeaseTimeToLiveResponse:
        """Lease ``id``'s remaining TTL (/v3/lease/timetolive), with its keys when ``keys``."""
        obj = self._post("/v3/lease/timetolive", {"ID": str(id), "keys": keys})
        return LeaseTimeToLiveResponse(
            _revision(obj),
            int(obj.get("ID", id)),
            int(obj.get("TTL", 0)),
            int(obj.get("grantedTTL", 0)),
            [_unb64(k) for k in obj.get("keys", [])],
        )

    def watch(
        self,
        key: bytes,
        range_end: bytes = b"",
        start_revision: int = 0,
        prev_kv: bool = False,
        filters: Sequence[str] = (),
    ) -> RemoteWatcher:
        """Open a watch; returns once etcd has created (or refused) it, so later writes reach it."""
        create: dict[str, Any] = {"key": _b64(key), "start_revision": str(start_revision)}
        if range_end:
            create["range_end"] = _b64(range_end)
        if prev_kv:
            create["prev_kv"] = True
        if filters:
            create["filters"] = list(filters)
        return RemoteWatcher(self.url, create, self.timeout)


class RemoteWatcher:
    """A watch on a real etcd with :class:`~kbench.etcd.watch.Watcher`'s attributes, read by a thread.

    ``canceled`` with ``compact_revision`` (a start below the compaction revision) or with
    ``cancel_reason`` (a refused watch) as etcd reports them.
    """

    def __init__(self, url: str, create: dict, timeout: float) -> None:
        self.events: list[Event] = []
        self.canceled = False
        self.compact_revision = 0
        self.cancel_reason = ""
        self._changed = threading.Condition()
        parts = urllib.parse.urlsplit(url)
        if parts.hostname is None:
            raise ValueError(f"{url!r} names no host")
        self._conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
        self._conn.request("POST", "/v3/watch", json.dumps({"create_request": create}))
        self._sock = self._conn.sock
        self._resp = self._conn.getresponse()
        try:
            self._read(self._resp.readline())  # the created response, or an error
        except BaseException:
            self._conn.close()
            raise
        self._sock.settimeout(None)
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _read(self, line: bytes) -> None:
        result = _checked(json.loads(line)).get("result", {})
        events = [
            Event(ev.get("type", "PUT"), _kv(ev["kv"]), _kv(ev["prev_kv"]) if ev.get("prev_kv") else None)
            for ev in result.get("events", [])
        ]
        with self._changed:
            self.events += events
            if result.get("canceled"):
                self.canceled = True
                self.compact_revision = int(result.get("compact_revision", 0))
                self.cancel_reason = result.get("cancel_reason", "")
            self._changed.notify_all()

    def _loop(self) -> None:
        try:
            for line in self._resp:
                self._read(line)
        except (OSError, ValueError, http.client.HTTPException):
            pass  # the watch was closed

    def wait(self, events: int, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds until at least ``events`` events came or the watch was canceled."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self.events) < events and not self.canceled:
                left = deadline - time.monotonic()
                if left <= 0 or not self._changed.wait(left):
                    return False
        return True

    def take(self) -> list[Event]:
        """Return and clear the events received so far."""
        with self._changed:
            events, self.events = self.events, []
        return events

    def cancel(self) -> None:
        """Close the watch stream."""
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)  # the reading thread sees the end of the stream
        self._thread.join(5)
        self._conn.close()
