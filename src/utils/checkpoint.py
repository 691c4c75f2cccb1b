"""Checkpoints: safe to load, complete or ignored, never from a diverged run.

Layout: ``<model_dir>/<t_env>/`` holds one ``<part>.pt`` per part, ``config.json`` (the run's
config) and ``manifest.json`` (format, t_env, every part's file and size, the config's hash).

- **Safe format.** Parts hold tensors and plain data only (dicts, lists, numbers, strings) and
  are read with ``torch.load(weights_only=True)``: loading never runs code. A file that cannot be
  read raises ``CheckpointError`` naming the file and the cause (one line).
- **Atomic steps.** A step is written into a hidden temporary folder, the manifest last, and the
  folder is then renamed into place, so a step folder with a number as its name is complete
  unless its files were damaged later; ``find_checkpoint`` checks every part against the manifest
  and skips (and reports) incomplete folders.
- **No diverged checkpoints.** ``save_checkpoint`` refuses (``DivergedError``) when a checked part
  holds NaN or inf, so a diverged run never becomes the newest checkpoint.
- **Graceful stop.** ``StopRequest`` turns the first Ctrl-C / SIGTERM into a flag the run loops
  poll at a point where their state is consistent; they save a last checkpoint there and stop.
"""
from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import signal
import tempfile
import time
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import torch

FORMAT = 1
MANIFEST = "manifest.json"
CONFIG_FILE = "config.json"


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; the message names the file and the cause."""


class DivergedError(CheckpointError):
    """Refused to save: the run's weights (or another checked part) are not finite."""


# ---------------------------------------------------------------------------- run folders
def model_dir_for(args: Any) -> str:
    """Where a run saves its checkpoints: ``<local_results_path>/models/<unique_token>``."""
    return os.path.join(args.local_results_path, "models", args.unique_token)


def unique_suffix(run_id: Any) -> str:
    """``<run_id>_<6 random hex digits>``: appended to a run's token so that two runs started in
    the same second (even identical ones) never share a model folder."""
    return f"{run_id}_{secrets.token_hex(3)}"


def plain_config(args: Any) -> Dict[str, Any]:
    """The JSON-serialisable entries of a run's config (``args`` namespace or dict)."""
    items = vars(args).items() if not isinstance(args, Mapping) else args.items()
    out: Dict[str, Any] = {}
    for key, value in items:
        try:
            json.dumps(value)
        except (TypeError, ValueError):
            continue
        out[key] = value
    return out


def config_hash(config: Mapping[str, Any]) -> str:
    """sha256 (first 16 hex digits) of the config as sorted JSON."""
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:16]


# ---------------------------------------------------------------------------- saving
def _state_of(part: Any) -> Any:
    return part.state_dict() if hasattr(part, "state_dict") else part


def first_non_finite(obj: Any, where: str = "") -> Optional[str]:
    """The path of the first floating tensor in ``obj`` (nested dicts/lists) with NaN or inf."""
    if isinstance(obj, torch.Tensor):
        if obj.is_floating_point() and not bool(torch.isfinite(obj).all()):
            return where or "tensor"
        return None
    if isinstance(obj, Mapping):
        items: Iterable = obj.items()
    elif isinstance(obj, (list, tuple)):
        items = enumerate(obj)
    else:
        return None
    for key, value in items:
        found = first_non_finite(value, f"{where}.{key}" if where else str(key))
        if found:
            return found
    return None


def _write(path: str, write: Callable[[Any], None], mode: str = "wb") -> int:
    with open(path, mode) as f:
        write(f)
        f.flush()
        os.fsync(f.fileno())
    return os.path.getsize(path)


def save_checkpoint(model_dir: str, t_env: int, parts: Dict[str, Any],
                    config: Optional[Mapping[str, Any]] = None,
                    check_finite: Optional[Sequence[str]] = None) -> str:
    """Save every part (``part.state_dict()``, or the part itself when it is plain data) as
    ``<model_dir>/<t_env>/<name>.pt`` plus ``config.json`` and ``manifest.json``, atomically.

    ``check_finite``: the parts that must hold only finite floats (default: all); when one does
    not, nothing is written and ``DivergedError`` is raised. A step folder of the same ``t_env``
    is replaced. Returns the step folder.
    """
    t_env = int(t_env)
    states = {name: _state_of(part) for name, part in parts.items()}
    for name in (states if check_finite is None else check_finite):
        bad = first_non_finite(states[name])
        if bad:
            raise DivergedError(f"not saving a checkpoint at t_env={t_env}: '{name}' holds NaN/inf ({bad}); the "
                                f"run diverged. The newest complete checkpoint in {model_dir} is kept as it was.")
    os.makedirs(model_dir, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".tmp-{t_env}-", dir=model_dir)
    try:
        manifest: Dict[str, Any] = {"format": FORMAT, "t_env": t_env, "saved_at": time.time(), "parts": {}}
        for name, state in states.items():
            size = _write(os.path.join(tmp, f"{name}.pt"), lambda f, s=state: torch.save(s, f))
            manifest["parts"][name] = {"file": f"{name}.pt", "bytes": size}
        if config is not None:
            cfg = plain_config(config)
            _write(os.path.join(tmp, CONFIG_FILE), lambda f: json.dump(cfg, f, indent=1, sort_keys=True), "w")
            manifest["config_hash"] = config_hash(cfg)
        _write(os.path.join(tmp, MANIFEST), lambda f: json.dump(manifest, f, indent=1), "w")
        final = os.path.join(model_dir, str(t_env))
        if os.path.exists(final):  # e.g. the end-of-run save at the step of a periodic one
            old = os.path.join(model_dir, f".old-{t_env}-{secrets.token_hex(3)}")
            os.rename(final, old)
            os.rename(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


# ---------------------------------------------------------------------------- finding
def read_manifest(step_dir: str) -> Dict[str, Any]:
    """The manifest of a step folder; ``CheckpointError`` when it is missing or unreadable."""
    path = os.path.join(step_dir, MANIFEST)
    if not os.path.exists(path):
        raise CheckpointError(f"{step_dir} has no {MANIFEST}: an interrupted save, or a checkpoint "
                              f"written by an older version (retrain or use an older checkout).")
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"cannot read {path}: {exc}") from None


def incomplete_reason(step_dir: str) -> Optional[str]:
    """None when ``step_dir`` holds every part its manifest lists, at the listed size; else why not."""
    try:
        manifest = read_manifest(step_dir)
    except CheckpointError as exc:
        return str(exc)
    if manifest.get("format") != FORMAT:
        return f"{step_dir}: unknown checkpoint format {manifest.get('format')!r} (this version reads {FORMAT})"
    for name, entry in manifest.get("parts", {}).items():
        path = os.path.join(step_dir, entry["file"])
        if not os.path.exists(path):
            return f"{step_dir}: part '{name}' ({entry['file']}) is missing"
        if os.path.getsize(path) != entry["bytes"]:
            return (f"{step_dir}: {entry['file']} has {os.path.getsize(path)} bytes, the manifest says "
                    f"{entry['bytes']} (truncated or overwritten)")
    return None


def _is_step_dir(path: str) -> bool:
    base = os.path.basename(os.path.normpath(path))
    return base.isdigit() and (os.path.exists(os.path.join(path, MANIFEST))
                               or any(f.endswith(".pt") for f in os.listdir(path)))


def find_checkpoint(checkpoint_path: str, load_step: int = 0,
                    warn: Optional[Callable[[str], None]] = None) -> Tuple[str, int]:
    """Pick the complete step folder to load under ``checkpoint_path``.

    ``checkpoint_path`` is either a run's model dir (holding numeric step folders) or one step
    folder itself. With ``load_step == 0`` the newest complete step is taken, else the complete
    step closest to it. Incomplete folders are skipped and reported through ``warn``.
    Returns ``(step_dir, t_env)``.
    """
    if not os.path.isdir(checkpoint_path):
        raise FileNotFoundError(
            f"checkpoint_path '{checkpoint_path}' is not a directory. Point it at a run's model dir "
            f"(results/models/<token>) or one of its step folders.")
    if _is_step_dir(checkpoint_path):
        reason = incomplete_reason(checkpoint_path)
        if reason:
            raise CheckpointError(f"cannot use checkpoint {reason}. Point checkpoint_path at the run's model "
                                  f"dir to take its newest complete step.")
        return checkpoint_path, int(os.path.basename(os.path.normpath(checkpoint_path)))
    steps = [int(d) for d in os.listdir(checkpoint_path)
             if d.isdigit() and os.path.isdir(os.path.join(checkpoint_path, d))]
    if not steps:
        raise FileNotFoundError(
            f"no checkpoint step folders (numeric names) under '{checkpoint_path}'. "
            f"Did the run save models (save_model=True)?")
    order = sorted(steps, reverse=True) if not load_step else sorted(steps, key=lambda s: (abs(s - load_step), -s))
    for step in order:
        step_dir = os.path.join(checkpoint_path, str(step))
        reason = incomplete_reason(step_dir)
        if reason is None:
            return step_dir, step
        if warn is not None:
            warn(f"skipping incomplete checkpoint: {reason}")
    raise CheckpointError(f"no complete checkpoint under '{checkpoint_path}' (all {len(steps)} step folders "
                          f"are incomplete; see the lines above).")


def drop_part(step_dir: str, name: str) -> int:
    """Remove part ``name`` (e.g. a finished run's replay ``buffer``) from a complete step folder.

    The manifest is rewritten without the part first (atomically), then the file is deleted, so
    the folder stays complete at every moment. Returns the bytes freed (0 when there was no part).
    """
    manifest = read_manifest(step_dir)
    entry = manifest.get("parts", {}).pop(name, None)
    if entry is None:
        return 0
    tmp = os.path.join(step_dir, f".{MANIFEST}.{secrets.token_hex(3)}")
    _write(tmp, lambda f: json.dump(manifest, f, indent=1), "w")
    os.replace(tmp, os.path.join(step_dir, MANIFEST))
    path = os.path.join(step_dir, entry["file"])
    freed = os.path.getsize(path) if os.path.exists(path) else 0
    if freed:
        os.remove(path)
    return freed


# ---------------------------------------------------------------------------- loading
def _maps_to_cpu(map_location: Any) -> bool:
    try:
        return map_location is not None and torch.device(map_location).type == "cpu"
    except (RuntimeError, TypeError):  # a dict or callable map_location
        return False


def load_part(path: str, map_location: Any = "cpu") -> Any:
    """``torch.load(path, weights_only=True)``; any failure -> ``CheckpointError`` naming the file.

    Loading to the CPU memory-maps the file (copy-on-write, never written back): a part copied
    into memory that is already allocated (the replay buffer, ``EpisodeBuffer.load_state_dict``)
    then adds only reclaimable page cache, not a second anonymous copy, so resuming an MMM2 run
    (~6 GiB of replay) peaks at about one replay's memory instead of two."""
    try:
        return torch.load(path, map_location=map_location, weights_only=True, mmap=_maps_to_cpu(map_location))
    except Exception as exc:  # noqa: BLE001 - every cause becomes one line naming the file
        cause = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"cannot load checkpoint file {path}: {type(exc).__name__}: {cause[:300]}") from None


def has_part(step_dir: str, name: str) -> bool:
    """Whether the step folder holds part ``name``."""
    return os.path.exists(os.path.join(step_dir, f"{name}.pt"))


def load_checkpoint(step_dir: str, parts: Dict[str, Any], map_location: Any = "cpu",
                    required: Tuple[str, ...] = ()) -> None:
    """Load each ``<step_dir>/<name>.pt`` into ``parts[name]`` (via ``load_state_dict``).

    Parts named in ``required`` must exist; other missing parts are skipped (e.g. optimiser
    state when only a deployable model was saved). A state that does not fit its part (other
    network sizes, agent or map) raises ``CheckpointError`` naming the file.
    """
    for name, part in parts.items():
        path = os.path.join(step_dir, f"{name}.pt")
        if not os.path.exists(path):
            if name in required:
                raise CheckpointError(f"checkpoint part '{name}.pt' missing in '{step_dir}'.")
            continue
        state = load_part(path, map_location)
        try:
            part.load_state_dict(state)
        except (RuntimeError, KeyError, ValueError, TypeError, IndexError) as exc:
            cause = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise CheckpointError(f"checkpoint file {path} does not fit this run's '{name}': {cause[:300]}. "
                                  f"Resume/evaluate with the config it was trained with (agent, mixer, map, "
                                  f"network sizes).") from None


def saved_config(step_dir: str) -> Optional[Dict[str, Any]]:
    """The ``config.json`` saved beside a step's parts (None when there is none)."""
    path = os.path.join(step_dir, CONFIG_FILE)
    if not os.path.exists(path):
        return None
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"cannot read {path}: {exc}") from None


# ---------------------------------------------------------------------------- config on resume
# Keys that decide which networks (and environment) a checkpoint belongs to: resume and evaluate
# take them from the checkpoint; a command-line value that differs is an error.
ARCHITECTURE_KEYS = (
    "config_name", "run", "env", "env_args.map_name", "env_args.key",
    "agent", "mac", "learner", "mixer", "rnn_hidden_dim", "obs_agent_id", "obs_last_action",
    "mixing_embed_dim", "hypernet_layers", "hypernet_embed", "snn_hidden_dim", "snn_reset",
    "snn_surrogate", "tap", "snn_T",
    "po_learner", "po_obs_embed", "po_action_embed", "po_reward_embed", "po_hidden_dim", "po_head_layers",
    "actor_type", "proxy_target", "actor_neuron", "popsan_T", "popsan_enc_pop", "popsan_dec_pop",
    "popsan_hidden", "mujoco_actor_hidden", "mujoco_critic_hidden", "proxy_hidden",
)
# Keys about this invocation, never taken from the checkpoint.
RUN_CONTROL_KEYS = (
    "checkpoint_path", "load_step", "evaluate", "energy", "local_results_path", "device", "torch_threads",
    "mongo_url", "mongo_db", "mongo_optional", "use_tensorboard", "name", "save_model", "save_model_interval",
    "save_buffer",
)


def _get(config: Mapping[str, Any], dotted: str) -> Tuple[bool, Any]:
    node: Any = config
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return False, None
        node = node[part]
    return True, node


def resume_config(config: Dict[str, Any], overrides: Sequence[str],
                  saved: Mapping[str, Any]) -> Tuple[Dict[str, Any], List[str]]:
    """The config of a resumed or evaluated run: the checkpoint's ``saved`` config, with this
    command's ``with key=value`` ``overrides`` on top (run-control keys always from ``config``).

    Architecture keys (``ARCHITECTURE_KEYS``) come from the checkpoint; overriding one with a
    different value, or a different ``--config`` / ``--env-config``, raises ``CheckpointError``
    naming both values. Returns ``(config, notes)``: notes list the other keys this command
    changes relative to the checkpoint.
    """
    explicit = {o.split("=", 1)[0].strip() for o in overrides if "=" in o}
    for key in ARCHITECTURE_KEYS:
        found_s, v_saved = _get(saved, key)
        found_c, v_now = _get(config, key)
        if not (found_s and found_c) or v_saved == v_now:
            continue
        top = key.split(".")[0]
        if key in explicit or top in explicit or key in ("config_name", "env"):
            how = (f"--config={v_now}" if key == "config_name" else f"--env-config={v_now}" if key == "env"
                   else f"{key}={v_now}")
            raise CheckpointError(f"{how} conflicts with the checkpoint, which was trained with {key}="
                                  f"{v_saved}. Drop it (resume and evaluate take it from the checkpoint) or "
                                  f"train a new run.")
    out = dict(config)
    notes: List[str] = []
    for key, v_saved in saved.items():
        if key not in config or key in RUN_CONTROL_KEYS:
            continue
        if isinstance(v_saved, Mapping) and isinstance(config[key], Mapping):
            merged = dict(config[key])
            for sub, value in v_saved.items():
                dotted = f"{key}.{sub}"
                if dotted in explicit or key in explicit:
                    if merged.get(sub) != value:
                        notes.append(f"{dotted}={merged.get(sub)} (checkpoint: {value})")
                else:
                    merged[sub] = value
            out[key] = merged
        elif key in explicit:
            if config[key] != v_saved:
                notes.append(f"{key}={config[key]} (checkpoint: {v_saved})")
        else:
            out[key] = v_saved
    return out, notes


def config_for_checkpoint(config: Dict[str, Any], overrides: Sequence[str],
                          warn: Callable[[str], None]) -> Dict[str, Any]:
    """``resume_config`` for a command with ``checkpoint_path`` set (unchanged config otherwise):
    reads the ``config.json`` of the step it will load and reports the changed keys via ``warn``."""
    path = config.get("checkpoint_path")
    if not path:
        return config
    step_dir, _ = find_checkpoint(str(path), int(config.get("load_step") or 0))
    saved = saved_config(step_dir)
    if saved is None:
        raise CheckpointError(f"{step_dir} has no {CONFIG_FILE}; it was saved by an older version.")
    out, notes = resume_config(config, overrides, saved)
    if notes:
        warn("this command changes the checkpoint's config: " + ", ".join(notes))
    return out


# ---------------------------------------------------------------------------- stopping
class StopRequest:
    """Context manager: the first SIGINT (Ctrl-C) or SIGTERM only sets ``requested``; the run
    loop polls it where its state is consistent, saves a last checkpoint and stops. A second
    signal raises ``KeyboardInterrupt`` at once (no save; the newest complete checkpoint stays).
    Outside the main thread signals cannot be caught; then nothing changes.
    """

    def __init__(self, log: Optional[Callable[[str], None]] = None) -> None:
        self.requested = False
        self.log = log
        self._previous: Dict[int, Any] = {}

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt(f"stopped by signal {signum} (second request: no checkpoint saved)")
        self.requested = True
        if self.log is not None:
            self.log(f"signal {signum}: stopping at the next safe point and saving a last checkpoint "
                     f"(send it again to stop at once, without saving)")

    def __enter__(self) -> "StopRequest":
        try:
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        except ValueError:  # not the main thread
            self._previous.clear()
        return self

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()


# ---------------------------------------------------------------------------- one run's saves
class Checkpointer:
    """The checkpoints of one training run (``save_model``, ``save_model_interval``, ``save_buffer``).

    ``save(t_env, models, state, buffers, last)``: ``models`` are the network/optimiser parts
    (checked for NaN/inf), ``state`` the run's counters and RNG states, ``buffers`` the replay;
    buffers are written with the ``last`` checkpoint (stop or end) and, with ``save_buffer=True``,
    with the periodic ones too. A refused (diverged) save is logged and returns None.
    """

    def __init__(self, args: Any, console: Any) -> None:
        self.model_dir = model_dir_for(args)
        self.enabled = bool(args.save_model)
        self.interval = int(args.save_model_interval)
        self.save_buffer = bool(getattr(args, "save_buffer", False))
        self.config = plain_config(args)
        self.console = console

    def due(self, t_env: int, last_save_t: int) -> bool:
        """Whether a periodic checkpoint is due at ``t_env``."""
        return self.enabled and t_env - last_save_t >= self.interval

    def save(self, t_env: int, models: Dict[str, Any], state: Dict[str, Any], buffers: Dict[str, Any],
             last: bool) -> Optional[str]:
        if not self.enabled:
            return None
        with_buffers = bool(buffers) and (last or self.save_buffer)
        parts = {**models, **state, **(buffers if with_buffers else {})}
        try:
            path = save_checkpoint(self.model_dir, t_env, parts, self.config, check_finite=list(models))
        except DivergedError as exc:
            self.console.warning(str(exc))
            return None
        self.console.info(f"saved checkpoint {path}" + (" (with the replay buffer)" if with_buffers else ""))
        return path

    def diverged(self, exc: BaseException) -> None:
        """Say that a run stopped by a non-finite loss saves no checkpoint."""
        self.console.error(f"the run diverged ({exc}); no checkpoint is saved for it: the newest complete "
                           f"checkpoint in {self.model_dir} (if any) is from before the divergence.")


    def guard(self, save: Callable[[bool], None], warn: Callable[[str], None]) -> "TrainingGuard":
        """The frame of a training loop that saves through ``save(last)``; see ``TrainingGuard``."""
        return TrainingGuard(self, save, warn)


class TrainingGuard:
    """Context manager around a training loop: how a run ends, in one place for every loop.

    - Ctrl-C / SIGTERM (``StopRequest``): the loop calls ``poll(t_env)`` where its state is
      consistent; after a signal that saves a last checkpoint and raises ``KeyboardInterrupt``.
    - ``FloatingPointError`` (a non-finite loss): reported via ``Checkpointer.diverged``, nothing
      saved, re-raised.
    - Normal exit (``t_max`` reached or a ``break``): the last checkpoint is saved after the
      signal handlers are restored. Any other exception propagates without a save.
    """

    def __init__(self, ckpt: Checkpointer, save: Callable[[bool], None], warn: Callable[[str], None]) -> None:
        self.ckpt, self.save = ckpt, save
        self.stop = StopRequest(warn)

    def __enter__(self) -> "TrainingGuard":
        self.stop.__enter__()
        return self

    def poll(self, t_env: int) -> None:
        """After a stop request: save the last checkpoint and raise ``KeyboardInterrupt``."""
        if self.stop.requested:
            self.save(True)
            raise KeyboardInterrupt(f"stopped at t_env {t_env} (last checkpoint saved)")

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> bool:
        self.stop.__exit__(exc_type, exc, tb)
        if exc_type is None:
            self.save(True)
        elif issubclass(exc_type, FloatingPointError):
            self.ckpt.diverged(exc)
        return False


def restore_plain(step_dir: str, name: str, map_location: Any = "cpu") -> Optional[Any]:
    """The plain-data part ``name`` of a step folder (None when it was not saved)."""
    return load_part(os.path.join(step_dir, f"{name}.pt"), map_location) if has_part(step_dir, name) else None


def loop_part(loop: Mapping[str, Any], logger: Any) -> Dict[str, Any]:
    """A training loop's ``loop`` part: its counters plus the logger's state (``logger.state_dict()``)."""
    return {**loop, "logger": logger.state_dict()}


def restore_loop(step_dir: str, logger: Any) -> Dict[str, Any]:
    """The counters saved by ``loop_part``; the logger's state goes back into ``logger``."""
    saved = restore_plain(step_dir, "loop")
    if saved is None:
        raise CheckpointError(f"{step_dir} holds no 'loop.pt': it is a deployable model, not a training "
                              f"checkpoint, so training cannot resume from it.")
    logger.load_state_dict(saved.pop("logger", {}))
    return saved


def restore_buffer(step_dir: str, name: str, buffer: Any, map_location: Any = "cpu") -> bool:
    """Load part ``name`` into ``buffer`` (``load_state_dict``); False when the step has none
    (saved with ``save_buffer=False`` before the run's end)."""
    if not has_part(step_dir, name):
        return False
    buffer.load_state_dict(restore_plain(step_dir, name, map_location))
    return True
