"""Run records: round trip, and every unusable file listed with its reason (never dropped silently)."""
import json

import pytest

from experiments.records import Record, final_metric, load_records, select, write_record


def make(point="3m__rnn__s1", seed=1, values=(0.0, 0.5, 1.0), method="rnn"):
    return Record(experiment="exp", point=point, scenario="3m", method=method, seed=seed, t_max=100, t_env=101,
                  status="COMPLETED", metric="test_battle_won_mean",
                  curves={"test_battle_won_mean": {"T": [0, 50, 101][:len(values)], "value": list(values)}})


def test_round_trip_and_final_metric(tmp_path):
    write_record(str(tmp_path), make())
    recs, skipped = load_records(str(tmp_path), "exp")
    assert skipped == [] and len(recs) == 1
    assert final_metric(recs[0], 2) == pytest.approx(0.75)      # mean of the last 2 tests
    assert final_metric(recs[0], 10) == pytest.approx(0.5)      # fewer tests than K: all of them


@pytest.mark.parametrize("content,reason", [
    ('{"format": "spikemarl.rec', "not valid JSON"),            # truncated
    ("", "not valid JSON"),                                      # empty
    ("[1, 2, 3]", "holds a list"),
    ('{"format": "other"}', "format is 'other'"),
])
def test_broken_files_are_listed_with_their_reason(tmp_path, content, reason):
    write_record(str(tmp_path), make())
    (tmp_path / "exp" / "3m__rnn__s2.json").write_text(content)
    recs, skipped = load_records(str(tmp_path), "exp")
    assert [r.point for r in recs] == ["3m__rnn__s1"]
    assert len(skipped) == 1 and reason in skipped[0].reason and skipped[0].path.endswith("3m__rnn__s2.json")


def test_missing_key_and_mismatched_name_are_listed(tmp_path):
    data = make(point="3m__rnn__s2").to_json()
    del data["seed"]
    (tmp_path / "exp").mkdir()
    (tmp_path / "exp" / "3m__rnn__s2.json").write_text(json.dumps(data))
    (tmp_path / "exp" / "3m__rnn__s3.json").write_text(json.dumps(make(point="3m__rnn__s9").to_json()))
    recs, skipped = load_records(str(tmp_path), "exp")
    assert recs == []
    reasons = sorted(s.reason for s in skipped)
    assert "missing key 'seed'" in reasons[0] and "not this file's" in reasons[1]


def test_where_on_an_unknown_field_is_an_error_and_an_empty_match_says_so(tmp_path):
    recs = [make(), make(point="3m__grsn__s1", method="grsn")]
    assert [r.method for r in select(recs, [("method", "grsn")])[0]] == ["grsn"]
    with pytest.raises(ValueError, match="no field 'nosuchkey'"):
        select(recs, [("nosuchkey", "1")])
    out, notes = select(recs, [("method", "lif")])
    assert out == [] and "matches none of 2 records" in notes[0]
