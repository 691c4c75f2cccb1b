"""Dead ReLUs in the PO-control actors' heads: how many hidden units of each head layer are ever
active, and how many vary, on the states an actor visits, per stored checkpoint of po_table1's runs.

A head layer with no active unit on any state makes the actor's output a constant (the layers
after it see the same input every step): the policy no longer depends on the observation, and
no gradient reaches the layers before it to revive them. This explains a run that never learns
(e.g. a Table 1 cell far below the others).

For every model folder under ``--models`` (po_table1's ``--save-model`` folders,
``po_table1_<algo>_<run name>``) and every complete checkpoint step in it, the actor is loaded
from ``actor.pt`` with the run's own ``config.json`` and plays ``--episodes`` episodes of
uniform-random actions (env seeds 100, 101, ...; at most ``--max-steps`` steps each), its core
state threaded one step per env step as in acting. A unit is *active* when its ReLU output is
> 0 on at least one of those states, and *varying* when its output is not the same on all of
them (a unit fed by a dead layer is constant: active or not, it carries nothing); the actor's
output varies or not likewise.

    python benchmarks/po_head_units.py --models results/po_table1/models --tag po_head_units

Writes ``benchmarks/results/<tag>.json`` (every run and step: width, active and varying units
per head layer, whether the output varies) and ``<tag>.md`` (the table).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
from types import SimpleNamespace
from typing import Any, Dict, List, Optional, Sequence

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "src"))

import torch  # noqa: E402
from torch import nn  # noqa: E402

MODEL_NAME = re.compile(r"^po_table1_(?P<algo>[a-z0-9]+)_(?P<env>[A-Za-z]+-[A-Z])_(?P<core>[a-z]+)(?:_obsonly)?"
                        r"_seed(?P<seed>\d+)_t(?P<t_max>\d+)(?P<rest>.*)$")


VARY_TOL = 1e-6   # a unit whose output spans less than this over all states counts as constant


@torch.no_grad()
def active_units(actor: Any, env: Any, episodes: int, max_steps: int) -> Dict[str, Any]:
    """Over ``episodes`` uniform-random episodes of ``env`` (reset with seeds 100, 101, ...):
    ``{"layers": [{"width", "active", "varying"} per ReLU of actor.head, in order],
    "output_varies": bool, "states": states seen}`` (see the module docstring)."""
    relus = [m for m in actor.head if isinstance(m, nn.ReLU)]
    watched = relus + [actor.head[-1]]
    lo: List[Optional[torch.Tensor]] = [None] * len(watched)
    hi: List[Optional[torch.Tensor]] = [None] * len(watched)

    def keep(i: int):
        def hook(module: nn.Module, inputs: Any, out: torch.Tensor) -> None:
            flat = out.reshape(-1, out.shape[-1])
            low, high = flat.min(0).values, flat.max(0).values
            lo[i] = low if lo[i] is None else torch.minimum(lo[i], low)
            hi[i] = high if hi[i] is None else torch.maximum(hi[i], high)
        return hook

    from run.po_rl import prev_action_input

    handles = [m.register_forward_hook(keep(i)) for i, m in enumerate(watched)]
    n_states = 0
    try:
        for ep in range(int(episodes)):
            obs, _ = env.reset(seed=100 + ep)
            env.action_space.seed(100 + ep)
            state = actor.init_state(1)
            prev_a = torch.zeros(1, env.act_dim)
            prev_r = torch.zeros(1, 1)
            for _ in range(int(max_steps)):
                _, state = actor.step(torch.as_tensor(obs, dtype=torch.float32).unsqueeze(0), prev_a, prev_r, state)
                n_states += 1
                action = env.action_space.sample()
                obs, rew, terminated, truncated, _ = env.step(action)
                prev_a = prev_action_input(action, env.act_dim, env.discrete)
                prev_r = torch.full((1, 1), float(rew))
                if terminated or truncated:
                    break
    finally:
        for h in handles:
            h.remove()
    layers = [{"width": int(h.numel()), "active": int((h > 0).sum()), "varying": int((h - low > VARY_TOL).sum())}
              for low, h in zip(lo[:-1], hi[:-1])]
    return {"layers": layers, "output_varies": bool((hi[-1] - lo[-1] > VARY_TOL).any()), "states": n_states}


def inspect_model(model_dir: str, episodes: int, max_steps: int) -> List[Dict[str, Any]]:
    """``active_units`` of the actor at every complete checkpoint step of one run's model folder."""
    from run.po_rl import build, make_env
    from utils.checkpoint import incomplete_reason, load_checkpoint, saved_config

    out = []
    steps = sorted(int(d) for d in os.listdir(model_dir) if d.isdigit())
    for step in steps:
        step_dir = os.path.join(model_dir, str(step))
        if incomplete_reason(step_dir) is not None:
            continue
        args = SimpleNamespace(**saved_config(step_dir))
        env = make_env(args, int(args.seed))
        actor, _, _ = build(args, env, torch.device("cpu"))
        load_checkpoint(step_dir, {"actor": actor}, required=("actor",))
        out.append({"t_env": step, **active_units(actor, env, episodes, max_steps)})
        env.close()
    return out


def markdown(runs: Sequence[Dict[str, Any]], episodes: int, max_steps: int) -> str:
    lines = [f"Hidden units of the actor's head over the states of {episodes} random-action episodes (at most "
             f"{max_steps} steps each), per stored checkpoint: active = ReLU output > 0 on some state, varying = "
             f"output not the same on all states; output varies = the actor's output depends on the state.", "",
             "| run | env | core | seed | checkpoint step | states | head layer 1 active / varying / width | "
             "head layer 2 active / varying / width | output varies |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in runs:
        for s in r["steps"]:
            cells = [f"{layer['active']} / {layer['varying']} / {layer['width']}" for layer in s["layers"]]
            cells += ["-"] * (2 - len(cells))
            lines.append(f"| {r['model']} | {r['env']} | {r['core']} | {r['seed']} | {s['t_env']} | {s['states']} | "
                         + " | ".join(cells[:2]) + f" | {'yes' if s['output_varies'] else 'no'} |")
    return "\n".join(lines) + "\n"


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default=os.path.join(ROOT, "results", "po_table1", "models"))
    p.add_argument("--envs", default="", help="comma list of task keys to keep (default: all)")
    p.add_argument("--episodes", type=int, default=20)
    p.add_argument("--max-steps", type=int, default=50)
    p.add_argument("--tag", default="po_head_units")
    p.add_argument("--out-dir", default=os.path.join(ROOT, "benchmarks", "results"))
    a = p.parse_args(argv)
    if not os.path.isdir(a.models):
        raise SystemExit(f"--models {a.models} is not a folder: give po_table1's model folder "
                         f"(its --results-path + /models; runs saved with --save-model)")
    torch.set_num_threads(1)
    envs = {e for e in a.envs.split(",") if e}
    runs = []
    for name in sorted(os.listdir(a.models)):
        m = MODEL_NAME.match(name)
        if m is None or (envs and m["env"] not in envs):
            continue
        steps = inspect_model(os.path.join(a.models, name), a.episodes, a.max_steps)
        if steps:
            runs.append({"model": name, "env": m["env"], "core": m["core"], "seed": int(m["seed"]), "steps": steps})
            print(name, [(s["t_env"], [(layer["active"], layer["varying"]) for layer in s["layers"]],
                          s["output_varies"]) for s in steps], flush=True)
    os.makedirs(a.out_dir, exist_ok=True)
    with open(os.path.join(a.out_dir, f"{a.tag}.json"), "w") as f:
        json.dump({"models": a.models, "episodes": a.episodes, "max_steps": a.max_steps, "runs": runs}, f, indent=1)
    with open(os.path.join(a.out_dir, f"{a.tag}.md"), "w") as f:
        f.write(f"# {a.tag}\n\n" + markdown(runs, a.episodes, a.max_steps))
    return 0


if __name__ == "__main__":
    sys.exit(main())
