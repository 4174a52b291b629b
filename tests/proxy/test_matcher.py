"""The compiled matcher against the tracer, its random choices, session affinity and IPVS persistence."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from kbench.proxy import iptables
from kbench.proxy.kube_proxy import COMPILERS
from kbench.proxy.matcher import Matcher, program_for
from kbench.proxy.model import EndpointInfo, ProxierConfig, ServicePortInfo, objects_of, service_ports
from kbench.proxy.program import Packets
from kbench.proxy.tracer import Packet, tracer_for
from tests.proxy.test_golden import golden_config, load_golden

CONFIG = ProxierConfig(node_name="node-0", node_ips=("192.168.0.2",), service_cidrs=("172.30.0.0/16",))


def _golden_cases():
    out = []
    for mode, source in (("iptables", "iptables"), ("nftables", "nftables"), ("ipvs", "iptables")):
        doc = load_golden(f"{source}_flows")
        out += [pytest.param(mode, doc, case, id=f"{mode}-{case['name']}") for case in doc["cases"]]
    return out


@pytest.mark.parametrize(("mode", "doc", "case"), _golden_cases())
def test_matcher_picks_what_the_tracer_allows(mode, doc, case):
    """On every golden flow, over many random draws: the matcher's fate is one the tracer lists (or none when the
    tracer lists none), and it masquerades only where the tracer says some branch does."""
    config = golden_config(doc, case)
    rules = COMPILERS[mode](service_ports(*objects_of(case), config), config)
    tracer = tracer_for(mode, rules, config)
    matcher = Matcher(program_for(mode, rules, config), seed=7)
    rows = [(f["sourceIP"], f["protocol"], f["destIP"], f["destPort"]) for f in case["flows"]]
    expected = [tracer.trace(Packet.of(*row)) for row in rows]
    seen = [set() for _ in rows]
    for rep in range(30):
        result = matcher.match(Packets.of(rows, time=rep * 1e6))  # affinity entries expire between rounds
        for i, (outputs, masq) in enumerate(expected):
            got = result.output(i)
            assert got in outputs if outputs else got == "", (case["flows"][i]["name"], outputs, got)
            assert masq or not result.masq[i], case["flows"][i]["name"]
            seen[i].add(got)
    for i, (outputs, _) in enumerate(expected):
        endpoints = [o for o in outputs if o not in ("ACCEPT", "DROP", "REJECT")]
        if mode != "ipvs" and len(endpoints) > 1 and outputs == endpoints:
            assert seen[i] == set(endpoints), f"{case['flows'][i]['name']}: draws never reached {endpoints}"


def _service(n_endpoints: int, affinity: int = 0) -> list[ServicePortInfo]:
    eps = [EndpointInfo(f"10.1.0.{i + 1}", 8080, True, True, False, False) for i in range(n_endpoints)]
    return [
        ServicePortInfo("default", "web", "http", "TCP", "172.30.0.10", 80, affinity_timeout=affinity, endpoints=eps)
    ]


def _clients(n: int, time: float = 0.0) -> Packets:
    src = (np.arange(n) % 50_000 + (10 << 24) + (2 << 16)).astype(np.uint64)
    return Packets.ipv4(src, np.full(n, 6), np.full(n, (172 << 24) | (30 << 16) | 10, np.uint64), np.full(n, 80), time)


@pytest.mark.parametrize("mode", ["iptables", "nftables", "ipvs"])
def test_endpoint_choice_is_uniform(mode):
    """iptables' cascade (probability 1/(n-i) for endpoint i), nftables' numgen and IPVS rr all spread new
    connections evenly; chi-square against uniform over 5 endpoints (fixed seed: deterministic)."""
    rules = COMPILERS[mode](_service(5), CONFIG)
    result = Matcher(program_for(mode, rules, CONFIG), seed=3).match(_clients(50_000))
    counts = np.bincount(result.endpoint, minlength=len(result.endpoints))
    counts = counts[counts > 0]
    assert len(counts) == 5
    expected = counts.sum() / 5
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    assert chi2 < 18.467, counts  # chi-square, 4 degrees of freedom: P(chi2 > 18.467) = 0.001


def test_iptables_probabilities_are_upstream_formatted():
    text = iptables.compile_rules(_service(4), CONFIG).text()
    assert [p for p in ("0.2500000000", "0.3333333333", "0.5000000000") if f"--probability {p}" in text] == [
        "0.2500000000",
        "0.3333333333",
        "0.5000000000",
    ]
    assert text.count("--probability") == 3


@pytest.mark.parametrize("mode", ["iptables", "nftables", "ipvs"])
def test_client_ip_affinity_holds_until_the_timeout(mode):
    """Each client keeps its endpoint while it returns within the timeout; once the entry has expired its next
    connection is a fresh draw, so about 1/n of the clients land on the same endpoint again."""
    rules = COMPILERS[mode](_service(4, affinity=60), CONFIG)
    matcher = Matcher(program_for(mode, rules, CONFIG), seed=5)
    first = matcher.match(_clients(1999, time=0.0)).endpoint
    again = matcher.match(_clients(1999, time=59.0)).endpoint
    assert np.array_equal(first, again)
    later = matcher.match(_clients(1999, time=59.0 + 61.0)).endpoint
    kept = np.mean(later == again)
    if mode == "ipvs":  # rr goes on from where it stopped: 1999 = 3 mod 4, so every client moves by one
        assert kept < 0.05, kept
    else:  # a fresh random draw: 1/4 expected
        assert 0.15 < kept < 0.35, kept


def test_rules_evaluated_grow_with_services_only_in_iptables():
    counts = {}
    for mode in COMPILERS:
        for n in (100, 1000):
            eps = [EndpointInfo("10.1.0.1", 8080, True, True, False, False)]
            ports = [
                ServicePortInfo("default", f"s{i}", "", "TCP", f"172.30.{i // 250}.{i % 250 + 1}", 80, endpoints=eps)
                for i in range(n)
            ]
            rules = COMPILERS[mode](ports, CONFIG)
            dst = np.array([(172 << 24) | (30 << 16) | ((n - 1) // 250 << 8) | ((n - 1) % 250 + 1)], np.uint64)
            pk = Packets.ipv4(np.array([(10 << 24) | 5], np.uint64), np.array([6]), dst, np.array([80]))
            counts[mode, n] = int(Matcher(program_for(mode, rules, CONFIG)).match(pk).rules[0])
    assert counts["iptables", 1000] > 9 * counts["iptables", 100]  # the last Service: a walk past all others
    assert counts["nftables", 1000] == counts["nftables", 100]
    assert counts["ipvs", 1000] <= counts["ipvs", 100] + 8  # 256 hash buckets: chains grow by n / 256


@pytest.mark.parametrize("mode", ["nftables", "ipvs"])
def test_fast_path_agrees_with_the_rule_machine(mode):
    """The verdict-map / IPVS-table fast path gives the rule machine's outcome, rule count and masquerade flag
    (endpoints differ only by the random draw or the scheduler's position), and it is actually used."""
    from kbench.proxy import workload

    ports = workload.service_ports(300, 4, node_port_fraction=0.3, affinity_fraction=0.3, seed=2)
    rules = COMPILERS[mode](ports, workload.CONFIG)
    program = program_for(mode, rules, workload.CONFIG)
    assert program.fast is not None and program.fast.records >= 200
    packets, which = workload.traffic(ports, 5000, seed=3)
    # half the packets from node addresses and loopback, so several source classes and hairpins occur
    packets.arrays.src_lo[::3] = np.uint64((0xFFFF << 32) | (192 << 24) | (168 << 16) | 10)
    packets.arrays.src_lo[1::7] = np.uint64((0xFFFF << 32) | (127 << 24) | 1)
    fast = Matcher(program, seed=1).match(packets)
    slow_program = dataclasses.replace(program, fast=None)
    slow = Matcher(slow_program, seed=1).match(packets)
    assert np.array_equal(fast.outcome, slow.outcome)
    # affinity services go through the rule machine in both runs, where the rules their affinity checks cost
    # depend on earlier random picks, which the runs draw in different orders
    plain = np.array([ports[w].affinity_timeout == 0 for w in which])
    assert np.array_equal(fast.rules[plain], slow.rules[plain])
    assert np.array_equal(fast.masq, slow.masq)
    service_of = {f"{ep.ip}:{ep.port}": i for i, sp in enumerate(ports) for ep in sp.endpoints}
    dnat = fast.outcome == 1
    assert all(service_of[fast.endpoints[e]] == w for e, w in zip(fast.endpoint[dnat], which[dnat]))


@pytest.mark.parametrize("mode", ["nftables", "ipvs"])
def test_fast_path_same_in_pieces_and_as_plain_python(mode):
    """A batch matched in pieces of other sizes (the matcher keeps its scratch between batches) and by the
    kernels run as plain Python (prefetching, a hint to the processor, does nothing there) gives exactly the
    results of the batch matched whole: the same random draws and scheduler positions, in packet order."""
    from kbench.proxy import workload

    ports = workload.service_ports(300, 4, seed=2)
    program = program_for(mode, COMPILERS[mode](ports, workload.CONFIG), workload.CONFIG)
    packets, _ = workload.traffic(ports, 3000, seed=3)
    packets.arrays.src_lo[1::7] = np.uint64((0xFFFF << 32) | (127 << 24) | 1)  # some hairpins
    whole = Matcher(program, seed=1).match(packets)
    pieces = Matcher(program, seed=1)
    parts = [pieces.match(packets.take(slice(a, b))) for a, b in ((0, 1000), (1000, 1013), (1013, 3000))]
    python = Matcher(program, seed=1).match_python(packets)
    assert (whole.outcome == 1).mean() > 0.9
    for field in ("outcome", "endpoint", "masq", "rules"):
        expected = getattr(whole, field)
        assert np.array_equal(np.concatenate([getattr(p, field) for p in parts]), expected), field
        assert np.array_equal(getattr(python, field), expected), field


def test_match_state_puts_each_server_row_on_a_cache_line():
    """The IPVS fast path prefetches a virtual server's and a real server's row as one cache line each: a match
    state's copies of the two tables start on 64-byte lines with a row a line (a real server's five words padded
    with zeros), hold the program's values, and are copies (the schedulers update them, not the program)."""
    from kbench.proxy import workload
    from kbench.proxy.program import MatchState

    ports = workload.service_ports(50, 3, seed=2)
    program = program_for("ipvs", COMPILERS["ipvs"](ports, workload.CONFIG), workload.CONFIG)
    state = MatchState.fresh(program)
    built = program.ipvs
    for name, columns in (("VS", 8), ("RS", 5)):
        table = getattr(state.ipvs, name)
        assert table.ctypes.data % 64 == 0 and table.shape == (len(getattr(built, name)), 8), name
        assert np.array_equal(table[:, :columns], getattr(built, name)) and not table[:, columns:].any(), name
        assert not np.shares_memory(table, getattr(built, name)), name
    Matcher(program, seed=1).match(workload.traffic(ports, 500, seed=3)[0])
    assert np.array_equal(MatchState.fresh(program).ipvs.RS[:, :5], built.RS)  # matching changed the state only


@pytest.mark.parametrize("scheduler", ["wrr", "lc", "sh"])
def test_ipvs_fast_path_agrees_with_the_rule_machine_under_every_scheduler(scheduler):
    """The IPVS fast path under the other schedulers (whose state the round robin's prefetch also reads, a row that
    may lie past the table's end): the rule machine's outcomes, rule counts and masquerade flags, and the same
    endpoints in pieces as whole (the schedulers' state carried between batches)."""
    from kbench.proxy import workload

    config = dataclasses.replace(
        workload.CONFIG, configuration=workload.CONFIGURATION.replace({"ipvs.scheduler": scheduler})
    )
    ports = workload.service_ports(200, 3, seed=4)
    program = program_for("ipvs", COMPILERS["ipvs"](ports, config), config)
    assert program.fast is not None and program.fast.records >= 150
    packets, _ = workload.traffic(ports, 3000, seed=5)
    fast = Matcher(program, seed=1).match(packets)
    slow = Matcher(dataclasses.replace(program, fast=None), seed=1).match(packets)
    assert (fast.outcome == 1).mean() > 0.9
    for field in ("outcome", "rules", "masq", "endpoint"):
        assert np.array_equal(getattr(fast, field), getattr(slow, field)), field
    pieces = Matcher(program, seed=1)
    parts = [pieces.match(packets.take(slice(a, b))) for a, b in ((0, 7), (7, 3000))]
    assert np.array_equal(np.concatenate([p.endpoint for p in parts]), fast.endpoint)


def test_clear_caches_empties_every_compile_memo():
    """``kbench.proxy.clear_caches`` empties every module-level memo of the proxy package (a new one must join
    ``COMPILE_CACHES``), each of which a compile in some mode fills from empty; a compile after it matches as one
    before it did."""
    import functools
    import importlib
    import pkgutil

    import kbench.proxy as proxy
    from kbench.proxy import workload

    memos = set()
    for info in pkgutil.iter_modules(proxy.__path__):
        module = importlib.import_module(f"kbench.proxy.{info.name}")
        memos |= {id(v) for v in vars(module).values() if isinstance(v, functools._lru_cache_wrapper)}
    assert memos == {id(c) for c in proxy.COMPILE_CACHES}
    ports = workload.service_ports(50, 3)
    packets, _ = workload.traffic(ports, 500, seed=3)
    empty = [0] * len(proxy.COMPILE_CACHES)

    def matched() -> list:  # each mode compiled, then its matcher's endpoints for the packets
        out = []
        for mode in ("iptables", "ipvs", "nftables"):
            program = program_for(mode, COMPILERS[mode](ports, workload.CONFIG), workload.CONFIG)
            out.append(Matcher(program, seed=1).match(packets).endpoint)
        return out

    proxy.clear_caches()  # earlier tests of this process filled them
    assert [c.cache_info().currsize for c in proxy.COMPILE_CACHES] == empty
    before = matched()
    assert all(c.cache_info().currsize > 0 for c in proxy.COMPILE_CACHES)
    proxy.clear_caches()
    assert [c.cache_info().currsize for c in proxy.COMPILE_CACHES] == empty
    assert all(np.array_equal(a, b) for a, b in zip(before, matched(), strict=True))
