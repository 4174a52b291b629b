"""Kubernetes resource quantities, read exactly as ``k8s.io/apimachinery/pkg/api/resource`` reads them.

``parse`` is ``ParseQuantity`` (quantity.go, suffix.go): a signed decimal number (``1``, ``1.5``, ``.5``,
``1.``) and a suffix, binary (``Ki Mi Gi Ti Pi Ei``), decimal (``n u m "" k M G T P E``) or a decimal
exponent (``e3``, ``E-2``, ``e+6``; within int32). The value is kept exact (``decimal.Decimal``, never a
float): a non-zero value finer than a nano is rounded away from zero to the next nano (``0.9n`` is ``1n``),
a binary-suffixed value is capped at 2^63-1 (``8Ei``), and a decimal one is not capped at all. Errors carry
upstream's reasons (``quantities must match the regular expression ...``, ``unable to parse quantity's
suffix``, ``unable to parse numeric part of quantity``).

``value`` and ``milli_value`` are ``Quantity.Value()`` and ``MilliValue()``: the value (or a thousand times
it) rounded up away from zero. Go's accessors silently overflow an int64 ("an overflowed result is undefined
and must not be used"); these refuse such a quantity instead, since kube-scheduler keeps CPU as int64
milli-cores and every other resource as int64 base units.
"""

from __future__ import annotations

import decimal
import re
from decimal import Decimal

MAX_INT64 = 2**63 - 1
MIN_INT64 = -(2**63)
NANO = Decimal("1e-9")
DECIMAL_SI = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
"""suffix.go: decimal suffixes and their powers of ten."""
BINARY_SI = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
"""suffix.go: binary suffixes and their powers of two."""
MAX_EXPONENT = 2**31 - 1
"""A decimal exponent is an int32 scale that is later negated: ±(2^31-1) (suffix.go interpret)."""
ERR_FORMAT_WRONG = "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
ERR_NUMERIC = "unable to parse numeric part of quantity"
ERR_SUFFIX = "unable to parse quantity's suffix"
_SCAN = re.compile(r"([+-]?)0*([0-9]*)(?:\.([0-9]*))?([eEinumkKMGTP]*[+-]?[0-9]*)", re.ASCII)
"""parseQuantityString: sign, numerator (leading zeros dropped), denominator, suffix."""
_EXACT = decimal.Context(
    prec=decimal.MAX_PREC,
    Emax=decimal.MAX_EMAX,
    Emin=decimal.MIN_EMIN,
    rounding=decimal.ROUND_UP,
    traps=[decimal.InvalidOperation],
)
"""Exact arithmetic (products and rescalings never round); ROUND_UP is inf.RoundUp, away from zero."""
_HINT = "e.g. 100m, 2, 1.5Gi, 500M, 1e3; suffixes n u m k M G T P E Ki Mi Gi Ti Pi Ei, or e/E and an exponent"


class QuantityError(ValueError):
    """A value that is not a quantity, or one too large for an int64 accessor; names the field."""


def _interpret(suffix: str) -> tuple[int, int] | None:
    """(base, exponent) of a suffix, or None (suffix.go ``interpret``)."""
    if suffix in DECIMAL_SI:
        return 10, DECIMAL_SI[suffix]
    if suffix in BINARY_SI:
        return 2, BINARY_SI[suffix]
    if len(suffix) > 1 and suffix[0] in "eE":
        try:
            exponent = int(suffix[1:])  # strconv.ParseInt: an optional sign and ASCII digits (the scan ensures it)
        except ValueError:
            return None
        if -MAX_EXPONENT <= exponent <= MAX_EXPONENT:
            return 10, exponent
    return None


def _parse_string(text: str) -> Decimal:
    """ParseQuantity of one string; raises ValueError with upstream's reason."""
    match = _SCAN.fullmatch(text)
    if not text or not match:
        raise ValueError(ERR_FORMAT_WRONG)
    sign, num, denom, suffix = match.group(1), match.group(2), match.group(3) or "", match.group(4)
    interpreted = _interpret(suffix)
    if interpreted is None:
        raise ValueError(ERR_SUFFIX)
    base, exponent = interpreted
    if not any(c.isdigit() for c in text[: match.start(4)]):
        # No digit at all ("-.", "Ki"): the int64 fast path reads it as 0; inf.Dec's SetString (the path for
        # scales finer than nano and for Pi, Ei) finds no digits. Fast path: a decimal scale >= -9, or a binary
        # suffix whose precision 15 - 1 - exponent*3/10 - 1 is not negative (Ki to Ti).
        if (exponent >= -9) if base == 10 else (13 - exponent * 3 // 10 >= 0):
            return Decimal(0)
        raise ValueError(ERR_NUMERIC)
    amount = Decimal(f"{sign}{num or 0}.{denom}")
    amount = _EXACT.scaleb(amount, exponent) if base == 10 else _EXACT.multiply(amount, Decimal(2**exponent))
    digits_exponent = amount.as_tuple().exponent  # an int: the amount is finite (a str only for NaN and infinities)
    if isinstance(digits_exponent, int) and digits_exponent < -9:  # finer than nano: round up away from zero
        amount = _EXACT.quantize(amount, NANO)
    if base == 2 and abs(amount) > MAX_INT64:  # the binary cap (maxAllowed)
        amount = _EXACT.copy_sign(Decimal(MAX_INT64), amount)
    return amount


def parse(text: str | int | float, field: str = "quantity") -> Decimal:
    """The exact value of a quantity as ``resource.ParseQuantity`` reads it.

    Parameters
    ----------
    text : str, int or float
        A manifest's value: a string (surrounding blanks trimmed, as ``Quantity.UnmarshalJSON`` does), or a
        YAML number, which reaches the apiserver as its JSON text.
    field : str
        Names the value in errors (``Pod default/web: spec.containers[0].resources.requests.memory``).

    Returns
    -------
    decimal.Decimal
        The exact value, rounded up to a nano and, for binary suffixes, capped at 2^63-1.

    Raises
    ------
    QuantityError
        Not a quantity; the message names ``field`` and upstream's reason.
    """
    if isinstance(text, bool) or not isinstance(text, (str, int, float)):
        raise QuantityError(f"{field}: {text!r} is not a quantity (a string or a number; {_HINT})")
    try:
        return _parse_string(text.strip() if isinstance(text, str) else repr(text))
    except ValueError as err:
        raise QuantityError(f"{field}: {text!r} is not a quantity: {err} ({_HINT})") from None


def scaled_value(text: str | int | float, scale: int, field: str = "quantity") -> int:
    """``Quantity.ScaledValue(scale)``: the value in units of 10^scale, rounded up away from zero.

    Raises
    ------
    QuantityError
        Not a quantity, or the result is outside int64 (where Go's accessor silently overflows).
    """
    amount = _EXACT.scaleb(parse(text, field), -scale)
    if not amount or amount.adjusted() <= 19:  # else far outside int64; never build the integer
        rounded = int(_EXACT.quantize(amount, Decimal(1)))
        if MIN_INT64 <= rounded <= MAX_INT64:
            return rounded
    unit = {0: "", -3: "m"}.get(scale, f"e{scale}")
    raise QuantityError(
        f"{field}: {text!r} is out of range: Kubernetes keeps it as a 64-bit integer, "
        f"{MIN_INT64}{unit} to {MAX_INT64}{unit} (Go's Quantity.ScaledValue overflows past it)"
    )


def value(text: str | int | float, field: str = "quantity") -> int:
    """``Quantity.Value()``: the value rounded up away from zero; refuses one outside int64."""
    return scaled_value(text, 0, field)


def milli_value(text: str | int | float, field: str = "quantity") -> int:
    """``Quantity.MilliValue()``: a thousand times the value, rounded up away from zero; refuses one outside int64."""
    return scaled_value(text, -3, field)


def resource_amount(name: str, text: str | int | float, field: str = "quantity") -> int:
    """The scheduler's integer for a resource: milli-CPU for ``cpu``, base units otherwise
    (pkg/scheduler/framework ``Resource.Add``: ``MilliValue()`` for cpu, ``Value()`` for the rest)."""
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
