"""The plans of many pods stacked into one :class:`~kbench.scheduler.plan.PlanTable`, and the diagnosis of a pod
that fits nowhere counted in the kernel (``_batch_kernels.diagnose``) with upstream's FitError message built once.

Upstream's Diagnosis holds each node's status from its first failing filter (``schedule_one.go``
findNodesThatFitPod); FitError.Error() folds them into ``0/N nodes are available: <count> <reason>, ...``.
The filters evaluated once for a pod (its plan's static mask) are evaluated again here per plugin for the
nodes they fail, once per plan; NodeResourcesFit, which changes with every bind, is diagnosed in the kernel.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from kbench.api.core import Pod
from kbench.scheduler import _batch_kernels as kb
from kbench.scheduler.framework import Framework
from kbench.scheduler.interface import SKIP, SUCCESS, fit_error_message
from kbench.scheduler.plan import Plan, PlanTable, node_arrays, static_totals

FIT = "NodeResourcesFit"
TREE_CELLS = 2**23
"""At most this many cells per signature-tree array (3 arrays of int64: 192 MiB); plans beyond are scored node by
node (the same placements)."""


def diagnosis(fw: Framework, pod: Pod, plan: Plan) -> tuple[str, set[str]]:
    """Upstream's FitError message and the rejecting plugins (Diagnosis.UnschedulablePlugins) of a pod that fits
    nowhere, its per-node statuses counted in the kernel (``plan`` searches every node)."""
    state = fw.state
    table, reasons = plan_table(fw, [(plan, pod)])
    resources = len(state.resources)
    row = np.zeros(resources + len(reasons), np.int64)
    kb.diagnose(node_arrays(state), table, 0, plan.inputs, row)
    rejectors = {reasons[k][0] for k in np.flatnonzero(row[resources:]).tolist()}
    if row[:resources].any():
        rejectors.add(FIT)
    return message(state, reasons, row), rejectors


def message(state, reasons: list[tuple[str, tuple[str, ...]]], row: np.ndarray) -> str:
    """Upstream's FitError message from the kernel's diagnosis counts."""
    counts: Counter[str] = Counter()
    resources = len(state.resources)
    for r in np.flatnonzero(row).tolist():
        if r >= resources:
            for reason in reasons[r - resources][1]:
                counts[reason] += int(row[r])
        else:
            name = state.resources[r]
            counts["Too many pods" if name == "pods" else f"Insufficient {name}"] += int(row[r])
    return fit_error_message(state.num_nodes, counts)


def static_failures(fw: Framework, pod: Pod, plan: Plan) -> tuple[np.ndarray, list]:
    """The nodes that fail a filter evaluated once for the pod (upstream's per-node status of the first failing
    filter): per node, whether that filter comes before NodeResourcesFit in the profile (its reasons win over
    Fit's), and ``[(node, plugin, reasons), ...]``."""
    n = fw.state.num_nodes
    if plan.inputs.static_ok.all():
        return np.zeros(n, bool), []
    first = np.full(n, -1, np.int64)
    names = [plugin.name for plugin in fw.filters]
    fit_at = names.index(FIT) if FIT in names else len(names)
    ctx = fw.prefilter(pod)
    for j, plugin in enumerate(fw.filters):
        c = ctx.get(plugin.name)
        if plugin.name == FIT or c is SKIP:
            continue
        fresh = (first < 0) & (plugin.filter(c, pod) != SUCCESS)
        first[fresh] = j
    failing = np.flatnonzero(first >= 0).tolist()
    found = [(i, names[first[i]], fw.filters[first[i]].reasons(ctx.get(names[first[i]]), pod, i)) for i in failing]
    return (first >= 0) & (first < fit_at), found


def plan_table(fw: Framework, plans: list[tuple[Plan, Pod]]) -> tuple[PlanTable, list]:
    """The plans stacked into one :class:`PlanTable`, and the (plugin, reason strings) of each static failure id."""
    state, count = fw.state, len(plans)
    n, resources = state.num_nodes, len(state.resources)
    inputs = [plan.inputs for plan, _ in plans]
    terms = max([len(x.fit_score.rows) for x in inputs] + [len(x.balanced.rows) for x in inputs] + [0])
    scores = max([len(x.scores.weight) for x in inputs] + [0])
    t = _Stacker(count, n, resources, terms, scores)
    reason_ids: dict[tuple[str, tuple[str, ...]], int] = {}
    trees, max_trees = 0, max(1, TREE_CELLS // (2 * int(kb.tree_size(n))))
    for p, (plan, pod) in enumerate(plans):
        x = inputs[p]
        static = static_totals(x)
        if static is not None and trees < max_trees:
            t.tree[p], t.static_add[p] = trees, static
            trees += 1
        t.fill(p, plan)
        before, found = static_failures(fw, pod, plan)
        t.before_fit[p] = before
        for i, plugin, reasons in found:
            t.reason[p, i] = reason_ids.setdefault((plugin, reasons), len(reason_ids))
    fit = inputs[0].fit_score if inputs else None
    kind = np.int64(fit.kind if fit else 0)
    shape = fit.shape if fit else np.zeros((1, 2), np.int64)
    return t.table(kind, shape), list(reason_ids)


class _Stacker:
    """The arrays of a :class:`PlanTable` while plans are written into their rows."""

    def __init__(self, count: int, n: int, resources: int, terms: int, scores: int) -> None:
        def ints(*shape):
            return np.zeros(shape, np.int64)

        self.static_ok, self.tree, self.static_add = np.zeros((count, n), bool), np.full(count, -1), ints(count, n)
        self.fit_on, self.fit_request, self.fit_weight = np.zeros(count, bool), ints(count, resources), ints(count)
        self.fit_terms, self.fit = ints(count), [ints(count, terms) for _ in range(4)]
        self.bal_terms, self.bal_rows, self.bal_requests, self.bal_weight = (
            ints(count), ints(count, terms), ints(count, terms), ints(count)
        )  # fmt: skip
        self.raw, self.normalize, self.weight = ints(count, scores, n), ints(count, scores), ints(count, scores)
        self.bind_requests, self.bind_nonzero = ints(count, resources), ints(count, 2)
        self.reason, self.before_fit = np.full((count, n), -1, np.int64), np.zeros((count, n), bool)

    def fill(self, p: int, plan: Plan) -> None:
        """Row ``p`` from ``plan``."""
        x = plan.inputs
        self.static_ok[p] = x.static_ok
        self.fit_on[p], self.fit_request[p] = x.fit_filter.on, x.fit_filter.request
        f = x.fit_score
        self.fit_terms[p], self.fit_weight[p] = len(f.rows), f.weight
        for column, values in zip(self.fit, (f.rows, f.sources, f.requests, f.weights)):
            column[p, : len(values)] = values
        b = x.balanced
        self.bal_terms[p], self.bal_weight[p] = len(b.rows), b.weight
        self.bal_rows[p, : len(b.rows)], self.bal_requests[p, : len(b.rows)] = b.rows, b.requests
        s = x.scores
        k = len(s.weight)
        self.raw[p, :k], self.normalize[p, :k], self.weight[p, :k] = s.raw, s.normalize, s.weight
        self.bind_requests[p], self.bind_nonzero[p] = plan.bind.requests, plan.bind.nonzero

    def table(self, kind: np.int64, shape: np.ndarray) -> PlanTable:
        """The finished table (the profile's Fit strategy ``kind`` and ``shape``)."""
        rows, sources, requests, weights = self.fit
        return PlanTable(
            self.static_ok, self.tree, self.static_add, self.fit_on, self.fit_request, kind, shape, self.fit_weight,
            self.fit_terms, rows, sources, requests, weights, self.bal_terms, self.bal_rows, self.bal_requests,
            self.bal_weight, self.raw, self.normalize, self.weight, self.bind_requests, self.bind_nonzero,
            self.reason, self.before_fit,
        )  # fmt: skip
