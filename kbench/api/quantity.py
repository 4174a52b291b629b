"""Kubernetes resource quantities (``k8s.io/apimachinery/pkg/api/resource.Quantity``).

``parse`` reads "100m", "1.5Gi", "2e3", "500M" exactly (with fractions, not
floats). ``milli_value`` and ``value`` round up to an integer as Quantity's
``MilliValue()`` and ``Value()`` do; kube-scheduler keeps CPU in milli-cores and
every other resource in base units.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {"n": Fraction(1, 10**9), "u": Fraction(1, 10**6), "m": Fraction(1, 1000), "": 1, "k": 10**3,
            "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18}
_PATTERN = re.compile(r"^([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))([eE][+-]?[0-9]+|[a-zA-Z]{0,2})$")


def parse(text: str | int | float, field: str = "quantity") -> Fraction:
    """The exact value of a quantity; ``field`` names it in errors."""
    if isinstance(text, bool):
        raise ValueError(f"{field}: {text!r} is not a quantity")
    if isinstance(text, int):
        return Fraction(text)
    if isinstance(text, float):
        if not math.isfinite(text):
            raise ValueError(f"{field}: {text!r} is not a quantity")
        return Fraction(str(text))
    if not isinstance(text, str):
        raise ValueError(f"{field}: {text!r} is not a quantity")
    match = _PATTERN.match(text.strip())
    if not match:
        raise ValueError(f"{field}: {text!r} is not a quantity (e.g. '100m', '2', '1.5Gi', '500M', '1e3')")
    number, suffix = Fraction(match.group(1)), match.group(2)
    if suffix[:1] in ("e", "E") and len(suffix) > 1:
        return number * Fraction(10) ** int(suffix[1:])
    if suffix in _BINARY:
        return number * _BINARY[suffix]
    if suffix in _DECIMAL:
        return number * _DECIMAL[suffix]
    raise ValueError(f"{field}: {text!r} has an unknown suffix {suffix!r} "
                     f"(allowed: {', '.join(s for s in (*_DECIMAL, *_BINARY) if s)}, or an exponent like e3)")


def value(text: str | int | float, field: str = "quantity") -> int:
    """Quantity.Value(): the value rounded up to an integer."""
    return math.ceil(parse(text, field))


def milli_value(text: str | int | float, field: str = "quantity") -> int:
    """Quantity.MilliValue(): a thousandth of a unit, rounded up."""
    return math.ceil(parse(text, field) * 1000)


def resource_amount(name: str, text: str | int | float, field: str = "quantity") -> int:
    """The scheduler's integer for a resource: milli-CPU for ``cpu``, base units otherwise."""
    if isinstance(text, str):
        known = _AMOUNTS.get((name == "cpu", text))
        if known is not None:
            return known
    amount = milli_value(text, field) if name == "cpu" else value(text, field)
    if isinstance(text, str) and len(_AMOUNTS) < 10_000:
        _AMOUNTS[name == "cpu", text] = amount
    return amount


_AMOUNTS: dict[tuple[bool, str], int] = {}
"""Amounts of quantity strings already read (a cluster repeats the same few thousands of times)."""
