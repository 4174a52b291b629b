"""Quantities parse exactly as apimachinery's resource.ParseQuantity does.

Golden cases are ported from staging/src/k8s.io/apimachinery/pkg/api/resource/quantity_test.go
(TestQuantityParse, TestParseQuantityString, TestQuantityParseEmit, TestInterpretExponentInt32Bounds,
TestQuantityRoundUp): the inputs and values are upstream's; the tests are written here.
"""

from __future__ import annotations

import math
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kbench.api.core import ManifestError, Node, Pod
from kbench.api.quantity import (
    BINARY_SI,
    DECIMAL_SI,
    MAX_INT64,
    QuantityError,
    milli_value,
    parse,
    resource_amount,
    value,
)

KI, MI, GI, TI, PI, EI = (2**e for e in (10, 20, 30, 40, 50, 60))
PARSE = [  # TestQuantityParse: input, exact value
    ("0", 0),
    ("0n", 0),
    ("0u", 0),
    ("0m", 0),
    ("0Ki", 0),
    ("0k", 0),
    ("0Mi", 0),
    ("0M", 0),
    ("0Gi", 0),
    ("0G", 0),
    ("0Ti", 0),
    ("0T", 0),
    ("1", 1),
    ("1Ki", KI),
    ("8Ki", 8 * KI),
    ("7Mi", 7 * MI),
    ("6Gi", 6 * GI),
    ("5Ti", 5 * TI),
    ("4Pi", 4 * PI),
    ("3Ei", 3 * EI),
    ("10Ti", 10 * TI),
    ("100Ti", 100 * TI),
    ("5n", "5e-9"),
    ("4u", "4e-6"),
    ("3m", "3e-3"),
    ("9", 9),
    ("8k", "8e3"),
    ("50k", "5e4"),
    ("7M", "7e6"),
    ("6G", "6e9"),
    ("5T", "5e12"),
    ("40T", "4e13"),
    ("300T", "3e14"),
    ("2P", "2e15"),
    ("1E", "1e18"),
    ("1E-3", "1e-3"),
    ("1e3", "1e3"),
    ("1E6", "1e6"),
    ("1e9", "1e9"),
    ("1E12", "1e12"),
    ("1e15", "1e15"),
    ("1E18", "1e18"),
    ("1e14", "1e14"),
    ("1e13", "1e13"),
    ("100.035k", 100035),
    ("0.001", "1e-3"),
    ("0.0005k", "5e-1"),
    ("0.005", "5e-3"),
    ("0.05", "5e-2"),
    ("0.5", "5e-1"),
    ("0.00050k", "5e-1"),
    ("0.00500", "5e-3"),
    ("0.05000", "5e-2"),
    ("0.50000", "5e-1"),
    ("0.5e0", "5e-1"),
    ("0.5e-1", "5e-2"),
    ("0.5e-2", "5e-3"),
    ("10.035M", "10035e3"),
    ("1.2e3", "12e2"),
    ("1.3E+6", "13e5"),
    ("1.40e9", "14e8"),
    ("1.53E12", "153e10"),
    ("1.6e15", "16e14"),
    ("1.7E18", "17e17"),
    ("9.01", "901e-2"),
    ("8.1k", "81e2"),
    ("7.123456M", 7123456),
    ("6.987654321G", 6987654321),
    ("5.444T", "5444e9"),
    ("40.1T", "401e11"),
    ("300.2T", "3002e11"),
    ("2.5P", "25e14"),
    ("1.01E", "101e16"),
    # things that saturate / round
    ("3.001n", "4e-9"),
    ("1.1E-9", "2e-9"),
    ("0.0000000001", "1e-9"),
    ("0.0000000005", "1e-9"),
    ("0.00000000050", "1e-9"),
    ("0.5e-9", "1e-9"),
    ("0.9n", "1e-9"),
    ("0.00000012345", "124e-9"),
    ("0.00000012354", "124e-9"),
    ("9Ei", MAX_INT64),
    ("9223372036854775807Ki", MAX_INT64),
    ("12E", "12e18"),
    # fractional binary
    ("100.035Ki", "10243584e-2"),
    ("0.5Mi", MI // 2),
    ("0.05Gi", "536870912e-1"),
    ("0.025Ti", "274877906944e-1"),
    # "things written by trolls"
    ("0.000000000001Ki", "2e-9"),
    (".001", "1e-3"),
    (".0001k", "100e-3"),
    ("1.", 1),
    ("1.G", "1e9"),
    # TestQuantityParseEmit
    ("1024Mi", GI),
    ("1000M", "1e9"),
    (".001Ki", "1024e-3"),
    (".000001Ki", "1024e-6"),
    (".000000001Ki", "1024e-9"),
    (".000000000001Ki", "2e-9"),
    # TestInterpretExponentInt32Bounds: the int32 scale's range is accepted
    ("1E2147483647", "1e2147483647"),
    ("1E-2147483647", "1e-9"),
    # a decimal quantity is not capped (the quantity.go comment: "18446744073709551616" keeps its value)
    ("18446744073709551616", 2**64),
]
INVALID = [  # TestQuantityParse's invalid list (its " 1" and "1 " are below: UnmarshalJSON trims them)
    ("1.1.M", "quantities must match"),
    ("1+1.0M", "quantities must match"),
    ("0.1mi", "suffix"),
    ("0.1am", "quantities must match"),
    ("aoeu", "quantities must match"),
    (".5i", "suffix"),
    ("1i", "suffix"),
    ("-3.01i", "suffix"),
    ("-3.01e-", "suffix"),
    ("1e4294967297", "suffix"),
    ("", "quantities must match"),
    # TestInterpretExponentInt32Bounds: exponents past int32's range are refused, not truncated
    ("1E2147483648", "suffix"),
    ("1E-2147483648", "suffix"),
    ("1E9223372036854775807", "suffix"),
    ("1E9223372036854775808", "suffix"),
    ("1E6024865272343", "suffix"),
    # no digit where inf.Dec must read the number (Pi and Ei, scales below nano)
    ("Pi", "numeric part"),
    ("Ei", "numeric part"),
    (".e-10", "numeric part"),
    ("1e", "suffix"),
]


@pytest.mark.parametrize(("text", "expected"), PARSE, ids=[t for t, _ in PARSE])
def test_parse_matches_upstream_table(text, expected):
    expected = Decimal(expected)
    assert parse(text) == expected
    assert parse("+" + text) == expected
    assert parse("-" + text) == expected.copy_negate()


@pytest.mark.parametrize(("text", "reason"), INVALID, ids=[t for t, _ in INVALID])
def test_invalid_quantities_give_upstreams_reason(text, reason):
    with pytest.raises(QuantityError, match=reason) as err:
        parse(text, "Pod default/web: spec.containers[0].resources.requests.memory")
    assert str(err.value).startswith(
        f"Pod default/web: spec.containers[0].resources.requests.memory: {text!r} is not a quantity"
    )


def test_what_the_json_decoder_and_the_fast_path_accept():
    # Quantity.UnmarshalJSON trims blanks before ParseQuantity
    assert parse(" 1") == parse("1 ") == 1
    # the int64 fast path reads "no digits" as zero where inf.Dec is not needed (Ki..Ti, decimal scales >= nano)
    assert parse("Ki") == parse("-") == parse("m") == parse("e5") == 0
    assert parse(".") == parse("-.") == 0  # TestParseQuantityString
    # YAML numbers reach the apiserver as their JSON text
    assert parse(1073741824) == GI and parse(0.5) == Decimal("0.5") and parse(1e-10) == Decimal("1e-9")
    for bad in (True, None, [1], float("inf"), float("nan")):
        with pytest.raises(QuantityError, match="is not a quantity"):
            parse(bad, "x")


def test_value_and_milli_value_round_up_away_from_zero():
    # TestQuantityRoundUp at scale 0 and -3; Value() and MilliValue()
    assert value("9.01") == 10 and value("-9.01") == -10
    assert milli_value("9.0001") == 9001 and milli_value("-9.0001") == -9001
    assert milli_value("1n") == 1 and value("1n") == 1
    assert value("1Ei") == EI and value("9Ei") == MAX_INT64
    assert milli_value(f"{MAX_INT64}m") == MAX_INT64


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("cpu", "1e308"),
        ("memory", "1e400"),
        ("cpu", "1Ei"),
        ("memory", "9223372036854775808"),
        ("cpu", "9223372036854775808m"),
        ("memory", "-1e400"),
        ("cpu", "1E2147483647"),
    ],
)
def test_values_outside_int64_are_refused_not_overflowed(name, text):
    with pytest.raises(QuantityError, match=r"is out of range: Kubernetes keeps it as a 64-bit integer"):
        resource_amount(name, text, f"Pod default/web: spec.containers[0].resources.requests.{name}")


def test_manifest_errors_name_the_object_and_field():
    def pod(requests):
        return {
            "metadata": {"name": "web"},
            "spec": {"containers": [{"name": "c", "resources": {"requests": requests}}]},
        }

    assert Pod.from_manifest(pod({"memory": "1Ei"})).requests == {"memory": EI}
    for requests, message in [
        ({"cpu": "1e308"}, r"Pod default/web: spec.containers\[0\].resources.requests.cpu: '1e308' is out of range"),
        ({"memory": "1e400"}, r"Pod default/web: spec.containers\[0\].resources.requests.memory: '1e400' is out of"),
        ({"memory": "1Ki1"}, r"requests.memory: '1Ki1' is not a quantity: unable to parse quantity's suffix"),
        ({"cpu": "-1"}, r"requests.cpu: must not be negative"),
    ]:
        with pytest.raises(ManifestError, match=message):
            Pod.from_manifest(pod(requests))
    with pytest.raises(ManifestError, match=r"Node n1: status.allocatable.memory: '8Ei0' is not a quantity"):
        Node.from_manifest({"metadata": {"name": "n1"}, "status": {"allocatable": {"memory": "8Ei0"}}})


def _reference(sign: str, whole: str, frac: str, suffix: str) -> Fraction:
    """The value by plain fractions: the number times its suffix, rounded up to a nano, binary capped."""
    number = Fraction(f"{whole or 0}.{frac or 0}")
    if suffix in BINARY_SI:
        number *= 2 ** BINARY_SI[suffix]
    elif suffix in DECIMAL_SI:
        number *= Fraction(10) ** DECIMAL_SI[suffix]
    else:
        number *= Fraction(10) ** int(suffix[1:])
    number = math.ceil(number * 10**9) / Fraction(10**9)
    if suffix in BINARY_SI:
        number = min(number, MAX_INT64)
    return -number if sign == "-" else number


SUFFIXES = st.sampled_from([*DECIMAL_SI, *BINARY_SI]) | st.integers(-30, 30).map(lambda e: f"e{e}")


@settings(deadline=None)
@given(
    st.sampled_from(["", "+", "-"]),
    st.text("0123456789", min_size=1, max_size=25),
    st.none() | st.text("0123456789", max_size=15),
    SUFFIXES,
)
def test_parse_is_exact(sign, whole, frac, suffix):
    text = f"{sign}{whole}{'' if frac is None else '.' + frac}{suffix}"
    assert Fraction(parse(text)) == _reference(sign, whole, frac or "", suffix)


@settings(deadline=None)
@given(st.integers(0, MAX_INT64))
def test_integers_round_trip_through_every_accessor(n):
    assert value(str(n)) == n and value(n) == n
    assert milli_value(f"{n}m") == n
    assert resource_amount("cpu", f"{n}m") == n and resource_amount("memory", str(n)) == n
    for suffix, exponent in BINARY_SI.items():
        if n << exponent <= MAX_INT64:
            assert value(f"{n}{suffix}") == n << exponent
    for suffix, exponent in DECIMAL_SI.items():
        if exponent >= 0 and n * 10**exponent <= MAX_INT64:
            assert value(f"{n}{suffix}") == n * 10**exponent == value(f"{n}e{exponent}")


@settings(deadline=None)
@given(st.decimals(allow_nan=False, allow_infinity=False, places=9, min_value=-(10**12), max_value=10**12))
def test_decimal_text_round_trips(d):
    assert parse(str(d)) == d
