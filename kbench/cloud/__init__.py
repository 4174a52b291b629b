"""cloud-controller-manager on the engine, over a modelled cloud provider API."""

from kbench.cloud.controllers import (
    CloudNodeController,
    CloudNodeLifecycleController,
    RouteController,
    ServiceController,
    cloud_controller_manager,
)
from kbench.cloud.provider import Cloud, CloudError

__all__ = [
    "Cloud",
    "CloudError",
    "CloudNodeController",
    "CloudNodeLifecycleController",
    "RouteController",
    "ServiceController",
    "cloud_controller_manager",
]
