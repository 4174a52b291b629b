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
from kbench.controllers.base import Manager, by_name
from kbench.controllers.clientbuilder import RestConfig
from kbench.controllers.leaderelection import LeaderElection

USER = "system:cloud-controller-manager"
CLOUD_CONTROLLERS = by_name(CloudNodeController, CloudNodeLifecycleController, RouteController, ServiceController)
"""The cloud-controller-manager's controllers kbench models, by upstream name (k8s.io/cloud-provider/names), in the
order they start."""


def leader_election(config: CloudControllerManagerConfiguration) -> LeaderElection | None:
    """The ``--leader-elect*`` settings as a :class:`LeaderElection` (None without ``--leader-elect``)."""
    if not config.leader_elect:
        return None
    return LeaderElection(
        config.leader_elect_resource_name,
        lease_duration=config.leader_elect_lease_duration,
        renew_deadline=config.leader_elect_renew_deadline,
        retry_period=config.leader_elect_retry_period,
    )


def cloud_controller_manager(
    server: APIServer,
    cloud: Cloud,
    identity: str = "ccm-0",
    config: CloudControllerManagerConfiguration | None = None,
) -> Manager:
    """A cloud-controller-manager instance with the controllers ``config`` enables (``--controllers``, and
    ``--allocate-node-cidrs`` / ``--configure-cloud-routes`` for routes), not yet started."""
    config = config or CloudControllerManagerConfiguration()
    rest = RestConfig(USER, config.kube_api_qps, config.kube_api_burst)
    manager = Manager(server, identity, rest, config, leader_election(config))
    for name, cls in CLOUD_CONTROLLERS.items():
        if config.enabled(name) and cls.runs(config):
            cls(manager, cloud)
    return manager


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
