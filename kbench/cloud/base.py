"""What the cloud-controller-manager's controllers share: the modelled cloud beside their client, and a Node
informer (every one of them watches Nodes)."""

from __future__ import annotations

from kbench.apiserver.objects import APIError
from kbench.cloud.provider import Cloud, CloudError
from kbench.controllers.base import Controller, Manager


class CloudController(Controller):
    """A controller of k8s.io/cloud-provider/controllers: a :class:`Controller` with the cloud and the Node
    informer."""

    def __init__(self, manager: Manager, cloud: Cloud) -> None:
        super().__init__(manager)
        self.cloud = cloud
        self.nodes = self.watch("nodes")

    @staticmethod
    def requeue(err: CloudError) -> APIError:
        """A failed cloud call as the error that makes the worker retry the key with backoff."""
        return APIError(503, "ServiceUnavailable", str(err))
