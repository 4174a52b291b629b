"""IPVS against the kernel's rules: service hash, bucket order, rr / wrr / lc / sh, compiled = reference."""

from __future__ import annotations

import ipaddress

import numpy as np
import pytest

from kbench.proxy import ipvs
from kbench.proxy.ipvs import IpvsTable, RealServer, VirtualServer, hash_32, sh_fill, sh_hashkey, svc_hashkey
from kbench.proxy.matcher import Matcher, program_for
from kbench.proxy.model import FAKE_PROXIER, EndpointInfo, ProxierConfig, ServicePortInfo
from kbench.proxy.program import Packets

CONFIG = ProxierConfig(node_name="node-0", node_ips=("192.168.0.2",))
"""NewFakeProxier's: clusterCIDR 10.0.0.0/8 (model.FAKE_PROXIER)."""


def test_svc_hashkey_is_the_kernels():
    # (proto ^ ntohl(addr) ^ (port >> 8) ^ port) & 255 for 10.0.0.1:80/TCP: 6 ^ 0x01 ^ 0 ^ 80 = 87
    assert svc_hashkey(6, ipaddress.ip_address("10.0.0.1"), 80) == 87
    # port 8080 = 0x1f90: 6 ^ 0x01 ^ 0x1f ^ 0x90 = 0x88 (addr bytes above the low one are masked off)
    assert svc_hashkey(6, ipaddress.ip_address("10.0.0.1"), 8080) == 0x88
    # IPv6 folds the four words: 2001:db8::1 -> 0x20010db8 ^ 0 ^ 0 ^ 1
    assert svc_hashkey(17, ipaddress.ip_address("2001:db8::1"), 53) == 0x9D  # (17 ^ 0x20010DB9 ^ 0 ^ 53) & 255


def test_hash_32_is_golden_ratio_multiplicative():
    assert hash_32(0, 8) == 0
    assert hash_32(1, 8) == 0x61  # GOLDEN_RATIO_32 0x61C88647, top 8 bits
    assert hash_32(0x0A000001, 8) == 0x27  # (0x0A000001 * 0x61C88647) mod 2^32, top 8 bits
    assert sh_hashkey(ipaddress.ip_address("10.0.0.1")) == hash_32(0x0A000001, 8)


def test_table_inserts_at_the_head_of_a_bucket_and_counts_comparisons():
    table = IpvsTable()
    # 10.0.0.1:80 and 10.0.1.1:80 share a bucket (only the low address byte reaches the mask)
    first, second = VirtualServer("tcp", "10.0.0.1", 80), VirtualServer("tcp", "10.0.1.1", 80)
    table.add(first)
    table.add(second)
    assert table.buckets[87] == [second, first]
    assert table.find("tcp", ipaddress.ip_address("10.0.1.1"), 80) == (second, 1)
    assert table.find("tcp", ipaddress.ip_address("10.0.0.1"), 80) == (first, 2)
    assert table.find("udp", ipaddress.ip_address("10.0.0.1"), 80)[0] is None


def _vs(scheduler: str, weights: list[int]) -> VirtualServer:
    vs = VirtualServer("tcp", "172.30.0.1", 80, scheduler)
    for i in reversed(range(len(weights))):  # the kernel adds at the list head: add the last first
        vs.add_dest(RealServer(f"10.1.0.{i + 1}", 80, weights[i]))
    return vs


def _picks(vs: VirtualServer, n: int) -> str:
    return "".join("ABCDEFGH"[vs.schedule("10.9.9.9")] for _ in range(n))


def test_rr_rotates_and_skips_weight_zero():
    assert _picks(_vs("rr", [1, 1, 1]), 7) == "ABCABCA"
    assert _picks(_vs("rr", [1, 0, 1]), 4) == "ACAC"
    assert _vs("rr", [0, 0]).schedule() is None


def test_wrr_is_the_lvs_interleaving():
    # LVS documentation's example: weights A=4, B=3, C=2 cycle through AABABCABC. Servers added one by one
    # (as kube-proxy does) leave cw at 1 (ip_vs_wrr_dest_changed keeps a non-zero cw <= mw), so the first
    # round takes every server and the cycle is entered at "ABC"
    picks = _picks(_vs("wrr", [4, 3, 2]), 18)
    assert picks == "ABCAABABC" * 2
    assert picks in "AABABCABC" * 3  # the documented cycle, entered part-way
    assert _picks(_vs("wrr", [2, 2]), 4) == "ABAB"  # gcd 2: mw = 2 - (2 - 1) = 1
    assert _vs("wrr", [0, 0]).schedule() is None


def test_lc_takes_least_connections_first_in_list_on_ties():
    vs = _vs("lc", [1, 1, 1])
    vs.dests[0].active, vs.dests[1].active, vs.dests[2].active = 2, 1, 1
    assert vs.schedule() == 1  # B and C tie at 1: the first in list order
    assert vs.schedule() == 2  # now B has 2
    vs.dests[2].weight = 0
    assert vs.schedule() == 0  # A and B tie at 2: the first in list order


def test_sh_fills_buckets_by_weight_and_hashes_the_source():
    assert sh_fill([2, 1])[:6] == [0, 0, 1, 0, 0, 1]
    assert sh_fill([0, 1])[:4] == [0, 1, 0, 1]  # weight 0 still takes one slot per round (++count >= 0)
    vs = _vs("sh", [1, 1, 1])
    src = ipaddress.ip_address("10.2.3.4")
    assert vs.schedule(str(src)) == vs.sh_table[sh_hashkey(src)] == vs.schedule(str(src))
    vs.dests[vs.sh_table[sh_hashkey(src)]].weight = 0
    assert vs.schedule(str(src)) is None  # no sh-fallback flag: an unavailable bucket fails


@pytest.mark.parametrize("scheduler", ["rr", "wrr", "lc", "sh"])
def test_compiled_scheduler_follows_the_reference(scheduler):
    """The kernel's schedulers pick what the Python port of the kernel's C picks, connection after connection."""
    weights = [4, 3, 2, 1] if scheduler == "wrr" else [1, 1, 1, 1]
    eps = [EndpointInfo(f"10.1.0.{i + 1}", 8080, True, True, False, False) for i in range(4)]
    ports = [ServicePortInfo("default", "web", "http", "TCP", "172.30.0.10", 80, endpoints=eps)]
    config = ProxierConfig(
        node_name="node-0", node_ips=("192.168.0.2",), configuration=FAKE_PROXIER.replace({"ipvs.scheduler": scheduler})
    )
    rules = ipvs.compile_rules(ports, config)
    reference = next(vs for vs in rules.table.services if vs.ip == "172.30.0.10")
    for d, w in zip(reference.dests, weights):
        d.weight = w
    reference.dests_changed()
    program = program_for("ipvs", rules, config)
    matcher = Matcher(program, seed=1)
    sources = [f"10.{i % 7}.{i % 11}.{i % 13 + 1}" for i in range(60)]
    got = matcher.match(Packets.of([(s, "tcp", "172.30.0.10", 80) for s in sources])).endpoint
    want = [reference.schedule(s) for s in sources]
    names = [program.endpoints[e] for e in got]
    assert names == [reference.dests[w].address for w in want]


def test_kube_proxy_ipvs_services_and_sets():
    eps = [
        EndpointInfo("10.1.0.1", 8080, True, True, False, True),
        EndpointInfo("10.1.0.2", 8080, True, True, False, False),
    ]
    sp = ServicePortInfo(
        "default",
        "web",
        "http",
        "TCP",
        "172.30.0.10",
        80,
        node_port=30080,
        external_ips=("203.0.113.9",),
        affinity_timeout=600,
        external_local=True,
        endpoints=eps,
    )
    rules = ipvs.compile_rules([sp], CONFIG)
    keys = {(vs.ip, vs.port): vs for vs in rules.table.services}
    assert set(keys) == {("172.30.0.10", 80), ("203.0.113.9", 80), ("192.168.0.2", 30080)}
    assert keys["172.30.0.10", 80].persistent == 600 and keys["172.30.0.10", 80].bind
    assert not keys["192.168.0.2", 30080].bind
    # externalTrafficPolicy Local: external VSs get the local endpoint only; the ClusterIP VS gets both
    assert [d.ip for d in keys["203.0.113.9", 80].dests] == ["10.1.0.1"]
    assert sorted(d.ip for d in keys["172.30.0.10", 80].dests) == ["10.1.0.1", "10.1.0.2"]
    assert ("172.30.0.10", "tcp", 80) in rules.ipsets["KUBE-CLUSTER-IP"].entries
    assert (30080,) in rules.ipsets["KUBE-NODE-PORT-LOCAL-TCP"].entries
    assert ("203.0.113.9", "tcp", 80) in rules.ipsets["KUBE-EXTERNAL-IP-LOCAL"].entries
    assert "-A KUBE-SERVICES -s 127.0.0.0/8 -j RETURN" in rules.text()
    assert "TCP  172.30.0.10:80 rr persistent 600" in rules.ipvsadm()


def test_virtual_server_without_endpoints_refuses():
    sp = ServicePortInfo("default", "web", "http", "TCP", "172.30.0.10", 80)
    rules = ipvs.compile_rules([sp], CONFIG)
    result = Matcher(program_for("ipvs", rules, CONFIG)).match(Packets.of([("10.0.0.5", "tcp", "172.30.0.10", 80)]))
    assert result.output(0) == "REJECT"  # ip_vs_leave: ICMP port unreachable
    assert np.all(result.rules > 0)
