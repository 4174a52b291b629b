"""kube-controller-manager on the engine: the controllers scenarios need, behind leader election.

``controller_manager(server, identity, config)`` builds one kube-controller-manager instance (user
``system:kube-controller-manager``) with the controllers its :class:`KubeControllerManagerConfiguration` enables;
start two for a standby that takes over when the leader dies. Each controller has its own client, so its own
``--kube-api-qps`` / ``--kube-api-burst`` token bucket (:mod:`kbench.controllers.clientbuilder`); the shared
informers and leader election have one each too.
"""

from kbench.apiserver.server import APIServer
from kbench.controllers.base import Controller, Manager, build_manager, by_name
from kbench.controllers.clientbuilder import RestConfig, SimpleControllerClientBuilder
from kbench.controllers.config import KubeControllerManagerConfiguration
from kbench.controllers.deployment import DeploymentController
from kbench.controllers.disruption import DisruptionController
from kbench.controllers.endpointslice import EndpointSliceController
from kbench.controllers.garbagecollector import GarbageCollector
from kbench.controllers.job import JobController
from kbench.controllers.leaderelection import LeaderElection, leader_election
from kbench.controllers.namespace import NamespaceController
from kbench.controllers.nodeipam import NodeIpamController
from kbench.controllers.nodelifecycle import NodeLifecycleController
from kbench.controllers.replicaset import ReplicaSetController
from kbench.controllers.rootcacertpublisher import RootCACertPublisher
from kbench.controllers.serviceaccount import ServiceAccountController
from kbench.controllers.tainteviction import TaintEvictionController
from kbench.controllers.ttlafterfinished import TTLAfterFinishedController

USER = "system:kube-controller-manager"
CONTROLLERS = by_name(
    NodeLifecycleController,
    TaintEvictionController,
    ReplicaSetController,
    DeploymentController,
    JobController,
    TTLAfterFinishedController,
    DisruptionController,
    EndpointSliceController,
    ServiceAccountController,
    RootCACertPublisher,
    NamespaceController,
    GarbageCollector,
    NodeIpamController,
)
"""The controllers kbench models, by upstream name (cmd/kube-controller-manager/names), in the order they start."""


def controller_manager(
    server: APIServer, identity: str = "kcm-0", config: KubeControllerManagerConfiguration | None = None
) -> Manager:
    """A kube-controller-manager instance with the controllers ``config`` enables (``--controllers``, and the
    flags some need, e.g. ``--allocate-node-cidrs``), not yet started."""
    return build_manager(server, identity, USER, config or KubeControllerManagerConfiguration(), CONTROLLERS)


__all__ = [
    "CONTROLLERS",
    "Controller",
    "DeploymentController",
    "DisruptionController",
    "EndpointSliceController",
    "GarbageCollector",
    "JobController",
    "KubeControllerManagerConfiguration",
    "LeaderElection",
    "Manager",
    "NamespaceController",
    "NodeIpamController",
    "NodeLifecycleController",
    "ReplicaSetController",
    "RestConfig",
    "RootCACertPublisher",
    "ServiceAccountController",
    "SimpleControllerClientBuilder",
    "TTLAfterFinishedController",
    "TaintEvictionController",
    "controller_manager",
    "leader_election",
]
