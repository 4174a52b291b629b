"""What kube-scheduler would do for a pod on a cluster given as Kubernetes manifests, nothing changed: every filter's
status and every score per node (:func:`breakdown`, as kube-scheduler-simulator shows them), and DefaultPreemption's
PostFilter (:func:`preemption`)."""

from __future__ import annotations

import pandas as pd

from kbench.api.core import Node, Pod, load_manifests
from kbench.api.policy import PodDisruptionBudget
from kbench.scheduler.config import SchedulerConfig, parse_config
from kbench.scheduler.framework import Framework
from kbench.scheduler.kernel import KernelScheduler
from kbench.scheduler.plugins.defaultpreemption import DefaultPreemption
from kbench.scheduler.preemption import Outcome
from kbench.scheduler.state import ClusterState


def preemption(nodes, pod, pods=(), pdbs=(), config=None, *, offset=0, compiled=True, now=0.0) -> Outcome:
    """DefaultPreemption's PostFilter for ``pod`` on a cluster given as Kubernetes manifests (nothing is evicted).

    Parameters
    ----------
    nodes : str or list of mappings
        Node manifests (a multi-document YAML string, or dicts).
    pod : mapping or str
        The preemptor.
    pods : str or list of mappings
        Other pods: bound ones carry ``spec.nodeName``; nominated ones ``status.nominatedNodeName``.
    pdbs : str or list of mappings
        PodDisruptionBudget manifests (policy/v1, with their status).
    config : str, mapping or SchedulerConfig, optional
        A KubeSchedulerConfiguration (its profile's filters and DefaultPreemptionArgs).
    offset : int or None
        The dry run's start among the potential nodes (None: drawn, as getOffsetRand).
    compiled : bool
        The compiled dry run where it applies (else the reference).
    now : float
        Simulated now: pods without ``status.startTime`` start now.
    """
    budgets = [PodDisruptionBudget.from_manifest(m) for m in load_manifests(pdbs)]
    state, others, preemptor, config = _cluster(nodes, pods, pod, config)
    fw = Framework(config.profile(preemptor.scheduler_name), state, config.percentage_of_nodes_to_score, 0,
                   pdbs=lambda: budgets)  # fmt: skip
    for other in others:
        if other.nominated_node_name:
            fw.nominate(other, state.index[other.nominated_node_name])
    if preemptor.nominated_node_name in state.index:
        fw.nominate(preemptor, state.index[preemptor.nominated_node_name])
    KernelScheduler(fw)  # the compiled dry run plans through it
    plugin = next((p for p in fw.post_filters if isinstance(p, DefaultPreemption)), None)
    if plugin is None:
        raise ValueError("the profile does not enable DefaultPreemption (postFilter)")
    plugin.evaluator.offset, plugin.evaluator.compiled = offset, compiled
    return plugin.post_filter(preemptor, now)


def breakdown(nodes, pod, pods=(), config=None) -> pd.DataFrame:
    """Per-node filter and score breakdown for ``pod`` on a cluster given as Kubernetes manifests.

    Parameters
    ----------
    nodes : str or list of mappings
        Node manifests (a multi-document YAML string, or dicts).
    pod : str or mapping
        The pod to place.
    pods : str or list of mappings
        Pods already bound (each with ``spec.nodeName``).
    config : str, mapping or SchedulerConfig, optional
        A KubeSchedulerConfiguration (default: all defaults).
    """
    state, others, incoming, config = _cluster(nodes, pods, pod, config)
    if others:
        raise ValueError(f"Pod {others[0].key}: spec.nodeName: required (the pods given are bound ones)")
    return Framework(config.profile(incoming.scheduler_name), state, config.percentage_of_nodes_to_score).breakdown(
        incoming
    )


def _cluster(nodes, pods, pod, config) -> tuple[ClusterState, list[Pod], Pod, SchedulerConfig]:
    """The state with the bound pods (``spec.nodeName``) on their nodes, the other pods (pending or nominated, whose
    ``status.nominatedNodeName`` must name a node), the pod, and the configuration."""
    state = ClusterState(Node.from_manifest(m) for m in load_manifests(nodes))
    others = []
    for m in load_manifests(pods):
        other = Pod.from_manifest(m)
        name = other.node_name or other.nominated_node_name
        if name and name not in state.index:
            field = "spec.nodeName" if other.node_name else "status.nominatedNodeName"
            raise ValueError(f"Pod {other.key}: {field} {name!r} is not one of the nodes")
        if other.node_name:
            state.bind(other, other.node_name)
        else:
            others.append(other)
    (incoming,) = [Pod.from_manifest(m) for m in load_manifests([pod] if isinstance(pod, dict) else pod)]
    return state, others, incoming, config if isinstance(config, SchedulerConfig) else parse_config(config)
