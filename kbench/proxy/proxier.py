"""One node's kube-proxy state from Kubernetes manifests: validate, compile, render, trace, match.

``Proxier.sync(manifests)`` reads Services and EndpointSlices (``kind: List`` expanded; other kinds kbench
models are not kube-proxy's and are skipped, an unknown kind is an error). What the apiserver would refuse
(invalid IPs, ports out of range, an address of the wrong family for its slice, a string where a boolean
belongs, duplicate ClusterIPs or NodePorts, a NodePort outside 30000-32767) is refused with an error that
names the object and field, and only then is the rule set replaced: after a refused sync the previous rules
stay in force, as a kube-proxy keeps its last good rules. What kube-proxy itself ignores (a Service with no
ClusterIP of the proxier's family, slices of another family or of no known Service) is ignored and listed in
``Proxier.ignored``, one line each.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from kbench.api.core import ManifestError, load_manifests
from kbench.api.network import parse_ip
from kbench.apiserver.objects import KINDS
from kbench.proxy.kube_proxy import COMPILERS
from kbench.proxy.matcher import Matcher, program_for
from kbench.proxy.model import ProxierConfig, ServicePortInfo, read_objects, service_ports
from kbench.proxy.tracer import Packet, tracer_for

FORMATS = {
    "iptables": ("iptables-save",),
    "nftables": ("nft", "nft-list"),
    "ipvs": ("ipvsadm", "iptables-save", "ipset"),
}
"""Renderings per mode: the restore input, ``nft -f`` commands / ``nft list ruleset``, ``ipvsadm -Ln``, ipsets."""


class Proxier:
    """A kube-proxy in ``mode`` for the node described by ``config`` (its configuration's mode set to ``mode``)."""

    def __init__(self, mode: str, config: ProxierConfig | None = None) -> None:
        self.config = (config or ProxierConfig()).for_mode(mode)
        self.mode = mode
        self.ports: list[ServicePortInfo] = []
        self.rules = COMPILERS[mode]([], self.config)
        self.ignored: list[str] = []
        """What kube-proxy ignored in the last sync, one line each (upstream logs it)."""

    def sync(self, manifests: str | Iterable[Mapping], origin: str = "manifests") -> list[str]:
        """Replace the rule set with the one for these manifests (YAML text or objects); returns :attr:`ignored`.

        Raises
        ------
        ManifestError
            Invalid YAML, what the apiserver would refuse, or a kind kbench does not model, named with ``origin``
            (a file name); the rules are then unchanged.
        """
        objects = load_manifests(manifests, origin, kinds=KINDS)
        try:
            services, slices = read_objects(objects)
        except ManifestError as err:
            raise ManifestError(f"{origin}: {err}") from None
        ignored: list[str] = []
        ports = service_ports(services, slices, self.config, ignored)
        rules = COMPILERS[self.mode](ports, self.config)
        self.ports, self.rules, self.ignored = ports, rules, ignored
        return ignored

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

    def unmatched(self, destination: str, protocol: str, port: int) -> str:
        """Why a traced packet met no rule: kube-proxy only handles traffic to Service addresses, so any other
        packet is routed as it is; names the Service ports at ``destination`` if it is one (a wrong port or
        protocol)."""
        ip = str(parse_ip(destination))
        there = [sp for sp in self.ports if ip in (sp.cluster_ip, *sp.external_ips, *sp.load_balancer_ips)]
        packet = f"{protocol.upper()} {f'[{ip}]' if ':' in ip else ip}:{port}"
        if there:
            offered = ", ".join(sorted({f"{sp.protocol} {sp.port} ({sp.name_string})" for sp in there}))
            return f"no kube-proxy rule matched {packet}: that address serves only {offered}"
        return (
            f"no kube-proxy rule matched {packet}: not a Service address on this node, so kube-proxy leaves "
            "the packet to normal routing"
        )

    def matcher(self, seed: int = 0) -> Matcher:
        """The compiled matcher over the current rules."""
        return Matcher(program_for(self.mode, self.rules, self.config), seed)
