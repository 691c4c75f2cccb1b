"""src/sweep.py: grid expansion, run identity, resume (skip COMPLETED), command construction,
and one end-to-end sweep on a local Ray instance with a stub main script."""
from __future__ import annotations

import json
import sys
import textwrap

import pytest

import sweep
from sweep import RunSpec, SweepError


def test_expand_grid_and_names():
    specs = sweep.expand_grid("qmix", "smax", ["rnn", "grsn"], ["3m", "8m"], [0, 1, 2], ["t_max=1000"])
    assert len(specs) == 12
    assert len({(s.agent, s.scenario, s.seed) for s in specs}) == 12
    assert [s.seed for s in specs[:4]] == [0, 0, 0, 0]  # seed-major order
    assert {s.name for s in specs} == {f"qmix_rnn_{specs[0].setting_hash}", f"qmix_grsn_{specs[0].setting_hash}"}
    assert all(s.scenario_key == "env_args.map_name" for s in specs)
    ctrl = sweep.expand_grid("td3", "pomdp", ["grsn"], ["Pendulum-P"], [0])
    assert ctrl[0].scenario_key == "env_args.key"


def test_setting_hash_identity():
    a = RunSpec("qmix", "smax", "rnn", "3m", 0, ("t_max=10", "lr=0.1"))
    assert a.setting_hash == RunSpec("qmix", "smax", "grsn", "8m", 4, ("lr=0.1", "t_max=10")).setting_hash
    assert a.setting_hash != RunSpec("qmix", "smax", "rnn", "3m", 0, ("t_max=11", "lr=0.1")).setting_hash
    assert a.setting_hash != RunSpec("vdn", "smax", "rnn", "3m", 0, ("t_max=10", "lr=0.1")).setting_hash
    assert a.setting_hash != RunSpec("qmix", "sc2", "rnn", "3m", 0, ("t_max=10", "lr=0.1")).setting_hash
    # the results path is plumbing, not part of the experiment's identity
    b = RunSpec("qmix", "smax", "rnn", "3m", 0, ("t_max=10", "lr=0.1"), plumbing=("local_results_path=/x",))
    assert b.name == a.name


def test_command_construction():
    spec = sweep.expand_grid("qmix", "sc2", ["grsn"], ["8m"], [3], ["t_max=5000", "env_args.difficulty=7"])[0]
    cmd = spec.command(python="PY", main="src/main.py")
    assert cmd == ["PY", "src/main.py", "--config=qmix", "--env-config=sc2", "with", "agent=grsn",
                   "env_args.map_name=8m", "seed=3", f"name=qmix_grsn_{spec.setting_hash}",
                   "t_max=5000", "env_args.difficulty=7"]
    ctrl = sweep.expand_grid("td3_proxy", "mujoco", ["lif"], ["Hopper-v4"], [0], agent_key="actor_neuron")[0]
    assert ctrl.command("PY")[5:7] == ["actor_neuron=lif", "env_args.key=Hopper-v4"]


@pytest.mark.parametrize("bad,match", [(["seed=3"], "sets 'seed'"), (["agent=rnn"], "sets 'agent'"),
                                       (["env_args.map_name=3m"], "sets 'env_args.map_name'"),
                                       (["t_max"], "not key=value"), (["a=1", "a=2"], "twice")])
def test_bad_overrides(bad, match):
    with pytest.raises(SweepError, match=match):
        sweep.expand_grid("qmix", "smax", ["rnn"], ["3m"], [0], bad)


def test_parse_seeds_and_lists():
    assert sweep.parse_seeds("3") == [0, 1, 2]
    assert sweep.parse_seeds("2", start=10) == [10, 11]
    assert sweep.parse_seeds("1,7,9") == [1, 7, 9]
    for bad in ("0", "x", "1,1"):
        with pytest.raises(SweepError):
            sweep.parse_seeds(bad)
    with pytest.raises(SweepError, match="empty"):
        sweep.split_list(" , ", "agents")


def fake_sacred_run(root, spec, run_id, status="COMPLETED", seed=None, agent=None):
    d = root / spec.env_config / spec.scenario / spec.name / str(run_id)
    d.mkdir(parents=True)
    cfg = {"env": spec.env_config, "env_args": {"map_name": spec.scenario}, "name": spec.name,
           "agent": agent or spec.agent, "seed": spec.seed if seed is None else seed}
    (d / "config.json").write_text(json.dumps(cfg))
    (d / "run.json").write_text(json.dumps({"status": status}))
    return d


def test_resume_skips_only_completed(tmp_path):
    root = tmp_path / "sacred"
    specs = sweep.expand_grid("qmix", "smax", ["rnn", "grsn"], ["3m"], [0, 1], ["t_max=100"])
    by = {(s.agent, s.seed): s for s in specs}
    done_dir = fake_sacred_run(root, by[("rnn", 0)], 1)                 # finished -> skip
    fake_sacred_run(root, by[("rnn", 1)], 2, status="FAILED")          # failed -> rerun
    fake_sacred_run(root, by[("rnn", 1)], 3, status="INTERRUPTED")
    fake_sacred_run(root, by[("grsn", 0)], 1, seed=5)                  # other seed -> rerun
    other = sweep.expand_grid("qmix", "smax", ["grsn"], ["3m"], [1], ["t_max=999"])[0]
    fake_sacred_run(root, other, 1)                                    # other overrides -> rerun
    to_run, done = sweep.plan(specs, str(root))
    assert [(s.agent, s.seed) for s, _ in done] == [("rnn", 0)] and done[0][1] == str(done_dir)
    assert sorted((s.agent, s.seed) for s in to_run) == [("grsn", 0), ("grsn", 1), ("rnn", 1)]
    assert sweep.find_completed(by[("rnn", 0)], str(tmp_path / "nothing")) is None


def test_dry_run_prints_plan(tmp_path, capsys):
    res = tmp_path / "res"
    spec = sweep.expand_grid("qmix", "smax", ["rnn"], ["3m"], [0], ["t_max=100"])[0]
    fake_sacred_run(res / "sacred", spec, 1)
    code = sweep.main(["--agents", "rnn,grsn", "--maps", "3m", "--seeds", "1", "--results", str(res),
                       "--dry-run", "with", "t_max=100"])
    out = capsys.readouterr().out
    assert code == 0
    assert "2 runs in the grid: 1 already COMPLETED (skipped), 1 to run" in out
    cmds = [line for line in out.splitlines() if "--config=qmix" in line]
    assert len(cmds) == 1 and "agent=grsn" in cmds[0] and "t_max=100" in cmds[0]
    assert f"local_results_path={res}" in cmds[0]


def test_bad_args_exit_2(capsys):
    assert sweep.main(["--agents", "rnn", "--maps", "3m", "--dry-run", "with", "seed=1"]) == 2
    assert "sets 'seed'" in capsys.readouterr().err


def test_missing_ray_gives_pin(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(SweepError, match=r"pip install ray==\d+\.\d+\.\d+"):
        sweep.import_ray()


STUB_MAIN = textwrap.dedent('''
    """Stand-in for src/main.py: records a COMPLETED sacred run like main.py would."""
    import json, os, sys
    argv = sys.argv[1:]
    env = next(a.split("=", 1)[1] for a in argv if a.startswith("--env-config="))
    kv = dict(a.split("=", 1) for a in argv[argv.index("with") + 1:])
    seed, agent, scen = int(kv["seed"]), kv["agent"], kv["env_args.map_name"]
    if agent == "boom":
        sys.exit("stub failure")
    base = os.path.join(kv["local_results_path"], "sacred", env, scen, kv["name"])
    run_id = 1
    while True:  # sacred-like ids; parallel runs of one setting share the folder
        d = os.path.join(base, str(run_id))
        try:
            os.makedirs(d)
            break
        except FileExistsError:
            run_id += 1
    cfg = {"env": env, "env_args": {"map_name": scen}, "agent": agent, "seed": seed,
           "name": kv["name"], "t_max": int(kv["t_max"])}
    json.dump(cfg, open(os.path.join(d, "config.json"), "w"))
    json.dump({"status": "COMPLETED"}, open(os.path.join(d, "run.json"), "w"))
    win = {"rnn": 0.5, "grsn": 0.75}[agent] + 0.1 * seed
    json.dump({"test_battle_won_mean": {"steps": [0, 100], "values": [0.0, win], "timestamps": ["", ""]},
               "test_return_mean": {"steps": [0, 100], "values": [0.0, 20 * win], "timestamps": ["", ""]}},
              open(os.path.join(d, "metrics.json"), "w"))
''')


@pytest.mark.slow
def test_sweep_end_to_end_on_local_ray(tmp_path, capsys):
    pytest.importorskip("ray", reason="pip install " + sweep.RAY_PIN)
    stub = tmp_path / "stub_main.py"
    stub.write_text(STUB_MAIN)
    res = tmp_path / "res"
    argv = ["--agents", "rnn,grsn,boom", "--maps", "3m", "--seeds", "2", "--results", str(res),
            "--num-cpus", "2", "--main", str(stub), "with", "t_max=100"]
    assert sweep.main(argv) == 1  # the "boom" runs fail
    captured = capsys.readouterr()
    assert "FAILED qmix_boom_" in captured.err and "stub failure" in open(
        next((res / "sweeps" / "logs").glob("qmix_boom_*seed0.log"))).read()
    rows = {line.split("|")[2].strip(): line for line in captured.out.splitlines() if line.startswith("| 3m |")}
    assert "80.0 ± 5.0 (n=2)" in rows["qmix grsn"]  # grsn 0.75/0.85
    assert "55.0 ± 5.0 (n=2)" in rows["qmix rnn"]  # rnn 0.5/0.6
    summaries = list((res / "sweeps").glob("*/summary.md"))
    assert len(summaries) == 1 and list((res / "sweeps").glob("*/*.png"))

    # resume: everything but the failing agent is skipped, nothing else runs
    assert sweep.main(["--agents", "rnn,grsn", "--maps", "3m", "--seeds", "2", "--results", str(res),
                       "--main", str(stub), "--dry-run", "with", "t_max=100"]) == 0
    assert "4 already COMPLETED (skipped), 0 to run" in capsys.readouterr().out
