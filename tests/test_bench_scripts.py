"""The benchmark scripts run and write the documented JSON rows (tiny sizes)."""

import json
import runpy
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench"


def test_core_scaling_writes_rows(tmp_path, monkeypatch, capsys):
    out = tmp_path / "rows.json"
    monkeypatch.setattr(sys, "argv", ["core_scaling.py", "--sizes", "1000", "--batches", "16",
                                      "--budget", "0.01", "--json", str(out)])
    runpy.run_path(str(BENCH / "core_scaling.py"), run_name="__main__")
    rows = json.loads(out.read_text())
    assert {r["impl"] for r in rows} == {"mlbs", "numpy", "torch"}
    for r in rows:
        assert set(r) == {"impl", "n", "batch", "us_per_step_median"}
        assert (r["n"], r["batch"]) == (1000, 16) and r["us_per_step_median"] > 0
    assert "numpy/mlbs" in capsys.readouterr().out


def run_script(name, argv, monkeypatch):
    monkeypatch.setattr(sys, "argv", [name, *argv])
    runpy.run_path(str(BENCH / name), run_name="__main__")


def test_policy_cost_runs(tmp_path, monkeypatch):
    out = tmp_path / "rows.json"
    run_script("policy_cost.py", ["--sizes", "2000", "--batches", "3", "--drift-batches", "50", "--json", str(out)],
               monkeypatch)
    rows = json.loads(out.read_text())
    assert {r["policy"] for r in rows} == {"random", "hard", "adaptive", "adac", "numpy-adaptive", "adaptive-exact",
                                           "adaptive-geometric"}
    geometric = next(r for r in rows if r["policy"] == "adaptive-geometric")
    assert 0 < geometric["max_total_variation"] < 0.05 and 1 < geometric["max_probability_ratio"] < 1.2
    assert all(r["us_per_batch_median"] > 0 for r in rows)


def test_torch_epoch_runs(tmp_path, monkeypatch):
    out = tmp_path / "epoch.json"
    run_script("torch_epoch.py", ["--n", "1000", "--max-batches", "2", "--threads", "1", "--json", str(out)],
               monkeypatch)
    result = json.loads(out.read_text())
    assert [r["batches"] for r in result["rows"]] == [2, 2] and result["adaptive_over_random"] > 0
