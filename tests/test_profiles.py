"""Calibration profiles: every number cited, clear errors, overrides."""

from __future__ import annotations

import pytest

from kbench.profiles import available, load_profile
from kbench.sim import LogNormal


def test_default_profile_loads_and_every_parameter_is_cited():
    profile = load_profile()
    assert "default" in available()
    assert profile.value("etcd.members") == 3
    assert isinstance(profile.dist("etcd.wal_fsync"), LogNormal)
    assert profile.dist("etcd.client_rtt").mean() == profile.value("etcd.client_rtt")
    assert len(profile.digest) == 64


def _write(tmp_path, text: str):
    path = tmp_path / "p.yaml"
    path.write_text(text)
    return path


def test_missing_citation_names_the_file_and_field(tmp_path):
    path = _write(tmp_path, "name: x\netcd:\n  fsync: {value: 0.001}\n")
    with pytest.raises(ValueError, match=r"p\.yaml: etcd\.fsync: every parameter needs a 'source' or 'assumed'"):
        load_profile(path)


def test_bad_distribution_names_the_field(tmp_path):
    path = _write(tmp_path, "name: x\netcd:\n  fsync: {dist: lognormal, median: -1, p99: 2, assumed: test}\n")
    with pytest.raises(ValueError, match=r"etcd\.fsync\.median: must be > 0"):
        load_profile(path)


def test_unsafe_yaml_is_refused(tmp_path):
    path = _write(tmp_path, "name: !!python/object/apply:os.system ['true']\n")
    with pytest.raises(ValueError, match="not valid YAML"):
        load_profile(path)


def test_unknown_profile_lists_the_available_ones():
    with pytest.raises(ValueError, match=r"profile 'nope' not found .*available: .*default"):
        load_profile("nope")


def test_override_copies_and_marks_the_change_as_assumed():
    base = load_profile()
    slow = base.override({"etcd.wal_fsync.median": 0.02, "etcd.wal_fsync.p99": 0.05, "etcd.members": 5})
    assert slow.value("etcd.members") == 5 and base.value("etcd.members") == 3
    assert slow.dist("etcd.wal_fsync").quantile(0.5) == pytest.approx(0.02)
    assert "override" in slow.data["etcd"]["wal_fsync"]["assumed"]
    assert slow.digest != base.digest
    with pytest.raises(KeyError, match="does not name a parameter"):
        base.override({"etcd.nothing": 1})


def test_unit_costs_read_one_section_with_types():
    from dataclasses import dataclass

    from kbench.profiles import UnitCosts
    from kbench.sim.dist import Distribution

    @dataclass
    class EtcdCosts(UnitCosts):
        section = "etcd"
        members: int
        wal_fsync: Distribution
        client_rtt: float

    costs = EtcdCosts.from_profile(load_profile("default"))
    assert costs.members == 3 and isinstance(costs.members, int)
    assert costs.client_rtt == load_profile("default").value("etcd.client_rtt")
    assert isinstance(costs.wal_fsync, Distribution) and costs.wal_fsync == load_profile("default").dist(
        "etcd.wal_fsync"
    )

    @dataclass
    class Missing(UnitCosts):
        section = "etcd"
        no_such_cost: float

    with pytest.raises(KeyError, match="no parameter 'etcd.no_such_cost'"):
        Missing.from_profile(load_profile("default"))

    with pytest.raises(ValueError, match=r"etcd\.client_rtt: expected a number; got 'fast'"):
        EtcdCosts.from_profile(load_profile("default").override({"etcd.client_rtt.value": "fast"}))
    with pytest.raises(ValueError, match=r"etcd\.members: expected a whole number; got 2\.5"):
        EtcdCosts.from_profile(load_profile("default").override({"etcd.members.value": 2.5}))
    assert EtcdCosts.from_profile(load_profile("default").override({"etcd.members.value": 5.0})).members == 5


@pytest.mark.parametrize("profile_name", available())
def test_node_apiserver_and_etcd_sections_hold_exactly_their_unit_costs(profile_name):
    """Every parameter of these sections is a unit cost their component reads (operator settings such as
    --etcd-compaction-interval live in the components' configurations, the apiserver count in the cluster)."""
    from dataclasses import fields

    from kbench.apiserver.server import APIServerCosts
    from kbench.etcd.cluster import EtcdCosts
    from kbench.node.runtime import RUNTIMES, RuntimeCosts

    profile = load_profile(profile_name)
    sections = {"etcd": EtcdCosts, "apiserver": APIServerCosts, **{f"runtime.{r}": RuntimeCosts for r in RUNTIMES}}
    for section, costs in sections.items():
        node = profile.data
        for part in section.split("."):
            node = node[part]
        assert set(node) == {f.name for f in fields(costs)}, section
        assert costs.from_profile(profile, section) is not None
