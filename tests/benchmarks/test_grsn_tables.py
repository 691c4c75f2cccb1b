"""GRSN Tables 2-4 from grid parts: replay memory per map, Table 2 cells, verdicts, plan rates."""
import json
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                                "benchmarks"))
import grsn_tables  # noqa: E402

SMAX_3M = {"n_agents": 3, "obs_shape": 75, "state_shape": 96, "n_actions": 8, "episode_limit": 100}
SMAX_MMM2 = {"n_agents": 10, "obs_shape": 305, "state_shape": 456, "n_actions": 17, "episode_limit": 180}


def test_replay_bytes_per_episode_by_hand():
    # obs 101*3*75*4 + state 101*96*4 + avail (uint8) 101*3*8 + actions (long) 100*3*8 + 3 x 100*4
    assert grsn_tables.episode_bytes(SMAX_3M) == 90900 + 38784 + 2424 + 2400 + 1200
    # MMM2: 181*10*305*4 + 181*456*4 + 181*10*17 + 180*10*8 + 3*180*4 = 2,585,674 bytes
    per = grsn_tables.episode_bytes(SMAX_MMM2)
    assert per == 2208200 + 330144 + 30770 + 14400 + 2160
    assert grsn_tables.buffer_size_for(per, 6.0) == 2400  # 6 GiB / 2,585,674 B = 2491.6 -> 2400
    assert grsn_tables.buffer_size_for(grsn_tables.episode_bytes(SMAX_3M), 6.0) == 5000  # capped at pymarl2's
    with pytest.raises(ValueError, match="raise --replay-gib"):
        grsn_tables.buffer_size_for(per, 0.1)
    row = grsn_tables.memory_rows({"MMM2": SMAX_MMM2}, 6.0)[0]
    assert row["gib_at_5000"] == pytest.approx(5000 * per / 2**30) and row["buffer_size"] == 2400


def run(seed, wins, status="COMPLETED", wall=3600.0, steps=(0, 100, 200, 300)):
    return {"seed": seed, "T": list(steps), "test_battle_won_mean": wins, "test_return_mean": [20 * w for w in wins],
            "status": status, "wall_time_s": wall}


def test_table2_cell_final_best_and_steps_to_levels():
    c = grsn_tables.table2_cell([run(1, [0.0, 0.6, 0.95, 0.9], wall=3600.0),
                                 run(2, [0.1, 0.4, 0.7, 0.5], wall=7200.0)])
    assert c["final_win_mean"] == pytest.approx(70.0) and c["final_win_std"] == pytest.approx(20.0)
    assert c["best_win_mean"] == pytest.approx(82.5) and c["best_win_std"] == pytest.approx(12.5)
    assert c["steps_to_50"] == [100, 200] and c["median_steps_to_50"] == 150.0
    assert c["steps_to_90"] == [200, None] and c["median_steps_to_90"] == 200.0
    assert c["wall_h_mean"] == pytest.approx(1.5) and c["final_return_mean"] == pytest.approx(14.0)
    # fewer than LAST_TESTS tests: the mean of all of them (61.25 and 42.5)
    assert c["last_win_mean"] == pytest.approx(51.875) and c["last_win_std"] == pytest.approx(9.375)


def test_table2_cell_last_tests_mean_reads_only_the_last_ten():
    wins = [0.0, 0.0] + [0.5] * 9 + [1.0]  # 12 tests: the first two are left out
    c = grsn_tables.table2_cell([run(1, wins, steps=tuple(range(0, 1200, 100)))])
    assert grsn_tables.LAST_TESTS == 10 and c["last_win_mean"] == pytest.approx(55.0)


def test_verdict_compares_final_win_rates_against_the_spread():
    cell = lambda m, s, u=0, n=3: {"final_win_mean": m, "final_win_std": s, "unfinished": u, "n": n}  # noqa: E731
    assert grsn_tables.verdict({"grsn": cell(90, 3), "rnn": cell(80, 4)}) == "GRSN above GRU (+10.0 points, std 4.0)"
    assert grsn_tables.verdict({"grsn": cell(78, 5), "rnn": cell(80, 4)}).startswith("GRSN level")
    assert grsn_tables.verdict({"grsn": cell(60, 5), "rnn": cell(80, 4)}).startswith("GRSN below")
    assert grsn_tables.verdict({"grsn": cell(90, 3, 1), "rnn": cell(80, 4)}) == "provisional (1 run unfinished)"
    assert grsn_tables.verdict({"rnn": cell(80, 4)}).startswith("incomplete")
    # LIF is compared too when it has runs; an unfinished LIF run makes the map provisional
    assert grsn_tables.verdict({"grsn": cell(90, 3), "rnn": cell(80, 4), "lif": cell(88, 1)}) == (
        "GRSN above GRU (+10.0 points, std 4.0); level with LIF (+2.0 points, within one std 3.0)")
    assert grsn_tables.verdict({"grsn": cell(90, 3), "rnn": cell(80, 4), "lif": cell(88, 1, 2)}) == (
        "provisional (2 runs unfinished)")


def test_verdict_with_fewer_seeds_than_planned_is_provisional():
    cell = lambda m, n: {"final_win_mean": m, "final_win_std": 0.0, "unfinished": 0, "n": n}  # noqa: E731
    one_seed = {"grsn": cell(87.5, 1), "rnn": cell(93.75, 1), "lif": cell(96.875, 1)}
    assert grsn_tables.verdict(one_seed) == ("provisional, 1 of 3 seeds: GRSN below GRU (-6.2 points, std 0.0); "
                                             "below LIF (-9.4 points, std 0.0)")
    assert grsn_tables.verdict(one_seed, seeds_planned=1).startswith("GRSN below GRU")


def test_training_rate_is_the_slope_of_the_second_half():
    r = {"elapsed_s_T": [0, 10000, 20000, 30000, 40000], "elapsed_s": [5.0, 50.0, 100.0, 160.0, 220.0]}
    assert grsn_tables.training_rate(r) == pytest.approx(1e4 * (220 - 100) / 20000)
    assert grsn_tables.training_rate({"elapsed_s_T": [0, 1], "elapsed_s": [0.0, 1.0]}) is None


def record(path, groups):
    path.write_text(json.dumps({"groups": groups}))
    return str(path)


def test_table2_from_parts_keeps_the_furthest_run_per_seed(tmp_path):
    def group(*runs):
        return {"curves": [{k: v for k, v in r.items() if k not in ("status", "wall_time_s")} for r in runs],
                "runs": [{"seed": r["seed"], "status": r["status"], "wall_time_s": r["wall_time_s"],
                          "segments": [], "model_dir": f"/m/{r['seed']}"} for r in runs]}
    early = run(1, [0.0, 0.2], status="INTERRUPTED", steps=(0, 100))
    record(tmp_path / "grid_t2_8m_a.json", {"8m/rnn": group(early)})
    os.utime(tmp_path / "grid_t2_8m_a.json", (1, 1))
    record(tmp_path / "grid_t2_8m_b.json", {"8m/rnn": group(run(1, [0.0, 0.2, 0.6, 0.8]), run(2, [0.0, 0.5, 1.0, 0.9])),
                                            "8m/grsn": group(run(1, [0.0, 0.3, 0.9, 1.0]), run(2, [0.0, 0.6, 1.0, 1.0]))})
    runs = grsn_tables.collect_runs(grsn_tables.load_records([str(tmp_path / "grid_t2_8m_*.json")]))
    assert runs[("8m", "rnn")][1]["T"][-1] == 300  # the later, longer record of seed 1
    out = tmp_path / "out"
    assert grsn_tables.main(["table2", "--inputs", str(tmp_path / "grid_t2_*.json"), "--out", str(out),
                             "--no-plots", "--tag", "t2"]) == 0
    md = (out / "t2.md").read_text()
    assert "| 8m | rnn | 2 | 300 | 85.0 ± 5.0 | 90.0 ± 10.0 | 50.0 ± 10.0 | 17.00 ± 1.00 | 150 (2/2) | 200 (1/2) |" in md
    assert "| 8m | grsn | 2 | 300 | 100.0 ± 0.0 |" in md and "99.4 ± 1.48" in md  # beside the paper's GRSN
    assert "- 8m: provisional, 2 of 3 seeds: GRSN above GRU (+15.0 points, std 5.0)" in md
    assert "--ckpt 8m:grsn=" in md and "--ckpt 8m:rnn=" in md
    assert grsn_tables.main(["table2", "--inputs", str(tmp_path / "none_*.json"), "--out", str(out)]) == 2


def curve(seed, wins, ep_len, wall, spikes=None, steps=(0, 100, 200)):
    c = {"seed": seed, "T": list(steps), "test_battle_won_mean": wins, "test_battle_won_mean_T": list(steps),
         "test_return_mean": [20 * w for w in wins], "test_ep_length_mean": [ep_len] * len(steps)}
    if spikes is not None:
        c.update(spike_rate_mean=spikes, spike_rate_mean_T=list(steps))
    return c, {"seed": seed, "status": "COMPLETED", "wall_time_s": wall, "segments": [], "model_dir": None}


def group(*pairs):
    return {"curves": [c for c, _ in pairs], "runs": [r for _, r in pairs]}


def test_table3_rows_from_tap_and_notap_variants(tmp_path):
    src = record(tmp_path / "t3.json", {
        "8m/lif/tap": group(curve(1, [0, .2, .5], 20.0, 3600.0), curve(2, [0, .2, .7], 30.0, 7200.0)),
        "8m/grsn/tap": group(curve(1, [0, .5, .9], 25.0, 3600.0)),
        "8m/lif/notap": group(curve(1, [0, .1, .4], 25.0, 7200.0)),
        "8m/grsn/notap": group(curve(1, [0, .3, .8], 25.0, 10800.0))})
    out = tmp_path / "out"
    assert grsn_tables.main(["table3", "--inputs", src, "--out", str(out), "--tag", "t3"]) == 0
    rows = {r["setting"]: r for r in json.loads((out / "t3.json").read_text())["rows"]}
    lif = rows["w/ TAP LIF"]
    assert lif["mean_reward"] == pytest.approx(12.0) and lif["std_reward"] == pytest.approx(2.0)
    assert lif["win_rate_pct"] == pytest.approx(60.0) and lif["train_time_h"] == pytest.approx(1.5)
    # reference episode length = mean over all runs (20, 30, 25, 25, 25) = 25; x4 without TAP
    assert lif["time_steps_per_episode"] == 25.0 and rows["w/o TAP GRSN"]["time_steps_per_episode"] == 100.0
    assert "| paper (SMAC 8m): reward / std / win % / time steps / hours | 15.3 / 1.59 / 50.4 / 26 / 12.91" in \
        (out / "t3.md").read_text()


def test_table3_leaves_unfinished_runs_out_of_the_rows_and_names_them(tmp_path):
    stopped = curve(2, [0, .9, .95], 25.0, 600.0, steps=(0, 100, 150))
    stopped[1]["status"] = "INTERRUPTED"
    src = record(tmp_path / "t3.json", {
        "8m/lif/tap": group(curve(1, [0, .2, .5], 20.0, 3600.0)), "8m/grsn/tap": group(curve(1, [0, .5, .9], 25.0, 3600.0)),
        "8m/lif/notap": group(curve(1, [0, .1, .4], 25.0, 7200.0)),
        "8m/grsn/notap": group(curve(1, [0, .3, .8], 25.0, 10800.0), stopped)})
    out = tmp_path / "out"
    assert grsn_tables.main(["table3", "--inputs", src, "--out", str(out), "--tag", "t3"]) == 0
    rows = {r["setting"]: r for r in json.loads((out / "t3.json").read_text())["rows"]}
    notap = rows["w/o TAP GRSN"]
    assert notap["seeds"] == 1 and notap["win_rate_pct"] == pytest.approx(80.0)  # seed 2's 95 % at 150 steps left out
    assert notap["train_time_h"] == pytest.approx(3.0)
    # last-10-tests mean: each run's 3 tests here; seed 1 of w/ TAP LIF: (0 + .2 + .5) / 3
    assert rows["w/ TAP LIF"]["win_rate_last_pct"] == pytest.approx(100 * 0.7 / 3)
    assert notap["win_rate_last_pct"] == pytest.approx(100 * 1.1 / 3) and notap["win_rate_last_std_pct"] == 0.0
    assert "unfinished runs left out, provisional: grsn no-TAP seed 2 at 150 steps" in (out / "t3.md").read_text()


def budget(pair, t_max):
    pair[1]["t_max"] = t_max
    return pair


def test_table3_takes_the_tap_rows_from_the_table2_record(tmp_path):
    t2 = tmp_path / "t2.json"
    t2.write_text(json.dumps({"config": {"with_args": ["with", "torch_threads=1"]}, "groups": {
        "3m/rnn": group(budget(curve(1, [0, .5, 1.], 20.0, 3600.0), 300)),
        "3m/lif": group(budget(curve(1, [0, .2, .5], 20.0, 3600.0), 300), budget(curve(2, [0, .2, .7], 30.0, 7200.0), 300)),
        "3m/grsn": group(budget(curve(1, [0, .5, .9], 25.0, 3600.0), 300))}}))
    t3 = tmp_path / "t3.json"
    t3.write_text(json.dumps({"config": {"with_args": ["with", "torch_threads=1"]}, "groups": {
        "3m/lif/notap": group(budget(curve(1, [0, .1, .4], 25.0, 7200.0), 300)),
        "3m/grsn/notap": group(budget(curve(1, [0, .3, .8], 25.0, 10800.0), 300))}}))
    out = tmp_path / "out"
    assert grsn_tables.main(["table3", "--inputs", str(t3), str(t2), "--out", str(out), "--tag", "t3"]) == 0
    res = json.loads((out / "t3.json").read_text())
    rows = {r["setting"]: r for r in res["rows"]}
    assert rows["w/ TAP LIF"]["seeds"] == 2 and rows["w/ TAP LIF"]["mean_reward"] == pytest.approx(12.0)
    assert rows["w/ TAP GRSN"]["win_rate_pct"] == pytest.approx(90.0)
    assert rows["w/o TAP LIF"]["win_rate_pct"] == pytest.approx(40.0)
    assert rows["w/o TAP GRSN"]["time_steps_per_episode"] == pytest.approx(4 * 25.0)  # (20+30+25+25+25)/5 x 4
    assert {r["agent"] for r in res["runs"]} == {"lif", "grsn"}  # the rnn runs are not ablation rows
    assert "SMAX 3m, 300 env steps per run" in (out / "t3.md").read_text()

    # a record whose overrides change tap or snn_T gives no TAP row; a different budget is refused
    t2.write_text(json.dumps({"config": {"with_args": ["with", "tap=False"]}, "groups": {
        "3m/lif": group(budget(curve(1, [0, .2, .5], 20.0, 3600.0), 300))}}))
    assert grsn_tables.main(["table3", "--inputs", str(t3), str(t2), "--out", str(out), "--tag", "t3"]) == 0
    assert {(r["agent"], r["tap"]) for r in json.loads((out / "t3.json").read_text())["runs"]} == \
        {("lif", False), ("grsn", False)}
    t2.write_text(json.dumps({"config": {"with_args": []}, "groups": {
        "3m/lif": group(budget(curve(1, [0, .2, .5], 20.0, 3600.0), 600))}}))
    with pytest.raises(ValueError, match="mixes budgets"):
        grsn_tables.table3_runs(grsn_tables.collect_runs(grsn_tables.load_records([str(t3), str(t2)])), "3m")
    assert grsn_tables.main(["table3", "--inputs", str(t2), "--out", str(out), "--tag", "t3"]) == 2  # no notap runs


def test_plan_trains_only_the_notap_rows_on_a_table2_map():
    parts = {p["name"]: p for p in grsn_tables.part_commands({"3m": 2000000, "8m": 1000000}, "1,2,3", 9000, "",
                                                             "3m", "3m")}
    assert "--variant notap tap=False" in parts["table3_3m"]["cmd"] and "tap=True" not in parts["table3_3m"]["cmd"]
    assert parts["table3_3m"]["agents"] == ["lif", "grsn"] and parts["table3_3m"]["t_max"] == 2000000
    assert "--variant thr0.1 snn_threshold=0.1" in parts["threshold_3m"]["cmd"]
    other = {p["name"]: p for p in grsn_tables.part_commands({"3m": 2000000}, "1", 9000, "", "8m", "8m")}
    assert "--variant tap tap=True --variant notap tap=False" in other["table3_8m"]["cmd"]
    assert other["table3_8m"]["t_max"] == 1000000


def test_firing_rates_over_training_and_plots_from_the_stored_curves(tmp_path):
    # no sacred folder anywhere (as on a new machine): the plots draw the curves the record holds
    a, b = curve(1, [0, .5, .9], 25.0, 1.0, spikes=[0.0, 0.1, 0.2]), curve(2, [0, .3, .7], 25.0, 1.0,
                                                                           spikes=[0.0, 0.3, 0.2])
    a[1]["segments"], b[1]["segments"] = [str(tmp_path / "gone" / "1")], [str(tmp_path / "gone" / "2")]
    src = record(tmp_path / "thr.json", {"8m/grsn": group(a, b), "8m/rnn": group(curve(1, [0, 1, 1], 20.0, 1.0))})
    out = tmp_path / "out"
    assert grsn_tables.main(["firing", "--inputs", src, "--out", str(out), "--tag", "fr"]) == 0
    data = json.loads((out / "fr.json").read_text())
    rows = data["rows"]
    assert list(rows) == ["8m/grsn"]  # rows without spike rates (the GRU) are left out
    assert rows["8m/grsn"]["spike_rate_mean"] == pytest.approx([0.0, 0.2, 0.2])
    assert rows["8m/grsn"]["test_win"] == pytest.approx([0.0, 0.4, 0.8])
    pngs = sorted(os.listdir(out / "fr_plots"))
    assert pngs == ["8m__spike_rate.png", "8m__win_rate.png"]
    assert all(not os.path.isabs(p["path"]) for p in data["plots"])  # portable: relative to the repository


def test_stored_experiments_carry_each_runs_curves_and_row_label():
    import results

    a = curve(1, [0, .5, .9], 25.0, 1.0)
    a[0]["test_battle_won_mean_T"] = [0, 150, 300]  # a key's own steps win over T
    runs = {("8m", "lif/notap"): {1: dict(a[0], **a[1], alg="qmix")}, ("8m", "lif"): {2: dict(curve(2, [0, 1, 1], 20.0, 1.0)[0])},
            ("8m", "rnn"): {1: dict(curve(1, [0, 1, 1], 20.0, 1.0)[0])}}
    exps = grsn_tables.stored_experiments(runs)
    assert [e.first.scenario for e in exps] == ["8m", "8m", "8m"]
    notap = next(e for e in exps if e.config["variant"] == "notap")
    steps, wins = notap.curves["test_battle_won_mean"]
    assert steps.tolist() == [0, 150, 300] and wins.tolist() == [0, .5, .9]
    assert notap.curves["test_return_mean"][0].tolist() == [0, 100, 200]
    labels = sorted(g["label"] for g in results.group_experiments(exps))
    assert labels == ["qmix lif variant=notap", "qmix lif variant=standard", "qmix rnn"]


def test_firing_uses_finished_runs_and_shows_the_tests_nearest_to_at(tmp_path):
    done_1 = curve(1, [0, .5, .9, 1.0], 25.0, 1.0, spikes=[0.0, 0.1, 0.2, 0.4], steps=(0, 100, 200, 300))
    done_2 = curve(2, [0, .3, .7, 0.8], 25.0, 1.0, spikes=[0.0, 0.3, 0.2, 0.2], steps=(0, 100, 200, 300))
    cut = curve(3, [0, .9], 25.0, 1.0, spikes=[0.5, 0.5], steps=(0, 100))
    cut[1]["status"] = "INTERRUPTED"
    src = record(tmp_path / "thr.json", {"8m/grsn/thr0.1": group(done_1, done_2, cut)})
    out = tmp_path / "out"
    assert grsn_tables.main(["firing", "--inputs", src, "--out", str(out), "--tag", "fr", "--no-plots",
                             "--at", "0", "190", "1000"]) == 0
    row = json.loads((out / "fr.json").read_text())["rows"]["8m/grsn/thr0.1"]
    # seed 3 (stopped at step 100) would cut the series to two tests and shift the means: left out
    assert row["seeds"] == [1, 2] and row["unfinished_seeds"] == [3]
    assert row["spike_rate_mean"] == pytest.approx([0.0, 0.2, 0.2, 0.3])
    md = (out / "fr.md").read_text()
    assert "8m grsn/thr0.1 (n=2; unfinished, left out: seed 3):" in md
    # the tests nearest to 0, 190 and 1000: steps 0, 200 and 300
    assert "| env steps | 0 | 200 | 300 |" in md
    assert "| firing rate | 0.000 | 0.200 | 0.300 |" in md and "| test win % | 0.0 | 80.0 | 90.0 |" in md


def test_resume_check_compares_every_series_but_wall_clock():
    import numpy as np
    import results

    def exp(**curves):
        return results.Experiment([], {k: (np.array(s, float), np.array(v, float)) for k, (s, v) in curves.items()})

    a = exp(test_battle_won_mean=([0, 10], [0.0, 0.5]), loss=([5], [1.0]), elapsed_s=([0, 10], [1.0, 2.0]))
    b = exp(test_battle_won_mean=([0, 10], [0.0, 0.5]), loss=([5], [1.0]), elapsed_s=([0, 10], [3.0, 9.0]))
    same = grsn_tables.compare_experiments(a, b)
    assert same["keys_compared"] == ["loss", "test_battle_won_mean"] and same["keys_differing"] == []
    assert same["test_points"] == 2
    c = exp(test_battle_won_mean=([0, 10], [0.0, 0.25]), elapsed_s=([0, 10], [1.0, 2.0]))
    assert grsn_tables.compare_experiments(a, c)["keys_differing"] == ["loss", "test_battle_won_mean"]


def test_plan_rates_a_variant_by_its_own_runs_else_by_its_agents_plain_runs(tmp_path):
    def rated(s_per_10k):  # elapsed_s grows by s_per_10k per 10k steps over the second half
        return {"elapsed_s_T": [0, 10000, 20000], "elapsed_s": [0.0, s_per_10k, 2 * s_per_10k]}
    src = record(tmp_path / "rates.json", {"3m/lif": {"curves": [rated(6.0)]}, "3m/grsn": {"curves": [rated(7.0)]},
                                           "3m/lif/notap": {"curves": [rated(9.0), rated(10.0)]}})
    assert grsn_tables.measured_rates([src])[("3m", "lif/notap")] == pytest.approx([9.0, 10.0])
    out = tmp_path / "out"
    assert grsn_tables.main(["plan", "--rates", src, "--budgets", "3m=2000000", "--seeds", "1,2,3",
                             "--out", str(out), "--tag", "p"]) == 0
    parts = {p["name"]: p for p in json.loads((out / "p.json").read_text())["parts"]}
    t3 = parts["table3_3m"]
    assert t3["s_per_10k"] == pytest.approx({"lif/notap": 9.5, "grsn/notap": 7.0})  # grsn/notap borrows grsn's
    assert t3["borrowed_rates"] == ["grsn/notap"]
    # 3 seeds x (9.5 + 7.0) s per 10k x 200 (2M steps) / 3600 / 2 in parallel = 1.375 h: one 2.5-h session
    assert t3["h_per_run"]["lif/notap"] == pytest.approx(9.5 * 200 / 3600) and t3["sessions"] == 1
    assert "grsn/notap ~7" in (out / "p.md").read_text()
    assert parts["table2_3m"]["s_per_10k"]["lif"] == pytest.approx(6.0)  # the plain runs keep their own rate
