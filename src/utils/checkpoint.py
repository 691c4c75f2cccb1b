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
- **Only what the manifest lists.** A manifest of the wrong shape, with no parts, or naming a file
  outside its folder makes the step incomplete (skipped with a warning); a ``.pt`` file the
  manifest does not list is never loaded. ``config.json`` is checked against the manifest's hash
  (``saved_config``): an edited network key is an error, any other edit a warning.
- **Failed saves.** A save that cannot be written (full disk, file-size limit, read-only folder)
  is one ``CheckpointWriteError`` line naming the cause and the fix; nothing of it stays and the
  newest complete step is unchanged. Leftover ``.tmp-*`` folders of killed saves are removed at
  the next start or save. Step folders get the normal permissions of the user's umask.
- **Resume chain.** A resumed run saves into its own folder and links it both ways with the
  folder it resumed from (``chain.json``); ``find_checkpoint`` on any folder of the chain finds
  the newest complete step of that folder and every folder continuing it, and a folder whose run
  was killed before its first save falls back to the step it resumed from.
"""
from __future__ import annotations

import errno
import hashlib
import json
import os
import secrets
import shutil
import signal
import socket
import time
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import torch

FORMAT = 1
MANIFEST = "manifest.json"
CONFIG_FILE = "config.json"
CHAIN_FILE = "chain.json"
TMP_PREFIX = ".tmp-"
OLD_PREFIX = ".old-"


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; the message names the file and the cause."""


class DivergedError(CheckpointError):
    """Refused to save: the run's weights (or another checked part) are not finite."""


class CheckpointWriteError(CheckpointError):
    """A save that could not be written (full disk, file-size limit, no permission); nothing of
    it was kept and the newest complete checkpoint is unchanged."""


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


def compact(obj: Any) -> Any:
    """``obj`` (nested dicts/lists/tuples) with every tensor that views a larger storage replaced
    by a copy of just its elements. ``torch.save`` writes a tensor's whole storage, so the filled
    part of a pre-allocated replay (``storage[:size]``) would otherwise be saved at full size."""
    if isinstance(obj, torch.Tensor):
        if obj.untyped_storage().nbytes() > obj.numel() * obj.element_size():
            return obj.clone()
        return obj
    if isinstance(obj, Mapping):
        return {k: compact(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [compact(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(compact(v) for v in obj)
    return obj


def _host() -> str:
    return "".join(c if c.isalnum() else "_" for c in socket.gethostname())[:40] or "host"


def _scratch_name(prefix: str, t_env: int) -> str:
    """``.tmp-<t>-<pid>@<host>-<hex>``: who is writing it, so a later start can tell a killed
    save's leftovers from a save in progress."""
    return f"{prefix}{t_env}-{os.getpid()}@{_host()}-{secrets.token_hex(3)}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_stale_saves(model_dir: str, log: Optional[Callable[[str], None]] = None) -> List[str]:
    """Remove the ``.tmp-*`` / ``.old-*`` folders of saves whose process is gone (killed during a
    save: each can hold a whole replay). Folders of a live process on this host, or of another
    host and younger than a day, are kept. Returns the removed paths; ``log`` gets one line."""
    if not os.path.isdir(model_dir):
        return []
    removed = []
    me = os.getpid()
    for entry in os.listdir(model_dir):
        if not entry.startswith((TMP_PREFIX, OLD_PREFIX)):
            continue
        path = os.path.join(model_dir, entry)
        owner = entry.split("-", 2)[-1].rsplit("-", 1)[0] if entry.count("-") >= 3 else ""
        pid_text, _, host = owner.partition("@")
        if pid_text.isdigit() and host:
            pid = int(pid_text)
            if host != _host():
                try:
                    if time.time() - os.path.getmtime(path) < 86400:
                        continue
                except OSError:
                    continue
            elif pid != me and _pid_alive(pid):
                continue
        shutil.rmtree(path, ignore_errors=True)
        if not os.path.exists(path):
            removed.append(path)
    if removed and log is not None:
        log(f"removed {len(removed)} unfinished save folder(s) of killed runs in {model_dir}: "
            + ", ".join(os.path.basename(p) for p in removed))
    return removed


def _os_cause(exc: BaseException) -> Optional[OSError]:
    """The OSError behind ``exc`` (itself, or in its cause/context chain), if any."""
    seen: Optional[BaseException] = exc
    for _ in range(10):
        if seen is None:
            return None
        if isinstance(seen, OSError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _write_error(exc: BaseException, model_dir: str, t_env: int, nbytes: int) -> CheckpointWriteError:
    cause = _os_cause(exc)
    if cause is not None:
        why = f"{cause.strerror or type(cause).__name__}" + (f" (errno {cause.errno})" if cause.errno else "")
        if cause.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
            fix = (f"free space on the disk of {model_dir} or set local_results_path=<a larger disk> "
                   f"(save_buffer=none keeps the replay out of checkpoints)")
        elif cause.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            fix = f"make {model_dir} writable or set local_results_path=<a writable folder>"
        else:
            fix = f"check the disk of {model_dir}"
    else:
        why = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
        fix = f"check the disk of {model_dir}"
    newest = None
    try:
        newest = find_checkpoint(model_dir)[0]
    except (OSError, CheckpointError):
        pass
    kept = (f"the newest complete checkpoint {newest} is unchanged" if newest
            else "no complete checkpoint of this run exists yet")
    if newest:
        try:
            size = sum(int(e["bytes"]) for e in read_manifest(newest)["parts"].values())
            kept += f" (a checkpoint of this run takes about {size / 2 ** 20:.1f} MB"
            kept += f"; this one failed after {nbytes / 2 ** 20:.1f} MB)" if nbytes >= 2 ** 20 / 10 else ")"
        except (CheckpointError, KeyError, TypeError, ValueError, AttributeError):
            pass
    return CheckpointWriteError(f"cannot save the checkpoint at t_env={t_env} in {model_dir}: {why}. Nothing of "
                                f"this save was kept and {kept}. Fix: {fix}; then resume with "
                                f"checkpoint_path={model_dir}.")


def architecture(config: Mapping[str, Any]) -> Dict[str, Any]:
    """The ``ARCHITECTURE_KEYS`` values of a config (dotted keys), those it has."""
    out = {}
    for key in ARCHITECTURE_KEYS:
        found, value = _get(config, key)
        if found:
            out[key] = value
    return out


def save_checkpoint(model_dir: str, t_env: int, parts: Dict[str, Any],
                    config: Optional[Mapping[str, Any]] = None,
                    check_finite: Optional[Sequence[str]] = None) -> str:
    """Save every part (``part.state_dict()``, or the part itself when it is plain data) as
    ``<model_dir>/<t_env>/<name>.pt`` plus ``config.json`` and ``manifest.json``, atomically.

    ``check_finite``: the parts that must hold only finite floats (default: all); when one does
    not, nothing is written and ``DivergedError`` is raised. A step folder of the same ``t_env``
    is replaced. A write that fails (full disk, ...) raises ``CheckpointWriteError`` and leaves
    nothing behind. Tensors are saved at their own size (``compact``). Returns the step folder.
    """
    t_env = int(t_env)
    states = {name: _state_of(part) for name, part in parts.items()}
    for name in (states if check_finite is None else check_finite):
        bad = first_non_finite(states[name])
        if bad:
            raise DivergedError(f"not saving a checkpoint at t_env={t_env}: '{name}' holds NaN/inf ({bad}); the "
                                f"run diverged. The newest complete checkpoint in {model_dir} is kept as it was.")
    written = 0
    tmp = os.path.join(model_dir, _scratch_name(TMP_PREFIX, t_env))
    try:
        os.makedirs(model_dir, exist_ok=True)
        clean_stale_saves(model_dir)
        os.mkdir(tmp)  # mode 0o777 & ~umask, like every other folder the user makes
        manifest: Dict[str, Any] = {"format": FORMAT, "t_env": t_env, "saved_at": time.time(), "parts": {}}
        for name, state in states.items():
            size = _write(os.path.join(tmp, f"{name}.pt"), lambda f, s=compact(state): torch.save(s, f))
            written += size
            manifest["parts"][name] = {"file": f"{name}.pt", "bytes": size}
        if config is not None:
            cfg = plain_config(config)
            _write(os.path.join(tmp, CONFIG_FILE), lambda f: json.dump(cfg, f, indent=1, sort_keys=True), "w")
            manifest["config_hash"] = config_hash(cfg)
            manifest["architecture"] = architecture(cfg)
        _write(os.path.join(tmp, MANIFEST), lambda f: json.dump(manifest, f, indent=1), "w")
        final = os.path.join(model_dir, str(t_env))
        if os.path.exists(final):  # e.g. the end-of-run save at the step of a periodic one
            old = os.path.join(model_dir, _scratch_name(OLD_PREFIX, t_env))
            os.rename(final, old)
            os.rename(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, final)
    except (OSError, RuntimeError) as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, OSError) or _os_cause(exc) is not None or "write" in str(exc).lower():
            raise _write_error(exc, model_dir, t_env, written) from None
        raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


# ---------------------------------------------------------------------------- finding
def read_manifest(step_dir: str) -> Dict[str, Any]:
    """The manifest of a step folder; ``CheckpointError`` when it is missing, unreadable or not
    a JSON object."""
    path = os.path.join(step_dir, MANIFEST)
    if not os.path.exists(path):
        raise CheckpointError(f"{step_dir} has no {MANIFEST}: an interrupted save, or a checkpoint "
                              f"written by an older version (retrain or use an older checkout).")
    try:
        with open(path) as f:
            manifest = json.load(f)
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"cannot read {path}: {exc}") from None
    if not isinstance(manifest, dict):
        raise CheckpointError(f"{path} is not a checkpoint manifest (a JSON {type(manifest).__name__}, not an "
                              f"object): damaged or not written by this project")
    return manifest


def _manifest_problem(step_dir: str, manifest: Mapping[str, Any]) -> Optional[str]:
    """Why ``manifest`` does not describe a usable step (None when it does)."""
    if manifest.get("format") != FORMAT:
        return f"{step_dir}: unknown checkpoint format {manifest.get('format')!r} (this version reads {FORMAT})"
    parts = manifest.get("parts")
    if not isinstance(parts, dict) or not parts:
        return f"{step_dir}: the manifest lists no parts ({MANIFEST} 'parts' is {parts!r})"
    for name, entry in parts.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("file"), str) \
                or not isinstance(entry.get("bytes"), int) or isinstance(entry.get("bytes"), bool):
            return f"{step_dir}: the manifest's entry of part '{name}' is {entry!r}, not {{'file': ..., 'bytes': ...}}"
        file = entry["file"]
        if os.path.basename(file) != file or file.startswith(".") or not file:
            return f"{step_dir}: the manifest's part '{name}' names the file {file!r} outside its folder"
    return None


def incomplete_reason(step_dir: str) -> Optional[str]:
    """None when ``step_dir`` holds every part its manifest lists, at the listed size; else why not."""
    try:
        manifest = read_manifest(step_dir)
    except CheckpointError as exc:
        return str(exc)
    problem = _manifest_problem(step_dir, manifest)
    if problem:
        return problem
    for name, entry in manifest["parts"].items():
        path = os.path.join(step_dir, entry["file"])
        if not os.path.isfile(path):
            return f"{step_dir}: part '{name}' ({entry['file']}) is missing"
        if os.path.getsize(path) != entry["bytes"]:
            return (f"{step_dir}: {entry['file']} has {os.path.getsize(path)} bytes, the manifest says "
                    f"{entry['bytes']} (truncated or overwritten)")
    return None


def listed_parts(step_dir: str) -> Dict[str, str]:
    """``{part name: file}`` as the step's manifest lists them ({} when it has no usable manifest)."""
    try:
        manifest = read_manifest(step_dir)
    except CheckpointError:
        return {}
    if _manifest_problem(step_dir, manifest):
        return {}
    return {name: entry["file"] for name, entry in manifest["parts"].items()}


def _is_step_dir(path: str) -> bool:
    base = os.path.basename(os.path.normpath(path))
    return base.isdigit() and (os.path.exists(os.path.join(path, MANIFEST))
                               or any(f.endswith(".pt") for f in os.listdir(path)))


def read_chain(model_dir: str) -> Dict[str, Any]:
    """A model folder's links (``chain.json``): ``resumed_from`` (the step folder its run resumed
    from) and ``continued_in`` (folders of runs that resumed from it), as absolute paths."""
    path = os.path.join(model_dir, CHAIN_FILE)
    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, ValueError):
        return {"resumed_from": None, "continued_in": []}
    if not isinstance(data, dict):
        return {"resumed_from": None, "continued_in": []}

    def resolve(rel: Any) -> Optional[str]:
        return os.path.normpath(os.path.join(model_dir, rel)) if isinstance(rel, str) and rel else None

    later = data.get("continued_in")
    return {"resumed_from": resolve(data.get("resumed_from")),
            "continued_in": [p for p in (resolve(r) for r in (later if isinstance(later, list) else [])) if p]}


def _write_chain(model_dir: str, resumed_from: Optional[str], continued_in: Sequence[str]) -> None:
    data = {"resumed_from": os.path.relpath(resumed_from, model_dir) if resumed_from else None,
            "continued_in": [os.path.relpath(p, model_dir) for p in continued_in]}
    tmp = os.path.join(model_dir, f".{CHAIN_FILE}.{secrets.token_hex(3)}")
    _write(tmp, lambda f: json.dump(data, f, indent=1), "w")
    os.replace(tmp, os.path.join(model_dir, CHAIN_FILE))


def link_resume(step_dir: str, model_dir: str) -> None:
    """Record that the run saving into ``model_dir`` resumed from ``step_dir`` (both ways, so
    ``find_checkpoint`` on either folder finds the newest step of the chain). The old folder may
    be read-only: then only the new folder's link is written (raises nothing for the old one)."""
    step_dir, model_dir = os.path.abspath(step_dir), os.path.abspath(model_dir)
    parent = os.path.dirname(step_dir)
    if os.path.normpath(parent) == os.path.normpath(model_dir):  # saving on in the same folder: no link
        return
    os.makedirs(model_dir, exist_ok=True)
    mine = read_chain(model_dir)
    _write_chain(model_dir, step_dir, mine["continued_in"])
    theirs = read_chain(parent)
    if model_dir not in theirs["continued_in"]:
        try:
            _write_chain(parent, theirs["resumed_from"], theirs["continued_in"] + [model_dir])
        except OSError:
            pass


def _chain_folders(model_dir: str) -> List[str]:
    """``model_dir`` and every folder continuing it (resumed runs, theirs, ...), oldest first."""
    out, todo = [], [os.path.normpath(os.path.abspath(model_dir))]
    while todo:
        folder = todo.pop(0)
        if folder in out or not os.path.isdir(folder):
            continue
        out.append(folder)
        todo.extend(read_chain(folder)["continued_in"])
    return out


def _step_folders(model_dir: str) -> List[int]:
    try:
        names = os.listdir(model_dir)
    except OSError:
        return []
    return [int(d) for d in names if d.isdigit() and os.path.isdir(os.path.join(model_dir, d))]


def find_checkpoint(checkpoint_path: str, load_step: int = 0,
                    warn: Optional[Callable[[str], None]] = None) -> Tuple[str, int]:
    """Pick the complete step folder to load under ``checkpoint_path``.

    ``checkpoint_path`` is either a run's model dir (holding numeric step folders) or one step
    folder itself. A model dir stands for its resume chain: its own steps and those of the folders
    of runs that resumed from it (``chain.json``). With ``load_step == 0`` the newest complete
    step is taken, else the complete step closest to it. Incomplete folders are skipped and
    reported through ``warn``. When the chain holds no complete step and the folder's own run
    resumed from a step (killed before its first save), that step is taken.
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
    folders = _chain_folders(checkpoint_path)
    # (t, position in the chain): a later folder wins a tie (it re-saved that step after resuming)
    steps = [(t, i, folder) for i, folder in enumerate(folders) for t in _step_folders(folder)]
    if load_step:
        order = sorted(steps, key=lambda s: (abs(s[0] - load_step), -s[0], -s[1]))
    else:
        order = sorted(steps, key=lambda s: (-s[0], -s[1]))
    for step, _, folder in order:
        step_dir = os.path.join(folder, str(step))
        reason = incomplete_reason(step_dir)
        if reason is None:
            if folder != folders[0] and warn is not None:
                warn(f"following the resume chain of {checkpoint_path}: its newest complete step is in {folder}")
            return step_dir, step
        if warn is not None:
            warn(f"skipping incomplete checkpoint: {reason}")
    back = read_chain(folders[0])["resumed_from"] if folders else None
    if back and os.path.isdir(back) and incomplete_reason(back) is None:
        if warn is not None:
            warn(f"{checkpoint_path} holds no complete step (its run stopped before its first save): taking "
                 f"the step it resumed from, {back}")
        return back, int(os.path.basename(os.path.normpath(back)))
    if not steps:
        raise FileNotFoundError(
            f"no checkpoint step folders (numeric names) under '{checkpoint_path}'. "
            f"Did the run save models (save_model=True)?")
    raise CheckpointError(f"no complete checkpoint under '{checkpoint_path}' (all {len(steps)} step folders "
                          f"are incomplete; see the lines above).")


def resume_chain_dir(checkpoint_path: str) -> str:
    """The model folder a ``checkpoint_path`` (a model dir or one of its step folders) names."""
    path = os.path.normpath(checkpoint_path)
    return os.path.dirname(path) if _is_step_dir(path) else path


def drop_part(step_dir: str, name: str) -> int:
    """Remove part ``name`` (e.g. a finished run's replay ``buffer``) from a complete step folder.

    The manifest is rewritten without the part first (atomically), then the file is deleted, so
    the folder stays complete at every moment. Returns the bytes freed (0 when there was no part).
    """
    manifest = read_manifest(step_dir)
    problem = _manifest_problem(step_dir, manifest)
    if problem:
        raise CheckpointError(f"cannot drop part '{name}': {problem}")
    entry = manifest["parts"].pop(name, None)
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
    """Whether the step folder's manifest lists part ``name`` and its file is there (a file the
    manifest does not list, e.g. a ``buffer.pt`` copied in later, does not count)."""
    file = listed_parts(step_dir).get(name)
    return file is not None and os.path.isfile(os.path.join(step_dir, file))


def _part_path(step_dir: str, name: str) -> str:
    return os.path.join(step_dir, listed_parts(step_dir).get(name, f"{name}.pt"))


def _listing(names: Sequence[str], limit: int = 4) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" (+{len(names) - limit} more)" if len(names) > limit else "")


def state_mismatch(part: Any, state: Any) -> Optional[str]:
    """For a network part: which keys of a saved ``state`` are missing, unexpected, or of another
    shape than the part's own, in one line (None when they all fit, or ``part`` is no module)."""
    if not isinstance(part, torch.nn.Module) or not isinstance(state, Mapping):
        return None
    mine = part.state_dict()
    missing = [k for k in mine if k not in state]
    unexpected = [str(k) for k in state if k not in mine]
    shapes = [f"{k} {list(state[k].shape)} vs {list(v.shape)}" for k, v in mine.items()
              if k in state and isinstance(state[k], torch.Tensor) and tuple(state[k].shape) != tuple(v.shape)]
    cells = []
    if missing:
        cells.append(f"missing keys {_listing(missing)}")
    if unexpected:
        cells.append(f"unexpected keys {_listing(unexpected)}")
    if shapes:
        cells.append(f"other shapes (checkpoint vs this run) {_listing(shapes)}")
    return "; ".join(cells) or None


def load_checkpoint(step_dir: str, parts: Dict[str, Any], map_location: Any = "cpu",
                    required: Tuple[str, ...] = ()) -> None:
    """Load each part the step's manifest lists into ``parts[name]`` (via ``load_state_dict``).

    Parts named in ``required`` must be listed; other missing parts are skipped (e.g. optimiser
    state when only a deployable model was saved). A state that does not fit its part (other
    network sizes, agent or map) raises ``CheckpointError`` naming the file and, for a network,
    the missing, unexpected and differently shaped keys.
    """
    for name, part in parts.items():
        if not has_part(step_dir, name):
            if name in required:
                raise CheckpointError(f"checkpoint part '{name}.pt' missing in '{step_dir}' (or not listed in "
                                      f"its {MANIFEST}).")
            continue
        path = _part_path(step_dir, name)
        state = load_part(path, map_location)
        try:
            part.load_state_dict(state)
        except (RuntimeError, KeyError, ValueError, TypeError, IndexError) as exc:
            detail = state_mismatch(part, state)
            if detail is None:
                text = " ".join(str(exc).split())
                detail = text[:400] if text else type(exc).__name__
            raise CheckpointError(f"checkpoint file {path} does not fit this run's '{name}': {detail}. "
                                  f"Resume/evaluate with the config it was trained with (agent, mixer, map, "
                                  f"network sizes).") from None


def saved_config(step_dir: str, warn: Optional[Callable[[str], None]] = None) -> Optional[Dict[str, Any]]:
    """The ``config.json`` saved beside a step's parts (None when there is none), checked against
    the manifest: when its hash differs (the file was edited or damaged after the save), a
    changed network key (``ARCHITECTURE_KEYS``, also kept in the manifest) is a
    ``CheckpointError`` naming the key and both values, anything else one ``warn`` line (the
    edited values are used: run-control and budget keys may be edited on purpose)."""
    path = os.path.join(step_dir, CONFIG_FILE)
    if not os.path.exists(path):
        return None
    try:
        with open(path) as f:
            config = json.load(f)
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"cannot read {path}: {exc}") from None
    if not isinstance(config, dict):
        raise CheckpointError(f"{path} holds a JSON {type(config).__name__}, not a config object: damaged.")
    try:
        manifest = read_manifest(step_dir)
    except CheckpointError:
        return config
    expected = manifest.get("config_hash")
    if expected and config_hash(config) != expected:
        trained = manifest.get("architecture")
        changed = []
        if isinstance(trained, dict):
            now = architecture(config)
            changed = [f"{k}={now.get(k)!r} (trained with {v!r})" for k, v in trained.items() if now.get(k) != v]
        if changed:
            raise CheckpointError(f"{path} was changed after the save and no longer describes the saved networks: "
                                  f"{', '.join(changed)}. Restore those values in {path} (or train a new run).")
        if warn is not None:
            warn(f"{path} was edited after the save (its hash differs from the manifest's); the network keys are "
                 f"unchanged, so the edited values are used")
    return config


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
    saved = saved_config(step_dir, warn)
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
BUFFER_POLICIES = ("last", "all", "none")


def buffer_policy(value: Any) -> str:
    """``save_buffer`` as one of ``BUFFER_POLICIES``: ``last`` (the replay goes into the last
    checkpoint only: end of training or a requested stop; the default), ``all`` (every checkpoint;
    also ``True``), ``none`` (never; also ``False``). A missing value (None) is ``last``."""
    if value is None:
        return "last"
    text = str(value).strip().lower()
    aliases = {"true": "all", "false": "none", "every": "all", "never": "none", "no": "none", "yes": "all"}
    text = aliases.get(text, text)
    if text not in BUFFER_POLICIES:
        raise ValueError(f"save_buffer={value!r} is not one of {' | '.join(BUFFER_POLICIES)} "
                         f"(True = all, False = none).")
    return text


def probe_writable(folder: str) -> Optional[str]:
    """None when files can be created in ``folder`` (made if missing), else the reason, e.g.
    ``Permission denied``. Writes and removes one small file: permission bits alone do not tell
    (root ignores them; a read-only mount refuses root too)."""
    try:
        os.makedirs(folder, exist_ok=True)
        probe = os.path.join(folder, f".write-probe-{os.getpid()}-{secrets.token_hex(3)}")
        with open(probe, "w") as f:
            f.write("x")
        os.remove(probe)
    except OSError as exc:
        return exc.strerror or str(exc)
    return None


class Checkpointer:
    """The checkpoints of one training run (``save_model``, ``save_model_interval``, ``save_buffer``).

    ``save(t_env, models, state, buffers, last)``: ``models`` are the network/optimiser parts
    (checked for NaN/inf), ``state`` the run's counters and RNG states, ``buffers`` the replay;
    buffers are written as ``save_buffer`` says (``buffer_policy``: by default with the ``last``
    checkpoint, at a stop or the end). A refused (diverged) save is logged and returns None.
    ``resume_from``: the step folder the run resumed from; the model folder is linked with it
    (``link_resume``). At start the model folder is checked for writing (``CheckpointWriteError``,
    before any training) and the leftovers of killed saves in it (and in the folder of
    ``resume_from``) are removed.
    """

    def __init__(self, args: Any, console: Any, resume_from: Optional[str] = None) -> None:
        self.model_dir = model_dir_for(args)
        self.enabled = bool(args.save_model)
        self.interval = int(args.save_model_interval)
        self.save_buffer = buffer_policy(getattr(args, "save_buffer", None))
        self.config = plain_config(args)
        self.console = console
        if self.enabled:
            why = probe_writable(self.model_dir)
            if why:
                raise CheckpointWriteError(f"cannot write checkpoints to {self.model_dir}: {why}. Make it writable, "
                                           f"set local_results_path=<a writable folder>, or save_model=False.")
            clean_stale_saves(self.model_dir, console.warning)
            if resume_from is not None:
                link_resume(resume_from, self.model_dir)
                try:  # the run it resumes may have been killed mid-save: its leftovers go too
                    clean_stale_saves(os.path.dirname(os.path.abspath(resume_from)), console.warning)
                except OSError:
                    pass

    def due(self, t_env: int, last_save_t: int) -> bool:
        """Whether a periodic checkpoint is due at ``t_env``."""
        return self.enabled and t_env - last_save_t >= self.interval

    def save(self, t_env: int, models: Dict[str, Any], state: Dict[str, Any], buffers: Dict[str, Any],
             last: bool) -> Optional[str]:
        if not self.enabled:
            return None
        with_buffers = bool(buffers) and (self.save_buffer == "all" or (last and self.save_buffer == "last"))
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
    """The plain-data part ``name`` of a step folder (None when its manifest does not list it)."""
    return load_part(_part_path(step_dir, name), map_location) if has_part(step_dir, name) else None


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
    if hasattr(logger, "set_info"):
        base = os.path.basename(os.path.normpath(step_dir))
        logger.set_info("resumed_from", {"step_dir": os.path.abspath(step_dir),
                                         "t_env": int(base) if base.isdigit() else None})
    return saved


def restore_buffer(step_dir: str, name: str, buffer: Any, map_location: Any = "cpu") -> bool:
    """Load part ``name`` into ``buffer`` (``load_state_dict``); False when the step's manifest
    lists none (a periodic checkpoint with ``save_buffer=last``, or ``save_buffer=none``)."""
    if not has_part(step_dir, name):
        return False
    buffer.load_state_dict(restore_plain(step_dir, name, map_location))
    return True
