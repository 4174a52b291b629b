"""A scenario's ``measure:`` section: which pods each ClusterLoader2 measurement counts, as CL2's measurement params
name it (``labelSelector``, ``threshold``); parsed and validated here, applied by :mod:`kbench.metrics.slis`."""

from __future__ import annotations

from collections.abc import Mapping

from kbench.api.selectors import LABEL_OPERATORS, check_label_selector, label_key_error, selector_value_error
from kbench.apiserver.objects import parse_label_selector, split_terms
from kbench.componentconfig import parse_duration
from kbench.metrics.slis import MEASUREMENTS, Measure

_SELECTOR_HELP = "the pods the measurement counts (ClusterLoader2's labelSelector param; default: every pod)"
MEASURE_FIELDS = {
    "podStartupLatency": {
        "labelSelector": _SELECTOR_HELP,
        "threshold": "pod_startup's SLO, a Go duration (CL2's defaultPodStartupLatencyThreshold: 5s)",
    },
    "schedulingThroughput": {"labelSelector": _SELECTOR_HELP},
}
"""Fields of each ``measure:`` entry, named as ClusterLoader2's measurement params."""


def parse(raw, where: str) -> dict[str, Measure]:
    """The ``measure:`` section: ``{podStartupLatency: {labelSelector: "group = latency"}, ...}``."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ValueError(f"{where}: expected a mapping of measurements ({', '.join(MEASUREMENTS)})")
    out = {}
    for key, entry in raw.items():
        if key not in MEASUREMENTS:
            raise ValueError(f"{where}.{key}: unknown measurement; allowed: {', '.join(MEASUREMENTS)}")
        allowed = MEASURE_FIELDS[key]
        if not isinstance(entry, Mapping):
            raise ValueError(f"{where}.{key}: expected a mapping of fields ({', '.join(allowed)})")
        for name in entry:
            if name not in allowed:
                raise ValueError(f"{where}.{key}.{name}: unknown field; allowed: {', '.join(allowed)}")
        written = entry.get("labelSelector")
        selector = None if written is None else label_selector(written, f"{where}.{key}.labelSelector")
        threshold = None
        if "threshold" in entry:
            threshold = parse_duration(entry["threshold"], f"{where}.{key}.threshold")
            if threshold <= 0:
                raise ValueError(f"{where}.{key}.threshold: expected a duration > 0; got {entry['threshold']!r}")
        out[key] = Measure(written, selector, threshold)
    return out


SELECTOR_SYNTAX = (
    "a label selector string (k8s.io/apimachinery labels.Parse: comma-separated 'key=value', 'key==value', "
    "'key!=value', 'key in (a,b)', 'key notin (a,b)', 'key', '!key'; e.g. 'group = latency') or a "
    "metav1.LabelSelector mapping {matchLabels: {...}, matchExpressions: [{key, operator, values}]}"
)


def label_selector(written, where: str) -> Mapping:
    """Parse and validate a measurement's label selector (string or LabelSelector mapping), as
    ``labels.Parse`` / ``metav1.LabelSelectorAsSelector`` would refuse it."""
    if isinstance(written, str):
        text = written.strip()
        if text.count("(") != text.count(")") or any(
            (" in " in t or " notin " in t) and not ("(" in t and t.endswith(")")) for t in split_terms(text)
        ):  # labels.Parse: a set's values are in parentheses ("key in (a,b)"; "key in a" is refused)
            raise ValueError(f"{where}: {written!r} is not a valid selector; expected {SELECTOR_SYNTAX}")
        selector: Mapping = parse_label_selector(text) or {}
    elif isinstance(written, Mapping):
        unknown = set(written) - {"matchLabels", "matchExpressions"}
        if unknown:
            raise ValueError(f"{where}.{sorted(unknown)[0]}: unknown field; allowed: matchLabels, matchExpressions")
        if not isinstance(written.get("matchLabels") or {}, Mapping) or not isinstance(
            written.get("matchExpressions") or [], list
        ):
            raise ValueError(f"{where}: expected {SELECTOR_SYNTAX}")
        for i, expr in enumerate(written.get("matchExpressions") or []):
            if not isinstance(expr, Mapping) or not isinstance(expr.get("values") or [], list):
                raise ValueError(
                    f"{where}.matchExpressions[{i}]: expected a mapping {{key, operator, values: [...]}} "
                    f"(operators: {', '.join(LABEL_OPERATORS)}); got {expr!r}"
                )
        check_label_selector(written, where)
        selector = written
    else:
        raise ValueError(f"{where}: expected {SELECTOR_SYNTAX}; got {written!r}")
    keys = [*(selector.get("matchLabels") or {}), *(e.get("key", "") for e in selector.get("matchExpressions") or [])]
    for key in keys:
        if (why := label_key_error(str(key))) is not None:
            raise ValueError(f"{where}: key {key!r}: {why}; expected {SELECTOR_SYNTAX}")
    bad = selector_value_error(selector)
    if bad is not None:
        _, key, value, why = bad
        raise ValueError(f"{where}: value {value!r} of {key!r}: {why}")
    return selector
