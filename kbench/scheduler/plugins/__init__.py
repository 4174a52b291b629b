"""kube-scheduler plugins, one per file named after upstream's package (``pkg/scheduler/framework/plugins/<dir>``).

Each follows its upstream counterpart at the pinned release, as a vectorized NumPy reference over
:class:`~kbench.scheduler.state.ClusterState` that also supplies its own inputs to the fused kernel (see
:class:`kbench.scheduler.interface.Plugin`). :mod:`kbench.scheduler.plugins.registry` lists them by name.
"""
