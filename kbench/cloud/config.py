"""CloudControllerManagerConfiguration: cloud-controller-manager's flags kbench models (k8s.io/cloud-provider,
v1.35 defaults).

The cloud-controller-manager is configured by flags (k8s.io/cloud-provider/options); each option is named by its
flag's camelCase name and carries the flag. Defaults come from k8s.io/cloud-provider/config/v1alpha1/defaults.go
(SetDefaults_CloudControllerManagerConfiguration, SetDefaults_KubeCloudSharedConfiguration) and the controllers'
own defaults. ``--controllers`` takes k8s.io/cloud-provider/names' controller names and aliases.
"""

from __future__ import annotations

from dataclasses import dataclass

from kbench.componentconfig import DURATION, option
from kbench.controllers.config import KNOWN_CONTROLLERS as KUBE_NAMES
from kbench.controllers.config import KubeCloudSharedConfiguration, check_cluster_cidr

DEFAULTS = "k8s.io/cloud-provider/config/v1alpha1/defaults.go"
KNOWN_CONTROLLERS: dict[str, tuple[str, ...]] = {
    "cloud-node-controller": ("cloud-node",),
    **{name: KUBE_NAMES[name] for name in ("service-lb-controller", "node-route-controller")},
    "cloud-node-lifecycle-controller": KUBE_NAMES["cloud-node-lifecycle-controller"],
}
"""k8s.io/cloud-provider/names: controller name -> aliases (CCMControllerAliases)."""


@dataclass(frozen=True)
class CloudControllerManagerConfiguration(KubeCloudSharedConfiguration):
    """cloud-controller-manager's flags that kbench models (``--controllers`` names are validated)."""

    component = "cloud-controller-manager"

    known_controllers = KNOWN_CONTROLLERS

    leader_elect_resource_name: str = option(
        "leaderElectResourceName",
        "cloud-controller-manager",
        str,
        "name of the leader-election Lease",
        "k8s.io/cloud-provider/options/options.go (LeaderElection.ResourceName)",
        flag="leader-elect-resource-name",
    )
    concurrent_service_syncs: int = option(
        "concurrentServiceSyncs",
        1,
        int,
        "service (load balancer) controller workers",
        "k8s.io/cloud-provider/controllers/service/config/v1alpha1/defaults.go ConcurrentServiceSyncs 1",
        flag="concurrent-service-syncs",
        minimum=1,
    )
    concurrent_node_syncs: int = option(
        "concurrentNodeSyncs",
        1,
        int,
        "cloud node controller workers",
        "k8s.io/cloud-provider/controllers/node/config/v1alpha1/defaults.go ConcurrentNodeSyncs 1",
        flag="concurrent-node-syncs",
        minimum=1,
    )
    node_status_update_frequency: float = option(
        "nodeStatusUpdateFrequency",
        300.0,
        DURATION,
        "how often the cloud node controller reads every initialized node's instance (UpdateNodeStatus)",
        f"{DEFAULTS} SetDefaults_CloudControllerManagerConfiguration (5m0s)",
        flag="node-status-update-frequency",
        minimum=0.001,
    )
    route_reconciliation_period: float = option(
        "routeReconciliationPeriod",
        10.0,
        DURATION,
        "period of the route controller's pass",
        f"{DEFAULTS} SetDefaults_KubeCloudSharedConfiguration (10s)",
        flag="route-reconciliation-period",
        minimum=0.001,
    )
    configure_cloud_routes: bool = option(
        "configureCloudRoutes",
        True,
        bool,
        "configure the nodes' pod CIDRs as cloud routes",
        f"{DEFAULTS} SetDefaults_KubeCloudSharedConfiguration (true)",
        flag="configure-cloud-routes",
    )

    def validate(self, where: str) -> None:
        """Upstream's cross-field rules: the generic ones, and a cluster CIDR for routes."""
        super().validate(where)
        if self.routes() and self.enabled("node-route-controller"):
            check_cluster_cidr(self.cluster_cidr, where)

    def routes(self) -> bool:
        """Whether the route controller configures routes (``--allocate-node-cidrs``, ``--configure-cloud-routes``)."""
        return bool(self.allocate_node_cidrs and self.configure_cloud_routes)


ROUTE_FLAGS = {"allocate-node-cidrs": "true", "cluster-cidr": "10.0.0.0/8"}
"""The node-CIDR flags a cluster that allocates pod CIDRs gives the cloud-controller-manager too, with kbench's pod
subnet 10.0.0.0/8 (the same as kube-controller-manager's :data:`kbench.controllers.config.KUBEADM_FLAGS`): how
kbench's clusters have always configured routes."""
