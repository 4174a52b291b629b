"""kube-proxy: rule compilation (iptables, IPVS, nftables), tracing, compiled matching, sync cost on the engine."""

from kbench.proxy import iptables, nftables, program
from kbench.proxy.config import MODES, KubeProxyConfiguration
from kbench.proxy.kube_proxy import KubeProxy, ProxyCosts
from kbench.proxy.matcher import Matcher, MatchResult, program_for
from kbench.proxy.model import EndpointInfo, ProxierConfig, ServicePortInfo, service_ports
from kbench.proxy.program import Packets
from kbench.proxy.proxier import FORMATS, Proxier

__all__ = [
    "FORMATS",
    "MODES",
    "EndpointInfo",
    "KubeProxy",
    "KubeProxyConfiguration",
    "MatchResult",
    "Matcher",
    "Packets",
    "Proxier",
    "ProxierConfig",
    "ProxyCosts",
    "ServicePortInfo",
    "clear_caches",
    "program_for",
    "service_ports",
]

COMPILE_CACHES = (program.encode_text, program.encode_cidr, nftables.hash_and_truncate, iptables.hash16)
"""The rule compilers' process-wide memos (addresses parsed, CIDRs, chain-name hashes): up to 1.6 M entries."""


def clear_caches() -> None:
    """Empty :data:`COMPILE_CACHES`. They outlive the rulesets compiled through them, and a large build leaves them
    full: after one nftables compile of 30,000 Services x 10 endpoints they held 660 k entries, strewn through the
    memory of the build's own objects, so that with the build gone 1.3 GiB stayed resident (fragmented) and
    SchedulingBasic run after it in the same process took 33 ms a batch instead of 22 ms (measured on a 2-core AMD
    EPYC). Call it once such a build is done with; later compiles fill them again."""
    for cached in COMPILE_CACHES:
        cached.cache_clear()
