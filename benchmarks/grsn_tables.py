"""GRSN paper Tables 2-4 on SMAX from resumable grid parts (``marl_learning.py --resume``).

Subcommands (each writes ``benchmarks/results/<tag>.json`` and ``.md``):

    python benchmarks/grsn_tables.py memory --maps 3m,2s3z,3s_vs_5z,8m,8m_vs_9m,MMM2 --replay-gib 6
        replay memory per map (EpisodeBatch layout: obs, state, avail_actions, actions, reward,
        terminated, filled) at pymarl2's 5000 episodes and the buffer_size that fits --replay-gib
        (GiB per run; two runs in parallel). The same number is the size of a last checkpoint's
        buffer.pt when the replay is full. Compiles each map once (~20 s each).
    python benchmarks/grsn_tables.py plan [--rates FILE ...]
        the grid's part commands (Table 2, Table 3, the threshold row) with the expected wall time
        per run and the number of sessions, from training s per 10k env steps measured in FILEs
        (marl_learning records; slope of ``elapsed_s`` over the second half of each run).
    python benchmarks/grsn_tables.py table2 --inputs benchmarks/results/grid_t2_*.json
        Table 2 layout: final and best test win rate (mean ± std over seeds), median steps to 50 %
        and 90 %, training wall time, beside the paper's QMIX-GRU / QMIX-GRSN; one learning-curve
        PNG per map (src/results.py plotting, runs joined across parts); the Table 4 energy command
        with the trained checkpoints.
    python benchmarks/grsn_tables.py table3 --inputs benchmarks/results/grid_t3_3m.json benchmarks/results/grid_t2_3m.json
        Table 3 layout (ablation.py's rows) from runs with the variant notap (tap=False) and, as
        the TAP rows, either the variant tap or the Table 2 record's plain lif / grsn runs.
    python benchmarks/grsn_tables.py firing --inputs benchmarks/results/grid_t2_3m.json benchmarks/results/grid_thr_3m.json
        firing rate (spike_rate_mean at each test) over training for each grsn variant, from
        finished runs; ``--at 0 20000 60000 ...`` shows the tests nearest to those steps.
    python benchmarks/grsn_tables.py resume-check
        the grid's resume end to end (~5 min): a straight 3m run vs the same command stopped by
        --deadline-s and given again with --resume; every logged series must be equal.
"""
from __future__ import annotations

import argparse
import glob
import os
import sys
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from marl_learning import CURVE_KEYS, ROOT, steps_to_reach  # noqa: E402  (also puts src/ on sys.path)
from report import compare_means, relation, write_report  # noqa: E402

RESULTS = os.path.join(ROOT, "benchmarks", "results")
GIB = 1024 ** 3
PYMARL2_BUFFER = 5000
TABLE2_MAPS = ["3m", "2s3z", "3s_vs_5z", "8m", "8m_vs_9m", "MMM2"]
TABLE2_AGENTS = ["rnn", "grsn", "lif"]
# paper Table 2 (SMAC, 10M steps, 5 seeds): (mean reward, std, win %, std) for QMIX-GRU and QMIX-GRSN
PAPER_T2: Dict[str, Dict[str, Tuple[float, float, float, float]]] = {
    "8m": {"rnn": (19.8, 0.26, 97.6, 3.49), "grsn": (20.0, 0.12, 99.4, 1.48)},
    "2s3z": {"rnn": (19.9, 0.18, 97.9, 2.84), "grsn": (19.9, 0.20, 97.0, 3.57)},
    "8m_vs_9m": {"rnn": (19.4, 0.69, 91.6, 8.73), "grsn": (19.6, 0.35, 94.6, 4.54)},
    "3s_vs_5z": {"rnn": (21.0, 0.44, 97.1, 3.46), "grsn": (21.4, 0.60, 93.0, 5.48)},
    "27m_vs_30m": {"rnn": (19.2, 0.51, 79.4, 12.19), "grsn": (19.9, 0.14, 96.4, 3.74)},
    "MMM2": {"rnn": (17.6, 3.76, 75.2, 37.93), "grsn": (18.5, 0.73, 83.6, 8.17)},
}
# paper Table 3, SMAC 8m: (mean reward, std, win %, time steps, training hours) per setting
PAPER_T3 = {("lif", True): (15.3, 1.59, 50.4, 26, 12.91), ("grsn", True): (19.9, 0.02, 99.4, 26, 12.76),
            ("lif", False): (16.9, 1.38, 64.6, 104, 19.52), ("grsn", False): (19.7, 0.31, 96.5, 104, 18.57)}


# --------------------------------------------------------------------------- memory
def episode_bytes(env_info: Dict[str, Any]) -> int:
    """Bytes of one replay slot: an ``EpisodeBatch.zeros(1, episode_limit, ...)`` (the buffer's
    own layout), i.e. the memory per episode of ``buffer_size`` and of a checkpoint's buffer.pt."""
    from components.episode_buffer import EpisodeBatch

    one = EpisodeBatch.zeros(1, env_info["episode_limit"], env_info["n_agents"], env_info["obs_shape"],
                             env_info["state_shape"], env_info["n_actions"])
    return int(sum(v.numel() * v.element_size() for v in one.as_dict().values()))


def buffer_size_for(per_episode: int, replay_gib: float, cap: int = PYMARL2_BUFFER, step: int = 100) -> int:
    """The largest multiple of ``step`` episodes (at most ``cap``) whose replay fits ``replay_gib``."""
    fit = int(replay_gib * GIB // per_episode) // step * step
    if fit < step:
        raise ValueError(f"one replay of {step} episodes needs {step * per_episode / GIB:.2f} GiB, more than "
                         f"--replay-gib {replay_gib}: raise --replay-gib")
    return min(cap, fit)


def memory_rows(env_infos: Dict[str, Dict[str, Any]], replay_gib: float) -> List[Dict[str, Any]]:
    rows = []
    for m, info in env_infos.items():
        per = episode_bytes(info)
        size = buffer_size_for(per, replay_gib)
        rows.append({"map": m, "n_agents": info["n_agents"], "obs_shape": info["obs_shape"],
                     "state_shape": info["state_shape"], "n_actions": info["n_actions"],
                     "episode_limit": info["episode_limit"], "bytes_per_episode": per,
                     "gib_at_5000": per * PYMARL2_BUFFER / GIB, "buffer_size": size,
                     "gib_at_buffer_size": per * size / GIB})
    return rows


def cmd_memory(a: argparse.Namespace) -> int:
    from train_speed import env_infos

    rows = memory_rows(env_infos(a.maps.split(","), {}), a.replay_gib)
    lines = [f"Replay memory per run (= a full replay's buffer.pt); buffer_size = largest multiple of 100 "
             f"episodes <= {PYMARL2_BUFFER} within {a.replay_gib} GiB.", "",
             "| map | agents | obs | state | actions | episode limit | MiB per 100 episodes | GiB at 5000 | "
             "buffer_size | GiB at buffer_size |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['map']} | {r['n_agents']} | {r['obs_shape']} | {r['state_shape']} | {r['n_actions']} | "
                     f"{r['episode_limit']} | {100 * r['bytes_per_episode'] / 2**20:.1f} | {r['gib_at_5000']:.2f} | "
                     f"{r['buffer_size']} | {r['gib_at_buffer_size']:.2f} |")
    sizes = ",".join(f"{r['map']}={r['buffer_size']}" for r in rows if r["buffer_size"] < PYMARL2_BUFFER)
    lines += ["", f"marl_learning.py --buffer-sizes {sizes or '(none needed)'}"]
    write_report(a.out, a.tag, {"replay_gib": a.replay_gib, "rows": rows, "buffer_sizes": sizes}, "\n".join(lines))
    return 0


# --------------------------------------------------------------------------- reading records
def load_records(patterns: Sequence[str]) -> List[Dict[str, Any]]:
    """The marl_learning records matching ``patterns`` (oldest file first)."""
    import json

    paths = sorted({p for pat in patterns for p in glob.glob(pat)}, key=os.path.getmtime)
    if not paths:
        raise FileNotFoundError(f"no marl_learning record matches {list(patterns)}")
    out = []
    for p in paths:
        with open(p) as f:
            rec = json.load(f)
        rec["_path"] = p
        out.append(rec)
    return out


def collect_runs(records: Sequence[Dict[str, Any]]) -> Dict[Tuple[str, str], Dict[int, Dict[str, Any]]]:
    """``{(map, agent label): {seed: run}}``; a run is its curves plus its record entry (status,
    segments, model folder, wall time). A seed found in several records keeps the one that got
    furthest (the last part of a resumed grid holds the joined curve)."""
    out: Dict[Tuple[str, str], Dict[int, Dict[str, Any]]] = {}
    for rec in records:
        for key, g in rec.get("groups", {}).items():
            m, label = key.split("/", 1)
            meta = {r["seed"]: r for r in g.get("runs", [])}
            for c in g.get("curves", []):
                run = dict(c, **meta.get(c["seed"], {}), source=rec["_path"],
                           alg=str(rec.get("config", {}).get("config") or "qmix"),
                           with_args=list(rec.get("config", {}).get("with_args") or []))
                cell = out.setdefault((m, label), {})
                old = cell.get(c["seed"])
                if old is None or run["T"][-1] >= old["T"][-1]:
                    cell[c["seed"]] = run
    return out


def _ms(xs: Sequence[float], scale: float = 1.0) -> Tuple[Optional[float], Optional[float]]:
    return (None, None) if not xs else (scale * float(np.mean(xs)), scale * float(np.std(xs)))


#: how many of the last tests the "last tests" column averages per run (one test's 32 episodes
#: are a noisy estimate: a binomial std of about 5 points at a 90 % win rate)
LAST_TESTS = 10


def last_tests_win(run: Dict[str, Any]) -> float:
    """The mean test win rate (fraction) of a run's last LAST_TESTS tests."""
    return float(np.mean(run["test_battle_won_mean"][-LAST_TESTS:]))


def split_finished(runs: Sequence[Dict[str, Any]]) -> Tuple[List[Dict[str, Any]], List[Dict[str, Any]]]:
    """``(finished, unfinished)`` runs: a run is finished when its sacred status is COMPLETED (an
    unfinished run's last test, wall time and series length are not the budget's)."""
    return ([r for r in runs if r.get("status") == "COMPLETED"],
            [r for r in runs if r.get("status") != "COMPLETED"])


def table2_cell(runs: Sequence[Dict[str, Any]]) -> Dict[str, Any]:
    """Final, best and last-LAST_TESTS-mean test win rate (%), final return, steps to 50 % / 90 %
    and training wall time."""
    finals = [r["test_battle_won_mean"][-1] for r in runs]
    lasts = [last_tests_win(r) for r in runs]
    bests = [max(r["test_battle_won_mean"]) for r in runs]
    rets = [r["test_return_mean"][-1] for r in runs if r.get("test_return_mean")]
    cell: Dict[str, Any] = {"n": len(runs), "seeds": sorted(r["seed"] for r in runs),
                            "unfinished": len(split_finished(runs)[1]),
                            "final_T": [int(r["T"][-1]) for r in runs]}
    cell["final_win_mean"], cell["final_win_std"] = _ms(finals, 100)
    cell["best_win_mean"], cell["best_win_std"] = _ms(bests, 100)
    cell["last_win_mean"], cell["last_win_std"] = _ms(lasts, 100)
    cell["final_return_mean"], cell["final_return_std"] = _ms(rets)
    for level in (0.5, 0.9):
        reach = [steps_to_reach(r["T"], r["test_battle_won_mean"], level) for r in runs]
        got = [s for s in reach if s is not None]
        cell[f"steps_to_{int(level * 100)}"] = reach
        cell[f"median_steps_to_{int(level * 100)}"] = float(np.median(got)) if got else None
    walls = [r["wall_time_s"] for r in runs if r.get("wall_time_s") is not None]
    cell["wall_h_mean"] = float(np.mean(walls)) / 3600 if walls else None
    return cell


#: seeds per (map, agent) in the grid plan; a verdict on fewer is provisional
SEEDS_PLANNED = 3


def verdict(cells: Dict[str, Dict[str, Any]], seeds_planned: int = SEEDS_PLANNED) -> str:
    """GRSN vs GRU (and vs LIF when it has runs) on one map from the final win rates: above / below
    when the means differ by more than the larger std over seeds, else level (``report.compare_means``);
    a missing or unfinished cell says so, and fewer than ``seeds_planned`` seeds make it provisional."""
    g, r = cells.get("grsn"), cells.get("rnn")
    if not g or not r:
        return "incomplete (an agent has no runs)"
    lif = cells.get("lif")
    compared = [c for c in (g, r, lif) if c]
    unfinished = sum(c["unfinished"] for c in compared)
    if unfinished:
        return f"provisional ({unfinished} run{'s' if unfinished > 1 else ''} unfinished)"
    parts = []
    for name, other in (("GRU", r), ("LIF", lif)):
        if other:
            how, diff, tol = compare_means(g["final_win_mean"], g["final_win_std"],
                                           other["final_win_mean"], other["final_win_std"])
            parts.append(f"{relation(how)} {name} ({diff:+.1f} points, {'within one ' if how == 'level' else ''}"
                         f"std {tol:.1f})")
    n = min(c.get("n", seeds_planned) for c in compared)
    head = f"provisional, {n} of {seeds_planned} seeds: " if n < seeds_planned else ""
    return head + "GRSN " + "; ".join(parts)


def _f(v: Optional[float], fmt: str) -> str:
    return "-" if v is None else format(v, fmt)


def stored_experiments(runs: Dict[Tuple[str, str], Dict[int, Dict[str, Any]]]) -> List[Any]:
    """One ``results.Experiment`` per stored run, built from the curves its record holds (each key's
    steps are ``<key>_T``, else ``T``), so plots need no sacred folder: they draw on any machine
    from the committed records alone, and show the same data as the tables. The config carries
    what labels a plot row: ``qmix <agent>``, plus ``variant=<v>`` where one agent has several
    rows on a map (``standard`` for the grid's own)."""
    import results

    out = []
    for (m, label), cell in sorted(runs.items()):
        agent, _, variant = label.partition("/")
        for seed, r in sorted(cell.items()):
            config = {"config_name": r.get("alg", "qmix"), "agent": agent, "seed": seed,
                      "env_args": {"map_name": m}, "variant": variant or "standard"}
            curves = results.curves_from_info(r, keys=CURVE_KEYS, default_steps=r["T"])
            rec = results.RunRecord(path=str(r.get("source", "")), status=str(r.get("status")), config=config,
                                    curves=curves)
            out.append(results.Experiment([rec], curves))
    return out


def plot_maps(runs: Dict[Tuple[str, str], Dict[int, Dict[str, Any]]], out_dir: str,
              metric_names: Sequence[str] = ("win_rate",)) -> List[Dict[str, str]]:
    """One PNG per map and metric with ``results.plot_curves``, from the curves stored in the records
    (``stored_experiments``). Each plot's ``path`` is relative to the repository root."""
    import results

    specs = [s for s in results.PLOT_METRICS if s.name in metric_names]
    plots = results.plot_curves(stored_experiments(runs), out_dir, specs)
    return [dict(p, path=os.path.relpath(p["path"], ROOT)) for p in plots]


def energy_command(runs: Dict[Tuple[str, str], Dict[int, Dict[str, Any]]], seed: int, tag: str) -> Optional[str]:
    """``energy_table.py`` on the trained rnn and grsn checkpoints of ``seed`` (finished runs) per map."""
    maps, ckpts = [], []
    for (m, label), cell in sorted(runs.items()):
        r = cell.get(seed)
        if label in ("rnn", "grsn") and r and r.get("status") == "COMPLETED" and r.get("model_dir"):
            path = r["model_dir"]
            rel = os.path.relpath(path, ROOT)
            ckpts.append(f"--ckpt {m}:{label}={path if rel.startswith('..') else rel}")
            maps.append(m)
    if not ckpts:
        return None
    return (f"python benchmarks/energy_table.py --marl-maps {' '.join(sorted(set(maps)))} --po-keys "
            f"{' '.join(ckpts)} --tag {tag}")


def cmd_table2(a: argparse.Namespace) -> int:
    runs = collect_runs(load_records(a.inputs))
    maps = [m for m in TABLE2_MAPS + sorted({m for m, _ in runs} - set(TABLE2_MAPS)) if any(k[0] == m for k in runs)]
    lines = ["Test win rate over the test episodes of each test; final = last test, best = best test, "
             f"last {LAST_TESTS} = mean of each run's last {LAST_TESTS} tests; mean ± std "
             "over seeds (population std). Steps to 50 % / 90 %: median over the seeds that got there (k/n). "
             "Paper: SMAC (StarCraft II), 10M steps, 5 seeds, win rate of the final model.", "",
             f"| map | agent | seeds | env steps | final test win % | best test win % | last {LAST_TESTS} tests win % | "
             "final return | steps to 50 % | steps to 90 % | training wall time (h) | paper win % | paper return |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    table: Dict[str, Any] = {}
    verdicts = {}
    for m in maps:
        cells = {}
        for label in [x for x in TABLE2_AGENTS if (m, x) in runs] + sorted(l for mm, l in runs
                                                                          if mm == m and l not in TABLE2_AGENTS):
            c = table2_cell(list(runs[(m, label)].values()))
            cells[label] = c
            paper = PAPER_T2.get(m, {}).get(label)
            steps = f"{min(c['final_T']):,}" + ("" if min(c["final_T"]) == max(c["final_T"]) else f"-{max(c['final_T']):,}")
            to50 = f"{_f(c['median_steps_to_50'], ',.0f')} ({sum(s is not None for s in c['steps_to_50'])}/{c['n']})"
            to90 = f"{_f(c['median_steps_to_90'], ',.0f')} ({sum(s is not None for s in c['steps_to_90'])}/{c['n']})"
            unfinished = f" ({c['unfinished']} unfinished)" if c["unfinished"] else ""
            lines.append(
                f"| {m} | {label} | {c['n']}{unfinished} | "
                f"{steps} | {c['final_win_mean']:.1f} ± {c['final_win_std']:.1f} | "
                f"{c['best_win_mean']:.1f} ± {c['best_win_std']:.1f} | "
                f"{c['last_win_mean']:.1f} ± {c['last_win_std']:.1f} | "
                f"{_f(c['final_return_mean'], '.2f')} ± {_f(c['final_return_std'], '.2f')} | {to50} | {to90} | "
                f"{_f(c['wall_h_mean'], '.2f')} | "
                + ("- | - |" if paper is None else f"{paper[2]:.1f} ± {paper[3]:.2f} | {paper[0]:.1f} ± {paper[1]:.2f} |"))
        table[m] = cells
        verdicts[m] = verdict(cells, a.seeds_planned)
    lines += ["", "Verdict per map (final test win rate, GRSN vs GRU and LIF):", ""]
    lines += [f"- {m}: {v}" for m, v in verdicts.items()]
    plots = [] if a.no_plots else plot_maps(runs, os.path.join(a.out, f"{a.tag}_plots"))
    if plots:
        lines += ["", "Learning curves: " + ", ".join(os.path.relpath(os.path.join(ROOT, p["path"]), a.out)
                                                      for p in plots)]
    energy = energy_command(runs, a.energy_seed, f"{a.tag}_energy")
    lines += ["", "Table 4 from the trained checkpoints (seed %d): %s" % (a.energy_seed, energy or
                                                                          "no finished rnn/grsn run yet")]
    write_report(a.out, a.tag, {"inputs": [r for r in a.inputs], "paper": PAPER_T2, "table": table,
                                "verdicts": verdicts, "plots": plots, "energy_command": energy}, "\n".join(lines))
    return 0


# --------------------------------------------------------------------------- Table 3 and firing rates
def overrides_tap(with_args: Sequence[str]) -> bool:
    """True when a record's ``with`` overrides set ``tap`` or ``snn_T`` (its plain runs are then no TAP row)."""
    return any(w.split("=", 1)[0] in ("tap", "snn_T") for w in with_args)


def table3_runs(runs: Dict[Tuple[str, str], Dict[int, Dict[str, Any]]], m: str) -> List[Dict[str, Any]]:
    """The ablation rows' runs on map ``m``: labels ``<agent>/tap`` and ``<agent>/notap``, and, for an
    agent without a ``tap`` variant, its plain ``lif`` / ``grsn`` runs of a Table 2 record (the
    default ``tap=True``), so the TAP rows need not be trained twice. Every run must have the same
    ``t_max``: the table compares settings at one budget."""
    picked: Dict[Tuple[str, bool], Dict[int, Dict[str, Any]]] = {}
    for (mm, label), cell in runs.items():
        agent, _, var = label.partition("/")
        if mm == m and var in ("tap", "notap"):
            picked[(agent, var == "tap")] = cell
    for (mm, label), cell in runs.items():
        plain = {s: r for s, r in cell.items() if not overrides_tap(r.get("with_args", []))}
        if mm == m and label in ("lif", "grsn") and (label, True) not in picked and plain:
            picked[(label, True)] = plain
    budgets = {(agent, tap, r.get("t_max")) for (agent, tap), cell in picked.items() for r in cell.values()}
    if len({b[2] for b in budgets}) > 1:
        raise ValueError(f"Table 3 on {m} mixes budgets (agent, tap, t_max): {sorted(budgets, key=str)}; "
                         f"give records of one t_max")
    return [{"agent": agent, "tap": tap, "seed": r["seed"],
             "test_return": r["test_return_mean"][-1], "test_won": r["test_battle_won_mean"][-1],
             "test_ep_length": (r.get("test_ep_length_mean") or [None])[-1], "t_max": r.get("t_max"),
             "status": r.get("status"), "train_wall_s": r.get("wall_time_s"), "process_wall_s": r.get("wall_time_s"),
             "t_reached": (r.get("T") or [None])[-1],
             "test_won_last": last_tests_win(r)}
            for (agent, tap), cell in sorted(picked.items()) for r in cell.values()]


def cmd_table3(a: argparse.Namespace) -> int:
    """marl_learning runs labelled ``<agent>/tap`` and ``<agent>/notap`` (or plain Table 2 runs as the
    TAP rows, see ``table3_runs``) -> ablation.py's rows."""
    import ablation

    runs = collect_runs(load_records(a.inputs))
    m = a.map or sorted({mm for mm, _ in runs})[0]
    abl = table3_runs(runs, m)
    if not any(not r["tap"] for r in abl):
        raise ValueError(f"no runs labelled <agent>/notap on {m} in {a.inputs}: run marl_learning.py "
                         f"--agents lif,grsn --variant notap tap=False (TAP rows: --variant tap tap=True, or "
                         f"give the Table 2 record of {m} too)")
    finished, unfinished = split_finished(abl)  # rows count finished runs only
    if not finished:
        raise ValueError(f"no finished Table 3 run on {m} in {a.inputs} yet ({len(unfinished)} unfinished)")
    rows = ablation.aggregate(finished, a.snn_T, None, marl=True)
    for row in rows:  # the mean of each run's last LAST_TESTS tests smooths one test's binomial noise
        lasts = [r["test_won_last"] for r in finished if (r["agent"], r["tap"]) == (row["agent"], row["tap"])]
        row["win_rate_last_pct"], row["win_rate_last_std_pct"] = _ms(lasts, 100)
    left_out = ", ".join(f"{r['agent']} {'TAP' if r['tap'] else 'no-TAP'} seed {r['seed']} at "
                         f"{r['t_reached'] or 0:,} steps" for r in unfinished)
    lines = [f"Ablation on SMAX {m}, {abl[0]['t_max'] or '?'} env steps per run (seeds: {sorted({r['seed'] for r in abl})}"
             f"{f'; unfinished runs left out, provisional: {left_out}' if unfinished else ''}); paper: SMAC 8m, "
             f"10M steps, 5 seeds.",
             "", "| measure | " + " | ".join(r["setting"] for r in rows) + " |", "|---|" + "---|" * len(rows)]
    for name, key, fmt in (("mean test reward", "mean_reward", ".2f"), ("std over seeds", "std_reward", ".2f"),
                           ("test win rate (%)", "win_rate_pct", ".1f"),
                           (f"last {LAST_TESTS} tests win rate (%)", "win_rate_last_pct", ".1f"),
                           (f"last {LAST_TESTS} tests: std over seeds", "win_rate_last_std_pct", ".1f"),
                           ("total neuron time steps per episode", "time_steps_per_episode", ".1f"),
                           ("training wall time (h)", "train_time_h", ".2f"), ("seeds", "seeds", "d")):
        lines.append(f"| {name} | " + " | ".join(_f(r[key], fmt) for r in rows) + " |")
    lines.append("| paper (SMAC 8m): reward / std / win % / time steps / hours | " + " | ".join(
        " / ".join(str(v) for v in PAPER_T3[(r["agent"], r["tap"])]) for r in rows) + " |")
    write_report(a.out, a.tag, {"inputs": list(a.inputs), "map": m, "rows": rows, "runs": abl,
                                "paper": {f"{k[0]}_{'tap' if k[1] else 'notap'}": v for k, v in PAPER_T3.items()}},
                 "\n".join(lines))
    return 0


def cmd_firing(a: argparse.Namespace) -> int:
    """spike_rate_mean at each test (mean over seeds on the common test steps) per spiking row, from
    finished runs only (an unfinished run would cut every seed's series to its length; it is named
    and left out). The JSON keeps every test; the markdown shows the tests nearest to ``--at``
    (all tests when it is not given)."""
    runs = collect_runs(load_records(a.inputs))
    out, lines = {}, ["Firing rate (spike_rate_mean, spikes per neuron per step at the test episodes) over "
                      "training, mean over seeds, and the test win rate"
                      + (" at the tests nearest to the steps asked for (every test: the JSON)." if a.at else "."), ""]
    for (m, label), cell in sorted(runs.items()):
        rs, left_out = split_finished([r for r in cell.values() if r.get("spike_rate_mean")])
        if not rs:
            continue
        n = min(len(r["spike_rate_mean"]) for r in rs)
        steps = rs[0]["spike_rate_mean_T"][:n]
        rate = np.mean([r["spike_rate_mean"][:n] for r in rs], axis=0)
        wins = [r["test_battle_won_mean"][:n] for r in rs if len(r["test_battle_won_mean"]) >= n]
        win = np.mean(wins, axis=0) if wins else [float("nan")] * n
        out[f"{m}/{label}"] = {"T": steps, "spike_rate_mean": rate.tolist(), "test_win": list(map(float, win)),
                               "n_seeds": len(rs), "seeds": sorted(r["seed"] for r in rs),
                               "unfinished_seeds": sorted(r["seed"] for r in left_out)}
        shown = sorted({int(np.argmin([abs(t - x) for t in steps])) for x in a.at}) if a.at else range(n)
        unfinished = (f"; unfinished, left out: seed{'s' if len(left_out) > 1 else ''} "
                      f"{', '.join(str(r['seed']) for r in left_out)}") if left_out else ""
        lines += [f"{m} {label} (n={len(rs)}{unfinished}):", "",
                  "| env steps | " + " | ".join(f"{steps[k]:,}" for k in shown) + " |",
                  "|---|" + "---|" * len(shown),
                  "| firing rate | " + " | ".join(f"{rate[k]:.3f}" for k in shown) + " |",
                  "| test win % | " + " | ".join(f"{100 * win[k]:.1f}" for k in shown) + " |", ""]
    plots = [] if a.no_plots else plot_maps(runs, os.path.join(a.out, f"{a.tag}_plots"), ("win_rate", "spike_rate"))
    write_report(a.out, a.tag, {"inputs": list(a.inputs), "at": list(a.at), "rows": out, "plots": plots},
                 "\n".join(lines))
    return 0


# --------------------------------------------------------------------------- resume check
WALL_CLOCK = ("elapsed_s", "wall_time_s")


def compare_experiments(straight: Any, joined: Any) -> Dict[str, Any]:
    """Every logged series of two runs, wall-clock series aside: which keys differ (steps or values)."""
    keys = sorted((set(straight.curves) | set(joined.curves)) - set(WALL_CLOCK))
    differ = []
    for k in keys:
        (sa, va), (sb, vb) = straight.curves.get(k, ([], [])), joined.curves.get(k, ([], []))
        if list(sa) != list(sb) or list(va) != list(vb):
            differ.append(k)
    return {"keys_compared": keys, "keys_differing": differ,
            "test_points": len(straight.curves.get("test_battle_won_mean", ([], []))[0])}


def cmd_resume_check(a: argparse.Namespace) -> int:
    """A straight run and the same run stopped by ``--deadline-s`` then ``--resume``d must log the same."""
    import shutil

    import marl_learning
    from utils.checkpoint import find_checkpoint

    work = os.path.abspath(a.work)
    shutil.rmtree(work, ignore_errors=True)
    common = ["--agents", "rnn", "--maps", a.map, "--seeds", "1", "--t-max", str(a.t_max), "--test-interval",
              str(a.test_interval), "--parallel", "1", "--work", work, "--out", os.path.join(work, "records")]
    with_ = ["with", "torch_threads=1", "batch_size=8", "buffer_size=64", "test_nepisode=8"]
    t0 = time.time()
    marl_learning.main(common + ["--tag", "straight"] + with_)
    process_s = time.time() - t0
    straight = marl_learning.read_experiment(os.path.join(work, "straight", f"{a.map}_rnn_s1"))
    train_s = float(straight.curves["wall_time_s"][1][-1])
    # the deadline aims at the middle of training (start-up and compilation come first); the load of
    # the machine moves both, so a deadline that finds the run done comes earlier, one that hits it
    # before anything was saved later
    deadline, stops = max(process_s - train_s / 2, 1.0), []
    root = os.path.join(work, "parts", f"{a.map}_rnn_s1")
    for _ in range(a.attempts):
        shutil.rmtree(os.path.join(work, "parts"), ignore_errors=True)
        marl_learning.main(common + ["--tag", "parts", "--resume", "--deadline-s", f"{deadline:.0f}"] + with_)
        exp = marl_learning.read_experiment(root)
        step = marl_learning.resumable(marl_learning.model_dir_of(exp.segments[-1])) if exp else None
        stops.append({"deadline_s": round(deadline), "status": exp.status if exp else None,
                      "checkpoint_t_env": find_checkpoint(step)[1] if step else None})
        if step and exp.status != "COMPLETED":
            break
        deadline += (-1 if exp is not None and exp.status == "COMPLETED" else 1) * train_s / 4
    else:
        raise ValueError(f"no attempt stopped the run mid-training ({stops}); raise --t-max or --attempts")
    marl_learning.main(common + ["--tag", "parts", "--resume"] + with_)
    joined = marl_learning.read_experiment(root)
    out = dict(compare_experiments(straight, joined), map=a.map, t_max=a.t_max, stops=stops,
               straight_process_s=process_s, straight_training_s=train_s,
               segments=len(joined.segments), status=joined.status,
               final_t_env=int(joined.curves["test_battle_won_mean"][0][-1]),
               straight_final_t_env=int(straight.curves["test_battle_won_mean"][0][-1]))
    ok = not out["keys_differing"] and out["status"] == "COMPLETED" and out["segments"] >= 2
    out["identical"] = ok
    lines = [f"Resume check on SMAX {a.map} (rnn, seed 1, t_max {a.t_max}, batch_size=8 buffer_size=64 "
             f"test_nepisode=8): a straight run vs the same command stopped by --deadline-s and given again "
             f"with --resume.", "",
             "| deadline (s) | status after it | checkpoint t_env with replay |", "|---|---|---|"]
    lines += [f"| {s['deadline_s']:g} | {s['status']} | {s['checkpoint_t_env'] or '-'} |" for s in stops]
    lines += ["", f"Joined run: {out['segments']} segments, {out['status']}, final test at t_env {out['final_t_env']} "
              f"(straight: {out['straight_final_t_env']}); {len(out['keys_compared'])} logged series compared "
              f"({out['test_points']} test points), wall-clock series aside; differing: "
              f"{', '.join(out['keys_differing']) or 'none'}. Identical: {ok}."]
    write_report(a.out, a.tag, out, "\n".join(lines))
    return 0 if ok else 1


# --------------------------------------------------------------------------- plan
def training_rate(run: Dict[str, Any]) -> Optional[float]:
    """Training s per 10k env steps: slope of ``elapsed_s`` over the second half of the run's
    tests (after the replay has filled and updates run every iteration)."""
    t, e = run.get("elapsed_s_T") or [], run.get("elapsed_s") or []
    if len(t) < 3:
        return None
    k = len(t) // 2
    return 1e4 * (e[-1] - e[k]) / (t[-1] - t[k]) if t[-1] > t[k] else None


def measured_rates(sources: Sequence[str]) -> Dict[Tuple[str, str], List[float]]:
    """``{(map, label): [training s per 10k env steps per run]}`` from marl_learning records
    (JSON files, globs allowed; label = agent or ``agent/variant``, e.g. ``lif/notap``) or sacred
    folders (runs joined across resumes; label = agent)."""
    import results

    rates: Dict[Tuple[str, str], List[float]] = {}
    files = [s for s in sources if not os.path.isdir(s)]
    for rec in (load_records(files) if files else []):
        for key, g in rec.get("groups", {}).items():
            m, label = key.split("/", 1)
            per_run = [v for v in (training_rate(c) for c in g.get("curves", [])) if v is not None]
            if not per_run and g.get("wall_time_s_mean") and g.get("final_T"):
                # records made before elapsed_s curves were stored: whole-run wall time per env step
                per_run = [1e4 * g["wall_time_s_mean"] / float(np.mean(g["final_T"]))]
            rates.setdefault((m, label), []).extend(per_run)
    for root in (s for s in sources if os.path.isdir(s)):
        for exp in results.join_resumed([r for r in results.load_runs([root]) if not r.evaluate_only]):
            steps, values = exp.curves.get("elapsed_s", ([], []))
            v = training_rate({"elapsed_s_T": list(steps), "elapsed_s": list(values)})
            if v is not None:
                rates.setdefault((exp.first.scenario, str(exp.config.get("agent"))), []).append(v)
    return rates


def part_commands(budgets: Dict[str, int], seeds: str, deadline_s: int, sizes: str, ablation_map: str,
                  thr_map: str) -> List[Dict[str, Any]]:
    """The grid's commands: one per Table 2 map, Table 3 and the threshold row; each is given again
    (``--resume``) in the next session until it prints every run as reuse."""
    base = (f"python benchmarks/marl_learning.py --seeds {seeds} --parallel 2 --resume --deadline-s {deadline_s} "
            f"--stop-grace-s 600 "
            f"--test-interval 20000" + (f" --buffer-sizes {sizes}" if sizes else ""))
    with_ = "with torch_threads=1 env_args.jax_cache_dir=results/jax_cache"
    parts = [{"name": f"table2_{m}", "map": m, "agents": TABLE2_AGENTS, "labels": TABLE2_AGENTS, "t_max": t,
              "cmd": f"{base} --agents rnn,grsn,lif --maps {m} --t-max {t} --tag grid_t2_{m} {with_}"}
             for m, t in budgets.items()]
    t = budgets.get(ablation_map, 1000000)
    # on a Table 2 map the TAP rows are table2_<map>'s lif and grsn runs (same budget, tap=True)
    variants = ["notap tap=False"] if ablation_map in budgets else ["tap tap=True", "notap tap=False"]
    parts.append({"name": f"table3_{ablation_map}", "map": ablation_map,
                  "agents": [ag for ag in ("lif", "grsn") for _ in variants],
                  "labels": [f"{ag}/{v.split()[0]}" for ag in ("lif", "grsn") for v in variants], "t_max": t,
                  "cmd": f"{base} --agents lif,grsn --maps {ablation_map} --t-max {t} --tag grid_t3_{ablation_map} "
                         + " ".join(f"--variant {v}" for v in variants) + f" {with_}"})
    t = budgets.get(thr_map, 1000000)
    parts.append({"name": f"threshold_{thr_map}", "map": thr_map, "agents": ["grsn"], "labels": ["grsn/thr0.1"],
                  "t_max": t,
                  "cmd": f"{base} --agents grsn --maps {thr_map} --t-max {t} --tag grid_thr_{thr_map} "
                         f"--variant thr0.1 snn_threshold=0.1 {with_}"})
    return parts


def cmd_plan(a: argparse.Namespace) -> int:
    budgets = {kv.split("=")[0]: int(kv.split("=")[1]) for kv in a.budgets.split(",")}
    rates = measured_rates(a.rates)
    n_seeds = len(a.seeds.split(","))
    parts = part_commands(budgets, a.seeds, a.deadline_s, a.buffer_sizes, a.ablation_map, a.threshold_map)
    lines = [f"Grid parts: give each command again in every session (it resumes) until all its runs are reused. "
             f"Hours from training s per 10k env steps (elapsed_s, tests included; median over runs) measured in "
             f"{a.rates or 'no file'}, 2 runs in parallel, sessions of {a.deadline_s / 3600:.2f} h; ~ = a variant "
             f"not measured yet, rated as its agent's plain runs.", "",
             "| part | runs | env steps per run | s per 10k steps (measured) | h per run | sessions | command |",
             "|---|---|---|---|---|---|---|"]
    for part in parts:
        labels = part["labels"]
        # a variant's own measured rate, else its agent's plain rate (marked ~: e.g. a no-TAP run
        # does snn_T neuron steps per decision, so the plain rate underestimates it)
        per, borrowed = {}, set()
        for lb in labels:
            if (part["map"], lb) in rates:
                per[lb] = float(np.median(rates[(part["map"], lb)]))
            elif (part["map"], lb.split("/")[0]) in rates:
                per[lb] = float(np.median(rates[(part["map"], lb.split("/")[0])]))
                borrowed.add(lb)
        hours = {lb: v * part["t_max"] / 1e4 / 3600 for lb, v in per.items()}
        part.update(s_per_10k=per, h_per_run=hours, borrowed_rates=sorted(borrowed), sessions=None)
        if len(per) == len(labels):  # every run measured: run-hours / 2 in parallel / session length
            total = sum(hours.values()) * n_seeds / 2
            part["sessions"] = int(np.ceil(total / (a.deadline_s / 3600)))
        mark = {lb: "~" if lb in borrowed else "" for lb in labels}
        cells = (" / ".join(f"{lb} {mark[lb]}{per[lb]:.0f}" if lb in per else f"{lb} -" for lb in labels) + " | "
                 + " / ".join(f"{lb} {mark[lb]}{hours[lb]:.1f}" if lb in hours else f"{lb} -" for lb in labels)
                 + " | " + ("-" if part["sessions"] is None else str(part["sessions"])))
        runs = len(part["agents"]) * n_seeds
        lines.append(f"| {part['name']} | {runs} | {part['t_max']:,} | {cells} | `{part['cmd']}` |")
    write_report(a.out, a.tag, {"budgets": budgets, "rates_from": a.rates, "parts": parts}, "\n".join(lines))
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="what", required=True)
    mem = sub.add_parser("memory", help="replay memory per map and the buffer_size that fits")
    mem.add_argument("--maps", default=",".join(TABLE2_MAPS))
    mem.add_argument("--replay-gib", type=float, default=6.0, help="GiB of replay per run (two runs in parallel)")
    mem.add_argument("--tag", default="grid_memory")
    plan = sub.add_parser("plan", help="the grid's part commands with expected wall time")
    plan.add_argument("--budgets", default="3m=2000000,2s3z=2000000,3s_vs_5z=2000000,8m=1000000,"
                                          "8m_vs_9m=1000000,MMM2=1000000", help="MAP=env steps per run")
    plan.add_argument("--seeds", default="1,2,3")
    plan.add_argument("--deadline-s", type=int, default=9000, help="seconds per session part (stop and save after)")
    plan.add_argument("--buffer-sizes", default="MMM2=2400", help="as marl_learning.py --buffer-sizes")
    plan.add_argument("--ablation-map", default="3m",
                      help="map of Table 3; a map with a Table 2 budget reuses its lif/grsn runs as the TAP rows")
    plan.add_argument("--threshold-map", default="3m")
    plan.add_argument("--rates", nargs="*", default=[],
                      help="marl_learning records (globs) or sacred folders whose runs give s per 10k env steps")
    plan.add_argument("--tag", default="grid_plan")
    chk = sub.add_parser("resume-check", help="straight run vs deadline-stopped + resumed run (~5 min)")
    chk.add_argument("--map", default="3m")
    chk.add_argument("--t-max", type=int, default=60000)
    chk.add_argument("--test-interval", type=int, default=2000)
    chk.add_argument("--attempts", type=int, default=4, help="tries to stop the run mid-training")
    chk.add_argument("--work", default=os.path.join(ROOT, "results", "bench", "grid_resume_check"))
    chk.add_argument("--tag", default="grid_resume_check")
    for name in ("table2", "table3", "firing"):
        q = sub.add_parser(name)
        q.add_argument("--inputs", nargs="+", required=True, help="marl_learning records (globs allowed)")
        q.add_argument("--tag", default=f"grid_{name}")
        q.add_argument("--no-plots", action="store_true")
        if name == "firing":
            q.add_argument("--at", type=int, nargs="*", default=[],
                           help="env steps: the markdown shows the test nearest to each (the JSON keeps all)")
        if name == "table2":
            q.add_argument("--energy-seed", type=int, default=1)
            q.add_argument("--seeds-planned", type=int, default=SEEDS_PLANNED,
                           help="verdicts with fewer seeds per agent are marked provisional")
        if name == "table3":
            q.add_argument("--map", default="")
            q.add_argument("--snn-T", type=int, default=4)
    for q in sub.choices.values():
        q.add_argument("--out", default=RESULTS)
    a = p.parse_args(argv)
    try:
        return {"memory": cmd_memory, "plan": cmd_plan, "table2": cmd_table2, "table3": cmd_table3,
                "firing": cmd_firing, "resume-check": cmd_resume_check}[a.what](a)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
