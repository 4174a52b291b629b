"""Published cluster traces read into kbench objects (``openb``: Alibaba's GPU cluster trace)."""

from kbench.traces.openb import TraceError, data_dir, read_nodes, read_pods

__all__ = ["TraceError", "data_dir", "read_nodes", "read_pods"]
