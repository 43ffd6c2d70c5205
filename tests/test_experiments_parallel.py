"""A grid in worker processes: the same records as a serial run, nothing lost or written twice
when workers or the driver die, failures reported; and the dry-run estimate."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from mlbs.experiments.config import ExperimentConfig  # noqa: E402
from mlbs.experiments.estimate import EpochCosts, dataset_size, estimate_runs  # noqa: E402
from mlbs.experiments.executors import ProcessExecutor, RunFailure, limit_threads  # noqa: E402
from mlbs.experiments.runner import Grid, run_grid  # noqa: E402
from mlbs.experiments.store import ResultStore, RunKey  # noqa: E402

torch.set_num_threads(1)
CFG = ExperimentConfig(epochs=2, n_folds=3, eval_train_loss=False)
GRID = Grid(("emotions",), ("mlp",), ("random", "adaptive"), (0, 1))


def comparable(records):
    """Every stored value of each record except the timings, keyed by run."""
    out = {}
    for r in records:
        res = dict(r["result"])
        res.pop("timing")
        res["curves"] = {k: v for k, v in res["curves"].items() if k not in ("train_time", "sampler_time")}
        res["batches"] = {k: v for k, v in res["batches"].items() if k != "train_time"}
        out[tuple(r["key"].values())] = res
    return out


@pytest.fixture(scope="module")
def serial(tmp_path_factory):
    store = ResultStore(tmp_path_factory.mktemp("serial"))
    summary = run_grid(GRID, CFG, store)
    assert len(summary["done"]) == 4
    return comparable(store.load(CFG.hash()))


def test_two_jobs_reproduce_the_serial_records(tmp_path, serial):
    store = ResultStore(tmp_path)
    epochs = []
    summary = run_grid(GRID, CFG, store, executor=ProcessExecutor(2),
                       on_epoch=lambda key, e, n: epochs.append((key, e)))
    assert sorted(summary["done"], key=str) == sorted(GRID.keys(), key=str) and not summary["failed"]
    assert comparable(store.load(CFG.hash())) == serial
    assert sorted(epochs, key=str) == sorted(((k, e) for k in GRID.keys() for e in range(2)), key=str)


def _kill_workers():
    import multiprocessing

    for child in multiprocessing.active_children():
        if child.name.startswith("mlbs-worker"):
            os.kill(child.pid, signal.SIGKILL)


def test_a_killed_worker_has_its_run_started_again_or_reported(tmp_path, serial):
    """One worker, max_retries=1: the worker that takes the first run is killed once (the run is
    started again and recorded once), the one that takes the second run in both attempts (the run
    is reported and has no record). Killing at hand-over makes the test deterministic; the driver
    sees the same thing as for a worker killed mid-run: a dead worker holding a run."""
    store = ResultStore(tmp_path)
    once, twice = GRID.keys()[:2]
    kills = {once: 1, twice: 2}
    started = []

    def on_start(key):
        started.append(key)
        if kills.get(key, 0) > 0:
            kills[key] -= 1
            _kill_workers()

    summary = run_grid(GRID, CFG, store, executor=ProcessExecutor(1, max_retries=1), on_start=on_start)
    assert started.count(once) == 2 and started.count(twice) == 2
    assert [f.key for f in summary["failed"]] == [twice] and "died" in summary["failed"][0].message
    assert sorted(summary["done"], key=str) == sorted(set(GRID.keys()) - {twice}, key=str)
    lost = tuple(twice.as_dict().values())
    assert comparable(store.load(CFG.hash())) == {k: v for k, v in serial.items() if k != lost}


def test_an_exception_in_a_run_is_reported_and_the_worker_goes_on(tmp_path):
    store = ResultStore(tmp_path)
    bad = ExperimentConfig(epochs=2, n_folds=3, eval_train_loss=False, method_options={"pressure": -1.0})
    grid = Grid(("emotions",), ("mlp",), ("hard",), (0, 1))
    summary = run_grid(grid, bad, store, executor=ProcessExecutor(1, max_retries=0))
    assert summary["done"] == [] and [f.key for f in summary["failed"]] == grid.keys()
    assert all(isinstance(f, RunFailure) and "pressure must be" in f.message for f in summary["failed"])
    assert not (tmp_path / "records" / bad.hash()).exists()


def _cli(*args):
    return [sys.executable, "-m", "mlbs.cli", "compare", "--datasets", "emotions", "--methods", "random",
            "adaptive", "--epochs", "2", "--folds", "3", "--only-folds", "0", "1", "--no-train-eval-loss",
            "--no-plots", "--no-progress", *args]


def _children(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (from /proc)."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:  # ended meanwhile
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry.name))
    return out


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads the process table from /proc (Linux)")
def test_kill_9_of_the_driver_loses_no_finished_run_and_leaves_no_worker(tmp_path, serial):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    out = tmp_path / "store"
    driver = subprocess.Popen(_cli("--jobs", "2", "--out", str(out)), env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    records = out / "records" / CFG.hash()
    deadline = time.monotonic() + 240
    while not list(records.rglob("*.json")) and time.monotonic() < deadline:
        time.sleep(0.05)
    workers = _children(driver.pid)
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    first = {p: p.read_bytes() for p in records.rglob("*.json")}
    assert first, "no run finished within the deadline"
    for pid in workers:  # the workers notice and end
        for _ in range(100):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        else:
            pytest.fail(f"worker {pid} outlived its driver")
    done = subprocess.run(_cli("--out", str(out)), env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert f"{len(first)} found in the store" in done.stdout
    assert all(p.read_bytes() == b for p, b in first.items())  # finished runs are not run again
    assert comparable(ResultStore(out).load(CFG.hash())) == serial


def test_limit_threads_sets_every_library():
    code = ("from mlbs.experiments.executors import limit_threads; limit_threads(1)\n"
            "import os, torch, numba, faiss\n"
            "print(torch.get_num_threads(), numba.get_num_threads(), faiss.omp_get_max_threads(), "
            "os.environ['OMP_NUM_THREADS'], os.environ['NUMBA_NUM_THREADS'])")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p), "OMP_NUM_THREADS": "2"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["1"] * 5
    with pytest.raises(ValueError, match="0"):
        limit_threads(0)


# ------------------------------------------------------------------------------------- the estimate
COSTS = EpochCosts(epoch_s={"mlp": {"emotions": 0.1, "yeast": 0.4}}, setup_s={"mlp": {"emotions": 1.0, "yeast": 2.0}},
                   sampler_s={"adaptive": {"emotions": 0.05}}, policy_s={"adaptive": {"emotions": 0.5}})


def test_estimate_of_measured_cells_is_the_stated_formula():
    cfg = ExperimentConfig(epochs=10)
    keys = [RunKey("emotions", "mlp", m, f, 0) for m in ("random", "adaptive") for f in range(5)]
    bill = estimate_runs(keys, cfg, COSTS)
    random = 1.0 + 10 * 0.1
    adaptive = 1.0 + 0.5 + 10 * 0.1 + (10 - 3) * 0.05  # 3 warm-up epochs without the sampler's extra
    assert bill.total_s == pytest.approx(5 * random + 5 * adaptive)
    assert bill.rows == [("mlp", "emotions", 10, pytest.approx(5 * random + 5 * adaptive), True)]


def test_estimate_scales_unmeasured_cells_and_names_unknown_models():
    cfg = ExperimentConfig(epochs=10)
    bill = estimate_runs([RunKey("scene", "mlp", "random", 0, 0), RunKey("scene", "dela", "random", 0, 0)], cfg,
                         COSTS)

    def work(d):
        n, dim, q = dataset_size(d, cfg)
        return n * (dim + q)

    ratio_epoch = sorted([0.1 / work("emotions"), 0.4 / work("yeast")])
    expected = (sum([1.0 / work("emotions"), 2.0 / work("yeast")]) / 2
                + 10 * sum(ratio_epoch) / 2) * work("scene")  # median of two = their mean
    (mlp_row, dela_row) = bill.rows
    assert mlp_row[:3] == ("mlp", "scene", 1) and mlp_row[3] == pytest.approx(expected) and mlp_row[4] is False
    assert dela_row[3] is None and bill.unknown == 1 and "unknown" in bill.table()


def test_shipped_costs_cover_the_mlp_on_every_registered_dataset():
    from mlbs.data.registry import REGISTRY

    costs = EpochCosts.load()
    assert set(costs.epoch_s["mlp"]) >= set(REGISTRY)
    assert all(v > 0 for cells in costs.epoch_s.values() for v in cells.values())


def test_dry_run_prints_the_estimate_and_trains_nothing(tmp_path, capsys):
    from mlbs.cli import main

    out = tmp_path / "store"
    argv = ["compare", "--datasets", "emotions", "yeast", "--methods", "random", "adaptive", "--out", str(out),
            "--dry-run"]
    assert main(argv) == 0
    cap = capsys.readouterr()
    assert "20 runs to do" in cap.out and "| mlp | emotions | 10 |" in cap.out and "**total**" in cap.out
    assert not out.exists()
