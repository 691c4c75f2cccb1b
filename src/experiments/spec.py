"""Experiment specs: one YAML file under ``config/experiments/`` describes a whole grid.

A spec is data. Its keys (every one documented here once; anything else is an error):

    name: table2                  # [str] the experiment's name (= the file name)
    title: "..."                  # [str] one line for reports
    description: "..."            # [str] what it measures, the paper it follows, deviations
    base:                         # the run every point starts from
      config: qmix                #   [str] --config (config/algs/<config>.yaml)
      env_config: smax            #   [str] --env-config (config/envs/<env_config>.yaml)
      with: {test_interval: 20000}  # [dict] `with` overrides for every point (dotted keys allowed)
    agents:                       # [list or dict] the methods compared; a list of names sets agent_key
      rnn: {}                     #   or name -> {config: ..., with: {...}} (e.g. TD3 variants)
    agent_key: agent              # [str] config key an agent name sets when given as a list (default agent)
    scenarios:                    # [dict] scenario -> {t_max: int, config: str, with: {...}}
      3m: {t_max: 2000000}        #   t_max is the budget (env steps) of every point of that scenario
    scenario_key: env_args.map_name  # [str] config key the scenario name sets
    variants: {default: {}}       # [dict] variant -> {with: {...}, agents: [names]} (default: one variant)
    seeds: [1, 2, 3]              # [int list] seeds, numbered as `seed=` of main.py (the same everywhere)
    protocol:                     # how a run is scored
      metric: test_battle_won_mean  # [str] logged test metric (higher is better unless higher_is_better: false)
      label: test win rate (%)    #   [str] axis / column label
      scale: 100                  #   [float] multiply the metric by this in tables (100: percent)
      last_k: 10                  #   [int >= 1] final metric 1: mean of the last K tests
      absolute_episodes: 320      #   [int >= 0] final metric 2: re-evaluate the final checkpoint on this many
                                  #   episodes (marl-eval's absolute metric; 0 = off)
      compare: [[grsn, rnn]]      #   [list of [a, b]] verdicts for a vs b (a variant as agent/variant)
      margin: 5                   #   [float >= 0, or scenario -> float] non-inferiority margin in table
                                  #   units: "level" only when the difference's CI lies inside +-margin
      aggregate: true             #   [bool] also aggregate over scenarios (only for metrics on one scale)
      energy: true                #   [bool] count the energy of every seed's final networks (src/energy) into
                                  #   its record; the report gives the Table-4 layout with the spread over seeds
    resources: {cpus: 1, gpus: 0, memory_gb: 4}  # per point, for Ray
    checkpoint_interval: 100000   # [int >= 1] env steps between checkpoints (with the replay, for exact resume)
    retries: 2                    # [int >= 0] times a failed point is started again (it resumes)
    paper: {}                     # [dict] the paper's numbers for reference: scenario -> agent -> value
    migrated_from: []             # [str list] stored files the records were migrated from (documentation)

Points are agents x scenarios x variants x seeds; a variant may list the agents it applies to.
Every point's config is built and validated with the project's config code (unknown keys, bad
values, unknown registry names) before anything starts.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import yaml

from utils.config import CONFIG_DIR, ConfigError, build_config

EXPERIMENTS_DIR = os.path.join(CONFIG_DIR, "experiments")

TOP_KEYS = {"name", "title", "description", "base", "agents", "agent_key", "scenarios", "scenario_key",
            "variants", "seeds", "protocol", "resources", "checkpoint_interval", "retries", "paper",
            "migrated_from"}
BASE_KEYS = {"config", "env_config", "with"}
SCENARIO_KEYS = {"t_max", "config", "with"}
AGENT_KEYS = {"config", "with"}
VARIANT_KEYS = {"with", "agents"}
PROTOCOL_KEYS = {"metric", "label", "scale", "last_k", "absolute_episodes", "compare", "margin",
                 "aggregate", "higher_is_better", "energy"}
RESOURCE_KEYS = {"cpus", "gpus", "memory_gb"}
# keys the launcher sets itself; a spec may not set them
RESERVED = {"seed", "name", "t_max", "local_results_path", "checkpoint_path", "load_step", "evaluate"}
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")


class SpecError(ValueError):
    """A bad experiment spec; the message names the file, the key and the fix."""


@dataclass(frozen=True)
class Protocol:
    metric: str
    label: str
    scale: float = 1.0
    last_k: int = 10
    absolute_episodes: int = 0
    compare: Tuple[Tuple[str, str], ...] = ()
    margin: Any = 0.0   # a float, or a dict scenario -> float

    def margin_for(self, scenario: str) -> float:
        if isinstance(self.margin, dict):
            return float(self.margin.get(scenario, 0.0))
        return float(self.margin)
    aggregate: bool = False
    higher_is_better: bool = True
    energy: bool = False


@dataclass(frozen=True)
class Point:
    """One run of the grid: everything that makes it what it is."""

    experiment: str
    scenario: str
    agent: str
    variant: str
    seed: int
    config: str
    env_config: str
    overrides: Tuple[str, ...]
    t_max: int

    @property
    def method(self) -> str:
        """The compared method: the agent, or ``agent/variant`` when the spec has variants."""
        return self.agent if self.variant == "default" else f"{self.agent}/{self.variant}"

    @property
    def id(self) -> str:
        """A file-safe identity, unique in the experiment: ``<scenario>__<method>__s<seed>``."""
        return f"{self.scenario}__{self.method.replace('/', '-')}__s{self.seed}"

    def with_args(self) -> List[str]:
        """The `with` arguments of main.py that define the run (bookkeeping added by the launcher)."""
        return list(self.overrides) + [f"seed={self.seed}", f"t_max={self.t_max}"]

    def command(self) -> List[str]:
        """``main.py`` arguments for a straight run of this point."""
        return [f"--config={self.config}", f"--env-config={self.env_config}", "with"] + self.with_args()


@dataclass
class Spec:
    name: str
    title: str
    description: str
    path: str
    points: List[Point]
    scenarios: List[str]
    methods: List[str]
    seeds: List[int]
    protocol: Protocol
    resources: Dict[str, float]
    checkpoint_interval: int
    retries: int
    paper: Dict[str, Any] = field(default_factory=dict)
    migrated_from: List[str] = field(default_factory=list)
    raw: Dict[str, Any] = field(default_factory=dict)

    def point(self, point_id: str) -> Point:
        for p in self.points:
            if p.id == point_id:
                return p
        raise SpecError(f"{self.path}: no point {point_id!r}; points are e.g. {self.points[0].id}")


def _fmt_value(v: Any) -> str:
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, (list, dict)):
        return yaml.safe_dump(v, default_flow_style=True, width=10**6).strip()
    return str(v)


def _flatten(prefix: str, value: Any) -> List[Tuple[str, Any]]:
    """``{'env_args': {'map_name': '3m'}}`` -> ``[('env_args.map_name', '3m')]`` (lists stay whole)."""
    if isinstance(value, dict) and (value or not prefix):
        out: List[Tuple[str, Any]] = []
        for k, v in value.items():
            out += _flatten(f"{prefix}.{k}" if prefix else str(k), v)
        return out
    return [(prefix, value)]


def overrides_of(with_map: Mapping[str, Any], where: str) -> List[str]:
    """A spec's ``with`` mapping as main.py `with` arguments, refusing keys the launcher owns."""
    if not isinstance(with_map, Mapping):
        raise SpecError(f"{where}: 'with' must be a mapping of config keys to values, got {with_map!r}")
    out = []
    for key, value in _flatten("", dict(with_map)):
        if key.split(".")[0] in RESERVED:
            raise SpecError(f"{where}: '{key}' is set by the launcher (seeds from 'seeds', budgets from "
                            f"'scenarios: <name>: t_max'); remove it from 'with'")
        out.append(f"{key}={_fmt_value(value)}")
    return out


def _check_keys(where: str, data: Any, allowed: set) -> Dict[str, Any]:
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise SpecError(f"{where}: expected a mapping with keys {sorted(allowed)}, got {data!r}")
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise SpecError(f"{where}: unknown key(s) {unknown}; allowed: {sorted(allowed)} "
                        f"(documented in src/experiments/spec.py)")
    return data


def _named_entries(where: str, data: Any, allowed: set) -> Dict[str, Dict[str, Any]]:
    """A list of names or a mapping name -> settings, as an ordered dict name -> settings."""
    if isinstance(data, list):
        data = {str(n): {} for n in data}
    if not isinstance(data, dict) or not data:
        raise SpecError(f"{where}: give a non-empty list of names or a mapping name -> settings")
    out = {}
    for name, settings in data.items():
        name = str(name)
        if not SAFE_NAME.match(name):
            raise SpecError(f"{where}: name {name!r} must be letters, digits and _.+- (it names files)")
        out[name] = _check_keys(f"{where}.{name}", settings, allowed)
    return out


def _margin(path: str, value: Any, scenarios: List[str]) -> Any:
    if isinstance(value, dict):
        unknown = sorted(set(map(str, value)) - set(scenarios))
        if unknown:
            raise SpecError(f"{path}: protocol.margin names unknown scenario(s) {unknown}")
        return {str(k): float(v) for k, v in value.items()}
    if not isinstance(value, (int, float)) or value < 0:
        raise SpecError(f"{path}: protocol.margin must be a number >= 0 or a mapping scenario -> number")
    return float(value)


def spec_path(name_or_path: str) -> str:
    """``table2`` -> ``config/experiments/table2.yaml``; a path is returned as is."""
    if os.path.sep in name_or_path or name_or_path.endswith((".yaml", ".yml")):
        return name_or_path
    return os.path.join(EXPERIMENTS_DIR, f"{name_or_path}.yaml")


def available_specs() -> List[str]:
    return sorted(f[:-5] for f in os.listdir(EXPERIMENTS_DIR) if f.endswith(".yaml"))


def load_spec(name_or_path: str, validate_points: bool = True) -> Spec:
    """Read, check and expand a spec into its points; any problem is one SpecError naming the fix."""
    path = spec_path(name_or_path)
    if not os.path.isfile(path):
        raise SpecError(f"no experiment spec {path}; available: {', '.join(available_specs())}")
    with open(path) as f:
        try:
            raw = yaml.safe_load(f)
        except yaml.YAMLError as exc:
            raise SpecError(f"{path}: YAML syntax error: {str(exc).splitlines()[0]}") from None
    raw = _check_keys(path, raw, TOP_KEYS)
    for key in ("name", "base", "agents", "scenarios", "seeds", "protocol"):
        if key not in raw:
            raise SpecError(f"{path}: missing required key '{key}' (see src/experiments/spec.py)")
    name = str(raw["name"])
    if name != os.path.splitext(os.path.basename(path))[0]:
        raise SpecError(f"{path}: name '{name}' must equal the file name")
    base = _check_keys(f"{path}: base", raw["base"], BASE_KEYS)
    if "config" not in base or "env_config" not in base:
        raise SpecError(f"{path}: base needs 'config' and 'env_config' (like --config / --env-config)")
    agents = _named_entries(f"{path}: agents", raw["agents"], AGENT_KEYS)
    agent_key = str(raw.get("agent_key", "agent"))
    scenarios = _named_entries(f"{path}: scenarios", raw["scenarios"], SCENARIO_KEYS)
    scenario_key = str(raw.get("scenario_key", "env_args.map_name"))
    variants = _named_entries(f"{path}: variants", raw.get("variants") or {"default": {}}, VARIANT_KEYS)
    seeds = raw["seeds"]
    if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) and s >= 0 for s in seeds):
        raise SpecError(f"{path}: seeds must be a non-empty list of integers >= 0, e.g. [1, 2, 3]")
    if len(set(seeds)) != len(seeds):
        raise SpecError(f"{path}: seeds {seeds} repeat a seed")
    proto = _check_keys(f"{path}: protocol", raw["protocol"], PROTOCOL_KEYS)
    if "metric" not in proto:
        raise SpecError(f"{path}: protocol needs 'metric' (a logged test metric, e.g. test_battle_won_mean)")
    compare = tuple(tuple(map(str, c)) for c in proto.get("compare", []))
    resources = {"cpus": 1, "gpus": 0, "memory_gb": 4}
    resources.update(_check_keys(f"{path}: resources", raw.get("resources"), RESOURCE_KEYS))

    points: List[Point] = []
    for vname, vset in variants.items():
        v_agents = vset.get("agents")
        if v_agents is not None:
            unknown = sorted(set(map(str, v_agents)) - set(agents))
            if unknown:
                raise SpecError(f"{path}: variants.{vname}.agents names unknown agent(s) {unknown}; "
                                f"agents are {list(agents)}")
        for sname, sset in scenarios.items():
            if not isinstance(sset.get("t_max"), int) or sset["t_max"] < 1:
                raise SpecError(f"{path}: scenarios.{sname} needs t_max (the budget, env steps, integer >= 1)")
            for aname, aset in agents.items():
                if v_agents is not None and aname not in map(str, v_agents):
                    continue
                config = str(vset.get("config") or aset.get("config") or sset.get("config") or base["config"])
                overrides = (overrides_of(base.get("with") or {}, f"{path}: base.with")
                             + [f"{scenario_key}={sname}"]
                             + overrides_of(sset.get("with") or {}, f"{path}: scenarios.{sname}.with")
                             + ([] if aset else [f"{agent_key}={aname}"])
                             + overrides_of(aset.get("with") or {}, f"{path}: agents.{aname}.with")
                             + overrides_of(vset.get("with") or {}, f"{path}: variants.{vname}.with"))
                for seed in seeds:
                    points.append(Point(name, sname, aname, vname, int(seed), config, str(base["env_config"]),
                                        tuple(overrides), int(sset["t_max"])))
    methods = list(dict.fromkeys(p.method for p in points))
    for a, b in compare:
        for m in (a, b):
            if m not in methods:
                raise SpecError(f"{path}: protocol.compare names {m!r}, which is not a method of this spec "
                                f"({', '.join(methods)})")
    protocol = Protocol(metric=str(proto["metric"]), label=str(proto.get("label", proto["metric"])),
                        scale=float(proto.get("scale", 1.0)), last_k=int(proto.get("last_k", 10)),
                        absolute_episodes=int(proto.get("absolute_episodes", 0)), compare=compare,
                        margin=_margin(path, proto.get("margin", 0.0), list(scenarios)), aggregate=bool(proto.get("aggregate", False)),
                        higher_is_better=bool(proto.get("higher_is_better", True)),
                        energy=bool(proto.get("energy", False)))
    if protocol.last_k < 1:
        raise SpecError(f"{path}: protocol.last_k must be >= 1")
    spec = Spec(name=name, title=str(raw.get("title", name)), description=str(raw.get("description", "")).strip(),
                path=path, points=points, scenarios=list(scenarios), methods=methods, seeds=list(seeds),
                protocol=protocol, resources=resources,
                checkpoint_interval=int(raw.get("checkpoint_interval", 100000)), retries=int(raw.get("retries", 2)),
                paper=dict(raw.get("paper") or {}), migrated_from=list(raw.get("migrated_from") or []), raw=raw)
    if validate_points:
        validate(spec)
    return spec


def validate(spec: Spec) -> None:
    """Build every distinct point config with the project's config code: an unknown key, a bad value or
    an unknown agent/map fails here, naming the point, before anything starts."""
    from utils.registry import RegistryError

    seen = set()
    for p in spec.points:
        key = (p.config, p.env_config, p.overrides)
        if key in seen:
            continue
        seen.add(key)
        try:
            config = build_config(p.config, p.env_config, p.with_args())
            _check_registry(config)
        except (ConfigError, RegistryError, FileNotFoundError) as exc:
            raise SpecError(f"{spec.path}: point {p.id}: {exc}") from None


def _check_registry(config: Dict[str, Any]) -> None:
    """Unknown agent / run / learner / env names, checked against the registries without building anything."""
    from run import REGISTRY as RUNS
    from utils.registry import lookup

    lookup(RUNS, config["run"], "run")
    if config["run"] == "marl":
        from modules.agents import REGISTRY as AGENTS
        lookup(AGENTS, config["agent"], "agent")
        if config["env"] == "smax":
            from envs.smax import valid_map_names
            lookup({m: m for m in valid_map_names()}, config["env_args"]["map_name"], "map")
    elif config["run"] == "po_rl":
        from modules.sequence_cores import CORES
        lookup(CORES, config["agent"], "agent")
