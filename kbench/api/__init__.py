"""Kubernetes objects as kbench reads them: quantities, Pods and Nodes from manifests."""

from kbench.api.core import Container, ManifestError, Node, Pod, Taint, Toleration, load_manifests

__all__ = ["Container", "ManifestError", "Node", "Pod", "Taint", "Toleration", "load_manifests"]
