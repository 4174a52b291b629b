"""kube-apiserver on the engine: verbs and resourceVersion rules over the etcd model, watch caches, admission,
API Priority and Fairness, scale-out instances, and the APIResponsiveness SLI."""

from kbench.apiserver.objects import RESOURCES, APIError, Filter, copy_object, seconds, timestamp
from kbench.apiserver.server import APIServer, Connection

__all__ = ["RESOURCES", "APIError", "APIServer", "Connection", "Filter", "copy_object", "seconds", "timestamp"]
