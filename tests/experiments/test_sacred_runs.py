"""Reading sacred run folders: unreadable ones are Skipped with a reason; resumed parts join."""
import json

from experiments.sacred_runs import SacredRun, Skipped, find_runs, join_segments, read_run


def write_run(folder, status="COMPLETED", config=None, info=None, start="2026-12-01T10:00:00"):
    folder.mkdir(parents=True)
    (folder / "run.json").write_text(json.dumps({"status": status, "start_time": start}))
    (folder / "config.json").write_text(json.dumps(config or {"seed": 1}))
    (folder / "info.json").write_text(json.dumps(info or {"test_return_mean": [1, 2], "test_return_mean_T": [0, 10]}))


def test_unreadable_runs_are_skipped_with_the_reason(tmp_path):
    write_run(tmp_path / "ok")
    write_run(tmp_path / "truncated")
    (tmp_path / "truncated" / "run.json").write_text('{"status": "COMP')
    write_run(tmp_path / "empty_config")
    (tmp_path / "empty_config" / "config.json").write_text("")
    write_run(tmp_path / "list_info", info=[1, 2, 3])
    runs, skipped = find_runs(str(tmp_path))
    assert [r.path.split("/")[-1] for r in runs] == ["ok"]
    why = {s.path.split("/")[-1]: s.reason for s in skipped}
    assert set(why) == {"truncated", "empty_config", "list_info"}
    assert "run.json is not valid JSON" in why["truncated"]
    assert "config.json is not valid JSON" in why["empty_config"]
    assert "info.json holds a list" in why["list_info"]


def test_a_resumed_part_replaces_the_earlier_from_its_first_step(tmp_path):
    write_run(tmp_path / "1", info={"m": [0, 1, 2, 3], "m_T": [0, 10, 20, 30]}, start="2026-12-01T10:00:00")
    write_run(tmp_path / "2", info={"m": [5, 6], "m_T": [20, 40]}, start="2026-12-01T11:00:00")
    runs, _ = find_runs(str(tmp_path))
    assert join_segments(runs)["m"] == ([0, 10, 20, 40], [0, 1, 5, 6])
    assert isinstance(read_run(str(tmp_path / "missing")), Skipped)
