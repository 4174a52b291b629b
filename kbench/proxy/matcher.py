"""The packet matcher: a mode's rule set compiled to a program, and batches of packets matched against it.

``program_for(mode, rules, config)`` lowers the rules (``lowering.py``) and adds the fast path when the rules
allow one (``fastpath.py``); :class:`Matcher` matches batches of packets, the fast path first and the rule machine
for the rest, keeping the random stream and the affinity / persistence state between batches.
``Matcher.match_python`` runs the same kernels as plain Python (:func:`~kbench.proxy.program.interpreted`), the
reference the benchmark compares against.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass, field

import numpy as np

from kbench.proxy import _fast_kernels as FK
from kbench.proxy import _kernels as K
from kbench.proxy import fastpath
from kbench.proxy.ipvs import IpvsRules
from kbench.proxy.lowering import lower_iptables, lower_ipvs, lower_nftables
from kbench.proxy.model import ProxierConfig
from kbench.proxy.program import (
    FastPath,
    MatchState,
    Packets,
    Program,
    interpreted,
    new_verdicts,
    run_rule_machine,
)

OUTCOMES = ("", "DNAT", "ACCEPT", "DROP", "REJECT")
"""``OUT_*`` code -> what the tracer writes."""

__all__ = ["MatchResult", "Matcher", "program_for"]


def program_for(mode: str, rules, config: ProxierConfig) -> Program:
    """Compile a mode's rule set (``iptables.IptablesRules``, ``nftables.NftRuleset``, ``ipvs.IpvsRules``)."""
    if mode == "iptables":
        return lower_iptables(rules, config)
    if mode == "nftables":
        built, parsed = lower_nftables(rules, config)
        built.fast = fastpath.build_nftables(parsed, built)
        return built
    if not isinstance(rules, IpvsRules):
        raise TypeError(f"mode {mode!r}: expected the rules of kbench.proxy.ipvs.compile_rules, got {type(rules)}")
    built = lower_ipvs(rules, config)
    built.fast = fastpath.build_ipvs(rules, built)
    return built


@dataclass
class MatchResult:
    """What happened to each packet of a batch."""

    outcome: np.ndarray
    """OUT_* codes: 0 untouched, 1 DNAT, 2 ACCEPT, 3 DROP, 4 REJECT."""
    endpoint: np.ndarray
    """The endpoint id (into ``endpoints``) it was DNATed to, or -1."""
    masq: np.ndarray
    """Masquerade requested."""
    rules: np.ndarray
    """Rules (and IPVS entries) evaluated: what the first-packet cost model charges."""
    endpoints: list[str] = field(repr=False, default_factory=list)

    def output(self, i: int) -> str:
        """The packet's fate as the tracer writes it: the endpoint, ACCEPT / DROP / REJECT, or ""."""
        kind = int(self.outcome[i])
        return self.endpoints[int(self.endpoint[i])] if kind == K.OUT_DNAT else OUTCOMES[kind] if kind > 1 else ""


class Matcher:
    """Matches packets against a program; state (random stream, affinity, IPVS schedulers) persists across calls."""

    def __init__(self, prog: Program, seed: int = 0, affinity_capacity: int = 1 << 16) -> None:
        self.program = prog
        self.state = MatchState.fresh(prog, seed, affinity_capacity)
        self._scratch = FK.Scratch(np.empty(0, np.int64), np.empty(0, np.int64))
        """The fast path's scratch, kept for the next batch (fresh memory would cost a page fault per 512 packets)."""

    def match(self, packets: Packets) -> MatchResult:
        """Match a batch with the compiled kernels."""
        return self._match(packets, False)

    def match_python(self, packets: Packets) -> MatchResult:
        """The same algorithms interpreted by CPython (the benchmark's plain reference)."""
        return self._match(packets, True)

    def _match(self, packets: Packets, python: bool) -> MatchResult:
        with interpreted(K, FK) if python else nullcontext():
            if self.program.fast is None:
                out = run_rule_machine(self.program, packets, self.state)
            else:
                out = self._fast(packets, self.program.fast)
                rest = np.flatnonzero(out.kind < 0)
                if len(rest):
                    sub = run_rule_machine(self.program, packets.take(rest), self.state)
                    for full, part in zip(out, sub):
                        full[rest] = part
        return MatchResult(out.kind, out.endpoint, out.masq, out.rules, endpoints=self.program.endpoints)

    def _fast(self, packets: Packets, fast: FastPath) -> K.Verdicts:
        """The fast path's verdicts (-1: not resolved there)."""
        out = new_verdicts(len(packets))
        state = self.state
        scratch = self._scratch
        if len(scratch.rec) < len(packets):
            self._scratch = scratch = FK.Scratch(np.empty(len(packets), np.int64), np.empty(len(packets), np.int64))
        if isinstance(fast.tables, FK.NftFastTables):
            FK.run_nft_fast(packets.arrays, fast.tables, state.rng, scratch, out)
        else:
            n_aff = len(self.program.rules.AFF_TIMEOUT) - len(state.ipvs.VS)
            timeouts = self.program.rules.AFF_TIMEOUT
            FK.run_ipvs_fast(packets.arrays, fast.tables, n_aff, state.ipvs, state.affinity, timeouts, scratch, out)
        return out
