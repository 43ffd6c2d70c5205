"""Result store: atomic records, resume after an interruption, configurations kept apart."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import mlbs
from mlbs.experiments.config import ExperimentConfig
from mlbs.experiments.runner import Grid, run_grid
from mlbs.experiments.store import RecordError, ResultStore, RunKey, write_json_atomic

torch.set_num_threads(1)
CFG = ExperimentConfig(epochs=2, n_folds=3, eval_train_loss=False)
GRID = Grid(("emotions",), ("mlp",), ("random", "adaptive"), (0, 1, 2))


class Killed(Exception):
    pass


def _comparable(records):
    """Everything but the timings."""
    out = {}
    for r in records:
        res = r["result"]
        k = tuple(r["key"].values())
        out[k] = (res["test"], res["test_final"], res["best_epoch"], res["curves"]["train_loss"],
                  res["curves"]["val_auc"], res["batches"]["loss"])
    return out


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    store = ResultStore(tmp_path_factory.mktemp("ref"))
    run_grid(GRID, CFG, store)
    return store


def test_interrupted_grid_resumes_without_redoing_finished_runs(tmp_path, reference):
    store = ResultStore(tmp_path)
    stop_at = RunKey("emotions", "mlp", "random", 1, 0)  # the third run of the grid

    def kill(key, epoch, epochs):
        if key == stop_at and epoch == 0:
            raise Killed

    with pytest.raises(Killed):
        run_grid(GRID, CFG, store, on_epoch=kill)
    h = CFG.hash()
    finished = sorted(p for p in (tmp_path / "records" / h).rglob("*.json"))
    assert len(finished) == 2  # fold 0 of both methods, nothing of the interrupted run
    stamps = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in finished}
    started = []
    summary = run_grid(GRID, CFG, store, on_start=started.append)
    assert len(summary["skipped"]) == 2 and len(summary["done"]) == 4
    assert all(k.fold != 0 for k in started)
    assert {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in finished} == stamps
    assert _comparable(store.load(h)) == _comparable(reference.load(h))
    again = run_grid(GRID, CFG, store)
    assert again["done"] == [] and len(again["skipped"]) == 6


def test_a_stray_temporary_file_is_not_a_record(tmp_path, reference):
    h = CFG.hash()
    src = reference.record_path(h, RunKey("emotions", "mlp", "random", 0, 0))
    store = ResultStore(tmp_path)
    dest = store.record_path(h, RunKey("emotions", "mlp", "random", 0, 0))
    dest.parent.mkdir(parents=True)
    (dest.parent / f".{dest.name}.abc.tmp").write_bytes(src.read_bytes()[:100])  # a write cut by kill -9
    store.save_config(CFG)
    assert not store.has(CFG, RunKey("emotions", "mlp", "random", 0, 0))
    assert store.load(h) == []


def test_write_json_atomic_keeps_the_old_file_when_writing_fails(tmp_path):
    path = tmp_path / "r.json"
    write_json_atomic(path, {"a": 1})

    class Bad:
        pass

    with pytest.raises(TypeError):
        write_json_atomic(path, {"a": Bad()})
    assert json.loads(path.read_text()) == {"a": 1}
    assert os.listdir(tmp_path) == ["r.json"]


def test_nan_is_stored_as_null(tmp_path):
    write_json_atomic(tmp_path / "x.json", {"v": float("nan"), "w": [1.5, float("inf")]})
    assert json.loads((tmp_path / "x.json").read_text()) == {"v": None, "w": [1.5, None]}


def test_configurations_are_never_mixed(tmp_path, reference):
    store = ResultStore(tmp_path)
    other = ExperimentConfig(epochs=1, n_folds=3, eval_train_loss=False)
    key = RunKey("emotions", "mlp", "random", 0, 0)
    h = CFG.hash()
    store.save(CFG, key, reference.load(h)[0]["result"])
    run_grid(Grid(("emotions",), ("mlp",), ("random",), (0,)), other, store)
    assert store.hashes() == sorted([h, other.hash()])
    assert [r["config"]["epochs"] for r in store.load(other.hash())] == [1]
    assert [r["config"]["epochs"] for r in store.load(h)] == [2]
    # a record filed under the wrong configuration is refused
    wrong = store.record_path(other.hash(), RunKey("emotions", "mlp", "adaptive", 0, 0))
    wrong.parent.mkdir(parents=True)
    wrong.write_bytes(store.record_path(h, key).read_bytes())
    with pytest.raises(RecordError, match="hashes to"):
        store.load(other.hash())


def test_grid_validates_names_and_folds(tmp_path):
    with pytest.raises(ValueError, match="unknown method"):
        Grid(("emotions",), ("mlp",), ("randm",), (0,))
    with pytest.raises(ValueError, match="unknown dataset"):
        Grid(("emotion",), ("mlp",), ("random",), (0,))
    with pytest.raises(ValueError, match="outside"):
        run_grid(Grid(("emotions",), ("mlp",), ("random",), (7,)), CFG, ResultStore(tmp_path))


# ----------------------------------------------------------------------------- several processes
KEY = RunKey("emotions", "mlp", "random", 0, 0)


def test_a_claimed_run_cannot_be_claimed_again_until_released(tmp_path):
    store = ResultStore(tmp_path)
    first = store.try_claim(CFG, KEY)
    assert first is not None and store.try_claim(CFG, KEY) is None
    assert store.holder(CFG, KEY)["pid"] == os.getpid()
    other = store.try_claim(CFG, RunKey("emotions", "mlp", "random", 1, 0))
    assert other is not None  # claims are per run
    first.release()
    assert store.holder(CFG, KEY) is None
    with store.try_claim(CFG, KEY) as again:
        assert again.held
    assert not again.held


def test_a_run_with_a_record_is_not_claimed(tmp_path, reference):
    store = ResultStore(tmp_path)
    store.save(CFG, KEY, reference.load(CFG.hash())[0]["result"])
    assert store.try_claim(CFG, KEY) is None


def test_the_claim_of_a_killed_process_is_free(tmp_path):
    code = ("import os, signal, sys\nfrom mlbs.experiments.config import ExperimentConfig\n"
            "from mlbs.experiments.store import ResultStore, RunKey\n"
            "c = ResultStore(sys.argv[1]).try_claim(ExperimentConfig(epochs=2, n_folds=3, eval_train_loss=False), "
            "RunKey('emotions', 'mlp', 'random', 0, 0))\nassert c is not None\nos.kill(os.getpid(), signal.SIGKILL)\n")
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path)], env=_env(), capture_output=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    store = ResultStore(tmp_path)
    assert store.lock_path(CFG.hash(), KEY).exists()  # left behind by kill -9, but nobody holds it
    assert store.try_claim(CFG, KEY) is not None


def test_stale_temporary_files_are_cleaned_unless_their_run_is_held(tmp_path):
    store = ResultStore(tmp_path)
    h = store.save_config(CFG)
    record = store.record_path(h, KEY)
    record.parent.mkdir(parents=True)
    stray = record.parent / f".{record.name}.x1y2.tmp"
    stray.write_text('{"cut')
    config_tmp = store.config_path(h).parent / f".{h}.json.q9.tmp"
    config_tmp.write_text("{")
    fresh_config_tmp = store.config_path(h).parent / f".{h}.json.r8.tmp"
    fresh_config_tmp.write_text("{")
    old = time.time() - 3600
    os.utime(config_tmp, (old, old))
    with store.try_claim(CFG, KEY):
        assert not stray.exists()  # the holder's own leftovers go when it claims
        stray.write_text('{"being written')
        assert store.clean_temporaries() == 1  # the old configuration temporary only
        assert stray.exists() and not config_tmp.exists() and fresh_config_tmp.exists()
    assert store.clean_temporaries() == 1 and not stray.exists()


_TWO_PROCESS_SCRIPT = """
import json, sys, time
from pathlib import Path
import torch
torch.set_num_threads(1)
from mlbs.experiments.config import ExperimentConfig
from mlbs.experiments.runner import Grid, run_grid
from mlbs.experiments.store import ResultStore
root, me, other = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
(root.parent / me).touch()
while not (root.parent / other).exists():  # start together
    time.sleep(0.005)
grid = Grid(("emotions",), ("mlp",), ("random",), (0, 1, 2, 3))
s = run_grid(grid, ExperimentConfig(epochs=1, n_folds=4, eval_train_loss=False), ResultStore(root))
print(json.dumps({"done": [list(k.as_dict().values()) for k in s["done"]], "busy": len(s["busy"]),
                  "skipped": len(s["skipped"])}))
"""


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = str(Path(mlbs.__file__).resolve().parents[1]) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def test_two_processes_on_one_store_run_each_run_exactly_once(tmp_path):
    root = tmp_path / "store"
    procs = [subprocess.Popen([sys.executable, "-c", _TWO_PROCESS_SCRIPT, str(root), me, other], env=_env(),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for me, other in (("a", "b"), ("b", "a"))]
    outputs = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err.decode()
        outputs.append(json.loads(out.decode().strip().splitlines()[-1]))
    done = [tuple(k) for o in outputs for k in o["done"]]
    assert len(done) == len(set(done)) == 4  # every run once, none twice
    assert all(o["done"] for o in outputs)  # started together, they shared the grid
    assert sum(o["busy"] + o["skipped"] for o in outputs) == 4
    store = ResultStore(root)
    assert len(store.load(ExperimentConfig(epochs=1, n_folds=4, eval_train_loss=False).hash())) == 4
    assert not list(root.rglob("*.tmp")) and not list((root / "locks").rglob("*.lock"))


def test_many_held_claims_raise_the_open_file_limit_or_fail_clearly(tmp_path):
    code = """
import resource, sys
from mlbs.experiments.config import ExperimentConfig
from mlbs.experiments.store import ResultStore, RunKey
store, cfg = ResultStore(sys.argv[1]), ExperimentConfig(epochs=1)
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (64, hard))
held = [store.try_claim(cfg, RunKey("d", "mlp", "random", i, 0)) for i in range(200)]
assert all(c is not None for c in held) and resource.getrlimit(resource.RLIMIT_NOFILE)[0] > 200
resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))
try:
    held += [store.try_claim(cfg, RunKey("d", "mlp", "random", 1000 + i, 0)) for i in range(300)]
except OSError as exc:
    print(exc)
"""
    import resource

    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard != resource.RLIM_INFINITY and hard < 512:
        pytest.skip("the hard limit of open files is too low to test raising the soft one")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], env=_env(), capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "too many open files while claiming" in out.stdout and "ulimit -n" in out.stdout
