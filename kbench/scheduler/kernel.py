"""The compiled scheduling path: a pod's plan from the framework's plugins, run by the fused kernel.

Each plugin supplies its part of a pod's :class:`~kbench.scheduler.plan.KernelPlan`
(``Plugin.plan_filter`` / ``Plugin.plan_score``): plugins whose per-node results are
fixed for a pod are evaluated once per pod by their NumPy references; the kernel
then does the work that grows with the cluster and changes with every bind: the
resource fit, resource scoring, normalization over the scored nodes,
PodTopologySpread's weights, and selectHost. Pods with no dynamic plugin (host
ports, topology spread, inter-pod affinity) can be scheduled as a batch: each run
of pods of one spec in one kernel call that binds as it goes.
"""

from __future__ import annotations

import numpy as np

from kbench.api.core import Pod
from kbench.scheduler import _batch_kernels as kb
from kbench.scheduler import _kernels as k
from kbench.scheduler.framework import NO_NODES_AVAILABLE, CycleResult, Framework, num_feasible_nodes_to_find
from kbench.scheduler.interface import SKIP, Rejection
from kbench.scheduler.plan import BindRequest, Placements, Plan, PlanBuilder, Workspace, node_arrays, static_totals
from kbench.scheduler.plantable import diagnosis
from kbench.scheduler.state import ClusterState

PLAN_CACHE_SIZE = 256
"""Plans kept per scheduler. Each holds a few arrays of one value per node, and a cluster may run many distinct pod
specs: unbounded, the cache held every pod's plan (18 GB, still growing, when the 150,000-pod density run at 5,000
nodes was stopped, every pod's signature then being its own because of its token volume's name)."""


def bind_request(state: ClusterState, pod: Pod) -> BindRequest:
    """What binding ``pod`` adds to its node's columns."""
    nz = pod.nonzero_requests
    return BindRequest(state.vector(pod.requests), np.array([nz.get("cpu", 0), nz.get("memory", 0)], np.int64))


class KernelScheduler:
    """Schedules through the fused kernel, sharing ``framework``'s state, rotating index and selectHost stream."""

    def __init__(self, framework: Framework) -> None:
        self.fw = framework
        framework.planner = self.cached_plan  # the failed cycle's plan, reused by DefaultPreemption
        self.no_scoring = not framework.scorers
        self._plans: dict[tuple[str, str], Plan] = {}
        self._plans_version = -1
        self._work: Workspace | None = None

    @staticmethod
    def plan_key(pod: Pod) -> tuple[str, str]:
        """Pods with one key have one plan: the same spec and labels, and the same ``nodeName`` (which the
        signature leaves out and the NodeName filter reads)."""
        return pod.signature, pod.node_name

    @staticmethod
    def spec_key(pod: Pod) -> tuple:
        """A key that is equal only for pods of one :meth:`plan_key`, found without serializing the spec: the same
        spec mapping (pods made from one template share it; it is never modified), namespace, labels and
        ``nodeName``. Pods with equal plan keys may still differ here."""
        return id(pod.manifest.get("spec")), pod.namespace, pod.node_name, tuple(pod.labels.items())

    def cached_plan(self, pod: Pod) -> Plan:
        """The pod's plan, reused for pods of one :meth:`plan_key` while nodes do not change; plans
        with dynamic plugins depend on every bind and are always rebuilt. At most :data:`PLAN_CACHE_SIZE` plans
        are kept, the oldest dropped first."""
        if self._plans_version != self.fw.state.node_version:
            self._plans.clear()
            self._plans_version = self.fw.state.node_version
        key = self.plan_key(pod)
        plan = self._plans.get(key)
        if plan is None:
            plan = self.plan(pod)
            if not plan.dynamic:
                if len(self._plans) >= PLAN_CACHE_SIZE:  # the oldest goes (dicts keep insertion order)
                    del self._plans[next(iter(self._plans))]
                self._plans[key] = plan
        return plan

    def workspace(self, plan: Plan) -> Workspace:
        """Scratch arrays for a kernel call of ``plan``: one set, reused while the node and spread domain counts
        hold (the kernels write before they read it; ``mark`` is cleared before each use), instead of four
        allocations per pod."""
        n, domains = self.fw.state.num_nodes, max(plan.inputs.spread.counts.shape[1], 1)
        work = self._work
        if work is None or work.cand.shape[0] != n or work.mark.shape[0] != domains:
            work = self._work = Workspace.new(n, domains)
        return work

    def num_to_find(self, searched: int) -> int:
        """numFeasibleNodesToFind over ``searched`` nodes (1 when nothing is scored: the first feasible wins)."""
        return 1 if self.no_scoring else num_feasible_nodes_to_find(self.fw.percentage, searched)

    def _num_to_find(self, plan: Plan) -> int:
        subset = plan.subset
        return self.num_to_find(self.fw.state.num_nodes if subset is None else len(subset))

    def plan(self, pod: Pod) -> Plan:
        """Each enabled plugin's part of the pod's plan; raises :class:`Rejection` if PreFilter rejects it."""
        fw, state = self.fw, self.fw.state
        ctx = fw.prefilter(pod)
        builder = PlanBuilder(state.num_nodes, len(state.resources))
        scans = set()
        for plugin in fw.filters:
            c = ctx.get(plugin.name)
            if c is SKIP:
                continue
            plugin.plan_filter(c, pod, builder)
            if "filter" in plugin.walks:
                scans.add(f"{plugin.name}/filter")
        score_plugins = 0
        for plugin, weight in fw.scorers:
            if plugin.plan_score(pod, weight, builder):
                score_plugins += 1
                if "score" in plugin.walks:
                    scans.add(f"{plugin.name}/score")
        inputs = builder.build(fw.subset(ctx)[0])
        return Plan(inputs, bind_request(state, pod), builder.dynamic, score_plugins, tuple(sorted(scans)))

    def evaluate(self, pod: Pod, plan: Plan | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Every feasible node (in node order) and its total score as the kernel computes them; nothing
        changes (no rotation, no draw that the next cycle would see)."""
        state = self.fw.state
        plan = plan or self.plan(pod)
        work = self.workspace(plan)
        _, _, found = k.schedule_pod(
            node_arrays(state), plan.inputs, 0, state.num_nodes, self.fw.rng.copy(), work, True
        )
        return work.cand[:found].copy(), work.totals[:found].copy()

    def schedule(self, pod: Pod) -> CycleResult:
        """One scheduling cycle through the kernel (same result as ``Framework.schedule``); the state is unchanged."""
        fw, state = self.fw, self.fw.state
        n = state.num_nodes
        if n == 0:
            return CycleResult(None, NO_NODES_AVAILABLE)
        try:
            plan = self.cached_plan(pod)
        except Rejection as rejection:
            return CycleResult.rejected(n, rejection)
        if fw.nominator.any_for(pod) or fw.nominator.node_of(pod.key) is not None:
            return self._with_nominated(pod, plan)
        node, processed, found = k.schedule_pod(
            node_arrays(state), plan.inputs, fw.next_start, self._num_to_find(plan), fw.rng, self.workspace(plan)
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
        if node < 0:
            result.message, result.rejectors = self._diagnose(pod, plan)
        return result

    def _with_nominated(self, pod: Pod, plan: Plan) -> CycleResult:
        """A cycle that nominated pods take part in (RunFilterPluginsWithNominatedPods, evaluateNominatedNode):
        through the reference, which shares the rotating start and selectHost's stream; the plan's counts price it."""
        result = self.fw.schedule(pod)
        result.score_plugins, result.scans = plan.score_plugins, plan.scans
        return result

    def _diagnose(self, pod: Pod, plan: Plan) -> tuple[str, set[str]]:
        """Upstream's FitError message and the rejecting plugins: counted in the kernel when every node is
        searched, else with the reference filters (a PreFilterResult's message names the narrowing plugins)."""
        if plan.subset is None:
            return diagnosis(self.fw, pod, plan)
        fw = self.fw
        ctx = fw.prefilter(pod)
        _, first, _ = fw.filter_all(pod, ctx)
        return fw.fit_error(pod, ctx, first), fw.rejectors(first, ctx)

    def _runs(self, pods: list[Pod]) -> list[tuple[int, int, Plan | None]]:
        """(start, end, plan) of each run of consecutive pods of one :meth:`plan_key` (plan None: rejected by
        PreFilter, or no nodes); raises ValueError at the first dynamic plan."""
        runs: list[tuple[int, int, Plan | None]] = []
        any_nodes = self.fw.state.num_nodes > 0
        for start, end in self._groups(pods):
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
        return runs

    def _groups(self, pods: list[Pod]) -> list[tuple[int, int]]:
        """(start, end) of each run of consecutive pods of one :meth:`plan_key`; the plan key is computed only where
        the :meth:`spec_key` changes."""
        bounds: list[int] = []
        last_spec: tuple | None = None
        last_plan: tuple[str, str] | None = None
        for i, pod in enumerate(pods):
            spec = self.spec_key(pod)
            if spec == last_spec:
                continue
            last_spec, plan = spec, self.plan_key(pod)
            if plan != last_plan:
                bounds.append(i)
                last_plan = plan
        bounds.append(len(pods))
        return list(zip(bounds[:-1], bounds[1:]))

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
        out = Placements(np.full(m, -2, np.int64), np.zeros(m, np.int64), np.zeros(m, np.int64))
        for start, end, plan in self._runs(pods):
            if plan is None:
                out.nodes[start] = -1
                break
            window = Placements(out.nodes[start:end], out.processed[start:end], out.found[start:end])
            if self._place(pods[start:end], plan, window) < end - start:
                break
        return out.nodes, out.processed, out.found

    def _place(self, pods: list[Pod], plan: Plan, out: Placements) -> int:
        """Place pods of one plan (writing into ``out``, views of the batch's arrays) and bind them; returns how
        many were placed."""
        fw, state = self.fw, self.fw.state
        nodes, num_to_find = node_arrays(state), self._num_to_find(plan)
        static = static_totals(plan.inputs) if plan.subset is None else None
        if static is not None:
            start, placed = kb.schedule_signature(
                nodes, plan.inputs, static, fw.next_start, num_to_find, fw.rng, plan.bind, out
            )
        else:
            start, placed = k.schedule_batch(
                nodes, plan.inputs, fw.next_start, num_to_find, fw.rng, plan.bind, self.workspace(plan), out
            )
        fw.next_start = int(start)
        state.record_bound(pods[:placed], out.nodes[:placed])
        return int(placed)
