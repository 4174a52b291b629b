"""The registry of modelled plugins by upstream name (``pkg/scheduler/framework/plugins/registry.go``).

The framework builds each enabled plugin from here with its args and a :class:`~kbench.scheduler.interface.Handle`.
Upstream plugins that only act on volumes, claims or scheduling gates are accepted by the configuration
(``config.INERT``) but not registered: kbench's pods carry none.
"""

from __future__ import annotations

from typing import Any

from kbench.scheduler.interface import Handle, Plugin
from kbench.scheduler.plugins.defaultbinder import DefaultBinder
from kbench.scheduler.plugins.defaultpreemption import DefaultPreemption
from kbench.scheduler.plugins.imagelocality import ImageLocality
from kbench.scheduler.plugins.interpodaffinity import InterPodAffinity
from kbench.scheduler.plugins.nodeaffinity import NodeAffinity
from kbench.scheduler.plugins.nodename import NodeName
from kbench.scheduler.plugins.nodeports import NodePorts
from kbench.scheduler.plugins.noderesources import NodeResourcesBalancedAllocation, NodeResourcesFit
from kbench.scheduler.plugins.nodeunschedulable import NodeUnschedulable
from kbench.scheduler.plugins.podtopologyspread import PodTopologySpread
from kbench.scheduler.plugins.queuesort import PrioritySort
from kbench.scheduler.plugins.tainttoleration import TaintToleration

REGISTRY: dict[str, type[Plugin]] = {
    cls.name: cls
    for cls in (
        PrioritySort,
        NodeUnschedulable,
        NodeName,
        TaintToleration,
        NodeAffinity,
        NodePorts,
        NodeResourcesFit,
        PodTopologySpread,
        InterPodAffinity,
        NodeResourcesBalancedAllocation,
        ImageLocality,
        DefaultBinder,
        DefaultPreemption,
    )
}
"""Upstream plugin name -> the class modelling it."""


def new_plugin(name: str, args: dict[str, Any], handle: Handle) -> Plugin:
    """Build the registered plugin ``name`` (upstream's PluginFactory)."""
    try:
        cls = REGISTRY[name]
    except KeyError:
        raise ValueError(f"plugin {name!r} is not modelled; registered: {', '.join(REGISTRY)}") from None
    return cls(args, handle)
