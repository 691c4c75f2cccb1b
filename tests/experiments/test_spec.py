"""Experiment specs: every committed spec loads, and a bad spec is one clear error before anything runs."""
import os
import textwrap

import pytest

from experiments.spec import SpecError, available_specs, load_spec

SMOKE = """
name: {name}
base: {{config: qmix, env_config: smax}}
agents: [rnn, grsn]
scenarios: {{3m: {{t_max: 1000}}}}
seeds: [1, 2]
protocol: {{metric: test_battle_won_mean, compare: [[grsn, rnn]]}}
"""


def write(tmp_path, text, name="x"):
    path = tmp_path / f"{name}.yaml"
    path.write_text(textwrap.dedent(text).format(name=name) if "{name}" in text else textwrap.dedent(text))
    return str(path)


@pytest.mark.parametrize("name", available_specs())
def test_committed_specs_load_and_validate(name):
    spec = load_spec(name)
    assert spec.points and len({p.id for p in spec.points}) == len(spec.points)


def test_points_are_the_product_of_the_axes(tmp_path):
    spec = load_spec(write(tmp_path, SMOKE))
    assert [p.id for p in spec.points] == ["3m__rnn__s1", "3m__rnn__s2", "3m__grsn__s1", "3m__grsn__s2"]
    assert spec.points[2].command() == ["--config=qmix", "--env-config=smax", "with", "env_args.map_name=3m",
                                        "agent=grsn", "seed=1", "t_max=1000"]


def test_variants_name_the_methods():
    spec = load_spec("table3")
    assert spec.methods == ["lif/tap", "grsn/tap", "lif/notap", "grsn/notap"]
    notap = [p for p in spec.points if p.variant == "notap"][0]
    assert "tap=False" in notap.overrides and notap.id == "3m__lif-notap__s1"


@pytest.mark.parametrize("edit,message", [
    (("seeds: [1, 2]", "seeds: [1, 2]\ncolour: red"), "unknown key(s) ['colour']"),
    (("agents: [rnn, grsn]", "agents: [rnn, grsn, snn]"), "unknown agent 'snn'"),
    (("base: {config: qmix, env_config: smax}", "base: {config: qmix, env_config: smax, with: {lrr: 1}}"),
     "unknown config key 'lrr'"),
    (("base: {config: qmix, env_config: smax}", "base: {config: qmix, env_config: smax, with: {seed: 3}}"),
     "'seed' is set by the launcher"),
    (("compare: [[grsn, rnn]]", "compare: [[grsn, lif]]"), "names 'lif', which is not a method"),
    (("3m: {t_max: 1000}", "3m: {}"), "needs t_max"),
    (("3m: {t_max: 1000}", "nomap: {t_max: 1000}"), "unknown map 'nomap'"),
    (("seeds: [1, 2]", "seeds: [1, 1]"), "repeat a seed"),
])
def test_bad_specs_fail_with_one_clear_error(tmp_path, edit, message):
    text = SMOKE.format(name="x").replace(*edit)
    path = tmp_path / "x.yaml"
    path.write_text(text)
    with pytest.raises(SpecError) as err:
        load_spec(str(path))
    assert message in str(err.value) and str(path) in str(err.value)


def test_unknown_spec_lists_the_available_ones():
    with pytest.raises(SpecError, match="available: .*table2"):
        load_spec("nosuchspec")


def test_migrated_records_carry_their_spec_points_command():
    """The committed records were made by exactly the configurations their spec describes."""
    from experiments.docs import RECORDS, documented_specs
    from experiments.records import load_records

    for name in documented_specs():
        spec = load_spec(name, validate_points=False)
        records, skipped = load_records(RECORDS, name)
        assert not skipped
        commands = {p.id: p.command() for p in spec.points}
        assert {r.point for r in records} <= set(commands), name
        if spec.migrated_from:   # a migrated table is complete
            assert {r.point for r in records} == set(commands), name
        for r in records:
            assert r.command == commands[r.point]
