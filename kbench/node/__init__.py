"""The node layer: hollow nodes (kubemark-style) for control-plane scale runs."""

from kbench.node.hollow import HollowNode

__all__ = ["HollowNode"]
