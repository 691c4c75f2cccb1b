"""GPU part of ``train_speed.py`` (``--device cuda``): the learner update and the scan kernels alone.

(a) Learner update: ms per ``QLearner.train()`` (QMIX, ``mac_unroll=sequence``) on a CUDA batch
    of ``--batch-size`` episodes x ``--T`` transitions at each map's shapes, for ``rnn`` (cuDNN
    GRU) and ``lif`` / ``grsn`` with the Triton scan kernels (``triton``) and with the torch loops
    of ``scan.py`` (``loops``, Triton off). Variants take turns within every repeat (A, B, C, ...);
    ratios to ``rnn`` are taken per repeat, their median is reported.
(b) The element-wise kernels alone, forward + backward on [T, batch x agents, 64]: GRSN
    (gated current + membrane) and LIF (membrane) with Triton and with the torch loops, against
    cuDNN's ``nn.GRU(64, 64)`` over the same sequence; agreement of Triton and loops is recorded.

Env shapes come from SMAX (``get_env_info``) when jaxmarl is installed, else from the ``env_info``
blocks of a ``train_speed.json`` written on a machine that has it (``--env-info-from``).
Writes ``<out-dir>/train_speed_gpu.json`` and ``.md``.
"""
from __future__ import annotations

import json
import os
import platform
import statistics
import time
from typing import Any, Callable, Dict, List

import torch

from controllers.basic_controller import BasicMAC
from learners.q_learner import QLearner
from modules.neurons import scan, triton_scan
from report import write_report

DEVICE = "cuda"
ON = "auto"     # Triton mode of the "triton" variants (a CPU dry run of this script sets "always")
# learner variants: (agent, Triton mode of the scans)
LEARNER_VARIANTS: Dict[str, tuple] = {"rnn": ("rnn", ON), "lif_triton": ("lif", ON),
                                      "grsn_triton": ("grsn", ON), "lif_loops": ("lif", "off"),
                                      "grsn_loops": ("grsn", "off")}


def load_env_infos(maps: List[str], env_info_from: str, env_args: Dict[str, Any]) -> Dict[str, Any]:
    """``get_env_info`` per map from SMAX, or from a stored ``train_speed.json`` without jaxmarl."""
    try:
        import jaxmarl  # noqa: F401
    except ImportError:
        if not os.path.exists(env_info_from):
            raise SystemExit(f"jaxmarl is not installed and {env_info_from} does not exist: install "
                             f"jaxmarl or pass --env-info-from a train_speed.json that has the maps")
        with open(env_info_from) as f:
            stored = json.load(f)["learner"]
        missing = [m for m in maps if m not in stored]
        if missing:
            raise SystemExit(f"{env_info_from} has no env_info for {missing}; it has {sorted(stored)}")
        return {m: dict(stored[m]["env_info"], source=env_info_from) for m in maps}
    from train_speed import env_infos
    return env_infos(maps, env_args)


def _sync() -> None:
    if DEVICE == "cuda":
        torch.cuda.synchronize()


def _sync_time(fn: Callable[[], Any]) -> float:
    _sync()
    t0 = time.perf_counter()
    fn()
    _sync()
    return time.perf_counter() - t0


def _interleaved(fns: Dict[str, Callable[[], Any]], warmup: int, repeats: int,
                 modes: Dict[str, str]) -> Dict[str, List[float]]:
    """Milliseconds of each fn per repeat, the fns taking turns; first-call seconds under '_first'."""
    first = {}
    for k, fn in fns.items():
        scan.set_triton_mode(modes[k])
        first[k] = _sync_time(fn)                         # includes Triton compilation
        for _ in range(warmup - 1):
            fn()
    times: Dict[str, List[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            scan.set_triton_mode(modes[k])
            times[k].append(1e3 * _sync_time(fn))
    scan.set_triton_mode("auto")
    times["_first"] = first  # type: ignore[assignment]
    return times


def _summary(times: Dict[str, List[float]], ref: str) -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    for k, t in times.items():
        if k == "_first":
            continue
        out[k] = {"ms_median": statistics.median(t), "ms_min": min(t), "ms_all": t,
                  "first_call_s": times["_first"][k],
                  f"over_{ref}_median_of_ratios": statistics.median(a / b for a, b in zip(t, times[ref]))}
    return out


def bench_learners(info: Dict[str, Any], batch, seed: int, warmup: int, repeats: int,
                   base_args: Callable, null_logger: Callable, packing: str) -> Dict[str, Any]:
    """ms per ``QLearner.train`` of each LEARNER_VARIANTS entry with ``learner_packing=packing``."""
    fns, modes = {}, {}
    for key, (agent, mode) in LEARNER_VARIANTS.items():
        args = base_args(seed, {})
        if not hasattr(args, "learner_packing") and packing != "padded":
            raise SystemExit(f"this config has no learner_packing key: use --learner-packing padded")
        args.learner_packing = packing
        args.agent, args.mac_unroll, args.device = agent, "sequence", DEVICE
        args.n_agents, args.n_actions = info["n_agents"], info["n_actions"]
        args.state_shape, args.obs_shape = info["state_shape"], info["obs_shape"]
        args.episode_limit = info["episode_limit"]
        torch.manual_seed(seed)
        learner = QLearner(BasicMAC(info, args), info, args, null_logger()).to(DEVICE)
        fns[key] = (lambda lr=learner: lr.train(batch, t_env=0, episode=0))
        modes[key] = mode
    return _summary(_interleaved(fns, warmup, repeats, modes), "rnn")


def bench_kernels(n_agents: int, batch_size: int, T: int, hidden: int, seed: int,
                  warmup: int, repeats: int) -> Dict[str, Any]:
    """Forward + backward of the scans alone on [T, batch_size * n_agents, hidden], and cuDNN GRU."""
    B, H = batch_size * n_agents, hidden
    g = torch.Generator(device=DEVICE).manual_seed(seed)
    dev = dict(device=DEVICE, dtype=torch.float32)
    pre = (torch.randn(T, B, 2 * H, generator=g, **dev) * 2).requires_grad_()
    cur = (torch.randn(T, B, H, generator=g, **dev) * 2).requires_grad_()
    c0 = torch.rand(B, H, generator=g, **dev).requires_grad_()
    uh0 = torch.rand(B, H, generator=g, **dev).requires_grad_()
    raw = torch.zeros(H, **dev).requires_grad_()
    w = torch.randn(T, B, H, generator=g, **dev)
    gru = torch.nn.GRU(H, H).to(DEVICE)
    x = torch.randn(T, B, H, generator=g, **dev).requires_grad_()
    h0 = torch.zeros(1, B, H, **dev).requires_grad_()

    def grsn() -> List[torch.Tensor]:
        C = scan.gated_scan(pre, c0)
        O, uh, _ = scan.membrane_scan(C, uh0, torch.sigmoid(raw), 1.0, True)
        return list(torch.autograd.grad((O * w).sum() + uh.sum(), [pre, c0, uh0, raw]))

    def lif() -> List[torch.Tensor]:
        O, uh, _ = scan.membrane_scan(cur, uh0, torch.full((H,), 0.5, **dev), 1.0, False)
        return list(torch.autograd.grad((O * w).sum() + uh.sum(), [cur, uh0]))

    def gru_fn() -> List[torch.Tensor]:
        y, h = gru(x, h0)
        return list(torch.autograd.grad((y * w).sum() + h.sum(), [x, h0]))

    agreement = {}
    for name, fn in (("grsn", grsn), ("lif", lif)):
        scan.set_triton_mode(ON)
        a = fn()
        scan.set_triton_mode("off")
        b = fn()
        agreement[name] = max(float((p - q).abs().max()) for p, q in zip(a, b))
    scan.set_triton_mode("auto")
    fns = {"gru_cudnn": gru_fn, "grsn_triton": grsn, "grsn_loops": grsn, "lif_triton": lif, "lif_loops": lif}
    modes = {"gru_cudnn": ON, "grsn_triton": ON, "grsn_loops": "off", "lif_triton": ON, "lif_loops": "off"}
    out = _summary(_interleaved(fns, warmup, repeats, modes), "gru_cudnn")
    out["shape"] = {"T": T, "batch": B, "hidden": H}
    out["max_abs_grad_diff_triton_vs_loops"] = agreement
    return out


def markdown(res: Dict[str, Any]) -> str:
    meta = res["meta"]
    lines = [f"# Training speed on the GPU ({meta['date']})", "",
             f"{meta['gpu']}, torch {meta['torch']}, Triton {meta['triton']}; medians of {meta['repeats']} "
             f"repeats after {meta['warmup']} warm-up calls, variants taking turns within every repeat; "
             f"ratios are medians of per-repeat ratios. Total wall time {meta['wall_s']:.0f} s.", "",
             f"## (a) Learner update: ms per `QLearner.train()` (QMIX, `mac_unroll=sequence`), batch "
             f"{meta['batch_size']} full episodes x T = {meta['T']}, hidden 64", "",
             "triton = spiking scans in the Triton kernels (default on CUDA); loops = the torch loops of "
             "scan.py on the GPU (Triton off). learner_packing: padded = every network on all slots (rnn: "
             "cuDNN GRU); packed = real slots only (rnn: a GRU step loop on the running episodes). "
             "/ rnn = against rnn with the same packing. First call includes Triton compilation.", "",
             "| map | packing | variant | ms median (min) | / rnn | first call s |", "|---|---|---|---|---|---|"]
    for m, by_packing in res["learner"].items():
        for packing, rows in by_packing.items():
            for k, r in rows.items():
                lines.append(f"| {m} | {packing} | {k} | {r['ms_median']:.2f} ({r['ms_min']:.2f}) | "
                             f"{r['over_rnn_median_of_ratios']:.2f} | {r['first_call_s']:.1f} |")
    lines += ["", "## (b) Element-wise kernels alone, forward + backward", "",
              "| map shape | variant | ms median (min) | / cuDNN GRU | max abs grad diff Triton vs loops |",
              "|---|---|---|---|---|"]
    for m, rows in res["kernels"].items():
        s = rows["shape"]
        for k, r in rows.items():
            if not isinstance(r, dict) or "ms_median" not in r:
                continue
            agree = rows["max_abs_grad_diff_triton_vs_loops"].get(k.split("_")[0], None)
            lines.append(f"| {m}: T {s['T']} x {s['batch']} x {s['hidden']} | {k} | {r['ms_median']:.3f} "
                         f"({r['ms_min']:.3f}) | {r['over_gru_cudnn_median_of_ratios']:.2f} | "
                         f"{'-' if agree is None else f'{agree:.1e}'} |")
    lines += ["", "GRSN / GRU learner update (Triton): " + "; ".join(
        f"{m} {packing}: {rows['grsn_triton']['over_rnn_median_of_ratios']:.2f}"
        for m, by_packing in res["learner"].items() for packing, rows in by_packing.items())]
    return "\n".join(lines) + "\n"


def main_cuda(a, base_args: Callable, fake_batch: Callable, null_logger: Callable) -> int:
    """Entry point of ``train_speed.py --device cuda`` (``a``: its parsed arguments)."""
    if DEVICE == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: torch sees no CUDA GPU (torch "
                         f"{torch.__version__}); run on a GPU machine or drop --device cuda")
    if not triton_scan.AVAILABLE:
        raise SystemExit(f"--device cuda compares the Triton kernels: {triton_scan.INSTALL_HINT}")
    if a.torch_threads > 0:
        torch.set_num_threads(a.torch_threads)
    start = time.perf_counter()
    maps = [m for m in a.maps.split(",") if m]
    infos = load_env_infos(maps, a.env_info_from, {"jax_cache_dir": a.jax_cache_dir})
    learner, kernels = {}, {}
    for m in maps:
        info = infos[m]
        batch = fake_batch(info, a.batch_size, a.T, a.seed).to(DEVICE)
        learner[m] = {}
        for packing in [x for x in a.learner_packing.split(",") if x]:
            rows = bench_learners(info, batch, a.seed, a.warmup, a.repeats, base_args, null_logger, packing)
            learner[m][packing] = rows
            print(f"[learner cuda] {m} {packing}: " + ", ".join(f"{k} {r['ms_median']:.2f} ms"
                                                              for k, r in rows.items()), flush=True)
        kernels[m] = bench_kernels(info["n_agents"], a.batch_size, a.T, 64, a.seed, a.warmup, a.repeats)
        print(f"[kernels cuda] {m}: " + ", ".join(f"{k} {r['ms_median']:.3f} ms" for k, r in kernels[m].items()
                                                  if isinstance(r, dict) and "ms_median" in r), flush=True)
    import triton
    meta = {"date": time.strftime("%Y-%m-%d %H:%M"), "device": DEVICE,
            "gpu": torch.cuda.get_device_name(0) if DEVICE == "cuda" else "cpu dry run", "torch": torch.__version__, "triton": triton.__version__,
            "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version(),
            "python": platform.python_version(), "batch_size": a.batch_size, "T": a.T,
            "repeats": a.repeats, "warmup": a.warmup, "seed": a.seed, "maps": maps,
            "learner_packing": a.learner_packing,
            "env_info_source": {m: infos[m].get("source", "smax") for m in maps},
            "wall_s": time.perf_counter() - start}
    res = {"meta": meta, "learner": learner, "kernels": kernels}
    write_report(a.out_dir, "train_speed_gpu", res, markdown(res))
    return 0
