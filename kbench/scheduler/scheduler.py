"""kube-scheduler on the engine: the queue, one scheduling cycle at a time, assume, then asynchronous binding.

Each cycle makes the real decision (the fused kernel over the current state,
assumed pods included) and takes simulated time from the work it did, counted
by the algorithm and priced by the profile's ``scheduler`` section::

    cycle = cycle_overhead + filter_per_node x nodes processed
            + score_per_node x nodes scored x score plugins that ran
            + spread_filter_per_node / spread_score_per_node / interpod_per_node x all nodes,
              for each PreFilter / PreScore of those plugins that walks them

Binding goes through ``binder(pod, node_name) -> Event`` (the apiserver, when
there is one); the default waits ``bind_latency``. A pod counts as scheduled
when its binding completes (``spec.nodeName`` set), as scheduler_perf counts.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

from kbench.api.core import Node, Pod
from kbench.profiles import Profile, UnitCosts
from kbench.scheduler.config import SchedulerConfig
from kbench.scheduler.framework import NO_NODES_AVAILABLE, CycleResult, Framework
from kbench.scheduler.kernel import KernelScheduler
from kbench.scheduler.plugins.registry import REGISTRY
from kbench.scheduler.queue import SchedulingQueue
from kbench.scheduler.state import ClusterState
from kbench.sim import Engine, Event, Streams
from kbench.sim.busy import BusyTime


@dataclass
class Costs(UnitCosts):
    """Unit costs of a scheduling cycle (seconds), from a profile's ``scheduler`` section."""

    section: ClassVar[str] = "scheduler"

    cycle_overhead: float
    filter_per_node: float
    score_per_node: float
    spread_filter_per_node: float
    spread_score_per_node: float
    interpod_per_node: float
    bind_latency: float

    def walk_cost(self, scan: str) -> float:
        """Per node cost of a ``"<plugin>/<filter|score>"`` walk: the unit cost its plugin's ``walks`` names."""
        plugin, point = scan.split("/")
        return float(getattr(self, REGISTRY[plugin].walks[point]))

    def parts(self, result: CycleResult, num_nodes: int) -> dict[str, float]:
        """Simulated duration of one scheduling cycle, by what it was spent on."""
        parts = {
            "overhead": self.cycle_overhead,
            "filter": self.filter_per_node * result.evaluated,
            "score": self.score_per_node * result.scored * result.score_plugins,
        }
        for scan in result.scans:
            parts[scan] = self.walk_cost(scan) * num_nodes
        return parts

    def cycle(self, result: CycleResult, num_nodes: int) -> float:
        """Simulated duration of one scheduling cycle from the work it did."""
        return sum(self.parts(result, num_nodes).values())


@dataclass
class PodRecord:
    """One pod's scheduling history (virtual seconds)."""

    created: float
    attempts: int = 0
    assumed: float | None = None
    bound: float | None = None
    node: str | None = None
    message: str = ""
    nominated: str | None = None
    """The node a preemption nominated it to (status.nominatedNodeName)."""
    preempted: bool = False
    """It was a preemption's victim."""


@dataclass
class SchedulerStats:
    """What the scheduler did: per pod times, and the measured wall time of its decisions."""

    pods: dict[str, PodRecord] = field(default_factory=dict)
    cycles: int = 0
    failed_cycles: int = 0
    decision_wall_seconds: float = 0.0
    preemption_attempts: int = 0
    """PostFilter runs (a cycle found no node)."""
    preemptions: int = 0
    """PostFilter successes: a node nominated and its victims evicted."""
    victims: int = 0
    """Pods evicted by preemption."""
    cost_parts: dict[str, float] = field(default_factory=dict)
    """Simulated seconds of all cycles, by what they were spent on (see :meth:`Costs.parts`)."""

    def bound_times(self) -> list[float]:
        """Bind completion times of the bound pods, sorted."""
        return sorted(r.bound for r in self.pods.values() if r.bound is not None)


class Scheduler:
    """A kube-scheduler instance on ``engine`` over a :class:`ClusterState`.

    Parameters
    ----------
    engine : Engine
    state : ClusterState
        Nodes and bound pods (shared with whoever adds nodes).
    config : SchedulerConfig, optional
        KubeSchedulerConfiguration (default: all defaults).
    profile : Profile, optional
        Calibration profile for the cycle costs.
    streams : Streams, optional
        selectHost draws from the stream ``scheduler/select``.
    binder : callable, optional
        ``binder(pod, node_name) -> Event``, what DefaultBinder requests; default: a fixed ``bind_latency``.
    default_selector : callable, optional
        ``pod -> labelSelector`` of its Services and controllers (PodTopologySpread's system defaults).
    preempter : callable, optional
        ``preempter(victim, preemptor, node_name) -> Event``, the API calls that evict a victim (PreemptPod); default:
        the victim leaves the state after ``bind_latency`` (a Pod Delete event), as with no kubelet to wait for.
    pdbs : callable, optional
        ``() -> list of PodDisruptionBudget``, the budgets preemption respects (default: none).
    """

    def __init__(
        self,
        engine: Engine,
        state: ClusterState,
        config: SchedulerConfig | None = None,
        profile: Profile | None = None,
        streams: Streams | None = None,
        binder: Callable[[Pod, str], Event] | None = None,
        default_selector: Callable[[Pod], dict | None] | None = None,
        preempter: Callable[[Pod, Pod, str], Event] | None = None,
        pdbs: Callable[[], list] | None = None,
    ) -> None:
        config = config or SchedulerConfig()
        streams = streams or Streams(0)
        self.engine, self.state = engine, state
        self.costs = Costs.from_profile(profile)
        self.binder = binder or self._direct_bind
        seed = int(streams("scheduler/select").integers(2**63))
        pct = config.percentage_of_nodes_to_score
        self.framework = Framework(config.profile(), state, pct, seed, default_selector, self.binder, pdbs)
        self.preempter = preempter or self._direct_preempt
        self.preempting: dict[str, str | None] = {}
        """Pods whose victims are being evicted (asynchronous preemption) -> the last victim once it is asked."""
        self.kernel = KernelScheduler(self.framework)
        self.queue = self._queue(config)
        self.stats = SchedulerStats()
        self.busy = BusyTime()
        """When the scheduling loop was busy with a cycle (the ResourceUsageSummary's kube-scheduler CPU)."""
        self.on_bound: Callable[[Pod, str], None] | None = None
        self.on_unschedulable: Callable[[Pod, str, str | None], None] | None = None
        """Called when a cycle finds no node (handleSchedulingFailure) with the pod, upstream's message and the
        nominatedNodeName to write (None: leave it; "": clear it)."""
        self.on_nomination_cleared: Callable[[Pod], None] | None = None
        """Called with a lower-priority pod whose nomination a preemption on its node cleared
        (clearNominatedNodeName)."""
        engine.process(self._loop(), name="kube-scheduler")

    def _queue(self, config: SchedulerConfig) -> SchedulingQueue:
        """The scheduling queue, ordered by the profile's QueueSort plugin, with the configured backoffs."""
        initial, maximum = float(config.pod_initial_backoff_seconds), float(config.pod_max_backoff_seconds)
        queue = SchedulingQueue(self.engine, initial, maximum, self.framework.queue_sort.sort_key)
        queue.gate = self.running_preemption
        return queue

    # -- cluster events -------------------------------------------------------------
    def add_pod(self, pod: Pod) -> None:
        """A new pending pod."""
        self.stats.pods[pod.key] = PodRecord(self.engine.now)
        self.queue.add(pod)

    def add_nodes(self, nodes: list[Node]) -> None:
        """Nodes join (NodeAdd events move pods waiting for room)."""
        self.state.add_nodes(nodes)
        self.queue.on_event("Node", "Add")

    def delete_pod(self, key: str) -> None:
        """A pod goes away: bound ones free their node (PodDelete), pending ones leave the queue."""
        self.framework.nominator.delete(key)
        if key in self.state.pods:
            self.state.remove(key)
            self.queue.on_event("Pod", "Delete")
        else:
            self.queue.delete(key)

    # -- the scheduling loop ------------------------------------------------------------
    def _loop(self):
        while True:
            queued = yield self.queue.pop()
            pod = queued.pod
            record = self.stats.pods.setdefault(pod.key, PodRecord(self.engine.now))
            record.attempts += 1
            started = time.perf_counter()
            result = self.kernel.schedule(pod)
            if result.node is not None:
                self.state.bind(pod, result.node)  # assume: the next cycle sees it
                self.framework.nominator.delete(pod.key)
                preempted = None
            else:
                preempted = self._post_filter(pod, result)
            self.stats.decision_wall_seconds += time.perf_counter() - started
            self.stats.cycles += 1
            parts = self.costs.parts(result, self.state.num_nodes)
            if preempted is not None:
                parts["preemption"] = self.costs.filter_per_node * preempted.evaluations
            for name, seconds in parts.items():
                self.stats.cost_parts[name] = self.stats.cost_parts.get(name, 0.0) + seconds
            cycle = sum(parts.values())
            self.busy.add(self.engine.now, self.engine.now + cycle)
            yield cycle
            if result.node is None:
                self.stats.failed_cycles += 1
                record.message = result.message
                self.queue.add_unschedulable(queued, result.rejectors)
                nominating = None if preempted is None else preempted.node
                if nominating:
                    self._nominate(pod, preempted, record)
                if self.on_unschedulable is not None:
                    self.on_unschedulable(pod, result.message, nominating)
                continue
            record.assumed = self.engine.now
            name = self.state.nodes[result.node].name
            self.engine.process(self._bind(pod, name, record), name=f"bind/{pod.key}")

    # -- preemption ---------------------------------------------------------------------------------------------
    def _post_filter(self, pod: Pod, result: CycleResult):
        """RunPostFilterPlugins after a FitError: the preemption outcome; its message joins the cycle's
        (FitError.Error appends the PostFilter message as " <message>.")."""
        if not self.framework.post_filters or result.message == NO_NODES_AVAILABLE:
            return None
        self.stats.preemption_attempts += 1
        outcome = self.framework.post_filters[0].post_filter(pod, self.engine.now)
        if outcome.message:
            result.message += f" {outcome.message}."
        if outcome.node == "":
            self.framework.nominator.delete(pod.key)
        return outcome

    def _nominate(self, pod: Pod, outcome, record: PodRecord) -> None:
        """prepareCandidateAsync: nominate the pod, clear the nominations of lower-priority pods on the node, and
        evict the victims in the background."""
        nominator, node = self.framework.nominator, self.state.index[outcome.node]
        for other in nominator.on_node(node):
            if other.priority < pod.priority:
                nominator.delete(other.key)
                self.queue.activate(other.key)
                if self.on_nomination_cleared is not None:
                    self.on_nomination_cleared(other)
        self.framework.nominate(pod, node)
        record.nominated = outcome.node
        self.stats.preemptions += 1
        victims = [v for v in outcome.victims if not v.terminating]  # those terminating already are not evicted again
        self.stats.victims += len(victims)
        if victims:
            self.preempting[pod.key] = None
            self.engine.process(self._evict(pod, victims, outcome.node), name=f"preempt/{pod.key}")

    def _evict(self, pod: Pod, victims: list[Pod], node: str):
        """The preemption goroutine: every victim but the last in parallel, then the last."""
        yield from [self.preempter(v, pod, node) for v in victims[:-1]]  # all asked at once, then awaited
        self.preempting[pod.key] = victims[-1].key
        yield self.preempter(victims[-1], pod, node)
        self.preempting.pop(pod.key, None)  # as upstream's set: a later preemption's goroutine may have ended it

    def running_preemption(self, pod: Pod) -> bool:
        """IsPodRunningPreemption (DefaultPreemption's PreEnqueue gate): its victims are still being evicted."""
        if pod.key not in self.preempting:
            return False
        last = self.preempting[pod.key]
        if last is None:
            return True
        bound = self.state.pods.get(last)
        return bound is not None and not bound.pod.terminating

    def mark_preempted(self, victim: Pod) -> None:
        """Record that ``victim`` was evicted by a preemption."""
        record = self.stats.pods.get(victim.key)
        if record is not None:
            record.preempted = True

    def _direct_preempt(self, victim: Pod, preemptor: Pod, node: str) -> Event:
        """The victim is gone after one API round trip (no kubelet to wait for)."""
        done = self.engine.event()

        def gone(_):
            self.mark_preempted(victim)
            if victim.key in self.state.pods:
                self.delete_pod(victim.key)
            done.succeed()

        self.engine.schedule(self.costs.bind_latency, gone)
        return done

    def _bind(self, pod: Pod, node: str, record: PodRecord):
        yield self.framework.bind(pod, node)
        record.bound, record.node = self.engine.now, node
        if self.on_bound is not None:
            self.on_bound(pod, node)

    def _direct_bind(self, pod: Pod, node: str) -> Event:
        return self.engine.timeout(self.costs.bind_latency)
