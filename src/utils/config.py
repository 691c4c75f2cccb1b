"""Config merging, the one place for it.

``config/default.yaml`` <- ``config/envs/<env>.yaml`` <- ``config/algs/<alg>.yaml`` <- ``with`` overrides
(the algorithm file wins over the env file, as in pymarl2). Every top-level key of an env or
algorithm file and every override must already exist in default.yaml, where each key is
documented once; a typo is an error naming the key, never a silently different experiment.
"""
from __future__ import annotations

import copy
import difflib
import os
from typing import Any, Dict, List, Mapping, Sequence, Tuple

import yaml

CONFIG_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                          "config")


class ConfigError(ValueError):
    """A bad config file, config name or override; the message says what to change."""


def _suggest(key: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(key, list(choices), n=3)
    return f" Did you mean: {', '.join(close)}?" if close else ""


def load_yaml(path: str) -> Dict[str, Any]:
    """Load a YAML mapping (empty file -> {})."""
    with open(path) as f:
        data = yaml.safe_load(f)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping of config keys, not {type(data).__name__}.")
    return data


def load_named(kind: str, name: str, config_dir: str = CONFIG_DIR) -> Dict[str, Any]:
    """Load ``config/<kind>/<name>.yaml`` (kind is "algs" or "envs") with a helpful error."""
    folder = os.path.join(config_dir, kind)
    path = os.path.join(folder, f"{name}.yaml")
    if not os.path.exists(path):
        names = sorted(f[:-5] for f in os.listdir(folder) if f.endswith(".yaml"))
        flag = "--config" if kind == "algs" else "--env-config"
        raise ConfigError(f"no {kind[:-1]} config '{name}' ({path}). Valid {flag} values: "
                          f"{', '.join(names)}.{_suggest(name, names)}")
    return load_yaml(path)


def recursive_update(base: Dict[str, Any], update: Mapping[str, Any]) -> Dict[str, Any]:
    """Return a deep copy of ``base`` with ``update`` merged in (nested dicts merge)."""
    out = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = recursive_update(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _check_known_keys(source: str, data: Mapping[str, Any], known: Mapping[str, Any]) -> None:
    unknown = [k for k in data if k not in known]
    if unknown:
        k = unknown[0]
        raise ConfigError(f"{source} sets unknown config key '{k}'. Every key must be declared and "
                          f"documented in config/default.yaml.{_suggest(k, list(known))}")


def parse_value(text: str) -> Any:
    """Parse an override value like sacred does (YAML scalars: ints, floats, bools, null, lists)."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def coerce(key: str, value: Any, current: Any) -> Any:
    """Bring an override ``value`` to the type of the ``current`` value, or raise ConfigError.

    "2e6" (YAML reads it as a string) becomes 2000000 for an int key; a bool key only takes
    true/false; None on either side is accepted as is.
    """
    if current is None or value is None:
        return value
    if isinstance(current, bool):
        if isinstance(value, bool):
            return value
        raise ConfigError(f"'{key}' expects true/false, got {value!r}.")
    if isinstance(current, (int, float)):
        if isinstance(value, bool):
            raise ConfigError(f"'{key}' expects a number, got {value!r}.")
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                raise ConfigError(f"'{key}' expects a number, got {value!r}.") from None
        if isinstance(value, (int, float)):
            if isinstance(current, int) and float(value).is_integer():
                return int(value)
            if isinstance(current, int):
                raise ConfigError(f"'{key}' expects an integer, got {value!r}.")
            return float(value)
        raise ConfigError(f"'{key}' expects a number, got {value!r}.")
    if isinstance(current, str) and not isinstance(value, str):
        return str(value)
    if isinstance(current, dict) and not isinstance(value, dict):
        raise ConfigError(f"'{key}' is a group of keys; set its members with '{key}.<name>=...'.")
    return value


def apply_overrides(config: Dict[str, Any], overrides: Sequence[str]) -> Dict[str, Any]:
    """Apply ``key=value`` / ``a.b=value`` overrides; every key path must already exist."""
    config = copy.deepcopy(config)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override '{item}' is not of the form key=value.")
        path, text = item.split("=", 1)
        parts = path.strip().split(".")
        node = config
        for i, part in enumerate(parts):
            where = ".".join(parts[:i + 1])
            if not isinstance(node, dict) or part not in node:
                choices = list(node) if isinstance(node, dict) else []
                raise ConfigError(f"unknown config key '{where}' in override '{item}'."
                                  f"{_suggest(part, choices)} See config/default.yaml for all keys.")
            if i < len(parts) - 1:
                node = node[part]
        node[parts[-1]] = coerce(path, parse_value(text), node[parts[-1]])
    return config


def build_config(alg: str, env: str, overrides: Sequence[str] = (),
                 config_dir: str = CONFIG_DIR) -> Dict[str, Any]:
    """Merge default <- env <- alg <- overrides and return the final config dict."""
    default = load_yaml(os.path.join(config_dir, "default.yaml"))
    env_cfg = load_named("envs", env, config_dir)
    alg_cfg = load_named("algs", alg, config_dir)
    _check_known_keys(f"config/envs/{env}.yaml", env_cfg, default)
    _check_known_keys(f"config/algs/{alg}.yaml", alg_cfg, default)
    config = recursive_update(recursive_update(default, env_cfg), alg_cfg)
    config = apply_overrides(config, overrides)
    config["config_name"] = alg
    config["env_config_name"] = env
    return config


def parse_command_line(argv: Sequence[str]) -> Tuple[str, str, List[str]]:
    """Split ``--config=ALG --env-config=ENV [with k=v ...]`` into its parts.

    Defaults: ``--config=qmix``, ``--env-config=smax``.
    """
    alg, env = "qmix", "smax"
    overrides: List[str] = []
    args = list(argv)
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "with":
            overrides = args[i + 1:]
            break
        if arg.startswith("--config="):
            alg = arg.split("=", 1)[1]
        elif arg.startswith("--env-config="):
            env = arg.split("=", 1)[1]
        elif arg in ("--config", "--env-config") and i + 1 < len(args):
            if arg == "--config":
                alg = args[i + 1]
            else:
                env = args[i + 1]
            i += 1
        else:
            raise ConfigError(f"unrecognised argument '{arg}'. Usage: python src/main.py "
                              f"--config=ALG --env-config=ENV [with key=value ...]")
        i += 1
    return alg, env, overrides


def results_group(config: Mapping[str, Any]) -> Tuple[str, str]:
    """``(env, scenario)`` naming a run's results folder: the map name or the env key."""
    env_args = config.get("env_args") or {}
    scenario = env_args.get("map_name") or env_args.get("key") or "default"
    return str(config.get("env")), str(scenario)
