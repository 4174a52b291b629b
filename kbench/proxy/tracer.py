"""Packet tracers: follow every branch a new connection could take through kube-proxy's rules.

Ports of upstream's test helpers (kubernetes v1.35 ``pkg/proxy/iptables/proxier_test.go`` ``tracePacket`` and
``pkg/proxy/nftables/helpers_test.go`` ``tracePacket``): probabilistic jumps (``statistic``, ``numgen``) are
followed on every branch, so the result lists every endpoint the packet might be DNATed to, plus the
ACCEPT / DROP / REJECT verdicts reached and whether masquerading was requested. Stateful matches
(``recent --rcheck``, affinity sets) never match, as in upstream's tracers: a traced packet opens a new
connection (``--ctstate NEW``) and carries only the masquerade mark the traversed rules set. The filter
chains run with the destination rewritten by the first DNAT.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass

from kbench.api.network import PROTOCOLS, parse_cidr, parse_ip
from kbench.proxy import iptables as ipt
from kbench.proxy import nftrules
from kbench.proxy.ipvs import IpvsRules
from kbench.proxy.model import ProxierConfig
from kbench.proxy.nftrules import NftProgram, NftRule


@dataclass
class Packet:
    """A new connection's first packet, as the tracers follow it."""

    source: ipaddress._BaseAddress
    protocol: str
    """Lower case: tcp, udp, sctp."""
    destination: ipaddress._BaseAddress
    dport: int

    @classmethod
    def of(cls, source: str, protocol: str, destination: str, dport: int) -> Packet:
        """A new connection's first packet (protocol default TCP); raises ValueError naming an invalid field."""
        protocol = protocol or "TCP"
        if not isinstance(protocol, str) or protocol.upper() not in PROTOCOLS:
            raise ValueError(
                f"protocol: must be one of {', '.join(PROTOCOLS)} (what kube-proxy programs); got {protocol!r}"
            )
        if isinstance(dport, bool) or not isinstance(dport, int) or not 1 <= dport <= 65535:
            raise ValueError(f"port: must be 1-65535; got {dport!r}")
        addresses = []
        for name, value in (("source", source), ("destination", destination)):
            try:
                addresses.append(parse_ip(value))
            except ValueError:
                raise ValueError(f"{name}: {value!r} is not a valid IP address") from None
        if addresses[0].version != addresses[1].version:
            raise ValueError(f"source {source} and destination {destination}: one packet has one IP family")
        return cls(addresses[0], protocol.lower(), addresses[1], dport)


def in_network(address, network: str) -> bool:
    """Whether ``address`` is in ``network`` (a CIDR or one address) of its own family."""
    net = parse_cidr(network) if "/" in network else ipaddress.ip_network(parse_ip(network))
    return address.version == net.version and address in net


def host_of(output: str):
    """The IP of a DNAT destination ``ip:port`` / ``[ip]:port``."""
    host = output.rsplit(":", 1)[0]
    return parse_ip(host.strip("[]"))


class IptablesTracer:
    """``iptablesTracer``: nat KUBE-SERVICES, then filter KUBE-SERVICES, KUBE-EXTERNAL-SERVICES, KUBE-NODEPORTS,
    KUBE-PROXY-FIREWALL. ``sets`` resolves ``-m set`` matches (IPVS mode's ipsets)."""

    NAT_ENTRY: tuple[str, ...] = ("KUBE-SERVICES",)
    FILTER_ENTRY: tuple[str, ...] = ("KUBE-SERVICES", "KUBE-EXTERNAL-SERVICES", "KUBE-NODEPORTS", "KUBE-PROXY-FIREWALL")

    def __init__(self, rules: list[ipt.Rule], config: ProxierConfig, sets: Mapping | None = None) -> None:
        self.chains: dict[tuple[str, str], list[ipt.Rule]] = {}
        for r in rules:
            self.chains.setdefault((r.table, r.chain), []).append(r)
        self.local = config.local_addresses()
        self.sets = sets or {}

    def trace(self, packet: Packet) -> tuple[list[str], bool]:
        """Every fate of ``packet``: (endpoints and verdicts, masquerade requested)."""
        self.outputs: list[str] = []
        self.masq = False
        for chain in self.NAT_ENTRY:
            self._run("nat", chain, packet)
        if self.outputs:
            packet = Packet(packet.source, packet.protocol, host_of(self.outputs[0]), packet.dport)
        for chain in self.FILTER_ENTRY:
            self._run("filter", chain, packet)
        return self.outputs, self.masq

    def matches(self, r: ipt.Rule, p: Packet) -> bool:
        """Whether rule ``r``'s matches hold for ``p`` (a ``statistic`` match always may)."""
        if r.unsupported or (r.recent is not None and r.recent[1] == "rcheck"):
            return False
        if r.ctstate is not None and ("NEW" in r.ctstate[1]) == r.ctstate[0]:
            return False  # a traced packet opens a new connection
        if r.mark is not None and self.masq == r.mark[0]:
            return False  # the only mark kube-proxy tests is its masquerade bit
        if r.protocol and r.protocol != p.protocol:
            return False
        if r.source and in_network(p.source, r.source) == r.source_negated:
            return False
        if r.destination and in_network(p.destination, r.destination) == r.destination_negated:
            return False
        if r.dport and r.dport != p.dport:
            return False
        if r.src_type_local is not None and (p.source in self.local) != r.src_type_local:
            return False
        if r.dst_type_local is not None and (p.destination in self.local) != r.dst_type_local:
            return False
        return all(self.sets[name].contains(flags, p) != negated for name, flags, negated in r.match_sets)

    def _run(self, table: str, chain: str, p: Packet) -> bool:
        for r in self.chains.get((table, chain), ()):
            if not self.matches(r, p):
                continue
            if r.target == "MARK":
                self.masq = self.masq or r.mark_op == "or"
            elif r.target in ("ACCEPT", "REJECT", "DROP"):
                if table == "filter":  # an ACCEPT in nat only ends the nat table (IPVS mode's VIP rules)
                    self.outputs.append(r.target)
                return True
            elif r.target == "DNAT":
                self.outputs.append(r.to_destination)
                return True
            elif r.target == "RETURN":
                return False
            elif r.target and r.target != "MASQUERADE" and self._run(table, r.target, p) and r.probability is None:
                return True
        return False


class IpvsTracer(IptablesTracer):
    """IPVS mode: nat KUBE-SERVICES, the filter INPUT chains, then the IPVS service lookup, listing every real
    server the scheduler may pick (REJECT for a virtual server without any: ICMP port unreachable)."""

    FILTER_ENTRY = ("KUBE-PROXY-FIREWALL", "KUBE-NODE-PORT", "KUBE-IPVS-FILTER")

    def __init__(self, state: IpvsRules, config: ProxierConfig) -> None:
        super().__init__(ipt.parse(state.text()), config, state.ipsets)
        self.table = state.table

    def trace(self, packet: Packet) -> tuple[list[str], bool]:
        """The iptables rules' fates, else every real server the virtual server may schedule."""
        outputs, masq = super().trace(packet)
        if outputs:
            return outputs, masq
        vs, _ = self.table.find(packet.protocol, packet.destination, packet.dport)
        if vs is not None:
            dests = [d for d in vs.dests if d.available]
            outputs += [d.address for d in dests] or ["REJECT"]
            masq = masq or any(parse_ip(d.ip) == packet.source for d in dests)  # KUBE-LOOP-BACK hairpin
        return outputs, masq


class NftablesTracer:
    """``nftablesTracer``: filter-prerouting-pre-dnat, nat-prerouting, then filter-forward and filter-input."""

    def __init__(self, program: NftProgram, config: ProxierConfig) -> None:
        self.program = program
        self.local = config.local_addresses()

    def trace(self, packet: Packet) -> tuple[list[str], bool]:
        """Every fate of ``packet``: (endpoints and verdicts, masquerade requested)."""
        self.outputs: list[str] = []
        self.masq = False
        if self._run("filter-prerouting-pre-dnat", packet):
            return self.outputs, self.masq
        self._run("nat-prerouting", packet)
        if self.outputs:
            packet = Packet(packet.source, packet.protocol, host_of(self.outputs[0]), packet.dport)
        if not self._run("filter-forward", packet):
            self._run("filter-input", packet)
        return self.outputs, self.masq

    def _address_match(self, m, p: Packet) -> bool:
        _, fld, negated, kind, value = m
        addr = p.source if fld == "saddr" else p.destination
        if kind == "set":
            members = self.program.sets.get(value, set())
            hit = (str(addr),) in members
        else:
            hit = any(in_network(addr, v) for v in value)
        return hit != negated

    def matches(self, rule: NftRule, p: Packet) -> bool:
        """Whether ``rule``'s matches hold for ``p``."""
        for m in rule.matches:
            kind = m[0]
            if kind == "addr" and not self._address_match(m, p):
                return False
            if kind == "fib" and ((p.source if m[1] == "saddr" else p.destination) in self.local) != (not m[2]):
                return False
            if kind == "l4proto" and p.protocol != m[1]:
                return False
            if kind == "mark":  # the packet carries no mark when it enters the chains we trace
                return False
        return True

    def _verdict(self, verdict: tuple[str, str], p: Packet) -> bool | None:
        """Apply a verdict; ``None`` means continue with the next rule."""
        kind, arg = verdict
        if kind in ("drop", "reject"):
            self.outputs.append(kind.upper())
            return True
        if kind == "accept":
            return True
        if kind == "return":
            return False
        if kind == "goto":
            return self._run(arg, p)
        if kind == "jump":
            return True if self._run(arg, p) else None
        if kind == "dnat":
            self.outputs.append(arg)
            return True
        return None

    def _run(self, chain: str, p: Packet) -> bool:
        for rule in self.program.chains.get(chain, ()):
            if not self.matches(rule, p):
                continue
            if rule.set_masq:
                self.masq = True
            if rule.lookup is not None:
                key_kind, name = rule.lookup
                key = (str(p.destination), p.protocol, str(p.dport)) if key_kind == 3 else (p.protocol, str(p.dport))
                verdict = self.program.maps.get(name, {}).get(key)
                if verdict is None:
                    continue
            elif rule.numgen:
                for verdict in rule.numgen:
                    self._verdict(verdict, p)
                return True
            else:
                verdict = rule.verdict
            if verdict is None:
                continue
            result = self._verdict(verdict, p)
            if result is not None:
                return result
        return False


def tracer_for(mode: str, rules, config: ProxierConfig):
    """The tracer of compiled ``rules`` in ``mode``: iptables rules are traced from their restore text, as
    upstream's test helper parses iptables-save; nftables from the parsed ruleset; IPVS from its tables."""
    if mode == "iptables":
        return IptablesTracer(ipt.parse(rules.text()), config)
    if mode == "nftables":
        return NftablesTracer(nftrules.program(rules), config)
    return IpvsTracer(rules, config)
