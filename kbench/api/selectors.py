"""Label selectors and node selector terms, evaluated as the Kubernetes API defines them.

- ``LabelSelector`` (metav1): matchLabels plus matchExpressions with In, NotIn,
  Exists, DoesNotExist; an empty selector matches everything, a missing one nothing.
- ``NodeSelectorTerm`` (core/v1): matchExpressions on labels (In, NotIn, Exists,
  DoesNotExist, Gt, Lt) and matchFields on ``metadata.name``; terms are ORed,
  requirements within a term ANDed, and an empty term matches nothing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

LABEL_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
LABEL_VALUE_RULE = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
    "and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or "
    "'12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)


_LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def label_key_error(key: str) -> str | None:
    """apimachinery validation.IsQualifiedName: None if ``key`` is a valid label key, else why not."""
    prefix, _, name = key.rpartition("/")
    if "/" in key and (not prefix or len(prefix) > 253 or not _SUBDOMAIN.match(prefix)):
        return "prefix part must be a lowercase DNS subdomain (RFC 1123)"
    if not name or len(name) > 63 or not _LABEL_NAME.match(name):
        return (
            "name part must be 1-63 characters, alphanumeric, '-', '_' or '.', starting and ending with an "
            "alphanumeric character"
        )
    return None


def label_value_error(value: str) -> str | None:
    """apimachinery validation.IsValidLabelValue: None if valid, else upstream's message."""
    if len(value) > 63:
        return "must be no more than 63 characters"
    return None if _LABEL_VALUE.match(value) else LABEL_VALUE_RULE


def selector_value_error(selector: Mapping | None) -> tuple[int, str, str, str] | None:
    """First invalid value in a label selector: (value index, key, value, message), as labels.NewRequirement."""
    for key, value in ((selector or {}).get("matchLabels") or {}).items():
        if (msg := label_value_error(str(value))) is not None:
            return 0, key, str(value), msg
    for expr in (selector or {}).get("matchExpressions") or []:
        for i, value in enumerate(expr.get("values") or []):
            if (msg := label_value_error(str(value))) is not None:
                return i, expr.get("key", ""), str(value), msg
    return None


NODE_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt")


def _requirement(key: str, operator: str, values: Sequence[str], labels: Mapping[str, str]) -> bool:
    present = key in labels
    if operator == "In":
        return present and labels[key] in values
    if operator == "NotIn":
        return not present or labels[key] not in values
    if operator == "Exists":
        return present
    if operator == "DoesNotExist":
        return not present
    if operator in ("Gt", "Lt"):
        if not present or len(values) != 1:
            return False
        try:
            mine, theirs = int(labels[key]), int(values[0])
        except ValueError:
            return False
        return mine > theirs if operator == "Gt" else mine < theirs
    raise ValueError(f"unknown selector operator {operator!r}; allowed: {', '.join(NODE_OPERATORS)}")


def check_label_selector(selector: Mapping | None, where: str) -> None:
    """Validate a metav1.LabelSelector; errors name the field."""
    if selector is None:
        return
    if not isinstance(selector, Mapping):
        raise ValueError(f"{where}: a label selector must be a mapping")
    for i, expr in enumerate(selector.get("matchExpressions") or []):
        op = expr.get("operator")
        if op not in LABEL_OPERATORS:
            raise ValueError(
                f"{where}.matchExpressions[{i}].operator: must be one of {', '.join(LABEL_OPERATORS)}; got {op!r}"
            )
        values = expr.get("values") or []
        if op in ("In", "NotIn") and not values:
            raise ValueError(f"{where}.matchExpressions[{i}].values: must be non-empty for {op}")
        if op in ("Exists", "DoesNotExist") and values:
            raise ValueError(f"{where}.matchExpressions[{i}].values: must be empty for {op}")


def label_selector_matches(selector: Mapping | None, labels: Mapping[str, str]) -> bool:
    """metav1.LabelSelectorAsSelector(selector).Matches(labels); None matches nothing."""
    if selector is None:
        return False
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != str(value):
            return False
    return all(
        _requirement(e["key"], e["operator"], [str(v) for v in e.get("values") or []], labels)
        for e in selector.get("matchExpressions") or []
    )


def node_selector_term_matches(term: Mapping, labels: Mapping[str, str], node_name: str) -> bool:
    """One NodeSelectorTerm against a node; a term with no requirements matches nothing."""
    exprs, fields = term.get("matchExpressions") or [], term.get("matchFields") or []
    if not exprs and not fields:
        return False
    if selector_value_error({"matchExpressions": [e for e in exprs if e.get("operator") in ("In", "NotIn")]}):
        return False  # a term that does not parse matches nothing (nodeaffinity.NewNodeSelector)
    for e in exprs:
        if not _requirement(e["key"], e["operator"], [str(v) for v in e.get("values") or []], labels):
            return False
    for f in fields:
        if f.get("key") != "metadata.name":
            return False
        if not _requirement(
            "metadata.name", f["operator"], [str(v) for v in f.get("values") or []], {"metadata.name": node_name}
        ):
            return False
    return True


def node_selector_matches(selector: Mapping | None, labels: Mapping[str, str], node_name: str) -> bool:
    """A NodeSelector (ORed terms); None matches every node."""
    if selector is None:
        return True
    return any(node_selector_term_matches(t, labels, node_name) for t in selector.get("nodeSelectorTerms") or [])
