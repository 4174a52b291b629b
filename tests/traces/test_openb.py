"""The openb reader: nodes and pods as the trace describes them, and errors that name the file, line and field."""

from __future__ import annotations

import pytest

from kbench.traces import openb
from kbench.traces.openb import GPU, GPU_MODEL_LABEL, TraceError, read_nodes, read_pods

NODES = "sn,cpu_milli,memory_mib,gpu,model\nn0,32000,262144,0,\nn1,96000,786432,8,V100M32\n"
PODS = (
    "name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,creation_time,deletion_time,scheduled_time\n"
    "p0,12000,16384,1,1000,,LS,Running,0,100,0\n"
    "p1,6000,12288,1,460,,LS,Running,5,200,5\n"
    "p2,4000,0,0,0,,BE,Pending,7,300,\n"
    "p3,8000,4096,2,1000,V100M16|V100M32,LS,Running,9,400,9\n"
)


def write(tmp_path, nodes: str = NODES, pods: str = PODS, variant: str = "default"):
    (tmp_path / openb.NODES_FILE).write_text(nodes)
    (tmp_path / f"openb_pod_list_{variant}.csv").write_text(pods)
    return tmp_path


def test_nodes_carry_cpu_memory_pods_gpus_and_the_gpu_model(tmp_path):
    cpu_node, gpu_node = read_nodes(write(tmp_path))
    assert cpu_node.allocatable == {"cpu": 32000, "memory": 262144 * 2**20, "pods": openb.MAX_PODS}
    assert gpu_node.allocatable[GPU] == 8
    assert gpu_node.labels == {"kubernetes.io/hostname": "n1", GPU_MODEL_LABEL: "V100M32"}
    assert GPU_MODEL_LABEL not in cpu_node.labels


def test_pods_ask_for_whole_gpus_and_a_gpu_spec_becomes_node_affinity(tmp_path):
    whole, shared, cpu_only, constrained = read_pods(write(tmp_path))
    assert whole.requests == {"cpu": 12000, "memory": 16384 * 2**20, GPU: 1}
    assert shared.requests[GPU] == 1  # gpu_milli 460: one whole GPU without a sharing device plugin
    assert shared.manifest["metadata"]["annotations"]["openb.kbench.io/gpu_milli"] == "460"
    assert cpu_only.requests == {"cpu": 4000, "memory": 0}
    assert constrained.requests[GPU] == 2
    term = constrained.affinity["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert term["nodeSelectorTerms"][0]["matchExpressions"][0]["values"] == ["V100M16", "V100M32"]


def test_variants_without_timestamps_read(tmp_path):
    directory = write(tmp_path, pods="name,cpu_milli,memory_mib,num_gpu,gpu_milli\nq0,1000,1024,1,250\n", variant="x")
    pods = read_pods(directory, "x")
    assert [p.name for p in pods] == ["q0"] and pods[0].requests[GPU] == 1


@pytest.mark.parametrize(
    ("pods", "message"),
    [
        ("name,cpu_milli,memory_mib,num_gpu\np,1,1,0\n", "missing column(s) gpu_milli"),
        ("name,cpu_milli,memory_mib,num_gpu,gpu_milli\np,x,1,0,0\n", ":2: cpu_milli: expected a non-negative integer"),
        ("name,cpu_milli,memory_mib,num_gpu,gpu_milli\np,1,-4,0,0\n", ":2: memory_mib: expected a non-negative"),
        ("name,cpu_milli,memory_mib,num_gpu,gpu_milli\np,1,1,1,1500\n", ":2: gpu_milli: at most 1000"),
        ("name,cpu_milli,memory_mib,num_gpu,gpu_milli\n,1,1,0,0\n", ":2: name: required"),
        ("name,cpu_milli,memory_mib,num_gpu,gpu_milli\np,1,1,0,0\np,1,1,0,0\n", ":3: name: 'p' appears twice"),
    ],
)
def test_malformed_pod_lists_are_refused_naming_file_line_and_field(tmp_path, pods, message):
    with pytest.raises(TraceError, match="openb_pod_list_default.csv") as error:
        read_pods(write(tmp_path, pods=pods))
    assert message in str(error.value)


def test_malformed_node_list_names_the_field(tmp_path):
    with pytest.raises(TraceError, match=r"openb_node_list_all_node.csv:4: gpu: expected"):
        read_nodes(write(tmp_path, nodes=NODES + "n2,1,1,1.5,T4\n"))


def test_missing_directory_says_where_to_get_the_trace(tmp_path, monkeypatch):
    monkeypatch.setenv(openb.ENV, str(tmp_path / "absent"))
    assert openb.data_dir() == tmp_path / "absent"
    with pytest.raises(TraceError, match="download the openb CSV files from https://github.com/alibaba"):
        read_nodes()


def test_the_real_trace_when_present():
    directory = openb.data_dir()
    if not (directory / openb.NODES_FILE).is_file():
        pytest.skip(f"openb trace not found at {directory} (set ${openb.ENV})")
    nodes, pods = read_nodes(directory), read_pods(directory)
    assert (len(nodes), len(pods)) == (1523, 8152)
    assert sum(n.allocatable.get(GPU, 0) for n in nodes) == 6212
