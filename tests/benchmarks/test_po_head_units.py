"""po_head_units: dead ReLUs of a PO actor's head, counted on the states it visits."""
import json
import os
import sys
from types import SimpleNamespace

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                                "benchmarks"))
import po_head_units  # noqa: E402

from run.po_rl import build, make_env  # noqa: E402
from utils.checkpoint import save_checkpoint  # noqa: E402
from utils.config import build_config  # noqa: E402


def _actor(core="gru"):
    config = build_config("sacd", "pomdp", [f"agent={core}", "env_args.key=CartPole-P", "po_hidden_dim=16",
                                            "po_head_layers=[12,10]"])
    config["device"] = "cpu"
    args = SimpleNamespace(**config)
    env = make_env(args, 1)
    torch.manual_seed(0)
    actor, _, _ = build(args, env, torch.device("cpu"))
    return config, env, actor


def test_a_layer_killed_by_hand_counts_zero_active_units_and_a_fresh_one_does_not():
    _, env, actor = _actor()
    fresh = po_head_units.active_units(actor, env, episodes=3, max_steps=20)
    assert [layer["width"] for layer in fresh["layers"]] == [12, 10] and fresh["output_varies"]
    assert 3 <= fresh["states"] <= 60   # 3 episodes of at most 20 steps
    assert all(layer["active"] > 0 and layer["varying"] > 0 for layer in fresh["layers"])  # bias 0.1 at init
    with torch.no_grad():
        actor.head[2].weight.zero_()
        actor.head[2].bias.fill_(-1.0)                   # the second hidden layer: pre-activation -1 always
        actor.head[2].bias[3] = 0.5                      # except one unit, which is always on
    dead = po_head_units.active_units(actor, env, episodes=3, max_steps=20)
    assert dead["layers"][0] == fresh["layers"][0]
    assert dead["layers"][1] == {"width": 10, "active": 1, "varying": 0} and not dead["output_varies"]


def test_main_reports_every_complete_step_of_every_run(tmp_path):
    config, _, actor = _actor("lif")
    model = tmp_path / "models" / "po_table1_sacd_CartPole-P_lif_seed3_t11000_shortcut"
    save_checkpoint(str(model), 700, {"actor": actor}, config=config)
    with torch.no_grad():
        actor.head[0].bias.fill_(-100.0)                 # first hidden layer dead -> the second is constant
    save_checkpoint(str(model), 11000, {"actor": actor}, config=config)
    (model / "900").mkdir()                              # incomplete step folder: skipped
    assert po_head_units.main(["--models", str(tmp_path / "models"), "--episodes", "2", "--max-steps", "10",
                               "--out-dir", str(tmp_path), "--tag", "units"]) == 0
    run = json.load(open(tmp_path / "units.json"))["runs"][0]
    assert (run["env"], run["core"], run["seed"]) == ("CartPole-P", "lif", 3)
    assert [s["t_env"] for s in run["steps"]] == [700, 11000]
    assert run["steps"][0]["layers"][0]["varying"] > 0 and run["steps"][0]["output_varies"]
    late = run["steps"][1]
    assert [(layer["active"], layer["varying"]) for layer in late["layers"]] == [(0, 0), (10, 0)]
    assert not late["output_varies"]
    assert (f"| po_table1_sacd_CartPole-P_lif_seed3_t11000_shortcut | CartPole-P | lif | 3 | 11000 | {late['states']} | "
            "0 / 0 / 12 | "
            "10 / 0 / 10 | no |") in open(tmp_path / "units.md").read()
