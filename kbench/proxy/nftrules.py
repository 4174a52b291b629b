"""nftables rule text read back into matches and verdicts (the subset of nft's grammar kube-proxy writes).

Shared by the tracer and the compiled matcher, so both evaluate exactly the rules that were rendered.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from kbench.proxy.nftables import NftRuleset

_COMMENT = re.compile(r'\s+comment\s+"[^"]*"\s*$')


@dataclass
class NftRule:
    """One nftables rule as the tracer and the compiled matcher read it: matches, side effects and verdict."""

    text: str
    matches: list[tuple] = field(default_factory=list)
    """("addr", "saddr"|"daddr", negated, "set"|"cidrs", name or list) / ("fib", field, negated) /
    ("l4proto", proto) / ("ct_new",) / ("mark", value)."""
    lookup: tuple[int, str] | None = None
    """Verdict-map lookup: (3 for ``ip . proto . port`` keys, 2 for ``proto . port``, map name)."""
    numgen: list[tuple[str, str]] = field(default_factory=list)
    set_masq: bool = False
    update_set: str = ""
    verdict: tuple[str, str] | None = None
    """("jump"|"goto", chain) / ("drop"|"reject"|"accept"|"return", "") / ("dnat", "ip:port")."""


@dataclass
class NftProgram:
    """A ruleset parsed back: rules by chain, set members, verdict-map elements and affinity sets."""

    chains: dict[str, list[NftRule]]
    sets: dict[str, set[tuple[str, ...]]]
    maps: dict[str, dict[tuple[str, ...], tuple[str, str]]]
    dynamic_sets: dict[str, int]
    """Affinity sets: name -> timeout in seconds."""


def parse_verdict(text: str) -> tuple[str, str]:
    """``jump CHAIN`` -> ("jump", "CHAIN"); ``drop`` -> ("drop", "")."""
    kind, _, arg = text.strip().partition(" ")
    return kind, arg.strip()


def parse_rule(text: str) -> NftRule:
    """One rule's text (as ``add rule`` writes it, without the chain) as an :class:`NftRule`."""
    rule = NftRule(text)
    words = _COMMENT.sub("", text).split()
    i = 0
    while i < len(words):
        w = words[i]
        if w in ("ip", "ip6") and words[i + 2] == ".":
            rule.lookup = (3, words[i + 9].lstrip("@"))  # ip daddr . meta l4proto . th dport vmap @map
            i += 10
        elif w in ("ip", "ip6"):
            fld, i = words[i + 1], i + 2
            negated = words[i] == "!="
            i += negated
            if words[i].startswith("@"):
                rule.matches.append(("addr", fld, negated, "set", words[i][1:]))
                i += 1
            elif words[i] == "{":
                end = words.index("}", i)
                items = [v.strip(",") for v in words[i + 1 : end] if v.strip(",")]
                rule.matches.append(("addr", fld, negated, "cidrs", items))
                i = end + 1
            else:
                rule.matches.append(("addr", fld, negated, "cidrs", [words[i]]))
                i += 1
        elif w == "meta" and words[i + 2] == ".":
            rule.lookup = (2, words[i + 6].lstrip("@"))  # meta l4proto . th dport vmap @map
            i += 7
        elif w == "meta":
            rule.matches.append(("l4proto", words[i + 2]))
            i += 3
        elif w == "fib":
            negated = words[i + 3] == "!="
            rule.matches.append(("fib", words[i + 1], negated))
            i += 5 if negated else 4
        elif w == "ct":
            rule.matches.append(("ct_new",))
            i += 3
        elif w == "mark" and words[i + 1] == "and":
            rule.matches.append(("mark", words[i + 2]))
            i += 5
        elif w == "mark":  # mark set mark or|xor X
            rule.set_masq = words[i + 3] == "or"
            i += 5
        elif w == "numgen":
            end = words.index("}", i)
            entries = " ".join(words[i + 6 : end]).split(",")
            rule.numgen = [parse_verdict(e.split(":", 1)[1]) for e in entries]
            i = end + 1
        elif w == "update":
            rule.update_set = words[i + 1].lstrip("@")
            i = words.index("}", i) + 1
        elif w in ("jump", "goto"):
            rule.verdict, i = (w, words[i + 1]), i + 2
        elif w == "dnat":
            rule.verdict, i = ("dnat", words[i + 2]), i + 3
        elif w in ("drop", "reject", "accept", "return"):
            rule.verdict, i = (w, ""), i + 1
        elif w == "masquerade":
            i = len(words)
        else:
            raise ValueError(f"nft rule {text!r}: cannot read {w!r}")
    return rule


def program(rs: NftRuleset) -> NftProgram:
    """The ruleset's chains as parsed rules, its static sets and its verdict maps."""
    sets, maps, dynamic = {}, {}, {}
    for s in rs.sets.values():
        if s.is_map:
            maps[s.name] = {key: parse_verdict(v) for key, v, _ in s.elements}
        elif "dynamic" in s.flags:
            dynamic[s.name] = s.timeout
        else:
            sets[s.name] = {key for key, _, _ in s.elements}
    chains = {c.name: [parse_rule(r) for r in c.rules] for c in rs.chains.values()}
    return NftProgram(chains, sets, maps, dynamic)
