"""Upstream kube-proxy's packet-flow tables and full rule dumps (tests/proxy/golden), run against kbench."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from kbench.proxy import iptables, nftables
from kbench.proxy.kube_proxy import COMPILERS
from kbench.proxy.model import ProxierConfig, objects_of, service_ports
from kbench.proxy.tracer import Packet, tracer_for

GOLDEN = Path(__file__).parent / "golden"


def load_golden(name: str) -> dict:
    """The golden file ``tests/proxy/golden/<name>.yaml``."""
    return yaml.safe_load((GOLDEN / f"{name}.yaml").read_text())


def _cases(mode: str, kind: str) -> list:
    doc = load_golden(f"{mode}_{kind}")
    items = doc["cases"] if kind == "flows" else doc["dumps"]
    return [pytest.param(doc, item, id=item["name"]) for item in items]


def golden_config(doc: dict, item: dict) -> ProxierConfig:
    """The proxier a golden case runs (the file's ``proxier`` settings, then the case's), in the file's mode."""
    config = ProxierConfig.from_dict({**(doc.get("proxier") or {}), **(item.get("proxier") or {})})
    return config.for_mode(doc.get("mode", "iptables"))


def sort_iptables(text: str) -> str:
    """Upstream's sortIPTablesRules: tables by name; KUBE-NODEPORTS, KUBE-SERVICES, other KUBE-* chains, the rest;
    rules grouped by chain, those of KUBE-NODEPORTS / KUBE-SERVICES stably sorted by the service in their comment."""
    tables: dict[str, tuple[list, list]] = {}
    for line in text.strip("\n").split("\n"):
        if line.startswith("*"):
            current = tables.setdefault(line[1:], ([], []))
        elif line.startswith(":"):
            current[0].append(line)
        elif line != "COMMIT":
            current[1].append(line)

    def chain_key(line: str):
        name = line[1:].split()[0]
        return {"KUBE-NODEPORTS": (0, ""), "KUBE-SERVICES": (1, "")}.get(
            name, (2 if name.startswith("KUBE-") else 3, name)
        )

    def rule_key(line: str) -> str:
        if "must be the last rule" in line:
            return "\uffff"
        m = re.search(r'--comment "?([^" ]+)', line)
        return m.group(1).split(":")[0] if m else ""

    out = []
    for table in sorted(tables):
        chains, rules = tables[table]
        chains = sorted(chains, key=chain_key)
        out += [f"*{table}", *chains]
        for chain in (c[1:].split()[0] for c in chains):
            mine = [r for r in rules if r.split()[1] == chain]
            out += sorted(mine, key=rule_key) if chain in ("KUBE-NODEPORTS", "KUBE-SERVICES") else mine
        out.append("COMMIT")
    return "\n".join(out) + "\n"


def sort_nftables(text: str) -> str:
    """Upstream's sortNFTablesTransaction: drop blanks and comments; order by object type, then object name, rules
    keeping their relative order and other lines by their text."""
    order = {"table": 0, "chain": 1, "rule": 2, "set": 3, "map": 4, "element": 5}
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]

    def key(item):
        i, line = item
        words = line.split()
        name = words[4] if len(words) > 4 else ""
        return (order[words[1]], name, "", i) if words[1] == "rule" else (order[words[1]], name, line, 0)

    return "\n".join(line for _, line in sorted(enumerate(lines), key=key)) + "\n"


def case_tracer(mode: str, doc: dict, item: dict):
    config = golden_config(doc, item)
    return tracer_for(mode, COMPILERS[mode](service_ports(*objects_of(item), config), config), config)


@pytest.mark.parametrize(("doc", "case"), _cases("iptables", "flows") + _cases("nftables", "flows"))
def test_packet_flows(doc, case):
    tracer = case_tracer(doc["mode"], doc, case)
    wrong = []
    for flow in case["flows"]:
        outputs, masq = tracer.trace(Packet.of(flow["sourceIP"], flow["protocol"], flow["destIP"], flow["destPort"]))
        if ", ".join(outputs) != flow["output"] or masq != flow["masq"]:
            wrong.append(
                f"{flow['name']}: expected {flow['output']!r} masq={flow['masq']}, "
                f"got {', '.join(outputs)!r} masq={masq}"
            )
    assert not wrong, "\n".join(wrong)


def test_golden_tables_are_complete():
    """The ported tables cover what the README promises (a guard against truncated golden files)."""
    flows = {
        mode: sum(len(c["flows"]) for c in load_golden(f"{mode}_flows")["cases"]) for mode in ("iptables", "nftables")
    }
    assert flows == {"iptables": 239, "nftables": 207}
    assert len(load_golden("iptables_dump")["dumps"]) == 3 and len(load_golden("nftables_dump")["dumps"]) == 9


@pytest.mark.parametrize(("doc", "dump"), _cases("iptables", "dump"))
def test_iptables_dump(doc, dump):
    config = golden_config(doc, dump)
    rules = iptables.compile_rules(service_ports(*objects_of(dump), config), config)
    assert sort_iptables(rules.text()) == sort_iptables(dump["expected"])


@pytest.mark.parametrize(("doc", "dump"), _cases("nftables", "dump"))
def test_nftables_dump(doc, dump):
    config = golden_config(doc, dump)
    rules = nftables.compile_rules(service_ports(*objects_of(dump), config), config)
    assert sort_nftables(rules.dump()) == sort_nftables(dump["expected"])


def test_sorting_keeps_rule_order_within_a_chain():
    """The normalization must not hide a wrong rule order: swapping two rules of one chain is a difference."""
    doc = load_golden("nftables_dump")
    text = doc["dumps"][0]["expected"]
    lines = text.splitlines()
    masq = [i for i, line in enumerate(lines) if line.startswith("add rule ip kube-proxy masquerading")]
    lines[masq[0]], lines[masq[1]] = lines[masq[1]], lines[masq[0]]
    assert sort_nftables("\n".join(lines)) != sort_nftables(text)
    ipt = load_golden("iptables_dump")["dumps"][0]["expected"].splitlines()
    post = [i for i, line in enumerate(ipt) if line.startswith("-A KUBE-POSTROUTING")]
    swapped = list(ipt)
    swapped[post[0]], swapped[post[1]] = swapped[post[1]], swapped[post[0]]
    assert sort_iptables("\n".join(swapped)) != sort_iptables("\n".join(ipt))
