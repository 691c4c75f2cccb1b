"""Config merging, the one place for it.

``config/default.yaml`` <- ``config/envs/<env>.yaml`` <- ``config/algs/<alg>.yaml`` <- ``with`` overrides
(the algorithm file wins over the env file, as in pymarl2). Every top-level key of an env or
algorithm file and every override must already exist in default.yaml, where each key is
documented once; a typo is an error naming the key, never a silently different experiment.

Each key's comment in default.yaml starts with its type and allowed range in brackets, the one
place they are declared (``load_specs`` reads them):

    gamma: 0.99       # [float, 0 <= x <= 1] discount
    batch_size: 128   # [int, >= 1] episodes per training batch
    mixer: qmix       # [str or null] ...
    sampled_seq_len: 64   # [int, -1 or >= 1] ...

Types: bool, int, float, str, dict, int list, float list, each optionally "or null". A range is
one or more alternatives joined by " or ": a number, ``>= a`` / ``> a`` / ``<= b`` / ``< b``, or
a chain ``a <= x <= b`` (``<`` for open ends); a list's range applies to each element.
``validate_config`` checks every value (from default.yaml, env and algorithm files and ``with``
overrides alike) against its type and range, then the cross-key rules in ``CROSS_RULES``; an
error names the key, the value, where it was set and what is allowed.
"""
from __future__ import annotations

import copy
import difflib
import math
import os
import re
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import yaml

CONFIG_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                          "config")


class ConfigError(ValueError):
    """A bad config file, config name or override; the message says what to change."""


def _suggest(key: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(key, list(choices), n=3)
    return f" Did you mean: {', '.join(close)}?" if close else ""


class _UniqueKeyLoader(yaml.SafeLoader):
    """yaml.SafeLoader that refuses a mapping with a key given twice (PyYAML keeps the last one)."""

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        seen: Dict[Any, Any] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                first = seen.get(key)
            except TypeError:  # an unhashable key: let PyYAML report it
                continue
            if first is not None:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key '{key}' is given twice (first at line {first.line + 1}); keep one",
                    key_node.start_mark)
            seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _UniqueKeyLoader.construct_mapping)


def load_yaml(path: str) -> Dict[str, Any]:
    """Load a YAML mapping (empty file -> {}); a syntax error or a key given twice in one mapping
    is one line naming the file and line."""
    with open(path) as f:
        try:
            data = yaml.load(f, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else path
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            what = "" if "given twice" in str(problem) else "YAML syntax error: "
            raise ConfigError(f"{where}: {what}{problem}. Fix the file at that line.") from None
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


def split_with_args(argv: Sequence[str]) -> Tuple[List[str], List[str]]:
    """Split a command line at its first ``with`` (sacred's convention): ``(options, overrides)``.

    Parsing only the options keeps an option that takes several values (``--variant NAME K=V ...``)
    from swallowing the ``KEY=VALUE`` overrides that follow ``with``."""
    argv = list(argv)
    if "with" not in argv:
        return argv, []
    i = argv.index("with")
    return argv[:i], argv[i + 1:]


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


# ------------------------------------------------------------------ declared types and ranges
_NUM = r"-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_ONE_SIDED = re.compile(rf"^(>=|>|<=|<)\s*({_NUM})$")
_CHAIN = re.compile(rf"^({_NUM})\s*(<=|<)\s*x\s*(<=|<)\s*({_NUM})$")
_SPEC = re.compile(r"^\[([^\]]+)\]")
_KEY_LINE = re.compile(r"^([A-Za-z_]\w*)\s*:(.*)$")
SPEC_TYPES = ("bool", "int", "float", "str", "dict", "int list", "float list")
_SAMPLE = {"bool": False, "int": 0, "float": 0.0, "str": ""}


@dataclass(frozen=True)
class KeySpec:
    """A key's declared type and range (from its comment in default.yaml).

    ``alternatives``: the allowed values of a number (each element of a list), any one suffices:
    ``(lo, lo_inclusive, hi, hi_inclusive)`` with None for an open side. Empty = any value."""

    key: str
    type: str
    nullable: bool = False
    alternatives: Tuple[Tuple[Optional[float], bool, Optional[float], bool], ...] = ()

    def range_text(self) -> str:
        """The range with the key's name, e.g. ``0 <= gamma <= 1`` or ``snn_T >= 1``."""
        parts = []
        for lo, lo_in, hi, hi_in in self.alternatives:
            if lo is not None and lo == hi:
                parts.append(f"{self.key} = {_fmt(lo)}")
            elif lo is not None and hi is not None:
                parts.append(f"{_fmt(lo)} {'<=' if lo_in else '<'} {self.key} {'<=' if hi_in else '<'} {_fmt(hi)}")
            elif lo is not None:
                parts.append(f"{self.key} {'>=' if lo_in else '>'} {_fmt(lo)}")
            else:
                parts.append(f"{self.key} {'<=' if hi_in else '<'} {_fmt(hi)}")
        return " or ".join(parts)

    def admits(self, x: float) -> bool:
        if not self.alternatives:
            return True
        for lo, lo_in, hi, hi_in in self.alternatives:
            if lo is not None and (x < lo or (x == lo and not lo_in)):
                continue
            if hi is not None and (x > hi or (x == hi and not hi_in)):
                continue
            return True
        return False


def _fmt(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else repr(v)


def parse_spec(key: str, text: str) -> KeySpec:
    """``"float, 0 <= x <= 1"`` -> KeySpec (raises ValueError on a malformed spec)."""
    type_part, _, range_part = text.partition(",")
    type_words = type_part.strip()
    nullable = type_words.endswith(" or null")
    if nullable:
        type_words = type_words[: -len(" or null")].strip()
    if type_words not in SPEC_TYPES:
        raise ValueError(f"unknown type '{type_words}' (use one of {', '.join(SPEC_TYPES)}, optionally 'or null')")
    alternatives = []
    for alt in filter(None, (a.strip() for a in range_part.split(" or "))) if range_part.strip() else ():
        if re.fullmatch(_NUM, alt):
            alternatives.append((float(alt), True, float(alt), True))
        elif _ONE_SIDED.match(alt):
            op, num = _ONE_SIDED.match(alt).groups()
            v = float(num)
            alternatives.append((v, op == ">=", None, False) if op.startswith(">") else (None, False, v, op == "<="))
        elif _CHAIN.match(alt):
            lo, op1, op2, hi = _CHAIN.match(alt).groups()
            alternatives.append((float(lo), op1 == "<=", float(hi), op2 == "<="))
        else:
            raise ValueError(f"cannot read the range '{alt}' (write e.g. '>= 1', '> 0', '0 <= x <= 1', '-1 or >= 1')")
    if alternatives and type_words not in ("int", "float", "int list", "float list"):
        raise ValueError(f"a range needs a numeric type, not '{type_words}'")
    return KeySpec(key, type_words, nullable, tuple(alternatives))


def load_specs(path: str) -> Dict[str, KeySpec]:
    """The ``[type, range]`` declarations of default.yaml's top-level keys, by key.

    A key declared twice, or a malformed declaration, is a ConfigError naming the line."""
    specs: Dict[str, KeySpec] = {}
    first_line: Dict[str, int] = {}
    with open(path) as f:
        for lineno, line in enumerate(f, start=1):
            m = _KEY_LINE.match(line)
            if not m:
                continue
            key, rest = m.groups()
            if key in first_line:
                raise ConfigError(f"{path}:{lineno}: key '{key}' is declared twice (first at line "
                                  f"{first_line[key]}); keep one declaration.")
            first_line[key] = lineno
            comment = rest.split(" #", 1)[1].strip() if " #" in rest else ""
            spec = _SPEC.match(comment)
            if spec:
                try:
                    specs[key] = parse_spec(key, spec.group(1))
                except ValueError as exc:
                    raise ConfigError(f"{path}:{lineno}: bad declaration [{spec.group(1)}] of '{key}': "
                                      f"{exc}.") from None
    return specs


def _implied_spec(key: str, default: Any) -> KeySpec:
    """For a key without a declaration: the type of its default value (None: anything)."""
    for name, cls in (("bool", bool), ("int", int), ("float", float), ("str", str), ("dict", dict)):
        if isinstance(default, cls):
            return KeySpec(key, name)
    return KeySpec(key, "any", nullable=True)


def check_value(spec: KeySpec, value: Any, source: str) -> Any:
    """``value`` brought to ``spec``'s type and checked against its range; ConfigError otherwise.

    ``source`` says where the value was set (a file or an override), for the message."""
    key = spec.key
    if spec.type == "any":
        return value
    if value is None:
        if spec.nullable:
            return None
        raise ConfigError(f"{source}: '{key}' expects {_a(spec.type)}, got null.")
    try:
        if spec.type == "dict":
            if not isinstance(value, dict):
                raise ConfigError(f"'{key}' expects a mapping of keys, got {value!r}.")
            return value
        if spec.type.endswith(" list"):
            if not isinstance(value, (list, tuple)):
                raise ConfigError(f"'{key}' expects a list of {spec.type[:-5]}s, got {value!r}.")
            items = [coerce(key, v, _SAMPLE[spec.type[:-5]]) for v in value]
        else:
            if spec.type == "str" and isinstance(value, (list, dict)):
                raise ConfigError(f"'{key}' expects a string, got {value!r}.")
            items = [coerce(key, value, _SAMPLE[spec.type])]
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    for x in items:
        if isinstance(x, float) and not math.isfinite(x):
            raise ConfigError(f"{key}={value!r} ({source}) is not a finite number.")
        if isinstance(x, (int, float)) and not isinstance(x, bool) and not spec.admits(x):
            each = "each element: " if spec.type.endswith(" list") else ""
            raise ConfigError(f"{key}={value!r} ({source}) is out of range: allowed {each}{spec.range_text()} "
                              f"(declared in config/default.yaml).")
    return list(items) if spec.type.endswith(" list") else items[0]


def _a(type_name: str) -> str:
    return {"int": "an integer", "float": "a number", "bool": "true/false", "str": "a string",
            "dict": "a mapping"}.get(type_name, f"a {type_name}")


# Rules across keys, as data: (smaller key, larger key, why). Checked after every value is in range.
CROSS_RULES: Tuple[Tuple[str, str, str], ...] = (
    ("batch_size", "buffer_size", "a MARL training batch draws batch_size episodes from the replay buffer, "
                                  "so the run would never train"),
    ("batch_size_transitions", "buffer_size_transitions", "a TD3 batch draws batch_size_transitions "
                                                          "transitions from the replay"),
)


_DEVICE = re.compile(r"^(auto|cpu|cuda|cuda:\d+|mps)$")


def _check_device(value: Any) -> Any:
    if not _DEVICE.match(str(value)):
        raise ConfigError(f"device={value!r} is not a device this project runs on: use auto, cpu, cuda or cuda:N "
                          f"(N = the GPU's index).")
    return value


def _check_name(value: Any) -> Any:
    if value is None:
        return value
    text = str(value)
    if not text.strip() or "/" in text or "\\" in text or os.sep in text or text.startswith(".") or "\0" in text:
        raise ConfigError(f"name={text!r} is not a plain folder name: it names the run's folders under "
                          f"local_results_path, so it may not be empty, contain '/' or '\\' or start with '.'. "
                          f"Use e.g. name=qmix_grsn_3m.")
    return value


def _check_save_buffer(value: Any) -> Any:
    text = str(value).strip().lower()
    canonical = {"true": "all", "false": "none"}.get(text, text)
    if canonical not in ("last", "all", "none"):
        raise ConfigError(f"save_buffer={value!r} is not one of last | all | none (True = all, False = none).")
    return canonical


# Keys whose values are one of a set of words: checked (and brought to their canonical word) by
# validate_config after the type and range checks, so a typo fails at start-up.
def _check_wandb_mode(value: Any) -> Any:
    if str(value) not in ("offline", "online", "disabled"):
        raise ConfigError(f"wandb_mode={value!r} is not one of offline | online | disabled.")
    return value


VALUE_RULES = {"device": _check_device, "name": _check_name, "save_buffer": _check_save_buffer,
               "wandb_mode": _check_wandb_mode}


def project_specs(config_dir: str = CONFIG_DIR) -> Dict[str, KeySpec]:
    """Every default.yaml key's spec: its declaration, else the type of its default value."""
    path = os.path.join(config_dir, "default.yaml")
    specs = {k: _implied_spec(k, v) for k, v in load_yaml(path).items()}
    specs.update(load_specs(path))
    return specs


def check_keys(args: Any, keys: Sequence[str], source: str = "the run's config") -> None:
    """Check the values of ``keys`` in ``args`` (a namespace or mapping) against their declarations
    in default.yaml: the run loops' check of the keys they read, so a config built in code meets
    the same ranges as one from ``build_config`` (ConfigError naming the key and the allowed range)."""
    values = args if isinstance(args, Mapping) else vars(args)
    specs = project_specs()
    for key in keys:
        if key not in specs:
            raise KeyError(f"check_keys: '{key}' is not declared in config/default.yaml")
        check_value(specs[key], values[key], source)


def validate_config(config: Dict[str, Any], specs: Mapping[str, KeySpec],
                    sources: Optional[Mapping[str, str]] = None,
                    default_source: str = "config/default.yaml") -> Dict[str, Any]:
    """Check every top-level value against its declared type and range, then ``CROSS_RULES``.

    Returns a copy with values brought to their declared types (``2e6`` -> 2000000 for an int).
    ``sources[key]`` names where each value was set (else ``default_source``)."""
    where = {k: (sources or {}).get(k, default_source) for k in config}
    out = dict(config)
    for key, value in config.items():
        spec = specs.get(key)
        if spec is not None:
            out[key] = check_value(spec, value, where[key])
    for key, rule in VALUE_RULES.items():
        if key in out:
            try:
                out[key] = rule(out[key])
            except ConfigError as exc:
                raise ConfigError(f"{exc} (set in {where.get(key, default_source)})") from None
    for small, large, why in CROSS_RULES:
        a, b = out.get(small), out.get(large)
        if isinstance(a, (int, float)) and isinstance(b, (int, float)) and a > b:
            raise ConfigError(f"{small}={a} ({where[small]}) is larger than {large}={b} ({where[large]}): {why}. "
                              f"Allowed: {small} <= {large}; lower {small} or raise {large}.")
    return out


def apply_overrides(config: Dict[str, Any], overrides: Sequence[str],
                    specs: Optional[Mapping[str, KeySpec]] = None,
                    sources: Optional[Dict[str, str]] = None) -> Dict[str, Any]:
    """Apply ``key=value`` / ``a.b=value`` overrides; every key path must already exist.

    A top-level key declared in ``specs`` is only parsed here (``validate_config`` types and
    checks it) and ``sources[key]`` records the override; other values take the current type."""
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
        if len(parts) == 1 and specs is not None and parts[0] in specs:
            node[parts[0]] = parse_value(text)
        else:
            node[parts[-1]] = coerce(path, parse_value(text), node[parts[-1]])
        if sources is not None:
            sources[parts[0]] = f"override '{item}'"
    return config


def build_config(alg: str, env: str, overrides: Sequence[str] = (),
                 config_dir: str = CONFIG_DIR) -> Dict[str, Any]:
    """Merge default <- env <- alg <- overrides, validate every value (``validate_config``)
    and return the final config dict."""
    default = load_yaml(os.path.join(config_dir, "default.yaml"))
    specs = project_specs(config_dir)
    env_cfg = load_named("envs", env, config_dir)
    alg_cfg = load_named("algs", alg, config_dir)
    sources = {k: "config/default.yaml" for k in default}
    for label, data in ((f"config/envs/{env}.yaml", env_cfg), (f"config/algs/{alg}.yaml", alg_cfg)):
        _check_known_keys(label, data, default)
        sources.update({k: label for k in data})
    config = recursive_update(recursive_update(default, env_cfg), alg_cfg)
    config = apply_overrides(config, overrides, specs, sources)
    config = validate_config(config, specs, sources)
    config["config_name"] = alg
    config["env_config_name"] = env
    return config


USAGE_LINE = "Usage: python src/main.py --config=ALG --env-config=ENV [with key=value ...] (--help: more)"


def parse_command_line(argv: Sequence[str]) -> Tuple[str, str, List[str]]:
    """Split ``--config=ALG --env-config=ENV [with k=v ...]`` into its parts.

    Defaults: ``--config=qmix``, ``--env-config=smax``.
    """
    alg, env = "qmix", "smax"
    args, overrides = split_with_args(argv)
    i = 0
    while i < len(args):
        arg = args[i]
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
            raise ConfigError(f"unrecognised argument '{arg}'. {USAGE_LINE}")
        i += 1
    return alg, env, overrides


def results_group(config: Mapping[str, Any]) -> Tuple[str, str]:
    """``(env, scenario)`` naming a run's results folder: the map name or the env key."""
    env_args = config.get("env_args") or {}
    scenario = env_args.get("map_name") or env_args.get("key") or "default"
    return str(config.get("env")), str(scenario)
