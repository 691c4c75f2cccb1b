"""smax_calibration: the scripted policies on hand-made observations, the observation layout, the
table and the page (numbers only from the record), and a tiny run of both fidelities (slow)."""
import json
import os
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
import smax_calibration as cal  # noqa: E402

N_FEAT = 13  # 7 + 6 unit-type bits (maps without medivac)


def obs_3v3(enemy_health, enemy_rel, own_cooldown=0.0, own_xy=(0.5, 0.5)):
    """One env, 3 allies (all see the same enemies) vs 3 enemies; obs [1, 3, 75]."""
    obs = np.zeros((1, 3, 5 * N_FEAT + 10), np.float32)
    for a in range(3):
        for k in range(3):
            off = (2 + k) * N_FEAT
            obs[0, a, off] = enemy_health[k]
            obs[0, a, off + 1:off + 3] = enemy_rel[k]
        obs[0, a, 5 * N_FEAT] = 1.0
        obs[0, a, 5 * N_FEAT + 1:5 * N_FEAT + 3] = own_xy
        obs[0, a, 5 * N_FEAT + 3] = own_cooldown
        obs[0, a, 5 * N_FEAT + 4] = 1.0  # marine
    return obs


def avail_3v3(attack):
    av = np.zeros((1, 3, 8), np.uint8)
    av[:, :, :5] = 1
    av[:, :, 5:] = np.array(attack, np.uint8)
    return av


def test_layout_splits_smax_unit_list():
    lay = cal.ObsLayout(75, 3, 3)
    assert (lay.bits, lay.n_feat, lay.own) == (6, 13, 65)
    with pytest.raises(ValueError, match="not SMAX's unit-list layout"):
        cal.ObsLayout(76, 3, 3)
    assert cal.ObsLayout(14 * 19 + 11, 10, 10).bits == 7  # MMM: 7 types with the medivac


def test_focus_hold_and_kite_choices():
    lay = cal.ObsLayout(75, 3, 3)
    rng = np.random.default_rng(0)
    obs = obs_3v3([1.0, 0.3, 0.6], [(0.4, 0.0), (0.5, 0.1), (0.2, 0.0)])
    av = avail_3v3([1, 1, 1])
    assert cal.policy_actions("focus", obs, av, lay, rng).tolist() == [[6, 6, 6]]   # the weakest: enemy 1
    assert cal.policy_actions("hold", obs, av, lay, rng).tolist() == [[7, 7, 7]]    # the closest: enemy 2
    none = avail_3v3([0, 0, 0])
    assert cal.policy_actions("focus", obs, none, lay, rng).tolist() == [[1, 1, 1]]  # advance east
    assert cal.policy_actions("hold", obs, none, lay, rng).tolist() == [[4, 4, 4]]   # never moves
    cooling = obs_3v3([1.0, 0.3, 0.6], [(0.4, 0.0), (0.5, 0.1), (0.2, 0.0)], own_cooldown=0.5)
    assert cal.policy_actions("kite", cooling, av, lay, rng).tolist() == [[3, 3, 3]]  # enemy 2 at 1.8 east: west
    ready = cal.policy_actions("kite", obs, av, lay, rng)
    assert ready.tolist() == [[6, 6, 6]]                                              # weapon ready: shoot
    at_wall = obs_3v3([1.0, 0.3, 0.6], [(0.4, 0.0), (0.5, 0.1), (0.2, 0.0)], own_cooldown=0.5, own_xy=(0.05, 0.5))
    assert cal.policy_actions("kite", at_wall, av, lay, rng)[0, 0] in (0, 2)         # along the wall
    rand = cal.policy_actions("random", obs, avail_3v3([0, 1, 0]), lay, rng)
    assert set(rand.ravel()) <= {0, 1, 2, 3, 4, 6}


def _record():
    rows = []
    for m, w in (("3m", [0.0, 0.5]), ("MMM2", [0.25, 0.125])):
        for f, win in zip(("jaxmarl", "sc2"), w):
            rows.append({"map": m, "fidelity": f, "policy": "focus", "episode_limit": 60 if f == "sc2" else 100,
                         "episodes": 8, "win_rate": win, "timeout_rate": 0.375, "draw_rate": 0.0,
                         "return_mean": 5.0, "length_mean": 31.0, "wall_s": 0.1, "build_s": 1.0})
    return {"config": {"maps": ["3m", "MMM2"], "fidelities": ["jaxmarl", "sc2"], "policies": ["focus"],
                       "episodes": 8, "seed": 3, "command": "python benchmarks/smax_calibration.py --x"},
            "smac_class": {"3m": "easy", "MMM2": "super hard"}, "rows": rows}


def test_table_and_page_take_every_number_from_the_record(tmp_path):
    rec = _record()
    t = cal.table(rec)
    assert "| 3m (easy) | 100/60 | 0.0 | 50.0 |" in t
    assert "| MMM2 (super hard) | 100/60 | 25.0 | 12.5 |" in t
    assert "| 3m (easy) | 38 / 31 | 38 / 31 |" in t
    page = tmp_path / "page.md"
    exploit = tmp_path / "exploit.json"
    exploit.write_text(json.dumps({"checkpoint": "results/models/x", "train": "t", "summary_keys": ["kite_rate"],
                                   "evaluations": {"sc2": {"episodes": 32, "win_rate": 0.40625, "return_mean": 9.5,
                                                           "length_mean": 44.0, "summary": {"kite_rate": 0.25}}},
                                   "description": "DESC"}))
    spot = tmp_path / "spot.json"
    spot.write_text(json.dumps({"sacred_runs": {"r3m": {"map": "3m", "fidelity": "sc2", "evaluate": False,
                                                        "test_nepisode": 32, "test_battle_won_mean_t_env": 200111,
                                                        "test_battle_won_mean": 0.75, "test_return_mean": 17.25,
                                                        "test_ep_length_mean": 30.5}}}))
    cal.write_page(rec, str(page), str(exploit), str(spot))
    text = page.read_text()
    assert "| r3m | 3m | sc2 | False | 32 | 200111 | 75.0 | 17.25 | 30.5 | - | - |" in text
    assert "| 3m (easy) | 100/60 | 0.0 | 50.0 |" in text and "seed 3" in text and "--x" in text
    assert "| sc2 | 32 | 40.6 | 9.50 | 44.0 | 0.25 |" in text and "DESC" in text
    cal.write_page(rec, str(page), str(tmp_path / "missing.json"), str(tmp_path / "missing_spot.json"))
    assert "smax_exploit_mmm2.json is missing" in page.read_text() and "spot checks" not in page.read_text()


@pytest.mark.slow
def test_tiny_run_of_both_fidelities(tmp_path, request):
    cache = str(request.config.cache.mkdir("smax_jax_cache"))
    out = tmp_path / "cal.json"
    cal.main(["--maps", "3m", "--episodes", "4", "--policies", "focus", "random", "--out", str(out),
              "--jax-cache", cache, "--page", str(tmp_path / "p.md")])
    rec = json.loads(out.read_text())
    assert len(rec["rows"]) == 4
    by = {(r["fidelity"], r["policy"]): r for r in rec["rows"]}
    assert by[("sc2", "focus")]["episode_limit"] == 60 and by[("jaxmarl", "focus")]["episode_limit"] == 100
    assert all(r["episodes"] == 4 and 0 <= r["win_rate"] <= 1 for r in rec["rows"])
    assert by[("jaxmarl", "random")]["win_rate"] == 0.0  # random play wins nothing on 3m
    assert (tmp_path / "p.md").exists()


def test_behaviour_summary_by_hand():
    # one env, two steps; allies 0, 1 and one enemy (unit 2)
    pos = np.array([[[(8, 16), (8, 18), (12, 16)]], [[(7, 16), (8, 18), (11, 16)]]], np.float32)
    avail = np.zeros((2, 1, 2, 6), np.uint8)
    avail[..., :5] = 1
    avail[..., 5] = 1
    trace = {"running": np.ones((2, 1), bool), "alive": np.ones((2, 1, 3), bool), "pos": pos,
             "types": np.zeros((2, 1, 3), np.int64), "avail": avail,
             "actions": np.array([[[3, 5]], [[5, 5]]])}   # t0: ally 0 steps west (away) while it could shoot
    s = cal._summarise(trace, 2, 16.0)
    assert s["kite_rate"] == pytest.approx(1 / 4)       # 1 move of 4 fighter steps with an attack available
    assert s["retreat_rate"] == pytest.approx(1 / 4)
    assert s["stop_rate"] == 0.0
    assert s["focus_ratio"] == pytest.approx(0.5)        # t1: two shooters, one target
    assert s["ally_advance"] == pytest.approx(-0.25)     # centre x 8 then 7.5, start 8
    assert s["enemy_advance"] == pytest.approx(0.5)      # enemy x 12 then 11, start 12
    assert s["enemy_spread"] == 0.0
    assert np.isnan(s["medivac_heal_rate"])
