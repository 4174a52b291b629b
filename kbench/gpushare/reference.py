"""The plain reference of the FGD paper simulator's scheduling: Python that mirrors its Go code line by line.

Every function names the Go file and function it follows (``hkust-adsl/kubernetes-scheduler-simulator`` at commit
8f3d641): the same objects, loops, float operations in the same order, and Go's integer arithmetic (``int64``
division and ``int64(float)`` both truncate toward zero). It is the ground truth of the compiled kernel and the
benchmark's plain reference, so it favours clarity over speed.

Randomness is kbench's, not Go's ``math/rand``: each pod brings two uniforms ``u = (u_random, u_gpu)`` in [0, 1).
RandomScore's PreScore gives MaxNodeScore to ``feasible[int(u_random * len(feasible))]``; the ``random`` GPU
selection takes ``fitting[int(u_gpu * len(fitting))]`` among the GPUs that fit, in index order. ``selectHost`` is the
repository's fork's: among the best-scored feasible nodes, the one of the smallest name, which ``simulator.go``
``syncClusterResourceList`` prefixes with a ``rand.Perm`` index, so a run's ``tie_rank`` is a node order drawn
once (index order when none is given).

A Go Score plugin that returns an error status (BestFit's "free resource not enough", GpuPacking's failed
allocation, a node the pod may not use) fails the pod's whole scheduling cycle (``RunScorePlugins``); here it
raises :class:`ScoreError`, and :meth:`ReferenceScheduler.schedule` turns it into an unscheduled pod.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from kbench.gpushare import config, model
from kbench.gpushare.model import MAX_SPEC_CPU, MAX_SPEC_GPU, MILLI, POD_LIMIT

MAX_NODE_SCORE = 100
"""``framework.MaxNodeScore``."""
MIN_NODE_SCORE = 0
"""``framework.MinNodeScore``."""
SHARE_GPU_TAG = "share-gpu"
"""``gpushareutils.ShareGpuTag``; an n-GPU pod's tag is ``"<n>-gpu"``, a CPU pod has none (``NoGpuTag``)."""
DEFAULT_POPULARITY_THRESHOLD = 60
"""``simontype.DefaultTypicalPodPopularityThreshold``, used when the threshold is not positive."""
DEFAULT_INCREASE_STEP = 10
"""``simontype.DefaultTypicalPodIncreaseStep``, used when the step is not positive."""

Q1_LACK_BOTH, Q2_LACK_GPU, Q3_SATISFIED, Q4_LACK_CPU, XL_SATISFIED, XR_LACK_CPU, NO_ACCESS = range(7)
"""``utils.FragRatioDataMap``: the index of each fragment category in a FragAmount's data."""

PodResourceKey = tuple[int, int, int, str]
"""``simontype.PodResource``: (milli-CPU (non-zero), milli-GPU per GPU, GPU count, GPU type)."""
TypicalPod = tuple[PodResourceKey, float]
"""``simontype.TargetPod``: a pod resource and its share of the workload."""


class ScoreError(Exception):
    """A Score plugin returned an error status; Go's ``RunScorePlugins`` then fails the pod's scheduling cycle."""


@dataclass
class NodeResource:
    """``pkg/type/resource.go`` ``NodeResource`` (``utils.GetNodeResourceViaNodeInfo``) plus what the fit filter reads.

    ``cpu_left`` is allocatable milli-CPU minus the real CPU requests of the node's pods; ``gpu_left[i]`` is GPU
    ``i``'s milli left; ``affinity`` counts the node's pods by GPU tag, holding only tags with a positive count.
    """

    cpu_left: int
    cpu_capacity: int
    memory_left: int
    pods_left: int
    gpu_left: list[int]
    model: str
    affinity: dict[str, int] = field(default_factory=dict)

    def copy(self) -> NodeResource:
        """``NodeResource.Copy`` (whose affinity map is shared; here it is copied too, which no caller can tell)."""
        return NodeResource(
            self.cpu_left,
            self.cpu_capacity,
            self.memory_left,
            self.pods_left,
            list(self.gpu_left),
            self.model,
            dict(self.affinity),
        )

    @property
    def gpu_number(self) -> int:
        """``GpuNumber``: the node's GPU count."""
        return len(self.gpu_left)

    def total_gpu_left(self) -> int:
        """``GetTotalMilliGpuLeft`` / ``utils.GetGpuMilliLeftTotal``."""
        total = 0
        for left in self.gpu_left:
            total += left
        return total

    def fully_free_gpus(self) -> int:
        """``GetFullyFreeGpuNum``."""
        free = 0
        for left in self.gpu_left:
            if left == MILLI:
                free += 1
        return free

    def tightest_gpus_first(self) -> list[int]:
        """``SortedMilliGpuLeftIndexList(true)``: GPU indices by increasing milli left, stable."""
        return sorted(range(len(self.gpu_left)), key=lambda i: self.gpu_left[i])


def new_nodes(nodes: model.Nodes) -> list[NodeResource]:
    """Empty nodes as ``utils.GetNodeResourceViaNodeInfo`` sees them (``getGpuMilliLeftListOnNode``: every GPU at
    ``MILLI``; a node without GPUs has an empty list)."""
    return [
        NodeResource(
            int(nodes.cpu[i]),
            int(nodes.cpu[i]),
            int(nodes.memory[i]),
            POD_LIMIT,
            [MILLI] * int(nodes.gpus[i]),
            nodes.models[i],
        )
        for i in range(len(nodes))
    ]


def go_div(a: int, b: int) -> int:
    """Go's ``int64`` division: truncates toward zero."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def go_fdiv(a: float, b: float) -> float:
    """Go's ``float64`` division, which gives ±Inf or NaN where Python raises."""
    if b != 0:
        return a / b
    if a == 0 or math.isnan(a):
        return math.nan
    return math.copysign(math.inf, a) * math.copysign(1.0, b)


def pod_resource(pod: model.PodSpec) -> PodResourceKey:
    """``utils.GetPodResource``: the non-zero CPU request (``GetNonzeroRequests``) and the GPU annotations."""
    return (pod.nonzero_cpu, pod.milli, pod.gpus, pod.models)


def gpu_affinity(pod: model.PodSpec) -> str | None:
    """``gpushareutils.GetGpuAffinityFromPodAnnotation`` (``None`` for ``NoGpuTag``); it panics on a multi-GPU
    pod that shares GPUs."""
    if pod.gpus == 0:
        return None
    if pod.gpus == 1 and pod.milli < MILLI:
        return SHARE_GPU_TAG
    if pod.gpus >= 1 and pod.milli == MILLI:
        return f"{pod.gpus}-gpu"
    raise ValueError(f"unknown gpu affinity, gpu count = {pod.gpus}, gpu milli = {pod.milli}")


# --- typical pods and fragmentation (pkg/utils/frag.go) ------------------------------------------------------------


def typical_pods(
    pods: list[model.PodSpec], threshold: int = 95, step: int = 1, cpu_pods: bool = True
) -> list[TypicalPod]:
    """``utils.GetTypicalPods`` with ``gpuResWeight`` 0 (the run scripts' ``typicalPodsConfig``).

    Counts pods by resource, sorts them by decreasing count (``SortTargetPodInDecreasingCount``: ``sort.Reverse``
    of ``TargetPodList.Less``, so equal counts go by decreasing ``PodResource.Less``), takes ``step`` specs at a
    time until their count reaches ``threshold`` percent, and normalises as Go does: each share first to
    ``count / total``, then, if the list was cut, divided by ``cum / total``.
    """
    counts: dict[PodResourceKey, float] = {}
    total = 0.0
    for pod in pods:
        key = pod_resource(pod)
        if not cpu_pods and key[2] == 0:
            continue
        counts[key] = counts.get(key, 0.0) + 1.0
        total += 1.0
    ordered = sorted(counts.items(), key=lambda kv: (kv[1], kv[0]), reverse=True)
    keys = [key for key, _ in ordered]
    shares = [count for _, count in ordered]
    expected = float(threshold if threshold > 0 else DEFAULT_POPULARITY_THRESHOLD) * total / 100.0
    if expected > total:
        raise ValueError(f"typical pods: threshold {threshold} is over 100 (Go loops forever)")
    i = size = 0
    cum = 0.0
    while cum < expected:
        size += step if step > 0 else DEFAULT_INCREASE_STEP
        while i < size and i < len(shares):
            cum += shares[i]
            shares[i] = shares[i] / total
            i += 1
    if i >= len(shares):
        return list(zip(keys, shares, strict=True))
    return [(keys[j], shares[j] / (cum / total)) for j in range(i)]


def is_accessible(node_model: str, pod_models: str) -> bool:
    """``utils.IsNodeAccessibleToPodByType``: the pod names no model, or the node's model is one of its
    ``|``-separated models (a node without a model is a CPU node)."""
    if not pod_models:
        return True
    if not node_model:
        return False
    named = 0
    for wanted in pod_models.split("|"):
        if not wanted:
            continue
        named += 1
        if wanted == node_model:
            return True
    return named == 0


def can_host_on_gpus(node: NodeResource, res: PodResourceKey) -> bool:
    """``utils.CanNodeHostPodOnGpuMemory``: at least ``GpuNumber`` GPUs have ``MilliGpu`` left."""
    _, milli, gpus, _ = res
    request = gpus
    for left in node.gpu_left:
        if left >= milli:
            request -= 1
            if request <= 0:
                return True
    return False


def node_pod_frag(node: NodeResource, res: PodResourceKey) -> int:
    """``utils.GetNodePodFrag``: the fragment category of a node for one (typical) pod."""
    cpu, milli, _, models = res
    if milli == 0:
        return XL_SATISFIED if node.cpu_left >= cpu else XR_LACK_CPU
    if not is_accessible(node.model, models):
        return NO_ACCESS
    if can_host_on_gpus(node, res):
        return Q3_SATISFIED if node.cpu_left >= cpu else Q4_LACK_CPU
    return Q2_LACK_GPU if node.cpu_left >= cpu else Q1_LACK_BOTH


def node_frag_amount(node: NodeResource, typical: list[TypicalPod]) -> list[float]:
    """``utils.NodeGpuShareFragAmount``: the node's GPU milli left spread over the seven categories."""
    data = [0.0] * 7
    for res, freq in typical:
        if freq < 0 or freq > 1:
            continue
        category = node_pod_frag(node, res)
        left_total = node.total_gpu_left()
        if category == Q3_SATISFIED:
            frag_milli = 0
            for left in node.gpu_left:
                if left < res[1]:
                    frag_milli += left
            data[Q2_LACK_GPU] += freq * float(frag_milli)
            data[Q3_SATISFIED] += freq * float(left_total - frag_milli)
        else:
            data[category] += freq * float(left_total)
    return data


def node_frag(node: NodeResource, typical: list[TypicalPod]) -> float:
    """``utils.NodeGpuShareFragAmountScore``: ``FragAmountSumExceptQ3`` of the node's frag amount (XL, a CPU pod
    that fits, counts as fragment too)."""
    data = node_frag_amount(node, typical)
    out = 0.0
    for i in range(7):
        if i != Q3_SATISFIED:
            out += data[i]
    return out


# --- filter (NodeResourcesFit + open_gpu_share.go Filter) ----------------------------------------------------------


def fits(node: NodeResource, pod: model.PodSpec) -> bool:
    """NodeResourcesFit (real CPU request, memory, pod count) and Open-Gpu-Share's ``Filter``."""
    if pod.cpu > node.cpu_left or pod.memory > node.memory_left or node.pods_left < 1:
        return False
    if pod.milli <= 0:
        return True
    if node.gpu_number == 0 or not is_accessible(node.model, pod.models):
        return False
    return allocate_gpu_id(node, pod)


def allocate_gpu_id(node: NodeResource, pod: model.PodSpec) -> bool:
    """``GpuNodeInfo.AllocateGpuId`` (gpunodeinfo.go) as the filter uses it: whether a GPU set is found.

    A 1-GPU pod needs one GPU with its milli left; a multi-GPU pod is packed greedily by two pointers, so the same
    GPU takes several of its shares while milli is left (with whole GPUs: that many fully free GPUs).
    """
    if pod.milli <= 0 or pod.gpus <= 0 or not node.gpu_left:
        return False
    idle = list(node.gpu_left)
    if pod.gpus == 1:
        return any(left >= pod.milli for left in idle)
    dev = taken = 0
    while dev < len(idle) and taken < pod.gpus:
        if idle[dev] >= pod.milli:
            idle[dev] -= pod.milli
            taken += 1
        else:
            dev += 1
    return taken == pod.gpus


# --- score plugins (pkg/simulator/plugin/*_score.go) ---------------------------------------------------------------


def allocate_exclusive_gpu_id(node: NodeResource, res: PodResourceKey) -> tuple[int, ...]:
    """``simontype.AllocateExclusiveGpuId``: the first fully free GPUs by index; Go panics if too few."""
    request = res[1] * res[2]
    ids: list[int] = []
    for i, left in enumerate(node.gpu_left):
        if request <= 0:
            break
        if left == MILLI:
            ids.append(i)
            request -= MILLI
    if request > 0:
        raise ValueError("there is no enough exclusive gpu to serve pod, should not happen")
    return tuple(ids)


def node_sub(node: NodeResource, res: PodResourceKey) -> NodeResource:
    """``NodeResource.Sub`` with its error ignored (as FGD does): the copy with the pod taken from the tightest
    GPUs, unchanged when CPU or GPU count is short, partly changed when the GPUs run out midway."""
    cpu, milli, gpus, _ = res
    out = node.copy()
    if out.cpu_left < cpu or out.gpu_number < gpus:
        return out
    out.cpu_left -= cpu
    request = gpus
    if request == 0:
        return out
    for i in out.tightest_gpus_first():
        if milli <= out.gpu_left[i]:
            request -= 1
            out.gpu_left[i] -= milli
            if request <= 0:
                return out
    return out


def sigmoid(x: float) -> float:
    """``plugin_utils.go`` ``sigmoid``."""
    return 1.0 / (1.0 + math.exp(-x))


def fgd_score(node: NodeResource, res: PodResourceKey, typical: list[TypicalPod]) -> tuple[int, tuple[int, ...]]:
    """``calculateGpuShareFragExtendScore`` (fgd_score.go): the score and the GPUs it picks.

    A sharing pod tries every GPU it fits on (first GPU with the highest score wins); any other pod is
    subtracted by ``Sub`` and gets ``AllocateExclusiveGpuId``'s GPUs.
    """
    cpu, milli, gpus, _ = res
    before = node_frag(node, typical)
    if gpus == 1 and milli < MILLI:
        score, gpu = 0, -1
        for i in range(node.gpu_number):
            if node.gpu_left[i] >= milli:
                after_node = node.copy()
                after_node.cpu_left -= cpu
                after_node.gpu_left[i] -= milli
                after = node_frag(after_node, typical)
                frag_score = int(sigmoid((before - after) / 1000) * float(MAX_NODE_SCORE))
                if gpu == -1 or frag_score > score:
                    score, gpu = frag_score, i
        return score, (() if gpu == -1 else (gpu,))
    after = node_frag(node_sub(node, res), typical)
    return int(sigmoid((before - after) / 1000) * float(MAX_NODE_SCORE)), allocate_exclusive_gpu_id(node, res)


def virtual_nodes(node: NodeResource, res: PodResourceKey, dim_ext: str) -> list[tuple[list[float], tuple[int, ...]]]:
    """``NodeResource.ToVirtualNodeResourceList`` for merge, share and divide: (resource vector, GPU ids)."""
    cpu, milli, gpus, _ = res
    if node.cpu_left < cpu:
        return []
    request = milli * gpus
    total_left = node.total_gpu_left()
    if dim_ext == "merge":
        return [([float(node.cpu_left), float(total_left)], ())]
    out: list[tuple[list[float], tuple[int, ...]]] = []
    if request < MILLI:
        for i, left in enumerate(node.gpu_left):
            if left >= MILLI or left < request:
                continue
            node_cpu = (
                float(node.cpu_left) if dim_ext == "share" else go_fdiv(float(node.cpu_left * left), float(total_left))
            )
            out.append(([node_cpu, float(left)], (i,)))
    idle = node.fully_free_gpus()
    if request <= idle * MILLI:
        ids = allocate_exclusive_gpu_id(node, res)
        node_cpu = (
            float(node.cpu_left)
            if dim_ext == "share"
            else go_fdiv(float(node.cpu_left * idle * MILLI), float(total_left))
        )
        out.append(([node_cpu, float(idle * MILLI)], ids))
    return out


def normalize_vector(vec: list[float], norm: list[float]) -> list[float]:
    """``utils.NormalizeVector``: element-wise division, 0 where the norm is not positive."""
    return [v / n if n > 0 else 0.0 for v, n in zip(vec, norm, strict=True)]


def match_groups(
    node: NodeResource, res: PodResourceKey, dim_ext: str, norm: str
) -> list[tuple[list[float], list[float], tuple[int, ...]]]:
    """``utils.GenerateSchedulingMatchGroups`` for merge, share and divide: (node vector, pod vector, GPU ids);
    merge carries no GPU ids (Go's ``""``)."""
    cpu, milli, gpus, _ = res
    pod_vec = [float(cpu), float(milli * gpus)]  # ToVirtualPodResourceList: one vector for these methods
    if norm == "node":
        scale = [float(node.cpu_capacity), float(node.gpu_number * MILLI)]
    elif norm == "pod":
        scale = [float(cpu), float(milli * gpus)]
    else:
        scale = [float(MAX_SPEC_CPU), float(MAX_SPEC_GPU)]
    groups = []
    for node_vec, ids in virtual_nodes(node, res, dim_ext):
        gpu_ids = ids if dim_ext != "merge" else ()
        groups.append((normalize_vector(node_vec, scale), normalize_vector(pod_vec, scale), gpu_ids))
    return groups


def dot_product_score(node: NodeResource, res: PodResourceKey, dim_ext: str, norm: str) -> tuple[int, tuple[int, ...]]:
    """``calculateDotProductScore`` (dot_product_score.go): ``1 - dot / 2`` (``tanh`` of it over 10 for ``pod``
    norm) of the best match group; the score starts at the sentinel -1 and a dot product of exactly -1 is skipped,
    so a node without a match group (CPU short) scores MinNodeScore with no GPU."""
    score = -1.0
    gpu_ids: tuple[int, ...] = ()
    for node_vec, pod_vec, ids in match_groups(node, res, dim_ext, norm):
        current = 0.0
        for a, b in zip(node_vec, pod_vec, strict=True):
            current += a * b
        if current == -1:
            continue
        current /= float(len(pod_vec))
        if norm == "pod":
            current = math.tanh(current / 10)
        current = 1 - current
        if score < current:
            score, gpu_ids = current, ids
    if score == -1:
        return MIN_NODE_SCORE, ()
    return int(float(MAX_NODE_SCORE) * score), gpu_ids


def clustering_score(node: NodeResource, pod: model.PodSpec) -> int:
    """``GpuClusteringScorePlugin.Score``: by the node's GPU tags, then by its GPU milli used (integer arithmetic)."""
    tag = gpu_affinity(pod)
    if tag is None:
        return MIN_NODE_SCORE
    used = go_div(MAX_NODE_SCORE // 4 * (MAX_SPEC_GPU - node.total_gpu_left()), MAX_SPEC_GPU)
    if node.affinity.get(tag, 0) > 0:
        return used + (MAX_NODE_SCORE * 3 // 4 if len(node.affinity) == 1 else MAX_NODE_SCORE * 2 // 4)
    return used + (MAX_NODE_SCORE // 4 if len(node.affinity) == 0 else 0)


def packing_score(node: NodeResource, res: PodResourceKey) -> int:
    """``getPackingScore`` (gpu_packing_score.go): shared GPUs first, then free GPUs of a used node, then a free
    node; case 3 is capped below at the free GPU count, not at MinNodeScore."""
    _, milli, gpus, _ = res
    free = node.fully_free_gpus()
    if free == node.gpu_number:
        return max(MAX_NODE_SCORE // 3 - free, free)
    request, free_to_use = gpus, 0
    to_use: list[int] = []
    for i in node.tightest_gpus_first():
        if request == 0:
            break
        left = node.gpu_left[i]
        if milli <= left:
            request -= 1
            to_use.append(i)
            if left == MILLI:
                free_to_use += 1
    if request != 0:
        raise ScoreError("failed to allocate gpu resource to pod")
    if free_to_use > 0:
        return max(MAX_NODE_SCORE // 2 - free_to_use, MAX_NODE_SCORE // 3)
    ratio = 0
    for i in to_use:
        ratio += node.gpu_left[i] * 100 // MILLI
    return max(MAX_NODE_SCORE - ratio // 10, MAX_NODE_SCORE // 2)


def best_fit_score(node: NodeResource, res: PodResourceKey) -> int:
    """``getBestFitScore`` (best_fit_score.go): ``(1 - sum_i 0.5 (free_i - req_i) / maxSpec_i) * 100``, truncated;
    Go's -1 (a resource short, e.g. a CPU-less pod's non-zero 100m on a node with less) is a Score error."""
    free = [float(node.cpu_left), float(node.total_gpu_left())]
    request = [float(res[0]), float(res[1] * res[2])]
    max_spec = [float(MAX_SPEC_CPU), float(MAX_SPEC_GPU)]
    score = 0.0
    for i in range(2):
        if free[i] < request[i]:
            raise ScoreError("free resource not enough")
        score += (free[i] - request[i]) / max_spec[i] * 0.5
    return int((1.0 - score) * float(MAX_NODE_SCORE))


def plugin_score(
    name: str, node: NodeResource, pod: model.PodSpec, policy: config.Policy, typical: list[TypicalPod]
) -> int:
    """The raw ``Score`` of one plugin on one node (before NormalizeScore and weights); not RandomScore, whose
    score comes from its PreScore pick (:meth:`ReferenceScheduler.scores`).

    FGDScore's ``MaxNodeScore`` for a pod without requests (``PodRequestsAndLimits`` empty) cannot happen here:
    the repository's ``pod_csv_to_yaml.py`` writes CPU and memory requests on every pod, even zero ones.
    """
    res = pod_resource(pod)
    if name == "DotProductScore":
        return dot_product_score(node, res, policy.dim_ext, policy.norm)[0]
    if name == "GpuPackingScore" and pod.milli <= 0:
        return MIN_NODE_SCORE
    if not is_accessible(node.model, pod.models):
        raise ScoreError("node does not match GPU type request of pod")
    if name == "GpuClusteringScore":
        return clustering_score(node, pod)
    if name == "GpuPackingScore":
        return packing_score(node, res)
    if name == "BestFitScore":
        return best_fit_score(node, res)
    if name == "FGDScore":
        return fgd_score(node, res, typical)[0]
    raise ValueError(f"plugin_score: no raw score for {name!r}")


def normalize_score(scores: list[int]) -> list[int]:
    """``plugin_utils.go`` ``NormalizeScore``: min-max to [0, 100] in integer arithmetic; all 0 when equal."""
    highest, lowest = max(scores), min(scores)
    old_range = highest - lowest
    new_range = MAX_NODE_SCORE - MIN_NODE_SCORE
    if old_range == 0:
        return [MIN_NODE_SCORE] * len(scores)
    return [go_div((s - lowest) * new_range, old_range) + MIN_NODE_SCORE for s in scores]


# --- reserve (open_gpu_share.go allocateGpuId) and binding ---------------------------------------------------------


def fit_gpu(node: NodeResource, milli: int, best: bool) -> int:
    """The loop of ``allocateGpuIdBasedOnBestFit`` (``best``) / ``WorstFit``: the first fitting GPU with the least
    (most) milli left; -1 when none fits."""
    candidate = -1
    for i, left in enumerate(node.gpu_left):
        tighter = candidate == -1 or (left < node.gpu_left[candidate] if best else left > node.gpu_left[candidate])
        if left >= milli and tighter:
            candidate = i
    return candidate


def select_gpus(
    node: NodeResource, pod: model.PodSpec, policy: config.Policy, typical: list[TypicalPod], u_gpu: float
) -> tuple[int, ...]:
    """Reserve's ``allocateGpuId`` by ``policy.gpu_sel``; ``()`` for a CPU pod (Reserve skips it) and where Go
    returns ``""`` (Reserve then fails the pod, e.g. DotProductScore selection with ``merge``)."""
    if pod.milli <= 0:
        return ()
    if pod.milli < MILLI and pod.gpus > 1:
        raise ValueError("the pod requests more than one share gpu, should not happen")
    res = pod_resource(pod)
    if policy.gpu_sel == "FGDScore":
        return fgd_score(node, res, typical)[1]
    if policy.gpu_sel == "DotProductScore":
        return dot_product_score(node, res, policy.dim_ext, policy.norm)[1]
    if pod.milli >= MILLI:
        return allocate_exclusive_gpu_id(node, res)
    if policy.gpu_sel == "random":
        fitting = [i for i, left in enumerate(node.gpu_left) if left >= pod.milli]
        return (fitting[int(u_gpu * len(fitting))],) if fitting else ()
    gpu = fit_gpu(node, pod.milli, best=policy.gpu_sel == "best")
    return () if gpu == -1 else (gpu,)


def bind(node: NodeResource, pod: model.PodSpec, gpus: tuple[int, ...]) -> None:
    """Place ``pod`` on ``node`` with ``gpus``: what the next snapshot's ``GetNodeResourceViaNodeInfo`` and the
    node's GPU annotation show (real CPU request, memory, pod count, per-GPU milli, GPU tag)."""
    for g in gpus:
        if node.gpu_left[g] < pod.milli:
            raise ValueError(f"GPU {g} has {node.gpu_left[g]} milli left, the pod asks {pod.milli}")
    node.cpu_left -= pod.cpu
    node.memory_left -= pod.memory
    node.pods_left -= 1
    for g in gpus:
        node.gpu_left[g] -= pod.milli
    tag = gpu_affinity(pod)
    if tag is not None:
        node.affinity[tag] = node.affinity.get(tag, 0) + 1


def release(node: NodeResource, pod: model.PodSpec, gpus: tuple[int, ...]) -> None:
    """Undo :func:`bind` exactly."""
    for g in gpus:
        if node.gpu_left[g] + pod.milli > MILLI:
            raise ValueError(f"GPU {g} has {node.gpu_left[g]} milli left, releasing {pod.milli} exceeds {MILLI}")
    node.cpu_left += pod.cpu
    node.memory_left += pod.memory
    node.pods_left += 1
    for g in gpus:
        node.gpu_left[g] += pod.milli
    tag = gpu_affinity(pod)
    if tag is not None:
        node.affinity[tag] -= 1
        if node.affinity[tag] == 0:
            del node.affinity[tag]


# --- the scheduling cycle (generic_scheduler.go of the repository's Kubernetes fork) -------------------------------


class ReferenceScheduler:
    """One profile scheduling pods one at a time: filter, score (percentageOfNodesToScore 100), select, reserve.

    ``tie_rank`` (one integer per node, default the node index): the tied node of the smallest rank wins.
    """

    def __init__(
        self,
        nodes: model.Nodes,
        policy: config.Policy,
        typical: list[TypicalPod],
        tie_rank: Sequence[int] | None = None,
    ) -> None:
        self.nodes: list[NodeResource] = new_nodes(nodes)
        self.policy = policy
        self.typical = typical
        self.tie_rank = list(range(len(self.nodes))) if tie_rank is None else tie_rank

    def feasible(self, pod: model.PodSpec) -> list[int]:
        """Indices of the nodes that pass the filters, in index order."""
        return [i for i, node in enumerate(self.nodes) if fits(node, pod)]

    def scores(self, pod: model.PodSpec, u_random: float) -> dict[int, int]:
        """``RunScorePlugins``: feasible node index -> sum of weight x (normalised) score; raises
        :class:`ScoreError` where Go fails the cycle (a plugin error, or a score outside [0, 100])."""
        feasible = self.feasible(pod)
        totals = dict.fromkeys(feasible, 0)
        if not feasible:
            return totals
        for name, weight in self.policy.scores:
            if name == "RandomScore":
                chosen = feasible[int(u_random * len(feasible))]
                raw = [MAX_NODE_SCORE if i == chosen else MIN_NODE_SCORE for i in feasible]
            else:
                raw = [plugin_score(name, self.nodes[i], pod, self.policy, self.typical) for i in feasible]
            if name == "BestFitScore":
                raw = normalize_score(raw)
            for i, score in zip(feasible, raw, strict=True):
                if not MIN_NODE_SCORE <= score <= MAX_NODE_SCORE:
                    raise ScoreError(f"plugin {name!r} returns an invalid score {score}")
                totals[i] += score * weight
        return totals

    def select_host(self, totals: dict[int, int]) -> int:
        """``selectHost`` of the repository's fork: the best-scored node, the smallest ``tie_rank`` among equals."""
        best = max(totals.values())
        rank = self.tie_rank
        return min((i for i, score in totals.items() if score == best), key=lambda i: rank[i])

    def schedule(self, pod: model.PodSpec, u: tuple[float, float]) -> tuple[int, tuple[int, ...]]:
        """Schedule and bind ``pod``: (node index, GPU ids), or ``(-1, ())`` with nothing changed when no node
        fits, a Score plugin fails, or Reserve finds no GPU. With one feasible node Go skips scoring."""
        u_random, u_gpu = u
        feasible = self.feasible(pod)
        if not feasible:
            return -1, ()
        if len(feasible) == 1:
            host = feasible[0]
        else:
            try:
                host = self.select_host(self.scores(pod, u_random))
            except ScoreError:
                return -1, ()
        gpus = select_gpus(self.nodes[host], pod, self.policy, self.typical, u_gpu)
        if pod.milli > 0 and not gpus:
            return -1, ()
        bind(self.nodes[host], pod, gpus)
        return host, gpus


def cluster_metrics(nodes: list[NodeResource], typical: list[TypicalPod]) -> dict[str, float]:
    """GPU milli used and idle, fragmented GPU milli (the sum of :func:`node_frag`), and milli-CPU used."""
    used_gpu = idle_gpu = used_cpu = 0
    frag = 0.0
    for node in nodes:
        left = node.total_gpu_left()
        used_gpu += node.gpu_number * MILLI - left
        idle_gpu += left
        used_cpu += node.cpu_capacity - node.cpu_left
        frag += node_frag(node, typical)
    return {"used_gpu_milli": used_gpu, "idle_gpu_milli": idle_gpu, "frag_gpu_milli": frag, "used_cpu_milli": used_cpu}
