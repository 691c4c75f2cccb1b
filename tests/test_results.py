"""src/results.py on synthetic sacred runs: experiment identity, resume joining, curves, outputs."""
from __future__ import annotations

import json
import os
import shutil
import subprocess

import numpy as np
import pytest

import results

MARL = {"run": "marl", "config_name": "qmix", "env": "smax", "agent": "rnn", "mixer": "qmix",
        "t_max": 300, "lr": 0.001, "checkpoint_path": "", "evaluate": False, "log_interval": 100}
TD3 = {"run": "td3_mujoco", "config_name": "td3", "env": "mujoco", "agent": "rnn", "actor_type": "ann",
       "actor_neuron": "lif", "t_max": 300, "checkpoint_path": "", "evaluate": False}


def write_run(root, run_id, *, base=MARL, scenario="3m", seed=0, status="COMPLETED", steps=(0, 100, 200),
              win=None, ret=None, fmt="metrics", extra=None, model_dir=None, start="2026-12-01T10:00:00",
              more=None):
    """A sacred run folder. ``win``/``ret``: value lists per step (None: not logged);
    ``more``: other metrics ``{key: values}``; ``extra``: config overrides."""
    cfg = dict(base, seed=seed, env_args={"map_name" if base["env"] == "smax" else "key": scenario})
    cfg.update(extra or {})
    d = root / cfg["env"] / scenario / f"{cfg['config_name']}" / str(run_id)
    d.mkdir(parents=True)
    (d / "config.json").write_text(json.dumps(cfg))
    (d / "run.json").write_text(json.dumps({"status": status, "start_time": start}))
    series = dict(more or {})
    if win is not None:
        series["test_battle_won_mean"] = win
    if ret is not None:
        series["test_return_mean"] = ret
    info = {"model_dir": model_dir} if model_dir else {}
    if fmt == "metrics":
        m = {k: {"steps": list(steps), "values": list(v), "timestamps": [""] * len(v)} for k, v in series.items()}
        (d / "metrics.json").write_text(json.dumps(m))
    else:  # pymarl info.json, the last value jsonpickled like a numpy scalar
        for k, v in series.items():
            info[k] = list(v[:-1]) + [{"py/object": "numpy.float64", "dtype": "float64", "value": v[-1]}]
            info[k + "_T"] = list(steps)
    (d / "info.json").write_text(json.dumps(info))
    return d


@pytest.fixture
def sacred(tmp_path):
    root = tmp_path / "sacred"
    # qmix rnn, t_max 300: seeds 0, 1, 2 (one read from info.json)
    write_run(root, 1, seed=0, win=[0.0, 0.2, 0.5], ret=[0.0, 5.0, 10.0])
    write_run(root, 2, seed=1, win=[0.0, 0.3, 0.7], ret=[0.0, 7.0, 14.0])
    write_run(root, 3, seed=2, win=[0.0, 0.5, 0.9], ret=[0.0, 9.0, 18.0], fmt="info")
    # the same agent with another budget, and VDN: separate rows, not extra seeds
    write_run(root, 4, seed=0, win=[0.0, 0.1, 0.1], ret=[0.0, 1.0, 2.0], extra={"t_max": 900})
    write_run(root, 5, seed=0, win=[0.0, 0.0, 0.25], ret=[0.0, 2.0, 5.0],
              extra={"config_name": "vdn", "mixer": "vdn"})
    # an evaluation of a checkpoint, a failed start, an unfinished run: never extra seeds
    write_run(root, 6, seed=0, steps=(200,), win=[1.0], ret=[20.0],
              extra={"evaluate": True, "checkpoint_path": "results/models/tokA"})
    write_run(root, 7, seed=3, status="FAILED", steps=())
    write_run(root, 8, seed=4, status="RUNNING", win=[0.0, 0.0, 0.0], ret=[0.0, 0.0, 0.0])
    # grsn on another map
    write_run(root, 9, scenario="8m", seed=0, base=dict(MARL, agent="grsn"), win=[0.0, 0.1, 0.25],
              ret=[0.0, 2.0, 5.0])
    return root


def rows_by_label(rows, scenario="3m"):
    return {r["label"]: r for r in rows if r["scenario"] == scenario}


def test_identity_groups_by_full_config(sacred):
    sel = results.select(results.load_runs([str(sacred)]))
    assert sel.left_out == {"failed start": 1, "status RUNNING": 1}
    assert [r.seed for r in sel.evaluations] == [0]  # the evaluate run is listed apart
    rows = rows_by_label(results.aggregate(sel.experiments))
    assert set(rows) == {"qmix rnn t_max=300", "qmix rnn t_max=900", "vdn rnn"}
    rnn = rows["qmix rnn t_max=300"]
    assert rnn["seeds"] == [0, 1, 2] and rnn["repeated_seeds"] == []
    assert rnn["win_rate_mean"] == pytest.approx(70.0)
    assert rnn["win_rate_std"] == pytest.approx(np.std([50.0, 70.0, 90.0]))
    assert rnn["return_mean"] == pytest.approx(14.0)  # the jsonpickled info.json value was read
    assert rnn["final_metrics"]["test_return_mean"] == {"mean": 14.0, "std": pytest.approx(np.std([10.0, 14.0, 18.0])),
                                                         "n": 3, "values": [10.0, 14.0, 18.0]}
    assert rows["qmix rnn t_max=900"]["n_runs"] == 1 and rows["vdn rnn"]["win_rate_mean"] == pytest.approx(25.0)
    assert rows_by_label(results.aggregate(sel.experiments), "8m")["qmix grsn"]["n_runs"] == 1
    # with --all the unfinished run joins its group; the failed start never does
    sel_all = results.select(results.load_runs([str(sacred)]), statuses=None)
    rnn_all = rows_by_label(results.aggregate(sel_all.experiments))["qmix rnn t_max=300"]
    assert rnn_all["seeds"] == [0, 1, 2, 4] and sel_all.left_out == {"failed start": 1}


def test_mujoco_variants_get_their_own_rows(tmp_path):
    root = tmp_path / "sacred"
    variants = [("td3", {}), ("td3_snn", {"actor_type": "snn"}),
                ("td3_snn", {"actor_type": "snn", "actor_neuron": "clif"}),
                ("td3_proxy", {"actor_type": "snn", "proxy_target": True})]
    for i, (alg, extra) in enumerate(variants):
        write_run(root, i, base=dict(TD3, config_name=alg, proxy_target=False), scenario="Hopper-v4",
                  ret=[0.0, 10.0 * (i + 1), 20.0 * (i + 1)], extra=extra)
    rows = results.aggregate(results.select(results.load_runs([str(root)])).experiments)
    assert sorted(r["label"] for r in rows) == ["td3 ann", "td3_proxy lif", "td3_snn clif", "td3_snn lif"]
    assert rows_by_label(rows, "Hopper-v4")["td3_proxy lif"]["return_mean"] == pytest.approx(80.0)


def test_resumed_run_is_joined_into_one_curve(tmp_path):
    root = tmp_path / "sacred"
    write_run(root, 1, status="INTERRUPTED", steps=(0, 100, 200), ret=[0.0, 4.0, 6.0],
              more={"elapsed_s": [0.0, 10.0, 20.0]}, model_dir="results/models/qmix_rnn_tokA")
    write_run(root, 2, steps=(150, 250), ret=[5.0, 9.0], more={"elapsed_s": [3.0, 13.0]},
              extra={"checkpoint_path": "results/models/qmix_rnn_tokA/100"}, start="2026-12-01T11:00:00")
    sel = results.select(results.load_runs([str(root)]))
    assert len(sel.experiments) == 1
    exp = sel.experiments[0]
    assert exp.status == "COMPLETED" and len(exp.segments) == 2
    steps, values = exp.curves["test_return_mean"]
    assert steps.tolist() == [0.0, 100.0, 150.0, 250.0] and values.tolist() == [0.0, 4.0, 5.0, 9.0]
    # the resumed run's wall clock restarts: shifted by the earlier run's 10 s at the cut
    assert exp.curves["elapsed_s"][1].tolist() == [0.0, 10.0, 13.0, 23.0]
    row = results.aggregate(sel.experiments)[0]
    assert row["n_runs"] == 1 and row["return_mean"] == pytest.approx(9.0)


def test_a_retry_from_the_same_checkpoint_supersedes_the_earlier_attempt(tmp_path):
    root = tmp_path / "sacred"
    write_run(root, 1, status="INTERRUPTED", steps=(0, 100, 200), ret=[0.0, 4.0, 6.0],
              model_dir="results/models/qmix_rnn_tokA")
    resume = {"checkpoint_path": "results/models/qmix_rnn_tokA"}
    write_run(root, 2, status="RUNNING", steps=(150,), ret=[1.0], extra=resume, start="2026-12-01T11:00:00")
    write_run(root, 3, steps=(150, 250), ret=[5.0, 9.0], extra=resume, start="2026-12-01T12:00:00")
    experiments = results.join_resumed(results.load_runs([str(root)]))
    assert sorted(len(e.segments) for e in experiments) == [1, 2]
    joined = next(e for e in experiments if len(e.segments) == 2)
    assert [s.status for s in joined.segments] == ["INTERRUPTED", "COMPLETED"]
    assert joined.curves["test_return_mean"][1].tolist() == [0.0, 4.0, 5.0, 9.0]
    # the abandoned attempt stands alone and, being unfinished, is left out of the default selection
    assert results.select(results.load_runs([str(root)])).left_out == {"status RUNNING": 1}


def test_resume_found_through_cout_token(tmp_path):
    root = tmp_path / "sacred"
    first = write_run(root, 1, status="INTERRUPTED", ret=[0.0, 4.0, 6.0])
    (first / "cout.txt").write_text("[INFO] run 'marl' | qmix on smax | token qmix_rnn_smax_3m_seed0_x\n")
    write_run(root, 2, steps=(300,), ret=[8.0],
              extra={"checkpoint_path": "/abs/results/models/qmix_rnn_smax_3m_seed0_x"})
    exp, = results.select(results.load_runs([str(root)])).experiments
    assert exp.curves["test_return_mean"][0].tolist() == [0.0, 100.0, 200.0, 300.0]


def test_mean_curve_stays_within_each_runs_steps():
    a = (np.array([0.0, 100.0, 200.0]), np.array([0.0, 1.0, 2.0]))
    b = (np.array([50.0, 150.0, 300.0]), np.array([0.0, 1.0, 3.0]))
    grid, mean, std, n = results.mean_curve([a, b])
    assert grid.tolist() == [0.0, 50.0, 100.0, 150.0, 200.0, 300.0]
    assert n.tolist() == [1, 2, 2, 2, 2, 1]
    # 100: a=1, b=0.5 (between 50 and 150); 200: a=2, b=1+2*50/150; 0 and 300: one run only
    assert mean.tolist() == pytest.approx([0.0, 0.25, 0.75, 1.25, (2.0 + 1.0 + 2.0 / 3) / 2, 3.0])
    assert std[2] == pytest.approx(0.25) and std[0] == 0.0 and std[-1] == 0.0


def test_band_is_clipped_to_the_metric_range():
    win = next(m for m in results.PLOT_METRICS if m.name == "win_rate")
    y, lo, hi = results.band(win, np.array([0.05, 0.5, 0.98]), np.array([0.2, 0.1, 0.1]))
    assert y.tolist() == pytest.approx([5.0, 50.0, 98.0])
    assert lo.tolist() == pytest.approx([0.0, 40.0, 88.0]) and hi.tolist() == pytest.approx([25.0, 60.0, 100.0])
    ret = next(m for m in results.PLOT_METRICS if m.name == "return")
    assert results.band(ret, np.array([-5.0]), np.array([2.0]))[1].tolist() == [-7.0]


def test_where_and_since_filters(sacred):
    runs = results.load_runs([str(sacred)])
    where = results.parse_where(["config_name=qmix", "t_max=900"])
    sel = results.select(runs, where=where)
    assert [e.config["t_max"] for e in sel.experiments] == [900] and sel.left_out["--where"] == 5
    later = results.select(runs, since=results.parse_since("2026-12-02"))
    assert later.experiments == [] and later.left_out["--since"] == 6
    with pytest.raises(ValueError, match="key=value"):
        results.parse_where(["agent"])
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        results.parse_since("yesterday")


def test_summarize_writes_tables_plots_and_page(sacred, tmp_path):
    out = tmp_path / "out"
    md, rows = results.summarize([str(sacred)], str(out))
    assert (out / "summary.md").read_text() == md
    assert "| 3m | qmix rnn t_max=300 | 3 | 0, 1, 2 | 70.0 ± 16.3 (n=3) | 14.00 ± 3.27 (n=3) |" in md
    assert "Evaluate-only runs" in md and "failed start: 1" in md and "status RUNNING: 1" in md
    data = json.loads((out / "summary.json").read_text())
    assert len(data["rows"]) == 4 and len(data["evaluations"]) == 1
    names = sorted(os.path.basename(p["path"]) for p in data["plots"])
    assert names == ["3m__return.png", "3m__win_rate.png", "8m__return.png", "8m__win_rate.png"]
    for p in data["plots"]:
        assert open(p["path"], "rb").read(8) == b"\x89PNG\r\n\x1a\n" and os.path.getsize(p["path"]) > 5000
    page = (out / "report.html").read_text()
    assert page.count("<img ") == 4 and "qmix rnn t_max=900" in page


def test_cli(sacred, tmp_path, capsys):
    out = tmp_path / "cli"
    assert results.main([str(sacred / "smax"), "--out", str(out), "--no-plots", "--where", "agent=grsn"]) == 0
    printed = capsys.readouterr().out
    assert "| 8m | qmix grsn |" in printed and "| 3m |" not in printed
    assert not list(out.glob("*.png"))
    assert results.main([str(tmp_path / "missing")]) == 2
    assert results.main([str(sacred), "--where", "agent"]) == 2
    assert "not of the form key=value" in capsys.readouterr().err


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (Debian: apt-get install chromium)")
def test_report_renders_in_a_headless_browser(sacred, tmp_path):
    out = tmp_path / "page"
    results.summarize([str(sacred)], str(out))
    os.remove(out / "8m__return.png")  # one broken plot: the page must say so

    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
           "--virtual-time-budget=3000", "--dump-dom", (out / "report.html").as_uri()]
    text = subprocess.run(cmd, capture_output=True, text=True, timeout=60).stdout  # the three plots left decode (naturalWidth > 0), the removed one is reported
    assert 'data-images-loaded="3/4"' in text and "1 plot(s) failed to load." in text
    assert text.count("<tr>") == 4 + 1 + 2  # summary rows + header, evaluations header + row
    assert "<td>qmix rnn t_max=300</td>" in text


def test_identity_leaves_out_dotted_bookkeeping_keys_only():
    base = {"lr": 0.001, "env_args": {"map_name": "3m", "jax_cache_dir": "a"}, "torch_threads": 1}
    other = {"lr": 0.001, "env_args": {"map_name": "3m", "jax_cache_dir": "b"}, "torch_threads": 2}
    assert results.identity(base) == results.identity(other) == {"env_args.map_name": '"3m"', "lr": "0.001"}
    assert results.identity(base) != results.identity(dict(base, env_args={"map_name": "8m", "jax_cache_dir": "a"}))
