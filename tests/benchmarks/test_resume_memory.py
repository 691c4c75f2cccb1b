"""The resume-memory benchmark: runs both loads in fresh processes and reports every reading."""
import json
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                                "benchmarks"))
import resume_memory  # noqa: E402


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads /proc/self/status")
def test_both_loads_are_measured_and_written(tmp_path, capsys):
    assert resume_memory.main(["--mib", "8", "--rounds", "1", "--out", str(tmp_path), "--tag", "t"]) == 0
    data = json.load(open(tmp_path / "t.json"))
    for variant in ("plain", "mmap"):
        row = data["variants"][variant]
        assert row["peak"] == max(row["after_alloc"], row["after_load"], row["after_copy"], row["after_free"])
        assert len(data["samples"][variant]) == 1
    assert data["peak_ratio_mmap_over_plain"] == pytest.approx(data["variants"]["mmap"]["peak"]
                                                               / data["variants"]["plain"]["peak"])
    assert "| load_part (memory-mapped) |" in capsys.readouterr().out


def test_bad_sizes_are_refused(capsys):
    with pytest.raises(SystemExit):
        resume_memory.main(["--mib", "0"])
    assert "--mib and --rounds must be at least 1" in capsys.readouterr().err
