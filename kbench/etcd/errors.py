"""etcd's errors, with etcd v3.4's messages and gRPC codes.

Messages are those of ``etcdserver/api/v3rpc/rpctypes/error.go`` (release-3.4),
as a client sees them, so a test can compare kbench's errors with a real
etcd's. Argument errors that etcd's protobuf layer would reject before the
server sees the request (a ``str`` key, an unknown enum name) are plain
``TypeError`` / ``ValueError`` naming the field.
"""

from __future__ import annotations


class EtcdError(Exception):
    """Base of the errors a real etcd returns; ``code`` is the gRPC status name."""

    code = "Unknown"
    message = "etcdserver: unknown error"

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(self.message if detail is None else f"{self.message} ({detail})")


class EmptyKeyError(EtcdError):
    """A request without a key (rpctypes.ErrGRPCEmptyKey)."""

    code, message = "InvalidArgument", "etcdserver: key is not provided"


class KeyNotFoundError(EtcdError):
    """A put with ``ignore_value`` or ``ignore_lease`` on a missing key (rpctypes.ErrGRPCKeyNotFound)."""

    code, message = "InvalidArgument", "etcdserver: key not found"


class ValueProvidedError(EtcdError):
    """A put with ``ignore_value`` that also gives a value (rpctypes.ErrGRPCValueProvided)."""

    code, message = "InvalidArgument", "etcdserver: value is provided"


class LeaseProvidedError(EtcdError):
    """A put with ``ignore_lease`` that also gives a lease (rpctypes.ErrGRPCLeaseProvided)."""

    code, message = "InvalidArgument", "etcdserver: lease is provided"


class TooManyOpsError(EtcdError):
    """A txn with more operations than ``--max-txn-ops`` (rpctypes.ErrGRPCTooManyOps)."""

    code, message = "InvalidArgument", "etcdserver: too many operations in txn request"


class DuplicateKeyError(EtcdError):
    """A txn that writes one key twice in a branch (rpctypes.ErrGRPCDuplicateKey)."""

    code, message = "InvalidArgument", "etcdserver: duplicate key given in txn request"


class RequestTooLargeError(EtcdError):
    """A proposal larger than ``--max-request-bytes`` (rpctypes.ErrGRPCRequestTooLarge)."""

    code, message = "InvalidArgument", "etcdserver: request is too large"


class MessageTooLargeError(EtcdError):
    """gRPC refused the message before etcd saw it; the detail is ``"<size> vs. <limit>"``.

    Its limit is ``--max-request-bytes`` + 512 KiB (``grpcOverheadBytes`` in
    ``etcdserver/api/v3rpc/grpc.go``) and the message is grpc-go's.
    """

    code, message = "ResourceExhausted", "grpc: received message larger than max"


class CompactedError(EtcdError):
    """A read or watch at a revision compacted away (rpctypes.ErrGRPCCompacted)."""

    code, message = "OutOfRange", "etcdserver: mvcc: required revision has been compacted"


class FutureRevisionError(EtcdError):
    """A read at a revision after the current one (rpctypes.ErrGRPCFutureRev)."""

    code, message = "OutOfRange", "etcdserver: mvcc: required revision is a future revision"


class NoSpaceError(EtcdError):
    """A write while the NOSPACE alarm is raised, or one that would pass the quota (rpctypes.ErrGRPCNoSpace)."""

    code, message = "ResourceExhausted", "etcdserver: mvcc: database space exceeded"


class LeaseNotFoundError(EtcdError):
    """A lease ID that is not granted (rpctypes.ErrGRPCLeaseNotFound)."""

    code, message = "NotFound", "etcdserver: requested lease not found"


class LeaseExistError(EtcdError):
    """A grant of a lease ID already granted (rpctypes.ErrGRPCLeaseExist)."""

    code, message = "FailedPrecondition", "etcdserver: lease already exists"


class LeaseTTLTooLargeError(EtcdError):
    """A grant with a TTL above etcd's MaxLeaseTTL (rpctypes.ErrGRPCLeaseTTLTooLarge)."""

    code, message = "OutOfRange", "etcdserver: too large lease TTL"


ERRORS: dict[str, type[EtcdError]] = {
    cls.message: cls
    for cls in (
        EmptyKeyError,
        KeyNotFoundError,
        ValueProvidedError,
        LeaseProvidedError,
        TooManyOpsError,
        DuplicateKeyError,
        RequestTooLargeError,
        MessageTooLargeError,
        CompactedError,
        FutureRevisionError,
        NoSpaceError,
        LeaseNotFoundError,
        LeaseExistError,
        LeaseTTLTooLargeError,
    )
}
"""Error class by etcd message, to map a real etcd's error back to kbench's."""
