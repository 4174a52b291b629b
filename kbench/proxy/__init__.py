"""kube-proxy: rule compilation (iptables, IPVS, nftables), tracing, compiled matching, sync cost on the engine."""

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
    "program_for",
    "service_ports",
]
