"""The report: numbers computed by hand from tiny records, exports, determinism, the HTML page."""
import csv
import io
import json
import os
import shutil
import subprocess

import pytest

from experiments.records import Record, write_record
from experiments.report import write_report
from experiments.spec import load_spec

SPEC = """
name: tiny
base: {config: qmix, env_config: smax}
agents: [rnn, grsn]
scenarios: {3m: {t_max: 100}}
seeds: [1, 2, 3]
protocol: {metric: test_battle_won_mean, label: win (%), scale: 100, last_k: 2, compare: [[grsn, rnn]], margin: 5}
"""


@pytest.fixture()
def tiny(tmp_path):
    (tmp_path / "tiny.yaml").write_text(SPEC)
    spec = load_spec(str(tmp_path / "tiny.yaml"), validate_points=False)
    finals = {"rnn": [0.8, 0.9, 1.0], "grsn": [0.2, 0.3, 0.4]}
    for p in spec.points:
        last = finals[p.agent][p.seed - 1]
        # last two tests: last - 0.1 and last + 0.1 -> mean of the last 2 = last
        curve = {"T": [0, 50, 100], "value": [0.0, last - 0.1, last + 0.1]}
        write_record(str(tmp_path / "records"), Record(
            experiment="tiny", point=p.id, scenario=p.scenario, method=p.method, agent=p.agent, seed=p.seed,
            command=p.command(), t_max=100, t_env=100, status="COMPLETED", metric="test_battle_won_mean",
            curves={"test_battle_won_mean": curve}, absolute={"episodes": 320, "value": last}))
    return spec, tmp_path


def test_table_numbers_verdict_and_exports(tiny):
    spec, tmp = tiny
    summary = write_report(spec, str(tmp / "records"), str(tmp / "out"))
    cell = summary["last_k"]["per_scenario"]["3m"]
    assert cell["rnn"]["mean"][0] == pytest.approx(90.0) and cell["grsn"]["mean"][0] == pytest.approx(30.0)
    assert cell["rnn"]["runs"] == pytest.approx([80.0, 90.0, 100.0])
    comp = summary["last_k"]["comparisons"][0]
    assert comp["difference"][0] == pytest.approx(-60.0) and comp["verdict"] == "below"
    assert comp["p_improvement"][0] == 0.0
    assert summary["absolute"]["per_scenario"]["3m"]["grsn"]["mean"][0] == pytest.approx(30.0)
    page = (tmp / "out" / "tiny.md").read_text()
    assert "| 3m | 90.0 [" in page and "| grsn vs rnn | 3m | -60.0 [" in page and "| below |" in page
    rows = list(csv.DictReader(io.StringIO((tmp / "out" / "tiny" / "runs.csv").read_text())))
    assert len(rows) == 6 and rows[0]["last_2_mean"] == "0.200000"
    me = json.loads((tmp / "out" / "tiny" / "marl_eval.json").read_text())
    run = me["smax"]["3m"]["grsn"]["run_1"]
    assert run["step_2"] == {"step_count": 100, "test_battle_won_mean": [pytest.approx(0.3)]}
    assert run["absolute_metrics"] == {"test_battle_won_mean": [pytest.approx(0.2)]}
    assert os.path.exists(tmp / "out" / "tiny" / "3m__curve.png")


def test_report_is_byte_identical_when_made_again(tiny):
    spec, tmp = tiny
    write_report(spec, str(tmp / "records"), str(tmp / "a"))
    write_report(spec, str(tmp / "records"), str(tmp / "b"))
    for rel in ("tiny.md", "tiny.html", "tiny/summary.json", "tiny/3m__curve.png", "tiny/marl_eval.json"):
        assert (tmp / "a" / rel).read_bytes() == (tmp / "b" / rel).read_bytes(), rel


def test_a_corrupt_record_is_listed_not_dropped(tiny):
    spec, tmp = tiny
    (tmp / "records" / "tiny" / "3m__grsn__s3.json").write_text('{"format": "spikemarl.rec')
    summary = write_report(spec, str(tmp / "records"), str(tmp / "out"))
    assert summary["n_records"] == 5
    assert summary["skipped"][0]["file"] == "3m__grsn__s3.json"
    page = (tmp / "out" / "tiny.md").read_text()
    assert "skipped 3m__grsn__s3.json: not valid JSON" in page and "1 of 6 points have no record" in page


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (Debian: apt-get install chromium)")
def test_html_page_renders_in_a_headless_browser(tiny):
    spec, tmp = tiny
    write_report(spec, str(tmp / "records"), str(tmp / "out"))
    os.remove(tmp / "out" / "tiny" / "3m__curve.png")   # one broken plot: the page must say so
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
           "--virtual-time-budget=3000", "--dump-dom", (tmp / "out" / "tiny.html").as_uri()]
    text = subprocess.run(cmd, capture_output=True, text=True, timeout=60).stdout
    assert 'data-images-loaded="0/1"' in text and "1 plot(s) failed to load." in text
    assert "<td>grsn vs rnn</td>" in text and "<td>below</td>" in text
