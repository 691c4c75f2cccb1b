"""po_table1 --collect: runs from several result files, the largest budget per cell."""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                                "benchmarks"))
import po_table1  # noqa: E402


def _run(env, core, seed, t_max, final, obs_only=False, shortcut=True):
    """A stored run; ``shortcut=None`` = a record from before ``po_shortcut`` existed."""
    run = {"algo": po_table1.algo_for(env), "env": env, "core": core, "seed": seed, "t_max": t_max,
           "mlp_obs_only": obs_only, "final_return": final, "wall_time_s": 1.0, "error": None}
    if shortcut is not None:
        run["po_shortcut"] = shortcut
    return run


def test_collect_keeps_the_largest_budget_per_cell(tmp_path):
    small = [_run("CartPole-V", "gru", 1, 5000, 150.0), _run("CartPole-V", "mlp", 1, 5000, 200.0)]
    big = [_run("CartPole-V", "gru", 1, 11000, 200.0), _run("CartPole-V", "gru", 2, 11000, 190.0),
           _run("CartPole-V", "mlp", 1, 5000, 25.0, obs_only=True)]
    json.dump({"runs": small}, open(tmp_path / "po_table1_small.json", "w"))
    json.dump({"runs": big}, open(tmp_path / "po_table1_big.json", "w"))
    json.dump({"runs": [_run("CartPole-V", "lif", 1, 5000, 1.0)]}, open(tmp_path / "other.json", "w"))
    runs = po_table1.collect(str(tmp_path))
    cells = sorted((po_table1.cell_core(r), r["seed"], r["t_max"]) for r in runs)
    assert cells == [("gru", 1, 11000), ("gru", 2, 11000), ("mlp", 1, 5000), ("mlp (obs only)", 1, 5000)]
    table = po_table1.collected_markdown(runs)
    assert "| gru | 195.0 +- 5.0 (n=2, 11k) | 200.0 |" in table
    assert "| mlp (obs only) | 25.0 +- 0.0 (n=1, 5k) | 21.6 |" in table
    assert "lif" not in table.split("\n", 3)[-1]


def test_an_interrupted_grid_keeps_its_finished_runs(tmp_path, monkeypatch):
    calls = []

    def fake_run_one(job):
        if calls:
            raise KeyboardInterrupt  # the second run is cut short
        calls.append(job)
        return dict(_run(job["env"], job["core"], job["seed"], job["t_max"], 123.0), test_T=[0], test_return_mean=[1.0])

    monkeypatch.setattr(po_table1, "run_one", fake_run_one)
    argv = ["--envs", "CartPole-V", "--cores", "gru,grsn", "--seeds", "1", "--parallel", "1",
            "--results-path", str(tmp_path / "res"), "--out-dir", str(tmp_path), "--tag", "po_table1_cut"]
    try:
        po_table1.main(argv)
    except KeyboardInterrupt:
        pass
    record = json.load(open(tmp_path / "po_table1_cut.json"))
    assert not record["complete"] and (record["runs_finished"], record["runs_planned"]) == (1, 2)
    assert [r["core"] for r in record["runs"]] == ["gru"]
    assert "partial: 1 of 2 runs" in open(tmp_path / "po_table1_cut.md").read()
    assert [r["final_return"] for r in po_table1.collect(str(tmp_path))] == [123.0]
    # --resume reuses the finished run and completes the record
    monkeypatch.setattr(po_table1, "run_one", lambda job: dict(
        _run(job["env"], job["core"], job["seed"], job["t_max"], 77.0), test_T=[0], test_return_mean=[1.0]))
    assert po_table1.main(argv + ["--resume"]) == 0
    record = json.load(open(tmp_path / "po_table1_cut.json"))
    assert record["complete"] and sorted(r["final_return"] for r in record["runs"]) == [77.0, 123.0]


def test_training_overrides_make_their_own_row_and_run_file(tmp_path):
    standard = [_run("CartPole-V", "gru", 1, 11000, 40.0)]
    whole = [dict(_run("CartPole-V", "gru", 1, 11000, 200.0), variant=["sampled_seq_len=-1"])]
    json.dump({"overrides": ["test_interval=2000"], "runs": standard}, open(tmp_path / "po_table1_a.json", "w"))
    json.dump({"overrides": ["sampled_seq_len=-1"], "runs": whole}, open(tmp_path / "po_table1_b.json", "w"))
    # an older record: its runs carry no variant, the record's overrides say it
    old = [_run("CartPole-P", "gru", 1, 11000, 100.0)]
    json.dump({"overrides": ["sampled_seq_len=-1", "log_interval=500"], "runs": old},
              open(tmp_path / "po_table1_c.json", "w"))
    runs = po_table1.collect(str(tmp_path))
    assert sorted(po_table1.cell_core(r) for r in runs) == ["gru", "gru (sampled_seq_len=-1)",
                                                            "gru (sampled_seq_len=-1)"]
    table = po_table1.collected_markdown(runs)
    assert "| gru | 40.0 +- 0.0 (n=1, 11k) | 200.0 | - |" in table
    assert "| gru (sampled_seq_len=-1) | 200.0 +- 0.0 (n=1, 11k) | 200.0 | 100.0 +- 0.0 (n=1, 11k) |" in table
    job = {"env": "CartPole-V", "core": "gru", "seed": 1, "t_max": 11000}
    assert po_table1.run_name(dict(job, extra=["test_interval=500"])) == "CartPole-V_gru_seed1_t11000"
    assert po_table1.run_name(dict(job, extra=["sampled_seq_len=-1"])) == \
        "CartPole-V_gru_seed1_t11000_sampled_seq_len-m1"


def test_resume_does_not_reuse_a_standard_run_for_a_variant(tmp_path, monkeypatch):
    finals = iter([11.0, 22.0])
    seen = []

    def fake_run_one(job):
        seen.append(list(job["extra"]))
        run = _run(job["env"], job["core"], job["seed"], job["t_max"], next(finals))
        return dict(run, variant=po_table1.variant_of(job["extra"]), test_T=[0], test_return_mean=[1.0])

    monkeypatch.setattr(po_table1, "run_one", fake_run_one)
    argv = ["--envs", "CartPole-V", "--cores", "gru", "--seeds", "1", "--parallel", "1", "--resume",
            "--results-path", str(tmp_path / "res"), "--out-dir", str(tmp_path)]
    assert po_table1.main(argv + ["--tag", "po_table1_std"]) == 0
    assert po_table1.main(argv + ["--tag", "po_table1_var", "--set", "sampled_seq_len=-1"]) == 0
    assert seen == [[], ["sampled_seq_len=-1"]]  # the variant was trained, not taken from the standard run
    assert "Overrides: sampled_seq_len=-1." in open(tmp_path / "po_table1_var.md").read()
    finals_by_row = {po_table1.cell_core(r): r["final_return"] for r in po_table1.collect(str(tmp_path))}
    assert finals_by_row == {"gru": 11.0, "gru (sampled_seq_len=-1)": 22.0}


def test_runs_without_po_shortcut_are_no_shortcut_rows_and_files(tmp_path):
    old = [_run("Pendulum-V", "grsn", 1, 50000, -538.6, shortcut=None),
           dict(_run("CartPole-P", "gru", 1, 11000, 179.6, shortcut=None), variant=["sampled_seq_len=-1"])]
    new = [_run("Pendulum-V", "grsn", 1, 50000, -190.0), _run("Pendulum-V", "grsn", 2, 50000, -210.0),
           dict(_run("Pendulum-V", "gru", 1, 50000, -300.0, shortcut=False), variant=["po_shortcut=False"])]
    json.dump({"runs": old}, open(tmp_path / "po_table1_old.json", "w"))
    json.dump({"runs": new}, open(tmp_path / "po_table1_new.json", "w"))
    rows = sorted(po_table1.cell_core(r) for r in po_table1.collect(str(tmp_path)))
    assert rows == ["grsn", "grsn", "grsn (no shortcut)", "gru (no shortcut, sampled_seq_len=-1)",
                    "gru (po_shortcut=False)"]
    table = po_table1.collected_markdown(po_table1.collect(str(tmp_path)))
    assert "| grsn | - | 200.0 | - | 199.9 | -200.0 +- 10.0 (n=2, 50k) | -189.4 | - | -195.8 |" in table
    assert "| grsn (no shortcut) | - | 200.0 | - | 199.9 | -538.6 +- 0.0 (n=1, 50k) | -189.4 | - | -195.8 |" in table
    job = {"env": "Pendulum-V", "core": "grsn", "seed": 1, "t_max": 50000}
    assert po_table1.run_name(job) == "Pendulum-V_grsn_seed1_t50000"          # an old run's file
    assert po_table1.run_name(dict(job, po_shortcut=True)) == "Pendulum-V_grsn_seed1_t50000_shortcut"


def test_resume_does_not_reuse_an_old_no_shortcut_run(tmp_path, monkeypatch):
    res = tmp_path / "res" / "runs"
    res.mkdir(parents=True)
    old = dict(_run("CartPole-V", "gru", 1, 11000, 40.0, shortcut=None), variant=[])
    json.dump(old, open(res / "CartPole-V_gru_seed1_t11000.json", "w"))
    json.dump(old, open(res / "CartPole-V_gru_seed1_t11000_shortcut.json", "w"))  # mislabelled copy
    seen = []

    def fake_run_one(job):
        seen.append(job["po_shortcut"])
        return dict(_run(job["env"], job["core"], job["seed"], job["t_max"], 200.0), variant=[],
                    test_T=[0], test_return_mean=[1.0])

    monkeypatch.setattr(po_table1, "run_one", fake_run_one)
    argv = ["--envs", "CartPole-V", "--cores", "gru", "--seeds", "1", "--parallel", "1", "--resume",
            "--results-path", str(tmp_path / "res"), "--out-dir", str(tmp_path), "--tag", "po_table1_sc"]
    assert po_table1.main(argv) == 0
    assert seen == [True]  # the default networks have the shortcut; the stored run was not reused
    record = json.load(open(tmp_path / "po_table1_sc.json"))
    assert record["networks"]["sacd"] == {"po_shortcut": True, "po_head_init": "authors"}
    assert [r["final_return"] for r in record["runs"]] == [200.0]


def test_model_folders_differ_between_networks_and_variants():
    job = {"algo": "td3", "env": "Pendulum-P", "core": "grsn", "seed": 2, "t_max": 50000}
    tokens = {po_table1.model_token(dict(job, po_shortcut=True)), po_table1.model_token(dict(job)),
              po_table1.model_token(dict(job, po_shortcut=True, extra=["sampled_seq_len=-1"]))}
    assert po_table1.model_token(dict(job, po_shortcut=True)) == "po_table1_td3_Pendulum-P_grsn_seed2_t50000_shortcut"
    assert len(tokens) == 3


def test_resume_continues_an_interrupted_run_from_its_checkpoint(tmp_path, monkeypatch, capsys):
    from torch import nn

    from utils.checkpoint import save_checkpoint

    res = tmp_path / "res"
    job = {"algo": "sacd", "env": "CartPole-V", "core": "gru", "seed": 1, "t_max": 11000, "po_shortcut": True}
    grsn_dir = res / "models" / po_table1.model_token(dict(job, core="grsn"))
    save_checkpoint(str(res / "models" / po_table1.model_token(job)), 4000, {"actor": nn.Linear(2, 2)})
    (grsn_dir / "3000").mkdir(parents=True)  # an incomplete step folder (no manifest): start again
    seen = []

    def fake_run_one(j):
        seen.append((j["core"], j.get("resume_from", "")))
        return dict(_run(j["env"], j["core"], j["seed"], j["t_max"], 200.0), variant=[], test_T=[0],
                    test_return_mean=[1.0])

    monkeypatch.setattr(po_table1, "run_one", fake_run_one)
    argv = ["--envs", "CartPole-V", "--cores", "gru,grsn,lif", "--seeds", "1", "--parallel", "1",
            "--resume", "--results-path", str(res), "--out-dir", str(tmp_path), "--tag", "po_table1_r"]
    assert po_table1.main(argv + ["--dry-run"]) == 0 and seen == []   # plans only
    plans = [line for line in capsys.readouterr().out.splitlines() if line.startswith("CartPole-V_")]
    assert plans == ["CartPole-V_gru_seed1_t11000_shortcut: resume from step 4000",
                     "CartPole-V_grsn_seed1_t11000_shortcut: fresh", "CartPole-V_lif_seed1_t11000_shortcut: fresh"]
    assert po_table1.main(argv) == 0
    assert sorted(seen) == [("grsn", ""), ("gru", str(res / "models" / po_table1.model_token(job))), ("lif", "")]
    assert po_table1.main(argv[:-1] + ["po_table1_r2"]) == 0  # all finished now: nothing is rerun
    assert len(seen) == 3 and json.load(open(tmp_path / "po_table1_r2.json"))["runs_finished"] == 3


def test_a_resumed_run_reports_the_curve_and_wall_time_of_all_its_parts(tmp_path, monkeypatch):
    """The first part's test points (kept in progress.json up to the checkpoint's step) come before the
    resumed part's; points the first part logged after its checkpoint are dropped (logged again)."""
    import run.po_rl
    from torch import nn

    from utils.checkpoint import save_checkpoint

    job = {"algo": "sacd", "env": "CartPole-V", "core": "gru", "seed": 1, "t_max": 3000, "po_shortcut": True,
           "mlp_obs_only": False, "threads": 1, "save_model": True, "results_path": str(tmp_path),
           "device": "cpu", "extra": [], "config_dir": ""}
    model_dir = os.path.join(str(tmp_path), "models", po_table1.model_token(job))
    parts = {"first": [(0, 9.0), (1000, 50.0), (2000, 80.0)], "second": [(2000, 80.0), (3000, 120.0)]}

    def fake_run(args, logger, part):
        for t, v in parts[part]:
            logger.log_stat("test_return_mean", v, t)

    monkeypatch.setattr(run.po_rl, "run_po_rl", lambda args, logger: fake_run(args, logger, "first"))
    first = po_table1.run_one(job)
    assert first["test_T"] == [0, 1000, 2000]
    save_checkpoint(model_dir, 1000, {"actor": nn.Linear(2, 2)})   # the newest checkpoint: step 1000
    first_part_wall = json.load(open(os.path.join(model_dir, "progress.json")))["wall_s"]
    monkeypatch.setattr(run.po_rl, "run_po_rl", lambda args, logger: fake_run(args, logger, "second"))
    second = po_table1.run_one(dict(job, resume_from=model_dir))
    assert second["test_T"] == [0, 1000, 2000, 3000]
    assert second["test_return_mean"] == [9.0, 50.0, 80.0, 120.0]
    assert second["best_return"] == 120.0 and second["final_return"] == 120.0
    assert first_part_wall > 0 and second["wall_time_s"] > first_part_wall   # the first part's time included


TINY = ["--envs", "CartPole-V", "--cores", "mlp", "--seeds", "1", "--parallel", "1", "--cartpole-steps", "400",
        "--save-model", "--set", "test_interval=100", "test_nepisode=2", "po_batch_size=4", "sampled_seq_len=8",
        "po_hidden_dim=16", "po_init_random_episodes=1", "po_updates_per_step=0.1", "save_model_interval=100",
        "save_buffer=True"]


def test_a_deadline_stops_the_grid_with_a_checkpoint_and_resume_finishes_it_exactly(tmp_path, monkeypatch):
    """--deadline-s: the run going saves a last checkpoint and stops, no new run starts, the record
    says partial; the same command with --resume continues to a record equal to a straight run's."""
    def tiny(name):
        return TINY + ["--results-path", str(tmp_path / name), "--out-dir", str(tmp_path), "--tag", f"po_table1_{name}"]

    assert po_table1.main(tiny("straight")) == 0
    straight = json.load(open(tmp_path / "po_table1_straight.json"))["runs"][0]

    class PassedAfter(po_table1.StopAt):
        """The deadline passes once the run has logged 12 stats (mid-run, between checkpoints)."""
        logged = 0

        def passed(self):
            return self.at is not None and PassedAfter.logged >= 12

        def check(self):
            PassedAfter.logged += 1
            super().check()

    monkeypatch.setattr(po_table1, "StopAt", PassedAfter)
    assert po_table1.main(tiny("cut") + ["--deadline-s", "1000"]) == 0
    cut = json.load(open(tmp_path / "po_table1_cut.json"))
    assert not cut["complete"] and cut["runs_finished"] == 0
    models = tmp_path / "cut" / "models"
    steps = [int(d) for d in os.listdir(models / os.listdir(models)[0]) if d.isdigit()]
    assert steps and 0 < max(steps) < 400
    monkeypatch.undo()
    assert po_table1.main(tiny("cut") + ["--resume"]) == 0
    resumed = json.load(open(tmp_path / "po_table1_cut.json"))
    assert resumed["complete"] and resumed["runs"][0]["resumed_from"]
    for key in ("test_T", "test_return_mean", "final_return", "best_return"):
        assert resumed["runs"][0][key] == straight[key], key


def test_verdicts_compare_grsn_with_each_core_against_the_spread(tmp_path):
    runs = [_run("CartPole-P", "grsn", 1, 11000, 190.0), _run("CartPole-P", "grsn", 2, 11000, 170.0),  # 180 +- 10
            _run("CartPole-P", "gru", 1, 11000, 200.0), _run("CartPole-P", "gru", 2, 11000, 160.0),    # 180 +- 20
            _run("CartPole-P", "lif", 1, 11000, 140.0), _run("CartPole-P", "lif", 2, 11000, 150.0),    # 145 +- 5
            _run("CartPole-P", "mlp", 1, 11000, 200.0), _run("CartPole-P", "mlp", 2, 11000, 196.0),    # 198 +- 2
            _run("CartPole-P", "gru", 3, 11000, 10.0, shortcut=None)]  # a no-shortcut run is no part of it
    json.dump({"runs": runs}, open(tmp_path / "po_table1_v.json", "w"))
    found = po_table1.verdicts(po_table1.collect(str(tmp_path)), seeds_planned=2)
    v = found["CartPole-P"]
    assert not v["provisional"] and v["n"] == {"mlp": 2, "gru": 2, "lif": 2, "grsn": 2}
    assert v["grsn_vs"]["gru"] == {"verdict": "level", "diff": 0.0, "tol": 20.0}
    assert v["grsn_vs"]["lif"] == {"verdict": "above", "diff": 35.0, "tol": 10.0}
    assert v["grsn_vs"]["mlp"] == {"verdict": "below", "diff": -18.0, "tol": 10.0}
    assert list(found) == ["CartPole-P"]  # tasks without a GRSN run get no verdict
    line = po_table1.verdict_lines(found, seeds_planned=2)[0]
    assert line.startswith("- CartPole-P (seeds: mlp 2, gru 2, lif 2, grsn 2 of 2): GRSN level with GRU (+0.0, "
                           "std 20.0); above LIF (+35.0, std 10.0); below MLP (-18.0, std 10.0). Paper: GRSN 199.9")
    assert po_table1.verdicts(po_table1.collect(str(tmp_path)))["CartPole-P"]["provisional"]  # 2 of 5 seeds
    assert po_table1.main(["--collect", "--out-dir", str(tmp_path)]) == 0
    assert "GRSN level with GRU" in open(tmp_path / "po_table1_all.md").read()
    assert json.load(open(tmp_path / "po_table1_all.json"))["verdicts"]["CartPole-P"]["grsn_vs"]["lif"]["diff"] == 35.0


def test_a_new_machine_reuses_the_finished_runs_recorded_in_the_tag_file(tmp_path, monkeypatch):
    """Session 1 finished gru and was stopped in grsn; a new machine has no <results-path>/runs/:
    --resume reuses gru from po_table1_s.json, trains grsn only, and the record keeps both."""
    done = dict(_run("Pendulum-P", "gru", 2, 50000, -300.0), variant=[], po_head_init="authors",
                test_T=[0], test_return_mean=[1.0])
    other_init = dict(done, core="lif", po_head_init="torch")           # made with other networks
    json.dump({"runs": [done, other_init]}, open(tmp_path / "po_table1_s.json", "w"))
    seen = []

    def fake_run_one(job):
        seen.append(job["core"])
        return dict(_run(job["env"], job["core"], job["seed"], job["t_max"], -200.0), variant=[],
                    po_head_init=job["po_head_init"], test_T=[0], test_return_mean=[1.0])

    monkeypatch.setattr(po_table1, "run_one", fake_run_one)
    argv = ["--envs", "Pendulum-P", "--cores", "gru,lif,grsn", "--seeds", "2", "--parallel", "1",
            "--results-path", str(tmp_path / "new_machine"), "--out-dir", str(tmp_path), "--tag", "po_table1_s"]
    assert po_table1.main(argv + ["--resume", "--dry-run"]) == 0
    assert seen == []
    assert po_table1.main(argv + ["--resume"]) == 0
    assert seen == ["lif", "grsn"]
    record = json.load(open(tmp_path / "po_table1_s.json"))
    assert record["complete"] and sorted((r["core"], r["final_return"]) for r in record["runs"]) == [
        ("grsn", -200.0), ("gru", -300.0), ("lif", -200.0)]
    seen.clear()
    assert po_table1.main(argv) == 0 and seen == ["gru", "lif", "grsn"]   # without --resume all train again


def test_a_tag_file_run_without_variant_takes_its_files_overrides():
    """A run stored before variants were recorded per run belongs to its file's overrides: a
    whole-episode record is not reused for (nor keyed as) the standard cell."""
    import tempfile
    run = _run("CartPole-V", "gru", 1, 11000, 190.0)
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "po_table1_w.json")
        json.dump({"overrides": ["sampled_seq_len=-1"], "runs": [run]}, open(path, "w"))
        assert list(po_table1.tag_runs(path)) == ["CartPole-V_gru_seed1_t11000_shortcut_sampled_seq_len-m1"]
