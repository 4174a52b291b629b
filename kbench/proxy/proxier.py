"""One node's kube-proxy state from Kubernetes manifests: validate, compile, render, trace, match.

``Proxier.sync(manifests)`` reads Services and EndpointSlices, refuses bad input with an error that names the
object and field (invalid IPs, ports out of range, duplicate ClusterIPs, EndpointSlices of unknown Services or
ports), and only then replaces its rule set: after a refused sync the previous rules stay in force, as a
kube-proxy keeps its last good rules.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from kbench.proxy.kube_proxy import COMPILERS
from kbench.proxy.matcher import Matcher, program_for
from kbench.proxy.model import MODES, ProxierConfig, ServicePortInfo, read_objects, service_ports
from kbench.proxy.tracer import Packet, tracer_for

FORMATS = {"iptables": ("iptables-save",), "nftables": ("nft", "nft-list"), "ipvs": ("ipvsadm", "iptables-save",
                                                                                      "ipset")}
"""Renderings per mode: the restore input, ``nft -f`` commands / ``nft list ruleset``, ``ipvsadm -Ln``, ipsets."""


class Proxier:
    """A kube-proxy in ``mode`` for the node described by ``config``."""

    def __init__(self, mode: str, config: ProxierConfig | None = None) -> None:
        if mode not in MODES:
            raise ValueError(f"mode: must be one of {', '.join(MODES)}; got {mode!r}")
        self.mode = mode
        self.config = config or ProxierConfig()
        self.ports: list[ServicePortInfo] = []
        self.rules = COMPILERS[mode]([], self.config)

    def sync(self, manifests: Iterable[Mapping]) -> None:
        """Replace the rule set with the one for these manifests (other kinds are ignored)."""
        services, slices = read_objects(manifests, strict=True)
        ports = service_ports(services, slices, self.config)
        rules = COMPILERS[self.mode](ports, self.config)
        self.ports, self.rules = ports, rules

    def render(self, fmt: str | None = None) -> str:
        """The rule set as text; ``fmt`` is one of ``FORMATS[mode]`` (default: the first)."""
        fmt = fmt or FORMATS[self.mode][0]
        if fmt not in FORMATS[self.mode]:
            raise ValueError(f"format: {self.mode} renders as {', '.join(FORMATS[self.mode])}; got {fmt!r}")
        if fmt == "iptables-save":
            return self.rules.text()
        if fmt == "nft":
            return self.rules.dump()
        if fmt == "nft-list":
            return self.rules.list_ruleset()
        if fmt == "ipvsadm":
            return self.rules.ipvsadm()
        lines = []
        for s in self.rules.ipsets.values():
            lines += [f"Name: {s.name}", f"Type: {s.type}", "Members:"]
            lines += sorted(s.entry_text(e) for e in s.entries)
            lines.append("")
        return "\n".join(lines)

    def tracer(self):
        """The upstream-style tracer over the current rules."""
        return tracer_for(self.mode, self.rules, self.config)

    def trace(self, source: str, protocol: str, destination: str, port: int) -> tuple[list[str], bool]:
        """Every fate of a new connection's first packet: (endpoints and verdicts, masquerade requested)."""
        return self.tracer().trace(Packet.of(source, protocol, destination, port))

    def matcher(self, seed: int = 0) -> Matcher:
        """The compiled matcher over the current rules."""
        return Matcher(program_for(self.mode, self.rules, self.config), seed)
