import os

import pytest
import yaml

from utils.config import (ConfigError, build_config, coerce, parse_command_line,
                          recursive_update, CONFIG_DIR)


def _write(tmp_path, rel, data):
    path = tmp_path / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data))


@pytest.fixture
def cfg_dir(tmp_path):
    _write(tmp_path, "default.yaml", {"lr": 0.1, "t_max": 100, "agent": "rnn", "tap": True,
                                      "env_args": {}, "gamma": 0.99, "name": None})
    _write(tmp_path, "envs/e.yaml", {"lr": 0.2, "gamma": 0.9, "env_args": {"map_name": "3m", "k": 1}})
    _write(tmp_path, "algs/a.yaml", {"lr": 0.3})
    return str(tmp_path)


def test_merge_order_alg_wins_over_env_then_overrides(cfg_dir):
    cfg = build_config("a", "e", [], cfg_dir)
    assert cfg["lr"] == 0.3 and cfg["gamma"] == 0.9 and cfg["env_args"] == {"map_name": "3m", "k": 1}
    cfg = build_config("a", "e", ["lr=0.5", "env_args.map_name=8m"], cfg_dir)
    assert cfg["lr"] == 0.5 and cfg["env_args"]["map_name"] == "8m" and cfg["env_args"]["k"] == 1


def test_unknown_override_names_the_key(cfg_dir):
    with pytest.raises(ConfigError, match="'agnt'.*Did you mean: agent"):
        build_config("a", "e", ["agnt=rnn"], cfg_dir)
    with pytest.raises(ConfigError, match="env_args.mapname"):
        build_config("a", "e", ["env_args.mapname=8m"], cfg_dir)


def test_unknown_key_in_yaml_file_is_an_error(cfg_dir, tmp_path):
    _write(tmp_path, "algs/bad.yaml", {"learning_rate": 1})
    with pytest.raises(ConfigError, match="algs/bad.yaml sets unknown config key 'learning_rate'"):
        build_config("bad", "e", [], cfg_dir)


def test_unknown_config_name_lists_choices(cfg_dir):
    with pytest.raises(ConfigError, match="Valid --config values: a"):
        build_config("qmx", "e", [], cfg_dir)


def test_override_types_are_coerced_or_rejected(cfg_dir):
    cfg = build_config("a", "e", ["t_max=2e6", "tap=False", "name=x"], cfg_dir)
    assert cfg["t_max"] == 2_000_000 and isinstance(cfg["t_max"], int) and cfg["tap"] is False
    with pytest.raises(ConfigError, match="expects an integer"):
        build_config("a", "e", ["t_max=1.5"], cfg_dir)
    with pytest.raises(ConfigError, match="expects true/false"):
        build_config("a", "e", ["tap=yes please"], cfg_dir)
    with pytest.raises(ConfigError, match="expects a number"):
        coerce("lr", "fast", 0.1)


def test_recursive_update_does_not_mutate():
    base = {"a": {"b": 1}}
    out = recursive_update(base, {"a": {"c": 2}})
    assert out == {"a": {"b": 1, "c": 2}} and base == {"a": {"b": 1}}


def test_parse_command_line():
    assert parse_command_line(["--config=vdn", "--env-config=sc2", "with", "a=1", "b.c=x"]) == \
        ("vdn", "sc2", ["a=1", "b.c=x"])
    assert parse_command_line([]) == ("qmix", "smax", [])
    with pytest.raises(ConfigError, match="unrecognised argument"):
        parse_command_line(["--confg=qmix"])


def test_project_yaml_files_only_use_documented_keys():
    """Every env and algorithm file of the project merges cleanly over default.yaml."""
    for alg in sorted(os.listdir(os.path.join(CONFIG_DIR, "algs"))):
        for env in sorted(os.listdir(os.path.join(CONFIG_DIR, "envs"))):
            build_config(alg[:-5], env[:-5], [])


def test_every_default_key_has_a_comment():
    with open(os.path.join(CONFIG_DIR, "default.yaml")) as f:
        lines = f.read().splitlines()
    undocumented = [ln for ln in lines if ln and not ln.startswith((" ", "#")) and "#" not in ln]
    assert undocumented == []
