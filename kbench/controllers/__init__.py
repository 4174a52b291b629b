"""kube-controller-manager on the engine: the controllers scenarios need, behind leader election.

``controller_manager(server, identity)`` builds one kube-controller-manager instance (user
``system:kube-controller-manager``, ``--kube-api-qps`` 20 / ``--kube-api-burst`` 30, lease
``kube-system/kube-controller-manager``); start two for a standby that takes over when the leader dies.
"""

from kbench.controllers.base import Controller, Manager
from kbench.controllers.cluster import (
    GarbageCollector,
    NamespaceController,
    NodeIpamController,
    ServiceAccountController,
)
from kbench.controllers.endpointslice import EndpointSliceController
from kbench.controllers.job import JobController, TTLAfterFinishedController
from kbench.controllers.nodelifecycle import NodeLifecycleController, TaintEvictionController
from kbench.controllers.workloads import DeploymentController, ReplicaSetController

KCM_QPS, KCM_BURST = 20.0, 30
"""kube-controller-manager --kube-api-qps / --kube-api-burst defaults."""
CONTROLLERS = (
    NodeLifecycleController,
    TaintEvictionController,
    ReplicaSetController,
    DeploymentController,
    JobController,
    TTLAfterFinishedController,
    EndpointSliceController,
    ServiceAccountController,
    NamespaceController,
    GarbageCollector,
    NodeIpamController,
)


def controller_manager(
    server, identity: str = "kcm-0", controllers=CONTROLLERS, lease: str | None = "kube-controller-manager"
) -> Manager:
    """A kube-controller-manager instance with ``controllers`` (classes), not yet started."""
    manager = Manager(server, "system:kube-controller-manager", identity, KCM_QPS, KCM_BURST, lease)
    for cls in controllers:
        cls(manager)
    return manager


__all__ = [
    "CONTROLLERS",
    "Controller",
    "DeploymentController",
    "EndpointSliceController",
    "GarbageCollector",
    "JobController",
    "Manager",
    "NamespaceController",
    "NodeIpamController",
    "NodeLifecycleController",
    "ReplicaSetController",
    "ServiceAccountController",
    "TTLAfterFinishedController",
    "TaintEvictionController",
    "controller_manager",
]
