import os

import pytest
import yaml

from utils.config import (CONFIG_DIR, ConfigError, KeySpec, build_config, coerce, load_specs, parse_command_line,
                          parse_spec, project_specs, recursive_update, split_with_args, validate_config)


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


# ------------------------------------------------------------------ declared types and ranges

@pytest.mark.parametrize("alg,env,override,message", [
    ("qmix", "smax", "gamma=2", r"gamma=2 \(override 'gamma=2'\) is out of range: allowed 0 <= gamma <= 1"),
    ("qmix", "smax", "td_lambda=1.5", r"td_lambda=1.5 .* allowed 0 <= td_lambda <= 1"),
    ("qmix", "smax", "epsilon_start=2", r"epsilon_start=2 .* allowed 0 <= epsilon_start <= 1"),
    ("qmix", "smax", "batch_size=6000",
     r"batch_size=6000 \(override 'batch_size=6000'\) is larger than buffer_size=5000 \(config/algs/qmix.yaml\)"),
    ("qmix", "smax", "test_interval=0", r"test_interval=0 .* allowed test_interval >= 1"),
    ("qmix", "smax", "t_max=-5", r"t_max=-5 .* allowed t_max >= 0"),
    ("qmix", "smax", "batch_size=0", r"batch_size=0 .* allowed batch_size >= 1"),
    ("td3", "pomdp", "snn_T=0", r"snn_T=0 .* allowed snn_T >= 1"),
    ("qmix", "smax", "test_nepisode=0", r"test_nepisode=0 .* allowed test_nepisode >= 1"),
    ("td3", "pomdp", "sampled_seq_len=0", r"allowed sampled_seq_len = -1 or sampled_seq_len >= 1"),
    ("td3", "mujoco", "popsan_hidden=[256,0]", r"popsan_hidden=\[256, 0\] .* allowed each element: popsan_hidden >= 1"),
    ("td3", "mujoco", "batch_size_transitions=300", None),
    ("qmix", "smax", "lr=fast", r"override 'lr=fast': 'lr' expects a number, got 'fast'"),
    ("qmix", "smax", "lr=.inf", r"lr=inf .* is not a finite number"),
    ("qmix", "smax", "t_max=null", r"'t_max' expects an integer, got null"),
    ("qmix", "smax", "name=[1,2]", r"'name' expects a string"),
])
def test_issue_examples_are_refused_naming_key_value_and_range(alg, env, override, message):
    """Every example of issue 17 (and a few more) is one ConfigError naming the key, the value,
    where it was set and the allowed range; batch_size_transitions=300 stays legal."""
    if message is None:
        assert build_config(alg, env, [override])["batch_size_transitions"] == 300
        return
    with pytest.raises(ConfigError, match=message) as err:
        build_config(alg, env, [override])
    assert "\n" not in str(err.value)


def test_cross_rule_names_both_keys_and_sources():
    with pytest.raises(ConfigError, match=r"batch_size_transitions=4096 \(override .*\) is larger than "
                                          r"buffer_size_transitions=1000 \(override .*\)"
                                          r".*lower batch_size_transitions"):
        build_config("td3", "mujoco", ["batch_size_transitions=4096", "buffer_size_transitions=1000"])
    cfg = build_config("qmix", "smax", ["batch_size=32", "buffer_size=32"])   # equal is fine
    assert cfg["batch_size"] == cfg["buffer_size"] == 32


def _write_text(tmp_path, rel, text):
    path = tmp_path / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.fixture
def declared_dir(tmp_path):
    """A config dir whose default.yaml declares types and ranges in its comments."""
    _write_text(tmp_path, "default.yaml",
                "lr: 0.1          # [float, > 0] learning rate\n"
                "gamma: 0.9       # [float, 0 <= x <= 1] discount\n"
                "t_max: 100       # [int, >= 0] steps\n"
                "mixer: qmix      # [str or null] mixer\n"
                "hidden: [4, 4]   # [int list, >= 1] sizes\n"
                "sign: 1          # [int, -1 or 1] a sign\n"
                "env_args: {}     # [dict] env arguments\n")
    _write_text(tmp_path, "envs/e.yaml", "t_max: 2e3\n")
    _write_text(tmp_path, "algs/a.yaml", "lr: 1\n")
    return tmp_path


def test_yaml_file_values_are_typed_and_range_checked_like_overrides(declared_dir):
    cfg = build_config("a", "e", [], str(declared_dir))
    assert cfg["t_max"] == 2000 and isinstance(cfg["t_max"], int)   # "2e3" from a file, as from the CLI
    assert cfg["lr"] == 1.0 and isinstance(cfg["lr"], float)
    _write_text(declared_dir, "algs/fast.yaml", "lr: fast\n")
    with pytest.raises(ConfigError, match=r"config/algs/fast.yaml: 'lr' expects a number, got 'fast'"):
        build_config("fast", "e", [], str(declared_dir))
    _write_text(declared_dir, "envs/far.yaml", "gamma: 1.5\n")
    with pytest.raises(ConfigError,
                       match=r"gamma=1.5 \(config/envs/far.yaml\) is out of range: allowed 0 <= gamma <= 1"):
        build_config("a", "far", [], str(declared_dir))
    _write_text(declared_dir, "algs/sign.yaml", "sign: 0\n")
    with pytest.raises(ConfigError, match=r"sign=0 \(config/algs/sign.yaml\).* allowed sign = -1 or sign = 1"):
        build_config("sign", "e", [], str(declared_dir))
    # an override wins over the file and is what the message names
    with pytest.raises(ConfigError, match=r"lr=-1 \(override 'lr=-1'\)"):
        build_config("a", "e", ["lr=-1"], str(declared_dir))
    assert build_config("a", "e", ["mixer=null", "sign=-1"], str(declared_dir))["mixer"] is None


def test_yaml_syntax_error_is_one_line_with_file_and_line(declared_dir):
    _write_text(declared_dir, "algs/broken.yaml", "lr: 0.1\ngamma: [0.9\nt_max: 5\n")
    with pytest.raises(ConfigError, match=r"algs/broken.yaml:3:\d+: YAML syntax error") as err:
        build_config("broken", "e", [], str(declared_dir))
    assert "\n" not in str(err.value)


def test_parse_spec_bounds_are_inclusive_or_open_as_written():
    spec = parse_spec("tau", "float, 0 < x <= 1")
    assert [spec.admits(v) for v in (0.0, 1e-9, 1.0, 1.0001)] == [False, True, True, False]
    assert spec.range_text() == "0 < tau <= 1"
    spec = parse_spec("seq", "int, -1 or >= 1")
    assert [spec.admits(v) for v in (-2, -1, 0, 1, 64)] == [False, True, False, True, True]
    assert spec.range_text() == "seq = -1 or seq >= 1"
    assert parse_spec("m", "str or null") == KeySpec("m", "str", nullable=True)
    for bad in ("integer, >= 1", "int, >= one", "str, >= 1"):
        with pytest.raises(ValueError):
            parse_spec("k", bad)


def test_malformed_or_duplicate_declarations_name_the_line(tmp_path):
    _write_text(tmp_path, "d.yaml", "a: 1  # [int, >= 1] x\nb: 2  # [int, => 1] y\n")
    with pytest.raises(ConfigError, match=r"d.yaml:2: bad declaration \[int, => 1\] of 'b'"):
        load_specs(str(tmp_path / "d.yaml"))
    _write_text(tmp_path, "d.yaml", "a: 1  # [int, >= 1] x\nb: 2  # y\na: 3  # [int] z\n")
    with pytest.raises(ConfigError, match=r"d.yaml:3: key 'a' is declared twice \(first at line 1\)"):
        load_specs(str(tmp_path / "d.yaml"))


def test_every_project_key_is_declared_and_every_number_has_a_range():
    path = os.path.join(CONFIG_DIR, "default.yaml")
    with open(path) as f:
        keys = yaml.safe_load(f)
    specs = load_specs(path)
    assert sorted(set(keys) - set(specs)) == [], "declare [type, range] at the start of these keys' comments"
    unbounded = [k for k, s in specs.items() if s.type in ("int", "float", "int list") and not s.alternatives]
    assert unbounded == []


def test_validate_config_of_a_merged_config_names_its_source():
    """main.py re-checks a checkpoint's config merged with the command's overrides this way."""
    specs = project_specs()
    cfg = build_config("qmix", "smax")
    cfg.update(batch_size=64, buffer_size=32)
    with pytest.raises(ConfigError, match=r"batch_size=64 \(the checkpoint's config\) is larger than buffer_size=32"):
        validate_config(cfg, specs, default_source="the checkpoint's config")
    cfg.update(buffer_size=64, t_max="3e3")
    assert validate_config(cfg, specs)["t_max"] == 3000


def test_check_keys_holds_code_built_configs_to_the_declared_ranges():
    from types import SimpleNamespace

    from utils.config import check_keys
    check_keys(SimpleNamespace(t_max=0, sampled_seq_len=-1), ["t_max", "sampled_seq_len"])
    check_keys({"po_updates_per_step": 0.5}, ["po_updates_per_step"])
    with pytest.raises(ConfigError, match=r"test_nepisode=0 \(the run's config\) is out of range: allowed "
                                          r"test_nepisode >= 1 \(declared in config/default.yaml\)"):
        check_keys(SimpleNamespace(test_nepisode=0), ["test_nepisode"])
    with pytest.raises(ConfigError, match="sampled_seq_len=-3"):
        check_keys(SimpleNamespace(sampled_seq_len=-3), ["sampled_seq_len"])
    with pytest.raises(KeyError, match="'no_such_key' is not declared"):
        check_keys(SimpleNamespace(no_such_key=1), ["no_such_key"])


def test_split_with_args_cuts_at_the_first_with():
    assert split_with_args(["--a", "1", "with", "x=1", "with", "y=2"]) == (["--a", "1"], ["x=1", "with", "y=2"])
    assert split_with_args(["--a", "1"]) == (["--a", "1"], [])
    assert split_with_args(["with"]) == ([], [])


# ------------------------------------------------------------------ issue 48: values refused at start-up
def test_a_key_given_twice_in_a_yaml_file_is_refused_with_the_file_and_key(cfg_dir):
    """Issue 48: a duplicate YAML key was accepted (the last one won)."""
    path = os.path.join(cfg_dir, "algs", "dup.yaml")
    with open(path, "w") as f:
        f.write("lr: 0.3\nenv_args:\n  map_name: 3m\n  map_name: 8m\n")
    with pytest.raises(ConfigError, match=r"dup\.yaml:4:3: key 'map_name' is given twice \(first at line 3\)"):
        build_config("dup", "e", [], cfg_dir)
    with open(path, "w") as f:
        f.write("lr: 0.3\ngamma: 0.5\nlr: 0.4\n")
    with pytest.raises(ConfigError, match=r"dup\.yaml:3:1: key 'lr' is given twice"):
        build_config("dup", "e", [], cfg_dir)


@pytest.mark.parametrize("override,match", [
    ("device=tpu", r"device='tpu' is not a device .* auto, cpu, cuda or cuda:N .*override 'device=tpu'"),
    ("device=cuda1", "device='cuda1' is not a device"),
    ("name=../../x", r"name='\.\./\.\./x' is not a plain folder name"),
    ("name=a/b", "is not a plain folder name"),
    ("name=.hidden", "is not a plain folder name"),
    ("save_buffer=sometimes", r"save_buffer='sometimes' is not one of last \| all \| none"),
])
def test_bad_device_name_and_save_buffer_values_are_one_line_at_start_up(override, match):
    """Issue 48: device=tpu failed 28 s later; name=../../../x wrote outside local_results_path."""
    with pytest.raises(ConfigError, match=match) as info:
        build_config("qmix", "smax", [override])
    assert "\n" not in str(info.value)


def test_good_device_name_and_save_buffer_values_pass():
    for device in ("auto", "cpu", "cuda", "cuda:1"):
        assert build_config("qmix", "smax", [f"device={device}"])["device"] == device
    assert build_config("qmix", "smax", ["name=qmix_grsn_3m.v2"])["name"] == "qmix_grsn_3m.v2"
    assert build_config("qmix", "smax")["save_buffer"] == "last"
    for given, canonical in (("True", "all"), ("False", "none"), ("all", "all"), ("none", "none"), ("LAST", "last")):
        assert build_config("qmix", "smax", [f"save_buffer={given}"])["save_buffer"] == canonical
