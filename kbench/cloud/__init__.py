"""cloud-controller-manager on the engine, over a modelled cloud provider API.

``cloud_controller_manager(server, cloud, config)`` builds one cloud-controller-manager instance (user
``system:cloud-controller-manager``) with the controllers of k8s.io/cloud-provider its
:class:`CloudControllerManagerConfiguration` enables, each with its own client (one token bucket each at
``--kube-api-qps`` / ``--kube-api-burst``), behind leader election.
"""

from kbench.apiserver.server import APIServer
from kbench.cloud.base import CloudController
from kbench.cloud.config import CloudControllerManagerConfiguration
from kbench.cloud.node import CloudNodeController
from kbench.cloud.nodelifecycle import CloudNodeLifecycleController
from kbench.cloud.provider import Cloud, CloudCosts, CloudError
from kbench.cloud.route import RouteController
from kbench.cloud.service import ServiceController
from kbench.controllers.base import Manager, build_manager, by_name
from kbench.controllers.leaderelection import leader_election

USER = "system:cloud-controller-manager"
CLOUD_CONTROLLERS = by_name(CloudNodeController, CloudNodeLifecycleController, RouteController, ServiceController)
"""The cloud-controller-manager's controllers kbench models, by upstream name (k8s.io/cloud-provider/names), in the
order they start."""


def cloud_controller_manager(
    server: APIServer,
    cloud: Cloud,
    identity: str = "ccm-0",
    config: CloudControllerManagerConfiguration | None = None,
) -> Manager:
    """A cloud-controller-manager instance with the controllers ``config`` enables (``--controllers``, and
    ``--allocate-node-cidrs`` / ``--configure-cloud-routes`` for routes), not yet started."""
    return build_manager(
        server, identity, USER, config or CloudControllerManagerConfiguration(), CLOUD_CONTROLLERS, cloud
    )


__all__ = [
    "CLOUD_CONTROLLERS",
    "Cloud",
    "CloudControllerManagerConfiguration",
    "CloudController",
    "CloudCosts",
    "CloudError",
    "CloudNodeController",
    "CloudNodeLifecycleController",
    "RouteController",
    "ServiceController",
    "cloud_controller_manager",
    "leader_election",
]
