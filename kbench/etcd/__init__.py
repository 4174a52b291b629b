"""etcd v3 model: an MVCC store with etcd's semantics (Numba kernels) and a modelled member set."""

from kbench.etcd.errors import (
    CompactedError,
    DuplicateKeyError,
    EmptyKeyError,
    EtcdError,
    FutureRevisionError,
    KeyNotFoundError,
    LeaseExistError,
    LeaseNotFoundError,
    LeaseProvidedError,
    LeaseTTLTooLargeError,
    MessageTooLargeError,
    NoSpaceError,
    RequestTooLargeError,
    TooManyOpsError,
    ValueProvidedError,
)
from kbench.etcd.store import Store
from kbench.etcd.types import (
    Compare,
    DeleteRangeRequest,
    Event,
    KeyValue,
    PutRequest,
    RangeRequest,
    TxnRequest,
)

__all__ = [
    "CompactedError", "DuplicateKeyError", "EmptyKeyError", "EtcdError", "FutureRevisionError",
    "KeyNotFoundError", "LeaseExistError", "LeaseNotFoundError", "LeaseProvidedError",
    "LeaseTTLTooLargeError", "MessageTooLargeError", "NoSpaceError", "RequestTooLargeError", "TooManyOpsError",
    "ValueProvidedError", "Store", "Compare", "DeleteRangeRequest", "Event", "KeyValue",
    "PutRequest", "RangeRequest", "TxnRequest",
]
