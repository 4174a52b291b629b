"""The component-configuration base: Go durations, options, manifests, flags and named-field errors."""

from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kbench.componentconfig import (
    DURATION,
    ComponentConfig,
    ConfigError,
    format_duration,
    is_zero,
    option,
    parse_duration,
)


@dataclass(frozen=True)
class Example(ComponentConfig):
    component = "example"
    kind = "ExampleConfiguration"
    api_version = "example.config.k8s.io/v1"
    accepted = frozenset({"authentication"})

    qps: float = option("clientConnection.qps", 5.0, float, "client QPS", "test", flag="kube-api-qps", minimum=0)
    period: float = option("syncPeriod", 30.0, DURATION, "sync period", "test", flag="sync-period", minimum=0.001)
    mode: str = option("mode", "iptables", str, "mode", "test", choices=("iptables", "ipvs"))
    workers: int = option("workers", 5, int, "workers", "test", flag="concurrent-syncs", minimum=1)
    names: tuple = option("controllers", ["*"], list, "controllers", "test", flag="controllers")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("40s", 40),
        ("5m0s", 300),
        ("1h2m3.5s", 3723.5),
        ("300ms", 0.3),
        ("0", 0),
        ("-1.5h", -5400),
        (".5s", 0.5),
        ("1us", 1e-6),
        ("2µs", 2e-6),
    ],
)
def test_parse_duration_as_go(text, seconds):
    assert parse_duration(text, "f") == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "1.5", "1m30", "s", "10 s", "1d", 10, None, True])
def test_parse_duration_refuses_what_go_refuses(text):
    with pytest.raises(ConfigError, match=r"^f: .* is not a duration"):
        parse_duration(text, "f")


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(40, "40s"), (300, "5m0s"), (3600, "1h0m0s"), (0.1, "100ms"), (0, "0s"), (1.5, "1.5s"), (90, "1m30s")],
)
def test_format_duration_as_go(seconds, text):
    assert format_duration(seconds) == text


@settings(deadline=None)
@given(st.integers(min_value=-(10**15), max_value=10**15))
def test_duration_round_trip(nanos):
    assert round(parse_duration(format_duration(nanos / 1e9), "f") * 1e9) == nanos


@pytest.mark.parametrize(
    ("value", "unset"),
    [
        (0, True),
        (0.0, True),
        ("0", True),
        ("0s", True),
        ("0m0s", True),
        (False, False),
        (1, False),
        ("40s", False),
        ("forty", False),
        (None, False),
    ],
)
def test_is_zero_is_what_upstream_defaulting_treats_as_unset(value, unset):
    assert is_zero(value) is unset


def test_manifest_flags_and_replace_agree():
    from_manifest = Example.from_manifest(
        {
            "apiVersion": "example.config.k8s.io/v1",
            "kind": "ExampleConfiguration",
            "authentication": {"x": 1},
            "clientConnection": {"qps": 20},
            "syncPeriod": "1m0s",
            "controllers": ["*", "-ttl"],
        }
    )
    from_flags = Example.from_flags({"--kube-api-qps": "20", "sync-period": "1m0s", "controllers": "*,-ttl"})
    assert (
        from_manifest
        == from_flags
        == Example().replace({"clientConnection.qps": 20, "period": "60s", "--controllers": ["*", "-ttl"]})
    )
    assert from_manifest.qps == 20.0 and from_manifest.period == 60.0 and from_manifest.names == ("*", "-ttl")
    assert Example.from_manifest(from_manifest.to_manifest()) == from_manifest
    assert from_manifest.values()["syncPeriod"] == "1m0s"


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (
            {"clientConnection": {"qps": -1}},
            r"^ExampleConfiguration\.clientConnection\.qps: -1 is out of range; "
            r"expected a number in \[0, inf\]$",
        ),
        ({"syncPeriod": 30}, r"^ExampleConfiguration\.syncPeriod: 30 is not a duration"),
        ({"syncPeriod": "0s"}, r"syncPeriod: '0s' is out of range; expected a duration in \[1ms, inf\]"),
        ({"mode": "userspace"}, r"mode: 'userspace' is not allowed; expected one of iptables, ipvs"),
        ({"workers": 2.5}, r"workers: 2\.5 is not an integer"),
        ({"workers": True}, r"workers: True is not an integer"),
        ({"clientConnection": {"burst": 1}}, r"clientConnection\.burst: unknown field; allowed: clientConnection"),
        ({"kind": "KubeletConfiguration"}, r"apiVersion/kind: expected example\.config\.k8s\.io/v1 Example"),
    ],
)
def test_bad_manifest_names_the_field(doc, message):
    with pytest.raises(ConfigError, match=message):
        Example.from_manifest(doc)


def test_bad_flags_name_the_flag():
    with pytest.raises(ConfigError, match=r"^example: --kube-api-burst: unknown flag; allowed: --kube-api-qps"):
        Example.from_flags({"kube-api-burst": 1})
    with pytest.raises(ConfigError, match=r"^example\.workers: 'x' is not an integer"):
        Example.from_flags({"--concurrent-syncs": "x"})
    with pytest.raises(ConfigError, match=r"expected a mapping of flags"):
        Example.from_flags(["--kube-api-qps=1"])


def test_upstream_flags_kbench_does_not_model_are_accepted_and_ignored():
    @dataclass(frozen=True)
    class Flags(ComponentConfig):
        component = "flagged"
        accepted = frozenset({"profiling"})

        qps: float = option("kubeAPIQPS", 20.0, float, "QPS", "test", flag="kube-api-qps", minimum=0)

    assert Flags.from_flags({"--profiling": "true", "kube-api-qps": 5}) == Flags(qps=5.0)
    assert Flags().replace({"profiling": False}) == Flags()
    with pytest.raises(ConfigError, match="--profilin: unknown flag; allowed: --kube-api-qps"):
        Flags.from_flags({"--profilin": "true"})
