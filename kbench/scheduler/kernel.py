"""The compiled scheduling path: a pod's plan from the framework's plugins, run by the fused kernel.

Plugins whose per-node results are fixed for a pod (every filter but
NodeResourcesFit, the raw scores of every score plugin but the resource ones
and PodTopologySpread) are evaluated once per pod by their NumPy references;
the kernel then does the work that grows with the cluster and changes with
every bind: the resource fit, resource scoring, normalization over the scored
nodes, PodTopologySpread's weights, and selectHost. Pods with no dynamic plugin
(host ports, topology spread, inter-pod affinity) can be scheduled as a batch:
each run of pods of one spec in one kernel call that binds as it goes.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import groupby

import numpy as np

from kbench.api.core import Pod
from kbench.scheduler import _batch_kernels as kb
from kbench.scheduler import _kernels as k
from kbench.scheduler.framework import CycleResult, Framework, num_feasible_nodes_to_find
from kbench.scheduler.plugins import NORMALIZE_DEFAULT, NORMALIZE_NONE, NORMALIZE_REVERSE, SKIP, SUCCESS, Rejection
from kbench.scheduler.plugins.resources import LEAST
from kbench.scheduler.plugins.spread import HOSTNAME

_EMPTY = np.zeros(0, np.int64)


@dataclass
class Plan:
    """Everything the kernel needs to know about one pod."""

    static_ok: np.ndarray
    fit_on: bool
    fit_req: np.ndarray
    fit: tuple
    bal: tuple
    extra: tuple
    spread: tuple
    bind_req: np.ndarray
    bind_nonzero: np.ndarray
    dynamic: bool
    subset: np.ndarray | None
    """PreFilterResult nodes (None: all nodes)."""
    score_plugins: int = 0
    scans: tuple[str, ...] = ()

    def args(self) -> tuple:
        return (self.static_ok, self.fit_on, self.fit_req, *self.fit, *self.bal, *self.extra, *self.spread)

    def search(self) -> tuple[bool, np.ndarray]:
        """(restricted, subset) for the kernels."""
        return self.subset is not None, _EMPTY if self.subset is None else self.subset

    def static_scores(self) -> np.ndarray | None:
        """Per node, the weighted scores of the non-resource plugins, if they do not depend on which nodes
        are scored (each normalized plugin's raw score is the same on every statically feasible node);
        None otherwise. This is what makes a pod batchable by signature."""
        raw, norms, weights = self.extra
        total = np.zeros(len(self.static_ok), np.int64)
        for p in range(len(norms)):
            if norms[p] == NORMALIZE_NONE:
                total += weights[p] * raw[p]
                continue
            values = raw[p][self.static_ok]
            if len(values) and (values != values[0]).any():
                return None
            c = int(values[0]) if len(values) else 0
            if norms[p] == NORMALIZE_DEFAULT:
                total += weights[p] * (100 if c else 0)
            elif norms[p] == NORMALIZE_REVERSE:
                total += weights[p] * (0 if c else 100)
        return total


class KernelScheduler:
    """Schedules through the fused kernel, sharing ``framework``'s state, rotating index and selectHost stream."""

    def __init__(self, framework: Framework) -> None:
        self.fw = framework
        self.no_scoring = not framework.scorers
        self._plans: dict[str, Plan] = {}
        self._plans_version = -1

    @staticmethod
    def plan_key(pod: Pod) -> tuple[str, str]:
        """Pods with one key have one plan: the same spec and labels, and the same ``nodeName`` (which the
        signature leaves out and the NodeName filter reads)."""
        return pod.signature, pod.node_name

    def cached_plan(self, pod: Pod) -> Plan:
        """The pod's plan, reused for pods of one :meth:`plan_key` while nodes do not change; plans
        with dynamic plugins depend on every bind and are always rebuilt."""
        if self._plans_version != self.fw.state.node_version:
            self._plans.clear()
            self._plans_version = self.fw.state.node_version
        key = self.plan_key(pod)
        plan = self._plans.get(key)
        if plan is None:
            plan = self.plan(pod)
            if not plan.dynamic:
                self._plans[key] = plan
        return plan

    def _num_to_find(self, plan: Plan) -> int:
        n = self.fw.state.num_nodes if plan.subset is None else len(plan.subset)
        return 1 if self.no_scoring else num_feasible_nodes_to_find(self.fw.percentage, n)

    def plan(self, pod: Pod) -> Plan:
        """Evaluate the pod's fixed plugins; raises :class:`Rejection` if PreFilter rejects it."""
        fw, state = self.fw, self.fw.state
        n = state.num_nodes
        ctx = fw.prefilter(pod)
        static_ok = np.ones(n, bool)
        fit_on, fit_req, dynamic = False, np.zeros(len(state.resources), np.int64), False
        for plugin in fw.filters:
            c = ctx.get(plugin.name)
            if plugin.name == "NodeResourcesFit":
                fit_on, fit_req = True, c
                continue
            if c is SKIP:
                continue
            dynamic |= plugin.dynamic
            static_ok &= plugin.filter(c, pod) == SUCCESS
        every = np.arange(n)
        scans = {
            f"{p.name}/filter"
            for p in fw.filters
            if p.name in ("PodTopologySpread", "InterPodAffinity") and ctx.get(p.name) is not SKIP
        }
        fit = (np.int64(LEAST), _EMPTY, _EMPTY, _EMPTY, _EMPTY, np.zeros((1, 2), np.int64), np.int64(0))
        bal = (_EMPTY, _EMPTY, np.int64(0))
        raws, norms, weights, score_plugins = [], [], [], 0
        spread = (
            np.zeros((0, n), np.int64),
            np.zeros((0, 1), np.int64),
            np.zeros((0, n), np.int64),
            _EMPTY,
            _EMPTY,
            np.ones(n, bool),
            np.int64(0),
        )
        for plugin, weight in fw.scorers:
            if plugin.name == "NodeResourcesFit":
                t = plugin.prescore(pod, every)
                fit = (
                    np.int64(plugin.kind),
                    t.rows,
                    t.sources,
                    t.requests,
                    t.weights,
                    plugin.shape if len(plugin.shape) else np.zeros((1, 2), np.int64),
                    np.int64(weight),
                )
                score_plugins += 1
            elif plugin.name == "NodeResourcesBalancedAllocation":
                t = plugin.prescore(pod, every)
                if t is not SKIP:
                    bal = (t.rows, t.requests, np.int64(weight))
                    score_plugins += 1
            elif plugin.name == "PodTopologySpread":
                arrays = plugin.scoring_arrays(pod)
                if arrays is not SKIP:
                    dynamic = True
                    spread = self._spread(arrays, n, weight)
                    score_plugins += 1
                    scans.add(f"{plugin.name}/score")
            else:
                c = plugin.prescore(pod, every)
                if c is SKIP:
                    continue
                dynamic |= plugin.dynamic
                score_plugins += 1
                if plugin.name == "InterPodAffinity":
                    scans.add(f"{plugin.name}/score")
                raws.append(plugin.score(c, pod, every))
                norms.append(plugin.normalize)
                weights.append(weight)
        extra = (np.array(raws, np.int64).reshape(len(raws), n), np.array(norms, np.int64), np.array(weights, np.int64))
        nz = pod.nonzero_requests
        subset = fw.subset(ctx)[0]
        return Plan(
            static_ok,
            fit_on,
            fit_req,
            fit,
            bal,
            extra,
            spread,
            state.vector(pod.requests),
            np.array([nz.get("cpu", 0), nz.get("memory", 0)], np.int64),
            dynamic,
            subset,
            score_plugins,
            tuple(sorted(scans)),
        )

    @staticmethod
    def _spread(arrays, n: int, weight: int) -> tuple:
        constraints, has_keys, doms, counts, on_node = arrays
        width = max([len(c) for c in counts] + [1])
        cnt = np.zeros((len(counts), width), np.int64)
        for i, c in enumerate(counts):
            cnt[i, : len(c)] = c
        return (
            np.array(doms, np.int64).reshape(len(doms), n),
            cnt,
            np.array(on_node, np.int64).reshape(len(on_node), n),
            np.array([c.max_skew for c in constraints], np.int64),
            np.array([c.key == HOSTNAME for c in constraints], np.int64),
            has_keys,
            np.int64(weight),
        )

    def evaluate(self, pod: Pod, plan: Plan | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Every feasible node (in node order) and its total score as the kernel computes them; nothing
        changes (no rotation, no draw that the next cycle would see)."""
        state = self.fw.state
        n = state.num_nodes
        plan = plan or self.plan(pod)
        cand, totals = np.empty(n, np.int64), np.empty(n, np.int64)
        scratch, mark = np.empty((2, n), np.int64), np.zeros(max(plan.spread[1].shape[1], 1), np.int64)
        _, _, found = k.schedule_pod(
            state.allocatable,
            state.requested,
            state.nonzero,
            state.pod_count,
            *plan.args(),
            *plan.search(),
            0,
            n,
            self.fw.rng.copy(),
            cand,
            totals,
            scratch,
            mark,
            True,
        )
        return cand[:found].copy(), totals[:found].copy()

    def schedule(self, pod: Pod) -> CycleResult:
        """One scheduling cycle through the kernel (same result as ``Framework.schedule``); the state is unchanged."""
        fw, state = self.fw, self.fw.state
        n = state.num_nodes
        if n == 0:
            return CycleResult(None, "no nodes available to schedule pods")
        try:
            plan = self.cached_plan(pod)
        except Rejection as rejection:
            return CycleResult(
                None, f"0/{n} nodes are available: {'; '.join(rejection.reasons)}.", rejectors={rejection.plugin}
            )
        cand, totals = np.empty(n, np.int64), np.empty(n, np.int64)
        scratch, mark = np.empty((2, n), np.int64), np.zeros(max(plan.spread[1].shape[1], 1), np.int64)
        node, processed, found = k.schedule_pod(
            state.allocatable,
            state.requested,
            state.nonzero,
            state.pod_count,
            *plan.args(),
            *plan.search(),
            fw.next_start,
            self._num_to_find(plan),
            fw.rng,
            cand,
            totals,
            scratch,
            mark,
        )
        fw.next_start = (fw.next_start + processed) % n
        result = CycleResult(
            None if node < 0 else int(node),
            evaluated=int(processed),
            feasible=int(found),
            scored=int(found) if found > 1 else 0,
            score_plugins=plan.score_plugins,
            scans=plan.scans,
        )
        if node < 0:  # diagnose with the reference filters: upstream's message and the rejecting plugins
            ctx = fw.prefilter(pod)
            _, first, _ = fw.filter_all(pod, ctx)
            result.message, result.rejectors = fw.fit_error(pod, ctx, first), fw.rejectors(first, ctx)
        return result

    def schedule_batch(self, pods: list[Pod]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Schedule pods in queue order exactly as scheduling them one at a time would, binding each in the
        arrays and in the state.

        Each run of consecutive pods of one :meth:`plan_key` shares one plan and one kernel call: the
        O(log nodes) signature kernel when the plan allows it, else the per-pod kernel in a loop.

        Returns
        -------
        nodes, processed, found : numpy.ndarray
            Per pod; node -1 for the first pod that fits nowhere (or that PreFilter rejects), after which the
            rest are not attempted (-2).

        Raises
        ------
        ValueError
            Before any pod is placed, if one uses host ports, topology spread or inter-pod affinity (its plan
            changes with every bind): schedule those one by one.
        """
        m = len(pods)
        nodes, processed, found = np.full(m, -2, np.int64), np.zeros(m, np.int64), np.zeros(m, np.int64)
        runs, start, any_nodes = [], 0, self.fw.state.num_nodes > 0
        for _, run in groupby(pods, key=self.plan_key):
            end = start + sum(1 for _ in run)
            try:
                plan = self.cached_plan(pods[start]) if any_nodes else None
            except Rejection:
                plan = None
            if plan is not None and plan.dynamic:
                raise ValueError(
                    f"schedule_batch: pod {pods[start].key} uses host ports, topology spread or "
                    "inter-pod affinity; schedule it one by one"
                )
            runs.append((start, end, plan))
            start = end
        for start, end, plan in runs:
            if plan is None:  # rejected by PreFilter, or no nodes
                nodes[start] = -1
                break
            placed = self._place(pods[start:end], plan, nodes[start:end], processed[start:end], found[start:end])
            if placed < end - start:
                break
        return nodes, processed, found

    def _place(self, pods: list[Pod], plan: Plan, nodes: np.ndarray, processed: np.ndarray, found: np.ndarray) -> int:
        """Place pods of one plan (writing into the given views) and bind them; returns how many were placed."""
        fw, state = self.fw, self.fw.state
        arrays = (state.allocatable, state.requested, state.nonzero, state.pod_count)
        static = plan.static_scores() if plan.subset is None else None
        if static is not None:
            start, placed = kb.schedule_signature(
                *arrays,
                plan.static_ok,
                plan.fit_on,
                plan.fit_req,
                *plan.fit,
                *plan.bal,
                static,
                fw.next_start,
                self._num_to_find(plan),
                fw.rng,
                plan.bind_req,
                plan.bind_nonzero,
                nodes,
                processed,
                found,
            )
        else:
            start, placed = k.schedule_batch(
                *arrays,
                *plan.args(),
                *plan.search(),
                fw.next_start,
                self._num_to_find(plan),
                fw.rng,
                plan.bind_req,
                plan.bind_nonzero,
                nodes,
                processed,
                found,
            )
        fw.next_start = int(start)
        state.record_bound(pods[:placed], nodes[:placed])
        return int(placed)
