"""GPU-sharing scheduling lab: the openb traces replayed through the FGD paper's six policies.

:mod:`~kbench.gpushare.model` holds the cluster and pod requests, :mod:`~kbench.gpushare.config` the
KubeSchedulerConfiguration of a policy.
"""
